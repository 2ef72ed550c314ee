//! Configuration read as git reads it: the system file (`GIT_CONFIG_SYSTEM`), the global file
//! ($HOME/.gitconfig and `GIT_CONFIG_GLOBAL`), the repository's config with `include.path`,
//! `GIT_CONFIG_PARAMETERS` (what `git -c` sets) and `GIT_CONFIG_COUNT`/`KEY_<n>`/`VALUE_<n>`,
//! `GIT_CONFIG_NOSYSTEM`; and a command-running key (`uploadpack.packObjectsHook`) that is
//! never honoured from the repository's own config. `uploadpack.hideRefs` serves as the probe:
//! the server's ls-remote output must equal git's, without the hidden refs.

mod common;

use common::*;
use std::path::Path;

/// ls-remote of `src` through both servers, each run by a wrapper with `env` and `setup`;
/// same output, `hidden` absent, `visible` present.
#[allow(clippy::too_many_arguments)]
fn listing_like_git(
    sb: &Sandbox,
    src: &Path,
    env: &[(&str, &str)],
    setup: &str,
    hidden: &[&str],
    visible: &[&str],
    client: Client,
    protocol: u8,
) {
    let mut outs = Vec::new();
    for server in BOTH {
        let who = server_name(server);
        let wrapper = sb.wrapper(server, env, setup);
        let out =
            sb.try_ls_remote_via(client, protocol, &wrapper, src, &[], &[]).assert_success().stdout_str();
        for h in hidden {
            assert!(!out.contains(h), "{who}: {h} listed:\n{out}");
        }
        for v in visible {
            assert!(out.contains(v), "{who}: {v} not listed:\n{out}");
        }
        outs.push(out);
    }
    assert_eq!(outs[1], outs[0], "ls-remote (left packserve, right git)");
}

/// The environment goes to the server through a wrapper: git clears GIT_CONFIG_PARAMETERS and
/// GIT_CONFIG_COUNT for the upload-pack it spawns for a local URL.
fn environment(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("config-env-{}", label(client, protocol)));
    let src = fixture("hidden");
    listing_like_git(
        &sb,
        &src,
        &[("GIT_CONFIG_PARAMETERS", "'uploadpack.hiderefs'='refs/hidden' 'transfer.hiderefs'='refs/pull'")],
        "",
        &["refs/hidden", "refs/pull"],
        &["refs/heads/main"],
        client,
        protocol,
    );
    listing_like_git(
        &sb,
        &src,
        &[
            ("GIT_CONFIG_COUNT", "2"),
            ("GIT_CONFIG_KEY_0", "uploadpack.hideRefs"),
            ("GIT_CONFIG_VALUE_0", "refs/heads/private"),
            ("GIT_CONFIG_KEY_1", "transfer.hideRefs"),
            ("GIT_CONFIG_VALUE_1", "refs/hidden"),
        ],
        "",
        &["refs/hidden", "refs/heads/private/"],
        &["refs/heads/main", "refs/pull/1/head", "refs/heads/private-y"],
        client,
        protocol,
    );
}

/// $HOME/.gitconfig, `GIT_CONFIG_GLOBAL`, and `GIT_CONFIG_SYSTEM` (with GIT_CONFIG_NOSYSTEM
/// unset; with it set the system file is ignored).
fn files(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("config-files-{}", label(client, protocol)));
    let src = fixture("hidden");
    let cfg = sb.join("other.gitconfig");
    std::fs::write(&cfg, "[uploadpack]\n\thideRefs = refs/pull\n[transfer]\n\thideRefs = refs/hidden\n")
        .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    // GIT_CONFIG_GLOBAL replaces $HOME/.gitconfig.
    listing_like_git(
        &sb,
        &src,
        &[("GIT_CONFIG_GLOBAL", cfg_s)],
        "",
        &["refs/hidden", "refs/pull"],
        &["refs/heads/main"],
        client,
        protocol,
    );
    // The system file.
    listing_like_git(
        &sb,
        &src,
        &[("GIT_CONFIG_SYSTEM", cfg_s)],
        "unset GIT_CONFIG_NOSYSTEM",
        &["refs/hidden", "refs/pull"],
        &["refs/heads/main"],
        client,
        protocol,
    );
    listing_like_git(
        &sb,
        &src,
        &[("GIT_CONFIG_SYSTEM", cfg_s)],
        "",
        &[],
        &["refs/hidden/secret", "refs/pull/1/head"],
        client,
        protocol,
    );
    // $HOME/.gitconfig.
    sb.git(sb.path(), &["config", "--global", "--add", "uploadpack.hideRefs", "refs/hidden"]);
    listing_like_git(&sb, &src, &[], "", &["refs/hidden"], &["refs/pull/1/head"], client, protocol);
}

/// `include.path` in the repository's config (relative to the config file).
fn include(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("config-include-{}", label(client, protocol)));
    let src = sb.fixture_copy("hidden");
    std::fs::write(
        src.join("extra.config"),
        "[uploadpack]\n\thideRefs = refs/hidden\n\thideRefs = refs/pull\n",
    )
    .unwrap();
    sb.config(&src, "include.path", "extra.config");
    listing_like_git(
        &sb,
        &src,
        &[],
        "",
        &["refs/hidden", "refs/pull"],
        &["refs/heads/main"],
        client,
        protocol,
    );
}

client_variants! {
    config_from_the_environment => environment;
    config_from_global_and_system_files => files;
    config_include_path => include;
}

/// `uploadpack.packObjectsHook` in the repository's own config is ignored (git honours it
/// only from protected configuration): the hook never runs and the clone works.
#[test]
fn pack_objects_hook_in_repository_config_never_runs() {
    let sb = Sandbox::new("config-hook");
    let src = sb.fixture_copy("linear");
    let marker = sb.join("HOOK-RAN");
    sb.config(
        &src,
        "uploadpack.packObjectsHook",
        &format!("touch {}; exit 1 #", sh_quote(marker.to_str().unwrap())),
    );
    for (client, protocol) in [(Client::New, 0), (Client::New, 2)] {
        let mut dests = Vec::new();
        for server in BOTH {
            let dest = sb.unique(&format!("clone-{}", server_name(server)));
            let t = sb.try_clone_via(client, protocol, &server.program(), &src, &dest, &[]);
            assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
            assert!(!marker.exists(), "{}: the repository's packObjectsHook ran", server_name(server));
            dests.push(dest);
        }
        sb.assert_same_repo(&dests[1], &dests[0], "clone with a repository-level hook");
    }
}

/// `git -c uploadpack.hideRefs` (no value) reaches upload-pack as `'uploadpack.hiderefs'=` in
/// `GIT_CONFIG_PARAMETERS` (git 2.31 and later): a key without a value, which hideRefs cannot
/// take. Both servers refuse with git's two lines and exit 128; an empty value (`=''`) is no
/// error for either.
#[test]
fn a_command_line_key_without_a_value_is_missing_its_value_like_git() {
    let sb = Sandbox::new("config-nonbool");
    let src = sb.fixture_copy("hidden");
    let ask = |server: Server, params: &str| {
        let mut cmd = sb.command(server.program());
        cmd.args(["--advertise-refs", src.to_str().unwrap()])
            .env("GIT_PROTOCOL", "version=2")
            .env("GIT_CONFIG_PARAMETERS", params);
        run(cmd, None)
    };
    for key in ["uploadpack.hiderefs", "transfer.hiderefs"] {
        let params = format!("'{key}'=");
        let git = ask(Server::Reference, &params);
        let ours = ask(Server::UnderTest, &params);
        assert_eq!(git.code(), Some(128), "{key}: git: {git}");
        assert_eq!(ours.code(), git.code(), "{key}: packserve: {ours}");
        assert_eq!(ours.stderr_str(), git.stderr_str(), "{key}: messages (left packserve, right git)");
        assert!(ours.stderr_str().contains(&format!("error: missing value for '{key}'")), "{ours}");
        let ours = ask(Server::UnderTest, &format!("'{key}'=''"));
        assert_eq!(ours.code(), Some(0), "{key} with an empty value: {ours}");
    }
}
