//! http: Apache 2.4 with mod_cgi, started by the test with its own config, running
//! `packserve http-backend` as its CGI (as www-data, like any Apache CGI) under
//! `ScriptAlias /git/`. Clients: git 2.47 and 2.39 (v0 and v2), pygit2 (libgit2), dulwich,
//! JGit; and raw requests for the status codes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::servers::*;
use common::*;

fn setup(label: &str) -> (Sandbox, Served, HttpServer) {
    let sb = Sandbox::new(label);
    let served = Served::new(&sb);
    let http = HttpServer::start(&sb, &served);
    (sb, served, http)
}

mod git {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, http) = setup("http-git");
        git_clone_ls_remote_fetch(&sb, &http.remote(), &served, client, protocol);
        let want = format!("frontend=http repo=/main.git user=- addr=127.0.0.1 proto={protocol}");
        log_when(&http.log, |log| {
            log.lines().filter(|l| l.contains(&want) && l.contains("outcome=ok")).count() >= 3
        });
    }
    client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
}

mod shallow {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, http) = setup("http-shallow");
        git_shallow_clone(&sb, &http.remote(), &served, client, protocol);
    }
    client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
}

mod partial {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, http) = setup("http-partial");
        git_partial_clone(&sb, &http.remote(), &served, client, protocol);
    }
    client_tests!(go; git247_v2(New, 2), git239_v0(Old, 0));
}

#[test]
fn pygit2() {
    let (sb, served, http) = setup("http-pygit2");
    python_clone_ls_remote_fetch(&sb, &http.remote(), &served, "pygit2");
}

#[test]
fn dulwich() {
    let (sb, served, http) = setup("http-dulwich");
    python_clone_ls_remote_fetch(&sb, &http.remote(), &served, "dulwich");
}

#[test]
fn dulwich_shallow() {
    let (sb, served, http) = setup("http-dulwich-shallow");
    python_shallow_clone(&sb, &http.remote(), &served, "dulwich");
}

#[test]
fn pygit2_shallow() {
    let (sb, served, http) = setup("http-pygit2-shallow");
    python_shallow_clone(&sb, &http.remote(), &served, "pygit2");
}

#[test]
fn jgit() {
    let (sb, served, http) = setup("http-jgit");
    jgit_clone_ls_remote_fetch(&sb, &http.remote(), &served, None);
}

#[test]
fn push_is_refused() {
    let (sb, served, http) = setup("http-push");
    for client in Client::ALL {
        git_push_refused(&sb, &http.remote(), &served, client);
    }
    python_push_refused(&sb, &http.remote(), &served, "dulwich");
    python_push_refused(&sb, &http.remote(), &served, "pygit2");
    jgit_push_refused(&sb, &http.remote(), &served, None);
}

/// Gzip and chunked request bodies: a fetch with many haves makes git gzip its POST, and a
/// clone of a repository with thousands of refs makes the first POST bigger than
/// http.postBuffer, which git sends chunked (Apache hands it over without CONTENT_LENGTH).
#[test]
fn gzip_and_chunked_request_bodies() {
    let (sb, served, http) = setup("http-bodies");
    let server = served.repo("main.git");
    let remote = http.remote();
    let cases = [(Client::New, 0), (Client::New, 2), (Client::Old, 0), (Client::Old, 2)];
    // Local commits the server lacks: the fetch's haves make a POST over 1 KiB, which git
    // gzips.
    for (client, protocol) in cases {
        let dest = sb.unique("gzip");
        let out = remote.git(
            &sb,
            client,
            protocol,
            sb.path(),
            "clone",
            &["--no-progress", &remote.url("main.git"), dest.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}: {out}", label(client, protocol));
        sb.sh(&dest, "tick_after_repo; many_commits refs/heads/local 200");
        advance(&sb, &server);
        let out = remote.git(&sb, client, protocol, &dest, "fetch", &["--no-progress", "origin"]);
        assert!(out.status.success(), "{}: {out}", label(client, protocol));
        assert_mirrors(&sb, &dest, &server, &label(client, protocol));
    }
    let access = http.access_log();
    assert!(
        access.lines().any(|l| l.starts_with("POST") && l.contains(" 200 te=- ce=gzip")),
        "no gzipped POST:\n{access}"
    );
    // Thousands of refs: the first POST (all the wants) is over http.postBuffer, so git sends
    // it chunked, and Apache hands it over without CONTENT_LENGTH.
    sb.sh(
        &server,
        "m=$(git rev-parse refs/heads/main); for i in $(seq 1 1500); do echo \"create refs/heads/many/b$i $m\"; done | git update-ref --stdin",
    );
    for (client, protocol) in cases {
        let dest = sb.unique("chunked");
        let out = remote.git(
            &sb,
            client,
            protocol,
            sb.path(),
            "clone",
            &[
                "--no-progress",
                "-c",
                "http.postBuffer=65536",
                &remote.url("main.git"),
                dest.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}: {out}", label(client, protocol));
        assert_mirrors(&sb, &dest, &server, &label(client, protocol));
    }
    let access = http.access_log();
    assert!(
        access.lines().any(|l| l.starts_with("POST") && l.contains(" 200 te=chunked")),
        "no chunked POST:\n{access}"
    );
}

/// A raw HTTP/1.1 request; returns (status line, headers, body).
fn request(port: u16, method: &str, path: &str, headers: &[&str], body: &[u8]) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").expect("no end of headers");
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    let mut body = resp[split + 4..].to_vec();
    if headers.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status.to_owned(), headers.to_owned(), body)
}

/// Undoes HTTP/1.1 chunked transfer encoding.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol]).split(';').next().unwrap().trim(),
            16,
        )
        .expect("chunk size");
        data = &data[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[test]
fn answers_as_git_http_backend() {
    let (_sb, _served, http) = setup("http-answers");
    let p = http.port;
    // v0: the # service= line, then the advertisement; no-cache headers.
    let (status, headers, body) =
        request(p, "GET", "/git/main.git/info/refs?service=git-upload-pack", &[], b"");
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("Content-Type: application/x-git-upload-pack-advertisement"), "{headers}");
    assert!(headers.contains("Cache-Control: no-cache, max-age=0, must-revalidate"), "{headers}");
    assert!(
        headers.contains("Pragma: no-cache") && headers.contains("Expires: Fri, 01 Jan 1980 00:00:00 GMT"),
        "{headers}"
    );
    assert!(body.starts_with(b"001e# service=git-upload-pack\n0000"), "{}", String::from_utf8_lossy(&body));
    // v2 (Git-Protocol header): no # service= line, the capability advertisement.
    let (status, _, body) = request(
        p,
        "GET",
        "/git/main.git/info/refs?service=git-upload-pack",
        &["Git-Protocol: version=2"],
        b"",
    );
    assert!(status.contains("200"), "{status}");
    assert!(body.starts_with(b"000eversion 2\n"), "{}", String::from_utf8_lossy(&body));
    // POST: result content type.
    let (status, headers, body) = request(
        p,
        "POST",
        "/git/main.git/git-upload-pack",
        &["Content-Type: application/x-git-upload-pack-request", "Git-Protocol: version=2"],
        b"0014command=ls-refs\n0000",
    );
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("Content-Type: application/x-git-upload-pack-result"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("refs/heads/main"), "{}", String::from_utf8_lossy(&body));

    let cases: &[(&str, &str, &[&str], u16, &str)] = &[
        (
            "GET",
            "/git/main.git/info/refs?service=git-receive-pack",
            &[],
            403,
            "packserve serves fetches only",
        ),
        (
            "POST",
            "/git/main.git/git-receive-pack",
            &["Content-Type: application/x-git-receive-pack-request"],
            403,
            "packserve serves fetches only",
        ),
        (
            "GET",
            "/git/private.git/info/refs?service=git-upload-pack",
            &[],
            404,
            "Repository not exported: '/private.git'",
        ),
        (
            "GET",
            "/git/nope.git/info/refs?service=git-upload-pack",
            &[],
            404,
            "Not a git repository: '/nope.git'",
        ),
        ("GET", "/git/main.git/git-upload-pack", &[], 405, "Method Not Allowed"),
        (
            "POST",
            "/git/main.git/git-upload-pack",
            &["Content-Type: text/plain"],
            415,
            "Unsupported Media Type",
        ),
        ("GET", "/git/main.git/info/refs", &[], 403, "smart HTTP only"),
        ("GET", "/git/main.git/HEAD", &[], 403, "smart HTTP only"),
        ("GET", "/git/main.git/info/refs?service=git-upload-archive", &[], 403, "Unsupported service"),
        ("GET", "/git/main.git/whatever", &[], 404, "Request not supported"),
    ];
    for (method, path, hdrs, code, text) in cases {
        let (status, headers, body) = request(p, method, path, hdrs, b"");
        let body = String::from_utf8_lossy(&body);
        assert!(status.contains(&format!(" {code} ")), "{method} {path}: {status}\n{headers}\n{body}");
        assert!(headers.contains("Content-Type: text/plain"), "{method} {path}: {headers}");
        assert!(body.contains(text), "{method} {path}: expected '{text}' in the body: {body}");
        if *code == 405 {
            assert!(headers.contains("Allow: POST"), "{headers}");
        }
    }
    // The operator log has one line per request, refusals included.
    let log = log_when(&http.log, |log| log.lines().count() >= 3 + cases.len());
    assert_eq!(log.lines().count(), 3 + cases.len(), "log:\n{log}");
    assert!(log.contains("outcome=refused reason=\"404 Repository not exported"), "log:\n{log}");
    assert!(!http.error_log().contains("panicked"), "{}", http.error_log());
}

#[test]
fn non_exported_and_outside_root_through_git() {
    let (sb, _served, http) = setup("http-refusals");
    let remote = http.remote();
    // (curl collapses "../" before sending: the request is for /git/outside.git, not found.)
    for (path, text) in [
        ("private.git", "Repository not exported: '/private.git'"),
        ("../outside.git", "not found"),
        ("nope.git", "Not a git repository: '/nope.git'"),
    ] {
        let out = remote.git(
            &sb,
            Client::New,
            2,
            sb.path(),
            "clone",
            &[&remote.url(path), sb.unique("x").to_str().unwrap()],
        );
        assert!(!out.status.success(), "{path}: {out}");
        assert!(out.stderr_str().contains(text), "{path}: {out}");
    }
}

#[test]
fn remote_user_reaches_the_log_and_the_password_does_not() {
    let (sb, served, http) = setup("http-auth");
    let mut remote = http.remote();
    remote.base = format!("http://alice:s3cret-pw@127.0.0.1:{}/auth", http.port);
    let dest = sb.join("authed");
    let out = remote.git(
        &sb,
        Client::New,
        2,
        sb.path(),
        "clone",
        &["--no-progress", &remote.url("main.git"), dest.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out}");
    assert_mirrors(&sb, &dest, &served.repo("main.git"), "authenticated clone");
    let log = log_when(&http.log, |log| {
        log.lines().filter(|l| l.contains("user=alice") && l.contains("outcome=ok")).count() >= 3
    });
    assert!(!log.contains("s3cret"), "the password is in the log:\n{log}");
}

/// The shallow and partial scenarios above, run against git's own `git http-backend` under
/// the same Apache: they assert what git gives, so they are right to hold packserve to once
/// it serves shallow and filter requests.
mod scenarios_hold_for_git_http_backend {
    use super::*;
    fn setup_git(label: &str) -> (Sandbox, Served, HttpServer) {
        let sb = Sandbox::new(label);
        let served = Served::new(&sb);
        let http = HttpServer::start_with(&sb, &served, Backend::Git);
        (sb, served, http)
    }
    fn shallow(client: Client, protocol: u8) {
        let (sb, served, http) = setup_git("http-ref-shallow");
        git_shallow_clone(&sb, &http.remote(), &served, client, protocol);
    }
    fn partial(client: Client, protocol: u8) {
        let (sb, served, http) = setup_git("http-ref-partial");
        git_partial_clone(&sb, &http.remote(), &served, client, protocol);
    }
    client_tests!(shallow; shallow_git247_v0(New, 0), shallow_git247_v2(New, 2), shallow_git239_v0(Old, 0), shallow_git239_v2(Old, 2));
    client_tests!(partial; partial_git247_v2(New, 2), partial_git239_v0(Old, 0));
    #[test]
    fn dulwich_shallow() {
        let (sb, served, http) = setup_git("http-ref-dulwich-shallow");
        python_shallow_clone(&sb, &http.remote(), &served, "dulwich");
    }
    #[test]
    fn pygit2_shallow() {
        let (sb, served, http) = setup_git("http-ref-pygit2-shallow");
        python_shallow_clone(&sb, &http.remote(), &served, "pygit2");
    }
}
