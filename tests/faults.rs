//! Faults in the served repository: clones and fetches through packserve while `git repack -ad`,
//! `git repack -adb`, `git gc --prune=now`, `git commit-graph write` and pushes (git's own
//! receive-pack) change the same repository. Every transfer must either succeed with a result
//! that passes `git fsck --strict` and refs some state of the server had, or fail with a clear
//! error (git exits non-zero and says why); never a corrupt repository presented as success,
//! never a panic.
//!
//! Also the deterministic cases: packs deleted after the advertisement (a stalled client),
//! a damaged or truncated pack and a missing object, each an error naming the culprit.
//!
//! `PACKSERVE_FAULT_TRANSFERS=N` sets how many transfers each fault run makes (default 24,
//! enough for CI); `scripts/faults` runs a long one and prints the matrix.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::pktline::{self, Pkt};
use common::{file_url, manifest_dir, run, Client, Output, Sandbox, Server};

/// Transfers per fault run.
fn transfers() -> usize {
    std::env::var("PACKSERVE_FAULT_TRANSFERS").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

/// A bare repository of realistic shape (scripts/gen-repo) with `objects` objects.
fn generated_repo(sb: &Sandbox, objects: u32, state: &str) -> PathBuf {
    let dest = sb.join("server.git");
    let mut cmd = sb.command(manifest_dir().join("scripts/gen-repo"));
    cmd.arg(&dest).args(["--objects", &objects.to_string(), "--state", state]);
    run(cmd, None).assert_success();
    dest
}

/// Every (ref, oid) the server has had, recorded before a push makes it visible.
type History = Arc<Mutex<HashSet<(String, String)>>>;

fn record_refs(sb: &Sandbox, repo: &Path, history: &History) {
    let refs = sb.refs(repo);
    let mut h = history.lock().unwrap();
    for (name, v) in refs {
        h.insert((name, v.split(' ').next().unwrap_or("").to_owned()));
    }
}

/// What the repository-changing thread does, in turn.
const OPS: [&str; 8] =
    ["repack -ad", "push", "repack -adb", "gc --prune=now", "push", "commit-graph", "pack-refs", "no-graph"];

/// Changes `repo` until `stop`: the operations of [`OPS`] in turn. Returns how often each ran.
fn mutate(
    sb: &Sandbox,
    repo: &Path,
    work: &Path,
    history: &History,
    stop: &AtomicBool,
) -> BTreeMap<&'static str, u32> {
    let mut counts = BTreeMap::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let op = OPS[i % OPS.len()];
        match op {
            "repack -ad" => drop(sb.git(repo, &["-c", "repack.writeBitmaps=false", "repack", "-adq"])),
            "repack -adb" => drop(sb.git(repo, &["repack", "-adbq"])),
            "gc --prune=now" => drop(sb.git(repo, &["gc", "-q", "--prune=now"])),
            "commit-graph" => drop(sb.git(repo, &["commit-graph", "write", "--reachable", "--no-progress"])),
            "pack-refs" => drop(sb.git(repo, &["pack-refs", "--all", "--prune"])),
            "no-graph" => {
                let _ = std::fs::remove_file(repo.join("objects/info/commit-graph"));
                let _ = std::fs::remove_dir_all(repo.join("objects/info/commit-graphs"));
            }
            _ => {
                // A new commit on main, and a branch that is created, moved and deleted in turn
                // (its old objects become unreachable, for gc --prune=now to delete).
                std::fs::write(work.join(format!("f{}", i % 5)), format!("change {i}\n")).unwrap();
                sb.git(work, &["add", "-A"]);
                sb.git(work, &["commit", "-q", "-m", &format!("change {i}")]);
                let tip = sb.rev_parse(work, "HEAD");
                let side = format!("refs/heads/side{}", i % 3);
                {
                    let mut h = history.lock().unwrap();
                    h.insert(("refs/heads/main".into(), tip.clone()));
                    h.insert((side.clone(), tip));
                }
                sb.git(work, &["push", "-q", "origin", "HEAD:refs/heads/main", &format!("+HEAD:{side}")]);
                if i % 4 == 1 {
                    sb.git(work, &["push", "-q", "origin", &format!(":{side}")]);
                }
            }
        }
        *counts.entry(op).or_insert(0) += 1;
        i += 1;
    }
    counts
}

/// How one transfer ended.
#[derive(Default, Debug)]
struct Outcomes {
    ok: u32,
    clean_errors: Vec<String>,
    corrupt: Vec<String>,
    panics: Vec<String>,
}

/// Judges a finished clone or fetch of `dest`.
/// `stable`: refs the server has all along (its tags, main); a clone must have them.
fn judge(
    sb: &Sandbox,
    what: &str,
    out: &Output,
    dest: &Path,
    (history, stable): (&History, &[String]),
    o: &mut Outcomes,
) {
    let stderr = out.stderr_str();
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        o.panics.push(format!("{what}: {stderr}"));
        return;
    }
    if !out.status.success() {
        // A clear error: git says fatal/error and why.
        if stderr.contains("fatal:") || stderr.contains("error:") {
            o.clean_errors.push(format!("{what}: {}", stderr.trim()));
        } else {
            o.corrupt.push(format!("{what}: failed without a message: {out}"));
        }
        return;
    }
    let fsck = sb.git_with(Client::New, dest, &["fsck", "--strict", "--no-progress", "--no-dangling"]);
    if !fsck.status.success() {
        o.corrupt.push(format!("{what}: fsck failed:\n{fsck}"));
        return;
    }
    let got = sb.refs(dest);
    if let Some(missing) = stable.iter().find(|r| !got.contains_key(*r)) {
        o.corrupt.push(format!("{what}: ref {missing} missing (it never moved nor went away)"));
        return;
    }
    let h = history.lock().unwrap();
    for (name, v) in got {
        let oid = v.split(' ').next().unwrap_or("").to_owned();
        let name = name.replace("refs/remotes/origin/", "refs/heads/");
        if name != "refs/remotes/origin/HEAD"
            && !name.ends_with("/HEAD")
            && !h.contains(&(name.clone(), oid.clone()))
        {
            o.corrupt.push(format!("{what}: ref {name} at {oid}, a value the server never had"));
            return;
        }
    }
    o.ok += 1;
}

/// Clones and fetches (v0 and v2, in turn) through packserve while [`mutate`] runs; asserts
/// no corrupt result and no panic, and prints the counts.
fn fault_run(label: &str, objects: u32, state: &str) {
    let sb = Sandbox::new(label);
    let repo = generated_repo(&sb, objects, state);
    let work = sb.join("work");
    sb.git(sb.path(), &["clone", "-q", &file_url(&repo), work.to_str().unwrap()]);
    let history: History = Arc::default();
    record_refs(&sb, &repo, &history);
    let stable: Vec<String> = sb
        .refs(&repo)
        .into_keys()
        .filter(|r| r.starts_with("refs/tags/") || r == "refs/heads/main")
        .collect();
    let stop = AtomicBool::new(false);
    let n = transfers();
    let started = std::time::Instant::now();
    let (counts, outcomes) = std::thread::scope(|s| {
        let mutator = s.spawn(|| mutate(&sb, &repo, &work, &history, &stop));
        // Two clients at once, each cloning and then fetching into its last clone.
        let clients: Vec<_> = (0..2)
            .map(|c| {
                let (sb, repo, history, stable) = (&sb, &repo, &history, &stable[..]);
                s.spawn(move || {
                    let mut o = Outcomes::default();
                    let mut last: Option<PathBuf> = None;
                    for i in (c..n).step_by(2) {
                        let protocol = if (i / 2) % 2 == 0 { 0 } else { 2 };
                        let fetch = i % 3 == 2 && last.is_some();
                        let (what, out, dest) = if fetch {
                            let dest = last.clone().unwrap();
                            let mut cmd = sb.command(Client::New.program());
                            cmd.current_dir(&dest)
                                .arg("-c")
                                .arg(format!("protocol.version={protocol}"))
                                .args(["fetch", "--no-progress", "--prune"])
                                .arg(format!("--upload-pack={}", Server::UnderTest.program().display()))
                                .arg("origin");
                            (format!("fetch v{protocol} #{i}"), run(cmd, None), dest)
                        } else {
                            let dest = sb.unique("clone");
                            let t = sb.try_clone(
                                Client::New,
                                protocol,
                                Server::UnderTest,
                                repo,
                                &dest,
                                &["--mirror"],
                            );
                            (format!("clone v{protocol} #{i}"), t.output, dest)
                        };
                        judge(sb, &what, &out, &dest, (history, stable), &mut o);
                        last = dest.exists().then_some(dest);
                    }
                    o
                })
            })
            .collect();
        let mut all = Outcomes::default();
        for c in clients {
            let o = c.join().unwrap();
            all.ok += o.ok;
            all.clean_errors.extend(o.clean_errors);
            all.corrupt.extend(o.corrupt);
            all.panics.extend(o.panics);
        }
        stop.store(true, Ordering::Relaxed);
        (mutator.join().unwrap(), all)
    });
    eprintln!(
        "fault run {label}: {n} transfers in {:.1}s: {} ok, {} clean errors, {} corrupt, {} panics; \
         faults injected: {counts:?}",
        started.elapsed().as_secs_f64(),
        outcomes.ok,
        outcomes.clean_errors.len(),
        outcomes.corrupt.len(),
        outcomes.panics.len()
    );
    for e in &outcomes.clean_errors {
        eprintln!("  clean error: {e}");
    }
    assert!(outcomes.corrupt.is_empty(), "corrupt results:\n{}", outcomes.corrupt.join("\n"));
    assert!(outcomes.panics.is_empty(), "panics:\n{}", outcomes.panics.join("\n"));
    assert_eq!(outcomes.ok as usize + outcomes.clean_errors.len(), n);
    // Errors are allowed, but a run where nothing succeeds proves nothing.
    assert!(outcomes.ok as usize * 2 >= n, "fewer than half the transfers succeeded: {outcomes:?}");
    assert!(counts.values().sum::<u32>() >= OPS.len() as u32, "the repository barely changed: {counts:?}");
}

#[test]
fn transfers_during_repack_gc_and_pushes_with_bitmaps() {
    fault_run("faults-bitmap", 2500, "bitmap");
}

#[test]
fn transfers_during_repack_gc_and_pushes_without_bitmaps() {
    fault_run("faults-plain", 2500, "none");
}

// ---------------------------------------------------------------------------
// Deterministic faults

/// packserve serving `repo` in v0 with its pipes held: the test reads the advertisement,
/// changes the repository, then sends its request.
struct Stalled {
    child: std::process::Child,
    stdout: std::process::ChildStdout,
}

impl Stalled {
    fn start(sb: &Sandbox, repo: &Path, protocol: Option<&str>) -> Stalled {
        let mut cmd = sb.command(Server::UnderTest.program());
        cmd.arg(repo).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(p) = protocol {
            cmd.env("GIT_PROTOCOL", p);
        }
        let mut child = cmd.spawn().expect("spawn packserve");
        let stdout = child.stdout.take().unwrap();
        Stalled { child, stdout }
    }

    /// Reads pkt-lines up to the first flush.
    fn read_until_flush(&mut self) -> Vec<Pkt> {
        let mut pkts = Vec::new();
        loop {
            let mut len = [0u8; 4];
            self.stdout.read_exact(&mut len).expect("advertisement");
            let n = usize::from_str_radix(std::str::from_utf8(&len).unwrap(), 16).unwrap();
            if n == 0 {
                return pkts;
            }
            let mut d = vec![0u8; n - 4];
            self.stdout.read_exact(&mut d).unwrap();
            pkts.push(Pkt::Data(d));
        }
    }

    /// Sends the request, returns the exit status, stdout and stderr.
    fn finish(mut self, request: &[u8]) -> (std::process::ExitStatus, Vec<u8>, String) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(request).unwrap();
        drop(stdin);
        let mut out = Vec::new();
        self.stdout.read_to_end(&mut out).unwrap();
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        (self.child.wait().unwrap(), out, err)
    }
}

/// Indexes `pack` into a fresh repository with `git index-pack --strict` and checks that every
/// object reachable from `tips` is there. Returns index-pack's output.
fn check_pack(sb: &Sandbox, pack: &[u8], tips: &[String]) -> Output {
    let dest = sb.unique("indexed");
    sb.git(sb.path(), &["init", "-q", "--bare", dest.to_str().unwrap()]);
    let mut cmd = sb.command(Client::New.program());
    cmd.current_dir(&dest).args(["index-pack", "--strict", "--stdin"]);
    let out = run(cmd, Some(pack)).assert_success();
    for (i, t) in tips.iter().enumerate() {
        sb.git(&dest, &["update-ref", &format!("refs/t/{i}"), t]);
    }
    sb.fsck(&dest);
    out
}

/// The wants of a v0 advertisement (every advertised object, peeled lines excluded).
fn advertised_oids(adv: &[Pkt]) -> Vec<String> {
    let set: BTreeSet<String> = adv
        .iter()
        .filter_map(Pkt::text)
        .map(|t| t.split('\0').next().unwrap().to_owned())
        .filter(|l| !l.ends_with("^{}"))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    set.into_iter().collect()
}

fn v0_request(wants: &[String]) -> Vec<u8> {
    let mut lines = vec![format!("want {} side-band-64k ofs-delta", wants[0])];
    lines.extend(wants[1..].iter().map(|w| format!("want {w}")));
    let mut req = pktline::request(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    req.extend_from_slice(pktline::FLUSH);
    req.extend_from_slice(&pktline::request(&["done"]));
    req
}

/// Pushes a few commits to `repo` (as loose objects, git's receive-pack default for small pushes).
fn push_loose_commits(sb: &Sandbox, repo: &Path, branch: &str) {
    let work = sb.unique("pusher");
    sb.git(sb.path(), &["clone", "-q", &file_url(repo), work.to_str().unwrap()]);
    for i in 0..3 {
        std::fs::write(work.join(format!("loose{i}")), format!("{branch} {i}\n")).unwrap();
        sb.git(&work, &["add", "-A"]);
        sb.git(&work, &["commit", "-q", "-m", &format!("{branch} {i}")]);
    }
    sb.git(&work, &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")]);
}

/// Every pack and loose object replaced after the advertisement: the packs packserve mapped
/// are unlinked, the loose objects it saw are pruned; the pack it sends must still be complete.
#[test]
fn packs_and_loose_objects_replaced_after_the_advertisement() {
    for state in ["bitmap", "none"] {
        let sb = Sandbox::new(&format!("faults-stalled-{state}"));
        let repo = generated_repo(&sb, 1500, state);
        push_loose_commits(&sb, &repo, "loose");
        let loose_before = count_loose(&repo);
        assert!(loose_before > 0, "the push left no loose objects");
        let packs_before = pack_names(&repo);

        let mut s = Stalled::start(&sb, &repo, None);
        let adv = s.read_until_flush();
        let wants = advertised_oids(&adv);
        // repack -ad writes a new pack and deletes the old ones; prune deletes the loose copies.
        sb.git(&repo, &["repack", "-adq"]);
        sb.git(&repo, &["prune", "--expire=now"]);
        assert_eq!(count_loose(&repo), 0);
        assert!(pack_names(&repo).is_disjoint(&packs_before), "repack -ad kept an old pack");
        let (status, out, err) = s.finish(&v0_request(&wants));
        assert!(status.success(), "packserve failed ({state}): {err}");
        let r = pktline::parse_fetch_response(&out);
        assert!(r.band3.is_empty(), "{}", String::from_utf8_lossy(&r.band3));
        check_pack(&sb, &r.pack, &wants);
    }
}

/// The same with protocol v2, and with the packs of the advertisement gone and a new commit
/// packed by gc between ls-refs and fetch (a stateless client's two requests).
#[test]
fn v2_fetch_after_gc_between_ls_refs_and_fetch() {
    let sb = Sandbox::new("faults-stalled-v2");
    let repo = generated_repo(&sb, 1500, "graph");
    let mut s = Stalled::start(&sb, &repo, Some("version=2"));
    let _caps = s.read_until_flush();
    // ls-refs in this connection; then the repository changes; then fetch.
    let mut cmd = sb.command(Client::New.program());
    cmd.current_dir(&repo).arg("for-each-ref").arg("--format=%(objectname)");
    let wants: Vec<String> =
        run(cmd, None).assert_success().stdout_str().lines().map(str::to_owned).collect();
    push_loose_commits(&sb, &repo, "during");
    let during = sb.rev_parse(&repo, "refs/heads/during");
    sb.git(&repo, &["gc", "-q", "--prune=now"]);
    let mut lines = vec!["command=fetch".to_owned(), "0001".to_owned(), "ofs-delta".to_owned()];
    lines.extend(wants.iter().chain([&during]).map(|w| format!("want {w}")));
    lines.push("done".into());
    lines.push("0000".into());
    let (status, out, err) =
        s.finish(&pktline::request(&lines.iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(status.success(), "packserve failed: {err}");
    let r = pktline::parse_fetch_response(&out);
    assert!(r.band3.is_empty(), "{}", String::from_utf8_lossy(&r.band3));
    let mut tips = wants.clone();
    tips.push(during);
    check_pack(&sb, &r.pack, &tips);
}

fn count_loose(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2)
        .map(|e| std::fs::read_dir(e.path()).map_or(0, |d| d.count()))
        .sum()
}

fn pack_names(repo: &Path) -> BTreeSet<String> {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pack"))
        .collect()
}

fn the_pack(repo: &Path) -> PathBuf {
    let names = pack_names(repo);
    assert_eq!(names.len(), 1, "{names:?}");
    repo.join("objects/pack").join(names.first().unwrap())
}

/// A clone through packserve that must fail: git exits non-zero, stderr contains every needle,
/// nothing is left where the clone was; returns git's stderr.
#[track_caller]
fn clone_fails(sb: &Sandbox, repo: &Path, protocol: u8, needles: &[&str]) -> String {
    let dest = sb.unique("failed-clone");
    let t = sb.try_clone(Client::New, protocol, Server::UnderTest, repo, &dest, &["--bare"]);
    let err = t.output.stderr_str();
    assert!(!t.output.status.success(), "clone succeeded:\n{}", t.output);
    for n in needles {
        assert!(err.contains(n), "v{protocol}: no {n:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dest.exists(), "git left the failed clone");
    err
}

/// The pack bytes a failed response carried (if any) do not index as a complete pack.
#[track_caller]
fn assert_incomplete(sb: &Sandbox, pack: &[u8]) {
    if pack.is_empty() {
        return;
    }
    let dest = sb.unique("partial");
    sb.git(sb.path(), &["init", "-q", "--bare", dest.to_str().unwrap()]);
    let mut cmd = sb.command(Client::New.program());
    cmd.current_dir(&dest).args(["index-pack", "--stdin"]);
    assert!(!run(cmd, Some(pack)).status.success(), "the truncated pack indexes as complete");
}

/// The raw v0 exchange against a broken repository: packserve exits non-zero, says `fatal:`
/// with `needle` on band 3 and stderr, and the pack it started (if any) does not index.
#[track_caller]
fn raw_fetch_fails(sb: &Sandbox, repo: &Path, needle: &str) {
    let mut s = Stalled::start(sb, repo, None);
    let adv = s.read_until_flush();
    let (status, out, err) = s.finish(&v0_request(&advertised_oids(&adv)));
    assert!(!status.success(), "packserve exited 0: {err}");
    assert!(err.contains(needle), "no {needle:?} on stderr: {err}");
    let r = pktline::parse_fetch_response(&out);
    let band3 = String::from_utf8_lossy(&r.band3);
    assert!(band3.starts_with("fatal:") && band3.contains(needle), "band 3: {band3:?}");
    assert_incomplete(sb, &r.pack);
}

/// One byte of an entry changed (inside a blob's compressed data): its CRC no longer matches
/// the `.idx`, so the clone fails naming the pack and the object, with and without bitmaps
/// (whole-pack reuse checks the CRCs too).
#[test]
fn damaged_pack_entry_is_an_error_naming_pack_and_object() {
    for state in ["bitmap", "none"] {
        let sb = Sandbox::new(&format!("faults-damaged-{state}"));
        let repo = generated_repo(&sb, 800, state);
        let pack = the_pack(&repo);
        // The largest blob: damage the middle of its entry.
        let mut cmd = sb.command(Client::New.program());
        cmd.current_dir(&repo).args(["verify-pack", "-v", pack.with_extension("idx").to_str().unwrap()]);
        let listing = run(cmd, None).assert_success().stdout_str();
        let (oid, offset, size) = listing
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 5 && f[1] == "blob")
                    .then(|| (f[0].to_owned(), f[4].parse::<u64>().unwrap(), f[3].parse::<u64>().unwrap()))
            })
            .max_by_key(|b| b.2)
            .expect("a blob");
        let mut bytes = std::fs::read(&pack).unwrap();
        let at = (offset + size / 2) as usize;
        bytes[at] ^= 0x55;
        std::fs::set_permissions(&pack, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        std::fs::write(&pack, &bytes).unwrap();
        let name = pack.file_name().unwrap().to_str().unwrap();
        for protocol in [0, 2] {
            clone_fails(&sb, &repo, protocol, &[name, "CRC mismatch", &oid]);
        }
        raw_fetch_fails(&sb, &repo, "CRC mismatch");
    }
}

/// A truncated pack, or one whose trailer is not the checksum its `.idx` names, is refused
/// when it is opened (as git does: "packfile … does not match index"), naming it.
#[test]
fn truncated_or_mismatched_pack_is_an_error_naming_it() {
    let sb = Sandbox::new("faults-truncated");
    let repo = generated_repo(&sb, 800, "graph");
    let pack = the_pack(&repo);
    let name = pack.file_name().unwrap().to_str().unwrap().to_owned();
    let good = std::fs::read(&pack).unwrap();
    std::fs::set_permissions(&pack, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut cut = good.clone();
    cut.truncate(good.len() / 2);
    std::fs::write(&pack, &cut).unwrap();
    for protocol in [0, 2] {
        clone_fails(&sb, &repo, protocol, &[&name, "trailer does not match its index"]);
    }
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(&pack, &flipped).unwrap();
    clone_fails(&sb, &repo, 0, &[&name, "trailer does not match its index"]);
    std::fs::write(&pack, &good).unwrap();
    let dest = sb.join("restored");
    sb.clone(Client::New, 0, Server::UnderTest, &repo, &dest, &["--bare"]);
    sb.fsck(&dest);
}

/// A loose blob deleted (or a tree, which the walk reads): the fetch fails naming the object.
#[test]
fn missing_object_is_an_error_naming_it() {
    for kind in ["blob", "tree"] {
        let sb = Sandbox::new(&format!("faults-missing-{kind}"));
        let repo = sb.join("loose.git");
        sb.git(sb.path(), &["init", "-q", "--bare", repo.to_str().unwrap()]);
        push_loose_commits(&sb, &repo, "main");
        let spec = if kind == "blob" { "main~1:loose0" } else { "main~1^{tree}" };
        let oid = sb.rev_parse(&repo, spec);
        // A blob changed only in main~1 ... but loose0 is in every later tree: any object works.
        let file = repo.join("objects").join(&oid[..2]).join(&oid[2..]);
        std::fs::remove_file(&file).unwrap();
        for protocol in [0, 2] {
            clone_fails(&sb, &repo, protocol, &[&oid]);
        }
        raw_fetch_fails(&sb, &repo, &oid);
    }
}

/// A branch advertised, then deleted and its commits pruned before the client's wants arrive:
/// the fetch fails naming the missing object (git's upload-pack fails the same way), and no
/// pack is presented as complete.
#[test]
fn want_pruned_after_the_advertisement_is_an_error_naming_it() {
    let sb = Sandbox::new("faults-pruned-want");
    let repo = generated_repo(&sb, 800, "graph");
    push_loose_commits(&sb, &repo, "doomed");
    let doomed = sb.rev_parse(&repo, "refs/heads/doomed");
    let mut s = Stalled::start(&sb, &repo, None);
    let adv = s.read_until_flush();
    assert!(advertised_oids(&adv).contains(&doomed));
    sb.git(&repo, &["update-ref", "-d", "refs/heads/doomed"]);
    sb.git(&repo, &["gc", "-q", "--prune=now"]);
    let gone = sb.git_with(Client::New, &repo, &["cat-file", "-e", &doomed]);
    assert!(!gone.status.success(), "gc kept {doomed}");
    let (status, out, err) = s.finish(&v0_request(std::slice::from_ref(&doomed)));
    assert!(!status.success(), "packserve exited 0: {err}");
    assert!(err.contains(&doomed), "stderr does not name {doomed}: {err}");
    // An error where a pack would start: ERR in v0 before the pack, or band 3 during it; no
    // complete pack.
    let text = String::from_utf8_lossy(&out);
    let r = pktline::parse_fetch_response(&out);
    let band3 = String::from_utf8_lossy(&r.band3);
    assert!(
        (text.contains("ERR ") || band3.starts_with("fatal:")) && text.contains(&doomed[..]),
        "no error naming {doomed} in the response: {text}"
    );
    assert_incomplete(&sb, &r.pack);
}

/// Advertisements (`--advertise-refs`, which opens every pack) in a tight loop while another
/// thread makes refs loose and packs them again (`git pack-refs`) and replaces many packs by
/// one (`git repack -ad`) and back: every advertisement must list every ref, and none may fail.
/// Before packserve read loose refs first and listed the pack directory again, 827 of 3000
/// advertisements here were wrong: 802 missed refs, 25 failed on a vanished `.idx`.
#[test]
fn advertisements_during_pack_refs_and_repack_are_complete() {
    let sb = Sandbox::new("faults-advertise");
    let repo = generated_repo(&sb, 1500, "none");
    let main = sb.rev_parse(&repo, "main");
    let older = sb.rev_parse(&repo, "main~1");
    let stable: String = (0..200).map(|i| format!("create refs/tags/stable{i} {main}\n")).collect();
    let mut cmd = sb.command(Client::New.program());
    cmd.current_dir(&repo).args(["update-ref", "--stdin"]);
    run(cmd, Some(stable.as_bytes())).assert_success();
    // Twenty packs of the same objects, kept aside to be put back after each repack -ad.
    let saved = sb.join("saved-packs");
    std::fs::create_dir(&saved).unwrap();
    let all = sb.git(&repo, &["rev-list", "--objects", "--all"]);
    let ids: Vec<&str> = all.lines().map(|l| l.split(' ').next().unwrap()).collect();
    for chunk in ids.chunks(ids.len().div_ceil(20)) {
        let mut cmd = sb.command(Client::New.program());
        cmd.current_dir(&repo).args(["pack-objects", "-q", saved.join("pack").to_str().unwrap()]);
        run(cmd, Some(format!("{}\n", chunk.join("\n")).as_bytes())).assert_success();
    }
    let restore = || {
        // As git installs a pack: each file written aside, then renamed, the .idx last.
        for e in std::fs::read_dir(&saved).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".pack") else { continue };
            for ext in ["pack", "idx"] {
                let tmp = repo.join(format!("objects/pack/.tmp-{stem}.{ext}"));
                std::fs::copy(saved.join(format!("{stem}.{ext}")), &tmp).unwrap();
                std::fs::rename(&tmp, repo.join(format!("objects/pack/{stem}.{ext}"))).unwrap();
            }
        }
    };
    let stop = AtomicBool::new(false);
    let limit = std::time::Duration::from_secs(20);
    let (rounds, failures) = std::thread::scope(|s| {
        let mutator = s.spawn(|| {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let value = if i.is_multiple_of(2) { &older } else { &main };
                let batch: String = (0..40)
                    .map(|k| format!("update refs/tags/stable{} {value}\n", (i * 40 + k) % 200))
                    .collect();
                let mut cmd = sb.command(Client::New.program());
                cmd.current_dir(&repo).args(["update-ref", "--stdin"]);
                run(cmd, Some(batch.as_bytes())).assert_success();
                sb.git(&repo, &["pack-refs", "--all", "--prune"]);
                if i.is_multiple_of(3) {
                    restore();
                    sb.git(&repo, &["-c", "repack.writeBitmaps=false", "repack", "-adq"]);
                }
                i += 1;
            }
            i
        });
        let start = std::time::Instant::now();
        let mut failures = Vec::new();
        let mut rounds = 0;
        while start.elapsed() < limit && rounds < 3000 {
            rounds += 1;
            let out = sb.serve(Server::UnderTest, &["--advertise-refs", repo.to_str().unwrap()], None, None);
            let tags = out.stdout_str().matches(" refs/tags/stable").count();
            if !out.status.success() || tags != 200 {
                failures.push(format!(
                    "exit {:?}, {tags} of 200 refs: {}",
                    out.code(),
                    out.stderr_str().trim()
                ));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let changes = mutator.join().unwrap();
        eprintln!(
            "{rounds} advertisements during {changes} rounds of pack-refs (and repack -ad every third)"
        );
        (rounds, failures)
    });
    assert!(
        failures.is_empty(),
        "{} of {rounds} advertisements wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(rounds >= 100, "only {rounds} advertisements");
}
