//! Admission control (`packserve.limit.*`) through real servers: a pack request over the
//! limit waits in the queue, then is refused clearly (`ERR` over ssh, `503` with `Retry-After`
//! over HTTP); ls-refs and no-op fetches never wait; a slot is freed when its holder is killed.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;
use packserve::host::slots::{admit, Admission, Admitted};
use packserve::host::LimitConfig;

/// A slot directory anyone can write (Apache runs the CGI as www-data).
fn slot_dir(sb: &Sandbox) -> PathBuf {
    let d = sb.join("slots");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    d
}

/// One pack request at a time on the host, waiting `queue` seconds.
fn limit(sb: &Sandbox, repo: &Path, dir: &Path, queue: u64) {
    sb.git(repo, &["config", "packserve.limit.dir", &dir.display().to_string()]);
    sb.git(repo, &["config", "packserve.limit.perHost", "1"]);
    sb.git(repo, &["config", "packserve.limit.queueTimeout", &queue.to_string()]);
}

/// Takes the host's only slot from this process (as a running clone would hold it).
fn hold_slot(dir: &Path) -> Admitted {
    let cfg = LimitConfig { dir: Some(dir.to_owned()), per_host: 1, ..Default::default() };
    match admit(&cfg, "test") {
        Admission::Admitted(a, _) => a,
        other => panic!("cannot take the slot: {other:?}"),
    }
}

#[test]
fn over_ssh_the_queue_then_a_clear_refusal() {
    let sb = Sandbox::new("admit-ssh");
    let served = Served::new(&sb);
    let ssh = SshServer::start(&sb, &served);
    let remote = ssh.remote(Key::Forced);
    let repo = served.repo("main.git");
    let dir = slot_dir(&sb);
    // A clone made before the limit, for the no-op fetch.
    let early = sb.join("early");
    remote
        .git(
            &sb,
            Client::New,
            2,
            sb.path(),
            "clone",
            &["--no-progress", &remote.url("main.git"), &early.display().to_string()],
        )
        .assert_success();
    limit(&sb, &repo, &dir, 4);
    let slot = hold_slot(&dir);
    for protocol in [0u8, 2] {
        // ls-refs / the advertisement and a fetch with nothing to send never wait.
        let start = Instant::now();
        remote
            .git(&sb, Client::New, protocol, sb.path(), "ls-remote", &[&remote.url("main.git")])
            .assert_success();
        remote
            .git(&sb, Client::New, protocol, &early, "fetch", &["--no-progress", "origin"])
            .assert_success();
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "ls-remote and no-op fetch waited {:?}",
            start.elapsed()
        );
        // A clone waits its 2 seconds, then is refused in words.
        let start = Instant::now();
        let dest = sb.join(format!("refused-v{protocol}"));
        let out = remote.git(
            &sb,
            Client::New,
            protocol,
            sb.path(),
            "clone",
            &["--no-progress", &remote.url("main.git"), &dest.display().to_string()],
        );
        assert!(!out.status.success(), "clone over the limit succeeded");
        assert!(start.elapsed() >= Duration::from_secs(4), "refused before the queue timeout");
        assert!(out.stderr_str().contains("server busy"), "v{protocol}: {}", out.stderr_str());
    }
    let log = log_when(&ssh.log, |t| t.matches("outcome=refused").count() >= 2);
    assert!(log.lines().any(|l| l.contains("outcome=refused") && l.contains("queue_ms=4")), "{log}");
    // Queued, then served once the slot frees.
    let dest = sb.join("queued");
    let start = Instant::now();
    let t = std::thread::scope(|s| {
        let h = s.spawn(|| {
            sb.git(&repo, &["config", "packserve.limit.queueTimeout", "30"]);
            remote.git(
                &sb,
                Client::New,
                2,
                sb.path(),
                "clone",
                &["--no-progress", &remote.url("main.git"), &dest.display().to_string()],
            )
        });
        std::thread::sleep(Duration::from_millis(1500));
        drop(slot);
        h.join().unwrap()
    });
    t.assert_success();
    assert!(start.elapsed() >= Duration::from_millis(1500));
    sb.fsck(&dest);
    // It waited (the ssh handshake took part of the 1.5 s before it asked for a slot).
    let waited = |l: &str| {
        l.split(' ')
            .find_map(|f| f.strip_prefix("queue_ms="))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let log = log_when(&ssh.log, |t| t.lines().any(|l| l.contains("outcome=ok") && waited(l) >= 100));
    assert!(log.lines().any(|l| l.contains("outcome=ok") && waited(l) >= 100), "{log}");
}

#[test]
fn over_http_a_503_with_retry_after() {
    let sb = Sandbox::new("admit-http");
    let served = Served::new(&sb);
    let http = HttpServer::start(&sb, &served);
    let remote = http.remote();
    let repo = served.repo("main.git");
    let dir = slot_dir(&sb);
    limit(&sb, &repo, &dir, 1);
    let _slot = hold_slot(&dir);
    remote.git(&sb, Client::New, 2, sb.path(), "ls-remote", &[&remote.url("main.git")]).assert_success();
    let dest = sb.join("refused");
    let out = remote.git(
        &sb,
        Client::New,
        2,
        sb.path(),
        "clone",
        &["--no-progress", &remote.url("main.git"), &dest.display().to_string()],
    );
    assert!(!out.status.success());
    assert!(out.stderr_str().contains("503"), "{}", out.stderr_str());
    // The raw answer: status, Retry-After, the reason in the body.
    let head = sb.rev_parse(&repo, "main");
    let body = common::pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        &format!("want {head}"),
        "done",
        "0000",
    ]);
    let req = sb.join("req");
    std::fs::write(&req, body).unwrap();
    let mut cmd = sb.command("curl");
    cmd.args([
        "-s",
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-git-upload-pack-request",
        "-H",
        "Git-Protocol: version=2",
        "--data-binary",
    ])
    .arg(format!("@{}", req.display()))
    .arg(format!("{}/git-upload-pack", remote.url("main.git")));
    let out = run(cmd, None).assert_success().stdout_str();
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("Retry-After: 1\r\n"), "{out}");
    assert!(out.contains("server busy"), "{out}");
    let log = log_when(&http.log, |t| t.contains("outcome=refused"));
    assert!(log.contains("reason=\"503 server busy"), "{log}");
}

/// A bare repository whose pack does not fit in a pipe.
fn big_repo(sb: &Sandbox) -> PathBuf {
    sb.sh(
        sb.path(),
        "git init -q --bare big.git && git init -q big-work && cd big-work && \
         head -c 3000000 /dev/urandom > blob && git add blob && git commit -qm one && \
         git push -q ../big.git HEAD:refs/heads/main && git -C ../big.git symbolic-ref HEAD refs/heads/main",
    );
    sb.join("big.git")
}

#[test]
fn a_killed_request_frees_its_slot() {
    let sb = Sandbox::new("admit-kill");
    let repo = big_repo(&sb);
    let dir = slot_dir(&sb);
    limit(&sb, &repo, &dir, 1);
    let oid = sb.rev_parse(&repo, "main");
    let body = common::pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        &format!("want {oid}"),
        "done",
        "0000",
    ]);
    let spawn = || {
        let mut cmd = sb.command(server_under_test());
        cmd.arg("--stateless-rpc").arg(&repo).env("GIT_PROTOCOL", "version=2");
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        child
    };
    // Its client does not read: it holds the slot while blocked on its output.
    let mut holder = spawn();
    let mut first = [0u8; 4];
    holder.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    let (out, _) = finish(spawn());
    assert!(String::from_utf8_lossy(&out).contains("server busy"), "{}", String::from_utf8_lossy(&out));
    holder.kill().unwrap();
    let _ = holder.wait();
    let start = Instant::now();
    let (out, ok) = finish(spawn());
    assert!(ok, "{}", String::from_utf8_lossy(&out));
    assert!(start.elapsed() < Duration::from_secs(1), "waited for a dead holder's slot");
    let r = common::pktline::parse_fetch_response(&out);
    assert!(r.band3.is_empty() && !r.pack.is_empty());
}

fn finish(mut child: std::process::Child) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    (out, child.wait().unwrap().success())
}
