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
// 2. Broken refs

/// A bare repository with `main` and an annotated tag, plus what `setup` (a shell snippet run
/// inside it) breaks. `$MAIN` and `$MISSING` (an id no object has) are set for it.
fn broken(sb: &Sandbox, name: &str, setup: &str) -> PathBuf {
    let dir = sb.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    sb.sh(
        &dir,
        &format!(
            r#"
            git init -q work
            (cd work && commit a.txt 1 one && commit a.txt 2 two && tick && git tag -a -m t v1)
            git clone -q --bare work repo.git
            cd repo.git
            MAIN=$(git rev-parse main)
            MISSING=1111111111111111111111111111111111111111
            {setup}
            "#
        ),
    );
    dir.join("repo.git")
}

/// The ways a ref store can be broken, as shell snippets run in the repository.
const BROKEN: &[(&str, &str)] = &[
    ("loose-ref-missing-object", "echo $MISSING > refs/heads/missing"),
    ("loose-ref-garbage", "echo garbage > refs/heads/corrupt"),
    ("loose-ref-empty", ": > refs/heads/empty"),
    ("symref-to-missing-object", "echo $MISSING > refs/heads/missing && git symbolic-ref refs/heads/sym refs/heads/missing"),
    ("symref-to-garbage", "echo garbage > refs/heads/corrupt && git symbolic-ref refs/heads/sym refs/heads/corrupt"),
    ("symref-dangling", "git symbolic-ref refs/heads/sym refs/heads/nothing"),
    ("head-to-missing-object", "echo $MISSING > refs/heads/missing && git symbolic-ref HEAD refs/heads/missing"),
    ("head-to-garbage", "echo garbage > refs/heads/corrupt && git symbolic-ref HEAD refs/heads/corrupt"),
    ("head-through-symref-to-garbage", "echo garbage > refs/heads/corrupt && git symbolic-ref refs/heads/s1 refs/heads/corrupt && git symbolic-ref HEAD refs/heads/s1"),
    ("head-detached-missing-object", "echo $MISSING > HEAD"),
    ("packed-ref-missing-object", "git pack-refs --all && sed -i \"s#^\\(.* refs/heads/main\\)\\$#\\1\\n$MISSING refs/heads/pmissing#\" packed-refs"),
    ("packed-ref-bad-name", "git pack-refs --all && sed -i \"s#^\\(.* refs/heads/main\\)\\$#\\1\\n$MAIN refs/heads/z..bad#\" packed-refs"),
    ("all-objects-missing", "echo $MISSING > refs/heads/main && rm -rf objects/pack/* objects/??"),
];

/// A request that shows refs: its name, the server's arguments (the repository is
/// appended), its environment and its input.
type Listing = (&'static str, Vec<&'static str>, Vec<(&'static str, &'static str)>, Vec<u8>);

/// The requests that show refs: v0 and v1 advertisements, v2 ls-refs (with and without
/// arguments, and with a prefix).
fn ref_listings() -> Vec<Listing> {
    let ls = |args: &[&str]| {
        let mut l = vec!["command=ls-refs", "object-format=sha1", "0001"];
        l.extend_from_slice(args);
        l.push("0000");
        pktline::request(&l)
    };
    vec![
        ("v0", vec!["--advertise-refs"], vec![], vec![]),
        ("v1", vec!["--advertise-refs"], vec![("GIT_PROTOCOL", "version=1")], vec![]),
        ("v0-stateful", vec![], vec![], b"0000".to_vec()),
        ("ls-refs", vec!["--stateless-rpc"], vec![("GIT_PROTOCOL", "version=2")], ls(&[])),
        (
            "ls-refs-all-args",
            vec!["--stateless-rpc"],
            vec![("GIT_PROTOCOL", "version=2")],
            ls(&["peel", "symrefs", "unborn"]),
        ),
        (
            "ls-refs-prefix",
            vec!["--stateless-rpc"],
            vec![("GIT_PROTOCOL", "version=2")],
            ls(&["symrefs", "ref-prefix refs/heads/", "ref-prefix HEAD"]),
        ),
    ]
}

/// Broken refs are listed as git lists them (GIT_REF_PARANOIA, on by default since 2.36): a
/// missing object with the id the ref stores, a garbage file or a bad name with the null id;
/// symbolic refs to missing or broken refs left out; HEAD through a broken ref not at all.
#[test]
fn broken_refs_are_advertised_as_git_advertises_them() {
    let sb = Sandbox::new("conf-broken");
    for (name, setup) in BROKEN {
        let repo = broken(&sb, name, setup);
        for (how, args, env, input) in ref_listings() {
            let mut args = args.clone();
            let r = repo.to_str().unwrap();
            args.push(r);
            let runs = both(&sb, sb.path(), &args, &env, &input);
            assert_same(&format!("{name}, {how}"), &runs);
            assert!(runs[0].status.success(), "{name}, {how}: git failed:\n{}", runs[0]);
        }
    }
}

/// A `packed-refs` file git cannot parse ends the session with git's message and status 128,
/// in every version. (git may have written the refs before the bad line when it dies;
/// packserve writes none.) Deliberately, packserve reads the whole file for every listing (it
/// checks wants against every visible ref): an `ls-refs` with prefixes fails too where git,
/// reading only the prefixes' part of a sorted file, may never reach the bad line.
#[test]
fn unparsable_packed_refs_end_the_session_as_in_git() {
    let sb = Sandbox::new("conf-packed");
    let cases: &[(&str, &str, &str)] = &[
        (
            "garbage-line",
            "echo 'garbage line here' >> packed-refs",
            "unexpected line in ./packed-refs: garbage line here",
        ),
        (
            "bad-header",
            "sed -i 's/# pack-refs/# pock-refs/' packed-refs",
            "unexpected line in ./packed-refs: # pock-refs with:",
        ),
        (
            "no-header-garbage",
            "sed -i 1d packed-refs && echo xx >> packed-refs",
            "unexpected line in ./packed-refs: xx",
        ),
        ("unterminated", "printf '%s refs/x' $MAIN >> packed-refs", "unterminated line in ./packed-refs: "),
        ("bad-peel", "sed -i 's/^\\^/^zz/' packed-refs", "unexpected line in ./packed-refs: ^zz"),
        ("long-garbage", "printf '%0100d\\n' 5 >> packed-refs", "..."),
    ];
    for (name, setup, needle) in cases {
        let repo = broken(&sb, name, &format!("git pack-refs --all && {setup}"));
        let mut message = None;
        for (how, args, env, input) in ref_listings() {
            let mut args = args.clone();
            args.push(repo.to_str().unwrap());
            let [git, ours] = both(&sb, sb.path(), &args, &env, &input);
            let what = format!("{name}, {how}");
            if how == "ls-refs-prefix" && git.status.success() {
                assert_eq!(Some(ours.stderr_str()), message, "{what}: {ours}");
                assert_eq!(code(&ours), 128, "{what}: {ours}");
                continue;
            }
            assert_eq!(code(&git), 128, "{what}: git: {git}");
            assert!(git.stderr_str().contains(needle), "{what}: scenario is off: {git}");
            assert_eq!((code(&ours), ours.stderr_str()), (128, git.stderr_str()), "{what}: {ours}");
            message = Some(git.stderr_str());
            let refs: Vec<String> = shown(&ours.stdout)
                .lines()
                .filter(|l| l.len() > 40 && l.as_bytes()[..40].iter().all(u8::is_ascii_hexdigit))
                .map(str::to_owned)
                .collect();
            assert!(refs.is_empty(), "{what}: packserve listed refs before dying: {refs:?}");
        }
    }
}

/// The refs `git ls-remote` shows through `server`.
fn ls_remote(sb: &Sandbox, client: Client, protocol: u8, server: Server, repo: &Path) -> Output {
    let mut cmd = sb.git_cmd(client, protocol, sb.path());
    cmd.arg("ls-remote").arg(format!("--upload-pack={}", server.program().display())).arg(file_url(repo));
    run(cmd, None)
}

/// Real clients: a clone of a repository with a broken ref fails loudly through both servers
/// (`not our ref <id>`), never "succeeds" without the ref; ls-remote shows the broken refs as
/// git does; fetching only a sound branch still works.
fn broken_refs_with_real_clients(client: Client, protocol: u8) {
    let sb = Sandbox::new("conf-broken-clients");
    let null = "0000000000000000000000000000000000000000";
    for (name, setup, refused) in [
        ("missing", "echo $MISSING > refs/heads/missing", "1111111111111111111111111111111111111111"),
        ("corrupt", "echo garbage > refs/heads/corrupt", null),
        (
            "all-missing",
            "echo $MISSING > refs/heads/main && rm -rf objects/pack/* objects/??",
            "1111111111111111111111111111111111111111",
        ),
    ] {
        let repo = broken(&sb, name, setup);
        let lists: Vec<String> = BOTH
            .iter()
            .map(|&s| ls_remote(&sb, client, protocol, s, &repo).assert_success().stdout_str())
            .collect();
        assert_eq!(lists[1], lists[0], "{name}: ls-remote through packserve (left) and git (right)");
        assert!(lists[0].contains(refused), "{name}: scenario is off:\n{}", lists[0]);
        for server in BOTH {
            let who = format!("{name}, {}, {}", server_name(server), label(client, protocol));
            let dest = sb.unique("clone");
            let t = sb.try_clone(client, protocol, server, &repo, &dest, &[]);
            // The ERR line (`remote error: ...`), or in v0 the server's own message when the
            // client died of SIGPIPE writing its haves before it read the ERR line.
            assert_failed_with(&t.output, &format!("upload-pack: not our ref {refused}"), &who);
            assert!(!t.output.stderr_str().contains("empty repository"), "{who}: {}", t.output);
            if name == "all-missing" {
                continue;
            }
            let dest = sb.empty_clone_of(&repo, &format!("fetch-{name}-{}", server_name(server)));
            let args = ["origin", "refs/heads/main:refs/remotes/origin/main"];
            let t = sb.try_fetch_via(client, protocol, &server.program(), &dest, &args);
            assert!(t.output.status.success(), "{who}: fetch of main failed:\n{}", t.output);
            assert!(t.pack_objects.is_some(), "{who}: fetch of main brought no pack");
            sb.fsck(&dest);
        }
    }
}

client_tests!(broken_refs_with_real_clients; broken_clients_git247_v0(New, 0), broken_clients_git247_v2(New, 2), broken_clients_git239_v0(Old, 0), broken_clients_git239_v2(Old, 2));

// ---------------------------------------------------------------------------
// 3 and 7. Where a request may end

/// Every prefix of `input` at which a client could stop (after `skip` bytes): each pkt-line
/// boundary, two bytes into each length, the middle of each payload, and the whole.
fn cut_points(input: &[u8], skip: usize) -> Vec<usize> {
    let mut cuts = vec![skip];
    let mut pos = skip;
    while pos + 4 <= input.len() {
        let len =
            std::str::from_utf8(&input[pos..pos + 4]).ok().and_then(|h| usize::from_str_radix(h, 16).ok());
        let len = match len {
            Some(n) if n >= 4 => n,
            _ => 4,
        };
        cuts.push(pos + 2);
        if len > 5 {
            cuts.push(pos + 4 + (len - 4) / 2);
        }
        pos += len;
        cuts.push(pos.min(input.len()));
    }
    cuts.push(input.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// The requests of a v0/v1 exchange: the first POST of a shallow fetch, the same with the
/// client's shallow lines, a negotiation round without `done`, and a last round with `done`.
fn v0_requests(main: &str, older: &str) -> Vec<(&'static str, Vec<u8>)> {
    let caps =
        "multi_ack_detailed no-done side-band-64k thin-pack ofs-delta no-progress shallow agent=git/2.47";
    let want = format!("want {main} {caps}");
    vec![
        ("shallow-first-post", pktline::request(&[&want, "deepen 1", "0000"])),
        ("shallow-lines", pktline::request(&[&want, &format!("shallow {older}"), "deepen 2", "0000"])),
        ("round-without-done", pktline::request(&[&want, "0000", &format!("have {older}"), "0000"])),
        ("round-with-done", pktline::request(&[&want, "0000", &format!("have {older}"), "done"])),
        ("deepen-and-done", pktline::request(&[&want, "deepen 1", "0000", "done"])),
    ]
}

/// Every point at which a v0 or v1 request may end, stateless (`--stateless-rpc`, smart
/// HTTP's POST bodies) and stateful: the same answer, the same exit status, the same message
/// as git. In particular a stateless request may end right after its wants (the first POST
/// of a shallow fetch): the shallow lines, then a quiet exit 0.
#[test]
fn every_end_of_a_v0_or_v1_request() {
    let sb = Sandbox::new("conf-ends-v0");
    let repo = fixture("tags");
    let (main, older) = (sb.rev_parse(&repo, "main"), sb.rev_parse(&repo, "main~1"));
    let r = repo.to_str().unwrap();
    let mut cases = 0;
    for (name, request) in v0_requests(&main, &older) {
        for (mode, args, env) in [
            ("stateless-v0", vec!["--stateless-rpc", r], vec![]),
            ("stateless-v1", vec!["--stateless-rpc", r], vec![("GIT_PROTOCOL", "version=1")]),
            ("v0", vec![r], vec![]),
            ("v1", vec![r], vec![("GIT_PROTOCOL", "version=1")]),
        ] {
            for cut in cut_points(&request, 0) {
                let runs = both(&sb, sb.path(), &args, &env, &request[..cut]);
                assert_same(&format!("{mode} {name} cut at {cut}/{}", request.len()), &runs);
                cases += 1;
            }
        }
    }
    eprintln!("{cases} cases");
}

/// v2 requests: ls-refs, fetch with haves (acknowledgments only), fetch with `done`, and
/// object-info (with `transfer.advertiseObjectInfo`).
fn v2_requests(main: &str, older: &str) -> Vec<(&'static str, Vec<u8>)> {
    let head = ["agent=git/2.47", "object-format=sha1", "0001"];
    let req = |command: &str, args: &[&str]| {
        let mut l = vec![command];
        l.extend_from_slice(&head);
        l.extend_from_slice(args);
        l.push("0000");
        pktline::request(&l)
    };
    let (want, have) = (format!("want {main}"), format!("have {older}"));
    vec![
        (
            "ls-refs",
            req(
                "command=ls-refs",
                &["peel", "symrefs", "unborn", "ref-prefix refs/heads/", "ref-prefix HEAD"],
            ),
        ),
        ("ls-refs-no-args", pktline::request(&["command=ls-refs", "0000"])),
        ("fetch-acks", req("command=fetch", &["thin-pack", "no-progress", "ofs-delta", &want, &have])),
        (
            "fetch-done",
            req("command=fetch", &["thin-pack", "no-progress", "ofs-delta", &want, &have, "done"]),
        ),
        ("fetch-shallow", req("command=fetch", &["no-progress", &want, "deepen 1", "done"])),
        ("object-info", req("command=object-info", &["size", &format!("oid {main}")])),
    ]
}

/// A copy of `tags` that serves object-info, with the ids of `main` and `main~1`.
fn v2_repo(sb: &Sandbox) -> (PathBuf, String, String) {
    let repo = sb.fixture_copy("tags");
    sb.config(&repo, "transfer.advertiseObjectInfo", "true");
    let (main, older) = (sb.rev_parse(&repo, "main"), sb.rev_parse(&repo, "main~1"));
    (repo, main, older)
}

/// Every point at which a v2 request may end, stateless and stateful (after the capability
/// advertisement, and after a first complete request): the same answer, exit status and
/// message as git's. A stream that ends inside the first packet of the next request is a
/// quiet end, as git reads it.
#[test]
fn every_end_of_a_v2_request() {
    let sb = Sandbox::new("conf-ends-v2");
    let (repo, main, older) = v2_repo(&sb);
    let r = repo.to_str().unwrap();
    let env = [("GIT_PROTOCOL", "version=2")];
    let first = pktline::request(&["command=ls-refs", "0001", "symrefs", "0000"]);
    let mut cases = 0;
    for (name, request) in v2_requests(&main, &older) {
        for cut in cut_points(&request, 0) {
            let runs = both(&sb, sb.path(), &["--stateless-rpc", r], &env, &request[..cut]);
            assert_same(&format!("stateless {name} cut at {cut}/{}", request.len()), &runs);
            let runs = both(&sb, sb.path(), &[r], &env, &request[..cut]);
            assert_same(&format!("stateful {name} cut at {cut}/{}", request.len()), &runs);
            cases += 2;
        }
        // The same request as the second of a connection.
        let two = [first.as_slice(), request.as_slice()].concat();
        for cut in cut_points(&two, first.len()) {
            let runs = both(&sb, sb.path(), &[r], &env, &two[..cut]);
            assert_same(&format!("second request {name} cut at {cut}/{}", two.len()), &runs);
            cases += 1;
        }
    }
    eprintln!("{cases} cases");
}

/// Bytes after a complete v2 request (a newline after the final flush of ls-refs, as some
/// scripts send, or the start of a packet): git answers the request completely and exits 0
/// when the stream ends inside the next packet; a bad length, a delimiter or a flush get
/// git's answer too. Stateless, nothing after the request is read at all.
#[test]
fn trailing_bytes_after_a_complete_v2_request() {
    let sb = Sandbox::new("conf-trailing");
    let (repo, main, older) = v2_repo(&sb);
    let r = repo.to_str().unwrap();
    let env = [("GIT_PROTOCOL", "version=2")];
    let tails: &[&[u8]] =
        &[b"\n", b"\r\n", b"0", b"00", b"000", b"0009do", b"0000", b"0001", b"garbage", b"\n\n\n\n\n"];
    for (name, request) in v2_requests(&main, &older) {
        for tail in tails {
            let input = [request.as_slice(), tail].concat();
            for args in [vec![r], vec!["--stateless-rpc", r]] {
                let runs = both(&sb, sb.path(), &args, &env, &input);
                let what = format!("{name} {args:?} + {:?}", String::from_utf8_lossy(tail));
                assert_same(&what, &runs);
                if tail.len() < 4 || args.len() == 2 || *tail == b"0009do" || *tail == b"0000" {
                    assert!(runs[1].status.success(), "{what}: {}", runs[1]);
                }
            }
        }
    }
}

/// The first POST of a v0 shallow fetch through `packserve http-backend`: the shallow lines,
/// exit 0 and `outcome=ok` in the log, where it logged `outcome=error` before.
#[test]
fn http_backend_shallow_first_post_is_ok() {
    let sb = Sandbox::new("conf-http-shallow");
    let root = sb.join("root");
    std::fs::create_dir_all(&root).unwrap();
    sb.git(
        sb.path(),
        &["clone", "-q", "--bare", fixture("tags").to_str().unwrap(), root.join("r.git").to_str().unwrap()],
    );
    let main = sb.rev_parse(&root.join("r.git"), "main");
    let body =
        pktline::request(&[&format!("want {main} side-band-64k shallow no-progress"), "deepen 1", "0000"]);
    let mut outs = Vec::new();
    for program in [server_under_test(), PathBuf::from(git_exec_path()).join("git-http-backend")] {
        let mut cmd = sb.command(&program);
        if program == server_under_test() {
            cmd.arg("http-backend");
        }
        cmd.env("REQUEST_METHOD", "POST")
            .env("PATH_INFO", "/r.git/git-upload-pack")
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("CONTENT_TYPE", "application/x-git-upload-pack-request")
            .env("CONTENT_LENGTH", body.len().to_string());
        let out = run(cmd, Some(&body));
        assert!(out.status.success(), "{}: {out}", program.display());
        let text = out.stdout_str();
        let pkts = &text[text.find("\r\n\r\n").expect("CGI headers") + 4..];
        outs.push((pkts.to_owned(), out.stderr_str()));
    }
    assert_eq!(outs[0].0, outs[1].0, "response body: packserve (left), git http-backend (right)");
    assert!(outs[0].0.starts_with("0034shallow "), "{:?}", outs[0].0);
    assert!(outs[0].1.contains("outcome=ok"), "log: {}", outs[0].1);
}

fn git_exec_path() -> String {
    let out = run(
        {
            let mut c = std::process::Command::new(Client::New.program());
            c.arg("--exec-path");
            c
        },
        None,
    );
    out.stdout_str().trim().to_owned()
}

// ---------------------------------------------------------------------------
// 4. lsrefs.unborn

/// `lsrefs.unborn` as git honours it: `advertise` (and unset) → `ls-refs=unborn` and the
/// `unborn` line; `allow` → plain `ls-refs`, the line when asked; `ignore` → neither (the
/// argument is accepted); anything else, and a key without a value, end the advertisement or
/// the `ls-refs` that asks with git's message.
#[test]
fn lsrefs_unborn_as_git_honours_it() {
    let sb = Sandbox::new("conf-unborn");
    let repo = sb.fixture_copy("empty");
    let r = repo.to_str().unwrap();
    let env = [("GIT_PROTOCOL", "version=2")];
    let ls = |args: &[&str]| {
        let mut l = vec!["command=ls-refs", "0001"];
        l.extend_from_slice(args);
        l.push("0000");
        pktline::request(&l)
    };
    for value in [
        None,
        Some("advertise"),
        Some("allow"),
        Some("ignore"),
        Some("bogus"),
        Some("Allow"),
        Some(""),
        Some("NOVALUE"),
    ] {
        let config = repo.join("config");
        let base = std::fs::read_to_string(&config).unwrap();
        let base = base.split("[lsrefs]").next().unwrap().to_owned();
        let extra = match value {
            None => String::new(),
            Some("NOVALUE") => "[lsrefs]\n\tunborn\n".into(),
            Some(v) => format!("[lsrefs]\n\tunborn = \"{v}\"\n"),
        };
        std::fs::write(&config, format!("{base}{extra}")).unwrap();
        let what = |how: &str| format!("lsrefs.unborn={value:?}, {how}");
        assert_same(&what("advertisement"), &both(&sb, sb.path(), &["--advertise-refs", r], &env, b""));
        for args in [&["symrefs", "unborn"][..], &["unborn"], &["symrefs"], &["peel", "unborn", "symrefs"]] {
            let input = ls(args);
            assert_same(
                &what(&format!("ls-refs {args:?}")),
                &both(&sb, sb.path(), &["--stateless-rpc", r], &env, &input),
            );
            assert_same(
                &what(&format!("stateful ls-refs {args:?}")),
                &both(&sb, sb.path(), &[r], &env, &input),
            );
        }
    }
}

/// A real client cloning an empty repository whose HEAD names `trunk`: it learns the branch
/// unless `lsrefs.unborn` is `ignore`, the same through both servers.
fn unborn_clone(client: Client) {
    let sb = Sandbox::new("conf-unborn-clone");
    let repo = sb.fixture_copy("empty");
    for value in ["advertise", "allow", "ignore"] {
        sb.config(&repo, "lsrefs.unborn", value);
        let mut heads = Vec::new();
        for server in BOTH {
            let dest = sb.unique("clone");
            let t = sb.try_clone(client, 2, server, &repo, &dest, &[]);
            assert!(t.output.status.success(), "{value} {}: {}", server_name(server), t.output);
            heads.push(sb.git(&dest, &["symbolic-ref", "HEAD"]));
        }
        assert_eq!(
            heads[1], heads[0],
            "lsrefs.unborn={value}: HEAD of the clone through packserve (left), git (right)"
        );
    }
}

client_tests!(|client, _| unborn_clone(client); unborn_clone_git247(New, 2), unborn_clone_git239(Old, 2));

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

// ---------------------------------------------------------------------------
// 6. Malformed configuration

/// A private bare copy of the `tags` fixture (its config is the repository's `config`).
fn bare_tags(sb: &Sandbox) -> PathBuf {
    let dest = sb.unique("tags.git");
    sb.git(sb.path(), &["clone", "-q", "--bare", fixture("tags").to_str().unwrap(), dest.to_str().unwrap()]);
    dest
}

/// Where a configuration value is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The repository's `config`.
    File,
    /// `$HOME/.gitconfig`.
    Global,
    /// `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0`/`GIT_CONFIG_VALUE_0` (always has a value).
    Count,
    /// `GIT_CONFIG_PARAMETERS`, what `git -c` exports.
    Params,
}

/// A value: `None` is a key without `=` (git's NULL).
type Value = Option<&'static str>;

/// The config file text setting `key` (`section.name` or `section.sub.name`) to `value`.
fn config_text(key: &str, value: Value) -> String {
    let (section, name) = key.rsplit_once('.').unwrap();
    let header = match section.split_once('.') {
        Some((s, sub)) => format!("[{s} \"{sub}\"]"),
        None => format!("[{section}]"),
    };
    match value {
        None => format!("{header}\n\t{name}\n"),
        Some(v) => format!("{header}\n\t{name} = \"{v}\"\n"),
    }
}

/// Sets `key` in `source` for one case: rewrites the repository's config from `base` and
/// returns the environment to run the servers with.
fn configure(
    sb: &Sandbox,
    repo: &Path,
    base: &str,
    key: &str,
    value: Value,
    source: Source,
) -> Vec<(String, String)> {
    let mut config = base.to_owned();
    let mut env = Vec::new();
    match source {
        Source::File => config.push_str(&config_text(key, value)),
        Source::Global => {
            let home = sb.unique("home");
            std::fs::create_dir_all(&home).unwrap();
            let global = std::fs::read_to_string(sb.home().join(".gitconfig")).unwrap();
            std::fs::write(home.join(".gitconfig"), global + &config_text(key, value)).unwrap();
            env.push(("HOME".into(), home.display().to_string()));
            env.push(("XDG_CONFIG_HOME".into(), home.join(".config").display().to_string()));
        }
        Source::Count => {
            env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
            env.push(("GIT_CONFIG_KEY_0".into(), key.into()));
            env.push((
                "GIT_CONFIG_VALUE_0".into(),
                value.expect("GIT_CONFIG_VALUE_<n> always has a value").into(),
            ));
        }
        Source::Params => {
            let p = match value {
                None => format!("'{key}'"),
                Some(v) => format!("'{key}'='{v}'"),
            };
            env.push(("GIT_CONFIG_PARAMETERS".into(), p));
        }
    }
    std::fs::write(repo.join("config"), config).unwrap();
    env
}

/// The requests that make git read its configuration at different points.
fn config_requests(r: &str, main: &str) -> Vec<(&'static str, Vec<String>, &'static str, Vec<u8>)> {
    let args = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let stateless_v2 =
        |name, lines: &[&str]| (name, args(&["--stateless-rpc", r]), "version=2", pktline::request(lines));
    let want = format!("want {main}");
    let oid = format!("oid {main}");
    vec![
        ("v0", args(&[r]), "", b"0000".to_vec()),
        ("v1", args(&[r]), "version=1", b"0000".to_vec()),
        ("v2-advertisement", args(&["--advertise-refs", r]), "version=2", Vec::new()),
        (
            "v0-stateless-fetch",
            args(&["--stateless-rpc", r]),
            "",
            pktline::request(&[&format!("{want} side-band-64k no-progress"), "0000", "done"]),
        ),
        stateless_v2("v2-ls-refs", &["command=ls-refs", "0001", "symrefs", "0000"]),
        stateless_v2("v2-ls-refs-unborn", &["command=ls-refs", "0001", "unborn", "0000"]),
        stateless_v2("v2-ls-refs-session-id", &["command=ls-refs", "session-id=x", "0001", "0000"]),
        stateless_v2("v2-fetch", &["command=fetch", "0001", "no-progress", &want, "done", "0000"]),
        stateless_v2("v2-object-info", &["command=object-info", "0001", "size", &oid, "0000"]),
    ]
}

/// Every numeric and boolean key packserve reads (and the string keys git dies on without a
/// value), malformed and well-formed, from every source: the same answer, message and exit
/// status as git's upload-pack, at the same point (git reads upload-pack's keys when a v0/v1
/// session starts and for v2's advertisement and `fetch`, hideRefs for `ls-refs` too,
/// `lsrefs.unborn` for the advertisement and `ls-refs unborn`, `transfer.advertiseSID` for
/// `session-id=`, `transfer.advertiseObjectInfo` for the advertisement and `object-info`).
#[test]
fn malformed_configuration_as_git_reads_it() {
    let sb = Sandbox::new("conf-config");
    let repo = bare_tags(&sb);
    let base = std::fs::read_to_string(repo.join("config")).unwrap();
    let main = sb.rev_parse(&repo, "main");
    let r = repo.to_str().unwrap().to_owned();
    let bools = [
        "uploadpack.allowTipSHA1InWant",
        "uploadpack.allowReachableSHA1InWant",
        "uploadpack.allowAnySHA1InWant",
        "uploadpack.allowFilter",
        "uploadpack.allowRefInWant",
        "uploadpack.allowSidebandAll",
        "transfer.advertiseSID",
        "transfer.advertiseObjectInfo",
        "core.precomposeUnicode",
        "uploadpackfilter.allow",
        "uploadpackfilter.blob:none.allow",
        "uploadpackfilter.tree.allow",
    ];
    let mut cases: Vec<(&str, Value, Source)> = Vec::new();
    for key in bools {
        for value in [Some("maybe"), Some("2x"), Some(""), None, Some("yes"), Some("0x0")] {
            cases.push((key, value, Source::File));
        }
    }
    for value in [
        Some("abc"),
        None,
        Some(""),
        Some("99999999999"),
        Some("1x"),
        Some(" 5 "),
        Some("0x10"),
        Some("-1"),
        Some("2k"),
        Some("0"),
    ] {
        cases.push(("uploadpack.keepAlive", value, Source::File));
    }
    for value in [
        None,
        Some("abc"),
        Some("-1"),
        Some(""),
        Some("1x"),
        Some("99999999999999999999999"),
        Some("2k"),
        Some("0x3"),
    ] {
        cases.push(("uploadpackfilter.tree.maxDepth", value, Source::File));
    }
    for key in ["uploadpack.hideRefs", "transfer.hideRefs", "lsrefs.unborn"] {
        cases.push((key, None, Source::File));
    }
    cases.push(("lsrefs.unborn", Some("bogus"), Source::File));
    for source in [Source::Global, Source::Count, Source::Params] {
        for (key, value) in [
            ("uploadpack.keepAlive", Some("abc")),
            ("uploadpack.allowFilter", Some("maybe")),
            ("uploadpackfilter.tree.maxDepth", Some("abc")),
            ("uploadpackfilter.tree.maxDepth", None),
            ("uploadpackfilter.tree.maxDepth", Some("")),
            ("uploadpack.hideRefs", None),
            ("lsrefs.unborn", Some("bogus")),
            ("lsrefs.unborn", None),
            ("transfer.advertiseObjectInfo", Some("x")),
            ("transfer.advertiseSID", Some("x")),
        ] {
            if source == Source::Count && value.is_none() {
                continue;
            }
            cases.push((key, value, source));
        }
    }
    let mut compared = 0;
    for (key, value, source) in cases {
        let env = configure(&sb, &repo, &base, key, value, source);
        for (how, args, proto, input) in config_requests(&r, &main) {
            let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            env.push(("GIT_PROTOCOL", proto));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let runs = both(&sb, sb.path(), &args, &env, &input);
            assert_same(&format!("{key}={value:?} in {source:?}, {how}"), &runs);
            compared += 1;
        }
    }
    std::fs::write(repo.join("config"), &base).unwrap();
    eprintln!("{compared} cases");
}

/// The line git names for a key without a value is the key's own line, counted through
/// comments, continued values and other sections.
#[test]
fn missing_value_names_the_line_as_git() {
    let sb = Sandbox::new("conf-config-line");
    let repo = bare_tags(&sb);
    let base = std::fs::read_to_string(repo.join("config")).unwrap();
    let text = format!(
        "{base}# a comment\n[uploadpack]\n\tallowFilter = true ; trailing\n\tkeepAlive = \"1\\\n0\"\n\n[uploadpackfilter \"tree\"]\n\tallow = true\n\tmaxDepth\n"
    );
    std::fs::write(repo.join("config"), text).unwrap();
    let runs = both(&sb, sb.path(), &["--advertise-refs", repo.to_str().unwrap()], &[], b"");
    assert!(runs[0].stderr_str().contains("' at line "), "scenario is off: {}", runs[0]);
    assert_same("maxDepth without a value", &runs);
}

/// `core.commitGraph` is read when objects are: a malformed value ends the session with
/// git's message and status. (git dies while peeling the advertised refs, after writing the
/// first of them; packserve before the advertisement.)
#[test]
fn malformed_core_commit_graph() {
    let sb = Sandbox::new("conf-config-graph");
    let repo = bare_tags(&sb);
    let main = sb.rev_parse(&repo, "main");
    sb.config(&repo, "core.commitGraph", "x");
    let r = repo.to_str().unwrap();
    for (how, args, proto, input) in config_requests(r, &main) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let [git, ours] = both(&sb, sb.path(), &args, &[("GIT_PROTOCOL", proto)], &input);
        let what = format!("core.commitGraph=x, {how}");
        assert_eq!((code(&ours), ours.stderr_str()), (code(&git), git.stderr_str()), "{what}\n{git}\n{ours}");
        if ["v0", "v1", "v0-stateless-fetch", "v2-fetch"].contains(&how) {
            assert_eq!(
                git.stderr_str(),
                "fatal: bad boolean config value 'x' for 'core.commitgraph'\n",
                "{what}"
            );
        }
    }
}

/// `pack.useBitmaps` is read when a pack is made (git's pack-objects dies on a malformed
/// value): a clone fails through both servers with the message, in v0 and v2.
fn malformed_pack_use_bitmaps(client: Client, protocol: u8) {
    let sb = Sandbox::new("conf-config-bitmaps");
    let repo = sb.fixture_copy("tags");
    sb.config(&repo, "pack.useBitmaps", "x");
    for server in BOTH {
        let dest = sb.unique("clone");
        let t = sb.try_clone(client, protocol, server, &repo, &dest, &[]);
        // git's pack-objects dies with the message on the side band, which the client does
        // not always get to show before the connection ends; packserve's is on band 3.
        let needle = match server {
            Server::Reference => "",
            Server::UnderTest => "remote: fatal: bad boolean config value 'x' for 'pack.usebitmaps'",
        };
        assert_failed_with(&t.output, needle, server_name(server));
    }
    // A listing reads no pack configuration.
    for server in BOTH {
        ls_remote(&sb, client, protocol, server, &repo).assert_success();
    }
}

client_tests!(malformed_pack_use_bitmaps; bitmaps_git247_v0(New, 0), bitmaps_git247_v2(New, 2), bitmaps_git239_v2(Old, 2));

/// packserve's own keys (`packserve.max*`, `packserve.bitmapDeltaSearch`) are read as git
/// reads its own: a malformed value ends the session with git's words for such a value.
#[test]
fn malformed_packserve_keys() {
    let sb = Sandbox::new("conf-config-packserve");
    let repo = bare_tags(&sb);
    let base = std::fs::read_to_string(repo.join("config")).unwrap();
    let r = repo.to_str().unwrap();
    for (key, value, message) in [
        ("packserve.maxWants", Some("lots"), "fatal: bad numeric config value 'lots' for 'packserve.maxwants' in file config: invalid unit\n"),
        ("packserve.maxRequestBytes", None, "fatal: bad numeric config value '' for 'packserve.maxrequestbytes' in file config: invalid unit\n"),
        ("packserve.maxDepth", Some("-1"), "fatal: bad numeric config value '-1' for 'packserve.maxdepth' in file config: invalid unit\n"),
        ("packserve.maxHaves", Some("99999999999999999999999"), "fatal: bad numeric config value '99999999999999999999999' for 'packserve.maxhaves' in file config: out of range\n"),
        ("packserve.maxFilterDepth", Some("2x"), "fatal: bad numeric config value '2x' for 'packserve.maxfilterdepth' in file config: invalid unit\n"),
        ("packserve.bitmapDeltaSearch", Some("sometimes"), "fatal: bad boolean config value 'sometimes' for 'packserve.bitmapdeltasearch'\n"),
    ] {
        configure(&sb, &repo, &base, key, value, Source::File);
        for proto in ["", "version=2"] {
            let out = upload_pack(&sb, Server::UnderTest, sb.path(), &["--advertise-refs", r], &[("GIT_PROTOCOL", proto)], b"");
            assert_eq!((code(&out), out.stderr_str().as_str()), (128, message), "{key}={value:?} {proto}: {out}");
        }
    }
    std::fs::write(repo.join("config"), &base).unwrap();
}

/// The front-ends' keys, read as git http-backend and git daemon read them: a malformed
/// `http.uploadpack`, `http.receivepack`, `http.getanyfile` or `http.maxRequestBuffer` is a
/// 500 from both CGI programs; a malformed `daemon.uploadpack` ends a git:// connection
/// without an answer.
#[test]
fn malformed_front_end_keys() {
    let sb = Sandbox::new("conf-config-frontends");
    let root = sb.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let repo = root.join("r.git");
    sb.git(sb.path(), &["clone", "-q", "--bare", fixture("tags").to_str().unwrap(), repo.to_str().unwrap()]);
    std::fs::write(repo.join("git-daemon-export-ok"), b"").unwrap();
    let base = std::fs::read_to_string(repo.join("config")).unwrap();
    let exec = PathBuf::from(git_exec_path());
    let cgi = |program: &Path, ours: bool| {
        let mut cmd = sb.command(program);
        if ours {
            cmd.arg("http-backend");
        }
        cmd.env("REQUEST_METHOD", "GET")
            .env("PATH_INFO", "/r.git/info/refs")
            .env("QUERY_STRING", "service=git-upload-pack")
            .env("GIT_PROJECT_ROOT", &root);
        run(cmd, None)
    };
    for (key, value, status) in [
        ("http.uploadpack", Some("x"), "Status: 500"),
        ("http.receivepack", Some("x"), "Status: 500"),
        ("http.getanyfile", Some("x"), "Status: 500"),
        ("http.maxRequestBuffer", Some("lots"), "Status: 500"),
        ("http.uploadpack", Some("false"), "Status: 403"),
        ("http.uploadpack", None, "Content-Type: application/x-git-upload-pack-advertisement"),
    ] {
        configure(&sb, &repo, &base, key, value, Source::File);
        let git = cgi(&exec.join("git-http-backend"), false);
        let ours = cgi(&server_under_test(), true);
        let what = format!("{key}={value:?}");
        assert!(git.stdout_str().contains(status), "{what}: scenario is off: {git}");
        assert!(ours.stdout_str().contains(status), "{what}: packserve: {ours}");
        assert_eq!(code(&ours), code(&git), "{what}: {ours}");
        if status == "Status: 500" {
            let fatal =
                git.stderr_str().lines().find(|l| l.starts_with("fatal: ")).unwrap_or_default().to_owned();
            let message = fatal.trim_start_matches("fatal: ");
            assert!(!message.is_empty() && ours.stderr_str().contains(message), "{what}: {git}\n{ours}");
        }
    }
    configure(&sb, &repo, &base, "daemon.uploadpack", Some("x"), Source::File);
    let line = pktline::data("git-upload-pack /r.git\0host=localhost\0");
    let mut git = sb.command(Client::New.program());
    git.args(["daemon", "--inetd", "--export-all"]).arg(format!("--base-path={}", root.display()));
    let git = run(git, Some(&line));
    let mut ours = sb.command(server_under_test());
    ours.args(["inetd", "--export-all", "--base-path"]).arg(&root);
    let ours = run(ours, Some(&line));
    assert!(git.stdout.is_empty() && !git.status.success(), "scenario is off: {git}");
    assert!(ours.stdout.is_empty() && !ours.status.success(), "{ours}");
    assert!(ours.stderr_str().contains("bad boolean config value 'x' for 'daemon.uploadpack'"), "{ours}");
    std::fs::write(repo.join("config"), &base).unwrap();
}

// ---------------------------------------------------------------------------
// 8. Too many ref prefixes

/// git ignores the `ref-prefix` lines of a request that has 65536 or more (and lists every
/// ref, as without any); with fewer it applies them. Stateless and stateful.
#[test]
fn too_many_ref_prefixes_list_every_ref() {
    let sb = Sandbox::new("conf-prefixes");
    let repo = fixture("tags");
    let r = repo.to_str().unwrap();
    let env = [("GIT_PROTOCOL", "version=2")];
    for (n, last) in
        [(65535, None), (65535, Some("ref-prefix refs/tags/")), (65536, None), (65537, None), (70000, None)]
    {
        let mut req = pktline::request(&["command=ls-refs", "0001", "peel"]);
        for i in 0..n {
            req.extend(pktline::data(format!("ref-prefix refs/nothing/{i}\n")));
        }
        if let Some(l) = last {
            req.extend(pktline::data(format!("{l}\n")));
        }
        req.extend_from_slice(b"0000");
        for args in [vec!["--stateless-rpc", r], vec![r]] {
            let runs = both(&sb, sb.path(), &args, &env, &req);
            let what = format!("{n} prefixes then {last:?}, {args:?}");
            assert_same(&what, &runs);
            let listed = shown(&runs[1].stdout).matches(" refs/").count();
            let all = n + usize::from(last.is_some()) >= 65536;
            assert_eq!(listed > 0, all || last.is_some(), "{what}: {listed} refs listed");
        }
    }
}
