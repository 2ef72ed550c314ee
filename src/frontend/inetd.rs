//! `packserve inetd`: one git:// connection on stdin/stdout, as `git daemon --inetd` serves
//! it under inetd, xinetd or a systemd socket unit with `Accept=yes`.
//!
//! The connection starts with the daemon request line, one pkt-line:
//! `git-upload-pack /path\0host=example.com\0\0version=2\0`. The path is checked and resolved
//! with git-daemon's rules (`--base-path`, `--export-all` or `git-daemon-export-ok`, the
//! directory whitelist, `--strict-paths`); refusals are git-daemon's `ERR` lines. Only
//! `git-upload-pack` is served.

use std::io::Write;
use std::path::PathBuf;

use super::request::{self, is_aliased};
use super::upload_pack::{protocol_version, Failure};
use crate::cli::InetdArgs;
use crate::log::{Entry, Outcome, Sink};
use crate::repo::{self};
use crate::wire::pktline::{Packet, PktReader, PktWriter};

/// The parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonRequest {
    /// `upload-pack`, `receive-pack`, ... (without `git-`).
    pub service: String,
    /// The path as sent.
    pub path: String,
    /// `host=` value, if sent.
    pub host: Option<String>,
    /// The extra parameters after the second NUL, joined with `:` (what becomes `GIT_PROTOCOL`).
    pub git_protocol: Option<String>,
}

/// Why a connection is refused; the `Display` is the message for the daemon's log, and
/// [`Refused::client_message`] what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a request line git-daemon understands.
    #[error("protocol error: '{0}'")]
    Protocol(String),
    /// `git-receive-pack`, `git-upload-archive`.
    #[error("'{0}': service not enabled (packserve serves fetches only)")]
    ServiceNotEnabled(String),
    /// `daemon.uploadpack=false` in the repository.
    #[error("'upload-pack': service not enabled for '{0}'")]
    DisabledByConfig(String),
    /// Bad path (`..`, `//`, relative with a base path, `~user`), no repository, or not in
    /// the whitelist.
    #[error("'{path}': {why}")]
    NoSuchRepository {
        /// As sent.
        path: String,
        /// For the log.
        why: String,
    },
    /// No `git-daemon-export-ok` and no `--export-all`.
    #[error("'{0}': repository not exported")]
    NotExported(String),
}

impl Refused {
    /// The `ERR` text: git-daemon's wording, generic unless `--informative-errors`.
    pub fn client_message(&self, path: &str, informative: bool) -> String {
        let msg = match self {
            Refused::Protocol(_) => return "protocol error: expected 'git-upload-pack <path>'".to_owned(),
            // A service that is never served gives nothing away about the repository.
            Refused::ServiceNotEnabled(_) => {
                return format!("service not enabled (packserve serves fetches only): {path}")
            }
            Refused::DisabledByConfig(_) => "service not enabled",
            Refused::NoSuchRepository { .. } => "no such repository",
            Refused::NotExported(_) => "repository not exported",
        };
        if informative {
            format!("{msg}: {path}")
        } else {
            format!("access denied or repository not exported: {path}")
        }
    }
}

/// Parses the request line's payload.
pub fn parse_request(data: &[u8]) -> Result<DaemonRequest, Refused> {
    let (line, extra) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data.strip_suffix(b"\n").unwrap_or(data), &b""[..]),
    };
    let shown =
        || String::from_utf8_lossy(line).chars().filter(|c| !c.is_control()).take(100).collect::<String>();
    let line = std::str::from_utf8(line).map_err(|_| Refused::Protocol(shown()))?;
    let Some((cmd, path)) = line.split_once(' ') else {
        return Err(Refused::Protocol(shown()));
    };
    let Some(service) = cmd.strip_prefix("git-") else {
        return Err(Refused::Protocol(shown()));
    };
    // host=<host>\0, then after an empty field the extra parameters.
    let mut fields = extra.split(|&b| b == 0);
    let mut host = None;
    let mut rest: Vec<&[u8]> = Vec::new();
    if let Some(first) = fields.next() {
        if let Some(h) = first.strip_prefix(b"host=") {
            host = Some(String::from_utf8_lossy(h).into_owned());
        } else if !first.is_empty() {
            return Err(Refused::Protocol(shown()));
        }
    }
    rest.extend(fields.filter(|f| !f.is_empty()));
    let git_protocol = (!rest.is_empty())
        .then(|| rest.iter().map(|f| String::from_utf8_lossy(f)).collect::<Vec<_>>().join(":"));
    Ok(DaemonRequest { service: service.to_owned(), path: path.to_owned(), host, git_protocol })
}

/// git-daemon's `path_ok` plus the export check: the git directory to serve.
pub fn path_ok(args: &InetdArgs, path: &str, owner: &repo::Ownership) -> Result<PathBuf, Refused> {
    let no = |why: &str| Refused::NoSuchRepository { path: path.to_owned(), why: why.to_owned() };
    if is_aliased(path) {
        return Err(no("aliased"));
    }
    if path.starts_with('~') {
        return Err(no("user-path not allowed"));
    }
    let dir = match &args.base_path {
        Some(base) => {
            let mut d = base.clone().into_os_string();
            d.push(path);
            d.to_string_lossy().into_owned()
        }
        None => path.to_owned(),
    };
    let git_dir = repo::enter_repo(&dir, args.strict_paths, None, owner).map_err(|e| match e {
        repo::EnterError::NotFound | repo::EnterError::BadGitfile(_) => {
            no("does not appear to be a git repository")
        }
        repo::EnterError::DubiousOwnership(_) => {
            no("detected dubious ownership in repository (see safe.directory)")
        }
    })?;
    if !args.directories.is_empty() {
        let found = git_dir.to_string_lossy();
        let ok = args.directories.iter().any(|d| {
            found
                .strip_prefix(d.as_str())
                .is_some_and(|rest| rest.is_empty() || (!args.strict_paths && rest.starts_with('/')))
        });
        if !ok {
            return Err(no("not in whitelist"));
        }
    }
    if !args.export_all && !git_dir.join("git-daemon-export-ok").exists() {
        return Err(Refused::NotExported(path.to_owned()));
    }
    Ok(git_dir)
}

/// Serves one connection on stdin/stdout.
pub fn run(args: &InetdArgs) -> Result<(), Failure> {
    let sink = args.log.clone().map(Sink::File).unwrap_or(Sink::Stderr);
    let mut entry = Entry::new("git");
    entry.format = args.log_format;
    entry.addr = ["REMOTE_ADDR", "SOCAT_PEERADDR", "REMOTE_HOST"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let mut stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();

    // A client that connects and says nothing must not hold a process forever: with
    // --timeout, the request line has that long to arrive too (git daemon's --init-timeout).
    let got_request = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(secs) = args.timeout {
        let got = got_request.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            if !got.load(std::sync::atomic::Ordering::Relaxed) {
                std::process::exit(128);
            }
        });
    }
    // The reader takes exactly one packet's bytes, so the session sees the rest of the stream.
    let first = {
        let mut r = PktReader::new(&mut stdin);
        match r.read() {
            Ok(Some(Packet::Data(d))) => Ok(d.to_vec()),
            Ok(None) => Err("the client sent nothing".to_owned()),
            Ok(Some(_)) => Err("expected the request line, got a special packet".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    };
    let refuse = |entry: &mut Entry, stdout: &mut dyn Write, e: Refused, path: &str| {
        // Log first: once the client has its answer, the line must already be there.
        entry.outcome = Outcome::Refused(e.to_string());
        entry.write(&sink);
        let mut w = PktWriter::new(stdout);
        let _ = w.error(&e.client_message(path, args.informative_errors));
        let _ = w.flush();
        linger();
        Err(Failure { code: 128, message: None })
    };
    got_request.store(true, std::sync::atomic::Ordering::Relaxed);
    let data = match first {
        Ok(d) => d,
        Err(msg) => {
            entry.outcome = Outcome::Error(msg);
            entry.write(&sink);
            return Err(Failure { code: 128, message: None });
        }
    };
    let req = match parse_request(&data) {
        Ok(r) => r,
        Err(e) => return refuse(&mut entry, &mut stdout, e, ""),
    };
    entry.repo = Some(req.path.clone());
    if req.service != "upload-pack" {
        let e = Refused::ServiceNotEnabled(format!("git-{}", req.service));
        return refuse(&mut entry, &mut stdout, e, &req.path);
    }
    let git_dir = match path_ok(args, &req.path, &crate::frontend::upload_pack::env_ownership()) {
        Ok(d) => d,
        Err(e) => return refuse(&mut entry, &mut stdout, e, &req.path),
    };
    let repo = match crate::frontend::upload_pack::open_repo(&git_dir, &req.path) {
        Ok(r) => r,
        Err(e) => {
            let why = e.to_string();
            let e = Refused::NoSuchRepository { path: req.path.clone(), why };
            return refuse(&mut entry, &mut stdout, e, &req.path);
        }
    };
    match crate::config::last_bool(&repo.entries, "daemon.uploadpack") {
        Ok(Some(false)) => {
            let e = Refused::DisabledByConfig(req.path.clone());
            return refuse(&mut entry, &mut stdout, e, &req.path);
        }
        Ok(_) => {}
        // git daemon's child dies on a malformed value: the client sees the connection end.
        Err(e) => {
            entry.outcome = crate::log::Outcome::Error(e.fatal);
            entry.write(&sink);
            return Err(Failure { code: 128, message: None });
        }
    }
    let settings = crate::frontend::upload_pack::env_settings(
        protocol_version(req.git_protocol.as_deref()),
        false,
        false,
    );
    let res = request::serve_repo(&mut entry, &repo, stdin, &mut stdout, settings, args.timeout);
    entry.write(&sink);
    if res.is_err() {
        let _ = stdout.flush();
        linger();
    }
    // Like git daemon, say nothing on the socket's stderr: the log line has it.
    res.map_err(|f| Failure { code: f.code, message: None })
}

/// A lingering close before the process exits with a failure: half-close the connection
/// (so the client, or a proxy in front of us, sees the end of our answer), then wait a few
/// seconds at most for the client to close its side. Exiting at once can lose the `ERR` line:
/// a socket closed with unread input is reset, and socat drops what it has not forwarded
/// when its child exits non-zero.
fn linger() {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 1 is this process's stdout for its whole life; ManuallyDrop keeps it open,
    // only its write direction is shut down (an error, e.g. on a pipe, is ignored).
    let out = std::mem::ManuallyDrop::new(unsafe { std::os::unix::net::UnixStream::from_raw_fd(1) });
    let _ = out.shutdown(std::net::Shutdown::Write);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut stdin = std::io::stdin();
        let mut total = 0usize;
        while let Ok(n) = std::io::Read::read(&mut stdin, &mut buf) {
            total += n;
            if n == 0 || total > 1 << 20 {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        let r = parse_request(b"git-upload-pack /a.git\0host=example.com:9418\0\0version=2\0").unwrap();
        assert_eq!(
            r,
            DaemonRequest {
                service: "upload-pack".into(),
                path: "/a.git".into(),
                host: Some("example.com:9418".into()),
                git_protocol: Some("version=2".into()),
            }
        );
        let r = parse_request(b"git-upload-pack /a.git\0host=h\0").unwrap();
        assert_eq!(r.git_protocol, None);
        let r = parse_request(b"git-upload-pack /a.git\n").unwrap();
        assert_eq!((r.path.as_str(), r.host), ("/a.git", None));
        let r = parse_request(b"git-upload-pack /a.git\0\0version=1\0foo=bar\0").unwrap();
        assert_eq!(r.git_protocol.as_deref(), Some("version=1:foo=bar"));
        let r = parse_request(b"git-receive-pack /a.git\0host=h\0").unwrap();
        assert_eq!(r.service, "receive-pack");
        for bad in [&b"hello"[..], b"upload-pack /a", b"git-upload-pack /a\0junk\0", b"\xff\xfe /a"] {
            assert!(matches!(parse_request(bad), Err(Refused::Protocol(_))), "{bad:?}");
        }
    }

    #[test]
    fn client_messages() {
        let e = Refused::NotExported("/a".into());
        assert_eq!(e.client_message("/a", true), "repository not exported: /a");
        assert_eq!(e.client_message("/a", false), "access denied or repository not exported: /a");
        let e = Refused::ServiceNotEnabled("git-receive-pack".into());
        assert!(e.client_message("/a", false).contains("fetches only"));
    }
}
