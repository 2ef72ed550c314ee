//! Requests built to be expensive cost packserve no more than they cost git's upload-pack.
//!
//! Each request below is sent, byte for byte the same, to git's `git-upload-pack` and to
//! packserve (`--stateless-rpc`, protocol v2), and the test compares what each process used,
//! as GNU time reports it for the server and the children it waited for: CPU (user + system)
//! and peak RSS. packserve must stay within 1.5x of git's figure plus a slack for the tiny
//! requests (0.3 s of CPU, 24 MiB of RSS): generous margins, so that a loaded machine does not
//! make the test flaky, while the quadratic and per-line costs this file guards against (a
//! duplicate check by list, a scan of every ref per `deepen-not`/`want-ref` line, a rescan of
//! `objects/pack` per unknown `have`, every argument line stored before any is parsed) cost
//! many times git's figure at these sizes.
//!
//! The repository: 300 commits in 40 packs, 3,000 refs (packed), HEAD on main.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one server process used.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: f64,
    rss_mib: f64,
    status: i32,
    out_len: usize,
}

/// Runs `program --stateless-rpc repo` with `GIT_PROTOCOL=version=2` and `input` on stdin,
/// under GNU time: what the process tree used (CPU of the server and the children it waited
/// for, its peak RSS) and the output's first bytes (for messages). GNU time, a small process,
/// starts the server: a server forked from this (larger) test process would count the test's
/// own pages in its peak RSS.
fn measure(sb: &Sandbox, program: &Path, repo: &Path, input: &[u8]) -> (Usage, Vec<u8>) {
    let report = sb.unique("rusage");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%U %S %M %x")
        .arg("-o")
        .arg(&report)
        .arg(program)
        .arg("--stateless-rpc")
        .arg(repo)
        .env("GIT_PROTOCOL", "version=2")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start /usr/bin/time: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The server may stop reading at a bad line: not our failure.
        let _ = stdin.write_all(&data);
    });
    let mut err = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    child.wait().unwrap();
    writer.join().unwrap();
    let stderr = err_reader.join().unwrap();
    let text = std::fs::read_to_string(&report).unwrap();
    // A failing command makes GNU time write "Command exited with non-zero status N" first.
    let last = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = last.split_whitespace().collect();
    assert_eq!(f.len(), 4, "GNU time's report: {text:?}");
    let usage = Usage {
        cpu: f[0].parse::<f64>().unwrap() + f[1].parse::<f64>().unwrap(),
        rss_mib: f[2].parse::<f64>().unwrap() / 1024.0,
        status: f[3].parse().unwrap(),
        out_len: stdout.len(),
    };
    let mut shown = stdout;
    shown.truncate(300);
    shown.extend_from_slice(b"\n--- stderr:\n");
    shown.extend_from_slice(&stderr[..stderr.len().min(300)]);
    (usage, shown)
}

fn pkt(line: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", line.len() + 4).into_bytes();
    v.extend_from_slice(line.as_bytes());
    v
}

/// A v2 fetch request: the command, then `args` (each a line with its newline).
fn fetch_request(args: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut v = pkt("command=fetch\n");
    v.extend(pkt("object-format=sha1\n"));
    v.extend_from_slice(b"0001");
    for a in args {
        v.extend(pkt(&a));
    }
    v.extend_from_slice(b"0000");
    v
}

/// A made-up id, distinct per `i`, that no object has.
fn fake_id(i: usize) -> String {
    format!("{:040x}", 0xdead_0000_0000_u64 as usize + i * 7919)
}

/// 300 commits in 40 packs, 3,000 packed refs.
fn repository(sb: &Sandbox) -> PathBuf {
    let dir = sb.join("crafted.git");
    let lib = fixtures_dir().join("lib.sh");
    sb.sh(
        sb.path(),
        &format!(
            r#". "{lib}"
git init -q --bare crafted.git
cd crafted.git
git config uploadpack.allowRefInWant true
git symbolic-ref HEAD refs/heads/main
many_commits refs/heads/main 300
# 40 packs: each a slice of history, as pushes leave them.
for i in $(seq 1 40); do
	git rev-list --objects main~$((i * 7 - 7)) --not main~$((i * 7)) 2>/dev/null |
		git pack-objects -q objects/pack/pack >/dev/null
done
git rev-list --objects main~280 | git pack-objects -q objects/pack/pack >/dev/null
git prune-packed
for i in $(seq 1 3000); do echo "create refs/tags/t$i main~$((i % 250))"; done | git update-ref --stdin
git pack-refs --all
"#,
            lib = lib.display()
        ),
    );
    let packs = std::fs::read_dir(dir.join("objects/pack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert!(packs >= 40, "the fixture has {packs} packs");
    dir
}

/// Sends `req` to both servers, checks both end the same way (success or failure), and that
/// packserve's CPU and peak RSS are within the bounds.
fn within_git(sb: &Sandbox, repo: &Path, what: &str, req: &[u8]) {
    // The better of two runs each: the figures are small, a scheduler hiccup is not.
    let best = |program: &Path| {
        let (a, out) = measure(sb, program, repo, req);
        let (b, _) = measure(sb, program, repo, req);
        (Usage { cpu: a.cpu.min(b.cpu), rss_mib: a.rss_mib.min(b.rss_mib), ..a }, out)
    };
    let (git, git_out) = best(&reference_upload_pack());
    let (ours, our_out) = best(&server_under_test());
    eprintln!(
        "{what}: git {:.3} s {:.1} MiB exit {} ({} bytes) | packserve {:.3} s {:.1} MiB exit {} ({} bytes)",
        git.cpu, git.rss_mib, git.status, git.out_len, ours.cpu, ours.rss_mib, ours.status, ours.out_len
    );
    assert_eq!(
        ours.status == 0,
        git.status == 0,
        "{what}: git {} and packserve {} disagree on success:\ngit: {}\npackserve: {}",
        git.status,
        ours.status,
        String::from_utf8_lossy(&git_out),
        String::from_utf8_lossy(&our_out)
    );
    assert!(
        ours.cpu <= git.cpu * 1.5 + 0.3,
        "{what}: packserve used {:.3} s of CPU, git {:.3} s",
        ours.cpu,
        git.cpu
    );
    assert!(
        ours.rss_mib <= git.rss_mib * 1.5 + 24.0,
        "{what}: packserve peaked at {:.1} MiB, git at {:.1} MiB",
        ours.rss_mib,
        git.rss_mib
    );
}

#[test]
fn crafted_requests_cost_no_more_than_gits() {
    let sb = Sandbox::new("crafted");
    let repo = repository(&sb);
    let head = sb.rev_parse(&repo, "main");
    let want = || vec![format!("want {head}\n")];

    // Thousands of distinct shallow lines (unknown ids), with a deepen.
    let mut args = want();
    args.extend((0..20_000).map(|i| format!("shallow {}\n", fake_id(i))));
    args.extend(["deepen 1\n".to_owned(), "no-progress\n".to_owned(), "done\n".to_owned()]);
    within_git(&sb, &repo, "20,000 shallow lines", &fetch_request(args));

    // Many deepen-not lines, each naming a ref among 3,000.
    let mut args = want();
    args.extend((0..3_000).map(|i| format!("deepen-not refs/tags/t{}\n", 1 + i % 100)));
    args.extend(["no-progress\n".to_owned(), "done\n".to_owned()]);
    within_git(&sb, &repo, "3,000 deepen-not lines", &fetch_request(args));

    // Many want-ref lines.
    let mut args: Vec<String> = (0..3_000).map(|i| format!("want-ref refs/tags/t{}\n", 1 + i)).collect();
    args.extend(["no-progress\n".to_owned(), "done\n".to_owned()]);
    within_git(&sb, &repo, "3,000 want-ref lines", &fetch_request(args));

    // Unknown haves in a repository of 40 packs (negotiation only: no done).
    let mut args = want();
    args.extend((0..20_000).map(|i| format!("have {}\n", fake_id(i))));
    within_git(&sb, &repo, "20,000 unknown haves, 40 packs", &fetch_request(args));

    // Megabytes of tiny argument lines.
    let mut args = want();
    args.extend((0..300_000).map(|_| "ofs-delta\n".to_owned()));
    args.extend(["no-progress\n".to_owned(), "done\n".to_owned()]);
    within_git(&sb, &repo, "300,000 tiny argument lines", &fetch_request(args));

    // ... after a bad line: both stop there.
    let mut args = want();
    args.push("no-such-argument\n".to_owned());
    args.extend((0..300_000).map(|_| "ofs-delta\n".to_owned()));
    within_git(&sb, &repo, "a bad line, then 300,000 more", &fetch_request(args));
}
