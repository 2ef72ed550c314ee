//! Where packserve must answer exactly as git's own upload-pack (2.47) does, found by comparing
//! the two from outside (issue 11): naming the repository from any working directory, broken
//! refs, every point at which a stateless or stateful request may end, bytes after a complete
//! v2 request, `lsrefs.unborn`, `GIT_TRACE_BARE` and `GIT_USER_AGENT`, malformed configuration
//! values from every source, and more than 65536 `ref-prefix` lines.
//!
//! Every test runs git's upload-pack and the server under test on the same input, in the same
//! directory, with the same environment (`GIT_USER_AGENT` fixed, so that advertisements compare
//! byte for byte) and compares exit status, stdout and stderr. Where packs are sent, their
//! bytes (band 1) are shown as `<pack>` and progress (band 2) is dropped: the two servers
//! build different but equivalent packs. The few deliberate differences are asserted as such,
//! with the reason.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::{Path, PathBuf};

/// The agent both servers announce in these tests (`GIT_USER_AGENT`).
const AGENT: &str = "conformance/1";

/// The exit status as a shell reports it (128 + n for signal n).
fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status.code().unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// Runs `server` as upload-pack in `cwd` with `args`, `env` (on top of the sandbox's, with
/// `GIT_USER_AGENT` fixed) and `stdin`.
fn upload_pack(
    sb: &Sandbox,
    server: Server,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut cmd = sb.command(server.program());
    cmd.current_dir(cwd).args(args).env("GIT_USER_AGENT", AGENT);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, Some(stdin))
}

/// git's upload-pack and the server under test on the same input: `[git, ours]`.
fn both(sb: &Sandbox, cwd: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> [Output; 2] {
    BOTH.map(|server| upload_pack(sb, server, cwd, args, env, stdin))
}

/// stdout as comparable text: pkt-lines one per line (`0000`, `0001`, `0002` for the special
/// ones, `\0` for NUL), each run of band-1 packets as `<pack>`, band 2 dropped, band 3 shown;
/// bytes that are not pkt-lines as `<n raw bytes>`.
fn shown(stdout: &[u8]) -> String {
    let (pkts, used) = pktline::parse_prefix(stdout);
    let mut out = String::new();
    let mut in_pack = false;
    for p in &pkts {
        match p {
            Pkt::Data(d) if d.first() == Some(&1) && (in_pack || d[1..].starts_with(b"PACK")) => {
                if !in_pack {
                    out.push_str("<pack>\n");
                }
                in_pack = true;
            }
            Pkt::Data(d) if d.first() == Some(&2) && in_pack => {}
            Pkt::Data(d) if d.first() == Some(&3) => {
                out.push_str(&format!("<band 3> {}\n", String::from_utf8_lossy(&d[1..])))
            }
            Pkt::Data(d) => {
                let text = String::from_utf8_lossy(d).replace('\0', "\\0").replace('\n', "⏎");
                // Session ids differ by process; only their place is compared.
                let text = match text.find("session-id=") {
                    Some(i) => {
                        let end = text[i..].find([' ', '⏎']).map_or(text.len(), |e| i + e);
                        format!("{}session-id=<id>{}", &text[..i], &text[end..])
                    }
                    None => text,
                };
                out.push_str(&text);
                out.push('\n');
            }
            Pkt::Flush => out.push_str("0000\n"),
            Pkt::Delim => out.push_str("0001\n"),
            Pkt::ResponseEnd => out.push_str("0002\n"),
        }
    }
    if used < stdout.len() {
        out.push_str(&format!("<{} raw bytes>\n", stdout.len() - used));
    }
    out
}

/// Asserts that the server under test answered exactly as git: exit status, stdout (packs
/// shown as `<pack>`), stderr.
#[track_caller]
fn assert_same(what: &str, [git, ours]: &[Output; 2]) {
    let (g, o) = (shown(&git.stdout), shown(&ours.stdout));
    assert!(
        code(git) == code(ours) && g == o && git.stderr == ours.stderr,
        "{what}: packserve differs from git's upload-pack\n--- git: exit {} ---\n{g}--- stderr ---\n{}\n--- packserve: exit {} ---\n{o}--- stderr ---\n{}",
        code(git),
        git.stderr_str(),
        code(ours),
        ours.stderr_str()
    );
}

fn git_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    sb.git(dir, args).trim().to_owned()
}

// ---------------------------------------------------------------------------
// 5. GIT_TRACE_BARE, GIT_USER_AGENT

/// With `GIT_TRACE_BARE` the packet trace has no time and file prefix: byte for byte git's
/// trace, in v0, v1 and v2; values git does not take for true leave the prefix (and an
/// unknown value gets git's warning).
#[test]
fn trace_bare_like_git() {
    let sb = Sandbox::new("conf-trace-bare");
    let repo = fixture("tags");
    let r = repo.to_str().unwrap();
    let main = sb.rev_parse(&repo, "main");
    let ls = pktline::request(&["command=ls-refs", "0001", "peel", "symrefs", "0000"]);
    let fetch = pktline::request(&[&format!("want {main} side-band-64k no-progress"), "0000", "done"]);
    for bare in ["1", "true", "TRUE", "2"] {
        for (how, args, proto, input) in [
            ("v0 advertisement", vec!["--advertise-refs", r], "", Vec::new()),
            ("v1 advertisement", vec!["--advertise-refs", r], "version=1", Vec::new()),
            ("v2 ls-refs", vec!["--stateless-rpc", r], "version=2", ls.clone()),
            ("v0 fetch", vec!["--stateless-rpc", r], "", fetch.clone()),
        ] {
            let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", bare), ("GIT_PROTOCOL", proto)];
            let runs = both(&sb, sb.path(), &args, &env, &input);
            assert_same(&format!("GIT_TRACE_BARE={bare} {how}"), &runs);
            assert!(runs[1].stderr_str().starts_with("packet:  upload-pack"), "{how}: {}", runs[1]);
        }
    }
    for bare in ["0", "false", ""] {
        let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", bare)];
        let [git, ours] = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
        for o in [&git, &ours] {
            assert!(
                o.stderr_str().lines().all(|l| l.contains(" pkt-line.c:")),
                "GIT_TRACE_BARE={bare:?}: {o}"
            );
        }
    }
    let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", "yes")];
    let [git, ours] = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
    let warning = |o: &Output| o.stderr_str().lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(git.stderr_str().starts_with("warning: unknown trace value for 'GIT_TRACE_BARE': yes"), "{git}");
    assert_eq!(warning(&ours), warning(&git));
}

/// `GIT_USER_AGENT` is the `agent=` value, sanitized as git does (surrounding whitespace
/// trimmed, other bytes outside `!`..`~` as `.`), in v0, v1 and v2; unset, packserve's own.
#[test]
fn user_agent_like_git() {
    let sb = Sandbox::new("conf-agent");
    let repo = fixture("tags");
    let r = repo.to_str().unwrap();
    for agent in ["my-server/1.0", " spaced agent\t", "caf\u{e9}/\u{1}2", ""] {
        for proto in ["", "version=1", "version=2"] {
            let env = [("GIT_USER_AGENT", agent), ("GIT_PROTOCOL", proto)];
            let runs = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
            assert_same(&format!("GIT_USER_AGENT={agent:?} {proto}"), &runs);
        }
    }
    let out = sb.serve(Server::UnderTest, &["--advertise-refs", r], Some("version=2"), None);
    assert!(
        out.stdout_str().contains(&format!("agent={}", expected_agent_prefix().trim_start_matches("agent="))),
        "{out}"
    );
}

