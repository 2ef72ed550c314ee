//! The command line: --version/--help, usage errors, "not a repository", and repository lookup
//! (`<dir>`, `<dir>.git`, `<dir>/.git`, `~/`, `--strict`) the way git-upload-pack does it.

mod common;

use common::pktline;
use common::*;

fn packserve(sb: &Sandbox, args: &[&str]) -> Output {
    sb.serve(Server::UnderTest, args, None, None)
}

#[test]
fn version_exits_zero() {
    let sb = Sandbox::new("cli-version");
    let out = packserve(&sb, &["--version"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout_str().contains("packserve"), "--version does not name packserve:\n{out}");
}

#[test]
fn help_exits_zero_and_lists_the_flags() {
    let sb = Sandbox::new("cli-help");
    let out = packserve(&sb, &["--help"]);
    assert_eq!(out.code(), Some(0), "{out}");
    let help = out.stdout_str();
    for flag in ["--strict", "--timeout", "--stateless-rpc", "--advertise-refs"] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
}

#[test]
fn help_and_help_of_each_front_end() {
    let sb = Sandbox::new("cli-help-mode");
    let out = packserve(&sb, &["help"]);
    assert_eq!(out.code(), Some(0), "{out}");
    assert!(out.stdout_str().contains("--stateless-rpc"), "`packserve help` is not the help:\n{out}");
    for (front_end, flag) in [("shell", "--root"), ("http-backend", "--log"), ("inetd", "--base-path")] {
        let out = packserve(&sb, &["help", front_end]);
        assert_eq!(out.code(), Some(0), "{front_end}: {out}");
        assert!(out.stdout_str().contains(flag), "`packserve help {front_end}` lacks {flag}:\n{out}");
    }
    let out = packserve(&sb, &["help", "nothing"]);
    assert_eq!(out.code(), Some(129), "{out}");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let sb = Sandbox::new("cli-unknown");
    let repo = fixture("linear");
    for server in [Server::Reference, Server::UnderTest] {
        let out = sb.serve(server, &["--no-such-flag", repo.to_str().unwrap()], None, None);
        assert_eq!(out.code(), Some(129), "{server:?}: {out}");
        assert!(out.stderr_str().to_lowercase().contains("usage"), "{server:?}: no usage on stderr:\n{out}");
        assert!(out.stdout.is_empty(), "{server:?}: stdout must stay empty:\n{out}");
    }
}

#[test]
fn missing_directory_argument_is_a_usage_error() {
    let sb = Sandbox::new("cli-no-dir");
    for server in [Server::Reference, Server::UnderTest] {
        let out = sb.serve(server, &[], None, None);
        assert_eq!(out.code(), Some(129), "{server:?}: {out}");
        assert!(out.stderr_str().to_lowercase().contains("usage"), "{server:?}: no usage on stderr:\n{out}");
        assert!(out.stdout.is_empty(), "{server:?}: stdout must stay empty:\n{out}");
    }
}

#[track_caller]
fn assert_not_a_repository(out: &Output, dir: &str, who: &str) {
    assert_eq!(out.code(), Some(128), "{who}: exit code for {dir}:\n{out}");
    assert_eq!(
        out.stderr_str(),
        format!("fatal: '{dir}' does not appear to be a git repository\n"),
        "{who}: stderr for {dir}"
    );
    assert!(out.stdout.is_empty(), "{who}: stdout must stay empty for {dir}:\n{out}");
}

#[test]
fn not_a_repository() {
    let sb = Sandbox::new("cli-not-a-repo");
    std::fs::create_dir(sb.join("plain")).unwrap();
    let missing = sb.join("does-not-exist");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![missing.to_str().unwrap()], missing.to_str().unwrap()),
        (vec!["plain"], "plain"),
        (vec!["--advertise-refs", "plain"], "plain"),
        (vec!["--stateless-rpc", "plain"], "plain"),
        (vec!["--strict", "plain"], "plain"),
        (vec!["--advertise-refs", "~/nothing-here"], "~/nothing-here"),
    ];
    for (args, dir) in cases {
        let git = sb.serve(Server::Reference, &args, None, None);
        assert_not_a_repository(&git, dir, "git-upload-pack (sanity check of the test)");
        let ours = sb.serve(Server::UnderTest, &args, None, None);
        assert_not_a_repository(&ours, dir, "packserve");
    }
}

#[test]
fn not_a_repository_in_v2_too() {
    let sb = Sandbox::new("cli-not-a-repo-v2");
    let out = sb.serve(Server::UnderTest, &["--advertise-refs", "nowhere"], Some("version=2"), None);
    assert_not_a_repository(&out, "nowhere", "packserve");
}

/// Builds `bare.git` (bare), `work` (non-bare, with `.git`) and `~/home-repo.git` in the sandbox.
fn lookup_sandbox() -> Sandbox {
    let sb = Sandbox::new("cli-lookup");
    sb.sh(
        sb.path(),
        r#"
        git init -q work
        (cd work && commit a.txt a "first" && git tag t1)
        git clone -q --bare work bare.git
        git clone -q --bare work "$HOME/home-repo.git"
        git -C "$HOME/home-repo.git" branch only-in-home
        "#,
    );
    sb
}

/// Runs `--advertise-refs` with `args` through both servers; they must agree on success, and
/// on the refs when successful; `expect_ok` pins the expected outcome independently of git.
/// On failure packserve must print the documented "does not appear to be a git repository"
/// (git 2.47 itself says "detected dubious ownership" for some --strict paths that do not
/// exist; only its exit status is compared).
fn lookup_case(sb: &Sandbox, args: &[&str], expect_ok: bool) -> Result<(), String> {
    let mut full = vec!["--advertise-refs"];
    full.extend_from_slice(args);
    let git = sb.serve(Server::Reference, &full, None, None);
    let ours = sb.serve(Server::UnderTest, &full, None, None);
    if git.status.success() != expect_ok {
        return Err(format!("test expectation wrong for {args:?}: git-upload-pack says\n{git}"));
    }
    if ours.status.success() != expect_ok {
        return Err(format!(
            "{args:?}: expected {}, packserve gave\n{ours}",
            if expect_ok { "success" } else { "failure" }
        ));
    }
    if expect_ok {
        let a = pktline::parse_v0_advertisement(&ours.stdout);
        let b = pktline::parse_v0_advertisement(&git.stdout);
        if a.ref_lines != b.ref_lines {
            return Err(format!(
                "{args:?}: refs differ\n--- packserve ---\n{}\n--- git ---\n{}",
                a.ref_lines.join("\n"),
                b.ref_lines.join("\n")
            ));
        }
    } else {
        let dir = args.last().unwrap();
        let want = format!("fatal: '{dir}' does not appear to be a git repository\n");
        if ours.code() != Some(128) || ours.stderr_str() != want || !ours.stdout.is_empty() {
            return Err(format!("{args:?}: expected exit 128 and `{}`, got\n{ours}", want.trim_end()));
        }
    }
    Ok(())
}

fn lookup_cases(cases: &[(&[&str], bool)]) {
    let sb = lookup_sandbox();
    let errors: Vec<String> =
        cases.iter().filter_map(|(args, ok)| lookup_case(&sb, args, *ok).err()).collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[test]
fn lookup_tries_git_suffixes() {
    lookup_cases(&[
        (&["bare.git"], true),
        (&["bare"], true),
        (&["work"], true),
        (&["work/.git"], true),
        (&["./work"], true),
        (&["bare.git/"], true),
        (&["--no-strict", "bare"], true),
        (&["--timeout=5", "bare"], true),
    ]);
}

#[test]
fn lookup_with_absolute_paths() {
    let sb = lookup_sandbox();
    let bare = sb.join("bare");
    let work = sb.join("work");
    let errors: Vec<String> = [(&bare, true), (&work, true)]
        .iter()
        .filter_map(|(p, ok)| lookup_case(&sb, &[p.to_str().unwrap()], *ok).err())
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}

#[test]
fn strict_refuses_suffixed_forms() {
    lookup_cases(&[
        (&["--strict", "bare.git"], true),
        (&["--strict", "work/.git"], true),
        (&["--strict", "bare"], false),
        (&["--strict", "work"], false),
    ]);
}

#[test]
fn lookup_expands_home() {
    lookup_cases(&[
        (&["~/home-repo.git"], true),
        (&["~/home-repo"], true),
        // like git's enter_repo, --strict takes the path literally: no ~ expansion
        (&["--strict", "~/home-repo.git"], false),
        (&["~/missing"], false),
    ]);
}

/// A served repository is found the same way by a real client (clone by the short name).
#[test]
fn clone_by_short_name_of_a_bare_repository() {
    let sb = lookup_sandbox();
    let src = sb.join("bare"); // bare.git on disk
    let dest = sb.join("clone");
    sb.clone(Client::New, 0, Server::UnderTest, &src, &dest, &[]);
    sb.fsck(&dest);
    assert_eq!(sb.rev_parse(&dest, "refs/remotes/origin/main"), sb.rev_parse(&sb.join("bare.git"), "main"));
}

/// `--timeout=1`: a client that connects and then says nothing is dropped (git dies by
/// SIGALRM after the advertisement; any unsuccessful exit will do, within a few seconds).
#[test]
fn timeout_drops_a_silent_client() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let sb = Sandbox::new("cli-timeout");
    let repo = fixture("linear");
    for server in [Server::Reference, Server::UnderTest] {
        let mut cmd = sb.command(server.program());
        cmd.args(["--timeout=1", repo.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take(); // held open: the client is silent, not gone
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{server:?}: still waiting 10 s after --timeout=1");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(stdin);
        assert!(!status.success(), "{server:?}: a timed-out session must not exit 0");
    }
}
