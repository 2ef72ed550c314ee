//! Hidden refs: `uploadpack.hideRefs` and `transfer.hideRefs` with git's rules (prefixes
//! matching whole path components, `!` negation, the last match winning, HEAD), read from the
//! repository's config (the other config sources are tested in config.rs).
//! A hidden ref must not appear in ls-remote output, in a mirror clone or in the packet trace
//! (client and server, `GIT_TRACE_PACKET=1`), in any protocol version, and objects reachable
//! only from hidden refs must not be sent.

mod common;

use common::pktline;
use common::*;
use std::path::{Path, PathBuf};

/// Objects (by content) that only hidden refs reach in the `hidden` fixture.
fn secret_objects(sb: &Sandbox, src: &Path) -> Vec<(String, &'static str)> {
    vec![
        (sb.rev_parse(src, "refs/hidden/secret"), "refs/hidden/secret"),
        (sb.rev_parse(src, "refs/hidden/secret:secret.txt"), "secret.txt of refs/hidden/secret"),
        (sb.rev_parse(src, "refs/pull/1/head:pr.txt"), "pr.txt of refs/pull/1/head"),
        (sb.rev_parse(src, "refs/heads/private/x:private.txt"), "private.txt of refs/heads/private/x"),
    ]
}

fn server_with(sb: &Sandbox, config: &[(&str, &str)]) -> PathBuf {
    let src = sb.fixture_copy("hidden");
    for (k, v) in config {
        sb.config_add(&src, k, v);
    }
    src
}

/// ls-remote (with the packet trace of client and server on stderr) and a mirror clone
/// through both servers; outputs, refs and objects equal git's; `hidden` names appear nowhere
/// and `visible` names appear in ls-remote.
fn hidden_like_git(
    name: &str,
    config: &[(&str, &str)],
    hidden: &[&str],
    visible: &[&str],
    client: Client,
    protocol: u8,
) {
    let sb = Sandbox::new(&format!("hidden-{name}-{}", label(client, protocol)));
    let src = server_with(&sb, config);
    let via = |server: Server| server.program();
    let mut listings = Vec::new();
    for server in BOTH {
        let who = server_name(server);
        let out = sb
            .try_ls_remote_via(client, protocol, &via(server), &src, &[], &[("GIT_TRACE_PACKET", "1")])
            .assert_success();
        let stdout = out.stdout_str();
        for h in hidden {
            assert!(!stdout.contains(h), "{who}: ls-remote lists hidden {h}:\n{stdout}");
            assert!(
                !out.stderr_str().contains(h),
                "{who}: the packet trace shows hidden {h}:\n{}",
                out.stderr_str()
            );
        }
        for v in visible {
            assert!(stdout.contains(v), "{who}: ls-remote does not list {v}:\n{stdout}");
        }
        assert!(out.stderr_str().contains("packet:"), "{who}: no packet trace at all:\n{out}");
        listings.push(stdout);
    }
    assert_eq!(listings[1], listings[0], "{name}: ls-remote output (left packserve, right git)");

    // A mirror clone asks for refs/*: whatever is advertised comes over.
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("mirror-{}", server_name(server)));
        let mut cmd = sb.git_cmd(client, protocol, sb.path());
        cmd.args(["clone", "--no-progress", "--mirror"])
            .arg(format!("--upload-pack={}", via(server).display()))
            .arg(file_url(&src))
            .arg(&dest);
        let t = sb.run_transfer(cmd);
        assert!(t.output.status.success(), "{}: mirror clone failed:\n{}", server_name(server), t.output);
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], name);
    let refs = sb.refs(&dests[1]);
    for h in hidden {
        assert!(!refs.keys().any(|r| r.contains(h)), "the mirror clone has hidden {h}: {refs:?}");
    }
    let objects = sb.objects(&dests[1]);
    for (oid, what) in secret_objects(&sb, &src) {
        let sent = objects.iter().any(|o| o.starts_with(&oid));
        let hidden_ref_of = hidden.iter().any(|h| what.contains(h));
        if hidden_ref_of {
            assert!(!sent, "{what} ({oid}) was sent though only hidden refs reach it");
        }
    }
}

macro_rules! hidden_cases {
    ($($name:ident: [$(($k:expr, $v:expr)),*], hidden [$($h:expr),*], visible [$($s:expr),*];)*) => {$(
        mod $name {
            use super::*;
            fn check(client: Client, protocol: u8) {
                hidden_like_git(stringify!($name), &[$(($k, $v)),*], &[$($h),*], &[$($s),*], client, protocol)
            }
            #[test] fn git247_v0() { check(Client::New, 0) }
            #[test] fn git247_v1() { check(Client::New, 1) }
            #[test] fn git247_v2() { check(Client::New, 2) }
            #[test] fn git239_v2() { check(Client::Old, 2) }
        }
    )*};
}

hidden_cases! {
    uploadpack_hide_refs: [("uploadpack.hideRefs", "refs/hidden")],
        hidden ["refs/hidden"], visible ["refs/pull/1/head", "refs/heads/private/x"];
    transfer_hide_refs: [("transfer.hideRefs", "refs/hidden"), ("uploadpack.hideRefs", "refs/pull")],
        hidden ["refs/hidden", "refs/pull"], visible ["refs/heads/main"];
    negation_last_match_wins: [("uploadpack.hideRefs", "refs/heads"), ("uploadpack.hideRefs", "!refs/heads/main")],
        hidden ["refs/heads/feature", "refs/heads/private"], visible ["refs/heads/main", "refs/tags/v1"];
    // git documents prefixes as whole path components: `refs/heads/private` hides
    // refs/heads/private/z but not refs/heads/private-y (both loose). (git 2.47 also hides
    // *packed* refs that merely start with the string, a side effect of its packed-refs
    // exclusion; that is not pinned here.)
    prefix_matches_whole_components: [("uploadpack.hideRefs", "refs/heads/private")],
        hidden ["refs/heads/private/"], visible ["refs/heads/private-y", "refs/heads/main"];
    full_ref_name: [("uploadpack.hideRefs", "refs/heads/private/x"), ("uploadpack.hideRefs", "refs/tags")],
        hidden ["refs/heads/private/x", "refs/tags/v1"], visible ["refs/heads/main"];
    hide_head: [("uploadpack.hideRefs", "HEAD"), ("uploadpack.hideRefs", "refs/hidden")],
        hidden ["refs/hidden"], visible ["refs/heads/main"];
    receive_hide_refs_does_not_apply: [("receive.hideRefs", "refs/hidden")],
        hidden [], visible ["refs/hidden/secret"];
}

// ---------------------------------------------------------------------------
// Raw advertisements

#[test]
fn raw_advertisements_never_show_hidden_refs() {
    let sb = Sandbox::new("hidden-raw");
    let src = server_with(&sb, &[("uploadpack.hideRefs", "refs/hidden"), ("transfer.hideRefs", "refs/pull")]);
    let s = src.to_str().unwrap();
    for proto in [None, Some("version=1")] {
        let mut ads = Vec::new();
        for server in BOTH {
            let out = sb.serve(server, &["--advertise-refs", s], proto, None).assert_success();
            let ad = pktline::parse_v0_advertisement(&out.stdout);
            for l in &ad.ref_lines {
                assert!(!l.contains("refs/hidden") && !l.contains("refs/pull"), "{proto:?}: {l}");
            }
            ads.push(ad.ref_lines);
        }
        assert_eq!(ads[1], ads[0], "{proto:?}: advertised refs (left packserve, right git)");
    }
    // v2 ls-refs, asking for the hidden prefixes explicitly.
    let req = pktline::request(&[
        "command=ls-refs",
        "object-format=sha1",
        "0001",
        "peel",
        "symrefs",
        "ref-prefix refs/hidden/",
        "ref-prefix refs/pull/",
        "ref-prefix refs/heads/",
        "0000",
    ]);
    let mut outs = Vec::new();
    for server in BOTH {
        let out = sb.serve(server, &["--stateless-rpc", s], Some("version=2"), Some(&req)).assert_success();
        let shown = pktline::render(&pktline::parse_all(&out.stdout));
        assert!(!shown.contains("refs/hidden") && !shown.contains("refs/pull"), "{shown}");
        assert!(shown.contains("refs/heads/main"), "{shown}");
        outs.push(out.stdout);
    }
    assert!(outs[0] == outs[1], "ls-refs output differs from git's");
}

/// With HEAD hidden, v0 still names HEAD's target in `symref=` like git does, but lists no
/// HEAD line.
#[test]
fn raw_v0_hidden_head() {
    let sb = Sandbox::new("hidden-head");
    let src = server_with(&sb, &[("uploadpack.hideRefs", "HEAD")]);
    let mut ads = Vec::new();
    for server in BOTH {
        let out = sb.serve(server, &["--advertise-refs", src.to_str().unwrap()], None, None).assert_success();
        ads.push(pktline::parse_v0_advertisement(&out.stdout));
    }
    assert!(
        !ads[0].ref_lines.iter().any(|l| l.ends_with(" HEAD")),
        "scenario is off: {:?}",
        ads[0].ref_lines
    );
    assert_eq!(ads[1].ref_lines, ads[0].ref_lines, "advertised refs (left packserve, right git)");
    assert_eq!(ads[1].caps_with_prefix("symref="), ads[0].caps_with_prefix("symref="), "symref capability");
}

/// Fetching a hidden ref by name fails (the client does not find it).
fn fetch_hidden_by_name(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("hidden-by-name-{}", label(client, protocol)));
    let src = server_with(&sb, &[("uploadpack.hideRefs", "refs/hidden")]);
    for server in BOTH {
        let repo = sb.empty_clone_of(&src, &format!("repo-{}", server_name(server)));
        let t =
            sb.try_fetch_via(client, protocol, &server.program(), &repo, &["origin", "refs/hidden/secret"]);
        assert_failed_with(&t.output, "couldn't find remote ref refs/hidden/secret", server_name(server));
    }
}

client_variants! {
    fetching_a_hidden_ref_by_name_fails => fetch_hidden_by_name;
}
