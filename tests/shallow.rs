//! Shallow clones and fetches (`--depth`, `--shallow-since`, `--shallow-exclude`, `--deepen`,
//! `--unshallow`), serving from a repository that is itself shallow, and the raw
//! shallow/unshallow lines and `shallow-info` section. Everything is compared with what git's
//! own upload-pack gives for the same request: the `shallow` file, the refs, the objects
//! (present and reachable) and `git fsck`.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::Path;

struct Case {
    /// Server fixture.
    fixture: &'static str,
    /// Extra `git clone` arguments (`{since}` is replaced by the commit time of main~5).
    clone: &'static [&'static str],
    /// Shell run in (a copy of) the server after both clones.
    change: &'static str,
    /// Fetches run in both clones after the change, in order (arguments after `fetch`).
    fetches: &'static [&'static [&'static str]],
    /// Whether the final repository must be shallow (checks the scenario itself).
    shallow_at_end: bool,
}

fn expand(sb: &Sandbox, src: &Path, args: &[&str]) -> Vec<String> {
    if !args.iter().any(|a| a.contains("{since}")) {
        return args.iter().map(|a| a.to_string()).collect();
    }
    let since = sb.git(src, &["log", "-1", "--format=%ct", "main~5"]).trim().to_owned();
    args.iter().map(|a| a.replace("{since}", &since)).collect()
}

fn shallow_matches_git(name: &str, case: &Case, client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("shallow-{name}-{}", label(client, protocol)));
    let src = if case.change.is_empty() { fixture(case.fixture) } else { sb.fixture_copy(case.fixture) };
    let clone_args = expand(&sb, &src, case.clone);
    let clone_args: Vec<&str> = clone_args.iter().map(String::as_str).collect();
    let ours = sb.join("packserve-clone");
    let theirs = sb.join("git-clone");
    let git = sb.try_clone_via(client, protocol, &Server::Reference.program(), &src, &theirs, &clone_args);
    assert!(
        git.output.status.success(),
        "scenario is off: the clone through git-upload-pack failed:\n{}",
        git.output
    );
    let ps = sb.try_clone_via(client, protocol, &Server::UnderTest.program(), &src, &ours, &clone_args);
    assert!(ps.output.status.success(), "clone through packserve failed:\n{}", ps.output);
    let (mut last_ps, mut last_git) = (ps.pack_objects, git.pack_objects);
    sb.assert_same_repo(&ours, &theirs, &format!("{name}: after the clone"));

    if !case.change.is_empty() {
        sb.sh(&src, case.change);
    }
    for (i, fetch) in case.fetches.iter().enumerate() {
        let args = expand(&sb, &src, fetch);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.push("origin");
        let git = sb.try_fetch_via(client, protocol, &Server::Reference.program(), &theirs, &args);
        assert!(
            git.output.status.success(),
            "scenario is off: fetch {i} through git-upload-pack failed:\n{}",
            git.output
        );
        let ps = sb.try_fetch_via(client, protocol, &Server::UnderTest.program(), &ours, &args);
        assert!(ps.output.status.success(), "fetch {i} ({args:?}) through packserve failed:\n{}", ps.output);
        sb.assert_same_repo(&ours, &theirs, &format!("{name}: after fetch {i} {args:?}"));
        (last_ps, last_git) = (ps.pack_objects, git.pack_objects);
    }
    assert_eq!(
        !sb.shallow(&theirs).is_empty(),
        case.shallow_at_end,
        "scenario is off: git's result is {}shallow",
        if case.shallow_at_end { "not " } else { "" }
    );
    // The repositories are identical (checked above); the pack may be smaller than git's
    // (git resends some objects around the shallow boundary), but not more than 5% larger.
    eprintln!("{name}: last pack objects packserve {last_ps:?}, git {last_git:?}");
    match (last_ps, last_git) {
        (Some(a), Some(b)) => assert!(
            a as u64 * 100 <= b as u64 * 105,
            "{name}: packserve sent {a} objects, git-upload-pack {b} (more than 5% more)"
        ),
        (a, b) => assert_eq!(a, b, "{name}: pack object counts (None = no pack)"),
    }
}

const NEW_COMMITS: &str = r#"
    tick_after_repo
    git update-ref refs/heads/work main
    for i in 1 2 3; do
        tree=$(git rev-parse "main^{tree}")
        c=$(echo "server $i" | git commit-tree -p main "$tree")
        git update-ref refs/heads/main "$c"
    done
"#;

/// `all`: git 2.47 with v0 and v2, git 2.39 with v2; `new`: git 2.47 only (to keep the run short).
macro_rules! shallow_cases {
    (@tests all) => {
        #[test] fn git247_v0() { check(Client::New, 0) }
        #[test] fn git247_v2() { check(Client::New, 2) }
        #[test] fn git239_v2() { check(Client::Old, 2) }
    };
    (@tests new) => {
        #[test] fn git247_v0() { check(Client::New, 0) }
        #[test] fn git247_v2() { check(Client::New, 2) }
    };
    ($($which:ident $name:ident: $case:expr;)*) => {$(
        mod $name {
            use super::*;
            const CASE: Case = $case;
            fn check(client: Client, protocol: u8) {
                shallow_matches_git(stringify!($name), &CASE, client, protocol)
            }
            shallow_cases!(@tests $which);
        }
    )*};
}

shallow_cases! {
    all depth_1: Case { fixture: "history", clone: &["--depth=1"], change: "", fetches: &[], shallow_at_end: true };
    new depth_3_all_branches: Case {
        fixture: "history", clone: &["--depth=3", "--no-single-branch"], change: "", fetches: &[], shallow_at_end: true,
    };
    all depth_through_a_merge: Case {
        fixture: "history", clone: &["--depth=6"], change: "", fetches: &[], shallow_at_end: true,
    };
    all shallow_since: Case {
        fixture: "history", clone: &["--shallow-since={since}", "--no-single-branch"], change: "", fetches: &[],
        shallow_at_end: true,
    };
    all shallow_exclude_tag: Case {
        fixture: "history", clone: &["--shallow-exclude=v1"], change: "", fetches: &[], shallow_at_end: true,
    };
    new shallow_exclude_two_refs: Case {
        fixture: "history", clone: &["--shallow-exclude=side-tip", "--shallow-exclude=v1", "--no-single-branch"],
        change: "", fetches: &[], shallow_at_end: true,
    };
    all deepen_relative: Case {
        fixture: "history", clone: &["--depth=1"], change: "", fetches: &[&["--deepen=2"]], shallow_at_end: true,
    };
    new deepen_relative_twice_through_the_merge: Case {
        fixture: "history", clone: &["--depth=2"], change: "", fetches: &[&["--deepen=2"], &["--deepen=3"]],
        shallow_at_end: true,
    };
    all unshallow: Case {
        fixture: "history", clone: &["--depth=2", "--no-single-branch"], change: "", fetches: &[&["--unshallow"]],
        shallow_at_end: false,
    };
    all depth_fetch_on_a_shallow_clone: Case {
        fixture: "history", clone: &["--depth=2"], change: NEW_COMMITS, fetches: &[&["--depth=4"]],
        shallow_at_end: true,
    };
    new plain_fetch_into_a_shallow_clone: Case {
        fixture: "history", clone: &["--depth=1", "--no-single-branch"], change: NEW_COMMITS, fetches: &[&[]],
        shallow_at_end: true,
    };
    new shallow_since_fetch_on_a_shallow_clone: Case {
        fixture: "history", clone: &["--depth=1"], change: "", fetches: &[&["--shallow-since={since}"]],
        shallow_at_end: true,
    };
    all clone_from_a_shallow_server: Case {
        fixture: "shallowsrv", clone: &[], change: "", fetches: &[], shallow_at_end: true,
    };
    new depth_1_from_a_shallow_server_then_unshallow: Case {
        fixture: "shallowsrv", clone: &["--depth=1", "--no-single-branch"], change: "", fetches: &[&["--unshallow"]],
        shallow_at_end: true,
    };
}

// ---------------------------------------------------------------------------
// Raw protocol: the exact shallow lines and errors

fn serve_raw(sb: &Sandbox, server: Server, repo: &Path, v2: bool, lines: &[String]) -> Output {
    let req = pktline::request(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let proto = if v2 { Some("version=2") } else { None };
    sb.serve(server, &["--stateless-rpc", repo.to_str().unwrap()], proto, Some(&req))
}

fn v2_fetch(wants: &[String], args: &[String]) -> Vec<String> {
    let mut r: Vec<String> = ["command=fetch", "object-format=sha1", "0001", "no-progress", "ofs-delta"]
        .map(String::from)
        .to_vec();
    r.extend(wants.iter().map(|w| format!("want {w}")));
    r.extend(args.iter().cloned());
    r.push("done".into());
    r.push("0000".into());
    r
}

fn v0_fetch(wants: &[String], args: &[String]) -> Vec<String> {
    // `cap:<name>` arguments are capabilities (e.g. `cap:deepen-relative`).
    let mut caps =
        "multi_ack_detailed side-band-64k ofs-delta no-progress shallow deepen-since deepen-not".to_owned();
    for a in args.iter().filter_map(|a| a.strip_prefix("cap:")) {
        caps.push(' ');
        caps.push_str(a);
    }
    let mut r = vec![format!("want {} {caps}", wants[0])];
    r.extend(wants[1..].iter().map(|w| format!("want {w}")));
    r.extend(args.iter().filter(|a| !a.starts_with("cap:")).cloned());
    r.push("0000".into());
    r.push("done".into());
    r
}

/// `<keyword> rev:<rev>` becomes `<keyword> <oid>`, `<keyword> ct:<rev>` `<keyword> <commit time>`.
fn resolve_arg(sb: &Sandbox, src: &Path, a: &str) -> String {
    if let Some((k, rev)) = a.split_once(" rev:") {
        format!("{k} {}", sb.rev_parse(src, rev))
    } else if let Some((k, rev)) = a.split_once(" ct:") {
        format!("{k} {}", sb.git(src, &["log", "-1", "--format=%ct", rev]).trim())
    } else {
        a.to_owned()
    }
}

/// The text lines of a response (everything before and outside the pack) must equal git's,
/// and the packs must hold the same objects.
fn raw_response_matches_git(name: &str, v2: bool, wants: &[&str], args: &[&str]) {
    let sb = Sandbox::new(&format!("shallow-raw-{name}"));
    let src = fixture("history");
    let wants: Vec<String> = wants.iter().map(|w| sb.rev_parse(&src, w)).collect();
    let args: Vec<String> = args.iter().map(|a| resolve_arg(&sb, &src, a)).collect();
    let req = if v2 { v2_fetch(&wants, &args) } else { v0_fetch(&wants, &args) };
    let mut results = Vec::new();
    for server in BOTH {
        let out = serve_raw(&sb, server, &src, v2, &req);
        assert!(out.status.success(), "{name}: {}:\n{out}", server_name(server));
        let r = pktline::parse_fetch_response(&out.stdout);
        assert!(r.band3.is_empty(), "{}: band 3: {}", server_name(server), String::from_utf8_lossy(&r.band3));
        results.push(r);
    }
    let (git, ours) = (&results[0], &results[1]);
    eprintln!("request:\n{}\ngit answered {:?}", req.join("\n"), git.lines);
    assert!(
        git.lines.iter().any(|l| l.starts_with("shallow ") || l.starts_with("unshallow ")),
        "scenario is off: git sent no shallow lines: {:?}",
        git.lines
    );
    assert_eq!(ours.lines, git.lines, "{name}: response lines (left packserve, right git)");
    assert_eq!(
        pktline::pack_header_count(&ours.pack),
        pktline::pack_header_count(&git.pack),
        "{name}: objects in the pack"
    );
}

#[test]
fn raw_v0_deepen_2_shallow_lines() {
    raw_response_matches_git("v0-deepen", false, &["main", "side-tip"], &["deepen 2"])
}

#[test]
fn raw_v2_deepen_2_shallow_info() {
    raw_response_matches_git("v2-deepen", true, &["main", "side-tip"], &["deepen 2"])
}

#[test]
fn raw_v2_unshallow_lines_when_deepening() {
    // The client says main~1 is its shallow boundary and asks for depth 4: git answers with
    // `unshallow main~1` and the new boundary.
    raw_response_matches_git(
        "v2-unshallow",
        true,
        &["main"],
        &["shallow rev:main~1", "have rev:main~1", "deepen 4"],
    )
}

#[test]
fn raw_v0_unshallow_lines_when_deepening() {
    raw_response_matches_git("v0-unshallow", false, &["main"], &["shallow rev:main~1", "deepen 4"])
}

#[test]
fn raw_v2_deepen_relative() {
    raw_response_matches_git(
        "v2-deepen-relative",
        true,
        &["main"],
        &["shallow rev:main~1", "have rev:main~1", "deepen 2", "deepen-relative"],
    )
}

#[test]
fn raw_v0_deepen_relative() {
    raw_response_matches_git(
        "v0-deepen-relative",
        false,
        &["main"],
        &["cap:deepen-relative", "shallow rev:main~1", "deepen 2"],
    )
}

#[test]
fn raw_v2_deepen_since_and_deepen_not() {
    raw_response_matches_git("v2-deepen-since", true, &["main", "side-tip"], &["deepen-since ct:main~5"]);
    raw_response_matches_git("v0-deepen-since", false, &["main", "side-tip"], &["deepen-since ct:main~5"]);
    raw_response_matches_git("v2-deepen-not", true, &["main"], &["deepen-not refs/tags/v1"]);
    raw_response_matches_git("v2-deepen-not-branch", true, &["main"], &["deepen-not side-tip"]);
}

/// A request git refuses: both servers must fail (non-zero exit), with git's text on stderr
/// (which a git client shows as is) and, where git sends one, the same ERR line.
fn refused_like_git(name: &str, v2: bool, args: &[&str], needle: &str) {
    let sb = Sandbox::new(&format!("shallow-err-{name}"));
    let src = fixture("history");
    let wants = vec![sb.rev_parse(&src, "main")];
    let args: Vec<String> = args.iter().map(|a| resolve_arg(&sb, &src, a)).collect();
    let req = if v2 { v2_fetch(&wants, &args) } else { v0_fetch(&wants, &args) };
    let mut errs = Vec::new();
    for server in BOTH {
        let who = server_name(server);
        let out = serve_raw(&sb, server, &src, v2, &req);
        assert!(!out.status.success(), "{name}: {who} accepted the request:\n{out}");
        assert!(out.stderr_str().contains(needle), "{name}: {who}: stderr lacks {needle:?}:\n{out}");
        let (pkts, _) = pktline::parse_prefix(&out.stdout);
        assert!(
            !pkts.iter().any(|p| matches!(p, Pkt::Data(d) if d.windows(4).any(|w| w == b"PACK"))),
            "{name}: {who} sent a pack"
        );
        errs.push(pkts.iter().filter_map(Pkt::text).filter(|t| t.starts_with("ERR ")).collect::<Vec<_>>());
    }
    assert_eq!(errs[1], errs[0], "{name}: ERR lines (left packserve, right git)");
}

#[test]
fn deepen_0_is_invalid_v0() {
    refused_like_git("deepen0-v0", false, &["deepen 0"], "Invalid deepen: deepen 0")
}

#[test]
fn deepen_0_is_invalid_v2() {
    refused_like_git("deepen0-v2", true, &["deepen 0"], "Invalid deepen: deepen 0")
}

#[test]
fn deepen_with_deepen_since_is_refused_v0() {
    refused_like_git(
        "deepen-since-v0",
        false,
        &["deepen 2", "deepen-since 1112912000"],
        "deepen and deepen-since (or deepen-not) cannot be used together",
    )
}

#[test]
fn deepen_with_deepen_not_is_refused_v2() {
    refused_like_git(
        "deepen-not-v2",
        true,
        &["deepen 2", "deepen-not refs/tags/v1"],
        "deepen and deepen-since (or deepen-not) cannot be used together",
    )
}

#[test]
fn deepen_not_of_an_unknown_ref_is_refused_v2() {
    refused_like_git("deepen-not-unknown", true, &["deepen-not refs/heads/nope"], "ambiguous deepen-not")
}

#[test]
fn shallow_line_naming_a_tree_is_refused_v2() {
    refused_like_git("shallow-tree", true, &["shallow rev:main^{tree}", "deepen 1"], "invalid shallow object")
}
