//! Entry points for the fuzz targets in `fuzz/` (one function per target, each taking the
//! fuzzer's bytes as a client would send them) and for `tests/fuzz_corpus.rs`, which replays
//! every committed corpus file through the same functions in a plain `cargo test`.
//!
//! Not part of the supported API. Every function must return for every input without a panic
//! or a hang; errors are the expected outcome for most inputs and are ignored.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gix::bstr::BString;

use crate::frontend::{http_backend, inetd, request, shell, upload_pack};
use crate::select::filter::{Filter, SparsePatterns};
use crate::session::{self, caps::ClientCaps, v0, v2, DeepenArgs, Settings, Summary, Version};
use crate::wire::pktline::{Packet, PktReader};

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: &[&str] =
    &["pktline", "v0_request", "v2_request", "filter", "shell", "daemon", "http", "session"];

/// Runs the target `name` on `data`; `false` if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "pktline" => pktline(data),
        "v0_request" => v0_request(data),
        "v2_request" => v2_request(data),
        "filter" => filter(data),
        "shell" => shell(data),
        "daemon" => daemon(data),
        "http" => http(data),
        "session" => session(data),
        _ => return false,
    }
    true
}

const HASHES: [gix::hash::Kind; 2] = [gix::hash::Kind::Sha1, gix::hash::Kind::Sha256];

/// pkt-line framing: reads packets until the end or the first error.
pub fn pktline(data: &[u8]) {
    let mut r = PktReader::new(data);
    while let Ok(Some(p)) = r.read() {
        if let Packet::Data(_) = p {
            let _ = p.line();
        }
    }
}

/// v0/v1 requests: `want` (with capability lists), `shallow`, `deepen*` and `filter` lines up
/// to the flush, for both hash kinds, then each line again through the single-line parsers.
pub fn v0_request(data: &[u8]) {
    for hash in HASHES {
        let mut r = PktReader::new(data);
        if let Ok(Some(needs)) = v0::receive_needs(&mut r, hash) {
            if let Some(spec) = &needs.filter {
                let _ = Filter::parse(spec);
            }
        }
    }
    let mut r = PktReader::new(data);
    while let Ok(Some(p)) = r.read() {
        let Some(line) = p.line() else { continue };
        let line = line.to_vec();
        let _ = ClientCaps::parse(&line);
        for hash in HASHES {
            let _ = session::parse_deepen_line(&line, hash, &mut DeepenArgs::default());
        }
    }
}

/// v2 command requests (capability lines, delimiter, arguments) until the end, and the `fetch`
/// arguments of each with every combination of what the server accepts.
pub fn v2_request(data: &[u8]) {
    let mut r = PktReader::new(data);
    let accept = v2::RequestAccepts { session_id: true, object_info: true, config: None, bundle_uri: true };
    while let Ok(Some(req)) = v2::read_request(&mut r, accept) {
        let mut args: Vec<BString> = Vec::new();
        if v2::Args::new(&mut r, &req)
            .each(|line| {
                args.push(line.into());
                Ok(true)
            })
            .is_err()
        {
            break;
        }
        fetch_args(&args);
    }
}

fn fetch_args(args: &[BString]) {
    for hash in HASHES {
        for bits in [0u8, 7] {
            let accepts = v2::Accepts {
                filter: bits & 1 != 0,
                want_ref: bits & 2 != 0,
                sideband_all: bits & 4 != 0,
                packfile_uris: bits & 8 != 0,
            };
            if let Ok(f) = v2::parse_fetch_args(args, hash, accepts) {
                if let Some(spec) = &f.filter {
                    let _ = Filter::parse(spec);
                }
            }
        }
    }
}

/// Filter specs and sparse pattern files: the spec is everything before the first NUL, the
/// sparse patterns everything after it; each pattern line is also used as a path to match.
pub fn filter(data: &[u8]) {
    let (spec, sparse) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    if let Ok(f) = Filter::parse(&String::from_utf8_lossy(spec)) {
        let _ = f.check(&|_| true, Some(3));
        let _ = f.check(&|n| n != "combine", None);
        let _ = (f.needs_blob_size(), f.depth_limit(), f.sparse_spec(), f.config_name());
        for kind in
            [gix::objs::Kind::Commit, gix::objs::Kind::Tree, gix::objs::Kind::Blob, gix::objs::Kind::Tag]
        {
            for (depth, size) in [(0, 0), (1, 100), (u64::MAX, u64::MAX)] {
                let _ = f.keeps(kind, depth, size, &|| true);
            }
        }
    }
    let patterns = SparsePatterns::parse(sparse);
    // Paths come from tree walks: relative, never starting with `/` (gix asserts that).
    for path in sparse.split(|&b| b == b'\n').take(16).filter(|p| !p.starts_with(b"/")) {
        let _ = patterns.keeps(path);
    }
    for path in [&b"a"[..], b"d/e/f.txt", b"dir/", b""] {
        let _ = patterns.keeps(path);
    }
}

/// The ssh forced command: `SSH_ORIGINAL_COMMAND` parsing and dequoting, where the path points
/// below a root, and the lookup of that path below the fixture root (`--allow` globs included).
pub fn shell(data: &[u8]) {
    let cmd = String::from_utf8_lossy(data);
    let _ = shell::sq_dequote(&cmd);
    let root = Path::new("/srv/git");
    let _ = shell::resolve(root, &cmd);
    if let Ok(req) = shell::parse_command(&cmd) {
        if let Ok(p) = shell::resolve(root, &req.path) {
            let rel = p.strip_prefix(root).unwrap_or(&p);
            let name = request::repo_name(rel);
            for pattern in ["*", "team/**", "a/*.git", "**/x?[a-c]", "[!.]*"] {
                let _ = request::glob_match(pattern, &name);
            }
        }
        for args in front_ends().0.iter() {
            if let Ok((_, name)) = shell::locate(args, &req.path, &crate::repo::Ownership::any_owner()) {
                let _ = shell::check_push(args, &req.path, &name);
            }
        }
    }
}

/// The front-ends' arguments on the fixture root, parsed as `packserve` parses them (so they
/// follow the CLI): `shell` with and without `--allow`, `inetd` with and without
/// `--strict-paths` and a whitelist.
#[allow(clippy::type_complexity)]
fn front_ends() -> &'static (Vec<crate::cli::ShellArgs>, Vec<crate::cli::InetdArgs>) {
    static ARGS: OnceLock<(Vec<crate::cli::ShellArgs>, Vec<crate::cli::InetdArgs>)> = OnceLock::new();
    ARGS.get_or_init(|| {
        let root = fixture_root().to_string_lossy().into_owned();
        let parse = |argv: &[&str]| {
            crate::cli::parse(argv.iter().map(Into::into).collect()).expect("fuzz front-end arguments parse")
        };
        let shells = [vec!["shell", "--root", &root], vec!["shell", "--root", &root, "--allow", "open*"]]
            .into_iter()
            .map(|a| match parse(&[&["packserve"][..], &a].concat()) {
                crate::cli::Mode::Shell(s) => s,
                _ => unreachable!("packserve shell parses as the shell mode"),
            })
            .collect();
        let inetds = [
            vec!["inetd", "--base-path", &root, "--export-all"],
            vec!["inetd", "--strict-paths", "--export-all", &root],
        ]
        .into_iter()
        .map(|a| match parse(&[&["packserve"][..], &a].concat()) {
            crate::cli::Mode::Inetd(i) => i,
            _ => unreachable!("packserve inetd parses as the inetd mode"),
        })
        .collect();
        (shells, inetds)
    })
}

/// The git:// daemon request: the first pkt-line of the connection, its payload parsed as
/// git daemon does, the path's alias check, the protocol version of its extra parameters, and
/// the path's lookup below the fixture root (`--base-path`, `--strict-paths`, whitelist).
pub fn daemon(data: &[u8]) {
    let mut r = PktReader::new(data);
    let Ok(Some(Packet::Data(payload))) = r.read() else { return };
    match inetd::parse_request(payload) {
        Ok(req) => {
            let _ = request::is_aliased(&req.path);
            let _ = request::has_dot_dot(&req.path);
            let _ = upload_pack::protocol_version(req.git_protocol.as_deref());
            for args in front_ends().1.iter() {
                let _ = inetd::path_ok(args, &req.path, &crate::repo::Ownership::any_owner());
            }
        }
        Err(e) => {
            let _ = e.client_message("/x", true);
            let _ = e.to_string();
        }
    }
}

/// A CGI request: `NAME=value` lines (the CGI variables) up to an empty line, then the body.
/// The request is routed as `http-backend` does, refusals are rendered, and for an upload-pack
/// POST the body is read as the session would read it (length limit, gzip, pkt-lines).
pub fn http(data: &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &b""[..]),
    };
    let mut cgi = http_backend::Cgi::default();
    for line in head.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.to_owned();
        match k {
            "REQUEST_METHOD" => cgi.method = v,
            "PATH_INFO" => cgi.path_info = v,
            "QUERY_STRING" => cgi.query = v,
            "GIT_PROJECT_ROOT" => cgi.project_root = Some(PathBuf::from(v)),
            "PATH_TRANSLATED" => cgi.path_translated = Some(PathBuf::from(v)),
            "CONTENT_TYPE" => cgi.content_type = Some(v),
            "CONTENT_LENGTH" => cgi.content_length = Some(v),
            "HTTP_CONTENT_ENCODING" => cgi.content_encoding = Some(v),
            "GIT_PROTOCOL" => cgi.git_protocol = Some(v),
            "GIT_HTTP_EXPORT_ALL" => cgi.export_all = true,
            "SERVER_PROTOCOL" => cgi.server_protocol = Some(v),
            _ => {}
        }
    }
    let _ = upload_pack::protocol_version(cgi.git_protocol.as_deref());
    match http_backend::route(&cgi) {
        Err(refusal) => {
            let _ = http_backend::refusal_response(&refusal);
        }
        Ok(route) => {
            if route.service == http_backend::Service::UploadPack {
                // At most 1 MiB of decoded body, as a bound on what a gzip bomb costs here.
                let mut r = PktReader::new(http_backend::body(&cgi, body).take(1 << 20));
                while let Ok(Some(_)) = r.read() {}
            }
        }
    }
}

/// Fixed dates and names, so the fixture's object ids are the same on every machine and the
/// committed session corpus keeps naming real objects.
const FIXTURE_SCRIPT: &str = r#"
set -e
export GIT_AUTHOR_NAME=Fuzz GIT_AUTHOR_EMAIL=fuzz@example.com
export GIT_COMMITTER_NAME=Fuzz GIT_COMMITTER_EMAIL=fuzz@example.com
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
t=1700000000
commit() { t=$((t + 1000)); GIT_AUTHOR_DATE="$t +0000" GIT_COMMITTER_DATE="$t +0000" git commit -q "$@"; }
git init -q -b main work
cd work
printf 'd/\n!d/e/\n' > sparse
for i in 1 2 3 4 5 6; do
  mkdir -p d/e
  echo "line $i" > a.txt
  seq 1 $((i * 40)) > d/e/big.txt
  echo "$i" > "d/f$i"
  git add -A
  commit -m "c$i"
done
GIT_COMMITTER_DATE="1700009000 +0000" git tag -a -m "tag v1" v1 HEAD~3
git tag light HEAD~1
git checkout -q -b side HEAD~2
echo side > s
git add s
commit -m side
git checkout -q main
t=$((t + 1000))
GIT_AUTHOR_DATE="$t +0000" GIT_COMMITTER_DATE="$t +0000" git merge -q --no-edit side
git update-ref refs/hidden/secret HEAD~4
git update-ref refs/namespaces/n/refs/heads/main HEAD~1
git symbolic-ref refs/namespaces/n/HEAD refs/namespaces/n/refs/heads/main
cd ..
for r in strict open; do
  git init -q --bare "$r.git"
  git -C work push -q "$PWD/$r.git" 'refs/*:refs/*'
  git -C "$r.git" symbolic-ref HEAD refs/heads/main
done
git -C strict.git config uploadpack.hideRefs refs/hidden
git -C strict.git repack -q -a -d
git -C open.git config uploadpack.allowFilter true
git -C open.git config uploadpack.allowAnySHA1InWant true
git -C open.git config uploadpack.allowRefInWant true
git -C open.git config uploadpack.allowSidebandAll true
git -C open.git repack -q -a -d -b
"#;

/// The fixture repositories (`strict.git`: default configuration, `refs/hidden` hidden;
/// `open.git`: filters, any-SHA1 and ref-in-want allowed, with a bitmap), built with git on
/// first use under the temporary directory and reused by later runs.
pub fn fixture_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        // Named after the script, so a changed script builds a new fixture.
        let hash = FIXTURE_SCRIPT
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let root = std::env::temp_dir().join(format!("packserve-fuzz-fixture-{hash:016x}"));
        if root.join("open.git").join("HEAD").exists() {
            return root;
        }
        let tmp = root.with_extension(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("create the fixture directory");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(FIXTURE_SCRIPT)
            .current_dir(&tmp)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run git to build the fixture");
        assert!(status.success(), "building the fuzz fixture failed");
        // Another process may have won the race; either copy is the same.
        if std::fs::rename(&tmp, &root).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        root
    })
}

fn fixture_repos() -> &'static [crate::repo::Repo; 2] {
    // `Repo` is not `Sync`: one leaked pair per thread (the fuzzer and the test use one each).
    thread_local! {
        static REPOS: &'static [crate::repo::Repo; 2] = {
            let root = fixture_root();
            let open =
                |name: &str| crate::repo::Repo::open(&root.join(name), name, &[]).expect("open the fixture");
            Box::leak(Box::new([open("strict.git"), open("open.git")]))
        };
    }
    REPOS.with(|r| *r)
}

/// A whole session on a fixture repository. The first line of the input chooses how it is
/// run (words: `v0`/`v1`/`v2`, `stateless`, `advertise`, `open` for the permissive repository,
/// `trace` for `GIT_TRACE_PACKET` into memory, `namespace` for `GIT_NAMESPACE=n`); the rest
/// is what the client sends.
pub fn session(data: &[u8]) {
    let _ = session_output(data);
}

/// [`session`], returning what the server wrote.
pub fn session_output(data: &[u8]) -> Vec<u8> {
    let (head, input) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let words: Vec<&[u8]> = head.split(|&b| b == b' ').collect();
    let has = |w: &str| words.contains(&w.as_bytes());
    let version = if has("v2") {
        Version::V2
    } else if has("v1") {
        Version::V1
    } else {
        Version::V0
    };
    let repo = &fixture_repos()[usize::from(has("open"))];
    let trace = has("trace").then(|| {
        let sink: Box<dyn std::io::Write> = Box::new(std::io::sink());
        crate::trace::Trace { sink: std::rc::Rc::new(std::cell::RefCell::new(sink)), bare: has("bare") }
    });
    let settings = Settings {
        namespace: has("namespace").then(|| "n".to_owned()),
        trace,
        version,
        stateless_rpc: has("stateless"),
        advertise_refs: has("advertise"),
        agent: crate::session::caps::agent(None),
        busy_by_envelope: false,
        output_fd: None,
    };
    let mut out = Vec::new();
    let _ = session::serve(repo, input, &mut out, settings, &mut Summary::default());
    out
}
