//! Hostile input: malformed and abusive requests, each with its exact answer. For every case
//! the server under test must give the expected packets after its advertisement (an `ERR`
//! line where git sends one, and nothing after it), the expected stderr (`fatal: ...`), the
//! expected exit status, no panic, and finish well within a bound. Where git's own
//! upload-pack (2.47, and 2.39 where it is installed) answers clearly, the case also says
//! whether git answers the same, or how and why it differs (see `Git::Differs`).
//!
//! The limits (`packserve.max*`, `--max-*`) are at the end; signals, broken pipes, stalled
//! clients and the front-ends' envelopes are in `tests/hostile_signals.rs`.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// Longest any single case may take (every case here ends in milliseconds).
const BOUND: Duration = Duration::from_secs(20);

/// How the server is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    V0,
    V1,
    V2,
    /// `--stateless-rpc`, v0 (no advertisement).
    StatelessV0,
    /// `--stateless-rpc`, v2 (no advertisement).
    StatelessV2,
}

/// What git's upload-pack does with the same input.
pub enum Git {
    /// The same packets, stderr and exit status.
    Same,
    /// Deliberately different; git's stderr and exit status, and why we differ.
    Differs { stderr: &'static str, code: i32, why: &'static str },
    /// Not compared: packserve's own flags or keys (git has no such limits).
    Ours,
}

/// The answer expected from the server under test.
pub struct Expect {
    /// Packets after the advertisement, rendered (data lines as text without newline;
    /// `0000`/`0001`; band data as `<band n>`).
    pub out: Vec<String>,
    pub stderr: String,
    pub code: i32,
}

pub struct Case {
    pub name: &'static str,
    pub mode: Mode,
    pub input: Vec<u8>,
    pub expect: Expect,
    pub git: Git,
}

/// One run of a server: status, stdout, stderr.
pub struct Run {
    pub status: ExitStatus,
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Starts `cmd`, feeds `input` from a thread (the server may stop reading early), closes
/// stdin, and waits at most [`BOUND`] (killing the process group and failing after that).
pub fn exchange(cmd: Command, input: &[u8]) -> Run {
    let mut held = Held::spawn(cmd);
    let mut stdin = held.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let (status, elapsed, stdout, stderr) = held.wait_for(BOUND);
    let _ = writer.join();
    Run { status, elapsed, stdout, stderr }
}

/// Renders packets for comparison: text lines without their newline, special packets by
/// their wire form, side-band packets as `<band n>` (contents vary between servers).
pub fn render(pkts: &[Pkt]) -> Vec<String> {
    pkts.iter()
        .map(|p| match p {
            Pkt::Flush => "0000".to_owned(),
            Pkt::Delim => "0001".to_owned(),
            Pkt::ResponseEnd => "0002".to_owned(),
            Pkt::Data(d) if d.first().is_some_and(|b| (1..=3).contains(b)) => format!("<band {}>", d[0]),
            Pkt::Data(d) => {
                let d = d.strip_suffix(b"\n").unwrap_or(d);
                String::from_utf8_lossy(d).into_owned()
            }
        })
        .collect()
}

/// The packets after the advertisement (everything up to the first flush), with runs of
/// side-band packets collapsed into one entry.
pub fn response(mode: Mode, stdout: &[u8]) -> Vec<String> {
    let (pkts, used) = pktline::parse_prefix(stdout);
    let mut pkts = &pkts[..];
    if matches!(mode, Mode::V0 | Mode::V1 | Mode::V2) {
        let end = pkts.iter().position(|p| *p == Pkt::Flush).map_or(pkts.len(), |i| i + 1);
        pkts = &pkts[end..];
    }
    let mut out: Vec<String> = Vec::new();
    for line in render(pkts) {
        if line.starts_with("<band") && out.last() == Some(&line) {
            continue;
        }
        out.push(line);
    }
    if used < stdout.len() {
        // A raw (non side-band) pack or garbage after the packets.
        out.push(format!("<{} raw bytes>", stdout.len() - used));
    }
    out
}

fn mode_args(mode: Mode) -> (&'static [&'static str], Option<&'static str>) {
    match mode {
        Mode::V0 => (&[], None),
        Mode::V1 => (&[], Some("version=1")),
        Mode::V2 => (&[], Some("version=2")),
        Mode::StatelessV0 => (&["--stateless-rpc"], None),
        Mode::StatelessV2 => (&["--stateless-rpc"], Some("version=2")),
    }
}

/// Runs `program` as upload-pack on `repo` in `mode` with `extra` arguments.
pub fn serve(sb: &Sandbox, program: &Path, mode: Mode, extra: &[&str], repo: &Path, input: &[u8]) -> Run {
    let (args, proto) = mode_args(mode);
    let mut cmd = sb.command(program);
    cmd.args(args).args(extra).arg(repo);
    if let Some(p) = proto {
        cmd.env("GIT_PROTOCOL", p);
    }
    exchange(cmd, input)
}

/// The exit status as a shell reports it (128 + n for signal n).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Checks one run against what was expected; returns a description of every mismatch.
pub fn judge(who: &str, mode: Mode, run: &Run, out: &[String], stderr: &str, code: i32) -> Vec<String> {
    let mut bad = Vec::new();
    let got_out = response(mode, &run.stdout);
    let got_err = String::from_utf8_lossy(&run.stderr).into_owned();
    if got_out != out {
        bad.push(format!("{who}: response {got_out:?}, expected {out:?}"));
    }
    if got_err != stderr {
        bad.push(format!("{who}: stderr {got_err:?}, expected {stderr:?}"));
    }
    if exit_code(run.status) != code {
        bad.push(format!("{who}: exit {}, expected {code}", run.status));
    }
    if got_err.contains("panicked") || got_err.contains("RUST_BACKTRACE") {
        bad.push(format!("{who}: panicked: {got_err}"));
    }
    bad
}

/// Runs every case against the server under test and (per `case.git`) against git.
pub fn run_cases(sb: &Sandbox, repo: &Path, extra: &[&str], cases: Vec<Case>) {
    let mut failures = Vec::new();
    let n = cases.len();
    for case in cases {
        let e = &case.expect;
        let ours = serve(sb, &server_under_test(), case.mode, extra, repo, &case.input);
        for f in judge("packserve", case.mode, &ours, &e.out, &e.stderr, e.code) {
            failures.push(format!("[{}] {f}", case.name));
        }
        for git in git_servers() {
            if matches!(case.git, Git::Ours) {
                continue;
            }
            let theirs = serve(sb, &git, case.mode, extra, repo, &case.input);
            let who = format!("{}", git.display());
            let found = match &case.git {
                Git::Ours => unreachable!(),
                Git::Same => judge(&who, case.mode, &theirs, &e.out, &e.stderr, e.code),
                Git::Differs { stderr, code, why: _ } => {
                    let err = String::from_utf8_lossy(&theirs.stderr).into_owned();
                    let mut v = Vec::new();
                    if !err.contains(stderr) || exit_code(theirs.status) != *code {
                        v.push(format!(
                            "{who}: documented difference no longer holds: stderr {err:?} exit {}, documented {stderr:?} {code}",
                            theirs.status
                        ));
                    }
                    v
                }
            };
            for f in found {
                failures.push(format!("[{}] {f}", case.name));
            }
        }
    }
    eprintln!("{n} cases");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// git's upload-pack to compare with: the reference, 2.47. (2.39 differs from 2.47 in two of
/// these cases: it says `fatal:` for every refused want, as packserve does, and serves a
/// `deepen-since` in the future instead of refusing it.)
fn git_servers() -> Vec<PathBuf> {
    vec![reference_upload_pack()]
}

// ---------------------------------------------------------------------------
// Building cases

fn pkt(line: &str) -> Vec<u8> {
    pktline::request(&[line])
}

/// Like `pktline::request`, with `"0002"` for a response-end packet too.
fn req(lines: &[&str]) -> Vec<u8> {
    lines.iter().flat_map(|l| if *l == "0002" { b"0002".to_vec() } else { pktline::request(&[l]) }).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn fatal(msg: &str) -> String {
    format!("fatal: {msg}\n")
}

fn case(
    name: &'static str,
    mode: Mode,
    input: Vec<u8>,
    out: &[&str],
    stderr: &str,
    code: i32,
    git: Git,
) -> Case {
    Case {
        name,
        mode,
        input,
        expect: Expect { out: out.iter().map(|s| s.to_string()).collect(), stderr: stderr.to_owned(), code },
        git,
    }
}

const HUNG_UP: &str = "fatal: the remote end hung up unexpectedly\n";
const UNKNOWN: &str = "1234567890123456789012345678901234567890";

/// The ids the cases use, from the `hidden` fixture.
struct Ids {
    main: String,
    secret: String,
    blob: String,
    tree: String,
}

fn ids(sb: &Sandbox, repo: &Path) -> Ids {
    Ids {
        main: sb.rev_parse(repo, "main"),
        secret: sb.rev_parse(repo, "refs/hidden/secret"),
        blob: sb.rev_parse(repo, "main:f1.txt"),
        tree: sb.rev_parse(repo, "main^{tree}"),
    }
}

/// The `hidden` fixture with refs/hidden hidden and the tree filter capped at depth 2 (but
/// filters not allowed unless a case's `-c` says so).
fn hostile_repo(sb: &Sandbox) -> PathBuf {
    let repo = sb.fixture_copy("hidden");
    sb.config(&repo, "uploadpack.hideRefs", "refs/hidden");
    repo
}

// ---------------------------------------------------------------------------
// v0 / v1: framing, wants, deepen, filter, haves

fn v0_cases(i: &Ids) -> Vec<Case> {
    use Mode::*;
    let want = format!("want {} side-band-64k ofs-delta", i.main);
    let not_our = |id: &str| format!("ERR upload-pack: not our ref {id}");
    let not_our_fatal = |id: &str| fatal(&format!("git upload-pack: not our ref {id}"));
    let not_oid =
        |l: &str| fatal(&format!("git upload-pack: protocol error, expected to get object ID, not '{l}'"));
    let deepen = |line: &str| req(&[&want, line, "0000", "done"]);
    vec![
        // Framing.
        case("length-not-hex", V0, b"zzzz".to_vec(), &[], &fatal("protocol error: bad line length character: zzzz"), 128, Git::Same),
        case("length-3", V0, b"0003".to_vec(), &[], &fatal("protocol error: bad line length 3"), 128, Git::Same),
        case("length-4-empty-line", V0, b"0004".to_vec(), &[], &not_oid(""), 128, Git::Same),
        case("length-lies-longer", V0, cat(&[b"0064want ", i.main.as_bytes()]), &[], HUNG_UP, 128, Git::Same),
        case("eof-inside-header", V0, b"00".to_vec(), &[], HUNG_UP, 128, Git::Same),
        case("eof-right-after-advertisement", V0, Vec::new(), &[], HUNG_UP, 128, Git::Same),
        case(
            "length-over-65520",
            V0,
            cat(&[b"fff1", &vec![b'x'; 0xfff1 - 4]]),
            &[],
            &fatal("protocol error: bad line length 65521"),
            128,
            Git::Differs {
                stderr: "fatal: git upload-pack: protocol error, expected to get object ID, not 'xxxx",
                code: 128,
                why: "git reads a 65521-byte packet (one more than LARGE_PACKET_MAX); we refuse the length itself",
            },
        ),
        case(
            "delim-in-v0-wants",
            V0,
            b"0001".to_vec(),
            &[],
            &not_oid("0001"),
            128,
            Git::Differs { stderr: "", code: 0, why: "git takes 0001 for a flush in v0 and ends quietly; it has no place in v0" },
        ),
        case(
            "response-end-in-v0-wants",
            V0,
            b"0002".to_vec(),
            &[],
            &not_oid("0002"),
            128,
            Git::Differs { stderr: "", code: 0, why: "as 0001" },
        ),
        case("flush-only", V0, b"0000".to_vec(), &[], "", 0, Git::Same),
        case("missing-flush-after-wants", V0, pkt(&want), &[], HUNG_UP, 128, Git::Same),
        case("no-done-after-flush", V0, req(&[&want, "0000"]), &[], HUNG_UP, 128, Git::Same),
        // Wants.
        case("want-unknown-object", V0, req(&[&format!("want {UNKNOWN}"), "0000", "done"]), &[&not_our(UNKNOWN)], &not_our_fatal(UNKNOWN), 128, Git::Same),
        case(
            "want-hidden-ref-tip",
            V0,
            req(&[&format!("want {}", i.secret), "0000", "done"]),
            &[&not_our(&i.secret)],
            &not_our_fatal(&i.secret),
            128,
            Git::Differs {
                stderr: "error: git upload-pack: not our ref",
                code: 128,
                why: "git says error: (then exits 128) for an object it has; we always say fatal:",
            },
        ),
        case(
            "want-blob",
            V0,
            req(&[&format!("want {}", i.blob), "0000", "done"]),
            &[&not_our(&i.blob)],
            &not_our_fatal(&i.blob),
            128,
            Git::Differs { stderr: "error: git upload-pack: not our ref", code: 128, why: "as want-hidden-ref-tip" },
        ),
        case(
            "want-tree",
            V0,
            req(&[&format!("want {}", i.tree), "0000", "done"]),
            &[&not_our(&i.tree)],
            &not_our_fatal(&i.tree),
            128,
            Git::Differs { stderr: "error: git upload-pack: not our ref", code: 128, why: "as want-hidden-ref-tip" },
        ),
        case("want-not-hex", V0, req(&["want xyz", "0000"]), &[], &not_oid("want xyz"), 128, Git::Same),
        case("want-short-oid", V0, req(&[&format!("want {}", &i.main[..39]), "0000"]), &[], &not_oid(&format!("want {}", &i.main[..39])), 128, Git::Same),
        case(
            "want-oid-with-trailing-hex",
            V0,
            req(&[&format!("want {}{}", i.main, "a".repeat(24)), "0000"]),
            &[],
            &not_oid(&format!("want {}{}", i.main, "a".repeat(24))),
            128,
            Git::Differs { stderr: HUNG_UP, code: 128, why: "git takes the 24 extra hex digits for capabilities and waits for haves" },
        ),
        case("not-a-want", V0, req(&["hello", "0000"]), &[], &not_oid("hello"), 128, Git::Same),
        case("done-before-any-want", V0, req(&["done", "0000"]), &[], &not_oid("done"), 128, Git::Same),
        case("have-among-wants", V0, req(&[&want, &format!("have {}", i.main), "0000"]), &[], &not_oid(&format!("have {}", i.main)), 128, Git::Same),
        // Deepen and shallow.
        case("deepen-0", V0, deepen("deepen 0"), &[], &fatal("Invalid deepen: deepen 0"), 128, Git::Same),
        case("deepen-negative", V0, deepen("deepen -1"), &[], &fatal("Invalid deepen: deepen -1"), 128, Git::Same),
        case("deepen-2^31", V0, deepen("deepen 2147483648"), &[], &fatal("Invalid deepen: deepen 2147483648"), 128, Git::Same),
        case("deepen-2^63", V0, deepen("deepen 9223372036854775808"), &[], &fatal("Invalid deepen: deepen 9223372036854775808"), 128, Git::Same),
        case("deepen-not-a-number", V0, deepen("deepen many"), &[], &fatal("Invalid deepen: deepen many"), 128, Git::Same),
        case("deepen-since-negative", V0, deepen("deepen-since -5"), &[], &fatal("no commits selected for shallow requests"), 128, Git::Same),
        case("deepen-since-absurd", V0, deepen("deepen-since 99999999999999999999999"), &[], &fatal("Invalid deepen-since: deepen-since 99999999999999999999999"), 128, Git::Same),
        case("deepen-since-not-a-date", V0, deepen("deepen-since yesterday"), &[], &fatal("Invalid deepen-since: deepen-since yesterday"), 128, Git::Same),
        case("deepen-not-unknown-ref", V0, deepen("deepen-not nope"), &[], &fatal("git upload-pack: ambiguous deepen-not: deepen-not nope"), 128, Git::Same),
        case("shallow-not-hex", V0, deepen("shallow xyz"), &[], &fatal("invalid shallow line: shallow xyz"), 128, Git::Same),
        case("shallow-a-blob", V0, deepen(&format!("shallow {}", i.blob)), &[], &fatal(&format!("invalid shallow object {}", i.blob)), 128, Git::Same),
        // Filter.
        case("filter-without-capability", V0, req(&[&want, "filter blob:none", "0000", "done"]), &[], &fatal("git upload-pack: filtering capability not negotiated"), 128, Git::Same),
        case(
            "filter-capability-not-advertised",
            V0,
            req(&[&format!("{want} filter"), "filter blob:none", "0000", "done"]),
            &[],
            &fatal("git upload-pack: filtering capability not negotiated"),
            128,
            Git::Same,
        ),
        // Haves.
        case("have-not-hex", V0, req(&[&want, "0000", "have zz", "done"]), &[], &fatal("git upload-pack: expected SHA1 object, got 'zz'"), 128, Git::Same),
        case("garbage-instead-of-have", V0, req(&[&want, "0000", "garbage"]), &[], &fatal("git upload-pack: expected SHA1 list, got 'garbage'"), 128, Git::Same),
        case(
            "delim-among-haves",
            V0,
            req(&[&want, "0000", &format!("have {UNKNOWN}"), "0001", "done"]),
            &[],
            &fatal("git upload-pack: expected SHA1 list, got '0001'"),
            128,
            Git::Differs { stderr: "", code: 0, why: "git takes 0001 for a flush here too" },
        ),
        case("have-unknown-then-done", V0, req(&[&want, "0000", &format!("have {UNKNOWN}"), "done"]), &["NAK", "<band 2>", "<band 1>", "<band 2>", "0000"], "", 0, Git::Differs { stderr: "", code: 0, why: "same answer; git's progress comes in more band-2 packets" }),
        case("unknown-capabilities-ignored", V0, req(&[&format!("{want} frobnicate x=y"), "0000", "done"]), &["NAK", "<band 2>", "<band 1>", "<band 2>", "0000"], "", 0, Git::Differs { stderr: "", code: 0, why: "as have-unknown-then-done" }),
        case("garbage-after-done-ignored", V0, req(&[&want, "0000", "done", "garbage"]), &["NAK", "<band 2>", "<band 1>", "<band 2>", "0000"], "", 0, Git::Differs { stderr: "", code: 0, why: "as have-unknown-then-done" }),
        // v1: the same, after `version 1`.
        case("v1-want-unknown-object", V1, req(&[&format!("want {UNKNOWN}"), "0000"]), &[&not_our(UNKNOWN)], &not_our_fatal(UNKNOWN), 128, Git::Same),
        case("v1-length-not-hex", V1, b"want".to_vec(), &[], &fatal("protocol error: bad line length character: want"), 128, Git::Same),
        case("v1-deepen-0", V1, deepen("deepen 0"), &[], &fatal("Invalid deepen: deepen 0"), 128, Git::Same),
        // Stateless (smart HTTP's POST body).
        case("stateless-want-unknown-object", StatelessV0, req(&[&format!("want {UNKNOWN}"), "0000", "done"]), &[&not_our(UNKNOWN)], &not_our_fatal(UNKNOWN), 128, Git::Same),
        case("stateless-eof-in-haves", StatelessV0, req(&[&want, "0000", &format!("have {UNKNOWN}")]), &[], HUNG_UP, 128, Git::Same),
        case("stateless-empty-body", StatelessV0, Vec::new(), &[], HUNG_UP, 128, Git::Same),
        case("stateless-round-without-done", StatelessV0, req(&[&want, "0000", &format!("have {UNKNOWN}"), "0000"]), &["NAK"], "", 0, Git::Same),
    ]
}

#[test]
fn v0_and_v1_requests() {
    let sb = Sandbox::new("hostile-v0");
    let repo = hostile_repo(&sb);
    let i = ids(&sb, &repo);
    run_cases(&sb, &repo, &[], v0_cases(&i));
}

// ---------------------------------------------------------------------------
// v2

fn v2_cases(i: &Ids) -> Vec<Case> {
    use Mode::*;
    let fetch = |args: &[&str]| {
        let mut l = vec!["command=fetch", "object-format=sha1", "0001"];
        l.extend_from_slice(args);
        l.push("0000");
        req(&l)
    };
    let want = format!("want {}", i.main);
    let not_our = |id: &str| format!("ERR upload-pack: not our ref {id}");
    vec![
        case(
            "unknown-command",
            V2,
            req(&["command=frob", "0001", "0000"]),
            &[],
            &fatal("invalid command 'frob'"),
            128,
            Git::Same,
        ),
        case(
            "command-with-value",
            V2,
            req(&["command=fetch=x", "0001", "0000"]),
            &[],
            &fatal("invalid command 'fetch=x'"),
            128,
            Git::Same,
        ),
        case(
            "no-command",
            V2,
            req(&["agent=x", "0000"]),
            &[],
            &fatal("no command requested"),
            128,
            Git::Same,
        ),
        case(
            "arguments-before-command",
            V2,
            req(&["0001", "command=fetch", "0000"]),
            &[],
            &fatal("no command requested"),
            128,
            Git::Same,
        ),
        case(
            "want-before-command",
            V2,
            req(&[&want, "command=fetch", "0001", "0000"]),
            &[],
            &fatal(&format!("unknown capability '{want}'")),
            128,
            Git::Same,
        ),
        case(
            "unknown-capability",
            V2,
            req(&["command=fetch", "frob=1", "0001", "0000"]),
            &[],
            &fatal("unknown capability 'frob=1'"),
            128,
            Git::Same,
        ),
        case(
            "two-commands",
            V2,
            req(&["command=fetch", "command=ls-refs", "0001", "0000"]),
            &[],
            &fatal("command 'ls-refs' requested after already requesting command 'fetch'"),
            128,
            Git::Same,
        ),
        case(
            "wrong-object-format",
            V2,
            req(&["command=fetch", "object-format=sha256", "0001", &want, "0000"]),
            &[],
            &fatal("mismatched object format: server sha1; client sha256"),
            128,
            Git::Same,
        ),
        case(
            "object-info-not-advertised",
            V2,
            req(&["command=object-info", "0001", "size", "0000"]),
            &[],
            &fatal("invalid command 'object-info'"),
            128,
            Git::Same,
        ),
        case(
            "unknown-fetch-argument",
            V2,
            fetch(&["frobnicate"]),
            &[],
            &fatal("unexpected line: 'frobnicate'"),
            128,
            Git::Same,
        ),
        case(
            "unknown-ls-refs-argument",
            V2,
            req(&["command=ls-refs", "0001", "frob", "0000"]),
            &[],
            &fatal("unexpected line: 'frob'"),
            128,
            Git::Same,
        ),
        case(
            "two-delims",
            V2,
            req(&["command=fetch", "0001", "0001", "0000"]),
            &[],
            &fatal("expected flush after fetch arguments"),
            128,
            Git::Same,
        ),
        case(
            "response-end-after-arguments",
            V2,
            req(&["command=ls-refs", "0001", "0002"]),
            &[],
            &fatal("expected flush after ls-refs arguments"),
            128,
            Git::Same,
        ),
        case(
            "response-end-in-request",
            V2,
            req(&["command=fetch", "0002"]),
            &[],
            &fatal("unexpected response-end packet"),
            128,
            Git::Differs {
                stderr: "BUG: serve.c",
                code: 134,
                why: "git aborts on a BUG(); we refuse the packet",
            },
        ),
        case("missing-flush", V2, req(&["command=fetch", "0001", &want]), &[], HUNG_UP, 128, Git::Same),
        case(
            "garbage-after-flush",
            V2,
            cat(&[&req(&["command=ls-refs", "0001", "ref-prefix refs/tags/", "0000"]), b"garbage"]),
            &["TAG refs/tags/v1", "0000"],
            &fatal("protocol error: bad line length character: garb"),
            128,
            Git::Same,
        ),
        case(
            "want-unknown-object",
            V2,
            fetch(&[&format!("want {UNKNOWN}"), "done"]),
            &[&not_our(UNKNOWN)],
            &fatal(&format!("git upload-pack: not our ref {UNKNOWN}")),
            128,
            Git::Same,
        ),
        case(
            "want-not-hex",
            V2,
            fetch(&["want 12", "done"]),
            &[],
            &fatal("git upload-pack: protocol error, expected to get oid, not 'want 12'"),
            128,
            Git::Same,
        ),
        case(
            "want-ref-not-allowed",
            V2,
            fetch(&["want-ref refs/heads/main", "done"]),
            &[],
            &fatal("unexpected line: 'want-ref refs/heads/main'"),
            128,
            Git::Same,
        ),
        case(
            "have-not-hex",
            V2,
            fetch(&[&want, "have zz"]),
            &[],
            &fatal("git upload-pack: expected SHA1 object, got 'zz'"),
            128,
            Git::Same,
        ),
        case(
            "have-unknown",
            V2,
            fetch(&[&want, &format!("have {UNKNOWN}")]),
            &["acknowledgments", "NAK", "0000"],
            "",
            0,
            Git::Same,
        ),
        case(
            "deepen-0",
            V2,
            fetch(&[&want, "deepen 0", "done"]),
            &[],
            &fatal("Invalid deepen: deepen 0"),
            128,
            Git::Same,
        ),
        case(
            "deepen-2^63-1",
            V2,
            fetch(&[&want, "deepen 9223372036854775807", "done"]),
            &[],
            &fatal("Invalid deepen: deepen 9223372036854775807"),
            128,
            Git::Same,
        ),
        case(
            "deepen-since-negative",
            V2,
            fetch(&[&want, "deepen-since -1", "done"]),
            &[],
            &fatal("Invalid deepen-since: deepen-since -1"),
            128,
            Git::Same,
        ),
        case(
            "deepen-not-unknown-ref",
            V2,
            fetch(&[&want, "deepen-not nope", "done"]),
            &[],
            &fatal("git upload-pack: ambiguous deepen-not: deepen-not nope"),
            128,
            Git::Same,
        ),
        case(
            "filter-not-allowed",
            V2,
            fetch(&[&want, "filter blob:none", "done"]),
            &[],
            &fatal("unexpected line: 'filter blob:none'"),
            128,
            Git::Same,
        ),
        case("stateless-eof-in-request", StatelessV2, req(&["command=fetch"]), &[], HUNG_UP, 128, Git::Same),
        case("stateless-empty-body", StatelessV2, Vec::new(), &[], "", 0, Git::Same),
        case(
            "stateless-unknown-command",
            StatelessV2,
            req(&["command=push", "0000"]),
            &[],
            &fatal("invalid command 'push'"),
            128,
            Git::Same,
        ),
    ]
}

#[test]
fn v2_requests() {
    let sb = Sandbox::new("hostile-v2");
    let repo = hostile_repo(&sb);
    let i = ids(&sb, &repo);
    let tag = sb.rev_parse(&repo, "refs/tags/v1");
    let mut cases = v2_cases(&i);
    for c in &mut cases {
        for l in &mut c.expect.out {
            *l = l.replace("TAG", &tag);
        }
    }
    run_cases(&sb, &repo, &[], cases);
}

/// Filters allowed, `tree:<depth>` capped by git's own key: the refusals git sends as ERR.
#[test]
fn filter_requests() {
    use Mode::*;
    let sb = Sandbox::new("hostile-filter");
    let repo = hostile_repo(&sb);
    sb.config(&repo, "uploadpack.allowFilter", "true");
    sb.config(&repo, "uploadpackfilter.tree.maxDepth", "2");
    let i = ids(&sb, &repo);
    let want = format!("want {} side-band-64k ofs-delta filter", i.main);
    let too_deep = "tree filter allows max depth 2, but got 5";
    let cases = vec![
        case(
            "filter-spec-invalid",
            V0,
            req(&[&want, "filter bogus", "0000", "done"]),
            &[],
            &fatal("invalid filter-spec 'bogus'"),
            128,
            Git::Same,
        ),
        case(
            "filter-twice",
            V0,
            req(&[&want, "filter blob:none", "filter blob:none", "0000", "done"]),
            &[],
            &fatal("multiple filter-specs cannot be combined"),
            128,
            Git::Same,
        ),
        case(
            "filter-tree-too-deep",
            V0,
            req(&[&want, "filter tree:5", "0000", "done"]),
            &[&format!("ERR {too_deep}")],
            &fatal(too_deep),
            128,
            Git::Same,
        ),
        case(
            "v2-filter-tree-too-deep",
            V2,
            req(&["command=fetch", "0001", &format!("want {}", i.main), "filter tree:5", "done", "0000"]),
            &[&format!("ERR {too_deep}")],
            &fatal(too_deep),
            128,
            Git::Same,
        ),
        case(
            "v2-filter-sparse-path",
            V2,
            req(&[
                "command=fetch",
                "0001",
                &format!("want {}", i.main),
                "filter sparse:path=/etc/passwd",
                "done",
                "0000",
            ]),
            &[],
            &fatal("sparse:path filters support has been dropped"),
            128,
            Git::Same,
        ),
    ];
    run_cases(&sb, &repo, &[], cases);
}

// ---------------------------------------------------------------------------
// Limits

/// A limit case: name, mode, input, the message after `upload-pack: `.
type LimitCase = (&'static str, Mode, Vec<u8>, String);

/// Each limit, by flag, just over its bound: an ERR line naming the key, `fatal:`, 128.
#[test]
fn limits_by_flag() {
    use Mode::*;
    let sb = Sandbox::new("hostile-limits");
    let repo = hostile_repo(&sb);
    let i = ids(&sb, &repo);
    let feature = sb.rev_parse(&repo, "feature");
    let want = format!("want {} side-band-64k ofs-delta", i.main);
    let want2 = format!("want {feature}");
    let have = |id: &str| format!("have {id}");
    let err = |msg: &str| (format!("ERR upload-pack: {msg}"), fatal(&format!("upload-pack: {msg}")));
    let fetch = |args: &[&str]| {
        let mut l = vec!["command=fetch", "0001"];
        l.extend_from_slice(args);
        l.push("0000");
        req(&l)
    };
    let groups: Vec<(&str, Vec<LimitCase>)> = vec![
        (
            "--max-wants=1",
            vec![
                (
                    "v0-wants",
                    V0,
                    req(&[&want, &want2, "0000", "done"]),
                    "more than 1 wants (packserve.maxWants)".into(),
                ),
                (
                    "v2-wants",
                    V2,
                    fetch(&[&format!("want {}", i.main), &want2, "done"]),
                    "more than 1 wants (packserve.maxWants)".into(),
                ),
            ],
        ),
        (
            "--max-haves=1",
            vec![
                (
                    "v0-haves",
                    V0,
                    req(&[&want, "0000", &have(UNKNOWN), &have(&feature), "done"]),
                    "more than 1 haves (packserve.maxHaves)".into(),
                ),
                (
                    "stateless-v0-haves",
                    StatelessV0,
                    req(&[&want, "0000", &have(UNKNOWN), &have(&feature), "done"]),
                    "more than 1 haves (packserve.maxHaves)".into(),
                ),
                (
                    "v2-haves",
                    V2,
                    fetch(&[&format!("want {}", i.main), &have(UNKNOWN), &have(&feature)]),
                    "more than 1 haves (packserve.maxHaves)".into(),
                ),
            ],
        ),
        (
            "--max-request-bytes=100",
            vec![
                (
                    "v0-request-bytes",
                    V0,
                    req(&[&want, &want2, "0000", "done"]),
                    "request larger than 100 bytes (packserve.maxRequestBytes)".into(),
                ),
                (
                    "v2-request-bytes",
                    V2,
                    fetch(&[&format!("want {}", i.main), &want2, "done"]),
                    "request larger than 100 bytes (packserve.maxRequestBytes)".into(),
                ),
            ],
        ),
        (
            "--max-depth=3",
            vec![
                (
                    "v0-depth",
                    V0,
                    req(&[&want, "deepen 4", "0000", "done"]),
                    "deepen 4 is deeper than 3 (packserve.maxDepth)".into(),
                ),
                (
                    "v2-depth",
                    StatelessV2,
                    fetch(&[&format!("want {}", i.main), "deepen 4", "done"]),
                    "deepen 4 is deeper than 3 (packserve.maxDepth)".into(),
                ),
            ],
        ),
    ];
    let mut total = 0;
    for (flag, group) in groups {
        let cases = group
            .into_iter()
            .map(|(name, mode, input, msg)| {
                let (line, stderr) = err(&msg);
                case(name, mode, input, &[&line], &stderr, 128, Git::Ours)
            })
            .collect::<Vec<_>>();
        total += cases.len();
        run_cases(&sb, &repo, &[flag], cases);
    }
    // Within the bounds, the same requests are served.
    let ok = serve(
        &sb,
        &server_under_test(),
        V0,
        &["--max-wants=2", "--max-depth=4"],
        &repo,
        &req(&[&want, &want2, "deepen 4", "0000", "done"]),
    );
    assert!(ok.status.success(), "within the limits: {}", String::from_utf8_lossy(&ok.stderr));
    // The tree filter: packserve.maxFilterDepth, the smaller of it and git's key wins.
    sb.config(&repo, "uploadpack.allowFilter", "true");
    let filter =
        |depth: u32| req(&[&format!("{want} filter"), &format!("filter tree:{depth}"), "0000", "done"]);
    let too_deep = "tree filter allows max depth 2, but got 3";
    run_cases(
        &sb,
        &repo,
        &["--max-filter-depth=2"],
        vec![case(
            "filter-depth",
            V0,
            filter(3),
            &[&format!("ERR {too_deep}")],
            &fatal(too_deep),
            128,
            Git::Ours,
        )],
    );
    let ok = serve(&sb, &server_under_test(), V0, &["--max-filter-depth=2"], &repo, &filter(2));
    assert!(
        ok.status.success(),
        "tree:2 under --max-filter-depth=2: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(total + 1, 10);
}

/// The same limits from configuration (`packserve.*`), and what a git client shows.
#[test]
fn limits_by_config_reach_the_client() {
    let sb = Sandbox::new("hostile-limits-config");
    let repo = hostile_repo(&sb);
    sb.config(&repo, "packserve.maxWants", "2");
    for (client, protocol) in [(Client::New, 2), (Client::New, 0), (Client::Old, 2)] {
        let dest = sb.unique("clone");
        let t = sb.try_clone(client, protocol, Server::UnderTest, &repo, &dest, &["--mirror"]);
        let err = t.output.stderr_str();
        assert!(!t.output.status.success(), "{}: clone with maxWants=2 succeeded", label(client, protocol));
        // Normally the client shows the ERR line. In v0 a clone writes "done" after its wants;
        // when packserve has already refused and exited, that write kills the client with
        // SIGPIPE before it reads the ERR line (git's upload-pack races the same way), and
        // what the user sees is packserve's own message on stderr.
        assert!(
            err.contains("remote error: upload-pack: more than 2 wants (packserve.maxWants)")
                || (protocol == 0
                    && err.contains("fatal: upload-pack: more than 2 wants (packserve.maxWants)")),
            "{}: {err}",
            label(client, protocol)
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    // A suffixed value (git's integer syntax) raises it again.
    sb.config(&repo, "packserve.maxWants", "1k");
    let dest = sb.unique("clone");
    sb.clone(Client::New, 2, Server::UnderTest, &repo, &dest, &["--mirror"]);
}

/// More than the default 64 MiB in one request: refused with an ERR line after reading 64 MiB,
/// not buffered until memory runs out.
#[test]
fn default_request_bound() {
    let sb = Sandbox::new("hostile-limits-default");
    let repo = hostile_repo(&sb);
    let i = ids(&sb, &repo);
    let mut input = req(&["command=fetch", "0001", &format!("want {}", i.main)]);
    let have = pkt(&format!("have {UNKNOWN}"));
    while input.len() <= (64 << 20) + 100 {
        input.extend_from_slice(&have);
    }
    input.extend_from_slice(b"0000");
    let run = serve(&sb, &server_under_test(), Mode::V2, &[], &repo, &input);
    let msg = "upload-pack: request larger than 67108864 bytes (packserve.maxRequestBytes)";
    let bad = judge("packserve", Mode::V2, &run, &[format!("ERR {msg}")], &fatal(msg), 128);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
