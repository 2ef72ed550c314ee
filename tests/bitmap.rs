//! Reachability bitmaps (single-pack and multi-pack-index): what packserve counts with them
//! must give the client exactly what git-upload-pack gives it, and what packserve's own walk
//! gives it (`pack.useBitmaps=false`), for clones (whole-pack reuse, verbatim runs) and for
//! fetches whose wants and haves are partly outside the bitmap (fill-in walking).

mod common;

use common::*;

/// Saves the refs, then leaves only `main` at `main~15` (and nothing else), so that a clone
/// made now is "behind"; `restore` puts everything back.
const REWIND: &str = r#"
    old=$(git rev-parse main~15)
    git for-each-ref --format='update %(refname) %(objectname)' > ../saved-refs
    git for-each-ref --format='delete %(refname)' refs/heads refs/tags | git update-ref --stdin
    git update-ref refs/heads/main "$old"
"#;
const RESTORE: &str = "git update-ref --stdin < ../saved-refs";
/// New history the bitmap does not cover (loose objects and a new pack).
const GROW: &str = r#"
    tick_after_repo
    many_commits refs/heads/main 12
    many_commits refs/heads/late 4 main~20
    tick; git tag -a -m "late tag" v-late refs/heads/late
"#;

/// packserve says in its progress whether it counted with the bitmap.
#[track_caller]
fn assert_counted_with_bitmap(out: &Output, expected: bool) {
    if server_under_test() != std::path::Path::new(env!("CARGO_BIN_EXE_packserve")) {
        return; // another server under test says something else
    }
    let said = out.stderr_str().contains("done (bitmap).");
    assert_eq!(said, expected, "bitmap use differs from what the test expects:\n{out}");
}

fn clone_three_ways(fixture_name: &str, setup: &str, client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("bitmap-clone-{fixture_name}-{}", label(client, protocol)));
    let server = sb.fixture_copy(fixture_name);
    if !setup.is_empty() {
        sb.sh(&server, setup);
    }
    let with = sb.join("bitmap-clone");
    let without = sb.join("walk-clone");
    let theirs = sb.join("git-clone");
    let ps = sb.clone(client, protocol, Server::UnderTest, &server, &with, &["--bare", "--progress"]);
    assert_counted_with_bitmap(&ps.output, true);
    let git = sb.clone(client, protocol, Server::Reference, &server, &theirs, &["--bare"]);
    sb.git(&server, &["config", "pack.useBitmaps", "false"]);
    let walk = sb.clone(client, protocol, Server::UnderTest, &server, &without, &["--bare", "--progress"]);
    assert_counted_with_bitmap(&walk.output, false);

    for r in [&with, &without, &theirs] {
        sb.fsck(r);
    }
    let (a, b, c) = (sb.objects(&with), sb.objects(&without), sb.objects(&theirs));
    assert!(a == c, "bitmap clone differs from git's: {}", set_diff("bitmap", &a, "git", &c));
    assert!(b == c, "walk clone differs from git's: {}", set_diff("walk", &b, "git", &c));
    assert_eq!(sb.refs(&with), sb.refs(&theirs), "refs differ from git's clone");
    assert_eq!(
        ps.pack_objects.map(|n| n as usize),
        Some(a.len()),
        "bitmap pack count (git: {:?})",
        git.pack_objects
    );
    assert_eq!(walk.pack_objects.map(|n| n as usize), Some(b.len()), "walk pack count");
}

fn fetch_three_ways(fixture_name: &str, grow: bool, client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("bitmap-fetch-{fixture_name}-{}", label(client, protocol)));
    let server = sb.fixture_copy(fixture_name);
    sb.sh(&server, REWIND);
    let with = sb.join("bitmap-clone");
    let without = sb.join("walk-clone");
    let theirs = sb.join("git-clone");
    for dest in [&with, &without, &theirs] {
        sb.clone(client, protocol, Server::Reference, &server, dest, &[]);
    }
    sb.sh(&server, RESTORE);
    if grow {
        sb.sh(&server, GROW);
    }
    let ps = sb.fetch(client, protocol, Server::UnderTest, &with, &["--progress"]);
    assert_counted_with_bitmap(&ps.output, true);
    let git = sb.fetch(client, protocol, Server::Reference, &theirs, &[]);
    sb.git(&server, &["config", "pack.useBitmaps", "false"]);
    let walk = sb.fetch(client, protocol, Server::UnderTest, &without, &["--progress"]);
    assert_counted_with_bitmap(&walk.output, false);

    for r in [&with, &without, &theirs] {
        sb.fsck(r);
    }
    let (a, b, c) = (sb.objects(&with), sb.objects(&without), sb.objects(&theirs));
    assert!(a == c, "after the bitmap fetch: {}", set_diff("bitmap", &a, "git", &c));
    assert!(b == c, "after the walk fetch: {}", set_diff("walk", &b, "git", &c));
    assert_eq!(sb.refs(&with), sb.refs(&theirs), "refs differ from git's");
    eprintln!(
        "pack objects: bitmap {:?}, walk {:?}, git {:?}",
        ps.pack_objects, walk.pack_objects, git.pack_objects
    );
    // With bitmaps both servers subtract everything the client has, so the counts agree.
    assert_pack_counts_close(&format!("{fixture_name} bitmap fetch"), ps.pack_objects, git.pack_objects);
    assert!(
        ps.pack_objects.unwrap_or(0) <= walk.pack_objects.unwrap_or(0),
        "the bitmap sent more than the walk: {:?} > {:?}",
        ps.pack_objects,
        walk.pack_objects
    );
}

macro_rules! bitmap_matrix {
    ($($fixture:ident),* $(,)?) => {$(
        mod $fixture {
            use super::*;
            #[test] fn clone_git247_v2() { clone_three_ways(stringify!($fixture), "", Client::New, 2) }
            #[test] fn clone_git239_v0() { clone_three_ways(stringify!($fixture), "", Client::Old, 0) }
            #[test] fn clone_grown_git247_v2() { clone_three_ways(stringify!($fixture), GROW, Client::New, 2) }
            #[test] fn clone_grown_git247_v0() { clone_three_ways(stringify!($fixture), GROW, Client::New, 0) }
            #[test] fn fetch_git247_v2() { fetch_three_ways(stringify!($fixture), false, Client::New, 2) }
            #[test] fn fetch_git239_v0() { fetch_three_ways(stringify!($fixture), false, Client::Old, 0) }
            #[test] fn fetch_grown_git247_v2() { fetch_three_ways(stringify!($fixture), true, Client::New, 2) }
            #[test] fn fetch_grown_git239_v1() { fetch_three_ways(stringify!($fixture), true, Client::Old, 1) }
        }
    )*};
}

bitmap_matrix!(bitmap, midx);

/// A pack sent whole is the file itself: same bytes, same trailer.
#[test]
fn whole_pack_clone_is_the_file() {
    let sb = Sandbox::new("bitmap-whole-pack");
    let server = sb.fixture_copy("bitmap");
    let dest = sb.join("clone");
    sb.clone(Client::New, 2, Server::UnderTest, &server, &dest, &["--bare"]);
    let pack_of = |repo: &std::path::Path| -> Vec<u8> {
        let dir = repo.join("objects/pack");
        let p = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .expect("a pack");
        std::fs::read(p).unwrap()
    };
    assert!(pack_of(&server) == pack_of(&dest), "the clone's pack is not the server's pack file");
}
