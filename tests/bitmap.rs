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

/// `packserve.bitmapDeltaSearch`: counted with bitmaps, a fetch reuses what is stored and, like
/// git, searches no delta for an object that is not stored as one (here a new version of a
/// 5 MiB file, loose, so outside the bitmap): it goes whole. With the setting, the client's
/// version of the changed path is found and the new one goes as a thin delta against it. Both
/// fetches end with what git's fetch gives.
#[test]
fn bitmap_delta_search_sends_changed_files_as_thin_deltas() {
    let sb = Sandbox::new("bitmap-delta-search");
    let server = sb.fixture_copy("bigblob");
    sb.sh(&server, "git repack -q -a -d -b");
    let clients: Vec<_> =
        ["default", "search", "git"].iter().map(|n| sb.join(format!("client-{n}"))).collect();
    for c in &clients {
        sb.clone(Client::New, 2, Server::Reference, &server, c, &["--bare"]);
    }
    sb.sh(
        &server,
        r#"
        { head -c 3000000 big.bin; printf 'a change the client has not seen'; tail -c +3000033 big.bin; } >big.new
        mv big.new big.bin
        git add big.bin
        tick_after_repo
        git commit -q -m "big blob v3"
        "#,
    );
    let default = sb.fetch(Client::New, 2, Server::UnderTest, &clients[0], &["--progress"]);
    assert_counted_with_bitmap(&default.output, true);
    sb.git(&server, &["config", "packserve.bitmapDeltaSearch", "true"]);
    let search = sb.fetch(Client::New, 2, Server::UnderTest, &clients[1], &["--progress"]);
    assert_counted_with_bitmap(&search.output, true);
    sb.fetch(Client::New, 2, Server::Reference, &clients[2], &[]);
    for c in &clients {
        sb.fsck(c);
    }
    let theirs = sb.objects(&clients[2]);
    for (name, c) in [("default", &clients[0]), ("search", &clients[1])] {
        let ours = sb.objects(c);
        assert!(ours == theirs, "{name}: {}", set_diff(name, &ours, "git", &theirs));
        assert_eq!(sb.refs(c), sb.refs(&clients[2]), "{name}: refs differ from git's");
    }
    eprintln!("pack bytes: default {}, with the search {}", default.pack_bytes, search.pack_bytes);
    assert!(default.pack_bytes > 4 << 20, "the new version did not go whole: {} bytes", default.pack_bytes);
    assert!(search.pack_bytes < 256 << 10, "no thin delta with the search: {} bytes", search.pack_bytes);
}
