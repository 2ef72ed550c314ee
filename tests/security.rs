//! The security contract, systematically (issue 6, part 5):
//!
//! 1. Visibility: a matrix over protocol (v0, v1, v2, stateless v0 and v2) × policy (default,
//!    allowTipSHA1InWant, allowReachableSHA1InWant, allowAnySHA1InWant, hideRefs with `!`,
//!    GIT_NAMESPACE) × request (want by id of visible, hidden and unreachable commits and
//!    blobs, the same with `filter blob:none`, a `have` of a hidden commit). Every received
//!    pack is indexed with `git index-pack` and its object ids are held to what the wanted
//!    object reaches; in v0/v1 and stateless v0 the decision and the objects equal git's
//!    (where git refuses, packserve refuses), in v2 packserve's stricter policy (docs/compatibility.md)
//!    decides. Advertisements never name a hidden ref. Requests that name hidden things
//!    indirectly (`deepen-not`, `sparse:oid=`, `object-info`) learn nothing.
//! 2. Ownership: git's `safe.directory` rules, compared with git 2.47's upload-pack on a
//!    repository owned by another user, through every front-end.
//! 3. No commands: configuration and hooks that name programs are never run; `packserve shell`
//!    runs `--receive-pack` only for a push an `--allow-push` glob allows.
//! 4. A partial repository never fetches from its promisor.
//! 5. The front-ends never leave their root.
//!
//! (Existing suites cover more of 1 in detail: hidden_refs.rs, namespaces.rs,
//! want_policy.rs; and of 5 through real servers: ssh.rs, http.rs, daemon.rs.)

mod common;

use common::pktline;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------
// 1. Visibility

/// How a request reaches the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    V0,
    V1,
    V0Stateless,
    V2,
    V2Stateless,
}

const MODES: [Mode; 5] = [Mode::V0, Mode::V1, Mode::V0Stateless, Mode::V2, Mode::V2Stateless];

impl Mode {
    fn v2(self) -> bool {
        matches!(self, Mode::V2 | Mode::V2Stateless)
    }
    fn args(self) -> Vec<&'static str> {
        match self {
            Mode::V0Stateless | Mode::V2Stateless => vec!["--stateless-rpc"],
            _ => vec![],
        }
    }
    fn git_protocol(self) -> Option<&'static str> {
        match self {
            Mode::V1 => Some("version=1"),
            Mode::V2 | Mode::V2Stateless => Some("version=2"),
            _ => None,
        }
    }
}

/// What a request asks for besides its one want.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    /// `filter blob:none`
    Filter,
    /// `have <a commit only hidden refs reach>`
    HaveHidden,
}

/// The request bytes for one want.
fn fetch_request(mode: Mode, want: &str, kind: Kind, have: &str) -> Vec<u8> {
    let mut lines: Vec<String> = Vec::new();
    if mode.v2() {
        lines.extend(
            ["command=fetch", "object-format=sha1", "0001", "no-progress", "ofs-delta"].map(String::from),
        );
        lines.push(format!("want {want}"));
        if kind == Kind::Filter {
            lines.push("filter blob:none".into());
        }
        if kind == Kind::HaveHidden {
            lines.push(format!("have {have}"));
        }
        lines.push("done".into());
        lines.push("0000".into());
    } else {
        let filter = if kind == Kind::Filter { " filter" } else { "" };
        lines.push(format!("want {want} multi_ack_detailed side-band-64k ofs-delta no-progress{filter}"));
        if kind == Kind::Filter {
            lines.push("filter blob:none".into());
        }
        lines.push("0000".into());
        if kind == Kind::HaveHidden {
            lines.push(format!("have {have}"));
        }
        lines.push("done".into());
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    pktline::request(&refs)
}

/// The object ids of a pack, as `git index-pack` and `git show-index` see them.
fn pack_ids(sb: &Sandbox, pack: &[u8]) -> BTreeSet<String> {
    let base = sb.unique("received");
    let pack_path = base.with_extension("pack");
    std::fs::write(&pack_path, pack).unwrap();
    let idx = base.with_extension("idx");
    sb.git(sb.path(), &["index-pack", "-o", idx.to_str().unwrap(), pack_path.to_str().unwrap()]);
    let mut cmd = sb.command(Client::New.program());
    cmd.args(["show-index", "--object-format=sha1"]);
    let out = run(cmd, Some(&std::fs::read(&idx).unwrap())).assert_success();
    out.stdout_str().lines().filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned)).collect()
}

/// Runs a server with an environment; `None` for a refusal (non-zero exit, no pack), else the
/// ids of the pack it sent. A pack with a failure status, or success without a pack, fails.
fn fetch_ids(
    sb: &Sandbox,
    server: Server,
    env: &[(&str, &str)],
    repo: &Path,
    mode: Mode,
    stdin: &[u8],
) -> Option<BTreeSet<String>> {
    let mut cmd = sb.command(server.program());
    cmd.args(mode.args()).arg(repo);
    if let Some(p) = mode.git_protocol() {
        cmd.env("GIT_PROTOCOL", p);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(cmd, Some(stdin));
    let (pkts, _) = pktline::parse_prefix(&out.stdout);
    let r = pktline::parse_fetch_response(&out.stdout[..pkts.iter().map(pkt_len).sum::<usize>()]);
    if !out.status.success() {
        assert!(
            pktline::pack_header_count(&r.pack).is_none(),
            "{}: a pack with a failure status:\n{out}",
            server_name(server)
        );
        return None;
    }
    assert!(r.band3.is_empty(), "{}: band 3 with success:\n{out}", server_name(server));
    assert!(
        pktline::pack_header_count(&r.pack).is_some(),
        "{}: success without a pack:\n{out}",
        server_name(server)
    );
    Some(pack_ids(sb, &r.pack))
}

fn pkt_len(p: &pktline::Pkt) -> usize {
    match p {
        pktline::Pkt::Data(d) => d.len() + 4,
        _ => 4,
    }
}

/// A policy: configuration (and environment) of the served copy, and what it hides.
struct Policy {
    name: &'static str,
    fixture: &'static str,
    config: &'static [(&'static str, &'static str)],
    env: &'static [(&'static str, &'static str)],
    /// Substrings no advertisement may contain.
    hidden_names: &'static [&'static str],
    /// Revisions to want (besides a dangling commit and blob, added to every policy).
    targets: &'static [&'static str],
    /// A commit only hidden refs reach (for `have`).
    hidden_commit: &'static str,
}

const HIDDEN_TARGETS: &[&str] = &[
    "main",
    "main~3",
    "main:f1.txt",
    "refs/hidden/secret",
    "refs/hidden/secret~1",
    "refs/hidden/secret:secret.txt",
    "refs/heads/private/x",
    "refs/heads/private/x:private.txt",
];

const ALWAYS: &[(&str, &str)] = &[
    ("uploadpack.hideRefs", "refs/hidden"),
    ("uploadpack.allowFilter", "true"),
    ("transfer.advertiseObjectInfo", "true"),
];

fn policy(name: &str) -> Policy {
    let base = |name, config| Policy {
        name,
        fixture: "hidden",
        config,
        env: &[],
        hidden_names: &["refs/hidden"],
        targets: HIDDEN_TARGETS,
        hidden_commit: "refs/hidden/secret~1",
    };
    match name {
        "default" => base("default", &[]),
        "tip" => base("tip", &[("uploadpack.allowTipSHA1InWant", "true")]),
        "reachable" => base("reachable", &[("uploadpack.allowReachableSHA1InWant", "true")]),
        "any" => base("any", &[("uploadpack.allowAnySHA1InWant", "true")]),
        "negation" => Policy {
            hidden_names: &["refs/hidden", "refs/heads/feature", "refs/heads/private"],
            ..base(
                "negation",
                &[("transfer.hideRefs", "refs/heads"), ("transfer.hideRefs", "!refs/heads/main")],
            )
        },
        "namespace" => Policy {
            name: "namespace",
            fixture: "namespaces",
            config: &[],
            env: &[("GIT_NAMESPACE", "foo")],
            hidden_names: &["refs/namespaces", "secret"],
            targets: &[
                "refs/namespaces/foo/refs/heads/main",
                "refs/namespaces/foo/refs/heads/dev~1",
                "refs/namespaces/bar/refs/heads/secret",
                "refs/namespaces/bar/refs/heads/secret~1",
                "refs/heads/main",
                "refs/heads/main~1",
            ],
            hidden_commit: "refs/namespaces/bar/refs/heads/secret~1",
        },
        other => panic!("no policy {other}"),
    }
}

/// The served copy and what the test needs to know about it.
struct World {
    src: PathBuf,
    /// Everything the advertised refs reach.
    visible: BTreeSet<String>,
    /// Everything any ref reaches.
    all: BTreeSet<String>,
    /// Values of refs that are not advertised.
    hidden_tips: BTreeSet<String>,
    /// Targets as (revision, oid).
    targets: Vec<(String, String)>,
}

fn rev_list_objects(sb: &Sandbox, repo: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut a = vec!["rev-list", "--objects"];
    a.extend_from_slice(args);
    sb.git(repo, &a).lines().filter_map(|l| l.split(' ').next().map(str::to_owned)).collect()
}

/// What the object `oid` reaches (itself for a blob).
fn closure(sb: &Sandbox, repo: &Path, oid: &str) -> BTreeSet<String> {
    if sb.git(repo, &["cat-file", "-t", oid]).trim() == "blob" {
        return [oid.to_owned()].into();
    }
    rev_list_objects(sb, repo, &[oid])
}

fn world(sb: &Sandbox, p: &Policy) -> World {
    let src = sb.fixture_copy(p.fixture);
    for (k, v) in ALWAYS.iter().chain(p.config) {
        sb.config_add(&src, k, v);
    }
    let dangling = sb
        .sh(&src, r#"echo dangling | git commit-tree -p HEAD~1 "$(git rev-parse 'HEAD^{tree}')""#)
        .trim()
        .to_owned();
    let dangling_blob =
        sb.sh(&src, "echo 'only in a dangling blob' | git hash-object -w --stdin").trim().to_owned();
    // The advertised ref values, from git's own advertisement.
    let mut cmd = sb.command(Server::Reference.program());
    cmd.args(["--advertise-refs"]).arg(&src);
    for (k, v) in p.env {
        cmd.env(k, v);
    }
    let ad = pktline::parse_v0_advertisement(&run(cmd, None).assert_success().stdout);
    let advertised: BTreeSet<String> =
        ad.ref_lines.iter().filter_map(|l| l.split(' ').next().map(str::to_owned)).collect();
    let adv: Vec<&str> = advertised.iter().map(String::as_str).filter(|o| !o.starts_with("0000")).collect();
    let visible = if adv.is_empty() { BTreeSet::new() } else { rev_list_objects(sb, &src, &adv) };
    let all = rev_list_objects(sb, &src, &["--all"]);
    let hidden_tips = sb
        .git(&src, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(str::to_owned)
        .filter(|o| !advertised.contains(o))
        .collect();
    let mut targets: Vec<(String, String)> =
        p.targets.iter().map(|t| (t.to_string(), sb.rev_parse(&src, t))).collect();
    targets.push(("dangling commit".into(), dangling));
    targets.push(("dangling blob".into(), dangling_blob));
    World { src, visible, all, hidden_tips, targets }
}

/// packserve's v2 policy (docs/compatibility.md, "Which objects a client may ask for").
fn v2_allows(p: &Policy, w: &World, oid: &str) -> bool {
    let has = |k: &str| p.config.iter().any(|(key, _)| *key == k);
    w.visible.contains(oid)
        || has("uploadpack.allowAnySHA1InWant")
        || (has("uploadpack.allowTipSHA1InWant") && w.hidden_tips.contains(oid))
        || (has("uploadpack.allowReachableSHA1InWant") && w.all.contains(oid))
}

/// Runs every mode × target × kind cell of `policy`; returns how many cells were checked,
/// counting in `stricter` those where git serves a blob or tree that packserve refuses.
fn matrix(name: &str, stricter: &mut usize) -> usize {
    let p = policy(name);
    let sb = Sandbox::new(&format!("security-matrix-{name}"));
    let w = world(&sb, &p);
    let hidden_commit = sb.rev_parse(&w.src, p.hidden_commit);
    let hidden_only: BTreeSet<String> = w.all.difference(&w.visible).cloned().collect();
    let mut cells = 0;
    for mode in MODES {
        for (rev, oid) in &w.targets {
            for kind in [Kind::Plain, Kind::Filter, Kind::HaveHidden] {
                if kind == Kind::HaveHidden && !w.visible.contains(oid) {
                    continue;
                }
                let ctx = format!("{name} {mode:?} {kind:?} want {rev} ({oid})");
                let req = fetch_request(mode, oid, kind, &hidden_commit);
                let ours = fetch_ids(&sb, Server::UnderTest, p.env, &w.src, mode, &req);
                if mode.v2() {
                    // packserve's own (stricter than git's) v2 policy decides.
                    assert_eq!(ours.is_some(), v2_allows(&p, &w, oid), "{ctx}: served?");
                } else {
                    let git = fetch_ids(&sb, Server::Reference, p.env, &w.src, mode, &req);
                    match (&ours, &git) {
                        (Some(a), Some(b)) => assert!(
                            a == b,
                            "{ctx}: objects differ from git's: {}",
                            set_diff("packserve", a, "git", b)
                        ),
                        (Some(_), None) => panic!("{ctx}: packserve serves what git refuses"),
                        // DELIBERATE DIFFERENCE: git's reachability check (stateless v0,
                        // allowReachableSHA1InWant) only walks commits, so it lets any blob or
                        // tree through, unreachable and hidden ones included; packserve walks
                        // the trees and refuses them.
                        (None, Some(_)) => {
                            let kind = sb.git(&w.src, &["cat-file", "-t", oid]);
                            assert!(
                                kind.trim() != "commit" && !v2_allows(&p, &w, oid),
                                "{ctx}: packserve refuses what git serves"
                            );
                            *stricter += 1;
                        }
                        (None, None) => {}
                    }
                }
                if let Some(ids) = ours {
                    let reach = closure(&sb, &w.src, oid);
                    let extra: Vec<_> = ids.difference(&reach).collect();
                    assert!(extra.is_empty(), "{ctx}: sent objects the want does not reach: {extra:?}");
                    if w.visible.contains(oid) {
                        let leaked: Vec<_> = ids.intersection(&hidden_only).collect();
                        assert!(leaked.is_empty(), "{ctx}: sent hidden-only objects {leaked:?}");
                    }
                }
                cells += 1;
            }
        }
        advertisement_hides(&sb, &p, &w, mode);
        cells += 1;
    }
    cells
}

/// The advertisement (v0/v1 ref lines, v2 ls-refs asking for everything) names no hidden ref
/// and equals git's.
fn advertisement_hides(sb: &Sandbox, p: &Policy, w: &World, mode: Mode) {
    let (args, stdin): (Vec<&str>, Option<Vec<u8>>) = if mode.v2() {
        let req = pktline::request(&[
            "command=ls-refs",
            "object-format=sha1",
            "0001",
            "peel",
            "symrefs",
            "ref-prefix refs/",
            "ref-prefix HEAD",
            "0000",
        ]);
        (mode.args(), Some(req))
    } else {
        (vec!["--advertise-refs"], None)
    };
    let mut outs = Vec::new();
    for server in BOTH {
        let mut cmd = sb.command(server.program());
        cmd.args(&args).arg(&w.src);
        if let Some(proto) = mode.git_protocol() {
            cmd.env("GIT_PROTOCOL", proto);
        }
        for (k, v) in p.env {
            cmd.env(k, v);
        }
        let out = run(cmd, stdin.as_deref()).assert_success();
        let shown = pktline::render(&pktline::parse_all(&out.stdout));
        let refs_part: String =
            shown.lines().filter(|l| !l.contains("agent=")).collect::<Vec<_>>().join("\n") + "\n";
        for h in p.hidden_names {
            assert!(
                !refs_part.contains(h),
                "{} {mode:?}: advertisement names hidden {h:?}:\n{shown}",
                server_name(server)
            );
        }
        outs.push(refs_part);
    }
    assert_eq!(outs[1], outs[0], "{} {mode:?}: advertisement (left packserve, right git)", p.name);
}

macro_rules! matrix_tests {
    ($($name:ident),*) => {$(
        #[test]
        fn $name() {
            let mut stricter = 0;
            let cells = matrix(stringify!($name), &mut stricter);
            assert!(cells > 50, "only {cells} cells");
            eprintln!("{}: {cells} cells, {stricter} where packserve is stricter than git", stringify!($name));
        }
    )*};
}

mod visibility_matrix {
    use super::*;
    matrix_tests!(default, tip, reachable, any, negation, namespace);
}

// ---------------------------------------------------------------------------
// 1b. Hidden names in other parts of a request

/// A raw request to the server (stateless unless `mode` says otherwise) in a copy of
/// `hidden` with the `default` policy.
fn raw(sb: &Sandbox, server: Server, src: &Path, mode: Mode, req: &[&str]) -> Output {
    let mut cmd = sb.command(server.program());
    cmd.args(mode.args()).arg(src);
    if let Some(p) = mode.git_protocol() {
        cmd.env("GIT_PROTOCOL", p);
    }
    run(cmd, Some(&pktline::request(req)))
}

/// `deepen-not` naming a hidden ref: git resolves it among all refs (and so answers
/// differently for a hidden ref than for a missing one); packserve resolves it among the
/// visible refs only, so a hidden ref is as unknown as a missing one.
#[test]
fn deepen_not_cannot_name_a_hidden_ref() {
    let sb = Sandbox::new("security-deepen-not");
    let w = world(&sb, &policy("default"));
    let main = sb.rev_parse(&w.src, "main");
    for mode in [Mode::V2Stateless, Mode::V0Stateless] {
        let answers: Vec<(bool, String)> = ["refs/hidden/secret", "refs/hidden/nope"]
            .iter()
            .map(|name| {
                let deepen = format!("deepen-not {name}");
                let want = format!("want {main}");
                let want0 = format!("want {main} side-band-64k ofs-delta no-progress deepen-not");
                let req: Vec<&str> = if mode.v2() {
                    vec![
                        "command=fetch",
                        "object-format=sha1",
                        "0001",
                        "no-progress",
                        &want,
                        &deepen,
                        "done",
                        "0000",
                    ]
                } else {
                    vec![&want0, &deepen, "0000", "done"]
                };
                let out = raw(&sb, Server::UnderTest, &w.src, mode, &req);
                let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr_str());
                (out.status.success(), text.replace(name, "<name>"))
            })
            .collect();
        assert!(!answers[0].0, "{mode:?}: deepen-not of a hidden ref was accepted:\n{}", answers[0].1);
        assert!(answers[0].1.contains("ambiguous deepen-not"), "{mode:?}: {}", answers[0].1);
        assert_eq!(answers[0], answers[1], "{mode:?}: a hidden ref answers differently from a missing one");
    }
}

/// `filter sparse:oid=<rev>:<path>` and `sparse:oid=<blob id>`: the sparse blob is found only
/// through visible refs and must be fetchable; otherwise the answer is the one for a
/// missing blob (git would read any blob and resolve hidden refs here).
#[test]
fn sparse_filter_cannot_read_hidden_blobs() {
    let sb = Sandbox::new("security-sparse");
    let w = world(&sb, &policy("default"));
    sb.sh(&w.src, "git config uploadpackfilter.allow true");
    let main = sb.rev_parse(&w.src, "main");
    let hidden_blob = sb.rev_parse(&w.src, "refs/hidden/secret:secret.txt");
    let hidden_commit = sb.rev_parse(&w.src, "refs/hidden/secret");
    let answer = |spec: &str| {
        let want = format!("want {main}");
        let filter = format!("filter sparse:oid={spec}");
        let out = raw(
            &sb,
            Server::UnderTest,
            &w.src,
            Mode::V2Stateless,
            &["command=fetch", "object-format=sha1", "0001", "no-progress", &want, &filter, "done", "0000"],
        );
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr_str()).replace(spec, "<spec>"),
        )
    };
    // Control: a visible blob works.
    let visible = answer("main:f1.txt");
    assert!(visible.0, "sparse filter with a visible blob failed:\n{}", visible.1);
    let missing = answer("refs/hidden/nope:secret.txt");
    assert!(!missing.0 && missing.1.contains("unable to access sparse blob"), "{}", missing.1);
    for spec in [
        "refs/hidden/secret:secret.txt".to_owned(),
        "hidden/secret:secret.txt".to_owned(),
        format!("{hidden_commit}:secret.txt"),
        hidden_blob.clone(),
    ] {
        let got = answer(&spec);
        assert_eq!(got, missing, "sparse:oid={spec} answers differently from a missing blob");
    }
    let nope = answer("0123456789012345678901234567890123456789");
    assert_eq!(answer(&hidden_blob).1, nope.1, "a hidden blob id answers like a missing id");
}

/// `object-info` gives sizes only for objects a fetch could get: a hidden or dangling blob is
/// reported like a missing one.
#[test]
fn object_info_does_not_size_hidden_objects() {
    let sb = Sandbox::new("security-object-info");
    let w = world(&sb, &policy("default"));
    let visible = sb.rev_parse(&w.src, "main:f1.txt");
    let hidden = sb.rev_parse(&w.src, "refs/hidden/secret:secret.txt");
    let dangling = w.targets.iter().find(|(r, _)| r == "dangling blob").unwrap().1.clone();
    let req: Vec<String> =
        vec!["command=object-info".into(), "object-format=sha1".into(), "0001".into(), "size".into()]
            .into_iter()
            .chain([&visible, &hidden, &dangling].iter().map(|o| format!("oid {o}")))
            .chain(["0000".into()])
            .collect();
    let req: Vec<&str> = req.iter().map(String::as_str).collect();
    let out = raw(&sb, Server::UnderTest, &w.src, Mode::V2Stateless, &req).assert_success();
    let lines: Vec<String> = pktline::parse_all(&out.stdout).iter().filter_map(pktline::Pkt::text).collect();
    let size = sb.git(&w.src, &["cat-file", "-s", &visible]).trim().to_owned();
    assert_eq!(
        lines,
        vec!["size".to_owned(), format!("{visible} {size}"), format!("{hidden} "), format!("{dangling} ")]
    );
}

// ---------------------------------------------------------------------------
// 2. Ownership: git's safe.directory rules
//
// git 2.47 (and Debian's 2.39.5) check in `enter_repo` (setup.c `ensure_valid_ownership`)
// that the repository found belongs to the effective user (root: also `SUDO_UID`), unless
// `safe.directory` in the system, global or command-line configuration lists it. This holds
// for git-upload-pack, git-daemon and git-http-backend alike. The tests run as root and give
// the repositories to `nobody`.

const NOBODY: &str = "65534";

/// A bare clone of the `linear` fixture at `srv/<name>`, owned by another user.
fn foreign_bare(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.join("srv").join(name);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    sb.git(sb.path(), &["clone", "-q", "--bare", fixture("linear").to_str().unwrap(), dir.to_str().unwrap()]);
    chown(sb, &dir, NOBODY);
    dir
}

fn chown(sb: &Sandbox, path: &Path, uid: &str) {
    let mut cmd = sb.command("chown");
    cmd.arg("-R").arg("-h").arg(format!("{uid}:{uid}")).arg(path);
    run(cmd, None).assert_success();
}

/// `--advertise-refs <path>` through `server` with `env` (and `unset` removed): success?
fn advertises(sb: &Sandbox, server: Server, path: &Path, env: &[(&str, String)], unset: &[&str]) -> Output {
    let mut cmd = sb.command(server.program());
    cmd.arg("--advertise-refs").arg(path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    run(cmd, None)
}

/// `packserve http-backend` answering `GET /r.git/info/refs?service=git-upload-pack` below
/// `root` (export-all), with `env` added.
fn http_info_refs(sb: &Sandbox, root: &Path, env: &[(&str, String)]) -> Output {
    let mut cmd = sb.command(server_under_test());
    cmd.arg("http-backend")
        .env("REQUEST_METHOD", "GET")
        .env("GIT_PROJECT_ROOT", root)
        .env("PATH_INFO", "/r.git/info/refs")
        .env("QUERY_STRING", "service=git-upload-pack")
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .envs(env.iter().map(|(k, v)| (k, v)));
    run(cmd, None)
}

fn safe_env(value: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GIT_CONFIG_COUNT", "1".into()),
        ("GIT_CONFIG_KEY_0", "safe.directory".into()),
        ("GIT_CONFIG_VALUE_0", value.into()),
    ]
}

/// Both servers agree on every case, and the case's expectation holds.
#[track_caller]
fn ownership_like_git(
    sb: &Sandbox,
    what: &str,
    path: &Path,
    env: &[(&str, String)],
    unset: &[&str],
    served: bool,
) {
    let git = advertises(sb, Server::Reference, path, env, unset);
    assert_eq!(git.status.success(), served, "{what}: scenario is off, git-upload-pack:\n{git}");
    let ours = advertises(sb, Server::UnderTest, path, env, unset);
    assert_eq!(ours.status.success(), served, "{what}: packserve (git: served={served}):\n{ours}");
    if !served {
        assert_eq!(ours.code(), Some(128), "{what}: {ours}");
        assert!(ours.stdout.is_empty(), "{what}: said something on stdout:\n{ours}");
        assert!(
            ours.stderr_str().contains("fatal: detected dubious ownership in repository at"),
            "{what}: {ours}"
        );
    }
}

#[test]
fn ownership_escape_hatches_match_git() {
    let sb = Sandbox::new("security-owner");
    let repo = foreign_bare(&sb, "r.git");
    let r = repo.to_str().unwrap().to_owned();
    let srv = repo.parent().unwrap().to_str().unwrap().to_owned();
    let none: &[&str] = &[];
    ownership_like_git(&sb, "no exception", &repo, &[], none, false);
    ownership_like_git(&sb, "short name, no exception", &repo.with_extension(""), &[], none, false);
    ownership_like_git(&sb, "safe.directory=*", &repo, &safe_env("*"), none, true);
    let params = vec![("GIT_CONFIG_PARAMETERS", "'safe.directory'='*'".to_owned())];
    ownership_like_git(&sb, "git -c safe.directory=*", &repo, &params, none, true);
    ownership_like_git(&sb, "exact path", &repo, &safe_env(&r), none, true);
    ownership_like_git(&sb, "exact path with a slash", &repo, &safe_env(&format!("{r}/")), none, true);
    ownership_like_git(&sb, "parent/*", &repo, &safe_env(&format!("{srv}/*")), none, true);
    ownership_like_git(&sb, "parent without /*", &repo, &safe_env(&srv), none, false);
    ownership_like_git(&sb, "relative path", &repo, &safe_env("r.git"), none, false);
    ownership_like_git(&sb, "another directory", &repo, &safe_env(sb.home().to_str().unwrap()), none, false);
    let reset = vec![
        ("GIT_CONFIG_COUNT", "2".to_owned()),
        ("GIT_CONFIG_KEY_0", "safe.directory".into()),
        ("GIT_CONFIG_VALUE_0", "*".into()),
        ("GIT_CONFIG_KEY_1", "safe.directory".into()),
        ("GIT_CONFIG_VALUE_1", String::new()),
    ];
    ownership_like_git(&sb, "* then an empty value", &repo, &reset, none, false);
    // ~/ in a value is the home directory.
    let home_env = vec![
        ("HOME", srv.clone()),
        ("GIT_CONFIG_COUNT", "1".to_owned()),
        ("GIT_CONFIG_KEY_0", "safe.directory".into()),
        ("GIT_CONFIG_VALUE_0", "~/r.git".into()),
    ];
    ownership_like_git(&sb, "~/ path", &repo, &home_env, none, true);
    // Global and system configuration files count...
    let global = sb.join("global.gitconfig");
    std::fs::write(&global, format!("[safe]\n\tdirectory = {r}\n")).unwrap();
    let g = vec![("GIT_CONFIG_GLOBAL", global.to_str().unwrap().to_owned())];
    ownership_like_git(&sb, "GIT_CONFIG_GLOBAL file", &repo, &g, none, true);
    let home = sb.join("otherhome");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join(".gitconfig"), "[safe]\n\tdirectory = *\n").unwrap();
    let h = vec![("HOME", home.to_str().unwrap().to_owned())];
    ownership_like_git(&sb, "~/.gitconfig", &repo, &h, none, true);
    let inc = sb.join("included.gitconfig");
    std::fs::write(&inc, "[safe]\n\tdirectory = *\n").unwrap();
    std::fs::write(&global, format!("[include]\n\tpath = {}\n", inc.display())).unwrap();
    ownership_like_git(&sb, "global file including another", &repo, &g, none, true);
    let system = sb.join("system.gitconfig");
    std::fs::write(&system, "[safe]\n\tdirectory = *\n").unwrap();
    let s = vec![("GIT_CONFIG_SYSTEM", system.to_str().unwrap().to_owned())];
    ownership_like_git(&sb, "GIT_CONFIG_SYSTEM file", &repo, &s, &["GIT_CONFIG_NOSYSTEM"], true);
    ownership_like_git(&sb, "system file with GIT_CONFIG_NOSYSTEM", &repo, &s, none, false);
    // ...the repository's own configuration never does.
    let mut cmd = sb.command("sh");
    cmd.arg("-c").arg(format!("printf '[safe]\\n\\tdirectory = *\\n' >> {r}/config"));
    run(cmd, None).assert_success();
    ownership_like_git(&sb, "safe.directory in the repository's config", &repo, &[], none, false);
    // sudo: root also trusts SUDO_UID's repositories.
    ownership_like_git(&sb, "SUDO_UID of the owner", &repo, &[("SUDO_UID", NOBODY.into())], none, true);
    ownership_like_git(&sb, "SUDO_UID of someone else", &repo, &[("SUDO_UID", "4242".into())], none, false);
    // git's test knob makes even our own repository foreign.
    let own = sb.join("own.git");
    sb.git(sb.path(), &["clone", "-q", "--bare", fixture("linear").to_str().unwrap(), own.to_str().unwrap()]);
    let assume = vec![("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1".to_owned())];
    ownership_like_git(&sb, "own repository", &own, &[], none, true);
    ownership_like_git(&sb, "GIT_TEST_ASSUME_DIFFERENT_OWNER", &own, &assume, none, false);
    let mut both = assume.clone();
    both.extend(safe_env("*"));
    ownership_like_git(&sb, "GIT_TEST_ASSUME_DIFFERENT_OWNER and *", &own, &both, none, true);
}

/// Where git looks: the `.git` directory of a non-bare repository, a `.git` file and its
/// target, a symlink (`lstat`: the link's owner), `--strict`.
#[test]
fn ownership_of_what_git_finds() {
    let sb = Sandbox::new("security-owner-forms");
    let none: &[&str] = &[];
    // Non-bare, owned by nobody: the path git compares is <worktree>/.git.
    let work = sb.join("work");
    sb.git(sb.path(), &["clone", "-q", fixture("linear").to_str().unwrap(), work.to_str().unwrap()]);
    chown(&sb, &work, NOBODY);
    let w = work.to_str().unwrap();
    ownership_like_git(&sb, "non-bare", &work, &[], none, false);
    ownership_like_git(&sb, "non-bare, worktree listed", &work, &safe_env(w), none, false);
    ownership_like_git(&sb, "non-bare, .git listed", &work, &safe_env(&format!("{w}/.git")), none, true);
    // A root-owned symlink to a foreign repository: git checks the link itself.
    let repo = foreign_bare(&sb, "r.git");
    let link = sb.join("link.git");
    std::os::unix::fs::symlink(&repo, &link).unwrap();
    ownership_like_git(&sb, "root-owned symlink to a foreign repository", &link, &[], none, true);
    // A .git file (root's) pointing at a foreign git directory: both are checked.
    let gf = sb.join("gitfile");
    std::fs::create_dir_all(&gf).unwrap();
    std::fs::write(gf.join(".git"), format!("gitdir: {}\n", repo.display())).unwrap();
    ownership_like_git(&sb, ".git file to a foreign directory", &gf, &[], none, false);
    ownership_like_git(
        &sb,
        ".git file, target listed",
        &gf,
        &safe_env(&format!("{}/.git", gf.display())),
        none,
        true,
    );
    // --strict checks the path as given.
    let mut cmd = sb.command(Server::UnderTest.program());
    cmd.args(["--strict", "--advertise-refs"]).arg(&repo);
    let out = run(cmd, None);
    assert!(!out.status.success() && out.stderr_str().contains("dubious ownership"), "{out}");
    let mut cmd = sb.command(Server::UnderTest.program());
    cmd.args(["--strict", "--advertise-refs"]).arg(&repo).envs(safe_env("*"));
    run(cmd, None).assert_success();
}

/// The front-ends apply the same rules: a foreign repository is refused (shell: git's
/// message; inetd: git-daemon's ERR line; http-backend: 500 as git-http-backend answers)
/// and served with `safe.directory`.
#[test]
fn ownership_through_the_front_ends() {
    let sb = Sandbox::new("security-owner-frontends");
    let repo = foreign_bare(&sb, "r.git");
    std::fs::write(repo.join("git-daemon-export-ok"), "").unwrap();
    let root = repo.parent().unwrap().to_path_buf();
    for hatch in [false, true] {
        let env: Vec<(&str, String)> =
            if hatch { safe_env(&format!("{}/*", root.display())) } else { vec![] };
        // shell
        let mut cmd = sb.command(server_under_test());
        cmd.args(["shell", "--root"]).arg(&root).env("SSH_ORIGINAL_COMMAND", "git-upload-pack '/r.git'");
        cmd.env("GIT_PROTOCOL", "version=2").envs(env.iter().map(|(k, v)| (k, v)));
        let out = run(cmd, Some(b"0000"));
        assert_eq!(out.status.success(), hatch, "shell, safe.directory={hatch}:\n{out}");
        if !hatch {
            assert!(
                out.stderr_str().contains("detected dubious ownership in repository at '/r.git'"),
                "{out}"
            );
        }
        // inetd
        let mut cmd = sb.command(server_under_test());
        cmd.args(["inetd", "--informative-errors", "--base-path"]).arg(&root);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let line = pktline::data("git-upload-pack /r.git\0host=localhost\0");
        let out = run(cmd, Some(&[&line[..], b"0000"].concat()));
        let text = out.stdout_str();
        if hatch {
            assert!(out.status.success() && text.contains("refs/heads/main"), "inetd:\n{out}");
        } else {
            assert!(
                !out.status.success() && text.contains("ERR no such repository: /r.git"),
                "inetd:\n{out}"
            );
        }
        // http-backend
        let out = http_info_refs(&sb, &root, &env);
        let text = out.stdout_str();
        if hatch {
            assert!(text.contains("refs/heads/main") && !text.starts_with("Status:"), "http:\n{out}");
        } else {
            assert!(text.starts_with("Status: 500"), "http:\n{out}");
            assert!(!text.contains("refs/heads"), "http:\n{out}");
        }
    }
}

// ---------------------------------------------------------------------------
// 3. No commands

/// Every configuration key and environment variable that makes some git program run a
/// command, each naming its own script that leaves a marker when run.
const COMMAND_KEYS: &[&str] = &[
    "core.fsmonitor",
    "core.sshCommand",
    "core.pager",
    "core.editor",
    "core.askPass",
    "core.gitProxy",
    "sequence.editor",
    "gpg.program",
    "credential.helper",
    "uploadpack.packObjectsHook",
    "uploadarchive.allowUnreachable",
    "pager.upload-pack",
    "alias.upload-pack",
    "alias.pack-objects",
    "filter.evil.process",
    "filter.evil.clean",
    "filter.evil.smudge",
    "diff.evil.textconv",
    "diff.evil.command",
    "merge.evil.driver",
    "remote.origin.uploadpack",
    "remote.origin.receivepack",
    "remote.origin.proxy",
];

const COMMAND_ENV: &[&str] = &[
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "SSH_ASKPASS",
];

const HOOKS: &[&str] = &[
    "pre-upload-pack",
    "post-upload-pack",
    "pre-receive",
    "post-receive",
    "update",
    "post-update",
    "reference-transaction",
    "post-checkout",
    "pre-auto-gc",
    "fsmonitor-watchman",
    "push-to-checkout",
];

/// A script that records being run in `markers/<name>`.
fn marker_script(sb: &Sandbox, name: &str) -> PathBuf {
    let bin = sb.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(name.replace('/', "_"));
    let markers = sb.join("markers");
    std::fs::create_dir_all(&markers).unwrap();
    let body =
        format!("#!/bin/sh\necho \"$0 $*\" >> '{}/{}'\ncat >/dev/null\nexit 1\n", markers.display(), name);
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "cat >\"$1\" && chmod 755 \"$1\"", "sh"]).arg(&path);
    run(cmd, Some(body.as_bytes())).assert_success();
    path
}

fn markers(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sb.join("markers"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A non-bare repository whose configuration, hooks and attributes name marker scripts, and
/// the environment (with a protected `uploadpack.packObjectsHook`) to serve it with.
fn booby_trapped(sb: &Sandbox) -> (PathBuf, Vec<(String, String)>) {
    let repo = sb.join("srv/trap");
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    sb.git(sb.path(), &["clone", "-q", fixture("linear").to_str().unwrap(), repo.to_str().unwrap()]);
    for key in COMMAND_KEYS {
        let script = marker_script(sb, key);
        let value = match *key {
            "credential.helper" | "alias.upload-pack" | "alias.pack-objects" => {
                format!("!{}", script.display())
            }
            "uploadarchive.allowUnreachable" => "true".into(),
            _ => script.display().to_string(),
        };
        sb.config(&repo, key, &value);
    }
    sb.config(&repo, "remote.origin.url", &format!("ext::{} %S", marker_script(sb, "ext-url").display()));
    sb.config(&repo, "remote.origin.promisor", "true");
    sb.config(&repo, "protocol.ext.allow", "always");
    sb.config(&repo, "core.hooksPath", sb.join("hooks").to_str().unwrap());
    std::fs::create_dir_all(sb.join("hooks")).unwrap();
    for hook in HOOKS {
        let script = marker_script(sb, &format!("hook-{hook}"));
        std::fs::copy(&script, sb.join("hooks").join(hook)).unwrap();
        std::fs::copy(&script, repo.join(".git/hooks").join(hook)).unwrap();
    }
    std::fs::write(repo.join(".gitattributes"), "* filter=evil diff=evil merge=evil\n").unwrap();
    std::fs::write(repo.join(".git/info/attributes"), "* filter=evil diff=evil merge=evil\n").unwrap();
    let mut env: Vec<(String, String)> =
        COMMAND_ENV.iter().map(|k| (k.to_string(), marker_script(sb, k).display().to_string())).collect();
    let hook = marker_script(sb, "protected-packObjectsHook");
    env.push(("GIT_CONFIG_PARAMETERS".into(), format!("'uploadpack.packObjectsHook'='{}'", hook.display())));
    env.push(("GIT_TRACE_PACKET".into(), "0".into()));
    (repo, env)
}

/// Clones through every front-end of a repository whose configuration, hooks and environment
/// name commands: none runs. The control at the end shows that git's own upload-pack runs
/// the protected `uploadpack.packObjectsHook`, so the markers do work.
#[test]
fn no_command_from_configuration_hooks_or_environment_runs() {
    let sb = Sandbox::new("security-no-commands");
    let (repo, env) = booby_trapped(&sb);
    let root = repo.parent().unwrap().to_path_buf();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // git clients through the plain form and the ssh forced command.
    let plain = sb.wrapper(Server::UnderTest, &env_refs, "");
    let shell = sb.wrapper(
        Server::UnderTest,
        &env_refs,
        &format!("SSH_ORIGINAL_COMMAND=\"git-upload-pack '$1'\"; export SSH_ORIGINAL_COMMAND; set -- shell --root {}", root.display()),
    );
    let mut clones = 0;
    for (what, up) in [("plain", &plain), ("shell", &shell)] {
        for (client, protocol) in [(Client::New, 0), (Client::New, 2), (Client::Old, 2)] {
            for extra in [&[][..], &["--depth=1"][..], &["--filter=blob:none"][..], &["--mirror"][..]] {
                let dest = sb.unique("clone");
                let t = sb.try_clone_via(client, protocol, up, &repo, &dest, extra);
                let ok = t.output.status.success();
                // Filters are not enabled on this repository: git's client then clones fully.
                assert!(ok, "{what} {} {extra:?}:\n{}", label(client, protocol), t.output);
                clones += 1;
                assert_eq!(
                    markers(&sb),
                    Vec::<String>::new(),
                    "{what} {} {extra:?}: commands ran",
                    label(client, protocol)
                );
            }
        }
    }
    assert_eq!(clones, 24);
    // inetd and http-backend, raw v0 and v2 requests.
    let main = sb.rev_parse(&repo, "main");
    let v2 = pktline::request(&[
        "command=ls-refs",
        "object-format=sha1",
        "0000",
        "command=fetch",
        "object-format=sha1",
        "0001",
        &format!("want {main}"),
        "done",
        "0000",
    ]);
    let v0 = pktline::request(&[&format!("want {main} side-band-64k ofs-delta"), "0000", "done"]);
    // Stateless HTTP carries one command per request.
    let fetch_only = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        &format!("want {main}"),
        "done",
        "0000",
    ]);
    for (proto, body, http_body) in [("version=2", &v2, &fetch_only), ("", &v0, &v0)] {
        let mut cmd = sb.command(server_under_test());
        cmd.args(["inetd", "--export-all", "--base-path"]).arg(&root).envs(env.iter().map(|(k, v)| (k, v)));
        let line = pktline::data(format!("git-upload-pack /trap\0host=localhost\0\0{proto}\0"));
        let out = run(cmd, Some(&[&line[..], body].concat()));
        assert!(out.status.success() && out.stdout.windows(4).any(|w| w == b"PACK"), "inetd {proto}:\n{out}");
        let mut cmd = sb.command(server_under_test());
        cmd.arg("http-backend")
            .env("REQUEST_METHOD", "POST")
            .env("GIT_PROJECT_ROOT", &root)
            .env("PATH_INFO", "/trap/git-upload-pack")
            .env("CONTENT_TYPE", "application/x-git-upload-pack-request")
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GIT_PROTOCOL", proto)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let out = run(cmd, Some(http_body));
        assert!(out.status.success() && out.stdout.windows(4).any(|w| w == b"PACK"), "http {proto}:\n{out}");
    }
    assert_eq!(markers(&sb), Vec::<String>::new(), "inetd/http-backend: commands ran");

    // Control: git's upload-pack runs the protected packObjectsHook (and fails with it).
    let git = sb.wrapper(Server::Reference, &env_refs, "");
    let t = sb.try_clone_via(Client::New, 2, &git, &repo, &sb.unique("control"), &[]);
    assert!(!t.output.status.success(), "control: git's clone should fail with the failing hook");
    assert!(markers(&sb).contains(&"protected-packObjectsHook".to_owned()), "control: {:?}", markers(&sb));
}

/// The one exception to "no program is ever run": `packserve shell` hands a push to the
/// program named by `--receive-pack`, and only for a repository an `--allow-push` glob matches
/// (after the same root, `--allow` and ownership rules as fetches). Every other combination
/// runs nothing; the control shows that the opted-in push does run it, with the repository.
#[test]
fn receive_pack_runs_only_when_opted_in() {
    let sb = Sandbox::new("security-receive-pack");
    let root = sb.join("srv");
    std::fs::create_dir_all(&root).unwrap();
    let repo = root.join("trap.git");
    sb.git(
        sb.path(),
        &["clone", "-q", "--bare", fixture("linear").to_str().unwrap(), repo.to_str().unwrap()],
    );
    let receive_pack = marker_script(&sb, "receive-pack");
    let rp = receive_pack.to_str().unwrap();
    let shell = |flags: &[&str], command: &str| -> Output {
        let mut cmd = sb.command(server_under_test());
        cmd.args(["shell", "--root"]).arg(&root).args(flags).env("SSH_ORIGINAL_COMMAND", command);
        run(cmd, Some(b"0000"))
    };
    let push = "git-receive-pack '/trap.git'";
    for (flags, command, says) in [
        (&[][..], push, "packserve serves fetches only"),
        (&["--receive-pack", rp][..], push, "push access denied"),
        (&["--receive-pack", rp, "--allow-push", "other*"][..], push, "push access denied"),
        (&["--receive-pack", rp, "--allow-push", "*", "--allow", "other*"][..], push, "access denied"),
        (
            &["--receive-pack", rp, "--allow-push", "**"][..],
            "git-receive-pack '/../srv/trap.git'",
            "outside the served root",
        ),
        (
            &["--receive-pack", rp, "--allow-push", "**"][..],
            "git-upload-archive '/trap.git'",
            "not available here",
        ),
        (
            &["--receive-pack", rp, "--allow-push", "**"][..],
            "sh -c 'git-receive-pack /trap.git'",
            "unrecognized command",
        ),
    ] {
        let out = shell(flags, command);
        assert_eq!(out.code(), Some(128), "{flags:?} {command}: {out}");
        assert!(out.stderr_str().contains(says), "{flags:?} {command}: {out}");
        assert_eq!(markers(&sb), Vec::<String>::new(), "{flags:?} {command}: receive-pack ran");
    }
    // Fetches from a key that may push are packserve's own.
    let out = shell(&["--receive-pack", rp, "--allow-push", "**"], "git-upload-pack '/trap.git'");
    assert!(out.status.success() && out.stdout_str().contains("refs/heads/"), "{out}");
    assert_eq!(markers(&sb), Vec::<String>::new(), "a fetch ran receive-pack");
    // Control: the opted-in push runs exactly that program, on the repository found.
    let out = shell(&["--receive-pack", rp, "--allow-push", "trap.git"], push);
    assert_eq!(out.code(), Some(1), "the marker's exit status: {out}");
    assert_eq!(markers(&sb), vec!["receive-pack".to_owned()]);
    let ran = std::fs::read_to_string(sb.join("markers/receive-pack")).unwrap();
    assert_eq!(ran.trim(), format!("{} {}", receive_pack.display(), repo.canonicalize().unwrap().display()));
}

// ---------------------------------------------------------------------------
// 4. A partial repository never fetches from its promisor

/// Serving from a `--filter=blob:none` clone whose promisor remote is reached through an
/// upload-pack that records being called: a full clone fails, a missing blob asked by id is an
/// error, a blob-less clone works, and the promisor is never called. The control shows that
/// git's own upload-pack, told `GIT_NO_LAZY_FETCH=0`, does call it.
#[test]
fn partial_repository_never_fetches_from_its_promisor() {
    let sb = Sandbox::new("security-promisor");
    let src = sb.join("src.git");
    sb.git(sb.path(), &["clone", "-q", "--bare", fixture("linear").to_str().unwrap(), src.to_str().unwrap()]);
    sb.config(&src, "uploadpack.allowFilter", "true");
    sb.config(&src, "uploadpack.allowAnySHA1InWant", "true");
    let called = sb.join("promisor-called");
    let spy = sb.wrapper(Server::Reference, &[], &format!("echo called >> '{}'", called.display()));
    let partial = sb.join("partial.git");
    let t = sb.try_clone_via(Client::New, 2, &spy, &src, &partial, &["--bare", "--filter=blob:none"]);
    assert!(t.output.status.success(), "{}", t.output);
    sb.config(&partial, "remote.origin.uploadpack", spy.to_str().unwrap());
    sb.config(&partial, "uploadpack.allowFilter", "true");
    sb.config(&partial, "uploadpack.allowAnySHA1InWant", "true");
    std::fs::remove_file(&called).unwrap();
    let listing = sb.reachable_listing(&partial);
    let missing_blob = listing
        .iter()
        .find_map(|l| l.strip_prefix('?'))
        .expect("scenario: the partial clone misses no blob")
        .to_owned();

    for (client, protocol) in [(Client::New, 0), (Client::New, 2), (Client::Old, 2)] {
        let ctx = label(client, protocol);
        let t = sb.try_clone_via(
            client,
            protocol,
            &Server::UnderTest.program(),
            &partial,
            &sb.unique("full"),
            &[],
        );
        assert!(
            !t.output.status.success(),
            "{ctx}: a full clone of a partial repository succeeded:\n{}",
            t.output
        );
        assert!(!called.exists(), "{ctx}: full clone: the promisor was called");
        let dest = sb.unique("blobless");
        let t = sb.try_clone_via(
            client,
            protocol,
            &Server::UnderTest.program(),
            &partial,
            &dest,
            &["--bare", "--filter=blob:none"],
        );
        assert!(t.output.status.success(), "{ctx}: a blob-less clone failed:\n{}", t.output);
        assert!(!called.exists(), "{ctx}: blob-less clone: the promisor was called");
    }
    for mode in [Mode::V2Stateless, Mode::V0Stateless] {
        let req = fetch_request(mode, &missing_blob, Kind::Plain, "");
        let mut cmd = sb.command(Server::UnderTest.program());
        cmd.args(mode.args()).arg(&partial);
        if let Some(p) = mode.git_protocol() {
            cmd.env("GIT_PROTOCOL", p);
        }
        let out = run(cmd, Some(&req));
        assert!(!out.status.success(), "{mode:?}: want of a missing blob succeeded:\n{out}");
        assert!(!out.stdout.windows(4).any(|w| w == b"PACK"), "{mode:?}: a pack was sent:\n{out}");
        assert!(!called.exists(), "{mode:?}: the promisor was called");
    }

    // Control: git's upload-pack with lazy fetches allowed calls the promisor.
    let lazy = sb.wrapper(Server::Reference, &[("GIT_NO_LAZY_FETCH", "0")], "");
    let _ = sb.try_clone_via(Client::New, 2, &lazy, &partial, &sb.unique("control"), &[]);
    assert!(called.exists(), "control: git's upload-pack did not call the promisor");
}

// ---------------------------------------------------------------------------
// 5. The front-ends stay in their root

/// `srv/` with `main.git` (exported); `outside.git` next to it; `srv/escape.git` a symlink
/// to it; `srv/linkdir` a symlink to a directory outside holding `r.git`; `srv/gitfile/.git`
/// a `.git` file pointing outside.
fn confinement_tree(sb: &Sandbox) -> PathBuf {
    sb.sh(
        sb.path(),
        r#"
        mk() { git init -q --bare "$1"; ( cd "$1" && many_commits refs/heads/main 2 ); touch "$1/git-daemon-export-ok"; }
        mkdir -p srv elsewhere
        mk srv/main.git
        mk outside.git
        mk elsewhere/r.git
        ln -s ../outside.git srv/escape.git
        ln -s ../elsewhere srv/linkdir
        mkdir -p srv/gitfile
        echo "gitdir: $PWD/outside.git" > srv/gitfile/.git
        mkdir -p 'srv/%2e%2e'
        "#,
    );
    sb.join("srv")
}

fn long_path() -> String {
    format!("/{}/main.git", "a".repeat(5000))
}

#[test]
fn shell_stays_in_its_root() {
    let sb = Sandbox::new("security-root-shell");
    let root = confinement_tree(&sb);
    let outside = sb.join("outside.git");
    let shell = |path: &str| {
        let quoted = format!("'{}'", path.replace('\'', r"'\''"));
        let mut cmd = sb.command(server_under_test());
        cmd.args(["shell", "--root"])
            .arg(&root)
            .env("SSH_ORIGINAL_COMMAND", format!("git-upload-pack {quoted}"));
        run(cmd, Some(b"0000"))
    };
    for ok in ["/main.git", "main", "~/main.git", &format!("{}/main.git", root.display())] {
        let out = shell(ok);
        assert!(out.status.success() && out.stdout_str().contains("refs/heads/main"), "{ok}:\n{out}");
    }
    let long = long_path();
    let outside_abs = outside.to_str().unwrap().to_owned();
    for bad in [
        "../outside.git",
        "/main.git/../../outside.git",
        "~/../outside.git",
        "~root/../../outside.git",
        "/escape.git",
        "escape",
        "linkdir/r.git",
        "gitfile",
        "/%2e%2e/outside.git",
        "%2e%2e/outside.git",
        "%252e%252e/outside.git",
        "..\\outside.git",
        "main.git\\..\\..\\outside.git",
        "//outside.git",
        &outside_abs,
        "~root",
        &long,
        "-/../outside.git",
        " ../outside.git",
    ] {
        let out = shell(bad);
        assert_eq!(out.code(), Some(128), "{bad:?}:\n{out}");
        assert!(out.stdout.is_empty(), "{bad:?}: answered on stdout:\n{out}");
        assert_eq!(out.stderr_str().trim().lines().count(), 1, "{bad:?}: one line on stderr:\n{out}");
        assert!(!out.stderr_str().contains("panicked"), "{bad:?}:\n{out}");
    }
}

/// inetd against `git daemon --inetd` with the same options: served or refused alike (git
/// follows symlinks and `.git` files below the base path too).
#[test]
fn inetd_stays_in_its_base_path_like_git_daemon() {
    let sb = Sandbox::new("security-root-inetd");
    let root = confinement_tree(&sb);
    let ask = |ours: bool, line: &[u8]| {
        let mut cmd = if ours {
            let mut c = sb.command(server_under_test());
            c.arg("inetd");
            c
        } else {
            let mut c = sb.command(Client::New.program());
            c.args(["daemon", "--inetd"]);
            c
        };
        cmd.arg("--export-all").arg("--informative-errors").arg(format!("--base-path={}", root.display()));
        let out = run(cmd, Some(&[&pktline::data(line)[..], b"0000"].concat()));
        let served = out.stdout_str().contains("refs/heads/main");
        (served, out)
    };
    let long = long_path();
    for path in [
        "/main.git",
        "/main",
        "/escape.git",
        "/gitfile",
        "/linkdir/r.git",
        "/../outside.git",
        "/main.git/../../outside.git",
        "//outside.git",
        "/./main.git",
        "main.git",
        "~root/main.git",
        "/%2e%2e/outside.git",
        "/%2e%2e",
        "/..\\outside.git",
        &long,
    ] {
        let line = format!("git-upload-pack {path}\0host=localhost\0");
        let (ours, o) = ask(true, line.as_bytes());
        let (git, g) = ask(false, line.as_bytes());
        assert_eq!(ours, git, "{path:?}: served? packserve {ours}, git daemon {git}\n{o}\n{g}");
        assert!(!o.stderr_str().contains("panicked"), "{o}");
    }
    // A NUL ends the path: what follows is not part of it.
    let (ours, o) = ask(true, b"git-upload-pack /main.git\0/../../outside.git\0");
    assert!(!ours && o.stdout_str().contains("ERR"), "{o}");
    let (ours, _) = ask(true, b"git-upload-pack /escape.git\0host=x\0");
    assert!(ours, "symlinks below the base path are followed, as git-daemon does");
}

/// http-backend against `git http-backend` (with `safe.directory=*`): the same status for
/// every `PATH_INFO` trick. PATH_INFO arrives decoded from the web server; neither decodes it
/// again.
#[test]
fn http_backend_stays_in_its_project_root_like_git() {
    let sb = Sandbox::new("security-root-http");
    let root = confinement_tree(&sb);
    let status = |ours: bool, path_info: &str, translated: bool| {
        let mut cmd = sb.command(if ours {
            server_under_test()
        } else {
            reference_upload_pack().with_file_name("git-http-backend")
        });
        if ours {
            cmd.arg("http-backend");
        }
        cmd.env("REQUEST_METHOD", "GET")
            .env("PATH_INFO", path_info)
            .env("QUERY_STRING", "service=git-upload-pack")
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .envs(safe_env("*"));
        if translated {
            cmd.env("PATH_TRANSLATED", format!("{}{path_info}", root.display()));
        } else {
            cmd.env("GIT_PROJECT_ROOT", &root);
        }
        let out = run(cmd, None);
        let text = out.stdout_str();
        let code = text.strip_prefix("Status: ").map(|s| s[..3].to_owned()).unwrap_or_else(|| "200".into());
        (code, out)
    };
    // A repository beside the root, named as the root plus `~beside.git`: a PATH_INFO without
    // its leading `/` must not reach it (git joins the two with a `/`).
    let beside = format!("{}~beside.git", root.display());
    sb.git(sb.path(), &["clone", "-q", "--bare", root.join("main.git").to_str().unwrap(), &beside]);
    let long = format!("{}/info/refs", long_path());
    let cases = [
        "~beside.git/info/refs",
        "/main.git/info/refs",
        "/escape.git/info/refs",
        "/gitfile/info/refs",
        "/../outside.git/info/refs",
        "/main.git/../../outside.git/info/refs",
        "//outside.git/info/refs",
        "/./main.git/info/refs",
        "/%2e%2e/outside.git/info/refs",
        "/%252e%252e/outside.git/info/refs",
        "/..%2foutside.git/info/refs",
        "/..\\outside.git/info/refs",
        "/main.git%00/info/refs",
        "/~root/main.git/info/refs",
        long.as_str(),
    ];
    for translated in [false, true] {
        for path in cases {
            let (ours, o) = status(true, path, translated);
            let (git, g) = status(false, path, translated);
            let ctx =
                format!("{path:?} (PATH_TRANSLATED: {translated}): packserve {ours}, git {git}\n{o}\n{g}");
            assert!(!(ours == "200" && git != "200"), "packserve serves what git refuses: {ctx}");
            if ours != "200" && git == "200" {
                // DELIBERATE DIFFERENCE: with PATH_TRANSLATED (no GIT_PROJECT_ROOT) git takes
                // the web server's translation as it is; packserve still refuses `..`.
                assert!(translated && path.contains("/../"), "packserve refuses what git serves: {ctx}");
            }
            if ours != "200" {
                assert!(!o.stdout_str().contains("refs/heads/main"), "{path:?}: {o}");
            }
        }
    }
}

/// A repository owned by someone else and allowed by `safe.directory` is served in full: a
/// loose object larger than 16 MiB (gix's allocation cap for repositories it only half
/// trusts) still comes through.
#[test]
fn a_trusted_foreign_repository_serves_big_objects() {
    let sb = Sandbox::new("security-owner-big");
    let work = sb.join("work");
    sb.git(sb.path(), &["init", "-q", work.to_str().unwrap()]);
    sb.sh(&work, "(yes abcdefghijklmnopqrstuvwxyz || true) | head -c 17000000 > big.txt && git add big.txt && tick && git commit -q -m big");
    let repo = sb.join("srv/big.git");
    sb.git(sb.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), repo.to_str().unwrap()]);
    sb.sh(&repo, "test \"$(git cat-file -s HEAD:big.txt)\" -gt 16777216 && test -z \"$(find objects/pack -name '*.pack')\"");
    chown(&sb, &repo, NOBODY);
    let env = safe_env("*");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let up = sb.wrapper(Server::UnderTest, &env, "");
    for protocol in [0, 2] {
        let dest = sb.unique("clone");
        let t = sb.try_clone_via(Client::New, protocol, &up, &repo, &dest, &[]);
        assert!(t.output.status.success(), "v{protocol}:\n{}", t.output);
        sb.fsck(&dest);
    }
}

/// The repository's own refusals hold for a foreign repository allowed by `safe.directory`:
/// `daemon.uploadpack=false` (inetd), `http.uploadpack=false` (http-backend) and its
/// `uploadpack.hideRefs`.
#[test]
fn a_trusted_foreign_repository_keeps_its_own_refusals() {
    let sb = Sandbox::new("security-owner-config");
    let repo = foreign_bare(&sb, "r.git");
    let root = repo.parent().unwrap().to_path_buf();
    let mut cmd = sb.command("sh");
    cmd.arg("-c").arg(format!(
        "printf '[daemon]\\n\\tuploadpack = false\\n[http]\\n\\tuploadpack = false\\n[uploadpack]\\n\\thideRefs = refs/tags\\n' >> {}/config",
        repo.display()
    ));
    run(cmd, None).assert_success();
    let env = safe_env("*");
    let mut cmd = sb.command(server_under_test());
    cmd.args(["inetd", "--export-all", "--informative-errors", "--base-path"])
        .arg(&root)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let out = run(cmd, Some(&pktline::data("git-upload-pack /r.git\0host=x\0")));
    assert!(out.stdout_str().contains("ERR service not enabled"), "inetd:\n{out}");
    let out = http_info_refs(&sb, &root, &env);
    assert!(out.stdout_str().starts_with("Status: 403"), "http:\n{out}");
    let out = advertises(&sb, Server::UnderTest, &repo, &env, &[]).assert_success();
    assert!(!out.stdout_str().contains("refs/tags"), "hideRefs ignored:\n{out}");
    assert!(out.stdout_str().contains("refs/heads/main"), "{out}");
}

/// `packserve shell`: `~..` and `~.` are no user names. A path through them is refused with
/// the same message whether or not a repository exists there, so that the answer does not
/// tell which paths beside the root are repositories.
#[test]
fn shell_refuses_dot_user_names_alike() {
    let sb = Sandbox::new("security-shell-dots");
    let root = confinement_tree(&sb);
    let ask = |path: &str| {
        let mut cmd = sb.command(server_under_test());
        cmd.args(["shell", "--root"])
            .arg(&root)
            .env("SSH_ORIGINAL_COMMAND", format!("git-upload-pack '{path}'"))
            .envs(safe_env("*"));
        let out = run(cmd, Some(b"0000"));
        assert!(!out.status.success(), "{path}: served\n{out}");
        assert!(!out.stdout_str().contains("refs/heads/main"), "{path}: {out}");
        out.stderr_str().replace(path, "<path>")
    };
    // srv/../outside.git is a repository, srv/../nothing.git is not.
    let exists = ask("~../outside.git");
    let missing = ask("~../nothing.git");
    assert_eq!(exists, missing, "the messages tell a repository beside the root from nothing");
    assert!(exists.contains("outside the served root"), "{exists}");
    assert_eq!(ask("~./main.git"), exists);
}
