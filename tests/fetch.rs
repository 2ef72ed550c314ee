//! Incremental fetches: two identical clones (one through the server under test, one through
//! git-upload-pack), the server changes, both fetch, and the results are compared — refs,
//! objects, fsck, and the size of the pack (within 5% of git's object count).

mod common;

use common::*;

struct Scenario {
    /// Server fixture (copied, then changed).
    fixture: &'static str,
    /// Shell run in both clones before the fetch (identical, deterministic local work).
    local: &'static str,
    /// Shell run in the server after cloning (lib.sh helpers available).
    change: &'static str,
    /// Whether the fetch must transfer a pack at all.
    expect_pack: bool,
}

fn fetch_matches_git(name: &str, s: &Scenario, client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("fetch-{name}-{}", label(client, protocol)));
    let server = sb.fixture_copy(s.fixture);
    let ours = sb.join("packserve-clone");
    let theirs = sb.join("git-clone");
    // Clone through the reference server for both, so that the starting points are identical
    // and only the fetch is under test.
    sb.clone(client, protocol, Server::Reference, &server, &ours, &[]);
    sb.clone(client, protocol, Server::Reference, &server, &theirs, &[]);
    if !s.local.is_empty() {
        sb.sh(&ours, s.local);
        sb.sh(&theirs, s.local);
    }
    if !s.change.is_empty() {
        sb.sh(&server, s.change);
    }

    let ps = sb.fetch(client, protocol, Server::UnderTest, &ours, &[]);
    let git = sb.fetch(client, protocol, Server::Reference, &theirs, &[]);
    assert_eq!(
        git.pack_objects.is_some(),
        s.expect_pack,
        "scenario is off: git-upload-pack sent {:?} objects\n{}",
        git.pack_objects,
        git.output
    );

    sb.fsck(&ours);
    sb.fsck(&theirs);

    let our_refs = sb.refs(&ours);
    let git_refs = sb.refs(&theirs);
    assert!(
        our_refs == git_refs,
        "refs after fetching through packserve differ from git's:\n{}\nfetch output:\n{}",
        map_diff("packserve", &our_refs, "git", &git_refs),
        ps.output
    );
    let expected = expected_clone_refs(&sb.refs(&server));
    let got = fetched_refs(&our_refs);
    assert!(
        got == expected,
        "fetched refs differ from the server's:\n{}",
        map_diff("clone", &got, "server", &expected)
    );

    let (a, b) = (sb.objects(&ours), sb.objects(&theirs));
    assert!(a == b, "objects after the fetch differ: {}", set_diff("packserve", &a, "git", &b));

    eprintln!("pack objects: packserve {:?}, git {:?}", ps.pack_objects, git.pack_objects);
    assert_pack_counts_close(
        &format!("{name} {}", label(client, protocol)),
        ps.pack_objects,
        git.pack_objects,
    );
}

const NEW_HISTORY: Scenario = Scenario {
    fixture: "linear",
    local: "test_tick=1400000000; git checkout -q -b local; commit local.txt 'local work' 'local commit'",
    change: r#"
        tick_after_repo
        for i in 1 2 3 4 5; do commit "src/new$i.txt" "new $i" "new $i"; done
        git checkout -q -b feature main~2
        for i in 1 2 3; do commit "feature/f$i.txt" "feature $i" "feature $i"; done
        tick; git tag -a -m "feature tag" v-feature
        tick; git tag -a -m "tag of a tag" v-feature-outer v-feature 2>/dev/null
        git checkout -q main
        git tag light-new
    "#,
    expect_pack: true,
};

const HUNDREDS_OF_COMMITS: Scenario = Scenario {
    fixture: "linear",
    local: "",
    change: r#"
        tick_after_repo
        many_commits refs/heads/main 300
        many_commits refs/heads/bulk 150 main~100
        tick; git tag -a -m "after many" v-many main
    "#,
    expect_pack: true,
};

const NOTHING_NEW: Scenario = Scenario { fixture: "linear", local: "", change: "", expect_pack: false };

const NEW_BRANCH_SHARING_HISTORY: Scenario = Scenario {
    fixture: "merges",
    local: "",
    change: r#"
        tick_after_repo
        many_commits refs/heads/side 2 main~3
        git update-ref refs/heads/alias main~1
    "#,
    expect_pack: true,
};

const REWRITTEN_BRANCH: Scenario = Scenario {
    fixture: "linear",
    local: "",
    change: r#"
        tick_after_repo
        git reset -q --hard main~2
        commit rewritten.txt "rewritten" "rewritten history"
    "#,
    expect_pack: true,
};

const TAGS_ON_OLD_COMMITS: Scenario = Scenario {
    fixture: "tags",
    local: "",
    change: r#"
        tick_after_repo
        tick; git tag -a -m "late tag" v-late main~1
        git tag late-light main~2
    "#,
    expect_pack: true,
};

const BIG_BLOB_UPDATE: Scenario = Scenario {
    fixture: "multipack",
    local: "",
    change: r#"
        tick_after_repo
        { head -c 4000000 big.bin; printf 'third'; tail -c +4000006 big.bin; } >big.tmp
        mv big.tmp big.bin
        git add big.bin
        tick; git commit -q -m "big blob v3"
    "#,
    expect_pack: true,
};

/// The clients have 200 commits the server never saw (so negotiation goes through several
/// rounds of `have`s that the server must NAK) on top of the common history.
const MANY_UNKNOWN_HAVES: Scenario = Scenario {
    fixture: "linear",
    local: "test_tick=1400000000; many_commits refs/heads/local 200 HEAD",
    change: r#"
        tick_after_repo
        for i in 1 2 3; do commit "src/late$i.txt" "late $i" "late $i"; done
    "#,
    expect_pack: true,
};

macro_rules! fetch_matrix {
    ($($name:ident => $scenario:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test] fn git247_v0() { fetch_matches_git(stringify!($name), &$scenario, Client::New, 0) }
            #[test] fn git247_v1() { fetch_matches_git(stringify!($name), &$scenario, Client::New, 1) }
            #[test] fn git247_v2() { fetch_matches_git(stringify!($name), &$scenario, Client::New, 2) }
            #[test] fn git239_v0() { fetch_matches_git(stringify!($name), &$scenario, Client::Old, 0) }
            #[test] fn git239_v1() { fetch_matches_git(stringify!($name), &$scenario, Client::Old, 1) }
            #[test] fn git239_v2() { fetch_matches_git(stringify!($name), &$scenario, Client::Old, 2) }
        }
    )*};
}

fetch_matrix! {
    new_history => NEW_HISTORY,
    hundreds_of_commits => HUNDREDS_OF_COMMITS,
    nothing_new => NOTHING_NEW,
    new_branch_sharing_history => NEW_BRANCH_SHARING_HISTORY,
    rewritten_branch => REWRITTEN_BRANCH,
    tags_on_old_commits => TAGS_ON_OLD_COMMITS,
    big_blob_update => BIG_BLOB_UPDATE,
    many_unknown_haves => MANY_UNKNOWN_HAVES,
}

/// A fetch right after a clone made through the server under test (both steps through it).
#[test]
fn clone_then_fetch_through_packserve_only() {
    let sb = Sandbox::new("fetch-ps-only");
    let server = sb.fixture_copy("linear");
    let clone = sb.join("clone");
    sb.clone(Client::New, 2, Server::UnderTest, &server, &clone, &[]);
    sb.sh(&server, "tick_after_repo; commit more.txt more 'one more'");
    let t = sb.fetch(Client::New, 2, Server::UnderTest, &clone, &[]);
    sb.fsck(&clone);
    assert_eq!(sb.rev_parse(&clone, "refs/remotes/origin/main"), sb.rev_parse(&server, "main"));
    // one commit, its root tree, and the new blob
    assert_eq!(t.pack_objects, Some(3), "expected exactly commit + tree + blob");
}

/// A commit may name the empty tree without the repository storing it (tools that write
/// commits directly make such repositories). git treats the empty tree as always present and
/// sends it; so does packserve: the clone has the same objects and refs as git's, in v0 and v2.
#[test]
fn the_empty_tree_is_sent_though_not_stored() {
    let sb = Sandbox::new("fetch-empty-tree");
    let src = sb.join("srv.git");
    sb.sh(
        sb.path(),
        "git init -q --bare srv.git && cd srv.git && \
         c=$(git commit-tree -m empty 4b825dc642cb6eb9a060e54bf8d69288fbee4904) && \
         git update-ref refs/heads/main $c && git symbolic-ref HEAD refs/heads/main",
    );
    assert_eq!(sb.sh(&src, "find objects -type f | grep -c 4b/825dc || true").trim(), "0", "stored");
    for protocol in [0, 2] {
        let mut dests = Vec::new();
        for server in BOTH {
            let dest = sb.join(format!("clone-{}-v{protocol}", server_name(server)));
            let t = sb.clone(Client::New, protocol, server, &src, &dest, &[]);
            assert_eq!(t.pack_objects, Some(2), "{}: commit and empty tree", server_name(server));
            dests.push(dest);
        }
        assert_eq!(sb.objects(&dests[1]), sb.objects(&dests[0]), "v{protocol}: objects (left packserve)");
        assert_eq!(sb.refs(&dests[1]), sb.refs(&dests[0]), "v{protocol}: refs (left packserve)");
    }
}
