//! The operator log: installed as git-upload-pack (the plain form), packserve logs to the file
//! `PACKSERVE_LOG` names; each line carries the session id (the client's `session-id` when it
//! sends one), the client's agent and the pid; `json` is the other form; a log that cannot be
//! written is said on stderr once and the request is still served.

mod common;

use common::pktline;
use common::*;

/// A v2 ls-refs request with the client's agent and session id.
fn ls_refs_with_sid(sid: &str) -> Vec<u8> {
    pktline::request(&[
        "command=ls-refs",
        "agent=log-tests/1.0",
        &format!("session-id={sid}"),
        "object-format=sha1",
        "0001",
        "ref-prefix refs/heads/",
        "0000",
    ])
}

/// The plain form run through a wrapper that sets `env`.
fn plain(sb: &Sandbox, env: &[(&str, &str)], repo: &std::path::Path, stdin: &[u8]) -> Output {
    let wrapper = sb.wrapper(Server::UnderTest, env, "");
    let mut cmd = sb.command(&wrapper);
    cmd.args(["--stateless-rpc", repo.to_str().unwrap()]).env("GIT_PROTOCOL", "version=2");
    run(cmd, Some(stdin))
}

/// A sandbox with a copy of the `tags` fixture that accepts session ids, and a log path in it.
fn sandbox(label: &str) -> (Sandbox, std::path::PathBuf, std::path::PathBuf) {
    let sb = Sandbox::new(label);
    let repo = sb.fixture_copy("tags");
    sb.git(&repo, &["config", "transfer.advertiseSID", "true"]);
    let log = sb.join("packserve.log");
    (sb, repo, log)
}

/// `packserve inetd` with `args` (plus `--base-path`) answering a request for `repo`.
fn inetd(sb: &Sandbox, repo: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = sb.command(Server::UnderTest.program());
    cmd.arg("inetd").args(args).arg("--base-path").arg(repo.parent().unwrap());
    cmd.envs(env.iter().copied());
    let mut stdin = pktline::data(format!(
        "git-upload-pack /{}\0host=localhost\0",
        repo.file_name().unwrap().to_str().unwrap()
    ));
    stdin.extend_from_slice(b"0000");
    run(cmd, Some(&stdin))
}

#[test]
fn plain_form_logs_where_packserve_log_says() {
    let (sb, repo, log) = sandbox("log-plain");
    let env = [("PACKSERVE_LOG", log.to_str().unwrap()), ("SSH_CONNECTION", "10.1.2.3 5555 10.0.0.1 22")];
    let out = plain(&sb, &env, &repo, &ls_refs_with_sid("client-sid-1")).assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    let text = std::fs::read_to_string(&log).expect("no log written");
    let line = text.lines().next().unwrap();
    for want in [
        "frontend=upload-pack",
        "addr=10.1.2.3",
        "proto=2",
        "commands=ls-refs",
        "outcome=ok",
        "sid=client-sid-1",
        "agent=log-tests/1.0",
    ] {
        assert!(line.contains(want), "{want} missing: {line}");
    }
    assert!(
        line.split(' ').any(|f| f.strip_prefix("pid=").is_some_and(|p| p.parse::<u32>().is_ok())),
        "{line}"
    );

    // Without a session id from the client, the process's own (git's form) is logged.
    let bare = pktline::request(&["command=ls-refs", "object-format=sha1", "0001", "0000"]);
    plain(&sb, &env, &repo, &bare).assert_success();
    let text = std::fs::read_to_string(&log).unwrap();
    let second = text.lines().nth(1).expect("a second line");
    let sid = second.split(' ').find_map(|f| f.strip_prefix("sid=")).unwrap();
    assert!(sid.contains("-P") && sid.ends_with(char::is_alphanumeric) && sid.len() > 30, "{second}");
    assert!(second.contains("agent=-"), "{second}");

    // A repository that is not there: refused, logged.
    let missing = sb.join("missing.git");
    let out = plain(&sb, &env, &missing, &bare);
    assert_eq!(out.code(), Some(128), "{out}");
    let text = std::fs::read_to_string(&log).unwrap();
    let third = text.lines().nth(2).expect("a third line");
    assert!(third.contains("outcome=refused reason=") && third.contains("does not appear"), "{third}");

    // Without PACKSERVE_LOG nothing is written anywhere.
    let out = plain(&sb, &[], &repo, &bare).assert_success();
    assert!(out.stderr.is_empty(), "{out}");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 3);
}

#[test]
fn json_lines() {
    let (sb, repo, log) = sandbox("log-json");
    let env = [("PACKSERVE_LOG", log.to_str().unwrap()), ("PACKSERVE_LOG_FORMAT", "json")];
    plain(&sb, &env, &repo, &ls_refs_with_sid("s\"2")).assert_success();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().next().unwrap();
    assert!(line.starts_with("{\"time\":\"") && line.ends_with('}'), "{line}");
    for want in [
        "\"frontend\":\"upload-pack\"",
        "\"proto\":2",
        "\"commands\":[\"ls-refs\"]",
        "\"outcome\":\"ok\"",
        "\"sid\":\"s\\\"2\"",
        "\"agent\":\"log-tests/1.0\"",
        "\"addr\":null",
    ] {
        assert!(line.contains(want), "{want} missing: {line}");
    }
    // python's json module agrees that it is JSON.
    let out = sb.sh(
        sb.path(),
        &format!(
            "python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d[\"sid\"], d[\"wants\"])' {}",
            log.display()
        ),
    );
    assert_eq!(out.trim(), "s\"2 0");
}

#[test]
fn a_log_that_cannot_be_written_is_said_once_and_serving_goes_on() {
    let sb = Sandbox::new("log-unwritable");
    let repo = sb.fixture_copy("tags");
    let bare = pktline::request(&["command=ls-refs", "object-format=sha1", "0001", "0000"]);
    let nowhere = sb.join("no-such-dir/upload-pack.log");
    let out = plain(&sb, &[("PACKSERVE_LOG", nowhere.to_str().unwrap())], &repo, &bare).assert_success();
    let err = out.stderr_str();
    assert_eq!(err.matches("cannot write the log").count(), 1, "{out}");
    assert!(err.contains(nowhere.to_str().unwrap()) && err.contains("No such file or directory"), "{out}");
    assert!(!out.stdout.is_empty(), "nothing served:\n{out}");

    // The front-ends' --log too.
    let out = inetd(&sb, &repo, &["--export-all", "--log", nowhere.to_str().unwrap()], &[]);
    assert_eq!(out.stderr_str().matches("cannot write the log").count(), 1, "{out}");
}

#[test]
fn front_end_json_log() {
    let (sb, repo, log) = sandbox("log-inetd-json");
    let args = ["--export-all", "--log-format", "json", "--log", log.to_str().unwrap()];
    let out = inetd(&sb, &repo, &args, &[("REMOTE_ADDR", "192.0.2.9")]);
    assert!(out.status.success(), "{out}");
    let text = std::fs::read_to_string(&log).expect("no log");
    let line = text.lines().next().unwrap();
    assert!(line.contains("\"frontend\":\"git\"") && line.contains("\"addr\":\"192.0.2.9\""), "{line}");
    assert!(line.contains("\"outcome\":\"ok\""), "{line}");
    let mut cmd = sb.command(Server::UnderTest.program());
    cmd.args(["inetd", "--log-format", "xml"]);
    let out = run(cmd, None);
    assert_eq!(out.code(), Some(129), "{out}");
}
