//! Load, small: concurrent clones of a generated repository over the ssh front-end (sshd with
//! `packserve shell` forced) and the http front-end (Apache running `packserve http-backend`).
//! Every clone passes `git fsck --strict` with the server's refs; afterwards no packserve
//! process is left, nothing new is in the repository's `objects/`, the operator log has one
//! `outcome=ok` line per request and none other. `scripts/load` is the full-size run (32 clones
//! of the bench repository, with memory and time figures).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::servers::{log_when, HttpServer, Key, Remote, Served, SshServer};
use common::{manifest_dir, run, server_under_test, Client, Sandbox};

/// Concurrent clones per transport.
const CLONES: usize = 12;

fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// packserve processes serving `root` (named in their arguments or environment).
fn serving(root: &Path) -> Vec<u32> {
    let exe = server_under_test().canonicalize().unwrap();
    let marker = root.to_string_lossy().into_owned().into_bytes();
    let contains = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker.as_slice());
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_link(e.path().join("exe")).ok().as_deref() != Some(exe.as_path()) {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if contains(&cmdline) || contains(&environ) {
            pids.push(pid);
        }
    }
    pids
}

/// `CLONES` clones at once through `remote` (v0 and v2 alternating); each must succeed, pass
/// fsck and have the server's refs.
fn concurrent_clones(sb: &Sandbox, remote: &Remote, repo: &Path, server_refs: &[String]) {
    let dests: Vec<PathBuf> =
        (0..CLONES).map(|i| sb.join(format!("{}-clone-{i}", remote.transport))).collect();
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = dests
            .iter()
            .enumerate()
            .map(|(i, dest)| {
                s.spawn(move || {
                    let protocol = if i % 2 == 0 { 2 } else { 0 };
                    let args = ["--bare", "--no-progress", &remote.url("load.git"), dest.to_str().unwrap()];
                    (protocol, remote.git(sb, Client::New, protocol, sb.path(), "clone", &args))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((protocol, out), dest) in outputs.iter().zip(&dests) {
        assert!(out.status.success(), "{} clone v{protocol} failed:\n{out}", remote.transport);
        sb.fsck(dest);
        assert_eq!(
            refs(sb, dest),
            server_refs,
            "{} clone v{protocol} of {}",
            remote.transport,
            repo.display()
        );
    }
}

fn refs(sb: &Sandbox, repo: &Path) -> Vec<String> {
    sb.git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]).lines().map(str::to_owned).collect()
}

#[test]
fn concurrent_clones_over_ssh_and_http_leave_nothing_behind() {
    let sb = Sandbox::new("load");
    let served = Served::new(&sb);
    let repo = served.repo("load.git");
    let mut cmd = sb.command(manifest_dir().join("scripts/gen-repo"));
    cmd.arg(&repo).args(["--objects", "3000", "--state", "bitmap"]);
    run(cmd, None).assert_success();
    std::fs::write(repo.join("git-daemon-export-ok"), "").unwrap();
    let server_refs = refs(&sb, &repo);
    let objects_before = listing(&repo.join("objects"));

    let ssh = SshServer::start(&sb, &served);
    let http = HttpServer::start(&sb, &served);
    concurrent_clones(&sb, &ssh.remote(Key::Forced), &repo, &server_refs);
    concurrent_clones(&sb, &http.remote(), &repo, &server_refs);

    // Every request logged once it ends, all ok.
    let lines = |text: &str| text.lines().filter(|l| l.contains("load.git")).count();
    let ssh_log = log_when(&ssh.log, |t| lines(t) >= CLONES);
    // Over http a v2 clone is three requests (advertisement, ls-refs, fetch), a v0 clone two.
    let http_log = log_when(&http.log, |t| lines(t) >= CLONES / 2 * 5);
    for (name, log) in [("ssh", &ssh_log), ("http", &http_log)] {
        let bad: Vec<&str> = log.lines().filter(|l| !l.contains("outcome=ok")).collect();
        assert!(bad.is_empty(), "{name}: requests not ok:\n{}", bad.join("\n"));
    }
    assert_eq!(lines(&ssh_log), CLONES, "{ssh_log}");
    assert_eq!(lines(&http_log), CLONES / 2 * 5, "{http_log}");

    // No server process left, nothing left in objects/.
    let start = Instant::now();
    let mut left = serving(&served.root);
    while !left.is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        left = serving(&served.root);
    }
    assert!(left.is_empty(), "packserve processes still running: {left:?}");
    let objects_after = listing(&repo.join("objects"));
    assert_eq!(objects_after, objects_before, "files appeared in or vanished from objects/");
}
