//! Clients that go away, stall, or are stopped: a client that closes its end in the middle of
//! the pack (EPIPE: quiet exit 141), SIGTERM while streaming or waiting (prompt exit by the
//! signal), a stalled reader with `--timeout` (git's alarm, with a message), no child
//! processes and no temporary files left behind by any front-end; and the front-ends'
//! envelopes with lying or broken input (CGI body, SSH command, git:// request line).

mod common;

use common::pktline;
use common::*;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A server process whose pipes the test drives by hand.
struct Proc {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::process::ChildStdout>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().expect("spawn server");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut e = child.stderr.take().unwrap();
        let err = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = e.read_to_end(&mut v);
            v
        });
        Proc { child, stdin, stdout, err: Some(err) }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, data: &[u8]) {
        let w = self.stdin.as_mut().unwrap();
        w.write_all(data).unwrap();
        w.flush().unwrap();
    }

    /// Reads exactly `n` bytes of stdout.
    fn read(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.stdout.as_mut().unwrap().read_exact(&mut buf).expect("read server output");
        buf
    }

    /// Reads pkt-lines up to and including the first flush (an advertisement).
    fn read_to_flush(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let hdr = self.read(4);
            all.extend_from_slice(&hdr);
            let n = usize::from_str_radix(std::str::from_utf8(&hdr).unwrap(), 16).unwrap();
            if n == 0 {
                return all;
            }
            all.extend(self.read(n - 4));
        }
    }

    /// Waits at most `limit` for the exit; kills the group and fails after that.
    fn wait(mut self, limit: Duration) -> (ExitStatus, Duration, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let elapsed = start.elapsed();
                drop(self.stdin.take());
                drop(self.stdout.take());
                let err = self.err.take().unwrap().join().unwrap();
                return (status, elapsed, String::from_utf8_lossy(&err).into_owned());
            }
            if start.elapsed() > limit {
                let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.pid())]).status();
                let _ = self.child.wait();
                panic!("server still running {limit:?} after the event (killed)");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.pid())]).status();
            let _ = self.child.wait();
        }
    }
}

/// Processes whose parent is `pid` (from /proc; threads are not processes).
fn children(pid: u32) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else { continue };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            v.push(stat.split(' ').take(2).collect::<Vec<_>>().join(" "));
        }
    }
    v
}

/// Files below `dir` (recursively), for "nothing left behind" checks.
fn files(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else { return v };
    for e in rd.flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            v.extend(files(&p));
        } else {
            v.push(p.display().to_string());
        }
    }
    v.sort();
    v
}

/// The request for a full clone of `tip` without progress (the pack is the only traffic).
fn clone_request(protocol: u8, tip: &str) -> Vec<u8> {
    if protocol == 2 {
        pktline::request(&["command=fetch", "0001", &format!("want {tip}"), "no-progress", "done", "0000"])
    } else {
        pktline::request(&[&format!("want {tip} side-band-64k ofs-delta no-progress"), "0000", "done"])
    }
}

/// The server under test on `repo` (a 10 MiB pack: far more than a pipe holds), with its own
/// TMPDIR, the request sent and the advertisement read.
fn streaming(sb: &Sandbox, repo: &Path, protocol: u8, args: &[&str]) -> Proc {
    let tmp = sb.join("server-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = sb.command(server_under_test());
    cmd.args(args).arg(repo).env("TMPDIR", &tmp);
    if protocol == 2 {
        cmd.env("GIT_PROTOCOL", "version=2");
    }
    let mut p = Proc::spawn(cmd);
    p.read_to_flush();
    p.send(&clone_request(protocol, &sb.rev_parse(repo, "main")));
    p
}

/// The client reads part of the pack and closes its end: the server ends quietly, promptly,
/// with 141 (what a shell reports for SIGPIPE, as git's upload-pack dies of it).
fn client_goes_away(protocol: u8) {
    let sb = Sandbox::new("hostile-epipe");
    let repo = fixture("bigblob");
    let mut p = streaming(&sb, &repo, protocol, &[]);
    let part = p.read(32 * 1024);
    assert!(part.windows(4).any(|w| w == b"PACK"), "no pack started in the first 32 KiB");
    drop(p.stdout.take());
    let (status, elapsed, err) = p.wait(Duration::from_secs(10));
    eprintln!("v{protocol}: exited {status} {elapsed:?} after the client closed its end");
    assert_eq!(status.code(), Some(141), "exit status: {status}; stderr: {err}");
    assert_eq!(err, "", "stderr after the client went away");
    assert!(files(&sb.join("server-tmp")).is_empty(), "temp files left: {:?}", files(&sb.join("server-tmp")));
}

#[test]
fn client_closes_mid_pack_v0() {
    client_goes_away(0)
}

#[test]
fn client_closes_mid_pack_v2() {
    client_goes_away(2)
}

/// SIGTERM while the server is blocked writing the pack (the client stopped reading) and
/// while it waits for the request: it ends by the signal at once, with no children and no
/// temporary files.
#[test]
fn sigterm_stops_promptly() {
    let sb = Sandbox::new("hostile-sigterm");
    let repo = fixture("bigblob");
    let before = files(&repo);
    for (what, protocol, request) in
        [("streaming v0", 0, true), ("streaming v2", 2, true), ("idle v0", 0, false)]
    {
        let p = if request {
            let mut p = streaming(&sb, &repo, protocol, &[]);
            p.read(16 * 1024);
            p
        } else {
            let mut cmd = sb.command(server_under_test());
            cmd.arg(&repo);
            let mut p = Proc::spawn(cmd);
            p.read_to_flush();
            p
        };
        std::thread::sleep(Duration::from_millis(300));
        // The /proc scan sees processes: the server is a child of this test process.
        let ours = children(std::process::id());
        assert!(
            ours.iter().any(|c| c.starts_with(&format!("{} ", p.pid()))),
            "{what}: scan missed the server: {ours:?}"
        );
        assert_eq!(children(p.pid()), Vec::<String>::new(), "{what}: child processes");
        Command::new("kill").args(["-TERM", &p.pid().to_string()]).status().unwrap();
        let (status, elapsed, err) = p.wait(Duration::from_secs(5));
        eprintln!("{what}: SIGTERM -> {status} after {elapsed:?}");
        assert_eq!(status.signal(), Some(15), "{what}: {status}; stderr: {err}");
        assert!(elapsed < Duration::from_secs(2), "{what}: {elapsed:?} to stop after SIGTERM");
        assert!(!err.contains("panicked"), "{what}: {err}");
    }
    assert_eq!(files(&repo), before, "files changed in the repository");
    assert!(files(&sb.join("server-tmp")).is_empty(), "temp files left");
}

/// A client that stops reading mid-pack with `--timeout=1`: dropped after about a second
/// with a message (git's upload-pack is killed by SIGALRM, exit 142, silently).
#[test]
fn stalled_reader_times_out() {
    let sb = Sandbox::new("hostile-stalled");
    let repo = fixture("bigblob");
    for protocol in [0, 2] {
        let mut p = streaming(&sb, &repo, protocol, &["--timeout=1"]);
        p.read(16 * 1024);
        let (status, elapsed, err) = p.wait(Duration::from_secs(10));
        eprintln!("v{protocol}: stalled reader dropped after {elapsed:?} ({status})");
        assert_eq!(status.code(), Some(128), "{status}: {err}");
        assert_eq!(err, "fatal: timeout after 1s of inactivity\n");
        assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}

/// A stalled writer (the request never completes) in v2 and stateless v2: the same.
#[test]
fn stalled_writer_times_out_in_v2() {
    let sb = Sandbox::new("hostile-stalled-v2");
    let repo = fixture("linear");
    for args in [&["--timeout=1"][..], &["--timeout=1", "--stateless-rpc"]] {
        let mut cmd = sb.command(server_under_test());
        cmd.args(args).arg(&repo).env("GIT_PROTOCOL", "version=2");
        let mut p = Proc::spawn(cmd);
        if args.len() == 1 {
            p.read_to_flush();
        }
        p.send(&pktline::request(&["command=fetch"]));
        let (status, elapsed, err) = p.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(128), "{args:?}: {status}: {err}");
        assert_eq!(err, "fatal: timeout after 1s of inactivity\n", "{args:?}");
        assert!(elapsed >= Duration::from_millis(900), "{args:?}: {elapsed:?}");
    }
}

// ---------------------------------------------------------------------------
// Front-ends

/// A directory of served repositories with `r.git` (a bare copy of `bigblob`), exported.
fn served_root(sb: &Sandbox) -> std::path::PathBuf {
    let root = sb.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut cmd = sb.command(Client::New.program());
    cmd.args(["clone", "-q", "--bare"]).arg(fixture("bigblob")).arg(root.join("r.git"));
    run(cmd, None).assert_success();
    std::fs::write(root.join("r.git/git-daemon-export-ok"), b"").unwrap();
    root
}

fn cgi_env(cmd: &mut Command, root: &Path, extra: &[(&str, &str)]) {
    cmd.arg("http-backend")
        .env("REQUEST_METHOD", "POST")
        .env("PATH_INFO", "/r.git/git-upload-pack")
        .env("GIT_PROJECT_ROOT", root)
        .env("CONTENT_TYPE", "application/x-git-upload-pack-request")
        .env("GIT_PROTOCOL", "version=2");
    for (k, v) in extra {
        cmd.env(k, v);
    }
}

/// Every front-end while it streams a pack to a client that stopped reading: no child
/// processes; SIGTERM ends it at once; no temp files.
#[test]
fn front_ends_leave_nothing_behind() {
    let sb = Sandbox::new("hostile-frontends-term");
    let root = served_root(&sb);
    let tip = sb.rev_parse(&root.join("r.git"), "main");
    let tmp = sb.join("fe-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let v2 = clone_request(2, &tip);
    let line = "git-upload-pack /r.git\0host=localhost\0\0version=2\0";
    let daemon_line = pktline::data(line);
    for fe in ["shell", "inetd", "http-backend"] {
        let mut cmd = sb.command(server_under_test());
        cmd.env("TMPDIR", &tmp);
        let mut input = Vec::new();
        match fe {
            "shell" => {
                cmd.args(["shell", "--root"]).arg(&root);
                cmd.env("SSH_ORIGINAL_COMMAND", "git-upload-pack 'r.git'").env("GIT_PROTOCOL", "version=2");
            }
            "inetd" => {
                cmd.args(["inetd", "--base-path"]).arg(&root);
                input.extend_from_slice(&daemon_line);
            }
            _ => {
                cgi_env(&mut cmd, &root, &[("CONTENT_LENGTH", &v2.len().to_string())]);
            }
        }
        let mut p = Proc::spawn(cmd);
        if !input.is_empty() {
            p.send(&input);
        }
        if fe != "http-backend" {
            p.read_to_flush();
        }
        p.send(&v2);
        p.read(16 * 1024);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(children(p.pid()), Vec::<String>::new(), "{fe}: child processes");
        Command::new("kill").args(["-TERM", &p.pid().to_string()]).status().unwrap();
        let (status, elapsed, err) = p.wait(Duration::from_secs(5));
        eprintln!("{fe}: SIGTERM -> {status} after {elapsed:?}");
        assert_eq!(status.signal(), Some(15), "{fe}: {status}; {err}");
        assert!(elapsed < Duration::from_secs(2), "{fe}: {elapsed:?}");
    }
    assert!(files(&tmp).is_empty(), "temp files left: {:?}", files(&tmp));
}

/// Runs a front-end with `input`, bounded in time; returns status, stdout, stderr.
fn front_end(sb: &Sandbox, cmd: Command, input: &[u8]) -> (ExitStatus, Vec<u8>, String) {
    let mut p = Proc::spawn(cmd);
    let mut out = p.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let _ = p.stdin.as_mut().unwrap().write_all(input);
    drop(p.stdin.take());
    let (status, _, err) = p.wait(Duration::from_secs(20));
    let _ = sb;
    (status, reader.join().unwrap(), err)
}

const CGI_HEAD: &str = "Expires: Fri, 01 Jan 1980 00:00:00 GMT\r\nPragma: no-cache\r\nCache-Control: no-cache, max-age=0, must-revalidate\r\nContent-Type: application/x-git-upload-pack-result\r\n\r\n";

/// A CGI case: name, extra variables, body, the message on stderr.
type CgiCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);

/// The CGI body lies or is broken: after the 200 header nothing is sent, the error is on
/// stderr (the web server's log) and the status is 128. git http-backend says the same for
/// a short body (exit 1) and "request ended in the middle of the gzip stream" (exit 0) for
/// broken gzip.
#[test]
fn http_backend_bodies() {
    let sb = Sandbox::new("hostile-cgi");
    let root = served_root(&sb);
    let body = pktline::request(&["command=ls-refs", "0001", "0000"]);
    let gz_bad = b"\x1f\x8b\x08\x00garbage!".to_vec();
    let short = (body.len() - 5).to_string();
    let cases: Vec<CgiCase> = vec![
        (
            "content-length-too-short",
            vec![("CONTENT_LENGTH", &short)],
            body.clone(),
            "the remote end hung up unexpectedly",
        ),
        (
            "broken-gzip",
            vec![("CONTENT_LENGTH", "12"), ("HTTP_CONTENT_ENCODING", "gzip")],
            gz_bad,
            "incomplete deflate stream",
        ),
        (
            "body-ends-early",
            vec![("CONTENT_LENGTH", "4000")],
            body[..10].to_vec(),
            "the remote end hung up unexpectedly",
        ),
    ];
    for (name, env, input, msg) in cases {
        let mut cmd = sb.command(server_under_test());
        cgi_env(&mut cmd, &root, &env);
        let (status, out, err) = front_end(&sb, cmd, &input);
        assert_eq!(String::from_utf8_lossy(&out), CGI_HEAD, "{name}: stdout");
        assert_eq!(status.code(), Some(128), "{name}: {status}");
        assert!(err.ends_with(&format!("fatal: {msg}\n")), "{name}: stderr {err:?}");
        assert!(err.contains(&format!("outcome=error reason=\"{msg}\"")), "{name}: log line {err:?}");
    }
    // CONTENT_LENGTH that is not a number: 400 before anything is read (git: 500 after a 200).
    let mut cmd = sb.command(server_under_test());
    cgi_env(&mut cmd, &root, &[("CONTENT_LENGTH", "-5")]);
    let (status, out, _) = front_end(&sb, cmd, &body);
    assert!(String::from_utf8_lossy(&out).starts_with("Status: 400 Bad Request\r\n"), "{out:?}");
    assert!(status.success());
}

/// Garbage forced commands: `fatal:` and 128, nothing on stdout.
#[test]
fn shell_commands() {
    let sb = Sandbox::new("hostile-shell");
    let root = served_root(&sb);
    for (command, msg) in [
        ("rm -rf /", "unrecognized command 'rm -rf /'"),
        ("", "unrecognized command ''"),
        ("git-upload-pack 'r.git", "bad argument: expected one single-quoted path, as git sends it"),
        (
            "git-receive-pack 'r.git'",
            "packserve serves fetches only: 'git-receive-pack' is not available here",
        ),
    ] {
        let mut cmd = sb.command(server_under_test());
        cmd.args(["shell", "--root"]).arg(&root).env("SSH_ORIGINAL_COMMAND", command);
        let (status, out, err) = front_end(&sb, cmd, b"");
        assert_eq!(status.code(), Some(128), "{command:?}");
        assert!(out.is_empty(), "{command:?}: {out:?}");
        assert_eq!(err, format!("fatal: {msg}\n"), "{command:?}");
    }
}

/// Bad git:// request lines: an ERR line where git daemon sends one, else silence; 128.
#[test]
fn inetd_request_lines() {
    let sb = Sandbox::new("hostile-inetd");
    let root = served_root(&sb);
    let err_line = |s: &str| pktline::data(s);
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "not-a-request",
            pktline::data("hello world\0"),
            err_line("ERR protocol error: expected 'git-upload-pack <path>'"),
        ),
        ("flush-instead-of-request", b"0000".to_vec(), Vec::new()),
        ("length-not-hex", b"zzzz".to_vec(), Vec::new()),
        ("eof-in-header", b"00".to_vec(), Vec::new()),
        ("nothing", Vec::new(), Vec::new()),
        (
            "garbage-after-request",
            [pktline::data("git-upload-pack /r.git\0host=x\0"), b"garbage".to_vec()].concat(),
            Vec::new(),
        ),
    ];
    for (name, input, want) in cases {
        let mut cmd = sb.command(server_under_test());
        cmd.args(["inetd", "--informative-errors", "--base-path"]).arg(&root);
        let (status, out, err) = front_end(&sb, cmd, &input);
        assert_eq!(status.code(), Some(128), "{name}: {status}; {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        if name == "garbage-after-request" {
            // The advertisement, then nothing after the error.
            let (pkts, used) = pktline::parse_prefix(&out);
            assert_eq!(used, out.len(), "{name}");
            assert_eq!(pkts.last(), Some(&pktline::Pkt::Flush), "{name}");
            assert!(err.contains("bad line length character: garb"), "{name}: {err}");
        } else {
            assert_eq!(out, want, "{name}: {:?}", String::from_utf8_lossy(&out));
        }
    }
}
