//! The server spoken to directly in pkt-lines: advertisements (v0, v1, v2), refusal of wants
//! that are not advertised tips, and the stateless-RPC shape used by smart HTTP.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::Path;

fn advertise(
    sb: &Sandbox,
    server: Server,
    repo: &Path,
    extra: &[&str],
    git_protocol: Option<&str>,
) -> Output {
    let repo = repo.to_str().unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    args.push(repo);
    let out = sb.serve(server, &args, git_protocol, None);
    if !out.status.success() {
        panic!("advertisement through {server:?} failed:\n{out}");
    }
    out
}

const REQUIRED_V0_CAPS: &[&str] = &[
    "object-format=sha1",
    "ofs-delta",
    "side-band-64k",
    "multi_ack_detailed",
    "thin-pack",
    "include-tag",
    "no-done",
];

/// `--advertise-refs` (v0, or v1 with `version 1` first): ref lines identical to git's; the
/// capability list holds what clients rely on and the same symref as git's.
fn advertisement_matches_git(fixture_name: &str, flags: &[&str], git_protocol: Option<&str>) {
    let src = fixture(fixture_name);
    let sb = Sandbox::new(&format!("advertise-{fixture_name}"));
    let ours =
        pktline::parse_v0_advertisement(&advertise(&sb, Server::UnderTest, &src, flags, git_protocol).stdout);
    let git =
        pktline::parse_v0_advertisement(&advertise(&sb, Server::Reference, &src, flags, git_protocol).stdout);
    assert_eq!(ours.version_line, git.version_line, "version line");
    assert_eq!(
        ours.ref_lines,
        git.ref_lines,
        "advertised ref lines differ\n--- packserve ---\n{}\n--- git ---\n{}",
        ours.ref_lines.join("\n"),
        git.ref_lines.join("\n")
    );
    for cap in REQUIRED_V0_CAPS {
        assert!(ours.caps.iter().any(|c| c == cap), "capability {cap} missing from {:?}", ours.caps);
    }
    let agent = expected_agent_prefix();
    assert!(ours.caps.iter().any(|c| c.starts_with(&agent)), "no {agent}... capability in {:?}", ours.caps);
    assert_eq!(ours.caps_with_prefix("symref="), git.caps_with_prefix("symref="), "symref capabilities");
}

macro_rules! advertisement_tests {
    ($($fixture:ident),* $(,)?) => {$(
        mod $fixture {
            use super::*;
            #[test] fn advertise_refs_v0() { advertisement_matches_git(stringify!($fixture), &["--advertise-refs"], None) }
            #[test] fn advertise_refs_v1() { advertisement_matches_git(stringify!($fixture), &["--advertise-refs"], Some("version=1")) }
            #[test] fn stateless_advertise_refs_v0() {
                advertisement_matches_git(stringify!($fixture), &["--stateless-rpc", "--advertise-refs"], None)
            }
            #[test] fn http_backend_info_refs_v0() {
                advertisement_matches_git(stringify!($fixture), &["--http-backend-info-refs"], None)
            }
        }
    )*};
}

advertisement_tests!(linear, tags, merges, detached, unborn, empty);

#[test]
fn main_is_the_symref_of_a_normal_repository() {
    let sb = Sandbox::new("advertise-symref");
    let out = advertise(&sb, Server::UnderTest, &fixture("tags"), &["--advertise-refs"], None);
    let adv = pktline::parse_v0_advertisement(&out.stdout);
    assert!(adv.caps.iter().any(|c| c == "symref=HEAD:refs/heads/main"), "caps: {:?}", adv.caps);
    assert!(adv.ref_lines[0].ends_with(" HEAD"), "first ref line is not HEAD: {}", adv.ref_lines[0]);
}

#[test]
fn http_backend_info_refs_is_advertise_refs() {
    let sb = Sandbox::new("info-refs");
    let src = fixture("merges");
    let a = advertise(&sb, Server::UnderTest, &src, &["--advertise-refs"], None);
    let b = advertise(&sb, Server::UnderTest, &src, &["--http-backend-info-refs"], None);
    assert!(a.stdout == b.stdout, "--http-backend-info-refs output differs from --advertise-refs");
}

/// v2: `version 2`, then the capabilities, then a flush; no refs.
fn v2_capabilities(flags: &[&str]) {
    let sb = Sandbox::new("advertise-v2");
    let out = advertise(&sb, Server::UnderTest, &fixture("tags"), flags, Some("version=2"));
    let pkts = pktline::parse_all(&out.stdout);
    let shown = pktline::render(&pkts);
    assert_eq!(pkts.first().and_then(Pkt::text).as_deref(), Some("version 2"), "v2 advertisement:\n{shown}");
    assert_eq!(pkts.last(), Some(&Pkt::Flush), "v2 advertisement does not end in a flush:\n{shown}");
    let caps: Vec<String> = pkts[1..pkts.len() - 1].iter().map(|p| p.text().expect("data line")).collect();
    for want in ["ls-refs=unborn", "server-option", "object-format=sha1"] {
        assert!(caps.iter().any(|c| c == want), "v2 capability {want} missing:\n{shown}");
    }
    assert!(
        caps.iter().any(|c| c == "fetch" || c.starts_with("fetch=")),
        "v2 capability fetch missing:\n{shown}"
    );
    let agent = expected_agent_prefix();
    assert!(caps.iter().any(|c| c.starts_with(&agent)), "{agent}... missing:\n{shown}");
    assert!(!caps.iter().any(|c| c.contains("refs/")), "v2 advertisement lists refs:\n{shown}");
}

#[test]
fn advertise_refs_v2_capabilities() {
    v2_capabilities(&["--advertise-refs"])
}

#[test]
fn stateless_advertise_refs_v2_capabilities() {
    v2_capabilities(&["--stateless-rpc", "--advertise-refs"])
}

/// `GIT_PROTOCOL` is read like git reads it: colon-separated keys, the highest known
/// `version=` wins, unknown values mean v0.
#[test]
fn git_protocol_environment_is_parsed_like_git() {
    let sb = Sandbox::new("git-protocol-env");
    let src = fixture("linear");
    for value in [
        "",
        "version=0",
        "version=1",
        "version=2",
        "bogus",
        "version=3",
        "foo=bar:version=2",
        "version=1:version=2",
    ] {
        let ours = advertise(&sb, Server::UnderTest, &src, &["--advertise-refs"], Some(value));
        let git = advertise(&sb, Server::Reference, &src, &["--advertise-refs"], Some(value));
        let first =
            |o: &Output| pktline::parse_all(&o.stdout).first().and_then(Pkt::text).unwrap_or_default();
        let kind = |o: &Output| {
            let f = first(o);
            if f.starts_with("version ") {
                f
            } else {
                "v0".to_owned()
            }
        };
        assert_eq!(kind(&ours), kind(&git), "GIT_PROTOCOL={value:?}");
        if kind(&git) != "version 2" {
            let a = pktline::parse_v0_advertisement(&ours.stdout);
            let b = pktline::parse_v0_advertisement(&git.stdout);
            assert_eq!(a.ref_lines, b.ref_lines, "GIT_PROTOCOL={value:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Wants that are not advertised tips

/// Sends `want <oid>` (v0/v1, not stateless) and returns the server's output.
fn send_want(sb: &Sandbox, server: Server, repo: &Path, oid: &str, git_protocol: Option<&str>) -> Output {
    let req = pktline::request(&[
        &format!("want {oid} multi_ack_detailed side-band-64k ofs-delta"),
        "0000",
        "done",
    ]);
    sb.serve(server, &[repo.to_str().unwrap()], git_protocol, Some(&req))
}

#[track_caller]
fn assert_not_our_ref(out: &Output, oid: &str, who: &str) {
    let (pkts, _) = pktline::parse_prefix(&out.stdout);
    let want = format!("ERR upload-pack: not our ref {oid}");
    assert!(
        pkts.iter().any(|p| p.text().as_deref() == Some(want.as_str())),
        "{who}: no `{want}` pkt-line in the output:\n{}\n{out}",
        pktline::render(&pkts)
    );
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{who}: exit status must be a non-zero exit code, got {}",
        out.status
    );
    assert!(
        !pkts.iter().any(|p| matches!(p, Pkt::Data(d) if d.windows(4).any(|w| w == b"PACK"))),
        "{who}: sent a pack anyway"
    );
}

fn not_our_ref(oid_of: impl Fn(&Sandbox, &Path) -> String, git_protocol: Option<&str>) {
    let sb = Sandbox::new("not-our-ref");
    let repo = sb.fixture_copy("merges");
    let oid = oid_of(&sb, &repo);
    let git = send_want(&sb, Server::Reference, &repo, &oid, git_protocol);
    assert_not_our_ref(&git, &oid, "git-upload-pack (sanity check of the test)");
    let ours = send_want(&sb, Server::UnderTest, &repo, &oid, git_protocol);
    assert_not_our_ref(&ours, &oid, "packserve");
}

#[test]
fn want_of_a_blob_is_not_our_ref_v0() {
    not_our_ref(|sb, repo| sb.rev_parse(repo, "main:README"), None)
}

#[test]
fn want_of_an_inner_commit_is_not_our_ref_v0() {
    not_our_ref(|sb, repo| sb.rev_parse(repo, "main~2"), None)
}

#[test]
fn want_of_an_unreachable_commit_is_not_our_ref_v0() {
    not_our_ref(
        |sb, repo| {
            let tree = sb.rev_parse(repo, "main^{tree}");
            sb.git(repo, &["commit-tree", "-m", "dangling", &tree]).trim().to_owned()
        },
        None,
    )
}

#[test]
fn want_of_an_unreachable_commit_is_not_our_ref_v1() {
    not_our_ref(
        |sb, repo| {
            let tree = sb.rev_parse(repo, "main^{tree}");
            sb.git(repo, &["commit-tree", "-m", "dangling", &tree]).trim().to_owned()
        },
        Some("version=1"),
    )
}

#[test]
fn want_of_a_missing_object_is_not_our_ref_v0() {
    not_our_ref(|_, _| "1111111111111111111111111111111111111111".to_owned(), None)
}

// ---------------------------------------------------------------------------
// Stateless RPC (smart HTTP's shape)

/// Feeds a pack to `git index-pack --stdin --strict` in a fresh bare repository and returns
/// that repository's objects.
fn index_pack(sb: &Sandbox, pack: &[u8], who: &str) -> std::collections::BTreeSet<String> {
    let dir = sb.unique("index-pack");
    sb.git(sb.path(), &["init", "-q", "--bare", dir.to_str().unwrap()]);
    let mut cmd = sb.command(Client::New.program());
    cmd.current_dir(&dir).args(["index-pack", "--stdin", "--strict"]);
    let out = run(cmd, Some(pack));
    if !out.status.success() {
        panic!("{who}: git index-pack rejected the pack:\n{out}");
    }
    sb.objects(&dir)
}

/// The `<oid>`s of the branches in a v0 advertisement.
fn branch_tips(adv: &pktline::Advertisement) -> Vec<String> {
    adv.ref_lines
        .iter()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, name)| name.starts_with("refs/heads/"))
        .map(|(oid, _)| oid.to_owned())
        .collect()
}

fn stateless_v0_fetch(sb: &Sandbox, server: Server, repo: &Path) -> pktline::FetchResponse {
    let repo_s = repo.to_str().unwrap();
    let adv = sb.serve(server, &["--stateless-rpc", "--advertise-refs", repo_s], None, None).assert_success();
    let adv = pktline::parse_v0_advertisement(&adv.stdout);
    let tips = branch_tips(&adv);
    assert!(tips.len() > 1, "fixture should have several branches");
    let mut lines = vec![format!(
        "want {} multi_ack_detailed side-band-64k thin-pack no-progress ofs-delta agent=packserve-tests/1",
        tips[0]
    )];
    lines.extend(tips[1..].iter().map(|t| format!("want {t}")));
    lines.push("0000".into());
    lines.push("done".into());
    let req = pktline::request(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    let out = sb.serve(server, &["--stateless-rpc", repo_s], None, Some(&req));
    if !out.status.success() {
        panic!("{server:?}: stateless fetch failed:\n{out}");
    }
    pktline::parse_fetch_response(&out.stdout)
}

#[test]
fn stateless_rpc_v0_want_done_gives_a_pack() {
    let sb = Sandbox::new("stateless-v0");
    let src = fixture("merges");
    let ours = stateless_v0_fetch(&sb, Server::UnderTest, &src);
    let git = stateless_v0_fetch(&sb, Server::Reference, &src);
    assert_eq!(ours.lines, vec!["NAK".to_owned()], "lines before the pack");
    assert!(ours.band3.is_empty(), "band 3 error: {}", String::from_utf8_lossy(&ours.band3));
    assert!(ours.ended_with_flush, "response does not end with a flush");
    assert!(ours.pack.starts_with(b"PACK"), "band 1 does not start with a pack header");
    let our_objects = index_pack(&sb, &ours.pack, "packserve");
    let git_objects = index_pack(&sb, &git.pack, "git-upload-pack");
    assert!(
        our_objects == git_objects,
        "pack contents differ: {}",
        set_diff("packserve", &our_objects, "git", &git_objects)
    );
    assert_eq!(pktline::pack_header_count(&ours.pack), Some(our_objects.len() as u32));
}

fn v2_request(sb: &Sandbox, server: Server, repo: &Path, lines: &[&str]) -> Output {
    let req = pktline::request(lines);
    let out = sb.serve(server, &["--stateless-rpc", repo.to_str().unwrap()], Some("version=2"), Some(&req));
    if !out.status.success() {
        panic!("{server:?}: stateless v2 request failed:\n{out}");
    }
    out
}

const LS_REFS: &[&str] = &[
    "command=ls-refs",
    "agent=packserve-tests/1",
    "object-format=sha1",
    "0001",
    "peel",
    "symrefs",
    "unborn",
    "0000",
];

#[test]
fn stateless_rpc_v2_ls_refs_matches_git() {
    let sb = Sandbox::new("stateless-v2-ls-refs");
    for fixture_name in ["tags", "merges", "unborn", "empty", "detached"] {
        let src = fixture(fixture_name);
        let ours = v2_request(&sb, Server::UnderTest, &src, LS_REFS);
        let git = v2_request(&sb, Server::Reference, &src, LS_REFS);
        assert!(
            ours.stdout == git.stdout,
            "{fixture_name}: ls-refs differs\n--- packserve ---\n{}--- git ---\n{}",
            pktline::render(&pktline::parse_prefix(&ours.stdout).0),
            pktline::render(&pktline::parse_all(&git.stdout))
        );
    }
}

#[test]
fn stateless_rpc_v2_ls_refs_prefix() {
    let sb = Sandbox::new("stateless-v2-ls-refs-prefix");
    let src = fixture("merges");
    let req = [
        "command=ls-refs",
        "object-format=sha1",
        "0001",
        "symrefs",
        "ref-prefix refs/heads/feature-",
        "ref-prefix HEAD",
        "0000",
    ];
    let ours = v2_request(&sb, Server::UnderTest, &src, &req);
    let git = v2_request(&sb, Server::Reference, &src, &req);
    let listed = pktline::render(&pktline::parse_prefix(&ours.stdout).0);
    assert!(
        ours.stdout == git.stdout,
        "ls-refs with ref-prefix differs\n--- packserve ---\n{listed}--- git ---\n{}",
        pktline::render(&pktline::parse_all(&git.stdout))
    );
    assert!(listed.contains("refs/heads/feature-a") && !listed.contains("refs/heads/topic"), "{listed}");
}

fn stateless_v2_fetch(sb: &Sandbox, server: Server, repo: &Path, wants: &[String]) -> pktline::FetchResponse {
    let mut lines = vec![
        "command=fetch".to_owned(),
        "agent=packserve-tests/1".into(),
        "object-format=sha1".into(),
        "0001".into(),
    ];
    lines.extend(["thin-pack", "no-progress", "ofs-delta"].map(String::from));
    lines.extend(wants.iter().map(|w| format!("want {w}")));
    lines.push("done".into());
    lines.push("0000".into());
    let out = v2_request(sb, server, repo, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    pktline::parse_fetch_response(&out.stdout)
}

#[test]
fn stateless_rpc_v2_fetch_gives_a_pack() {
    let sb = Sandbox::new("stateless-v2-fetch");
    let src = fixture("multipack");
    let wants = vec![sb.rev_parse(&src, "refs/heads/main"), sb.rev_parse(&src, "refs/heads/dev")];
    let ours = stateless_v2_fetch(&sb, Server::UnderTest, &src, &wants);
    let git = stateless_v2_fetch(&sb, Server::Reference, &src, &wants);
    assert_eq!(ours.lines.first().map(String::as_str), Some("packfile"), "first section: {:?}", ours.lines);
    assert!(ours.band3.is_empty(), "band 3 error: {}", String::from_utf8_lossy(&ours.band3));
    assert!(ours.ended_with_flush, "response does not end with a flush");
    assert!(ours.pack.starts_with(b"PACK"), "band 1 does not start with a pack header");
    let our_objects = index_pack(&sb, &ours.pack, "packserve");
    let git_objects = index_pack(&sb, &git.pack, "git-upload-pack");
    assert!(
        our_objects == git_objects,
        "pack contents differ: {}",
        set_diff("packserve", &our_objects, "git", &git_objects)
    );
    assert_eq!(pktline::pack_header_count(&ours.pack), Some(our_objects.len() as u32));
}

/// v2 fetch with a `have`: only what the client lacks comes back (thin pack allowed).
#[test]
fn stateless_rpc_v2_fetch_with_have() {
    let sb = Sandbox::new("stateless-v2-have");
    let src = fixture("linear");
    let want = sb.rev_parse(&src, "main");
    let have = sb.rev_parse(&src, "main~1");
    let lines = [
        "command=fetch",
        "object-format=sha1",
        "0001",
        "thin-pack",
        "no-progress",
        "ofs-delta",
        &format!("want {want}"),
        &format!("have {have}"),
        "done",
        "0000",
    ];
    let ours = pktline::parse_fetch_response(&v2_request(&sb, Server::UnderTest, &src, &lines).stdout);
    let git = pktline::parse_fetch_response(&v2_request(&sb, Server::Reference, &src, &lines).stdout);
    assert_eq!(ours.lines.first().map(String::as_str), Some("packfile"), "first section: {:?}", ours.lines);
    let n = pktline::pack_header_count(&ours.pack);
    assert_eq!(n, pktline::pack_header_count(&git.pack), "object count for one commit on top of a have");
}

// ---------------------------------------------------------------------------
// One negotiation round, stateless: the ACK/NAK lines must be git's, exactly

const UNKNOWN: &str = "1111111111111111111111111111111111111111";

fn negotiation_round(
    sb: &Sandbox,
    server: Server,
    repo: &Path,
    request: &[String],
    git_protocol: Option<&str>,
) -> pktline::FetchResponse {
    let req = pktline::request(&request.iter().map(String::as_str).collect::<Vec<_>>());
    let out = sb.serve(server, &["--stateless-rpc", repo.to_str().unwrap()], git_protocol, Some(&req));
    if !out.status.success() {
        panic!("{server:?}: stateless request failed:\n{out}");
    }
    pktline::parse_fetch_response(&out.stdout)
}

fn negotiation_matches_git(name: &str, haves: &[&str], caps: &str, git_protocol: Option<&str>, done: bool) {
    let sb = Sandbox::new(&format!("negotiation-{name}"));
    let src = fixture("linear");
    let want = sb.rev_parse(&src, "main");
    let haves: Vec<String> = haves
        .iter()
        .map(|h| if *h == "unknown" { UNKNOWN.to_owned() } else { sb.rev_parse(&src, h) })
        .collect();
    let request: Vec<String> = if git_protocol == Some("version=2") {
        let mut r: Vec<String> = ["command=fetch", "object-format=sha1", "0001", "no-progress", "ofs-delta"]
            .map(String::from)
            .to_vec();
        r.push(format!("want {want}"));
        r.extend(haves.iter().map(|h| format!("have {h}")));
        if done {
            r.push("done".into());
        }
        r.push("0000".into());
        r
    } else {
        let mut r = vec![format!("want {want} {caps}"), "0000".into()];
        r.extend(haves.iter().map(|h| format!("have {h}")));
        r.push(if done { "done".into() } else { "0000".into() });
        r
    };
    let ours = negotiation_round(&sb, Server::UnderTest, &src, &request, git_protocol);
    let git = negotiation_round(&sb, Server::Reference, &src, &request, git_protocol);
    eprintln!("{name}: git answered {:?} + pack {:?}", git.lines, pktline::pack_header_count(&git.pack));
    assert_eq!(ours.lines, git.lines, "{name}: response lines differ (left packserve, right git)");
    assert!(ours.band3.is_empty(), "band 3 error: {}", String::from_utf8_lossy(&ours.band3));
    assert_eq!(
        pktline::pack_header_count(&ours.pack),
        pktline::pack_header_count(&git.pack),
        "{name}: pack object count (None = no pack)"
    );
}

const V0_CAPS: &str = "multi_ack_detailed side-band-64k ofs-delta no-progress";

#[test]
fn v0_round_common_haves_ready_and_no_done() {
    negotiation_matches_git(
        "v0-ready-no-done",
        &["main~2", "unknown", "main~5"],
        &format!("{V0_CAPS} no-done"),
        None,
        false,
    )
}

#[test]
fn v0_round_common_haves_without_no_done() {
    negotiation_matches_git("v0-ready", &["main~2", "unknown", "main~5"], V0_CAPS, None, false)
}

#[test]
fn v0_round_only_unknown_haves() {
    negotiation_matches_git("v0-unknown", &["unknown"], &format!("{V0_CAPS} no-done"), None, false)
}

#[test]
fn v0_round_multi_ack_plain() {
    negotiation_matches_git(
        "v0-multi-ack",
        &["main~3", "unknown"],
        "multi_ack side-band-64k ofs-delta no-progress",
        None,
        false,
    )
}

#[test]
fn v0_done_with_haves() {
    negotiation_matches_git("v0-done", &["main~3", "unknown"], V0_CAPS, None, true)
}

#[test]
fn v2_round_common_haves() {
    negotiation_matches_git("v2-ready", &["main~2", "unknown", "main~5"], "", Some("version=2"), false)
}

#[test]
fn v2_round_only_unknown_haves() {
    negotiation_matches_git("v2-unknown", &["unknown"], "", Some("version=2"), false)
}

// ---------------------------------------------------------------------------
// Which wants are allowed besides advertised tips

fn dangling_commit(sb: &Sandbox, repo: &Path) -> String {
    let tree = sb.rev_parse(repo, "main^{tree}");
    sb.git(repo, &["commit-tree", "-m", "dangling", &tree]).trim().to_owned()
}

fn stateless_v0_want(sb: &Sandbox, server: Server, repo: &Path, oid: &str) -> Output {
    let req = pktline::request(&[
        &format!("want {oid} multi_ack_detailed side-band-64k ofs-delta no-progress"),
        "0000",
        "done",
    ]);
    sb.serve(server, &["--stateless-rpc", repo.to_str().unwrap()], None, Some(&req))
}

/// Over stateless RPC refs may move between advertisement and request, so git (and packserve)
/// accept any commit reachable from a ref.
#[test]
fn stateless_v0_accepts_a_reachable_inner_commit() {
    let sb = Sandbox::new("stateless-reachable");
    let src = fixture("linear");
    let oid = sb.rev_parse(&src, "main~3");
    for server in [Server::Reference, Server::UnderTest] {
        let out = stateless_v0_want(&sb, server, &src, &oid);
        assert!(out.status.success(), "{server:?}:\n{out}");
        let r = pktline::parse_fetch_response(&out.stdout);
        assert!(r.pack.starts_with(b"PACK"), "{server:?}: no pack for a reachable commit");
        index_pack(&sb, &r.pack, &format!("{server:?}"));
    }
}

#[test]
fn stateless_v0_refuses_an_unreachable_commit() {
    let sb = Sandbox::new("stateless-unreachable");
    let repo = sb.fixture_copy("linear");
    let oid = dangling_commit(&sb, &repo);
    assert_not_our_ref(
        &stateless_v0_want(&sb, Server::Reference, &repo, &oid),
        &oid,
        "git-upload-pack (sanity check of the test)",
    );
    assert_not_our_ref(&stateless_v0_want(&sb, Server::UnderTest, &repo, &oid), &oid, "packserve");
}

fn v2_want(sb: &Sandbox, server: Server, repo: &Path, oid: &str) -> Output {
    let req = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        "ofs-delta",
        &format!("want {oid}"),
        "done",
        "0000",
    ]);
    sb.serve(server, &["--stateless-rpc", repo.to_str().unwrap()], Some("version=2"), Some(&req))
}

#[test]
fn v2_refuses_a_missing_object() {
    let sb = Sandbox::new("v2-missing");
    let repo = fixture("linear");
    assert_not_our_ref(
        &v2_want(&sb, Server::Reference, &repo, UNKNOWN),
        UNKNOWN,
        "git-upload-pack (sanity check of the test)",
    );
    assert_not_our_ref(&v2_want(&sb, Server::UnderTest, &repo, UNKNOWN), UNKNOWN, "packserve");
}

/// packserve's documented policy (stricter than git, which serves any object it has in v2):
/// an unreachable commit is refused with `not our ref`.
#[test]
fn v2_refuses_an_unreachable_commit() {
    let sb = Sandbox::new("v2-unreachable");
    let repo = sb.fixture_copy("linear");
    let oid = dangling_commit(&sb, &repo);
    assert_not_our_ref(&v2_want(&sb, Server::UnderTest, &repo, &oid), &oid, "packserve");
}

/// A reachable inner commit is fine in v2 (git allows it; so does packserve's policy).
#[test]
fn v2_accepts_a_reachable_inner_commit() {
    let sb = Sandbox::new("v2-reachable");
    let src = fixture("linear");
    let oid = sb.rev_parse(&src, "main~3");
    let mut sets = Vec::new();
    for server in [Server::Reference, Server::UnderTest] {
        let out = v2_want(&sb, server, &src, &oid);
        assert!(out.status.success(), "{server:?}:\n{out}");
        let r = pktline::parse_fetch_response(&out.stdout);
        assert_eq!(r.lines.first().map(String::as_str), Some("packfile"), "{server:?}");
        sets.push(index_pack(&sb, &r.pack, &format!("{server:?}")));
    }
    assert!(sets[0] == sets[1], "pack contents differ: {}", set_diff("git", &sets[0], "packserve", &sets[1]));
}
