//! `GIT_NAMESPACE`: the server (run through a wrapper script that sets it) advertises only the
//! refs under refs/namespaces/<ns>/, with that prefix stripped, resolves HEAD inside the
//! namespace, and a clone gets exactly those refs and the objects they reach. Nested
//! namespaces (`a/b`), a namespace without HEAD, an empty one, and hideRefs in both forms
//! (stripped name, and `^` full name).

mod common;

use common::pktline;
use common::*;
use std::path::PathBuf;

fn wrappers(sb: &Sandbox, ns: &str) -> [PathBuf; 2] {
    BOTH.map(|s| sb.wrapper(s, &[("GIT_NAMESPACE", ns)], ""))
}

/// ls-remote and a clone (plain or mirror) through both servers in namespace `ns` of a copy
/// of the `namespaces` fixture with `config`; results equal git's and `expect_refs` (names as
/// ls-remote shows them) are exactly what is listed.
fn namespace_like_git(
    name: &str,
    ns: &str,
    config: &[(&str, &str)],
    expect_refs: &[&str],
    mirror: bool,
    client: Client,
    protocol: u8,
) {
    let sb = Sandbox::new(&format!("ns-{name}-{}", label(client, protocol)));
    let src = if config.is_empty() { fixture("namespaces") } else { sb.fixture_copy("namespaces") };
    for (k, v) in config {
        sb.config_add(&src, k, v);
    }
    let via = wrappers(&sb, ns);
    let mut listings = Vec::new();
    for (server, up) in BOTH.iter().zip(&via) {
        let out = sb.try_ls_remote_via(client, protocol, up, &src, &[], &[]).assert_success();
        listings.push(out.stdout_str());
        let mut names: Vec<&str> =
            listings.last().unwrap().lines().filter_map(|l| l.split('\t').nth(1)).collect();
        // git's v2 ls-refs lists HEAD twice in a namespace with a HEAD (once as HEAD, once as
        // the stripped refs/namespaces/<ns>/HEAD); the exact output is compared below.
        names.dedup();
        assert_eq!(names, expect_refs, "{}: refs listed in namespace {ns}", server_name(*server));
    }
    assert_eq!(listings[1], listings[0], "ls-remote in namespace {ns} (left packserve, right git)");

    let mut dests = Vec::new();
    for (server, up) in BOTH.iter().zip(&via) {
        let dest = sb.join(format!("clone-{}", server_name(*server)));
        let extra: &[&str] = if mirror { &["--mirror"] } else { &[] };
        let t = sb.try_clone_via(client, protocol, up, &src, &dest, extra);
        assert!(t.output.status.success(), "{}: clone failed:\n{}", server_name(*server), t.output);
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], name);
    assert_eq!(sb.head(&dests[1]), sb.head(&dests[0]), "HEAD of the clone");
    let refs = sb.refs(&dests[1]);
    assert!(
        !refs.keys().any(|r| r.contains("namespaces")),
        "namespace prefix leaked into the clone: {refs:?}"
    );
}

fn foo(client: Client, protocol: u8) {
    namespace_like_git(
        "foo",
        "foo",
        &[],
        &["HEAD", "refs/heads/dev", "refs/heads/main", "refs/tags/v1", "refs/tags/v1^{}"],
        false,
        client,
        protocol,
    )
}

fn foo_mirror(client: Client, protocol: u8) {
    namespace_like_git(
        "foo-mirror",
        "foo",
        &[],
        &["HEAD", "refs/heads/dev", "refs/heads/main", "refs/tags/v1", "refs/tags/v1^{}"],
        true,
        client,
        protocol,
    )
}

fn nested(client: Client, protocol: u8) {
    namespace_like_git("nested", "a/b", &[], &["HEAD", "refs/heads/main"], true, client, protocol)
}

/// No HEAD in the namespace: no HEAD line.
fn without_head(client: Client, protocol: u8) {
    namespace_like_git("bar", "bar", &[], &["refs/heads/secret"], true, client, protocol)
}

/// hideRefs matches the stripped name, or with `^` the full name.
fn hidden_in_namespace(client: Client, protocol: u8) {
    namespace_like_git(
        "hidden",
        "foo",
        &[
            ("uploadpack.hideRefs", "refs/heads/main"),
            ("uploadpack.hideRefs", "^refs/namespaces/foo/refs/tags"),
            ("uploadpack.hideRefs", "^refs/namespaces/bar"),
            ("transfer.hideRefs", "^refs/heads/dev"),
        ],
        &["HEAD", "refs/heads/dev"],
        true,
        client,
        protocol,
    )
}

client_variants! {
    namespace_foo => foo;
    namespace_foo_mirror => foo_mirror;
    nested_namespace => nested;
    namespace_without_head => without_head;
    hide_refs_in_a_namespace => hidden_in_namespace;
}

/// A namespace with no refs at all looks like an empty repository.
#[test]
fn empty_namespace() {
    let sb = Sandbox::new("ns-empty");
    let src = fixture("namespaces");
    let via = wrappers(&sb, "nothing-here");
    for (client, protocol) in [(Client::New, 0), (Client::New, 2), (Client::Old, 2)] {
        let mut outs = Vec::new();
        for up in &via {
            let out = sb.try_ls_remote_via(client, protocol, up, &src, &[], &[]).assert_success();
            assert_eq!(out.stdout_str(), "", "refs listed in an empty namespace");
            let dest = sb.unique("clone");
            let t = sb.try_clone_via(client, protocol, up, &src, &dest, &[]);
            assert!(t.output.status.success(), "{}", t.output);
            outs.push(sb.objects(&dest));
        }
        assert!(outs[1].is_empty() && outs[0].is_empty(), "objects in a clone of an empty namespace");
    }
}

/// v2 ls-refs in a namespace: byte for byte git's (symref targets stripped too).
#[test]
fn raw_v2_ls_refs_in_a_namespace() {
    let sb = Sandbox::new("ns-ls-refs");
    let src = fixture("namespaces");
    let req = pktline::request(&[
        "command=ls-refs",
        "object-format=sha1",
        "0001",
        "peel",
        "symrefs",
        "unborn",
        "ref-prefix HEAD",
        "ref-prefix refs/",
        "0000",
    ]);
    for ns in ["foo", "a/b", "bar"] {
        let mut outs = Vec::new();
        for up in wrappers(&sb, ns) {
            let mut cmd = sb.command(&up);
            cmd.env("GIT_PROTOCOL", "version=2").args(["--stateless-rpc", src.to_str().unwrap()]);
            let out = run(cmd, Some(&req)).assert_success();
            outs.push(out.stdout);
        }
        let render = |o: &[u8]| pktline::render(&pktline::parse_prefix(o).0);
        assert!(
            outs[0] == outs[1],
            "namespace {ns}: ls-refs differs\n--- packserve ---\n{}--- git ---\n{}",
            render(&outs[1]),
            render(&outs[0])
        );
        assert!(!render(&outs[0]).contains("namespaces"), "{}", render(&outs[0]));
    }
}

/// v0 advertisement in a namespace: git's ref lines and symref capability.
#[test]
fn raw_v0_advertisement_in_a_namespace() {
    let sb = Sandbox::new("ns-v0-ad");
    let src = fixture("namespaces");
    for ns in ["foo", "a/b", "bar"] {
        let mut ads = Vec::new();
        for up in wrappers(&sb, ns) {
            let mut cmd = sb.command(&up);
            cmd.args(["--advertise-refs", src.to_str().unwrap()]);
            ads.push(pktline::parse_v0_advertisement(&run(cmd, None).assert_success().stdout));
        }
        assert_eq!(
            ads[1].ref_lines, ads[0].ref_lines,
            "namespace {ns}: ref lines (left packserve, right git)"
        );
        assert_eq!(
            ads[1].caps_with_prefix("symref="),
            ads[0].caps_with_prefix("symref="),
            "namespace {ns}: symref"
        );
    }
}

/// In v0 a commit of another namespace is not our ref.
#[test]
fn v0_want_from_another_namespace_is_not_our_ref() {
    let sb = Sandbox::new("ns-not-ours");
    let src = fixture("namespaces");
    let oid = sb.rev_parse(&src, "refs/namespaces/bar/refs/heads/secret");
    let req = pktline::request(&[
        &format!("want {oid} multi_ack_detailed side-band-64k ofs-delta"),
        "0000",
        "done",
    ]);
    for up in wrappers(&sb, "foo") {
        let mut cmd = sb.command(&up);
        cmd.arg(src.to_str().unwrap());
        let out = run(cmd, Some(&req));
        let (pkts, _) = pktline::parse_prefix(&out.stdout);
        let want = format!("ERR upload-pack: not our ref {oid}");
        assert!(
            pkts.iter().any(|p| p.text().as_deref() == Some(want.as_str())),
            "{}: no `{want}`:\n{out}",
            up.display()
        );
        assert!(!out.status.success());
    }
}

/// DELIBERATE DIFFERENCE (git serves any object in v2): packserve's v2 policy counts only the
/// refs it advertises, so a commit that only another namespace's refs reach is `not our ref`.
#[test]
fn packserve_policy_v2_want_from_another_namespace_is_not_our_ref() {
    let sb = Sandbox::new("ns-v2-not-ours");
    let src = fixture("namespaces");
    let oid = sb.rev_parse(&src, "refs/namespaces/bar/refs/heads/secret");
    let req = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        &format!("want {oid}"),
        "done",
        "0000",
    ]);
    let up = sb.wrapper(Server::UnderTest, &[("GIT_NAMESPACE", "foo")], "");
    let mut cmd = sb.command(&up);
    cmd.env("GIT_PROTOCOL", "version=2").args(["--stateless-rpc", src.to_str().unwrap()]);
    let out = run(cmd, Some(&req));
    let (pkts, _) = pktline::parse_prefix(&out.stdout);
    let want = format!("ERR upload-pack: not our ref {oid}");
    assert!(pkts.iter().any(|p| p.text().as_deref() == Some(want.as_str())), "no `{want}`:\n{out}");
    assert!(!out.status.success());
}
