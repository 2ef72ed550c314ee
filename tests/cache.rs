//! The shared response cache (`packserve.cache.*`), with real servers and real clients:
//! identical concurrent clones through sshd and Apache give byte-identical packs (one miss, the
//! others hits or followers); and the faults: a writer killed mid-entry, a file-size limit on
//! the cache, the cache directory removed while a response is written, pushes and repacks
//! between identical requests, hidden refs. None may give a truncated or stale response.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::servers::*;
use common::*;

/// A cache directory anyone can write (Apache runs the CGI as www-data).
fn cache_dir(sb: &Sandbox) -> PathBuf {
    let d = sb.join("cache");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    d
}

fn enable_cache(sb: &Sandbox, repo: &Path, dir: &Path) {
    sb.git(repo, &["config", "packserve.cache.dir", &dir.display().to_string()]);
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect()
        })
        .unwrap_or_default()
}

/// The bytes of the one pack a fresh clone holds.
fn pack_bytes(clone: &Path) -> Vec<u8> {
    let packs = files_with(&clone.join(".git/objects/pack"), "pack");
    assert_eq!(packs.len(), 1, "packs in {}: {packs:?}", clone.display());
    std::fs::read(&packs[0]).unwrap()
}

/// Clones `url` `n` times at once; returns the clone directories after checking each one
/// (success, fsck, refs as the server's, the same pack bytes).
fn concurrent_clones(
    sb: &Sandbox,
    remote: &Remote,
    name: &str,
    server_repo: &Path,
    n: usize,
) -> Vec<PathBuf> {
    let dests: Vec<PathBuf> = (0..n).map(|i| sb.join(format!("clone-{}-{i}", remote.transport))).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = dests
            .iter()
            .map(|d| {
                s.spawn(move || {
                    remote.git(
                        sb,
                        Client::New,
                        2,
                        sb.path(),
                        "clone",
                        &["--no-progress", &remote.url(name), &d.display().to_string()],
                    )
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().assert_success();
        }
    });
    let want = expected_clone_refs(&sb.refs(server_repo));
    let first = pack_bytes(&dests[0]);
    for d in &dests {
        sb.fsck(d);
        let got: BTreeMap<String, String> = sb.refs(d);
        assert_eq!(fetched_refs(&got), want, "refs of {}", d.display());
        assert!(pack_bytes(d) == first, "pack of {} differs from the first clone's", d.display());
    }
    dests
}

/// The log lines with `fetch`, and how many say each `cache=` value.
fn cache_counts(log: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in log.lines().filter(|l| l.contains("commands=") && l.contains("fetch")) {
        if let Some(v) = l.split(' ').find_map(|f| f.strip_prefix("cache=")) {
            *m.entry(v.to_owned()).or_insert(0) += 1;
        }
    }
    m
}

#[test]
fn identical_concurrent_clones_over_ssh_are_served_once() {
    let sb = Sandbox::new("cache-ssh");
    let served = Served::new(&sb);
    let ssh = SshServer::start(&sb, &served);
    let repo = served.repo("main.git");
    let cache = cache_dir(&sb);
    enable_cache(&sb, &repo, &cache);
    concurrent_clones(&sb, &ssh.remote(Key::Forced), "main.git", &repo, 6);
    let log = log_when(&ssh.log, |t| cache_counts(t).values().sum::<usize>() >= 6);
    let counts = cache_counts(&log);
    assert_eq!(counts.get("miss"), Some(&1), "one writer: {counts:?}\n{log}");
    assert_eq!(counts.get("hit").unwrap_or(&0) + counts.get("follow").unwrap_or(&0), 5, "{counts:?}\n{log}");
    assert_eq!(files_with(&cache, "entry").len(), 1);
    assert!(files_with(&cache, "part").is_empty());
}

#[test]
fn identical_concurrent_clones_over_http_are_served_once() {
    let sb = Sandbox::new("cache-http");
    let served = Served::new(&sb);
    let http = HttpServer::start(&sb, &served);
    let repo = served.repo("main.git");
    let cache = cache_dir(&sb);
    enable_cache(&sb, &repo, &cache);
    concurrent_clones(&sb, &http.remote(), "main.git", &repo, 6);
    let log = log_when(&http.log, |t| cache_counts(t).values().sum::<usize>() >= 6);
    let counts = cache_counts(&log);
    assert_eq!(counts.get("miss"), Some(&1), "one writer: {counts:?}\n{log}");
    // The same response, cached by the ssh-like path, serves a v0 client too (same framing).
    let v0 = sb.join("clone-v0");
    http.remote()
        .git(
            &sb,
            Client::New,
            0,
            sb.path(),
            "clone",
            &["--no-progress", &http.remote().url("main.git"), &v0.display().to_string()],
        )
        .assert_success();
    sb.fsck(&v0);
}

/// A bare repository whose pack is a few megabytes (incompressible), so that a response does
/// not fit in a pipe.
fn big_repo(sb: &Sandbox) -> PathBuf {
    let repo = sb.join("big.git");
    sb.sh(
        sb.path(),
        "git init -q --bare big.git && git init -q big-work && cd big-work && \
         head -c 3000000 /dev/urandom > blob && git add blob && git commit -qm one && \
         head -c 1000000 /dev/urandom > blob2 && git add blob2 && git commit -qm two && \
         git push -q ../big.git HEAD:refs/heads/main && git -C ../big.git symbolic-ref HEAD refs/heads/main",
    );
    repo
}

/// A sandbox with [`big_repo`], the cache on, and the id of `main`.
struct Big {
    sb: Sandbox,
    repo: PathBuf,
    cache: PathBuf,
    oid: String,
}

impl Big {
    fn new(label: &str) -> Big {
        let sb = Sandbox::new(label);
        let repo = big_repo(&sb);
        let cache = cache_dir(&sb);
        enable_cache(&sb, &repo, &cache);
        let oid = sb.rev_parse(&repo, "main");
        Big { sb, repo, cache, oid }
    }
}

fn fetch_request(oid: &str) -> Vec<u8> {
    common::pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "ofs-delta",
        &format!("want {oid}"),
        "done",
        "0000",
    ])
}

/// packserve serving one v2 fetch of `oid` from `repo`, stdout piped (not read yet).
fn spawn_fetch(sb: &Sandbox, repo: &Path, oid: &str, wrapper: Option<&Path>) -> Child {
    let mut cmd = match wrapper {
        Some(w) => {
            let mut c = sb.command(w);
            c.arg(server_under_test());
            c
        }
        None => sb.command(server_under_test()),
    };
    cmd.arg("--stateless-rpc").arg(repo).env("GIT_PROTOCOL", "version=2");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&fetch_request(oid)).unwrap();
    drop(stdin);
    child
}

/// Reads the whole response and the exit status.
fn finish(mut child: Child) -> (Vec<u8>, bool, String) {
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let ok = child.wait().unwrap().success();
    (out, ok, err)
}

/// The pack of a v2 fetch response, checked whole by `git index-pack`.
fn checked_pack(sb: &Sandbox, response: &[u8]) -> Vec<u8> {
    let r = common::pktline::parse_fetch_response(response);
    assert!(r.band3.is_empty(), "error in response: {}", String::from_utf8_lossy(&r.band3));
    assert!(r.ended_with_flush, "response does not end with a flush");
    let path = sb.unique("resp").with_extension("pack");
    std::fs::write(&path, &r.pack).unwrap();
    let mut cmd = sb.command(Client::New.program());
    cmd.arg("index-pack").arg(&path);
    run(cmd, None).assert_success();
    r.pack
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn part_size(cache: &Path) -> u64 {
    files_with(cache, "part").first().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len())
}

#[test]
fn a_killed_writer_leaves_nothing_and_its_follower_fails() {
    let Big { sb, repo, cache, oid } = Big::new("cache-kill");
    // The writer's client does not read: it stops once the pipe and its buffer are full.
    let mut writer = spawn_fetch(&sb, &repo, &oid, None);
    wait_for("the writer's part file", || part_size(&cache) > 100_000);
    let follower = spawn_fetch(&sb, &repo, &oid, None);
    let reader = std::thread::spawn(move || finish(follower));
    std::thread::sleep(Duration::from_millis(500));
    writer.kill().unwrap();
    let _ = writer.wait();
    let (out, ok, err) = reader.join().unwrap();
    let r = common::pktline::parse_fetch_response(&out);
    assert!(!ok, "the follower of a killed writer must fail");
    assert!(
        String::from_utf8_lossy(&r.band3).contains("abandoned"),
        "band 3: {:?}; stderr: {err}",
        String::from_utf8_lossy(&r.band3)
    );
    assert!(!r.ended_with_flush, "a follower's failed response must not end like a whole one");
    assert!(files_with(&cache, "entry").is_empty(), "no entry from a killed writer");
    // The next request writes a whole entry, and the one after is served from it, the same.
    let (first, ok, err) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok, "{err}");
    let pack = checked_pack(&sb, &first);
    assert_eq!(files_with(&cache, "entry").len(), 1);
    let (second, ok, err) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok, "{err}");
    assert!(first == second, "a hit differs from the response it cached");
    assert_eq!(checked_pack(&sb, &second), pack);
}

#[test]
fn a_file_size_limit_on_the_cache_serves_uncached() {
    let Big { sb, repo, cache, oid } = Big::new("cache-fsize");
    // 64 KiB: the entry cannot be written whole (the pack is megabytes).
    let wrapper = sb.join("limited.sh");
    std::fs::write(&wrapper, "#!/bin/sh\nulimit -f 64\nexec \"$@\"\n").unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (limited, ok, err) = finish(spawn_fetch(&sb, &repo, &oid, Some(&wrapper)));
    assert!(ok, "a full cache must not fail the fetch: {err}");
    let pack = checked_pack(&sb, &limited);
    assert!(files_with(&cache, "entry").is_empty());
    assert!(files_with(&cache, "part").is_empty(), "the abandoned part is removed");
    // A clone through the limited server works too.
    let dest = sb.join("clone");
    let mut cmd = sb.command(Client::New.program());
    cmd.arg("clone")
        .arg("--no-progress")
        .arg(format!("--upload-pack={} {}", wrapper.display(), server_under_test().display()))
        .arg(file_url(&repo))
        .arg(&dest);
    run(cmd, None).assert_success();
    sb.fsck(&dest);
    // Without the limit, the same response is stored and served identically.
    let (stored, ok, _) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok);
    assert_eq!(files_with(&cache, "entry").len(), 1);
    assert_eq!(checked_pack(&sb, &stored), pack);
}

#[test]
fn the_cache_directory_removed_while_serving() {
    let Big { sb, repo, cache, oid } = Big::new("cache-rm");
    let writer = spawn_fetch(&sb, &repo, &oid, None);
    wait_for("the writer's part file", || part_size(&cache) > 100_000);
    std::fs::remove_dir_all(&cache).unwrap();
    let (out, ok, err) = finish(writer);
    assert!(ok, "{err}");
    let pack = checked_pack(&sb, &out);
    // The next request recreates the directory and stores its response.
    let (again, ok, err) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok, "{err}");
    assert_eq!(checked_pack(&sb, &again), pack);
    assert_eq!(files_with(&cache, "entry").len(), 1);
}

#[test]
fn a_damaged_entry_is_served_around() {
    let Big { sb, repo, cache, oid } = Big::new("cache-damaged");
    let (first, ok, _) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok);
    let entry = files_with(&cache, "entry").pop().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&entry).unwrap();
    f.set_len(f.metadata().unwrap().len() / 2).unwrap();
    let (second, ok, err) = finish(spawn_fetch(&sb, &repo, &oid, None));
    assert!(ok, "{err}");
    assert!(first == second, "the damaged entry was served");
    checked_pack(&sb, &second);
}

#[test]
fn pushes_and_repacks_between_identical_requests_are_never_stale() {
    let sb = Sandbox::new("cache-push");
    let served = Served::new(&sb);
    let repo = served.repo("main.git");
    let cache = cache_dir(&sb);
    enable_cache(&sb, &repo, &cache);
    let check = |dest: &str| {
        let dest = sb.join(dest);
        sb.clone(Client::New, 2, Server::UnderTest, &repo, &dest, &[]);
        sb.fsck(&dest);
        let want = expected_clone_refs(&sb.refs(&repo));
        assert_eq!(fetched_refs(&sb.refs(&dest)), want, "refs of {}", dest.display());
        dest
    };
    let a = check("a");
    let b = check("b");
    assert!(pack_bytes(&a) == pack_bytes(&b));
    advance(&sb, &repo);
    check("c");
    sb.git(&repo, &["repack", "-adb"]);
    let d = check("d");
    let e = check("e");
    assert!(pack_bytes(&d) == pack_bytes(&e));
    // A fetch into the first clone gets the new commits.
    sb.fetch(Client::New, 2, Server::UnderTest, &a, &[]);
    sb.fsck(&a);
    // Shallow CI clones, twice: the same pack.
    let s1 = sb.join("s1");
    let s2 = sb.join("s2");
    for s in [&s1, &s2] {
        sb.clone(Client::New, 2, Server::UnderTest, &repo, s, &["--depth=1", "--single-branch"]);
        sb.fsck(s);
    }
    assert!(pack_bytes(&s1) == pack_bytes(&s2));
}

#[test]
fn hidden_refs_with_the_cache_on() {
    let sb = Sandbox::new("cache-hidden");
    let served = Served::new(&sb);
    let repo = served.repo("main.git");
    let cache = cache_dir(&sb);
    enable_cache(&sb, &repo, &cache);
    sb.git(&repo, &["config", "--unset", "uploadpack.allowAnySHA1InWant"]);
    let side = sb.rev_parse(&repo, "refs/heads/side");
    // Served (and cached) while the ref is visible.
    let (out, ok, err) = finish(spawn_fetch(&sb, &repo, &side, None));
    assert!(ok, "{err}");
    checked_pack(&sb, &out);
    assert_eq!(files_with(&cache, "entry").len(), 1);
    // Hidden now: the same request is refused before the cache is looked at.
    sb.git(&repo, &["config", "uploadpack.hideRefs", "refs/heads/side"]);
    let (out, _ok, _) = finish(spawn_fetch(&sb, &repo, &side, None));
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("not our ref"), "hidden want served from the cache: {text:.300}");
    let r = common::pktline::parse_fetch_response(&out);
    assert!(r.pack.is_empty());
    // A clone does not see it.
    let dest = sb.join("clone");
    sb.clone(Client::New, 2, Server::UnderTest, &repo, &dest, &[]);
    assert!(!sb.refs(&dest).keys().any(|k| k.contains("side")));
}

#[test]
fn followers_get_the_writers_bytes_exactly() {
    let Big { sb, repo, cache, oid } = Big::new("cache-follow");
    // The writer's client reads nothing until the followers are attached.
    let writer = spawn_fetch(&sb, &repo, &oid, None);
    wait_for("the writer's part file", || part_size(&cache) > 100_000);
    let followers: Vec<_> = (0..3)
        .map(|_| {
            let f = spawn_fetch(&sb, &repo, &oid, None);
            std::thread::spawn(move || finish(f))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (written, ok, err) = finish(writer);
    assert!(ok, "{err}");
    checked_pack(&sb, &written);
    for f in followers {
        let (out, ok, err) = f.join().unwrap();
        assert!(ok, "{err}");
        assert!(
            out == written,
            "a follower's response differs from the writer's ({} vs {} bytes)",
            out.len(),
            written.len()
        );
    }
}
