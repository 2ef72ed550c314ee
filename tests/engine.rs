//! The object engine's choices, against git's upload-pack on the same repository: the delta
//! window for objects whose stored base is cut off (`pack.window`, `pack.depth`), thin packs
//! against the client's versions of the sent paths, the write order, and packs that store an
//! object twice (a pushed thin pack completed with copies of its bases) next to loose objects.
//! Every result is fsck-checked and compared with git's object set; pack sizes are compared
//! with git's (no larger, give or take a small margin where said).

mod common;

use common::*;

/// A history where files shrink: git's repack stores the biggest (oldest) versions whole and
/// the newer ones as deltas against them, so a shallow clone cuts those deltas off. Five files
/// share most of their text, so the window finds deltas across them.
const SHRINKING: &str = r#"
    git init -q -b main work
    cd work
    base=$(for i in $(seq 1 1500); do echo "shared line $i of the common text, with some words"; done)
    for v in $(seq 40 -1 1); do
        for f in a b c d e; do
            { echo "$f header"; sed -n "1,$((600 + v * 20))p" <<< "$base"; echo "$f version $v"; } > $f.txt
        done
        git add -A
        tick
        git commit -q -m "version $v"
    done
    git repack -q -adf --window=50 --depth=50
    cd ..
    make_bare work server.git
"#;

/// Clones `server` with `extra` through packserve and git; both fsck-clean with the same
/// objects; returns (packserve's pack bytes, git's).
fn clone_both(sb: &Sandbox, server: &std::path::Path, name: &str, extra: &[&str]) -> (u64, u64) {
    let ours = sb.join(format!("{name}-ours"));
    let theirs = sb.join(format!("{name}-git"));
    let mut args = vec!["--bare"];
    args.extend_from_slice(extra);
    let a = sb.clone(Client::New, 2, Server::UnderTest, server, &ours, &args);
    let b = sb.clone(Client::New, 2, Server::Reference, server, &theirs, &args);
    sb.fsck(&ours);
    sb.fsck(&theirs);
    let (x, y) = (sb.objects(&ours), sb.objects(&theirs));
    assert!(x == y, "{name}: objects differ from git's: {}", set_diff("packserve", &x, "git", &y));
    assert_eq!(a.pack_objects, b.pack_objects, "{name}: pack object counts");
    (a.pack_bytes, b.pack_bytes)
}

#[test]
fn shallow_clone_finds_deltas_for_cut_off_objects() {
    let sb = Sandbox::new("engine-window");
    sb.sh(sb.path(), SHRINKING);
    let server = sb.join("server.git");
    // The newest versions are stored as deltas whose bases a depth-1 clone does not send.
    let listing = sb.git(&server, &["verify-pack", "-v", &the_idx(&server)]);
    let head_blob = sb.rev_parse(&server, "main:a.txt");
    assert!(
        listing.lines().any(|l| l.starts_with(&head_blob) && l.split_whitespace().count() >= 7),
        "the fixture's newest a.txt is not stored as a delta:\n{listing}"
    );
    let (ours, git) = clone_both(&sb, &server, "window", &["--depth=1"]);
    assert!(ours * 100 <= git * 102, "shallow pack {ours} bytes, git's {git}");
    // Without the window every cut-off object goes whole: the window is what makes it small.
    sb.git(&server, &["config", "pack.window", "0"]);
    let (none, _) = clone_both(&sb, &server, "nowindow", &["--depth=1"]);
    assert!(none > ours * 2, "pack.window=0 gave {none} bytes, the window {ours}: the setting is not read");
    // A depth of 1: no delta against an object that is itself a new delta.
    sb.git(&server, &["config", "pack.window", "10"]);
    sb.git(&server, &["config", "pack.depth", "1"]);
    let (shallow_chain, _) = clone_both(&sb, &server, "depth1", &["--depth=1"]);
    assert!(
        shallow_chain >= ours,
        "pack.depth=1 gave a smaller pack ({shallow_chain}) than depth 50 ({ours})"
    );
    let malformed = sb.git_with(Client::New, &server, &["config", "pack.depth", "lots"]);
    assert!(malformed.status.success());
    let t =
        sb.try_clone(Client::New, 2, Server::UnderTest, &server, &sb.join("bad"), &["--bare", "--depth=1"]);
    assert!(!t.output.status.success(), "a malformed pack.depth was accepted:\n{}", t.output);
    assert!(
        t.output.stderr_str().contains("bad numeric config value 'lots' for 'pack.depth'"),
        "{}",
        t.output
    );
}

#[test]
fn filter_clone_with_cut_off_trees_is_no_larger_than_gits() {
    let sb = Sandbox::new("engine-filter");
    sb.sh(sb.path(), SHRINKING);
    let server = sb.join("server.git");
    sb.git(&server, &["config", "uploadpack.allowFilter", "true"]);
    let (ours, git) = clone_both(&sb, &server, "filter", &["--filter=blob:none"]);
    assert!(ours * 100 <= git * 102, "filtered pack {ours} bytes, git's {git}");
}

/// The name of the repository's (only) pack index.
fn the_idx(repo: &std::path::Path) -> String {
    let dir = repo.join("objects/pack");
    let idx = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "idx"))
        .expect("a pack index");
    idx.display().to_string()
}

/// A fetch of new versions of files the client has older versions of: packserve's thin pack
/// makes deltas against the client's versions (stored whole on the server, and stored deltas
/// against versions the client does not have at hand) and is no larger than git's.
#[test]
fn thin_fetch_is_no_larger_than_gits() {
    let sb = Sandbox::new("engine-thin");
    sb.sh(sb.path(), SHRINKING);
    let server = sb.join("server.git");
    let ours = sb.join("ours");
    let theirs = sb.join("theirs");
    for dest in [&ours, &theirs] {
        sb.clone(Client::New, 2, Server::Reference, &server, dest, &[]);
    }
    // New history on the server: the files grow again, and a renamed copy appears.
    sb.sh(
        sb.path(),
        r#"
        git clone -q server.git grow
        cd grow
        for v in 1 2 3 4 5 6; do
            for f in a b c; do echo "grown line $v" >> $f.txt; done
            cp d.txt "renamed-$v.txt"
            git add -A
            tick
            git commit -q -m "grow $v"
        done
        git push -q origin main
        "#,
    );
    sb.git(&server, &["repack", "-q", "-adf", "--window=50"]);
    let a = sb.fetch(Client::New, 2, Server::UnderTest, &ours, &[]);
    let b = sb.fetch(Client::New, 2, Server::Reference, &theirs, &[]);
    sb.fsck(&ours);
    sb.fsck(&theirs);
    assert_eq!(sb.refs(&ours), sb.refs(&theirs));
    assert_eq!(a.pack_objects, b.pack_objects, "thin pack object counts");
    assert!(
        a.pack_bytes * 100 <= b.pack_bytes * 105,
        "thin pack {} bytes, git's {}",
        a.pack_bytes,
        b.pack_bytes
    );
}

/// The SHRINKING history in one bitmapped pack, a bare client of it as it is now ("behind"),
/// and the server set to keep every push as a pack. Returns (server, behind).
fn bitmapped_server_and_behind_client(sb: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf) {
    sb.sh(sb.path(), SHRINKING);
    let server = sb.join("server.git");
    sb.git(&server, &["repack", "-q", "-adb"]);
    let behind = sb.join("behind");
    sb.clone(Client::New, 2, Server::Reference, &server, &behind, &["--bare"]);
    sb.git(&server, &["config", "receive.unpackLimit", "1"]);
    (server, behind)
}

/// Objects stored twice — a pushed thin pack completed (`index-pack --fix-thin`) with copies
/// of bases the big pack has — next to loose objects from small pushes: every object is sent
/// once (the counts equal git's) and the result is sound, with and without bitmaps, for a
/// clone and for a fetch.
#[test]
fn objects_stored_twice_are_sent_once() {
    let sb = Sandbox::new("engine-dups");
    let (server, behind) = bitmapped_server_and_behind_client(&sb);
    sb.sh(
        sb.path(),
        r#"
        git clone -q server.git pusher
        cd pusher
        for v in 1 2; do
            echo "pushed $v" >> a.txt; echo "pushed $v" >> b.txt
            git add -A; tick; git commit -q -m "pushed $v"
            git push -q origin main
        done
        # Small pushes arrive loose.
        git -C ../server.git config receive.unpackLimit 100
        echo "small" >> c.txt; git add -A; tick; git commit -q -m small
        git push -q origin main
        "#,
    );
    let packs = std::fs::read_dir(server.join("objects/pack"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .count();
    assert!(packs >= 3, "the pushes were not kept as packs ({packs})");
    // The completed thin packs hold copies of objects of the big pack.
    let dup = sb.sh(
        &server,
        "for i in objects/pack/*.idx; do git show-index < $i | cut -d' ' -f2; done | sort | uniq -d | wc -l",
    );
    assert!(dup.trim() != "0", "no object is stored twice");
    for bitmaps in ["true", "false"] {
        sb.git(&server, &["config", "pack.useBitmaps", bitmaps]);
        let (_ours, _git) = clone_both(&sb, &server, &format!("dups-{bitmaps}"), &[]);
        let fetcher = sb.join(format!("fetch-{bitmaps}"));
        copy_tree(&behind, &fetcher);
        sb.git(&fetcher, &["config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"]);
        let t = sb.fetch(Client::New, 2, Server::UnderTest, &fetcher, &[]);
        sb.fsck(&fetcher);
        assert_eq!(sb.rev_parse(&fetcher, "main"), sb.rev_parse(&server, "main"));
        let listed = sb.sh(&fetcher, "git rev-list --objects --all | wc -l");
        assert!(t.pack_objects.is_some(), "no pack: {}", t.output);
        assert!(!listed.trim().is_empty());
    }
}

/// The state between repacks: a bitmapped pack, then pushes kept as small packs, each holding
/// new versions of the same files stored whole (pushed without thin packs). git compares an
/// object stored whole with the objects of other packs (only not with its own pack's, which
/// that pack's writer already did), so a fetch across several pushes makes each new version a
/// delta against the one before; packserve does the same, with and without bitmaps.
#[test]
fn pushed_packs_are_searched_against_each_other() {
    let sb = Sandbox::new("engine-pushed");
    let (server, behind) = bitmapped_server_and_behind_client(&sb);
    sb.sh(
        sb.path(),
        r#"
        git clone -q server.git pusher
        cd pusher
        for v in 1 2 3 4; do
            for f in a b; do sed -i "s/^shared line $v\([0-9]\) /changed line $v\1 /" $f.txt; done
            git add -A; tick; git commit -q -m "pushed $v"
            git push -q --no-thin origin main
        done
        "#,
    );
    let packs = sb.sh(&server, "ls objects/pack/*.pack | wc -l");
    assert!(packs.trim().parse::<u32>().unwrap() >= 5, "the pushes were not kept as packs ({packs})");
    // Each push stores one of its two files whole (the other as a delta against it).
    let whole = sb.sh(
        &server,
        "git rev-list --objects main~4..main | grep ' [ab].txt$' | cut -d' ' -f1 \
         | git cat-file --batch-check='%(deltabase)' | grep -c '^0*$'",
    );
    assert!(whole.trim().parse::<u32>().unwrap() >= 4, "the pushed versions are not stored whole ({whole})");
    for bitmaps in ["true", "false"] {
        sb.git(&server, &["config", "pack.useBitmaps", bitmaps]);
        let mut bytes = Vec::new();
        for (who, server_kind) in [("ours", Server::UnderTest), ("git", Server::Reference)] {
            let fetcher = sb.join(format!("fetch-{bitmaps}-{who}"));
            copy_tree(&behind, &fetcher);
            sb.git(&fetcher, &["config", "remote.origin.fetch", "+refs/heads/*:refs/heads/*"]);
            let t = sb.fetch(Client::New, 2, server_kind, &fetcher, &[]);
            sb.fsck(&fetcher);
            assert_eq!(sb.rev_parse(&fetcher, "main"), sb.rev_parse(&server, "main"));
            bytes.push(t.pack_bytes);
        }
        // Sent whole, the four versions would make the pack several times git's; the margin is
        // for the deltas themselves, a few dozen bytes larger than git's on files this small.
        let (ours, git) = (bytes[0], bytes[1]);
        assert!(ours * 100 <= git * 125, "bitmaps {bitmaps}: fetch pack {ours} bytes, git's {git}");
    }
}
