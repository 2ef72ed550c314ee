//! `git ls-remote` through the server under test prints exactly what it prints through
//! git-upload-pack, including peeled tags (`^{}`), symrefs and ref patterns.

mod common;

use common::*;

/// Option sets tried for every fixture; patterns go after the URL.
const VARIANTS: &[(&[&str], &[&str])] = &[
    (&[], &[]),
    (&["--symref"], &[]),
    (&["--tags"], &[]),
    (&["--refs"], &[]),
    (&["--symref"], &["HEAD", "refs/heads/main", "v1*"]),
];

fn ls_remote_matches_git(fixture_name: &str, client: Client, protocol: u8) {
    let src = fixture(fixture_name);
    let sb = Sandbox::new(&format!("ls-remote-{fixture_name}-{}", label(client, protocol)));
    let mut failures = Vec::new();
    for (opts, patterns) in VARIANTS {
        let ours = ls_remote(&sb, client, protocol, Server::UnderTest, &src, opts, patterns);
        let git = ls_remote(&sb, client, protocol, Server::Reference, &src, opts, patterns);
        if ours != git {
            failures.push(format!(
                "ls-remote {opts:?} {patterns:?}:\n--- packserve ---\n{ours}--- git-upload-pack ---\n{git}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn ls_remote(
    sb: &Sandbox,
    client: Client,
    protocol: u8,
    server: Server,
    src: &std::path::Path,
    opts: &[&str],
    patterns: &[&str],
) -> String {
    let mut cmd = sb.command(client.program());
    cmd.arg("-c")
        .arg(format!("protocol.version={protocol}"))
        .arg("ls-remote")
        .arg(format!("--upload-pack={}", server.program().display()))
        .args(opts)
        .arg(file_url(src))
        .args(patterns);
    let out = run(cmd, None);
    if !out.status.success() {
        panic!("ls-remote through {server:?} failed:\n{out}");
    }
    out.stdout_str()
}

macro_rules! ls_remote_matrix {
    ($($fixture:ident),* $(,)?) => {$(
        mod $fixture {
            use super::*;
            #[test] fn git247_v0() { ls_remote_matches_git(stringify!($fixture), Client::New, 0) }
            #[test] fn git247_v1() { ls_remote_matches_git(stringify!($fixture), Client::New, 1) }
            #[test] fn git247_v2() { ls_remote_matches_git(stringify!($fixture), Client::New, 2) }
            #[test] fn git239_v0() { ls_remote_matches_git(stringify!($fixture), Client::Old, 0) }
            #[test] fn git239_v2() { ls_remote_matches_git(stringify!($fixture), Client::Old, 2) }
        }
    )*};
}

ls_remote_matrix!(tags, merges, detached, unborn, empty);

/// The peeled lines are really there (guards the comparison above against both sides
/// printing nothing).
#[test]
fn peeled_tags_are_listed() {
    let src = fixture("tags");
    let sb = Sandbox::new("ls-remote-peeled");
    for protocol in [0, 2] {
        let out = sb.ls_remote(Client::New, protocol, Server::UnderTest, &src, &[]);
        let peeled = sb.rev_parse(&src, "v1.0-outermost^{}");
        assert!(
            out.contains(&format!("{peeled}\trefs/tags/v1.0-outermost^{{}}\n")),
            "v{protocol}: no fully peeled line for the tag of a tag of a tag:\n{out}"
        );
        let tag = sb.rev_parse(&src, "refs/tags/v2.0");
        assert!(out.contains(&format!("{tag}\trefs/tags/v2.0\n")), "v{protocol}: v2.0 missing:\n{out}");
        assert!(!out.contains("refs/tags/light-1^{}"), "v{protocol}: lightweight tag peeled:\n{out}");
    }
}
