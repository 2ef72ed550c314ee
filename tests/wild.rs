//! Repositories as they are found in the wild: alternates (a chain of two), many packs with
//! `.keep` and `.promisor` files plus loose objects, packed and loose refs with symbolic refs
//! (refs/remotes/origin/HEAD, a symref under refs/heads, a dangling one), a repository with
//! worktrees (serving the main repository, a worktree, and the `.git` directory), SHA-256
//! repositories, a partial repository as server (which must never lazy-fetch), and bitmaps
//! (pack and multi-pack-index) under shallow requests.

mod common;

use common::pktline;
use common::*;
use std::path::Path;

/// Clones `src` through both servers (with `extra`) into `clone-<tag>-<server>` and compares
/// the results.
fn clone_like_git(sb: &Sandbox, src: &Path, client: Client, protocol: u8, extra: &[&str], tag: &str) {
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{tag}-{}", server_name(server)));
        let t = sb.try_clone_via(client, protocol, &server.program(), src, &dest, extra);
        assert!(t.output.status.success(), "{}: clone failed:\n{}", server_name(server), t.output);
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], tag);
    assert_eq!(sb.head(&dests[1]), sb.head(&dests[0]), "{tag}: HEAD of the clone");
}

/// `git ls-remote --symref` output through both servers must be identical.
fn ls_remote_like_git(sb: &Sandbox, src: &Path, client: Client, protocol: u8) -> String {
    let mut outs = Vec::new();
    for server in BOTH {
        outs.push(
            sb.try_ls_remote_via(client, protocol, &server.program(), src, &["--symref"], &[])
                .assert_success()
                .stdout_str(),
        );
    }
    assert_eq!(outs[1], outs[0], "ls-remote --symref (left packserve, right git)");
    outs.pop().unwrap()
}

fn alternates(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-alternates-{}", label(client, protocol)));
    let src = fixture("alternates");
    clone_like_git(&sb, &src, client, protocol, &["--mirror"], "mirror");
    clone_like_git(&sb, &src, client, protocol, &["--depth=2", "--no-single-branch"], "shallow");
}

/// A fork sharing its network's objects: the commit-graph lives only in the alternate (which
/// packserve then uses, as git does) and covers only part of the fork's history.
fn fork_with_the_graph_in_its_alternate(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-alt-graph-{}", label(client, protocol)));
    let history = fixture("history");
    let root = sb.join("network");
    std::fs::create_dir_all(&root).unwrap();
    sb.sh(
        &root,
        &format!(
            r#"
            git clone -q --bare '{}' base
            git -C base commit-graph write --reachable --no-progress
            git clone -q --bare --shared base fork
            test ! -e fork/objects/info/commit-graph
            (cd fork && many_commits refs/heads/main 5 && many_commits refs/heads/fork-only 3 main~7)
            "#,
            history.display()
        ),
    );
    let fork = root.join("fork");
    clone_like_git(&sb, &fork, client, protocol, &["--mirror"], "mirror");
    clone_like_git(&sb, &fork, client, protocol, &["--depth=3", "--no-single-branch"], "shallow");
}

fn kept_packs(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-kept-{}", label(client, protocol)));
    let src = fixture("kept");
    clone_like_git(&sb, &src, client, protocol, &[], "clone");
}

fn refs_in_the_wild(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-refs-{}", label(client, protocol)));
    let src = fixture("refs");
    let listed = ls_remote_like_git(&sb, &src, client, protocol);
    assert!(listed.contains("refs/heads/alias"), "{listed}");
    assert!(!listed.contains("refs/heads/dangling"), "a dangling symref was listed:\n{listed}");
    clone_like_git(&sb, &src, client, protocol, &[], "clone");
    clone_like_git(&sb, &src, client, protocol, &["--mirror"], "mirror");
}

/// Bitmapped repositories (a pack bitmap; a multi-pack-index with a bitmap) serving shallow
/// clones and a deepening fetch, where git does not use the bitmaps.
fn bitmaps_and_shallow(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-bitmap-shallow-{}", label(client, protocol)));
    for name in ["bitmap", "midx"] {
        let src = fixture(name);
        let mut dests = Vec::new();
        for server in BOTH {
            let dest = sb.join(format!("{name}-{}", server_name(server)));
            let t = sb.try_clone_via(
                client,
                protocol,
                &server.program(),
                &src,
                &dest,
                &["--depth=3", "--no-single-branch"],
            );
            assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
            let t = sb.try_fetch_via(client, protocol, &server.program(), &dest, &["--deepen=5", "origin"]);
            assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
            dests.push(dest);
        }
        sb.assert_same_repo(&dests[1], &dests[0], name);
    }
}

#[test]
fn bitmaps_with_shallow_clones_git247_v0() {
    bitmaps_and_shallow(Client::New, 0)
}

#[test]
fn bitmaps_with_shallow_clones_git239_v2() {
    bitmaps_and_shallow(Client::Old, 2)
}

client_variants! {
    alternates_chain => alternates;
    alternate_commit_graph => fork_with_the_graph_in_its_alternate;
    kept_and_promisor_packs_and_loose_objects => kept_packs;
    packed_loose_and_symbolic_refs => refs_in_the_wild;
}

/// v2 ls-refs with symrefs: refs/heads/alias and refs/remotes/origin/HEAD carry their
/// `symref-target:`, exactly as git lists them.
#[test]
fn raw_ls_refs_with_symrefs() {
    let sb = Sandbox::new("wild-ls-refs");
    let src = fixture("refs");
    let req = pktline::request(&[
        "command=ls-refs",
        "object-format=sha1",
        "0001",
        "peel",
        "symrefs",
        "unborn",
        "0000",
    ]);
    let mut outs = Vec::new();
    for server in BOTH {
        let out = sb
            .serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req))
            .assert_success();
        outs.push(out.stdout);
    }
    let git = pktline::render(&pktline::parse_all(&outs[0]));
    assert!(git.contains("refs/heads/alias symref-target:refs/heads/main"), "scenario is off:\n{git}");
    assert!(
        outs[0] == outs[1],
        "ls-refs differs\n--- packserve ---\n{}--- git ---\n{git}",
        pktline::render(&pktline::parse_prefix(&outs[1]).0)
    );
}

/// A repository with a worktree: serving the main repository, the worktree (whose HEAD is its
/// own branch), and the `.git` directory directly.
fn worktree(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-worktree-{}", label(client, protocol)));
    let main = sb.fixture_copy("linear");
    let wt = sb.join("wt");
    sb.git(&main, &["worktree", "add", "-q", "-b", "wt-branch", wt.to_str().unwrap(), "main~3"]);
    sb.sh(&wt, "commit wt.txt 'in the worktree' 'worktree commit'; git update-ref refs/worktree/mine HEAD; git update-ref refs/bisect/bad HEAD~1");
    for (tag, path) in [("main", main.clone()), ("worktree", wt.clone()), ("gitdir", main.join(".git"))] {
        ls_remote_like_git(&sb, &path, client, protocol);
        clone_like_git(&sb, &path, client, protocol, &[], tag);
    }
    // The worktree's HEAD is wt-branch.
    let clone = sb.join("clone-worktree-packserve");
    assert_eq!(
        sb.head(&clone),
        Head::Symbolic { target: "refs/heads/wt-branch".into(), oid: Some(sb.rev_parse(&wt, "HEAD")) },
        "HEAD of a clone of the worktree"
    );
}

client_variants! {
    repository_with_a_worktree => worktree;
}

// ---------------------------------------------------------------------------
// SHA-256

fn sha256_clone(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("wild-sha256-{}", label(client, protocol)));
    let src = fixture("sha256");
    ls_remote_like_git(&sb, &src, client, protocol);
    clone_like_git(&sb, &src, client, protocol, &[], "clone");
    let clone = sb.join("clone-clone-packserve");
    assert_eq!(sb.git(&clone, &["rev-parse", "--show-object-format"]).trim(), "sha256");
    clone_like_git(&sb, &src, client, protocol, &["--depth=1"], "shallow");
}

client_variants! {
    sha256_repository => sha256_clone;
}

/// A fetch into a SHA-256 clone.
#[test]
fn sha256_fetch() {
    let sb = Sandbox::new("wild-sha256-fetch");
    let src = sb.fixture_copy("sha256");
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        sb.clone(Client::New, 2, Server::Reference, &src, &dest, &[]);
        dests.push((server, dest));
    }
    sb.sh(&src, "tick_after_repo; c=$(echo more | git commit-tree -p main 'main^{tree}'); git update-ref refs/heads/main $c");
    for protocol in [0, 2] {
        for (server, dest) in &dests {
            let t = sb.try_fetch_via(Client::New, protocol, &server.program(), dest, &["origin"]);
            assert!(t.output.status.success(), "{}:\n{}", server_name(*server), t.output);
        }
    }
    sb.assert_same_repo(&dests[1].1, &dests[0].1, "fetch from sha256");
}

/// The advertisements name sha256; ref lines equal git's.
#[test]
fn sha256_advertisements() {
    let sb = Sandbox::new("wild-sha256-ad");
    let src = fixture("sha256");
    let mut v0 = Vec::new();
    for server in BOTH {
        let out = sb.serve(server, &["--advertise-refs", src.to_str().unwrap()], None, None).assert_success();
        let ad = pktline::parse_v0_advertisement(&out.stdout);
        assert!(
            ad.caps.iter().any(|c| c == "object-format=sha256"),
            "{}: caps {:?}",
            server_name(server),
            ad.caps
        );
        v0.push(ad.ref_lines);
        let out = sb
            .serve(server, &["--advertise-refs", src.to_str().unwrap()], Some("version=2"), None)
            .assert_success();
        let caps = v2_caps(&out.stdout);
        assert!(
            caps.iter().any(|c| c == "object-format=sha256"),
            "{}: v2 caps {caps:?}",
            server_name(server)
        );
    }
    assert_eq!(v0[1], v0[0], "v0 ref lines (left packserve, right git)");
}

/// A v2 client that announces sha1 (or nothing, which means sha1) to a sha256 repository gets
/// git's error.
#[test]
fn sha256_repository_refuses_a_sha1_client() {
    let sb = Sandbox::new("wild-sha256-mismatch");
    let src = fixture("sha256");
    for caps in [&["object-format=sha1"][..], &[][..]] {
        let mut lines = vec!["command=ls-refs"];
        lines.extend_from_slice(caps);
        lines.extend(["0001", "0000"]);
        let req = pktline::request(&lines);
        for server in BOTH {
            let out =
                sb.serve(server, &["--stateless-rpc", src.to_str().unwrap()], Some("version=2"), Some(&req));
            assert_failed_with(
                &out,
                "mismatched object format: server sha256; client sha1",
                server_name(server),
            );
        }
    }
}

// ---------------------------------------------------------------------------
// A partial repository as server

/// A blob:none partial clone serving others: a full clone fails (objects are missing and the
/// server must not fetch them from its own promisor remote), a blob:none clone works, and the
/// server's object store is unchanged afterwards.
#[test]
fn partial_repository_as_server_never_lazy_fetches() {
    let sb = Sandbox::new("wild-partial-server");
    let origin = sb.fixture_copy("history");
    sb.config(&origin, "uploadpack.allowFilter", "true");
    let partial = sb.join("partial");
    sb.clone(Client::New, 2, Server::Reference, &origin, &partial, &["--bare", "--filter=blob:none"]);
    sb.config(&partial, "uploadpack.allowFilter", "true");
    let before = sb.objects(&partial);
    for server in BOTH {
        let who = server_name(server);
        let dest = sb.join(format!("full-{who}"));
        let t = sb.try_clone_via(Client::New, 2, &server.program(), &partial, &dest, &["--bare"]);
        assert!(
            !t.output.status.success(),
            "{who}: a full clone of a partial repository succeeded:\n{}",
            t.output
        );
        assert_eq!(
            sb.objects(&partial),
            before,
            "{who}: the server fetched objects from its promisor remote"
        );
    }
    clone_like_git(&sb, &partial, Client::New, 2, &["--bare", "--filter=blob:none"], "filtered");
    assert_eq!(sb.objects(&partial), before, "the server's objects changed");
}
