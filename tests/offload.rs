//! Beyond one machine (issue 13), end to end with real servers and real clients:
//!
//! - v2 `bundle-uri`: the answer is git's, byte for byte; git 2.47 clones take the bundles from
//!   a static nginx and only the rest from packserve (over sshd and Apache), a later fetch
//!   takes a newer `creationToken` bundle, a bundle server that is down or a URI that is not
//!   http(s) leave the clone whole; hidden refs stay hidden.
//! - `packfile-uris`: a configured blob (loose, then packed with a bitmap) comes from the web
//!   server instead of the pack, for git 2.47 and 2.39 over sshd and Apache; clients that do
//!   not ask, filtered clones and blobs only hidden refs reach are unaffected.
//! - Replicas: two lighttpd + `packserve http-backend` replicas on one repository directory
//!   behind an nginx `upstream`; a clone's requests land on both; clones, fetches and pushes
//!   (through `git http-backend`) go on while a replica is stopped and after a repack.
//! - Pushes handed to git: `packserve shell --receive-pack --allow-push` through sshd, and the
//!   push recipes of contrib/ for Apache, nginx + fcgiwrap and lighttpd (password for push
//!   only), each pushed and then fetched with git 2.47 and 2.39.

mod common;

use common::pktline;
use common::servers::*;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

// ---------------------------------------------------------------------------
// Helpers

/// The key=value fields of an operator log line (values with spaces are not needed here).
fn fields(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|f| f.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

fn is_fetch(line: &str) -> bool {
    fields(line).get("commands").is_some_and(|c| c.split(',').any(|c| c == "fetch" || c == "upload-pack"))
}

/// The `objects=` of the first fetch after the log's first `n` that sent a pack, once it is
/// logged (over HTTP a fetch takes several requests: negotiation rounds send no objects).
#[track_caller]
fn pack_objects_after(log: &Path, n: usize) -> u64 {
    let sent = |t: &str| {
        t.lines()
            .filter(|l| is_fetch(l))
            .skip(n)
            .map(|l| fields(l)["objects"].parse::<u64>().unwrap())
            .find(|&o| o > 0)
    };
    sent(&log_when(log, |t| sent(t).is_some())).unwrap()
}

fn fetch_count(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().filter(|l| is_fetch(l)).count()
}

/// `git -c protocol.version=2 -c <config>... <sub> <args>` through `remote`, unjudged.
fn git_via(
    sb: &Sandbox,
    remote: &Remote,
    client: Client,
    config: &[&str],
    dir: &Path,
    sub: &str,
    args: &[&str],
) -> Output {
    let mut cmd = sb.command(client.program());
    cmd.current_dir(dir).args(["-c", "protocol.version=2"]);
    for c in config {
        cmd.arg("-c").arg(c);
    }
    cmd.arg(sub).args(args);
    remote.apply(&mut cmd);
    run(cmd, None)
}

/// `git clone <extra> <remote>/main.git <dest>` through `remote` (see [`git_via`]); the clone
/// must succeed and pass fsck.
#[allow(clippy::too_many_arguments)]
fn clone_via(
    sb: &Sandbox,
    remote: &Remote,
    client: Client,
    config: &[&str],
    extra: &[&str],
    dest: &Path,
    ctx: &str,
) {
    let url = remote.url("main.git");
    let mut args = extra.to_vec();
    args.extend([url.as_str(), dest.to_str().unwrap()]);
    let out = git_via(sb, remote, client, config, sb.path(), "clone", &args);
    assert!(out.status.success(), "{ctx}: {out}");
    sb.fsck(dest);
}

/// Lets the sandbox's git read repositories owned by www-data (pushed to through web servers).
fn trust_all(sb: &Sandbox) {
    let cfg = sb.home().join(".gitconfig");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[safe]\n\tdirectory = *\n");
    std::fs::write(cfg, text).unwrap();
}

/// Objects reachable from the refs a client sees (all but `refs/hidden/`).
fn visible_objects(sb: &Sandbox, repo: &Path) -> usize {
    sb.git(repo, &["rev-list", "--objects", "--exclude=refs/hidden/*", "--all"]).lines().count()
}

/// The response after the v2 capability advertisement (everything after its flush).
fn after_advertisement(out: &[u8]) -> Vec<u8> {
    let (pkts, _) = pktline::parse_prefix(out);
    let mut at = 0;
    for p in &pkts {
        at += pkt_bytes(p);
        if *p == pktline::Pkt::Flush {
            break;
        }
    }
    out[at..].to_vec()
}

fn pkt_bytes(p: &pktline::Pkt) -> usize {
    match p {
        pktline::Pkt::Data(d) => d.len() + 4,
        _ => 4,
    }
}

// ---------------------------------------------------------------------------
// bundle-uri

/// The `bundle-uri` answer is git's upload-pack's, byte for byte, for the same configuration
/// (repository file and command-line keys, subsections, values with spaces); it is only
/// advertised when configured, not inside a namespace, and takes no arguments.
#[test]
fn bundle_uri_answers_as_git() {
    let sb = Sandbox::new("offload-bundle-raw");
    let repo = sb.fixture_copy("linear");
    let request = pktline::request(&["command=bundle-uri", "object-format=sha1", "0001", "0000"]);
    let serve = |server: Server, env: &[(&str, &str)], stdin: &[u8]| {
        let mut cmd = sb.command(server.program());
        cmd.arg(&repo).env("GIT_PROTOCOL", "version=2");
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(cmd, Some(stdin))
    };
    // Not configured: neither advertised nor served.
    let out = serve(Server::UnderTest, &[], &request);
    assert!(!extra::v2_caps(&out.stdout).iter().any(|c| c == "bundle-uri"), "{out}");
    assert!(out.stderr_str().contains("invalid command 'bundle-uri'"), "{out}");

    sb.config(&repo, "uploadpack.advertiseBundleURIs", "true");
    sb.config(&repo, "bundle.version", "1");
    sb.config(&repo, "bundle.mode", "any");
    sb.config(&repo, "bundle.heuristic", "creationToken");
    sb.config(&repo, "bundle.Caps-ID.uri", "https://cdn.example/a b.bundle");
    sb.config(&repo, "bundle.Caps-ID.creationToken", "7");
    sb.config_add(&repo, "bundle.two.uri", "https://cdn.example/two.bundle");
    sb.config_add(&repo, "bundle.two.uri", "https://cdn.example/two-again.bundle");
    let env = [
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG_KEY_0", "bundle.fromEnv.URI"),
        ("GIT_CONFIG_VALUE_0", "http://127.0.0.1:1/env.bundle"),
    ];
    let ours = serve(Server::UnderTest, &env, &request).assert_success();
    let git = serve(Server::Reference, &env, &request).assert_success();
    assert!(extra::v2_caps(&ours.stdout).iter().any(|c| c == "bundle-uri"), "{ours}");
    let (a, b) = (after_advertisement(&ours.stdout), after_advertisement(&git.stdout));
    assert!(String::from_utf8_lossy(&a).contains("bundle.Caps-ID.uri=https://cdn.example/a b.bundle"));
    assert_eq!(
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b),
        "the bundle list differs from git's"
    );
    assert!(a.len() > 100, "the list is not empty");

    // An argument is an error, as in git.
    let bad = pktline::request(&["command=bundle-uri", "object-format=sha1", "0001", "please", "0000"]);
    let out = serve(Server::UnderTest, &[], &bad);
    assert!(out.stderr_str().contains("bundle-uri: unexpected argument: 'please'"), "{out}");

    // Inside a namespace the repository-wide list is not offered (git offers it).
    let ns = [("GIT_NAMESPACE", "team")];
    let ours = serve(Server::UnderTest, &ns, &request);
    let git = serve(Server::Reference, &ns, &request);
    assert!(!extra::v2_caps(&ours.stdout).iter().any(|c| c == "bundle-uri"), "{ours}");
    assert!(ours.stderr_str().contains("invalid command 'bundle-uri'"), "{ours}");
    assert!(extra::v2_caps(&git.stdout).iter().any(|c| c == "bundle-uri"), "git advertises it: {git}");
}

/// git 2.47 clones take the bundle from the static server and the rest from packserve (over
/// sshd and Apache); git 2.39 does not ask and gets everything. A later fetch with a newer
/// `creationToken` bundle takes only that bundle; a bundle server that is down and a URI that
/// is not http(s) leave clones whole. Hidden refs stay hidden.
#[test]
fn bundle_uri_clones_and_fetches_through_ssh_and_http() {
    let sb = Sandbox::new("offload-bundle");
    let served = Served::new(&sb);
    let repo = served.repo("main.git");
    let files = StaticServer::start(&sb, "bundles");
    let base = files.files.join("base.bundle");
    sb.git(&repo, &["bundle", "create", base.to_str().unwrap(), "--branches", "--tags"]);
    advance(&sb, &repo);
    // A hidden ref whose commit no bundle has.
    sb.sh(&repo, "tick_after_repo; many_commits refs/hidden/secret 2 refs/heads/main");
    let secret = sb.rev_parse(&repo, "refs/hidden/secret");
    sb.config(&repo, "uploadpack.hideRefs", "refs/hidden");
    for (k, v) in [
        ("uploadpack.advertiseBundleURIs", "true"),
        ("bundle.version", "1"),
        ("bundle.mode", "all"),
        ("bundle.heuristic", "creationToken"),
        ("bundle.base.uri", &files.url("base.bundle")),
        ("bundle.base.creationToken", "1"),
    ] {
        sb.config(&repo, k, v);
    }
    let ssh = SshServer::start(&sb, &served);
    let http = HttpServer::start(&sb, &served);
    let bundle_on = ["transfer.bundleURI=true"];
    let mut keep = None;
    for (remote, log) in [(ssh.remote(Key::Forced), &ssh.log), (http.remote(), &http.log)] {
        for client in Client::ALL {
            let ctx = format!("{} {}", remote.transport, label(client, 2));
            let dest = sb.unique("clone");
            let before = files.downloads("base.bundle");
            let n = fetch_count(log);
            clone_via(&sb, &remote, client, &bundle_on, &[], &dest, &ctx);
            assert_eq!(
                sb.refs(&dest)
                    .iter()
                    .filter(|(r, _)| r.starts_with("refs/remotes/origin/") && !r.ends_with("/HEAD"))
                    .count(),
                sb.git(&repo, &["for-each-ref", "refs/heads"]).lines().count(),
                "{ctx}: branches"
            );
            let objects = pack_objects_after(log, n);
            let visible = visible_objects(&sb, &repo);
            let got_bundle = files.downloads("base.bundle") - before;
            if client == Client::New {
                assert_eq!(got_bundle, 1, "{ctx}: the bundle was not downloaded");
                assert!(
                    sb.git(&dest, &["for-each-ref", "refs/bundles/"]).contains("refs/bundles/main"),
                    "{ctx}"
                );
                assert!(objects < visible as u64 / 2, "{ctx}: packserve sent {objects} of {visible} objects");
                assert_eq!(sb.git(&dest, &["config", "fetch.bundleCreationToken"]).trim(), "1", "{ctx}");
                keep = Some(dest.clone());
                println!("ROW | bundle-uri | {} | {} | bundle downloaded; packserve sent {objects} of {visible} objects |", remote.transport, label(client, 2));
            } else {
                assert_eq!(got_bundle, 0, "{ctx}: git 2.39 does not ask for bundles");
                println!(
                    "ROW | bundle-uri | {} | {} | not asked; packserve sent {objects} of {visible} objects |",
                    remote.transport,
                    label(client, 2)
                );
            }
            // Hidden stays hidden, whatever the bundles hold.
            assert!(!sb.git(&dest, &["for-each-ref"]).contains("hidden"), "{ctx}");
            assert!(!sb.git_with(Client::New, &dest, &["cat-file", "-e", &secret]).status.success(), "{ctx}");
        }
    }

    // A later fetch: a newer bundle (creationToken 2, main's new history) from the list the
    // client is told of; packserve then sends only what that bundle lacks.
    let clone = keep.unwrap();
    let old_tips: Vec<String> = sb
        .git(&repo, &["for-each-ref", "--format=^%(objectname)", "refs/heads", "refs/tags"])
        .lines()
        .map(String::from)
        .collect();
    advance(&sb, &repo);
    let newer = files.files.join("newer.bundle");
    let mut args = vec!["bundle", "create", newer.to_str().unwrap(), "main"];
    args.extend(old_tips.iter().map(String::as_str));
    sb.git(&repo, &args);
    let mut rev_list = vec!["rev-list", "--objects", "--exclude=refs/hidden/*", "--all"];
    rev_list.extend(old_tips.iter().map(String::as_str));
    let new_objects = sb.git(&repo, &rev_list).lines().count() as u64;
    sb.config(&repo, "bundle.newer.uri", &files.url("newer.bundle"));
    sb.config(&repo, "bundle.newer.creationToken", "2");
    std::fs::write(
        files.files.join("list"),
        "[bundle]\n\tversion = 1\n\tmode = all\n\theuristic = creationToken\n\
         [bundle \"base\"]\n\turi = base.bundle\n\tcreationToken = 1\n\
         [bundle \"newer\"]\n\turi = newer.bundle\n\tcreationToken = 2\n",
    )
    .unwrap();
    let base_downloads = files.downloads("base.bundle");
    let n = fetch_count(&http.log);
    let list = format!("fetch.bundleURI={}", files.url("list"));
    let out = git_via(&sb, &http.remote(), Client::New, &[&list], &clone, "fetch", &["origin"]);
    assert!(out.status.success(), "fetch with bundles: {out}");
    assert_eq!(files.downloads("newer.bundle"), 1, "the newer bundle");
    assert_eq!(files.downloads("base.bundle"), base_downloads, "the base bundle is not fetched again");
    assert_eq!(sb.git(&clone, &["config", "fetch.bundleCreationToken"]).trim(), "2");
    let with_bundle = pack_objects_after(&http.log, n);
    println!("ROW | bundle-uri (creationToken fetch) | http | git 2.47 | newer.bundle downloaded; packserve sent {with_bundle} of {new_objects} new objects |");
    assert!(
        with_bundle > 0 && with_bundle < new_objects,
        "packserve sent {with_bundle} of the {new_objects} new objects after the newer bundle"
    );
    sb.fsck(&clone);
    assert_eq!(sb.rev_parse(&clone, "origin/main"), sb.rev_parse(&repo, "main"));
    assert_eq!(sb.rev_parse(&clone, "origin/fresh"), sb.rev_parse(&repo, "fresh"));

    // Down, or not http(s): the clone is whole all the same, from packserve alone.
    let clone_from_packserve = |config: &[&str], ctx: &str| -> u64 {
        let dest = sb.unique("clone");
        let n = fetch_count(&http.log);
        clone_via(&sb, &http.remote(), Client::New, config, &[], &dest, ctx);
        assert!(sb.git(&dest, &["for-each-ref", "refs/bundles/"]).is_empty(), "{ctx}");
        pack_objects_after(&http.log, n)
    };
    let full = clone_from_packserve(&[], "without bundles");
    sb.git(&repo, &["config", "--remove-section", "bundle.newer"]);
    for uri in [format!("http://127.0.0.1:{}/base.bundle", free_port()), "ftp://127.0.0.1/base.bundle".into()]
    {
        sb.config(&repo, "bundle.base.uri", &uri);
        assert_eq!(clone_from_packserve(&bundle_on, &uri), full, "{uri}: the whole pack from packserve");
        println!("ROW | bundle-uri (bundle server down / not http) | http | git 2.47 | {uri}: whole pack ({full} objects) from packserve |");
    }
}

// ---------------------------------------------------------------------------
// packfile-uris

/// A big blob configured in `uploadpack.blobPackfileUri` is downloaded from the web server
/// instead of being in the pack: loose and then packed (with a bitmap), for git 2.47 and 2.39
/// over sshd and Apache. Clients that do not ask, a filtered clone, and a blob only a hidden
/// ref reaches get no URI.
#[test]
fn packfile_uris_offload_big_blobs_over_ssh_and_http() {
    let sb = Sandbox::new("offload-packfile-uris");
    let served = Served::new(&sb);
    let repo = served.repo("main.git");
    let files = StaticServer::start(&sb, "packs");
    // A big blob on main and one only a hidden ref reaches, both loose.
    let big = sb.sh(
        &repo,
        "tick_after_repo; blob=$(seq 1 60000 | git hash-object -w --stdin); \
         tree=$(printf '100644 blob %s\\tbig.txt\\n' $blob | git mktree); tick; \
         c=$(git commit-tree -p main -m big $tree); git update-ref refs/heads/main $c; echo $blob",
    );
    let big = big.trim().to_owned();
    let secret = sb.sh(
        &repo,
        "blob=$(seq 5 70000 | git hash-object -w --stdin); \
         tree=$(printf '100644 blob %s\\tsecret.txt\\n' $blob | git mktree); tick; \
         c=$(git commit-tree -p main -m secret $tree); git update-ref refs/hidden/secret $c; echo $blob",
    );
    let secret = secret.trim().to_owned();
    sb.config(&repo, "uploadpack.hideRefs", "refs/hidden");
    let mut pack_of = BTreeMap::new();
    for (name, blob) in [("big", &big), ("secret", &secret)] {
        let mut cmd = sb.command(Client::New.program());
        cmd.current_dir(&repo).arg("pack-objects").arg(files.files.join(name));
        let hash =
            run(cmd, Some(format!("{blob}\n").as_bytes())).assert_success().stdout_str().trim().to_owned();
        let file = format!("{name}-{hash}.pack");
        sb.config_add(&repo, "uploadpack.blobPackfileUri", &format!("{blob} {hash} {}", files.url(&file)));
        pack_of.insert(name, file);
    }
    let ssh = SshServer::start(&sb, &served);
    let http = HttpServer::start(&sb, &served);
    let ask = ["fetch.uriProtocols=http"];
    let mut downloaded = 0;
    for state in ["loose", "packed with a bitmap"] {
        if state != "loose" {
            sb.git(&repo, &["repack", "-adb", "-q"]);
            assert!(!repo.join("objects").join(&big[..2]).join(&big[2..]).exists(), "the blob is packed");
        }
        // A client that does not ask gets everything.
        let n = fetch_count(&http.log);
        let dest = sb.unique("clone");
        clone_via(&sb, &http.remote(), Client::New, &[], &["--bare"], &dest, state);
        let full = pack_objects_after(&http.log, n);
        assert_eq!(files.downloads(&pack_of["big"]), downloaded, "{state}: a client that did not ask");
        for (remote, log) in [(ssh.remote(Key::Forced), &ssh.log), (http.remote(), &http.log)] {
            for client in Client::ALL {
                let ctx = format!("{state}: {} {}", remote.transport, label(client, 2));
                let before = files.downloads(&pack_of["big"]);
                let n = fetch_count(log);
                let dest = sb.unique("clone");
                clone_via(&sb, &remote, client, &ask, &[], &dest, &ctx);
                assert_eq!(
                    files.downloads(&pack_of["big"]) - before,
                    1,
                    "{ctx}: the pack was not downloaded"
                );
                downloaded += 1;
                assert_eq!(pack_objects_after(log, n), full - 1, "{ctx}: the blob left the pack");
                println!("ROW | packfile-uris ({state}) | {} | {} | blob from the web server; packserve sent {} of {full} objects |", remote.transport, label(client, 2), full - 1);
                assert_eq!(sb.git(&dest, &["cat-file", "-s", &big]).trim(), "348894", "{ctx}");
                assert_eq!(sb.rev_parse(&dest, "origin/main"), sb.rev_parse(&repo, "main"), "{ctx}");
            }
        }
    }
    // With sideband-all the sections go on band 1, as git's do.
    sb.config(&repo, "uploadpack.allowSidebandAll", "true");
    let dest = sb.unique("clone");
    let before = files.downloads(&pack_of["big"]);
    clone_via(&sb, &http.remote(), Client::New, &ask, &[], &dest, "sideband-all");
    assert_eq!(files.downloads(&pack_of["big"]) - before, 1, "sideband-all");
    println!("ROW | packfile-uris | http | git 2.47 (sideband-all) | pack downloaded from the web server |");
    // A filtered clone does not get the blob, so no URI either.
    let before = files.downloads(&pack_of["big"]);
    let dest = sb.unique("clone");
    clone_via(
        &sb,
        &http.remote(),
        Client::New,
        &ask,
        &["--filter=blob:none", "--no-checkout"],
        &dest,
        "blob:none",
    );
    assert_eq!(files.downloads(&pack_of["big"]), before, "blob:none");
    println!("ROW | packfile-uris | http | git 2.47 (--filter=blob:none) | no URI: the filtered blob is not sent at all |");
    // The hidden blob's pack was never named to anyone.
    assert_eq!(files.downloads(&pack_of["secret"]), 0, "the hidden blob's URI was listed");
    assert!(!files.access_log().contains("secret-"), "{}", files.access_log());
}

// ---------------------------------------------------------------------------
// Replicas

/// Two replicas (lighttpd running `packserve http-backend`, and `git http-backend` for
/// pushes) on one repository directory behind an nginx `upstream`. One v2 clone's requests
/// land on both. Then rounds of push, fetch and clone go on through a repack and with one
/// replica stopped: every push lands, every clone is complete.
#[test]
fn replicas_behind_a_load_balancer() {
    let sb = Sandbox::new("offload-replicas");
    trust_all(&sb);
    let served = Served::new(&sb);
    let repo = served.repo("main.git");
    give_to_www_data(&repo);
    let a = WebServer::lighttpd_push(&sb, &served, "replica-a");
    let b = WebServer::lighttpd_push(&sb, &served, "replica-b");
    let lb = LoadBalancer::nginx(&sb, &[a.port, b.port]);
    let remote = lb.remote();
    let (a_log, b_log) = (a.log.clone(), b.log.clone());
    let lines = |log: &Path| std::fs::read_to_string(log).unwrap_or_default().lines().count();

    // One v2 clone: GET info/refs, POST ls-refs, POST fetch, round robin over two replicas.
    let work = sb.join("work");
    let out = git_via(
        &sb,
        &remote,
        Client::New,
        &[],
        sb.path(),
        "clone",
        &[&remote.url("main.git"), work.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out}");
    log_when(&a_log, |t| !t.is_empty());
    log_when(&b_log, |t| !t.is_empty());
    let commands = |log: &Path| -> Vec<String> {
        std::fs::read_to_string(log).unwrap().lines().map(|l| fields(l)["commands"].clone()).collect()
    };
    let (on_a, on_b) = (commands(&a_log), commands(&b_log));
    assert_eq!(on_a.len() + on_b.len(), 3, "a: {on_a:?} b: {on_b:?}");

    let push_url = format!("http://{}:{}@127.0.0.1:{}/git/main.git", PUSHER.0, PUSHER.1, lb.port);
    let mut pushed = Vec::new();
    let mut b = Some(b);
    for round in 0..5 {
        if round == 2 {
            // Maintenance on the shared directory, as its owner.
            let out = Command::new(require("setpriv", "util-linux"))
                .args(["--reuid=www-data", "--regid=www-data", "--clear-groups", "--"])
                .arg(Client::New.program())
                .arg("-C")
                .arg(&repo)
                .args(["repack", "-adb", "-q"])
                .env("HOME", sb.home())
                .output()
                .unwrap();
            assert!(out.status.success(), "repack: {}", String::from_utf8_lossy(&out.stderr));
        }
        if round == 3 {
            drop(b.take()); // replica b stops: its lighttpd and CGIs are gone
        }
        let before_a = lines(&a_log);
        sb.sh(&work, &format!("commit round{round}.txt 'round {round}' 'round {round}'"));
        for client in Client::ALL {
            let ctx = format!("round {round} {}", label(client, 2));
            if client == Client::Old {
                sb.sh(&work, &format!("commit round{round}-old.txt 'old {round}' 'old {round}'"));
            }
            let out = git_via(&sb, &remote, client, &[], &work, "push", &[&push_url, "HEAD:refs/heads/main"]);
            assert!(out.status.success(), "{ctx}: push: {out}");
            pushed.push(sb.rev_parse(&work, "HEAD"));
            let out = git_via(&sb, &remote, client, &[], &work, "fetch", &["origin"]);
            assert!(out.status.success(), "{ctx}: fetch: {out}");
            assert_eq!(sb.rev_parse(&work, "origin/main"), *pushed.last().unwrap(), "{ctx}");
        }
        let dest = sb.unique("clone");
        clone_via(&sb, &remote, Client::Old, &[], &["--mirror"], &dest, &format!("round {round}: clone"));
        assert_eq!(sb.refs(&dest), sb.refs(&repo), "round {round}: the clone has the server's refs");
        if b.is_none() {
            assert!(lines(&a_log) > before_a, "round {round}: replica a answered");
        }
    }
    // Requests round robin sent to the stopped replica were passed on: GETs and POSTs alike,
    // since nothing had been sent to it when the connection was refused.
    assert!(lb.error_log().contains("Connection refused"), "{}", lb.error_log());
    sb.fsck(&repo);
    for c in &pushed {
        assert!(
            sb.git_with(Client::New, &repo, &["merge-base", "--is-ancestor", c, "main"]).status.success(),
            "{c} lost"
        );
    }
    assert_eq!(sb.rev_parse(&repo, "main"), *pushed.last().unwrap());
    println!("ROW | replicas | http (nginx upstream, 2 lighttpd replicas) | git 2.47, 2.39 | {} pushes, {} fetches, 5 mirror clones; replica b stopped after round 3, repack -adb at round 2; nothing lost |", pushed.len(), pushed.len());
    drop(lb);
    drop(a);
}

// ---------------------------------------------------------------------------
// Pushes handed to git

/// A fresh bare repository below the root to push to.
fn push_repo(sb: &Sandbox, served: &Served, name: &str) -> std::path::PathBuf {
    let dest = served.repo(name);
    sb.git(
        sb.path(),
        &["clone", "-q", "--bare", served.repo("main.git").to_str().unwrap(), dest.to_str().unwrap()],
    );
    std::fs::write(dest.join("git-daemon-export-ok"), "").unwrap();
    dest
}

/// Push with each client, then fetch what was pushed with the other one; the server's refs
/// and objects are intact after each push. `push` is the URL pushes go to, `fetch` the remote
/// that fetches (through packserve, whose `log` must show them).
fn push_then_fetch(
    sb: &Sandbox,
    what: &str,
    fetch: &Remote,
    push_remote: &Remote,
    push: &str,
    repo: &Path,
    log: &Path,
) {
    let url = fetch.url(repo.file_name().unwrap().to_str().unwrap());
    let clone = |client: Client, stem: &str| {
        let dest = sb.unique(stem);
        let out = git_via(sb, fetch, client, &[], sb.path(), "clone", &[&url, dest.to_str().unwrap()]);
        assert!(out.status.success(), "{out}");
        dest
    };
    let (work, other) = (clone(Client::New, "work"), clone(Client::Old, "other"));
    for (pusher, fetcher) in [(Client::New, Client::Old), (Client::Old, Client::New)] {
        let ctx = format!("{} push {} then fetch {}", fetch.transport, label(pusher, 0), label(fetcher, 2));
        sb.sh(&work, &format!("commit pushed-{}.txt x 'pushed by {ctx}'", label(pusher, 0)));
        let before = sb.refs(repo);
        let mut cmd = sb.command(pusher.program());
        cmd.current_dir(&work).args(["push", push, "HEAD:refs/heads/main", "HEAD:refs/heads/pushed"]);
        push_remote.apply(&mut cmd);
        let out = run(cmd, None);
        assert!(out.status.success(), "{ctx}: {out}");
        let head = sb.rev_parse(&work, "HEAD");
        sb.fsck(repo);
        let after = sb.refs(repo);
        assert_eq!(after["refs/heads/main"], head, "{ctx}");
        assert_eq!(after["refs/heads/pushed"], head, "{ctx}");
        let untouched = |m: &BTreeMap<String, String>| {
            m.iter()
                .filter(|(k, _)| !k.ends_with("/main") && !k.ends_with("/pushed"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(untouched(&after), untouched(&before), "{ctx}: other refs");
        let n = fetch_count(log);
        let out = git_via(sb, fetch, fetcher, &[], &other, "fetch", &["origin"]);
        assert!(out.status.success(), "{ctx}: {out}");
        pack_objects_after(log, n);
        assert_eq!(sb.rev_parse(&other, "origin/pushed"), head, "{ctx}");
        sb.fsck(&other);
        println!("ROW | push, then fetch | {} | {} then {} | pushed {head:.12}, fetched back through packserve, fsck clean |", what, label(pusher, 0), label(fetcher, 2));
    }
}

/// `packserve shell --receive-pack --allow-push`: the allowed key pushes (git 2.47 and 2.39)
/// and the pushes are fetched back through packserve; a key without `--receive-pack`, a key
/// without `--allow-push`, and a repository no glob matches are refused with a clear message.
#[test]
fn ssh_pushes_go_to_receive_pack_only_when_allowed() {
    let sb = Sandbox::new("offload-ssh-push");
    let served = Served::new(&sb);
    let repo = push_repo(&sb, &served, "push.git");
    let ssh = SshServer::start(&sb, &served);
    let pusher = ssh.remote(Key::Pusher);
    push_then_fetch(
        &sb,
        "ssh (sshd, packserve shell --receive-pack)",
        &ssh.remote(Key::Forced),
        &pusher,
        &pusher.url("push.git"),
        &repo,
        &ssh.log,
    );
    let log = log_when(&ssh.log, |t| t.matches("commands=receive-pack").count() >= 2);
    assert!(
        log.lines().any(|l| l.contains("user=pusher")
            && l.contains("commands=receive-pack")
            && l.contains("outcome=ok")),
        "{log}"
    );

    for (key, repo_name, says) in [
        (Key::Forced, "push.git", "packserve serves fetches only: 'git-receive-pack' is not available here"),
        (
            Key::NoPushGlob,
            "push.git",
            "'/push.git': push access denied: this key may not push here (no --allow-push matches)",
        ),
        (Key::Pusher, "main.git", "'/main.git': push access denied"),
    ] {
        let remote = ssh.remote(key);
        let target = served.repo(repo_name);
        let before = sb.refs(&target);
        let work = sb.unique("work");
        sb.git(sb.path(), &["clone", "-q", target.to_str().unwrap(), work.to_str().unwrap()]);
        sb.sh(&work, "commit refused.txt no 'to be refused'");
        for client in Client::ALL {
            let mut cmd = sb.command(client.program());
            cmd.current_dir(&work).args(["push", &remote.url(repo_name), "HEAD:refs/heads/refused"]);
            remote.apply(&mut cmd);
            let out = run(cmd, None);
            assert!(!out.status.success(), "{key:?} {repo_name}: pushed:\n{out}");
            assert!(out.stderr_str().contains(says), "{key:?} {repo_name}: {out}");
        }
        assert_eq!(sb.refs(&target), before, "{key:?}: refs changed");
        println!(
            "ROW | push refused | ssh | git 2.47, 2.39 | {key:?} to {repo_name}: refused, refs unchanged |"
        );
    }
}

/// The push recipe (contrib/) for one web server: fetches through packserve (no password),
/// pushes through git http-backend (password required), with git 2.47 and 2.39.
fn web_push(sb: &Sandbox, served: &Served, port: u16, log: &Path, what: &str) {
    let repo = push_repo(sb, served, &format!("push-{what}.git"));
    give_to_www_data(&repo);
    let fetch = http_remote(port, "401");
    let name = repo.file_name().unwrap().to_str().unwrap().to_owned();
    // Without a password the push is refused, and nothing changes.
    let before = sb.refs(&repo);
    let work = sb.unique("work");
    sb.git(sb.path(), &["clone", "-q", repo.to_str().unwrap(), work.to_str().unwrap()]);
    sb.sh(&work, "commit anonymous.txt no 'anonymous push'");
    let out = git_via(
        sb,
        &fetch,
        Client::New,
        &[],
        &work,
        "push",
        &[&fetch.url(&name), "HEAD:refs/heads/anonymous"],
    );
    assert!(!out.status.success(), "{what}: an anonymous push succeeded: {out}");
    assert_eq!(sb.refs(&repo), before, "{what}");
    let push = format!("http://{}:{}@127.0.0.1:{port}/git/{name}", PUSHER.0, PUSHER.1);
    push_then_fetch(sb, &format!("http ({what} recipe)"), &fetch, &fetch, &push, &repo, log);
    // The pushes were git's: packserve logged fetches only.
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!text.contains("receive-pack"), "{what}: {text}");
}

/// The push recipes of contrib/, one web server after the other.
#[test]
fn web_servers_route_pushes_to_git_http_backend() {
    let sb = Sandbox::new("offload-web-push");
    trust_all(&sb);
    let served = Served::new(&sb);
    let apache = HttpServer::start_push(&sb, &served);
    web_push(&sb, &served, apache.port, &apache.log, "apache");
    drop(apache);
    let nginx = WebServer::nginx_push(&sb, &served);
    web_push(&sb, &served, nginx.port, &nginx.log, "nginx");
    drop(nginx);
    let lighttpd = WebServer::lighttpd_push(&sb, &served, "lighttpd");
    web_push(&sb, &served, lighttpd.port, &lighttpd.log, "lighttpd");
}
