//! Clones through the server under test compared with clones through git-upload-pack:
//! every fixture × client (git 2.47, 2.39) × protocol (0, 1, 2), plus mirror and bare clones.

mod common;

use common::*;

/// Clones `fixture` through both servers and holds the packserve clone to git's.
fn clone_matches_git(fixture_name: &str, client: Client, protocol: u8) {
    let src = fixture(fixture_name);
    let sb = Sandbox::new(&format!("clone-{fixture_name}-{}", label(client, protocol)));
    let ours = sb.join("packserve-clone");
    let theirs = sb.join("git-clone");
    let ps = sb.clone(client, protocol, Server::UnderTest, &src, &ours, &[]);
    let git = sb.clone(client, protocol, Server::Reference, &src, &theirs, &[]);

    sb.fsck(&theirs);
    sb.fsck(&ours);

    let our_refs = sb.refs(&ours);
    let git_refs = sb.refs(&theirs);
    assert!(
        our_refs == git_refs,
        "refs of the packserve clone differ from the git clone's:\n{}",
        map_diff("packserve", &our_refs, "git", &git_refs)
    );
    let expected = expected_clone_refs(&sb.refs(&src));
    let got = fetched_refs(&our_refs);
    assert!(
        got == expected,
        "remote-tracking refs and tags of the clone differ from the server's refs:\n{}",
        map_diff("clone", &got, "server", &expected)
    );

    let our_head = sb.head(&ours);
    assert_eq!(our_head, sb.head(&theirs), "HEAD of the packserve clone differs from the git clone's");
    match sb.head(&src) {
        Head::Symbolic { target, oid: Some(oid) } => {
            assert_eq!(
                our_head,
                Head::Symbolic { target, oid: Some(oid) },
                "clone HEAD differs from the server's"
            )
        }
        Head::Detached(oid) => {
            assert_eq!(our_head, Head::Detached(oid), "clone HEAD differs from the server's")
        }
        Head::Symbolic { oid: None, .. } => {} // unborn: what the client makes of it is compared with git above
    }

    let our_objects = sb.objects(&ours);
    let git_objects = sb.objects(&theirs);
    assert!(
        our_objects == git_objects,
        "objects of the packserve clone differ from the git clone's: {}",
        set_diff("packserve", &our_objects, "git", &git_objects)
    );
    assert_eq!(
        ps.pack_objects.unwrap_or(0) as usize,
        our_objects.len(),
        "the pack packserve sent has a different object count than the clone holds (git's pack: {:?})",
        git.pack_objects
    );
}

macro_rules! clone_matrix {
    ($($fixture:ident),* $(,)?) => {$(
        mod $fixture {
            use super::*;
            #[test] fn git247_v0() { clone_matches_git(stringify!($fixture), Client::New, 0) }
            #[test] fn git247_v1() { clone_matches_git(stringify!($fixture), Client::New, 1) }
            #[test] fn git247_v2() { clone_matches_git(stringify!($fixture), Client::New, 2) }
            #[test] fn git239_v0() { clone_matches_git(stringify!($fixture), Client::Old, 0) }
            #[test] fn git239_v1() { clone_matches_git(stringify!($fixture), Client::Old, 1) }
            #[test] fn git239_v2() { clone_matches_git(stringify!($fixture), Client::Old, 2) }
        }
    )*};
}

clone_matrix!(linear, merges, tags, empty, loose, multipack, bigblob, detached, unborn, bitmap, midx);

/// `git clone --mirror`: every ref of the server, exactly, and its HEAD.
fn mirror_equals_server(client: Client, protocol: u8) {
    let src = fixture("merges");
    let sb = Sandbox::new(&format!("mirror-{}", label(client, protocol)));
    let ours = sb.join("packserve-mirror.git");
    let theirs = sb.join("git-mirror.git");
    sb.clone(client, protocol, Server::UnderTest, &src, &ours, &["--mirror"]);
    sb.clone(client, protocol, Server::Reference, &src, &theirs, &["--mirror"]);
    sb.fsck(&ours);
    let server_refs = sb.refs(&src);
    assert!(server_refs.keys().any(|r| r.starts_with("refs/notes/")), "fixture lost its notes ref");
    let our_refs = sb.refs(&ours);
    assert!(
        our_refs == server_refs,
        "mirror refs differ from the server's:\n{}",
        map_diff("mirror", &our_refs, "server", &server_refs)
    );
    assert_eq!(sb.head(&ours), sb.head(&src), "mirror HEAD differs from the server's");
    let (a, b) = (sb.objects(&ours), sb.objects(&theirs));
    assert!(a == b, "mirror objects differ from git's mirror: {}", set_diff("packserve", &a, "git", &b));
}

#[test]
fn mirror_git247_v0() {
    mirror_equals_server(Client::New, 0)
}
#[test]
fn mirror_git247_v2() {
    mirror_equals_server(Client::New, 2)
}
#[test]
fn mirror_git239_v0() {
    mirror_equals_server(Client::Old, 0)
}
#[test]
fn mirror_git239_v2() {
    mirror_equals_server(Client::Old, 2)
}

/// `git clone --bare`: the server's branches and tags, exactly, under the same names.
fn bare_clone_equals_server(client: Client, protocol: u8) {
    let src = fixture("tags");
    let sb = Sandbox::new(&format!("bare-{}", label(client, protocol)));
    let ours = sb.join("packserve-bare.git");
    sb.clone(client, protocol, Server::UnderTest, &src, &ours, &["--bare"]);
    sb.fsck(&ours);
    let expected: std::collections::BTreeMap<_, _> = sb
        .refs(&src)
        .into_iter()
        .filter(|(k, _)| k.starts_with("refs/heads/") || k.starts_with("refs/tags/"))
        .collect();
    let got = sb.refs(&ours);
    assert!(
        got == expected,
        "bare clone refs differ from the server's:\n{}",
        map_diff("bare", &got, "server", &expected)
    );
    assert_eq!(sb.head(&ours), sb.head(&src));
}

#[test]
fn bare_git247_v2() {
    bare_clone_equals_server(Client::New, 2)
}
#[test]
fn bare_git239_v0() {
    bare_clone_equals_server(Client::Old, 0)
}

/// Several packs, loose objects and a 5 MiB blob (one version packed, one loose) over v2:
/// fsck passes and the big file arrives byte for byte.
#[test]
fn multipack_big_blob_v2_passes_fsck() {
    let src = fixture("multipack");
    let sb = Sandbox::new("multipack-v2");
    let ours = sb.join("clone");
    let t = sb.clone(Client::New, 2, Server::UnderTest, &src, &ours, &[]);
    sb.fsck(&ours);
    assert_eq!(sb.rev_parse(&ours, "HEAD:big.bin"), sb.rev_parse(&src, "HEAD:big.bin"));
    let theirs = std::fs::read(src.join("big.bin")).unwrap();
    let got = std::fs::read(ours.join("big.bin")).unwrap();
    assert_eq!(got.len(), RANDOM_BYTES + 11);
    assert!(got == theirs, "checked-out big.bin differs from the server's");
    let n = sb.objects(&ours).len();
    assert_eq!(t.pack_objects, Some(n as u32), "pack object count vs objects in the clone");
}
