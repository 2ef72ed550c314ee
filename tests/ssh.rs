//! ssh: Debian's OpenSSH sshd, started by the test with its own config, host keys and
//! `authorized_keys`: keys whose forced command is `packserve shell --root <srv>`, and a key
//! without one, where the client names packserve with `--upload-pack`. Clients: git 2.47 and
//! 2.39 (v0 and v2), pygit2 (libgit2), dulwich, JGit.

mod common;

use common::servers::*;
use common::*;

fn setup(label: &str) -> (Sandbox, Served, SshServer) {
    let sb = Sandbox::new(label);
    let served = Served::new(&sb);
    let ssh = SshServer::start(&sb, &served);
    (sb, served, ssh)
}

macro_rules! git_matrix {
    ($name:ident, $key:expr) => {
        mod $name {
            use super::*;
            fn go(client: Client, protocol: u8) {
                let (sb, served, ssh) = setup(concat!("ssh-", stringify!($name)));
                git_clone_ls_remote_fetch(&sb, &ssh.remote($key), &served, client, protocol);
            }
            client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
        }
    };
}

git_matrix!(forced_command, Key::Forced);
git_matrix!(upload_pack_option, Key::Plain);

mod shallow {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, ssh) = setup("ssh-shallow");
        git_shallow_clone(&sb, &ssh.remote(Key::Forced), &served, client, protocol);
    }
    client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
}

mod partial {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, ssh) = setup("ssh-partial");
        git_partial_clone(&sb, &ssh.remote(Key::Forced), &served, client, protocol);
    }
    client_tests!(go; git247_v2(New, 2), git239_v0(Old, 0));
}

#[test]
fn pygit2() {
    let (sb, served, ssh) = setup("ssh-pygit2");
    python_clone_ls_remote_fetch(&sb, &ssh.remote(Key::Forced), &served, "pygit2");
}

#[test]
fn dulwich() {
    let (sb, served, ssh) = setup("ssh-dulwich");
    python_clone_ls_remote_fetch(&sb, &ssh.remote(Key::Forced), &served, "dulwich");
}

#[test]
fn dulwich_shallow() {
    let (sb, served, ssh) = setup("ssh-dulwich-shallow");
    python_shallow_clone(&sb, &ssh.remote(Key::Forced), &served, "dulwich");
}

#[test]
fn jgit() {
    let (sb, served, ssh) = setup("ssh-jgit");
    let home = ssh.jgit_home(&sb);
    jgit_clone_ls_remote_fetch(&sb, &ssh.remote(Key::Rsa), &served, Some(&home));
}

#[test]
fn push_is_refused() {
    let (sb, served, ssh) = setup("ssh-push");
    for client in Client::ALL {
        git_push_refused(&sb, &ssh.remote(Key::Forced), &served, client);
    }
    python_push_refused(&sb, &ssh.remote(Key::Forced), &served, "dulwich");
    python_push_refused(&sb, &ssh.remote(Key::Forced), &served, "pygit2");
    let home = ssh.jgit_home(&sb);
    jgit_push_refused(&sb, &ssh.remote(Key::Rsa), &served, Some(&home));
    log_when(&ssh.log, |log| log.contains("outcome=refused reason=\"packserve serves fetches only"));
}

/// Runs `ssh <key> <command>` and returns the output.
fn ssh_run(sb: &Sandbox, ssh: &SshServer, key: Key, command: Option<&str>) -> Output {
    let mut cmd = sb.command("sh");
    let remote = format!("{}@127.0.0.1", ssh.user);
    let full = format!(
        "{} -p {} {remote} {}",
        ssh.ssh_command(key),
        ssh.port,
        command.map(|c| format!("\"{}\"", c.replace('"', "\\\""))).unwrap_or_default()
    );
    cmd.arg("-c").arg(full);
    run(cmd, None)
}

#[test]
fn refusals() {
    let (sb, _served, ssh) = setup("ssh-refusals");
    let cases: &[(&str, &str)] = &[
        ("git-receive-pack '/main.git'", "packserve serves fetches only: 'git-receive-pack'"),
        ("git-upload-archive '/main.git'", "packserve serves fetches only: 'git-upload-archive'"),
        ("ls -la /", "unrecognized command 'ls -la /'"),
        ("git-upload-pack '../outside.git'", "'../outside.git': path is outside the served root"),
        ("git-upload-pack '/escape.git'", "'/escape.git': path is outside the served root"),
        ("git-upload-pack '/nope.git'", "'/nope.git' does not appear to be a git repository"),
        ("git-upload-pack /main.git", "bad argument"),
    ];
    for (command, message) in cases {
        let out = ssh_run(&sb, &ssh, Key::Forced, Some(command));
        assert_eq!(out.code(), Some(128), "{command}: {out}");
        let err = out.stderr_str();
        assert!(err.contains(message), "{command}: expected '{message}' on stderr:\n{out}");
        assert_eq!(err.trim().lines().count(), 1, "{command}: one line on stderr:\n{out}");
        assert!(out.stdout.is_empty(), "{command}: stdout must stay empty:\n{out}");
    }
    // An interactive login is told what the account is for.
    let out = ssh_run(&sb, &ssh, Key::Forced, None);
    assert_ne!(out.code(), Some(0), "{out}");
    assert!(out.stderr_str().contains("serves git fetches only"), "{out}");

    // Through git, a path outside the root fails the clone with the shell's message.
    let remote = ssh.remote(Key::Forced);
    let out = remote.git(&sb, Client::New, 2, sb.path(), "clone", &[&remote.url("../outside.git"), "x"]);
    assert!(!out.status.success() && out.stderr_str().contains("outside the served root"), "{out}");
    log_when(&ssh.log, |log| log.contains("outcome=refused reason=\"unrecognized command"));
}

#[test]
fn allow_globs_limit_a_key() {
    let (sb, served, ssh) = setup("ssh-allow");
    let remote = ssh.remote(Key::Limited);
    let out = remote.git(&sb, Client::New, 2, sb.path(), "clone", &[&remote.url("team/tool.git"), "tool"]);
    assert!(out.status.success(), "team/tool.git is allowed:\n{out}");
    sb.fsck(&sb.join("tool"));
    let out = remote.git(&sb, Client::New, 2, sb.path(), "clone", &[&remote.url("main.git"), "main"]);
    assert!(
        !out.status.success() && out.stderr_str().contains("'/main.git': access denied"),
        "main.git is not allowed:\n{out}"
    );
    let _ = served;
}

#[test]
fn paths_forms_and_protocol_through_accept_env() {
    let (sb, served, ssh) = setup("ssh-paths");
    let remote = ssh.remote(Key::Forced);
    let server = served.repo("main.git");
    // A ~/ path, <dir> without .git, and the full path of the repository under the root.
    for url in [
        format!("ssh://{}@127.0.0.1:{}/~/main.git", ssh.user, ssh.port),
        format!("{}/main", remote.base),
        format!("ssh://{}@127.0.0.1:{}{}", ssh.user, ssh.port, served.root.join("main.git").display()),
    ] {
        let url = &url;
        let out = remote.git(&sb, Client::New, 2, sb.path(), "ls-remote", &[url]);
        assert!(out.status.success(), "{url}:\n{out}");
        assert_eq!(parse_ls_remote(&out.stdout_str()), server_ls_remote(&sb, &server), "{url}");
    }
    // GIT_PROTOCOL came through AcceptEnv: the log says which version was spoken.
    log_when(&ssh.log, |log| {
        log.lines().filter(|l| l.contains("proto=2") && l.contains("ls-refs")).count() == 3
    });
    let out = remote.git(&sb, Client::New, 0, sb.path(), "ls-remote", &[&remote.url("main.git")]);
    assert!(out.status.success(), "{out}");
    log_when(&ssh.log, |log| {
        log.lines().any(|l| {
            l.contains("proto=0")
                && l.contains("user=forced-key")
                && l.contains("addr=127.0.0.1")
                && l.contains("commands=upload-pack")
                && l.contains("outcome=ok")
        })
    });
}

/// The shallow and partial scenarios above, run against git's own git-upload-pack through
/// the same sshd (the key without a forced command): they assert what git gives, so they
/// are right to hold packserve to once it serves shallow and filter requests.
mod scenarios_hold_for_git_upload_pack {
    use super::*;
    fn remote(ssh: &SshServer) -> Remote {
        let mut r = ssh.remote(Key::Plain);
        r.upload_pack = Some(reference_upload_pack().display().to_string());
        r
    }
    fn shallow(client: Client, protocol: u8) {
        let (sb, served, ssh) = setup("ssh-ref-shallow");
        git_shallow_clone(&sb, &remote(&ssh), &served, client, protocol);
    }
    fn partial(client: Client, protocol: u8) {
        let (sb, served, ssh) = setup("ssh-ref-partial");
        git_partial_clone(&sb, &remote(&ssh), &served, client, protocol);
    }
    client_tests!(shallow; shallow_git247_v0(New, 0), shallow_git247_v2(New, 2), shallow_git239_v0(Old, 0), shallow_git239_v2(Old, 2));
    client_tests!(partial; partial_git247_v2(New, 2), partial_git239_v0(Old, 0));
}
