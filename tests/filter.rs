//! Partial clone: `--filter=` clones and fetches through the server under test compared with
//! git's own upload-pack (present objects, `rev-list --objects --missing=print`, refs, fsck),
//! the `uploadpack.allowFilter` / `uploadpackfilter.*` configuration and its errors, and the
//! lazy fetch of missing blobs through the same server.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A writable copy of `fixture_name` with `uploadpack.allowFilter=true` and `config`.
fn filter_server(sb: &Sandbox, fixture_name: &str, config: &[(&str, &str)]) -> PathBuf {
    let src = sb.fixture_copy(fixture_name);
    sb.config(&src, "uploadpack.allowFilter", "true");
    for (k, v) in config {
        sb.config(&src, k, v);
    }
    src
}

/// `git clone --no-checkout <args>` through both servers; the results must be identical.
/// `expect_missing`: whether git's clone lacks objects (checks the scenario itself).
fn filtered_clone_matches_git(
    name: &str,
    fixture_name: &str,
    args: &[&str],
    expect_missing: bool,
    client: Client,
    protocol: u8,
) -> (Sandbox, PathBuf, PathBuf, PathBuf) {
    let sb = Sandbox::new(&format!("filter-{name}-{}", label(client, protocol)));
    let src = filter_server(&sb, fixture_name, &[]);
    let mut clone_args = vec!["--no-checkout"];
    clone_args.extend_from_slice(args);
    let ours = sb.join("packserve-clone");
    let theirs = sb.join("git-clone");
    let git = sb.try_clone_via(client, protocol, &Server::Reference.program(), &src, &theirs, &clone_args);
    assert!(
        git.output.status.success(),
        "scenario is off: clone through git-upload-pack failed:\n{}",
        git.output
    );
    let ps = sb.try_clone_via(client, protocol, &Server::UnderTest.program(), &src, &ours, &clone_args);
    assert!(ps.output.status.success(), "clone through packserve failed:\n{}", ps.output);
    assert!(
        !ps.output.stderr_str().contains("filtering not recognized"),
        "the client says packserve does not support filters:\n{}",
        ps.output
    );
    sb.assert_same_repo(&ours, &theirs, name);
    let missing = sb.reachable_listing(&theirs).iter().filter(|l| l.starts_with('?')).count();
    assert_eq!(missing > 0, expect_missing, "scenario is off: git's clone misses {missing} objects");
    assert_eq!(
        ps.pack_objects, git.pack_objects,
        "{name}: objects in the pack (packserve, git); the clones hold the same objects"
    );
    (sb, src, ours, theirs)
}

/// `all`: git 2.47 with v0 and v2, git 2.39 with v2; `new`: git 2.47 only (to keep the run short).
macro_rules! filter_cases {
    (@tests all) => {
        #[test] fn git247_v0() { check(Client::New, 0) }
        #[test] fn git247_v2() { check(Client::New, 2) }
        #[test] fn git239_v2() { check(Client::Old, 2) }
    };
    (@tests new) => {
        #[test] fn git247_v0() { check(Client::New, 0) }
        #[test] fn git247_v2() { check(Client::New, 2) }
    };
    ($($which:ident $name:ident: $fixture:expr, [$($arg:expr),*], $missing:expr;)*) => {$(
        mod $name {
            use super::*;
            fn check(client: Client, protocol: u8) {
                filtered_clone_matches_git(stringify!($name), $fixture, &[$($arg),*], $missing, client, protocol);
            }
            filter_cases!(@tests $which);
        }
    )*};
}

filter_cases! {
    all blob_none: "history", ["--filter=blob:none"], true;
    all blob_limit_1k: "history", ["--filter=blob:limit=1k"], true;
    new blob_limit_0: "history", ["--filter=blob:limit=0"], true;
    new blob_limit_1500_bytes: "history", ["--filter=blob:limit=1500"], true;
    all tree_0: "history", ["--filter=tree:0"], true;
    new tree_1: "history", ["--filter=tree:1"], true;
    new tree_3: "history", ["--filter=tree:3"], true;
    all object_type_blob: "history", ["--filter=object:type=blob"], true;
    new object_type_commit: "history", ["--filter=object:type=commit"], true;
    all sparse_oid_by_revision: "history", ["--filter=sparse:oid=main:sparse-spec"], true;
    all combine_blob_none_tree_2: "history", ["--filter=combine:blob:none+tree:2"], true;
    new combine_blob_limit_tree_3: "history", ["--filter=combine:blob:limit=1k+tree:3"], true;
    new blob_none_with_a_bitmap: "bitmap", ["--filter=blob:none"], true;
    new tree_0_with_a_bitmap: "bitmap", ["--filter=tree:0"], true;
    new blob_limit_with_a_midx_bitmap: "midx", ["--filter=blob:limit=30"], false;
    new blob_limit_0_with_a_bitmap: "bitmap", ["--filter=blob:limit=0"], true;
    new object_type_commit_with_a_bitmap: "bitmap", ["--filter=object:type=commit"], true;
    new object_type_tree_with_a_bitmap: "bitmap", ["--filter=object:type=tree"], true;
    new combine_blob_none_tree_0_with_a_bitmap: "bitmap", ["--filter=combine:blob:none+tree:0"], true;
    new tree_2_with_a_bitmap: "bitmap", ["--filter=tree:2"], true;
    new blob_none_depth_2: "history", ["--filter=blob:none", "--depth=2"], true;
}

/// Tags of a blob (as git.git's `junio-gpg-pub`), of a tree and of a tag: what the client's
/// wants name through tags is never filtered out, counted with a bitmap or by the walk, as git
/// does (its bitmap filters keep every tip, tags peeled).
#[test]
fn what_wanted_tags_point_at_is_not_filtered_out() {
    for (fixture_name, spec) in
        [("bitmap", "blob:none"), ("history", "blob:none"), ("bitmap", "tree:0"), ("history", "tree:0")]
    {
        let name = format!("tagged-{fixture_name}-{}", spec.replace(':', "-"));
        let sb = Sandbox::new(&format!("filter-{name}"));
        let src = filter_server(&sb, fixture_name, &[]);
        let repack = if fixture_name == "bitmap" { "-adb" } else { "-ad" };
        sb.sh(
            &src,
            &format!(
                "b=$(echo 'a public key, tagged' | git hash-object -w --stdin)
                 git tag -a -m key tagged-blob $b
                 git tag -a -m tree tagged-tree $(git rev-parse 'HEAD^{{tree}}')
                 git tag -a -m 'a tag of a tag' tagged-tag tagged-blob
                 git repack -q {repack}"
            ),
        );
        let filter = format!("--filter={spec}");
        let args = ["--no-checkout", filter.as_str()];
        let (ours, theirs) = (sb.join("packserve-clone"), sb.join("git-clone"));
        let git = sb.try_clone_via(Client::New, 2, &Server::Reference.program(), &src, &theirs, &args);
        assert!(git.output.status.success(), "scenario is off:\n{}", git.output);
        let ps = sb.try_clone_via(Client::New, 2, &Server::UnderTest.program(), &src, &ours, &args);
        assert!(ps.output.status.success(), "clone through packserve failed:\n{}", ps.output);
        let tagged = sb.rev_parse(&src, "tagged-blob^{}");
        let present = sb.sh(&theirs, &format!("git cat-file -e {tagged} && echo present"));
        assert_eq!(present.trim(), "present", "scenario is off: git's clone lacks the tagged blob");
        sb.assert_same_repo(&ours, &theirs, &name);
        assert_eq!(ps.pack_objects, git.pack_objects, "{name}: objects in the pack (packserve, git)");
    }
}

/// `sparse:oid=<blob id>`: the filter names the pattern blob by its id.
#[test]
fn sparse_oid_by_blob_id() {
    let sb = Sandbox::new("filter-sparse-oid");
    let oid = sb.rev_parse(&fixture("history"), "main:sparse-spec");
    let arg = format!("--filter=sparse:oid={oid}");
    for (client, protocol) in [(Client::New, 0), (Client::Old, 2)] {
        filtered_clone_matches_git("sparse-oid", "history", &[&arg], true, client, protocol);
    }
}

/// A fetch into a partial clone sends the clone's filter again; new blobs stay behind.
fn fetch_into_a_partial_clone(client: Client, protocol: u8) {
    fetch_into_a_partial_clone_of("history", client, protocol);
}

/// The same with a reachability bitmap on the server: the filter is applied to the counted
/// bitmap, minus what the client has.
fn fetch_into_a_partial_clone_with_a_bitmap(client: Client, protocol: u8) {
    fetch_into_a_partial_clone_of("bitmap", client, protocol);
}

fn fetch_into_a_partial_clone_of(fixture_name: &str, client: Client, protocol: u8) {
    let (sb, src, ours, theirs) = filtered_clone_matches_git(
        &format!("fetch-partial-{fixture_name}"),
        fixture_name,
        &["--filter=blob:none"],
        true,
        client,
        protocol,
    );
    sb.sh(
        &src,
        r#"
        blob=$(echo "a new blob" | git hash-object -w --stdin)
        big=$(head -c 3000 objects/pack/*.pack | git hash-object -w --stdin)
        tree=$( (git ls-tree main | grep -v NEWS; printf '100644 blob %s\tnew.txt\n100644 blob %s\tNEWS\n' "$blob" "$big") | git mktree)
        c=$(echo "new on the server" | git commit-tree -p main "$tree")
        git update-ref refs/heads/main "$c"
        git update-ref refs/heads/another "$c"
        "#,
    );
    let git = sb.try_fetch_via(client, protocol, &Server::Reference.program(), &theirs, &["origin"]);
    assert!(git.output.status.success(), "scenario is off:\n{}", git.output);
    let ps = sb.try_fetch_via(client, protocol, &Server::UnderTest.program(), &ours, &["origin"]);
    assert!(ps.output.status.success(), "fetch through packserve failed:\n{}", ps.output);
    sb.assert_same_repo(&ours, &theirs, "after the fetch");
    assert_pack_counts_close("fetch into a partial clone", ps.pack_objects, git.pack_objects);
}

client_variants! {
    fetch_into_a_blob_none_clone => fetch_into_a_partial_clone;
    fetch_into_a_blob_none_clone_with_a_bitmap => fetch_into_a_partial_clone_with_a_bitmap;
}

// ---------------------------------------------------------------------------
// Lazy fetches of missing objects through the same server

/// Clones with blob:none, checking out (the checkout fetches the blobs it needs on demand),
/// then reads an old blob that only a lazy fetch can bring. `remote.origin.uploadpack` points
/// at the server so that the lazy fetches go through it too.
fn lazy_fetch(sb: &Sandbox, src: &Path, server: Server, client: Client, protocol: u8) -> (PathBuf, Output) {
    let prog = server.program();
    let dest = sb.join(format!("lazy-{}", server_name(server)));
    let mut cmd = sb.git_cmd(client, protocol, sb.path());
    cmd.arg("-c")
        .arg(format!("remote.origin.uploadpack={}", prog.display()))
        .args(["clone", "--no-progress", "--filter=blob:none"])
        .arg(file_url(src))
        .arg(&dest);
    let out = run(cmd, None);
    if !out.status.success() {
        return (dest, out);
    }
    sb.config(&dest, "remote.origin.uploadpack", prog.to_str().unwrap());
    let old_blob = sb.rev_parse(src, "main~3:docs/manual.bin");
    let mut cmd = sb.git_cmd(client, protocol, &dest);
    cmd.args(["cat-file", "-p", &old_blob]);
    (dest, run(cmd, None))
}

fn lazy_fetch_matches_git(client: Client, protocol: u8, config: &[(&str, &str)], must_work: bool) {
    let sb = Sandbox::new(&format!("filter-lazy-{}", label(client, protocol)));
    let src = filter_server(&sb, "history", config);
    let blob = sb.rev_parse(&src, "main~3:docs/manual.bin");
    let size: usize = sb.git(&src, &["cat-file", "-s", &blob]).trim().parse().unwrap();
    let (theirs, git) = lazy_fetch(&sb, &src, Server::Reference, client, protocol);
    assert_eq!(git.status.success(), must_work, "scenario is off: git-upload-pack:\n{git}");
    let (ours, ps) = lazy_fetch(&sb, &src, Server::UnderTest, client, protocol);
    if !must_work {
        assert!(!ps.status.success(), "packserve served a lazy fetch git refuses:\n{ps}");
        return;
    }
    assert!(ps.status.success(), "lazy fetch through packserve failed:\n{ps}");
    assert_eq!(ps.stdout.len(), size, "the lazily fetched blob has the wrong size");
    sb.assert_same_repo(&ours, &theirs, "after checkout and cat-file");
    // The worktree is complete and clean.
    let status = sb.git(&ours, &["status", "--porcelain"]);
    assert!(status.is_empty(), "checkout of the partial clone is not clean:\n{status}");
}

#[test]
fn lazy_fetch_git247_v2() {
    lazy_fetch_matches_git(Client::New, 2, &[], true)
}

#[test]
fn lazy_fetch_git239_v2() {
    lazy_fetch_matches_git(Client::Old, 2, &[], true)
}

/// In v0 a client only asks for an object that is not a tip when the server advertises
/// `allow-reachable-sha1-in-want` (or `allow-tip-sha1-in-want`).
#[test]
fn lazy_fetch_git247_v0_with_allow_reachable() {
    lazy_fetch_matches_git(Client::New, 0, &[("uploadpack.allowReachableSHA1InWant", "true")], true)
}

#[test]
fn lazy_fetch_git247_v0_fails_without_allow_reachable() {
    lazy_fetch_matches_git(Client::New, 0, &[], false)
}

// ---------------------------------------------------------------------------
// Configuration and errors

/// Without `uploadpack.allowFilter` the server does not advertise `filter`; the client warns
/// and makes a full clone.
fn filter_not_allowed(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("filter-not-allowed-{}", label(client, protocol)));
    let src = fixture("history");
    let mut results = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let t = sb.try_clone_via(
            client,
            protocol,
            &server.program(),
            &src,
            &dest,
            &["--no-checkout", "--filter=blob:none"],
        );
        assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
        assert!(
            t.output.stderr_str().contains("filtering not recognized by server, ignoring"),
            "{}: no warning from the client:\n{}",
            server_name(server),
            t.output
        );
        results.push(dest);
    }
    sb.assert_same_repo(&results[1], &results[0], "full clone");
    let missing = sb.reachable_listing(&results[1]).iter().filter(|l| l.starts_with('?')).count();
    assert_eq!(missing, 0, "the clone is not complete");
}

/// A filter the configuration bans: the clone fails with git's `filter '<name>' not supported`
/// on stderr (the server's `fatal:`, and in v2 also the client's `remote error:` from the ERR
/// line).
fn filter_refused(
    name: &str,
    config: &[(&str, &str)],
    filter: &str,
    needle: &str,
    client: Client,
    protocol: u8,
) {
    let sb = Sandbox::new(&format!("filter-refused-{name}-{}", label(client, protocol)));
    let src = filter_server(&sb, "history", config);
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let t =
            sb.try_clone_via(client, protocol, &server.program(), &src, &dest, &["--no-checkout", filter]);
        assert_failed_with(&t.output, needle, server_name(server));
        // In v0 the client may die of SIGPIPE before it reads the ERR line (with git's server
        // too); in v2 the request is complete before the server answers, so it always shows it.
        assert!(
            protocol == 0 || t.output.stderr_str().contains(&format!("remote error: {needle}")),
            "{}: the error did not reach the client as `remote error:`:\n{}",
            server_name(server),
            t.output
        );
    }
}

/// `uploadpackfilter.allow=false` with `uploadpackfilter.blob:none.allow=true`: blob:none is
/// served like git serves it.
fn only_blob_none_allowed(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("filter-only-blob-none-{}", label(client, protocol)));
    let src = filter_server(
        &sb,
        "history",
        &[("uploadpackfilter.allow", "false"), ("uploadpackfilter.blob:none.allow", "true")],
    );
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let t = sb.try_clone_via(
            client,
            protocol,
            &server.program(),
            &src,
            &dest,
            &["--no-checkout", "--filter=blob:none"],
        );
        assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], "blob:none allowed alone");
}

fn tree_banned(client: Client, protocol: u8) {
    filter_refused(
        "tree",
        &[("uploadpackfilter.allow", "false"), ("uploadpackfilter.blob:none.allow", "true")],
        "--filter=tree:0",
        "filter 'tree' not supported",
        client,
        protocol,
    )
}

fn blob_limit_banned(client: Client, protocol: u8) {
    filter_refused(
        "blob-limit",
        &[("uploadpackfilter.blob:limit.allow", "false")],
        "--filter=blob:limit=1k",
        "filter 'blob:limit' not supported",
        client,
        protocol,
    )
}

/// Combined filters need `combine` allowed too.
fn combine_banned(client: Client, protocol: u8) {
    filter_refused(
        "combine",
        &[("uploadpackfilter.combine.allow", "false")],
        "--filter=combine:blob:none+tree:2",
        "filter 'combine' not supported",
        client,
        protocol,
    )
}

/// ... and each part of it.
fn part_of_combine_banned(client: Client, protocol: u8) {
    filter_refused(
        "combine-part",
        &[("uploadpackfilter.tree.allow", "false")],
        "--filter=combine:blob:none+tree:2",
        "filter 'tree' not supported",
        client,
        protocol,
    )
}

fn tree_depth_exceeded(client: Client, protocol: u8) {
    filter_refused(
        "tree-depth",
        &[("uploadpackfilter.tree.maxDepth", "1")],
        "--filter=tree:2",
        "tree filter allows max depth 1, but got 2",
        client,
        protocol,
    )
}

/// `uploadpackfilter.tree.maxDepth` allows depths up to its value, even with the tree filter
/// otherwise banned by `uploadpackfilter.allow=false`.
fn tree_depth_within_limit(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("filter-tree-depth-ok-{}", label(client, protocol)));
    let src = filter_server(
        &sb,
        "history",
        &[("uploadpackfilter.allow", "false"), ("uploadpackfilter.tree.maxDepth", "1")],
    );
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let t = sb.try_clone_via(
            client,
            protocol,
            &server.program(),
            &src,
            &dest,
            &["--no-checkout", "--filter=tree:1"],
        );
        assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], "tree:1 within maxDepth");
}

client_variants! {
    not_allowed_gives_a_full_clone => filter_not_allowed;
    only_blob_none_allowed_serves_blob_none => only_blob_none_allowed;
    banned_tree_filter => tree_banned;
    banned_blob_limit_filter => blob_limit_banned;
    banned_combine_filter => combine_banned;
    banned_part_of_a_combined_filter => part_of_combine_banned;
    tree_max_depth_exceeded => tree_depth_exceeded;
    tree_max_depth_respected => tree_depth_within_limit;
}

/// A filter in a raw v2 request when the server does not allow filters: git answers with
/// `unexpected line: 'filter blob:none'`.
#[test]
fn raw_v2_filter_without_allow_filter() {
    let sb = Sandbox::new("filter-raw-unexpected");
    let src = fixture("history");
    let want = sb.rev_parse(&src, "main");
    let req = common::pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        &format!("want {want}"),
        "filter blob:none",
        "done",
        "0000",
    ]);
    for server in BOTH {
        let out =
            sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
        assert_failed_with(&out, "unexpected line: 'filter blob:none'", server_name(server));
    }
}

/// An explicitly wanted blob is sent even when the filter would omit it (that is how lazy
/// fetches work).
#[test]
fn raw_v2_explicitly_wanted_blob_beats_the_filter() {
    let sb = Sandbox::new("filter-raw-explicit-blob");
    let src = filter_server(&sb, "history", &[]);
    let blob = sb.rev_parse(&src, "main:a/b/c/big.bin");
    let req = common::pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        &format!("want {blob}"),
        "filter blob:none",
        "done",
        "0000",
    ]);
    let mut counts = Vec::new();
    for server in BOTH {
        let out =
            sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
        assert!(out.status.success(), "{}:\n{out}", server_name(server));
        let r = common::pktline::parse_fetch_response(&out.stdout);
        counts.push(common::pktline::pack_header_count(&r.pack));
    }
    assert_eq!(counts[0], Some(1), "scenario is off: git sent {:?} objects", counts[0]);
    assert_eq!(counts[1], counts[0], "objects sent for a wanted blob under blob:none (packserve, git)");
}
