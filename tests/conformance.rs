//! Where packserve must answer exactly as git's own upload-pack (2.47) does, found by comparing
//! the two from outside (issue 11): naming the repository from any working directory, broken
//! refs, every point at which a stateless or stateful request may end, bytes after a complete
//! v2 request, `lsrefs.unborn`, `GIT_TRACE_BARE` and `GIT_USER_AGENT`, malformed configuration
//! values from every source, and more than 65536 `ref-prefix` lines.
//!
//! Every test runs git's upload-pack and the server under test on the same input, in the same
//! directory, with the same environment (`GIT_USER_AGENT` fixed, so that advertisements compare
//! byte for byte) and compares exit status, stdout and stderr. Where packs are sent, their
//! bytes (band 1) are shown as `<pack>` and progress (band 2) is dropped: the two servers
//! build different but equivalent packs. The few deliberate differences are asserted as such,
//! with the reason.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::{Path, PathBuf};

/// The agent both servers announce in these tests (`GIT_USER_AGENT`).
const AGENT: &str = "conformance/1";

/// The exit status as a shell reports it (128 + n for signal n).
fn code(o: &Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    o.status.code().unwrap_or_else(|| 128 + o.status.signal().unwrap_or(0))
}

/// Runs `server` as upload-pack in `cwd` with `args`, `env` (on top of the sandbox's, with
/// `GIT_USER_AGENT` fixed) and `stdin`.
fn upload_pack(
    sb: &Sandbox,
    server: Server,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut cmd = sb.command(server.program());
    cmd.current_dir(cwd).args(args).env("GIT_USER_AGENT", AGENT);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, Some(stdin))
}

/// git's upload-pack and the server under test on the same input: `[git, ours]`.
fn both(sb: &Sandbox, cwd: &Path, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> [Output; 2] {
    BOTH.map(|server| upload_pack(sb, server, cwd, args, env, stdin))
}

/// stdout as comparable text: pkt-lines one per line (`0000`, `0001`, `0002` for the special
/// ones, `\0` for NUL), each run of band-1 packets as `<pack>`, band 2 dropped, band 3 shown;
/// bytes that are not pkt-lines as `<n raw bytes>`.
fn shown(stdout: &[u8]) -> String {
    let (pkts, used) = pktline::parse_prefix(stdout);
    let mut out = String::new();
    let mut in_pack = false;
    for p in &pkts {
        match p {
            Pkt::Data(d) if d.first() == Some(&1) && (in_pack || d[1..].starts_with(b"PACK")) => {
                if !in_pack {
                    out.push_str("<pack>\n");
                }
                in_pack = true;
            }
            Pkt::Data(d) if d.first() == Some(&2) && in_pack => {}
            Pkt::Data(d) if d.first() == Some(&3) => {
                out.push_str(&format!("<band 3> {}\n", String::from_utf8_lossy(&d[1..])))
            }
            Pkt::Data(d) => {
                let text = String::from_utf8_lossy(d).replace('\0', "\\0").replace('\n', "⏎");
                // Session ids differ by process; only their place is compared.
                let text = match text.find("session-id=") {
                    Some(i) => {
                        let end = text[i..].find([' ', '⏎']).map_or(text.len(), |e| i + e);
                        format!("{}session-id=<id>{}", &text[..i], &text[end..])
                    }
                    None => text,
                };
                out.push_str(&text);
                out.push('\n');
            }
            Pkt::Flush => out.push_str("0000\n"),
            Pkt::Delim => out.push_str("0001\n"),
            Pkt::ResponseEnd => out.push_str("0002\n"),
        }
    }
    if used < stdout.len() {
        out.push_str(&format!("<{} raw bytes>\n", stdout.len() - used));
    }
    out
}

/// Asserts that the server under test answered exactly as git: exit status, stdout (packs
/// shown as `<pack>`), stderr.
#[track_caller]
fn assert_same(what: &str, [git, ours]: &[Output; 2]) {
    let (g, o) = (shown(&git.stdout), shown(&ours.stdout));
    assert!(
        code(git) == code(ours) && g == o && git.stderr == ours.stderr,
        "{what}: packserve differs from git's upload-pack\n--- git: exit {} ---\n{g}--- stderr ---\n{}\n--- packserve: exit {} ---\n{o}--- stderr ---\n{}",
        code(git),
        git.stderr_str(),
        code(ours),
        ours.stderr_str()
    );
}

fn git_in(sb: &Sandbox, dir: &Path, args: &[&str]) -> String {
    sb.git(dir, args).trim().to_owned()
}

// ---------------------------------------------------------------------------
// 1. Naming the repository

/// A directory with a repository of every kind: bare `b.git`, bare `plain` (no suffix),
/// non-bare `nb` (with `nb/sub`), `gf` whose `.git` file points at `sep.git`, a linked worktree
/// `wt` of `nb`, a symlink `link.git` to `b.git`, a relative gitfile `relgf`, and files that are
/// not usable gitfiles (`garbage`, `gd/.git` and `gfile` naming a missing directory, `nopath`).
fn repositories(sb: &Sandbox) -> PathBuf {
    let w = sb.join("w");
    std::fs::create_dir_all(&w).unwrap();
    sb.sh(
        &w,
        r#"
        git init -q --bare b.git
        git init -q nb
        (cd nb && commit a.txt 1 one && git tag -a -m t v1 && commit a.txt 2 two)
        git -C nb push -q ../b.git main v1
        git init -q --bare plain
        git -C nb push -q ../plain main:refs/heads/other
        git init -q --separate-git-dir="$PWD/sep.git" gf
        (cd gf && commit g.txt 1 sep)
        git -C nb worktree add -q ../wt -b wtb
        mkdir -p nb/sub
        ln -s b.git link.git
        printf 'gitdir: sep.git\n' > relgf
        echo hello > garbage
        mkdir gd && echo "gitdir: /nonexistent" > gd/.git
        echo "gitdir: $PWD/missing.git" > gfile
        printf 'gitdir: ' > nopath
        "#,
    );
    w
}

/// Every way of naming a repository (relative, absolute, `.`, `..`, trailing slashes, with and
/// without `.git`, `.git` files and worktrees, `~/`, broken gitfiles), from every directory
/// git accepts (the git directory itself, as git-daemon and git-http-backend start it, a work
/// tree, a subdirectory, a worktree's git directory...), with and without `--strict`: the same
/// advertisement, or the same error, as git's.
#[test]
fn every_way_of_naming_a_repository() {
    let sb = Sandbox::new("conf-naming");
    let w = repositories(&sb);
    let ws = w.to_str().unwrap();
    let cwds = [
        "",
        "nb",
        "nb/.git",
        "nb/sub",
        "b.git",
        "b.git/refs",
        "plain",
        "gf",
        "sep.git",
        "wt",
        "nb/.git/worktrees/wt",
    ];
    let mut names: Vec<String> = [
        ".",
        "..",
        "./",
        "../",
        "b.git",
        "b",
        "b.git//",
        "nb",
        "nb/",
        "nb/.git",
        "nb/.git/",
        "plain",
        "gf",
        "gf/.git",
        "sep.git",
        "sep",
        "wt",
        "wt/.git",
        ".git",
        "../nb",
        "../b.git",
        "../.git",
        "link.git",
        "link",
        "relgf",
        "garbage",
        "gd",
        "gd/.git",
        "gfile",
        "nopath",
        "nothing-here",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for abs in ["nb", "nb/.git", "b", "b.git", "gf", "wt", "nb/.git/.", "nb/.git/worktrees/wt"] {
        names.push(format!("{ws}/{abs}"));
    }
    // HOME is the sandbox's `home`, next to `w`.
    names.push("~/../w/b.git".into());
    names.push("~/../w/nb/".into());
    let mut compared = 0;
    for strict in [false, true] {
        for cwd in cwds {
            let dir = w.join(cwd);
            for name in &names {
                let mut args = vec!["--advertise-refs"];
                if strict {
                    args.push("--strict");
                }
                args.push(name);
                let runs = both(&sb, &dir, &args, &[], b"");
                let what = format!("(cd {cwd:?}) {}", args.join(" "));
                let [git, ours] = &runs;
                // Deliberate: under --strict, git checks the ownership of a path before it
                // finds it missing and says "detected dubious ownership"; packserve says the
                // path is not a repository.
                if strict
                    && git.stderr_str().contains("detected dubious ownership")
                    && !dir.join(name).exists()
                {
                    assert_eq!(code(ours), 128, "{what}: {ours}");
                    assert_eq!(
                        ours.stderr_str(),
                        format!("fatal: '{name}' does not appear to be a git repository\n"),
                        "{what}"
                    );
                    continue;
                }
                assert_same(&what, &runs);
                compared += 1;
            }
        }
    }
    assert!(compared > 500, "only {compared} cases compared");
}

/// `.` from inside a non-bare repository's `.git` directory, as git-daemon and
/// git-http-backend run upload-pack, in v1 and v2 too, and stateless.
#[test]
fn dot_inside_a_git_directory_in_every_version() {
    let sb = Sandbox::new("conf-dot");
    let w = repositories(&sb);
    let main = git_in(&sb, &w.join("nb"), &["rev-parse", "main"]);
    for (cwd, name) in [("nb/.git", "."), ("nb/.git", "./"), ("nb/.git/worktrees/wt", "."), ("sep.git", ".")]
    {
        let dir = w.join(cwd);
        for proto in ["version=1", "version=2"] {
            let env = [("GIT_PROTOCOL", proto)];
            assert_same(
                &format!("{cwd} {name} {proto}"),
                &both(&sb, &dir, &["--advertise-refs", name], &env, b""),
            );
        }
        let ls = pktline::request(&["command=ls-refs", "0001", "symrefs", "peel", "0000"]);
        let env = [("GIT_PROTOCOL", "version=2")];
        assert_same(&format!("{cwd} ls-refs"), &both(&sb, &dir, &["--stateless-rpc", name], &env, &ls));
        let fetch = pktline::request(&[&format!("want {main} side-band-64k no-progress"), "0000", "done"]);
        assert_same(&format!("{cwd} fetch"), &both(&sb, &dir, &["--stateless-rpc", name], &[], &fetch));
    }
}

/// Real clients cloning through an upload-pack started the git-daemon way (in the git
/// directory of a non-bare repository, naming it `.`): the same refs as through git's.
fn clone_from_inside_the_git_dir(client: Client, protocol: u8) {
    let sb = Sandbox::new("conf-dot-clone");
    let w = repositories(&sb);
    let git_dir = w.join("nb/.git");
    let setup = format!("cd {} && set -- .", sh_quote(git_dir.to_str().unwrap()));
    let mut refs = Vec::new();
    for server in BOTH {
        let wrapper = sb.wrapper(server, &[], &setup);
        let dest = sb.unique(&format!("clone-{}", server_name(server)));
        let t = sb.try_clone_via(client, protocol, &wrapper, &w.join("nb"), &dest, &[]);
        assert!(t.output.status.success(), "{}: {}", server_name(server), t.output);
        sb.fsck(&dest);
        refs.push((sb.refs(&dest), sb.head(&dest)));
    }
    assert_eq!(refs[1], refs[0], "clone through packserve (left) and git (right)");
}

client_tests!(clone_from_inside_the_git_dir; dot_clone_git247_v0(New, 0), dot_clone_git247_v2(New, 2), dot_clone_git239_v2(Old, 2));

// ---------------------------------------------------------------------------
// 5. GIT_TRACE_BARE, GIT_USER_AGENT

/// With `GIT_TRACE_BARE` the packet trace has no time and file prefix: byte for byte git's
/// trace, in v0, v1 and v2; values git does not take for true leave the prefix (and an
/// unknown value gets git's warning).
#[test]
fn trace_bare_like_git() {
    let sb = Sandbox::new("conf-trace-bare");
    let repo = fixture("tags");
    let r = repo.to_str().unwrap();
    let main = sb.rev_parse(&repo, "main");
    let ls = pktline::request(&["command=ls-refs", "0001", "peel", "symrefs", "0000"]);
    let fetch = pktline::request(&[&format!("want {main} side-band-64k no-progress"), "0000", "done"]);
    for bare in ["1", "true", "TRUE", "2"] {
        for (how, args, proto, input) in [
            ("v0 advertisement", vec!["--advertise-refs", r], "", Vec::new()),
            ("v1 advertisement", vec!["--advertise-refs", r], "version=1", Vec::new()),
            ("v2 ls-refs", vec!["--stateless-rpc", r], "version=2", ls.clone()),
            ("v0 fetch", vec!["--stateless-rpc", r], "", fetch.clone()),
        ] {
            let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", bare), ("GIT_PROTOCOL", proto)];
            let runs = both(&sb, sb.path(), &args, &env, &input);
            assert_same(&format!("GIT_TRACE_BARE={bare} {how}"), &runs);
            assert!(runs[1].stderr_str().starts_with("packet:  upload-pack"), "{how}: {}", runs[1]);
        }
    }
    for bare in ["0", "false", ""] {
        let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", bare)];
        let [git, ours] = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
        for o in [&git, &ours] {
            assert!(
                o.stderr_str().lines().all(|l| l.contains(" pkt-line.c:")),
                "GIT_TRACE_BARE={bare:?}: {o}"
            );
        }
    }
    let env = [("GIT_TRACE_PACKET", "1"), ("GIT_TRACE_BARE", "yes")];
    let [git, ours] = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
    let warning = |o: &Output| o.stderr_str().lines().take(3).collect::<Vec<_>>().join("\n");
    assert!(git.stderr_str().starts_with("warning: unknown trace value for 'GIT_TRACE_BARE': yes"), "{git}");
    assert_eq!(warning(&ours), warning(&git));
}

/// `GIT_USER_AGENT` is the `agent=` value, sanitized as git does (surrounding whitespace
/// trimmed, other bytes outside `!`..`~` as `.`), in v0, v1 and v2; unset, packserve's own.
#[test]
fn user_agent_like_git() {
    let sb = Sandbox::new("conf-agent");
    let repo = fixture("tags");
    let r = repo.to_str().unwrap();
    for agent in ["my-server/1.0", " spaced agent\t", "caf\u{e9}/\u{1}2", ""] {
        for proto in ["", "version=1", "version=2"] {
            let env = [("GIT_USER_AGENT", agent), ("GIT_PROTOCOL", proto)];
            let runs = both(&sb, sb.path(), &["--advertise-refs", r], &env, b"");
            assert_same(&format!("GIT_USER_AGENT={agent:?} {proto}"), &runs);
        }
    }
    let out = sb.serve(Server::UnderTest, &["--advertise-refs", r], Some("version=2"), None);
    assert!(
        out.stdout_str().contains(&format!("agent={}", expected_agent_prefix().trim_start_matches("agent="))),
        "{out}"
    );
}

