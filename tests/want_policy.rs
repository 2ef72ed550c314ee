//! Which wants are served besides advertised tips: `uploadpack.allowTipSHA1InWant`,
//! `uploadpack.allowReachableSHA1InWant`, `uploadpack.allowAnySHA1InWant` and the default
//! `not our ref`, in v0 (raw requests and `git fetch origin <oid>`) and v2; `want-ref` with
//! `uploadpack.allowRefInWant`.
//!
//! DELIBERATE DIFFERENCE (tests named `packserve_policy_*`): in v2 git serves any object it has
//! unless told otherwise; packserve serves only objects reachable from a ref that is not hidden
//! (docs/compatibility.md, man page) unless `uploadpack.allowAnySHA1InWant` (or, for hidden tips and what they
//! reach, `allowTipSHA1InWant`/`allowReachableSHA1InWant`) says more. Those tests fail against
//! git-upload-pack by design.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::{Path, PathBuf};

/// A copy of the `hidden` fixture with refs/hidden hidden, `config` set, and a dangling commit
/// (returned) that no ref reaches.
fn server(sb: &Sandbox, config: &[(&str, &str)]) -> (PathBuf, String) {
    let src = sb.fixture_copy("hidden");
    sb.config(&src, "uploadpack.hideRefs", "refs/hidden");
    for (k, v) in config {
        sb.config(&src, k, v);
    }
    let dangling = sb
        .sh(&src, r#"echo dangling | git commit-tree -p main~1 "$(git rev-parse 'main^{tree}')""#)
        .trim()
        .to_owned();
    (src, dangling)
}

/// What `which` names: `dangling`, or a revision in the server.
fn oid_of(sb: &Sandbox, src: &Path, dangling: &str, which: &str) -> String {
    if which == "dangling" {
        dangling.to_owned()
    } else {
        sb.rev_parse(src, which)
    }
}

// ---------------------------------------------------------------------------
// Raw v0 requests (stateful, like git:// and ssh://)

fn v0_want(sb: &Sandbox, server: Server, repo: &Path, oid: &str) -> Output {
    let req = pktline::request(&[
        &format!("want {oid} multi_ack_detailed side-band-64k ofs-delta no-progress"),
        "0000",
        "done",
    ]);
    sb.serve(server, &[repo.to_str().unwrap()], None, Some(&req))
}

#[track_caller]
fn assert_not_our_ref(out: &Output, oid: &str, who: &str) {
    let (pkts, _) = pktline::parse_prefix(&out.stdout);
    let want = format!("ERR upload-pack: not our ref {oid}");
    assert!(
        pkts.iter().any(|p| p.text().as_deref() == Some(want.as_str())),
        "{who}: no `{want}` pkt-line:\n{}\n{out}",
        pktline::render(&pkts)
    );
    assert!(!out.status.success(), "{who}: exit status must be non-zero");
    assert!(
        !pkts.iter().any(|p| matches!(p, Pkt::Data(d) if d.windows(4).any(|w| w == b"PACK"))),
        "{who}: sent a pack anyway"
    );
}

/// The pack's object count from a successful v0/v2 response; panics when there is none.
#[track_caller]
fn pack_count(out: &Output, who: &str) -> u32 {
    assert!(out.status.success(), "{who}: request failed:\n{out}");
    let r = pktline::parse_fetch_response(&out.stdout);
    assert!(r.band3.is_empty(), "{who}: band 3: {}", String::from_utf8_lossy(&r.band3));
    pktline::pack_header_count(&r.pack).unwrap_or_else(|| panic!("{who}: no pack:\n{out}"))
}

/// Sends `want <which>` to both servers: both refuse with `not our ref`, or both send the same
/// number of objects.
fn v0_like_git(config: &[(&str, &str)], which: &str, served: bool) {
    let sb = Sandbox::new(&format!("want-v0-{which}"));
    let (src, dangling) = server(&sb, config);
    let oid = oid_of(&sb, &src, &dangling, which);
    let git = v0_want(&sb, Server::Reference, &src, &oid);
    let ours = v0_want(&sb, Server::UnderTest, &src, &oid);
    if served {
        let n = pack_count(&git, "git-upload-pack (sanity check of the test)");
        assert_eq!(pack_count(&ours, "packserve"), n, "objects sent for {which} (packserve, git)");
    } else {
        assert_not_our_ref(&git, &oid, "git-upload-pack (sanity check of the test)");
        assert_not_our_ref(&ours, &oid, "packserve");
    }
}

const TIP: (&str, &str) = ("uploadpack.allowTipSHA1InWant", "true");
const REACHABLE: (&str, &str) = ("uploadpack.allowReachableSHA1InWant", "true");
const ANY: (&str, &str) = ("uploadpack.allowAnySHA1InWant", "true");

#[test]
fn v0_default_refuses_a_hidden_tip() {
    v0_like_git(&[], "refs/hidden/secret", false)
}

#[test]
fn v0_default_refuses_an_inner_commit() {
    v0_like_git(&[], "main~3", false)
}

#[test]
fn v0_allow_tip_serves_a_hidden_tip() {
    v0_like_git(&[TIP], "refs/hidden/secret", true)
}

#[test]
fn v0_allow_tip_refuses_what_a_hidden_tip_reaches() {
    v0_like_git(&[TIP], "refs/hidden/secret~1", false)
}

#[test]
fn v0_allow_tip_refuses_an_inner_commit() {
    v0_like_git(&[TIP], "main~3", false)
}

#[test]
fn v0_allow_reachable_serves_an_inner_commit() {
    v0_like_git(&[REACHABLE], "main~3", true)
}

/// git counts hidden refs as tips for this check too.
#[test]
fn v0_allow_reachable_serves_what_a_hidden_ref_reaches() {
    v0_like_git(&[REACHABLE], "refs/hidden/secret~1", true)
}

#[test]
fn v0_allow_reachable_refuses_a_dangling_commit() {
    v0_like_git(&[REACHABLE], "dangling", false)
}

#[test]
fn v0_allow_any_serves_a_dangling_commit() {
    v0_like_git(&[ANY], "dangling", true)
}

#[test]
fn v0_allow_any_serves_a_blob() {
    v0_like_git(&[ANY], "main:f1.txt", true)
}

/// The v0 capabilities that tell clients what they may ask for, as git advertises them.
#[test]
fn v0_capabilities_follow_the_configuration() {
    let sb = Sandbox::new("want-caps");
    for (config, caps) in [
        (vec![], vec![]),
        (vec![TIP], vec!["allow-tip-sha1-in-want"]),
        (vec![REACHABLE], vec!["allow-reachable-sha1-in-want"]),
        (vec![ANY], vec!["allow-reachable-sha1-in-want", "allow-tip-sha1-in-want"]),
    ] {
        let (src, _) = server(&sb, &config);
        let mut got = Vec::new();
        for server in BOTH {
            let out =
                sb.serve(server, &["--advertise-refs", src.to_str().unwrap()], None, None).assert_success();
            let ad = pktline::parse_v0_advertisement(&out.stdout);
            let mut c: Vec<String> = ad.caps.into_iter().filter(|c| c.starts_with("allow-")).collect();
            c.sort();
            got.push(c);
        }
        assert_eq!(got[0], caps, "scenario is off: git advertises {:?} for {config:?}", got[0]);
        assert_eq!(got[1], got[0], "allow-* capabilities for {config:?} (left packserve, right git)");
        std::fs::remove_dir_all(&src).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Through git clients: `git fetch origin <oid>`

/// `git fetch origin <oid>` into an empty repository; whether it works must match git (and
/// `expect` checks the scenario).
fn fetch_by_id_like_git(config: &[(&str, &str)], which: &str, expect: bool, client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("want-fetch-{}", label(client, protocol)));
    let (src, dangling) = server(&sb, config);
    let oid = oid_of(&sb, &src, &dangling, which);
    let mut dests = Vec::new();
    for server in BOTH {
        let who = server_name(server);
        let repo = sb.empty_clone_of(&src, &format!("repo-{who}"));
        let t = sb.try_fetch_via(
            client,
            protocol,
            &server.program(),
            &repo,
            &["origin", &format!("{oid}:refs/fetched")],
        );
        if server == Server::Reference {
            assert_eq!(t.output.status.success(), expect, "scenario is off: git-upload-pack:\n{}", t.output);
        } else {
            assert_eq!(
                t.output.status.success(),
                expect,
                "packserve {} the fetch of {which} git {}:\n{}",
                if expect { "refused" } else { "allowed" },
                if expect { "serves" } else { "refuses" },
                t.output
            );
        }
        dests.push(repo);
    }
    if expect {
        sb.assert_same_repo(&dests[1], &dests[0], &format!("fetch of {which}"));
        assert_eq!(sb.rev_parse(&dests[1], "refs/fetched"), oid);
    }
}

fn fetch_hidden_tip_with_allow_tip(client: Client, protocol: u8) {
    fetch_by_id_like_git(&[TIP], "refs/hidden/secret", true, client, protocol)
}

fn fetch_inner_commit_with_allow_reachable(client: Client, protocol: u8) {
    fetch_by_id_like_git(&[REACHABLE], "main~3", true, client, protocol)
}

fn fetch_dangling_with_allow_any(client: Client, protocol: u8) {
    fetch_by_id_like_git(&[ANY], "dangling", true, client, protocol)
}

fn fetch_hidden_tip_with_allow_any(client: Client, protocol: u8) {
    fetch_by_id_like_git(&[ANY], "refs/hidden/secret", true, client, protocol)
}

/// In v2 both git and packserve serve a commit that a visible ref reaches.
fn fetch_inner_commit_by_default(client: Client, protocol: u8) {
    fetch_by_id_like_git(&[], "main~3", protocol == 2, client, protocol)
}

client_variants! {
    fetch_hidden_tip_allow_tip => fetch_hidden_tip_with_allow_tip;
    fetch_inner_commit_allow_reachable => fetch_inner_commit_with_allow_reachable;
    fetch_dangling_commit_allow_any => fetch_dangling_with_allow_any;
    fetch_hidden_tip_allow_any => fetch_hidden_tip_with_allow_any;
    fetch_inner_commit_default => fetch_inner_commit_by_default;
}

/// v0 without any allow-*: the client does not even ask (git's own message).
#[test]
fn v0_fetch_of_a_hidden_tip_fails_by_default() {
    let sb = Sandbox::new("want-fetch-v0-default");
    let (src, _) = server(&sb, &[]);
    let oid = sb.rev_parse(&src, "refs/hidden/secret");
    for client in Client::ALL {
        for server in BOTH {
            let repo = sb.empty_clone_of(&src, &format!("repo-{}-{client:?}", server_name(server)));
            let t = sb.try_fetch_via(client, 0, &server.program(), &repo, &["origin", &oid]);
            assert_failed_with(
                &t.output,
                &format!("Server does not allow request for unadvertised object {oid}"),
                server_name(server),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// v2: packserve's policy (deliberate difference from git)

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

/// DELIBERATE DIFFERENCE: git serves it in v2; packserve refuses with `not our ref`.
#[test]
fn packserve_policy_v2_refuses_a_commit_only_a_hidden_ref_reaches() {
    let sb = Sandbox::new("want-v2-hidden");
    let (src, _) = server(&sb, &[]);
    for which in ["refs/hidden/secret", "refs/hidden/secret~1"] {
        let oid = sb.rev_parse(&src, which);
        assert_not_our_ref(
            &v2_want(&sb, Server::UnderTest, &src, &oid),
            &oid,
            &format!("packserve ({which})"),
        );
    }
}

/// DELIBERATE DIFFERENCE: git serves it in v2; packserve refuses with `not our ref`.
#[test]
fn packserve_policy_v2_refuses_a_dangling_commit_and_its_tree() {
    let sb = Sandbox::new("want-v2-dangling");
    let (src, dangling) = server(&sb, &[]);
    let blob = sb.sh(&src, "echo 'only in a dangling blob' | git hash-object -w --stdin").trim().to_owned();
    for oid in [dangling, blob] {
        assert_not_our_ref(&v2_want(&sb, Server::UnderTest, &src, &oid), &oid, "packserve");
    }
}

/// Trees and blobs that only a hidden ref reaches are refused in v2, whether reachability is
/// answered from a bitmap or by the walk; what a visible ref reaches (an old version too) is
/// served as git serves it; `object-info` gives no size for the hidden ones.
#[test]
fn packserve_policy_v2_refuses_trees_and_blobs_only_a_hidden_ref_reaches() {
    let sb = Sandbox::new("want-v2-hidden-trees");
    for bitmap in [false, true] {
        let (src, _) = server(&sb, &[]);
        if bitmap {
            sb.sh(&src, "git repack -q -a -d -b");
            assert!(!sb.sh(&src, "ls objects/pack/*.bitmap").trim().is_empty(), "no bitmap written");
        }
        let state = if bitmap { "bitmap" } else { "walk" };
        for which in
            ["refs/hidden/secret^{tree}", "refs/hidden/secret:secret.txt", "refs/hidden/secret~1:secret.txt"]
        {
            let oid = sb.rev_parse(&src, which);
            assert_not_our_ref(
                &v2_want(&sb, Server::UnderTest, &src, &oid),
                &oid,
                &format!("packserve, {state} ({which})"),
            );
        }
        for which in
            ["main^{tree}", "main~4^{tree}", "main~4:f1.txt", "main:f5.txt", "v1", "private/x:private.txt"]
        {
            let oid = sb.rev_parse(&src, which);
            let n = pack_count(&v2_want(&sb, Server::Reference, &src, &oid), "git-upload-pack");
            assert_eq!(
                pack_count(&v2_want(&sb, Server::UnderTest, &src, &oid), "packserve"),
                n,
                "{state}: {which}"
            );
        }
        let hidden = sb.rev_parse(&src, "refs/hidden/secret:secret.txt");
        let shown = sb.rev_parse(&src, "main~4:f1.txt");
        let req = pktline::request(&[
            "command=object-info",
            "object-format=sha1",
            "0001",
            "size",
            &format!("oid {hidden}"),
            &format!("oid {shown}"),
            "0000",
        ]);
        sb.config(&src, "transfer.advertiseObjectInfo", "true");
        let out = sb
            .serve(
                Server::UnderTest,
                &["--stateless-rpc", src.to_str().unwrap()],
                Some("version=2"),
                Some(&req),
            )
            .assert_success();
        let text = pktline::render(&pktline::parse_all(&out.stdout));
        assert!(
            text.contains(&format!("{hidden} \n")) || text.contains(&format!("{hidden} ")),
            "{state}: {text}"
        );
        assert!(
            !text.contains(&format!("{hidden} 1")),
            "{state}: object-info gave a hidden blob's size: {text}"
        );
        assert!(text.contains(&format!("{shown} 7")), "{state}: no size for a visible blob: {text}");
        std::fs::remove_dir_all(&src).unwrap();
    }
}

/// DELIBERATE DIFFERENCE, seen from a client: `git fetch origin <oid>` of a hidden tip fails.
fn packserve_policy_fetch_hidden_tip_v2(client: Client) {
    let sb = Sandbox::new("want-v2-fetch-hidden");
    let (src, _) = server(&sb, &[]);
    let oid = sb.rev_parse(&src, "refs/hidden/secret");
    let repo = sb.empty_clone_of(&src, "repo");
    let t = sb.try_fetch_via(client, 2, &Server::UnderTest.program(), &repo, &["origin", &oid]);
    assert_failed_with(&t.output, &format!("not our ref {oid}"), "packserve");
    assert!(sb.objects(&repo).is_empty(), "objects arrived anyway");
}

#[test]
fn packserve_policy_v2_fetch_of_a_hidden_tip_fails_git247() {
    packserve_policy_fetch_hidden_tip_v2(Client::New)
}

#[test]
fn packserve_policy_v2_fetch_of_a_hidden_tip_fails_git239() {
    packserve_policy_fetch_hidden_tip_v2(Client::Old)
}

/// With allowAnySHA1InWant both servers send the same objects for what packserve refuses by
/// default (git's v2 behaviour).
#[test]
fn v2_allow_any_serves_hidden_and_dangling_like_git() {
    let sb = Sandbox::new("want-v2-any");
    let (src, dangling) = server(&sb, &[ANY]);
    for which in ["refs/hidden/secret", "refs/hidden/secret~1", "dangling", "main~3", "main:f2.txt"] {
        let oid = oid_of(&sb, &src, &dangling, which);
        let n = pack_count(&v2_want(&sb, Server::Reference, &src, &oid), "git-upload-pack");
        assert_eq!(pack_count(&v2_want(&sb, Server::UnderTest, &src, &oid), "packserve"), n, "{which}");
    }
}

/// allowTipSHA1InWant and allowReachableSHA1InWant widen packserve's v2 policy the way they
/// widen v0 (git serves all of these in v2 anyway).
#[test]
fn v2_allow_tip_and_reachable_serve_hidden_history() {
    let sb = Sandbox::new("want-v2-tip");
    for (config, which) in
        [(TIP, "refs/hidden/secret"), (REACHABLE, "refs/hidden/secret~1"), (REACHABLE, "main~3")]
    {
        let (src, dangling) = server(&sb, &[config]);
        let oid = oid_of(&sb, &src, &dangling, which);
        let n = pack_count(&v2_want(&sb, Server::Reference, &src, &oid), "git-upload-pack");
        assert_eq!(
            pack_count(&v2_want(&sb, Server::UnderTest, &src, &oid), "packserve"),
            n,
            "{config:?} {which}"
        );
        std::fs::remove_dir_all(&src).unwrap();
    }
}

/// Missing objects are `not our ref` for both, in v2 too.
#[test]
fn v2_missing_object_is_not_our_ref_even_with_allow_any() {
    let sb = Sandbox::new("want-v2-missing");
    let (src, _) = server(&sb, &[ANY]);
    let oid = "2222222222222222222222222222222222222222";
    for server in BOTH {
        assert_not_our_ref(&v2_want(&sb, server, &src, oid), oid, server_name(server));
    }
}

// ---------------------------------------------------------------------------
// want-ref (v2, uploadpack.allowRefInWant)

fn want_ref_request(refs: &[&str]) -> Vec<u8> {
    let mut lines = vec!["command=fetch", "object-format=sha1", "0001", "no-progress", "ofs-delta"];
    let wants: Vec<String> = refs.iter().map(|r| format!("want-ref {r}")).collect();
    lines.extend(wants.iter().map(String::as_str));
    lines.push("done");
    lines.push("0000");
    pktline::request(&lines)
}

/// `wanted-refs` section with git's lines (in any order), then the pack with the same objects.
#[test]
fn want_ref_gives_wanted_refs_like_git() {
    let sb = Sandbox::new("want-ref");
    let (src, _) = server(&sb, &[("uploadpack.allowRefInWant", "true")]);
    let req = want_ref_request(&["refs/heads/main", "refs/tags/v1", "refs/heads/private/x"]);
    let mut rs = Vec::new();
    for server in BOTH {
        let out =
            sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
        assert!(out.status.success(), "{}:\n{out}", server_name(server));
        rs.push(pktline::parse_fetch_response(&out.stdout));
    }
    assert_eq!(
        rs[0].lines.first().map(String::as_str),
        Some("wanted-refs"),
        "scenario is off: {:?}",
        rs[0].lines
    );
    // git lists the wanted refs in hash-map order; clients don't care, so compare them sorted.
    let sorted = |lines: &[String]| {
        let mut l = lines.to_vec();
        let end = l.iter().position(|x| x == "Delim").unwrap_or(l.len());
        l[1..end].sort();
        l
    };
    assert_eq!(sorted(&rs[1].lines), sorted(&rs[0].lines), "response lines (left packserve, right git)");
    assert_eq!(
        pktline::pack_header_count(&rs[1].pack),
        pktline::pack_header_count(&rs[0].pack),
        "objects in the pack"
    );
}

/// Hidden and unknown refs: `ERR unknown ref <name>` and failure, like git.
#[test]
fn want_ref_of_a_hidden_or_unknown_ref_fails() {
    let sb = Sandbox::new("want-ref-hidden");
    let (src, _) = server(&sb, &[("uploadpack.allowRefInWant", "true"), TIP, ANY]);
    for r in ["refs/hidden/secret", "refs/heads/nope"] {
        let req = want_ref_request(&["refs/heads/main", r]);
        for server in BOTH {
            let who = server_name(server);
            let out =
                sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
            assert!(!out.status.success(), "{who}: want-ref {r} accepted:\n{out}");
            let (pkts, _) = pktline::parse_prefix(&out.stdout);
            let texts: Vec<String> = pkts.iter().filter_map(Pkt::text).collect();
            assert!(texts.contains(&format!("ERR unknown ref {r}")), "{who}: {texts:?}\n{out}");
            assert!(!texts.iter().any(|t| t.contains("secret") && !t.starts_with("ERR")), "{who}: {texts:?}");
            assert!(
                !pkts.iter().any(|p| matches!(p, Pkt::Data(d) if d.windows(4).any(|w| w == b"PACK"))),
                "{who}: sent a pack"
            );
        }
    }
}

/// Without allowRefInWant, `want-ref` is an unexpected line for git.
#[test]
fn want_ref_without_allow_ref_in_want_is_refused() {
    let sb = Sandbox::new("want-ref-off");
    let src = fixture("hidden");
    let req = want_ref_request(&["refs/heads/main"]);
    for server in BOTH {
        let out =
            sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
        assert_failed_with(&out, "unexpected line: 'want-ref refs/heads/main'", server_name(server));
    }
}

/// A git client uses want-ref when the server advertises `ref-in-want`; the fetched refs and
/// objects match git's.
fn client_uses_want_ref(client: Client) {
    let sb = Sandbox::new("want-ref-client");
    let (src, _) = server(&sb, &[("uploadpack.allowRefInWant", "true")]);
    let mut dests = Vec::new();
    for server in BOTH {
        let who = server_name(server);
        let repo = sb.empty_clone_of(&src, &format!("repo-{who}"));
        let mut cmd = sb.git_cmd(client, 2, &repo);
        cmd.env("GIT_TRACE_PACKET", "1")
            .args(["fetch", "--no-progress"])
            .arg(format!("--upload-pack={}", server.program().display()))
            .args(["origin", "refs/heads/feature:refs/remotes/origin/feature", "refs/tags/v1:refs/tags/v1"]);
        let out = run(cmd, None);
        assert!(out.status.success(), "{who}:\n{out}");
        let trace = out.stderr_str();
        assert!(
            trace.contains("fetch> want-ref refs/heads/feature"),
            "{who}: the client did not use want-ref:\n{trace}"
        );
        assert!(trace.contains("wanted-refs"), "{who}: no wanted-refs section:\n{trace}");
        dests.push(repo);
    }
    sb.assert_same_repo(&dests[1], &dests[0], "fetch with want-ref");
}

#[test]
fn client_fetch_with_want_ref_git247() {
    client_uses_want_ref(Client::New)
}

#[test]
fn client_fetch_with_want_ref_git239() {
    client_uses_want_ref(Client::Old)
}

/// Without a bitmap and with `packserve.cache.dir`: a want deep in history builds the
/// reachable-set cache once (later wants are lookups in it), what only a hidden ref reaches is
/// still refused, and a ref update is a new state: a blob that only a deleted branch reached is
/// refused afterwards, although the old set had it.
#[test]
fn packserve_policy_v2_reachable_set_cache() {
    let sb = Sandbox::new("want-v2-reach-cache");
    let (src, _) = server(&sb, &[]);
    let cache = sb.join("cache");
    sb.config(&src, "packserve.cache.dir", cache.to_str().unwrap());
    sb.sh(
        &src,
        &format!(". '{}'; many_commits refs/heads/long 1500 main", fixtures_dir().join("lib.sh").display()),
    );
    let reach_files = || -> Vec<String> {
        match std::fs::read_dir(cache.join("reach")) {
            Ok(d) => d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        }
    };
    // A recent want is answered by the short walk: no set is built.
    let recent = sb.rev_parse(&src, "long~1:d0/sub0/f0.txt");
    let git_n = pack_count(&v2_want(&sb, Server::Reference, &src, &recent), "git-upload-pack");
    assert_eq!(pack_count(&v2_want(&sb, Server::UnderTest, &src, &recent), "packserve"), git_n);
    assert!(reach_files().is_empty(), "a set was built for a recent want: {:?}", reach_files());
    // A deep one builds it.
    // Commit 10 of 1500: its blob is replaced 231 commits later (the path comes round again).
    let deep = sb.rev_parse(&src, "long~1490:d3/sub1/f10.txt");
    let git_n = pack_count(&v2_want(&sb, Server::Reference, &src, &deep), "git-upload-pack");
    assert_eq!(pack_count(&v2_want(&sb, Server::UnderTest, &src, &deep), "packserve"), git_n);
    assert_eq!(reach_files().len(), 1, "{:?}", reach_files());
    // Answered from the set: the same, and hidden objects still refused.
    assert_eq!(pack_count(&v2_want(&sb, Server::UnderTest, &src, &deep), "packserve"), git_n);
    for which in ["refs/hidden/secret:secret.txt", "refs/hidden/secret^{tree}"] {
        let oid = sb.rev_parse(&src, which);
        assert_not_our_ref(&v2_want(&sb, Server::UnderTest, &src, &oid), &oid, which);
    }
    // A blob only `gone` reaches, served while `gone` exists (a deep want: the set is built
    // with it), refused once `gone` is deleted.
    sb.sh(&src, "git branch gone refs/hidden/secret");
    let only_gone = sb.rev_parse(&src, "gone~1:secret.txt");
    let req = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        &format!("want {deep}"),
        &format!("want {only_gone}"),
        "done",
        "0000",
    ]);
    let with_gone = sb.serve(
        Server::UnderTest,
        &["--stateless-rpc", src.to_str().unwrap()],
        Some("version=2"),
        Some(&req),
    );
    assert!(with_gone.status.success(), "{with_gone}");
    sb.sh(&src, "git branch -D gone");
    assert_not_our_ref(
        &v2_want(&sb, Server::UnderTest, &src, &only_gone),
        &only_gone,
        "after the branch went",
    );
    assert_eq!(reach_files().len(), 1, "one state per repository: {:?}", reach_files());
}
