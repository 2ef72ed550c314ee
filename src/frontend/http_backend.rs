//! `packserve http-backend`: the fetch half of smart HTTP as a CGI program, answering as
//! `git http-backend` does.
//!
//! The web server hands over the request in CGI variables and the body on stdin; this module
//! turns them into a [`Cgi`] value, decides what to do ([`route`], pure), writes the CGI
//! headers, and gives the session a reader (the body, length-limited and gunzipped as
//! needed) and a writer (stdout). Dumb HTTP (`/HEAD`, `/objects/...`, `info/refs` without
//! `?service=`) is deliberately not served: it would hand out any file of the repository,
//! unreachable and hidden objects included. Push is refused with `403`.

use std::io::{Read, Write};
use std::path::PathBuf;

use super::request::{self, is_aliased};
use super::upload_pack::{protocol_version, Failure};
use crate::cli::HttpBackendArgs;
use crate::log::{Entry, Outcome, Sink};
use crate::repo::{self};
use crate::session::Version;
use crate::wire::pktline::PktWriter;

/// The CGI request, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgi {
    /// `REQUEST_METHOD`.
    pub method: String,
    /// `PATH_INFO`.
    pub path_info: String,
    /// `QUERY_STRING`.
    pub query: String,
    /// `GIT_PROJECT_ROOT`.
    pub project_root: Option<PathBuf>,
    /// `PATH_TRANSLATED` (used when there is no project root).
    pub path_translated: Option<PathBuf>,
    /// `CONTENT_TYPE`.
    pub content_type: Option<String>,
    /// `CONTENT_LENGTH` (absent for chunked request bodies: read to the end).
    pub content_length: Option<String>,
    /// `HTTP_CONTENT_ENCODING`.
    pub content_encoding: Option<String>,
    /// `GIT_PROTOCOL`, else `HTTP_GIT_PROTOCOL`.
    pub git_protocol: Option<String>,
    /// `GIT_HTTP_EXPORT_ALL` is set.
    pub export_all: bool,
    /// `SERVER_PROTOCOL` (405 needs HTTP/1.1; older clients get 400, as git does).
    pub server_protocol: Option<String>,
}

impl Cgi {
    /// Reads the CGI variables.
    pub fn from_env() -> Cgi {
        let var = |k: &str| std::env::var(k).ok();
        Cgi {
            method: var("REQUEST_METHOD").unwrap_or_default(),
            path_info: var("PATH_INFO").unwrap_or_default(),
            query: var("QUERY_STRING").unwrap_or_default(),
            project_root: var("GIT_PROJECT_ROOT").filter(|s| !s.is_empty()).map(PathBuf::from),
            path_translated: var("PATH_TRANSLATED").filter(|s| !s.is_empty()).map(PathBuf::from),
            content_type: var("CONTENT_TYPE"),
            content_length: var("CONTENT_LENGTH").filter(|s| !s.is_empty()),
            content_encoding: var("HTTP_CONTENT_ENCODING").filter(|s| !s.is_empty()),
            git_protocol: var("GIT_PROTOCOL").or_else(|| var("HTTP_GIT_PROTOCOL")),
            export_all: std::env::var_os("GIT_HTTP_EXPORT_ALL").is_some(),
            server_protocol: var("SERVER_PROTOCOL"),
        }
    }
}

/// What the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// `GET .../info/refs?service=git-upload-pack`
    Advertise,
    /// `POST .../git-upload-pack`
    UploadPack,
}

/// A request that will be served: the service and the directory to look for the repository in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// What to do.
    pub service: Service,
    /// The repository's path on disk (before git's `<dir>.git` / `<dir>/.git` guessing).
    pub dir: PathBuf,
    /// The repository as named in the URL (for messages and the log).
    pub name: String,
}

/// An answer other than 200: status, reason phrase, text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// What goes into the body (and the log).
    pub message: String,
    /// `Allow:` header for 405.
    pub allow: Option<&'static str>,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into(), allow: None }
    }

    /// The reason phrase for the status line.
    pub fn reason(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            415 => "Unsupported Media Type",
            503 => "Service Unavailable",
            _ => "Internal Server Error",
        }
    }
}

/// `%XX` and `+` decoding of one query-string component.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `service` parameter of the query string.
fn service_param(query: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (url_decode(k) == "service").then(|| url_decode(v))
    })
}

/// Decides what the request is, as `git http-backend` does, before any repository is opened.
pub fn route(cgi: &Cgi) -> Result<Route, Refusal> {
    let method = if cgi.method == "HEAD" { "GET" } else { cgi.method.as_str() };
    let path = cgi.path_info.as_str();
    let wrong_method = |allowed: &'static str| {
        if cgi.server_protocol.as_deref() == Some("HTTP/1.1") {
            Refusal {
                status: 405,
                message: format!("Method Not Allowed: use {allowed}"),
                allow: Some(allowed),
            }
        } else {
            Refusal::new(400, format!("Bad Request: use {allowed}"))
        }
    };
    let (repo_part, service, want_method) = if let Some(r) = path.strip_suffix("/info/refs") {
        match service_param(&cgi.query) {
            None => return Err(Refusal::new(
                403,
                "Unsupported service: getanyfile (packserve serves smart HTTP only: use git 1.6.6 or later)",
            )),
            Some(s) if s == "git-upload-pack" => (r, Service::Advertise, "GET, HEAD"),
            Some(s) if s == "git-receive-pack" => return Err(push_refused()),
            Some(s) => return Err(Refusal::new(403, format!("Unsupported service: '{s}'"))),
        }
    } else if let Some(r) = path.strip_suffix("/git-upload-pack") {
        (r, Service::UploadPack, "POST")
    } else if path.ends_with("/git-receive-pack") {
        return Err(push_refused());
    } else if is_dumb_path(path) {
        return Err(Refusal::new(
            403,
            "Unsupported service: getanyfile (packserve serves smart HTTP only, not dumb HTTP file downloads)",
        ));
    } else {
        return Err(Refusal::new(404, format!("Request not supported: '{path}'")));
    };
    if method != want_method && !(want_method == "GET, HEAD" && method == "GET") {
        return Err(wrong_method(want_method));
    }
    let dir = match (&cgi.project_root, &cgi.path_translated) {
        (Some(root), _) => {
            if is_aliased(repo_part) {
                return Err(Refusal::new(403, format!("'{path}': aliased")));
            }
            // As git's http-backend: the root with one trailing `/`, then PATH_INFO without its
            // leading one. A PATH_INFO that starts with `~` (which the alias check lets through)
            // stays inside the root instead of naming a path beside it (`/srv/git~x`).
            let mut d = root.clone().into_os_string();
            if !d.as_encoded_bytes().ends_with(b"/") {
                d.push("/");
            }
            d.push(repo_part.strip_prefix('/').unwrap_or(repo_part));
            PathBuf::from(d)
        }
        (None, Some(translated)) => {
            let t = translated.to_string_lossy();
            let suffix = &path[repo_part.len()..];
            let Some(d) = t.strip_suffix(suffix) else {
                return Err(Refusal::new(500, "PATH_TRANSLATED does not end in PATH_INFO"));
            };
            if path.split('/').any(|c| c == "..") {
                return Err(Refusal::new(403, format!("'{path}': aliased")));
            }
            PathBuf::from(d)
        }
        (None, None) => {
            return Err(Refusal::new(500, "No GIT_PROJECT_ROOT or PATH_TRANSLATED from server"));
        }
    };
    if service == Service::UploadPack {
        let expected = "application/x-git-upload-pack-request";
        if cgi.content_type.as_deref() != Some(expected) {
            return Err(Refusal::new(
                415,
                format!(
                    "Unsupported Media Type: expected Content-Type {expected}, got {}",
                    cgi.content_type.as_deref().unwrap_or("none")
                ),
            ));
        }
        match cgi.content_encoding.as_deref() {
            None | Some("gzip" | "x-gzip" | "identity") => {}
            Some(other) => return Err(Refusal::new(415, format!("Unsupported Content-Encoding: {other}"))),
        }
        if let Some(len) = &cgi.content_length {
            if len.trim().parse::<u64>().is_err() {
                return Err(Refusal::new(400, format!("Bad CONTENT_LENGTH: {len}")));
            }
        }
    }
    Ok(Route { service, dir, name: repo_part.to_owned() })
}

fn push_refused() -> Refusal {
    Refusal::new(
        403,
        "Service not enabled: 'receive-pack': packserve serves fetches only, pushes are not accepted",
    )
}

/// Paths of the dumb protocol (what git http-backend serves as files).
fn is_dumb_path(path: &str) -> bool {
    path.ends_with("/HEAD")
        || path.contains("/objects/")
        || path.ends_with("/info/alternates")
        || path.ends_with("/info/http-alternates")
        || path.ends_with("/info/packs")
}

/// The no-cache headers git http-backend sends with every dynamic answer.
const NO_CACHE: &str =
    "Expires: Fri, 01 Jan 1980 00:00:00 GMT\r\nPragma: no-cache\r\nCache-Control: no-cache, max-age=0, must-revalidate\r\n";

/// The full CGI answer for a refusal.
pub fn refusal_response(r: &Refusal) -> Vec<u8> {
    let mut s = format!("Status: {} {}\r\n", r.status, r.reason());
    if let Some(allow) = r.allow {
        s.push_str(&format!("Allow: {allow}\r\n"));
    }
    s.push_str(NO_CACHE);
    s.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
    s.push_str(&r.message);
    s.push('\n');
    s.into_bytes()
}

/// The answer's output, writing the CGI head before its first byte (or at the end).
struct HeadFirst<'a, W: Write> {
    head: Option<Vec<u8>>,
    inner: &'a mut W,
}

impl<W: Write> HeadFirst<'_, W> {
    fn write_head(&mut self) -> std::io::Result<()> {
        match self.head.take() {
            Some(h) => self.inner.write_all(&h),
            None => Ok(()),
        }
    }
}

impl<W: Write> Write for HeadFirst<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !buf.is_empty() {
            self.write_head()?;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.head.is_none() {
            self.inner.flush()
        } else {
            Ok(())
        }
    }
}

/// A body of `CONTENT_LENGTH` bytes. One that ends sooner is an error (git http-backend dies
/// on it), never a client ending its request where the protocol lets it end.
struct FixedLength<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for FixedLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            let msg = "the remote end hung up unexpectedly";
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, msg));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The request body as the session reads it: at most `CONTENT_LENGTH` bytes (all of stdin
/// for a chunked request, which the server has already de-chunked), gunzipped if needed.
pub(crate) fn body<'a, R: Read + 'a>(cgi: &Cgi, stdin: R) -> Box<dyn Read + 'a> {
    let limited: Box<dyn Read> =
        match cgi.content_length.as_deref().and_then(|l| l.trim().parse::<u64>().ok()) {
            Some(n) => Box::new(FixedLength { inner: stdin, left: n }),
            None => Box::new(stdin),
        };
    match cgi.content_encoding.as_deref() {
        Some("gzip" | "x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(limited)),
        _ => limited,
    }
}

/// Runs the CGI program.
pub fn run(args: &HttpBackendArgs) -> Result<(), Failure> {
    let sink = args.log.clone().map(Sink::File).unwrap_or(Sink::Stderr);
    let cgi = Cgi::from_env();
    let mut entry = Entry::new("http");
    entry.format = args.log_format;
    entry.user = std::env::var("REMOTE_USER").ok().filter(|s| !s.is_empty());
    entry.addr = std::env::var("REMOTE_ADDR").ok().filter(|s| !s.is_empty());
    entry.repo = Some(cgi.path_info.clone()).filter(|s| !s.is_empty());
    let mut stdout = std::io::stdout().lock();
    let refuse = |entry: &mut Entry, stdout: &mut dyn Write, r: Refusal| {
        entry.outcome = Outcome::Refused(format!("{} {}", r.status, r.message));
        entry.write(&sink);
        let _ = stdout.write_all(&refusal_response(&r));
        let _ = stdout.flush();
        // The refusal is the answer: the CGI itself succeeded.
        Ok(())
    };
    let route = match route(&cgi) {
        Ok(r) => r,
        Err(r) => return refuse(&mut entry, &mut stdout, r),
    };
    entry.repo = Some(route.name.clone());
    let owner = crate::frontend::upload_pack::env_ownership();
    let git_dir = match repo::enter_repo(&route.dir.to_string_lossy(), false, None, &owner) {
        Ok(d) => d,
        Err(repo::EnterError::NotFound) => {
            return refuse(
                &mut entry,
                &mut stdout,
                Refusal::new(404, format!("Not a git repository: '{}'", route.name)),
            )
        }
        Err(repo::EnterError::BadGitfile(_)) => {
            // git http-backend dies on a broken `.git` file too (500); its message names
            // server paths, so the client is told less.
            return refuse(
                &mut entry,
                &mut stdout,
                Refusal::new(500, format!("broken .git file in '{}'", route.name)),
            );
        }
        // git http-backend dies here too (500); the web server's user does not own the
        // repository and safe.directory does not list it.
        Err(repo::EnterError::DubiousOwnership(_)) => {
            return refuse(
                &mut entry,
                &mut stdout,
                Refusal::new(
                    500,
                    format!("detected dubious ownership in repository '{}' (see safe.directory)", route.name),
                ),
            )
        }
    };
    if !cgi.export_all && !git_dir.join("git-daemon-export-ok").exists() {
        return refuse(
            &mut entry,
            &mut stdout,
            Refusal::new(404, format!("Repository not exported: '{}'", route.name)),
        );
    }
    let repo = match crate::frontend::upload_pack::open_repo(&git_dir, &route.name) {
        Ok(r) => r,
        Err(e) => {
            let _ = stdout.write_all(&refusal_response(&Refusal::new(500, e.to_string())));
            entry.outcome = Outcome::Error(e.to_string());
            entry.write(&sink);
            return Err(Failure { code: 128, message: Some(format!("fatal: {e}")) });
        }
    };
    // git http-backend reads these keys (their last values) before it serves anything, and
    // dies (500) on a malformed one.
    let http_config = (|| {
        use crate::config::{last_bool, last_ulong};
        last_bool(&repo.entries, "http.getanyfile")?;
        last_ulong(&repo.entries, "http.maxrequestbuffer")?;
        let upload_pack = last_bool(&repo.entries, "http.uploadpack")?;
        last_bool(&repo.entries, "http.receivepack")?;
        Ok::<_, crate::config::ConfigError>(upload_pack)
    })();
    match http_config {
        Err(e) => return refuse(&mut entry, &mut stdout, Refusal::new(500, e.fatal)),
        Ok(Some(false)) => {
            return refuse(&mut entry, &mut stdout, Refusal::new(403, "Service not enabled: 'upload-pack'"))
        }
        Ok(_) => {}
    }
    let version = protocol_version(cgi.git_protocol.as_deref());
    let res = match route.service {
        Service::Advertise => {
            let head = format!("{NO_CACHE}Content-Type: application/x-git-upload-pack-advertisement\r\n\r\n");
            let mut w = PktWriter::new(&mut stdout);
            let intro = w.raw(head.as_bytes()).and_then(|()| {
                if version == Version::V2 {
                    Ok(())
                } else {
                    w.line("# service=git-upload-pack").and_then(|()| w.flush_pkt())
                }
            });
            let intro = intro.and_then(|()| w.flush());
            drop(w);
            match intro {
                Err(e) => Err(Failure::from(crate::session::SessionError::Write(e))),
                Ok(()) => {
                    let settings = crate::frontend::upload_pack::env_settings(version, true, true);
                    request::serve_repo(
                        &mut entry,
                        &repo,
                        std::io::empty(),
                        &mut stdout,
                        settings,
                        args.timeout,
                    )
                }
            }
        }
        Service::UploadPack => {
            // The head goes out with the first byte of the answer, so that a request refused
            // by admission control before that can still be a 503.
            let head = format!("{NO_CACHE}Content-Type: application/x-git-upload-pack-result\r\n\r\n");
            let mut out = HeadFirst { head: Some(head.into_bytes()), inner: &mut stdout };
            let mut settings = crate::frontend::upload_pack::env_settings(version, true, false);
            settings.busy_by_envelope = true;
            let input = body(&cgi, std::io::stdin().lock());
            let res = request::serve_repo(&mut entry, &repo, input, &mut out, settings, args.timeout);
            match res {
                Err(f) if f.code == crate::frontend::upload_pack::BUSY_EXIT && out.head.is_some() => {
                    let msg = f.message.as_deref().unwrap_or("busy");
                    let msg = msg.strip_prefix("fatal: ").unwrap_or(msg);
                    let retry = repo.config.admission.queue_timeout.as_secs().max(1);
                    let mut r = refusal_response(&Refusal::new(503, msg));
                    // Retry-After goes with the other headers, before the blank line.
                    let at = r.windows(2).position(|w| w == b"\r\n").map_or(0, |i| i + 2);
                    r.splice(at..at, format!("Retry-After: {retry}\r\n").into_bytes());
                    let _ = out.inner.write_all(&r);
                    let _ = out.inner.flush();
                    entry.outcome = Outcome::Refused(format!("503 {msg}"));
                    Ok(())
                }
                other => {
                    let flushed = out.write_head().and_then(|()| out.inner.flush());
                    match (other, flushed) {
                        (Ok(()), Err(e)) => Err(Failure::from(crate::session::SessionError::Write(e))),
                        (other, _) => other,
                    }
                }
            }
        }
    };
    entry.write(&sink);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cgi(method: &str, path: &str, query: &str) -> Cgi {
        Cgi {
            method: method.into(),
            path_info: path.into(),
            query: query.into(),
            project_root: Some("/srv/git".into()),
            content_type: Some("application/x-git-upload-pack-request".into()),
            server_protocol: Some("HTTP/1.1".into()),
            ..Cgi::default()
        }
    }

    #[test]
    fn routes() {
        let r = route(&cgi("GET", "/a.git/info/refs", "service=git-upload-pack")).unwrap();
        assert_eq!(
            r,
            Route { service: Service::Advertise, dir: "/srv/git/a.git".into(), name: "/a.git".into() }
        );
        let r = route(&cgi("HEAD", "/t/a/info/refs", "x=1&service=git%2Dupload-pack")).unwrap();
        assert_eq!(r.dir, PathBuf::from("/srv/git/t/a"));
        let r = route(&cgi("POST", "/a.git/git-upload-pack", "")).unwrap();
        assert_eq!(r.service, Service::UploadPack);
        // Root and PATH_INFO are joined with one `/`, as git's http-backend joins them: a
        // PATH_INFO without its leading `/` (a `~` one passes the alias check) stays inside.
        let r = route(&cgi("GET", "~x.git/info/refs", "service=git-upload-pack")).unwrap();
        assert_eq!(r.dir, PathBuf::from("/srv/git/~x.git"));
        let mut c = cgi("GET", "/a.git/info/refs", "service=git-upload-pack");
        c.project_root = Some("/srv/git/".into());
        assert_eq!(route(&c).unwrap().dir, PathBuf::from("/srv/git/a.git"));
    }

    #[test]
    fn refusals() {
        let status = |c: Cgi| route(&c).unwrap_err().status;
        assert_eq!(status(cgi("GET", "/a.git/info/refs", "service=git-receive-pack")), 403);
        assert_eq!(status(cgi("POST", "/a.git/git-receive-pack", "")), 403);
        assert_eq!(status(cgi("GET", "/a.git/info/refs", "service=git-upload-archive")), 403);
        assert_eq!(status(cgi("GET", "/a.git/info/refs", "")), 403);
        assert_eq!(status(cgi("GET", "/a.git/HEAD", "")), 403);
        assert_eq!(status(cgi("GET", "/a.git/objects/info/packs", "")), 403);
        assert_eq!(status(cgi("GET", "/a.git/whatever", "")), 404);
        let e = route(&cgi("GET", "/a.git/git-upload-pack", "")).unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("POST")));
        let e = route(&cgi("POST", "/a.git/info/refs", "service=git-upload-pack")).unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("GET, HEAD")));
        let mut old = cgi("POST", "/a.git/info/refs", "service=git-upload-pack");
        old.server_protocol = Some("HTTP/1.0".into());
        assert_eq!(status(old), 400);
        let mut c = cgi("POST", "/a.git/git-upload-pack", "");
        c.content_type = Some("text/plain".into());
        assert_eq!(status(c), 415);
        let mut c = cgi("POST", "/a.git/git-upload-pack", "");
        c.content_encoding = Some("br".into());
        assert_eq!(status(c), 415);
        let mut c = cgi("POST", "/a.git/git-upload-pack", "");
        c.content_length = Some("12x".into());
        assert_eq!(status(c), 400);
        assert_eq!(status(cgi("GET", "/../etc/info/refs", "service=git-upload-pack")), 403);
        assert_eq!(status(cgi("GET", "/a/./b/info/refs", "service=git-upload-pack")), 403);
        let mut c = cgi("GET", "/a.git/info/refs", "service=git-upload-pack");
        c.project_root = None;
        assert_eq!(status(c), 500);
    }

    #[test]
    fn path_translated() {
        let mut c = cgi("GET", "/a.git/info/refs", "service=git-upload-pack");
        c.project_root = None;
        c.path_translated = Some("/var/www/a.git/info/refs".into());
        assert_eq!(route(&c).unwrap().dir, PathBuf::from("/var/www/a.git"));
    }

    #[test]
    fn refusal_bodies_are_text() {
        let r = refusal_response(&Refusal::new(404, "Not a git repository: '/x'"));
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("Status: 404 Not Found\r\n"), "{s}");
        assert!(s.contains("Cache-Control: no-cache, max-age=0, must-revalidate\r\n"));
        assert!(s.ends_with("\r\n\r\nNot a git repository: '/x'\n"), "{s}");
    }

    #[test]
    fn bodies() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"0009done\n").unwrap();
        let zipped = gz.finish().unwrap();
        let mut c = cgi("POST", "/a/git-upload-pack", "");
        c.content_encoding = Some("gzip".into());
        let mut out = String::new();
        body(&c, &zipped[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "0009done\n");
        c.content_encoding = None;
        c.content_length = Some("4".into());
        out.clear();
        body(&c, &b"0000trailing"[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "0000");
    }

    #[test]
    fn decoding() {
        assert_eq!(url_decode("git%2Dupload-pack"), "git-upload-pack");
        assert_eq!(url_decode("a+b%"), "a b%");
        assert_eq!(url_decode("%zz"), "%zz");
    }
}
