//! git://: `packserve inetd` behind `socat TCP-LISTEN,fork EXEC:...` (what inetd, xinetd and
//! systemd's Accept=yes sockets do: one process per connection on stdin/stdout). Clients:
//! git 2.47 and 2.39 (v0 and v2), pygit2 (libgit2), dulwich, JGit; and git-daemon's ERR
//! refusals.

mod common;

use common::pktline;
use common::servers::*;
use common::*;

fn setup(label: &str, extra: &str) -> (Sandbox, Served, GitDaemon) {
    let sb = Sandbox::new(label);
    let served = Served::new(&sb);
    let daemon = GitDaemon::start(&sb, &served, extra);
    (sb, served, daemon)
}

mod git {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, d) = setup("git-daemon", "");
        git_clone_ls_remote_fetch(&sb, &d.remote(), &served, client, protocol);
        let want = format!("frontend=git repo=/main.git user=- addr=127.0.0.1 proto={protocol}");
        log_when(&d.log, |log| {
            log.lines().filter(|l| l.contains(&want) && l.contains("outcome=ok")).count() >= 3
        });
    }
    client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
}

mod shallow {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, d) = setup("git-shallow", "");
        git_shallow_clone(&sb, &d.remote(), &served, client, protocol);
    }
    client_tests!(go; git247_v0(New, 0), git247_v2(New, 2), git239_v0(Old, 0), git239_v2(Old, 2));
}

mod partial {
    use super::*;
    fn go(client: Client, protocol: u8) {
        let (sb, served, d) = setup("git-partial", "");
        git_partial_clone(&sb, &d.remote(), &served, client, protocol);
    }
    client_tests!(go; git247_v2(New, 2), git239_v0(Old, 0));
}

#[test]
fn pygit2() {
    let (sb, served, d) = setup("git-pygit2", "");
    python_clone_ls_remote_fetch(&sb, &d.remote(), &served, "pygit2");
}

#[test]
fn dulwich() {
    let (sb, served, d) = setup("git-dulwich", "");
    python_clone_ls_remote_fetch(&sb, &d.remote(), &served, "dulwich");
}

#[test]
fn dulwich_shallow() {
    let (sb, served, d) = setup("git-dulwich-shallow", "");
    python_shallow_clone(&sb, &d.remote(), &served, "dulwich");
}

#[test]
fn pygit2_shallow() {
    let (sb, served, d) = setup("git-pygit2-shallow", "");
    python_shallow_clone(&sb, &d.remote(), &served, "pygit2");
}

#[test]
fn jgit() {
    let (sb, served, d) = setup("git-jgit", "");
    jgit_clone_ls_remote_fetch(&sb, &d.remote(), &served, None);
}

#[test]
fn push_is_refused() {
    let (sb, served, d) = setup("git-push", "");
    for client in Client::ALL {
        git_push_refused(&sb, &d.remote(), &served, client);
    }
    python_push_refused(&sb, &d.remote(), &served, "dulwich");
    jgit_push_refused(&sb, &d.remote(), &served, None);
}

fn clone_fails(sb: &Sandbox, remote: &Remote, path: &str, text: &str) {
    let out = remote.git(
        sb,
        Client::New,
        2,
        sb.path(),
        "clone",
        &[&remote.url(path), sb.unique("x").to_str().unwrap()],
    );
    assert!(!out.status.success(), "{path}: {out}");
    assert!(out.stderr_str().contains(text), "{path}: expected '{text}':\n{out}");
}

#[test]
fn refusals_are_err_lines() {
    // Without --informative-errors the reason stays on the server (git-daemon's default).
    let (sb, _served, d) = setup("git-refusals", "");
    let remote = d.remote();
    clone_fails(
        &sb,
        &remote,
        "private.git",
        "remote error: access denied or repository not exported: /private.git",
    );
    clone_fails(
        &sb,
        &remote,
        "nope.git",
        "remote error: access denied or repository not exported: /nope.git",
    );
    clone_fails(&sb, &remote, "../outside.git", "remote error: access denied or repository not exported");
    log_when(&d.log, |log| {
        log.contains("reason=\"'/private.git': repository not exported\"") && log.contains("aliased")
    });

    let (sb, _served, d) = setup("git-refusals-informative", "--informative-errors /nowhere");
    let remote = d.remote();
    clone_fails(&sb, &remote, "main.git", "remote error: no such repository: /main.git");
    let (sb, _served, d) = setup("git-refusals-export-all", "--informative-errors --export-all");
    let remote = d.remote();
    let out = remote.git(&sb, Client::New, 0, sb.path(), "ls-remote", &[&remote.url("private.git")]);
    assert!(out.status.success(), "--export-all serves private.git: {out}");
    clone_fails(&sb, &remote, "nope.git", "remote error: no such repository: /nope.git");
}

#[test]
fn unknown_service_gets_an_err_line() {
    let (sb, _served, d) = setup("git-unknown", "--informative-errors");
    for (line, text) in [
        (
            "git-upload-archive /main.git\0host=127.0.0.1\0",
            "ERR service not enabled (packserve serves fetches only): /main.git",
        ),
        ("hello world\0", "ERR protocol error"),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
        use std::io::{Read, Write};
        s.write_all(format!("{:04x}{line}", line.len() + 4).as_bytes()).unwrap();
        // No half-close here: socat gives the other direction only 0.5s after one side ends,
        // and git clients keep their side open until they have read the answer.
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        assert!(resp.contains(text), "{line:?}: {resp:?}");
    }
    let _ = sb;
}

/// The shallow and partial scenarios above, run against git's own `git daemon --inetd`
/// behind the same socat: they assert what git gives, so they are right to hold packserve
/// to once it serves shallow and filter requests.
mod scenarios_hold_for_git_daemon {
    use super::*;
    fn setup_git(label: &str) -> (Sandbox, Served, GitDaemon) {
        let sb = Sandbox::new(label);
        let served = Served::new(&sb);
        let d = GitDaemon::start_git(&sb, &served);
        (sb, served, d)
    }
    fn shallow(client: Client, protocol: u8) {
        let (sb, served, d) = setup_git("git-ref-shallow");
        git_shallow_clone(&sb, &d.remote(), &served, client, protocol);
    }
    fn partial(client: Client, protocol: u8) {
        let (sb, served, d) = setup_git("git-ref-partial");
        git_partial_clone(&sb, &d.remote(), &served, client, protocol);
    }
    client_tests!(shallow; shallow_git247_v0(New, 0), shallow_git247_v2(New, 2), shallow_git239_v0(Old, 0), shallow_git239_v2(Old, 2));
    client_tests!(partial; partial_git247_v2(New, 2), partial_git239_v0(Old, 0));
    #[test]
    fn dulwich_shallow() {
        let (sb, served, d) = setup_git("git-ref-dulwich-shallow");
        python_shallow_clone(&sb, &d.remote(), &served, "dulwich");
    }
    #[test]
    fn pygit2_shallow() {
        let (sb, served, d) = setup_git("git-ref-pygit2-shallow");
        python_shallow_clone(&sb, &d.remote(), &served, "pygit2");
    }
}

/// contrib/systemd as written: the service's `ExecStart`, with its `Environment=` and as its
/// `User=nobody` (through setpriv), behind socat as the socket's `Accept=yes` runs it — systemd
/// itself cannot run in the test environment. nobody does not own the root-owned
/// repositories: with the unit's `safe.directory` they are served; without that line every
/// clone is refused, and the log says why.
#[test]
fn systemd_unit_as_written() {
    let sb = Sandbox::new("git-systemd-unit");
    let served = Served::new(&sb);
    let unit = SystemdUnit::read(&served.root);
    assert_eq!(unit.listen, ("9418".to_owned(), "yes".to_owned()));
    assert_eq!(unit.user, "nobody");
    let d = GitDaemon::start_unit_as_written(&sb, &served, true);
    git_clone_ls_remote_fetch(&sb, &d.remote(), &served, Client::New, 2);
    log_when(&d.log, |log| log.lines().filter(|l| l.contains("outcome=ok")).count() >= 3);

    let without = GitDaemon::start_unit_as_written(&sb, &served, false);
    clone_fails(&sb, &without.remote(), "main.git", "access denied or repository not exported");
    log_when(&without.log, |log| log.contains("dubious ownership"));

    // SuccessExitStatus= names the statuses packserve ends normal refusals and hang-ups with.
    let statuses: Vec<&str> = unit.success_exit_status.split_whitespace().collect();
    assert_eq!(statuses, ["128", "141"]);
    let mut cmd = sb.command("sh");
    cmd.arg("-c").arg(format!("exec env {} {}", unit.environment, unit.exec_start));
    let request = pktline::data("git-upload-pack /private.git\0host=localhost\0");
    let out = run(cmd, Some(&request));
    assert_eq!(out.code(), Some(128), "a refusal's status: {out}");
    assert!(out.stdout_str().contains("ERR access denied"), "{out}");
}

/// contrib/xinetd/git as written: `server`, `server_args` and `env`, as its `user` (nobody),
/// one process per connection behind socat (xinetd's `wait = no`).
#[test]
fn xinetd_entry_as_written() {
    let sb = Sandbox::new("git-xinetd");
    let served = Served::new(&sb);
    let d = GitDaemon::start_xinetd_as_written(&sb, &served);
    git_clone_ls_remote_fetch(&sb, &d.remote(), &served, Client::New, 0);
    clone_fails(&sb, &d.remote(), "private.git", "access denied or repository not exported");
    log_when(&d.log, |log| {
        log.lines().filter(|l| l.contains("outcome=ok")).count() >= 3 && log.contains("not exported")
    });
}
