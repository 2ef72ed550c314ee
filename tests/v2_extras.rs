//! The rest of protocol v2 and of the capability advertisement: the capabilities each config
//! key turns on (`filter`, `ref-in-want`, `sideband-all`, `object-info`, `session-id`,
//! `allow-*-sha1-in-want`), `wait-for-done` (raw and `git fetch --negotiate-only`),
//! `sideband-all`, `object-info`, `session-id` and `server-option` accepted, and git's errors
//! for unknown commands, capabilities and arguments.

mod common;

use common::pktline::{self, Pkt};
use common::*;
use std::path::{Path, PathBuf};

/// A copy of `linear` with `config`.
fn server(sb: &Sandbox, config: &[(&str, &str)]) -> PathBuf {
    let src = sb.fixture_copy("linear");
    for (k, v) in config {
        sb.config(&src, k, v);
    }
    src
}

/// Capability names without the values that legitimately differ (agent, session id).
fn normalize(caps: &[String]) -> Vec<String> {
    let mut v: Vec<String> = caps
        .iter()
        .map(|c| {
            if c.starts_with("agent=") {
                "agent=*".to_owned()
            } else if c.starts_with("session-id=") {
                "session-id=*".to_owned()
            } else if let Some(features) = c.strip_prefix("fetch=") {
                let mut f: Vec<&str> = features.split(' ').collect();
                f.sort();
                format!("fetch={}", f.join(" "))
            } else {
                c.clone()
            }
        })
        .collect();
    v.sort();
    v
}

const CONFIGS: &[(&str, &str)] = &[
    ("uploadpack.allowFilter", "true"),
    ("uploadpack.allowRefInWant", "true"),
    ("uploadpack.allowSidebandAll", "true"),
    ("transfer.advertiseObjectInfo", "true"),
    ("transfer.advertiseSID", "true"),
    ("uploadpack.allowTipSHA1InWant", "true"),
    ("uploadpack.allowReachableSHA1InWant", "true"),
    ("uploadpack.allowAnySHA1InWant", "true"),
];

/// v2: the capability advertisement equals git's (up to agent and session id values, and the
/// order of the fetch features), for each config key alone and for all of them.
#[test]
fn v2_capabilities_follow_the_configuration() {
    let sb = Sandbox::new("v2-caps");
    let mut sets: Vec<Vec<(&str, &str)>> = vec![vec![]];
    sets.extend(CONFIGS.iter().map(|c| vec![*c]));
    sets.push(CONFIGS.to_vec());
    for config in sets {
        let src = server(&sb, &config);
        let mut caps = Vec::new();
        for server in BOTH {
            let out = sb
                .serve(server, &["--advertise-refs", src.to_str().unwrap()], Some("version=2"), None)
                .assert_success();
            caps.push(normalize(&v2_caps(&out.stdout)));
        }
        assert_eq!(caps[1], caps[0], "v2 capabilities with {config:?} (left packserve, right git)");
        assert!(
            !caps[1].iter().any(|c| c.contains("packfile-uris")),
            "packfile-uris advertised: {:?}",
            caps[1]
        );
        std::fs::remove_dir_all(&src).unwrap();
    }
}

/// v0: the capabilities that config keys turn on are advertised exactly when git advertises
/// them.
#[test]
fn v0_capabilities_follow_the_configuration() {
    let sb = Sandbox::new("v0-caps");
    let keyed = ["filter", "session-id=*", "allow-tip-sha1-in-want", "allow-reachable-sha1-in-want"];
    let mut sets: Vec<Vec<(&str, &str)>> = vec![vec![]];
    sets.extend(CONFIGS.iter().map(|c| vec![*c]));
    sets.push(CONFIGS.to_vec());
    for config in sets {
        let src = server(&sb, &config);
        let mut caps = Vec::new();
        for server in BOTH {
            let out =
                sb.serve(server, &["--advertise-refs", src.to_str().unwrap()], None, None).assert_success();
            let ad = pktline::parse_v0_advertisement(&out.stdout);
            caps.push(
                normalize(&ad.caps).into_iter().filter(|c| keyed.contains(&c.as_str())).collect::<Vec<_>>(),
            );
        }
        assert_eq!(caps[1], caps[0], "v0 capabilities with {config:?} (left packserve, right git)");
        std::fs::remove_dir_all(&src).unwrap();
    }
}

fn v2(sb: &Sandbox, server: Server, repo: &Path, lines: &[&str]) -> Output {
    sb.serve(
        server,
        &["--stateless-rpc", repo.to_str().unwrap()],
        Some("version=2"),
        Some(&pktline::request(lines)),
    )
}

/// Both servers give byte-identical output and succeed.
#[track_caller]
fn same_bytes(sb: &Sandbox, repo: &Path, lines: &[&str]) -> Vec<u8> {
    let git = v2(sb, Server::Reference, repo, lines);
    assert!(git.status.success(), "scenario is off: git-upload-pack failed:\n{git}");
    let ours = v2(sb, Server::UnderTest, repo, lines);
    assert!(ours.status.success(), "packserve failed:\n{ours}");
    assert!(
        ours.stdout == git.stdout,
        "output differs from git's\n--- packserve ---\n{}\n--- git ---\n{}",
        pktline::render(&pktline::parse_prefix(&ours.stdout).0),
        pktline::render(&pktline::parse_prefix(&git.stdout).0)
    );
    git.stdout
}

/// Both servers fail, with `needle` on stderr and the same ERR lines (if any).
#[track_caller]
fn same_failure(sb: &Sandbox, repo: &Path, lines: &[&str], needle: &str) {
    let mut errs = Vec::new();
    for server in BOTH {
        let out = v2(sb, server, repo, lines);
        assert_failed_with(&out, needle, server_name(server));
        let (pkts, _) = pktline::parse_prefix(&out.stdout);
        errs.push(pkts.iter().filter_map(Pkt::text).filter(|t| t.starts_with("ERR")).collect::<Vec<_>>());
    }
    assert_eq!(errs[1], errs[0], "ERR lines (left packserve, right git)");
}

// ---------------------------------------------------------------------------
// wait-for-done

#[test]
fn wait_for_done_acknowledgments_only() {
    let sb = Sandbox::new("v2-wait-for-done");
    let src = fixture("linear");
    let (want, have) = (sb.rev_parse(&src, "main"), sb.rev_parse(&src, "main~3"));
    let unknown = "1111111111111111111111111111111111111111";
    let out = same_bytes(
        &sb,
        &src,
        &[
            "command=fetch",
            "object-format=sha1",
            "0001",
            "no-progress",
            &format!("want {want}"),
            &format!("have {unknown}"),
            &format!("have {have}"),
            "wait-for-done",
            "0000",
        ],
    );
    let text = pktline::render(&pktline::parse_all(&out));
    assert!(
        text.contains("acknowledgments") && !text.contains("ready") && !text.contains("packfile"),
        "{text}"
    );
}

/// `git fetch --negotiate-only` (which uses wait-for-done) prints the same common commits.
fn negotiate_only(client: Client) {
    let sb = Sandbox::new("v2-negotiate-only");
    let src = fixture("linear");
    let mut outs = Vec::new();
    for server in BOTH {
        let repo = sb.empty_clone_of(&src, &format!("repo-{}", server_name(server)));
        let base = sb.rev_parse(&src, "main~4");
        let t = sb.try_fetch_via(
            client,
            2,
            &Server::Reference.program(),
            &repo,
            &["origin", &format!("{base}:refs/heads/local")],
        );
        assert!(t.output.status.success(), "{}", t.output);
        sb.sh(
            &repo,
            "git update-ref refs/heads/work $(echo local | git commit-tree -p local 'local^{tree}')",
        );
        let mut cmd = sb.git_cmd(client, 2, &repo);
        cmd.env("GIT_TRACE_PACKET", "1")
            .args(["fetch", "--negotiate-only", "--negotiation-tip=work"])
            .arg(format!("--upload-pack={}", server.program().display()))
            .arg("origin");
        let out = run(cmd, None);
        assert!(out.status.success(), "{}: {out}", server_name(server));
        assert!(
            out.stderr_str().contains("fetch> wait-for-done"),
            "{}: wait-for-done not used:\n{out}",
            server_name(server)
        );
        assert_eq!(out.stdout_str().trim(), base, "{}: common commit", server_name(server));
        outs.push(out.stdout_str());
    }
    assert_eq!(outs[1], outs[0]);
}

#[test]
fn negotiate_only_git247() {
    negotiate_only(Client::New)
}

#[test]
fn negotiate_only_git239() {
    negotiate_only(Client::Old)
}

// ---------------------------------------------------------------------------
// sideband-all

/// With sideband-all every data line of the response travels on band 1; the text lines
/// (section headers, acknowledgments) are git's, and the pack holds the same objects.
#[test]
fn sideband_all_response_like_git() {
    let sb = Sandbox::new("v2-sideband-all");
    let src = server(&sb, &[("uploadpack.allowSidebandAll", "true")]);
    let (want, have) = (sb.rev_parse(&src, "main"), sb.rev_parse(&src, "main~3"));
    let req = [
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        "ofs-delta",
        "sideband-all",
        &format!("want {want}"),
        &format!("have {have}"),
        "0000",
    ];
    let mut parsed = Vec::new();
    for server in BOTH {
        let out = v2(&sb, server, &src, &req);
        assert!(out.status.success(), "{}:\n{out}", server_name(server));
        let pkts = pktline::parse_all(&out.stdout);
        let mut lines = Vec::new();
        let mut pack = Vec::new();
        let mut in_pack = false;
        for p in &pkts {
            match p {
                Pkt::Data(d) => {
                    assert!(
                        matches!(d.first(), Some(1) | Some(2)),
                        "{}: data line not on a side-band: {:?}",
                        server_name(server),
                        String::from_utf8_lossy(d)
                    );
                    if d[0] == 1 && in_pack {
                        pack.extend_from_slice(&d[1..]);
                    } else if d[0] == 1 {
                        let t = String::from_utf8_lossy(&d[1..]).trim_end_matches('\n').to_owned();
                        in_pack = t == "packfile";
                        lines.push(t);
                    }
                }
                other => lines.push(format!("{other:?}")),
            }
        }
        parsed.push((lines, pack));
    }
    let (git, ours) = (&parsed[0], &parsed[1]);
    assert!(git.0.contains(&"packfile".to_owned()), "scenario is off: {:?}", git.0);
    assert_eq!(ours.0, git.0, "text lines (left packserve, right git)");
    assert_eq!(
        pktline::pack_header_count(&ours.1),
        pktline::pack_header_count(&git.1),
        "objects in the pack"
    );
}

#[test]
fn sideband_all_refused_unless_allowed() {
    let sb = Sandbox::new("v2-sideband-all-off");
    let src = fixture("linear");
    let want = sb.rev_parse(&src, "main");
    same_failure(
        &sb,
        &src,
        &[
            "command=fetch",
            "object-format=sha1",
            "0001",
            "sideband-all",
            &format!("want {want}"),
            "done",
            "0000",
        ],
        "unexpected line: 'sideband-all'",
    );
}

/// A git client uses sideband-all when it is advertised; the clone equals git's.
#[test]
fn clone_with_sideband_all() {
    let sb = Sandbox::new("v2-sideband-all-clone");
    let src = server(&sb, &[("uploadpack.allowSidebandAll", "true")]);
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let mut cmd = sb.git_cmd(Client::New, 2, sb.path());
        cmd.env("GIT_TRACE_PACKET", "1")
            .args(["clone", "--no-progress"])
            .arg(format!("--upload-pack={}", server.program().display()))
            .arg(file_url(&src))
            .arg(&dest);
        let out = run(cmd, None);
        assert!(out.status.success(), "{}:\n{out}", server_name(server));
        assert!(
            out.stderr_str().contains("clone> sideband-all"),
            "{}: sideband-all not used",
            server_name(server)
        );
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], "clone with sideband-all");
}

// ---------------------------------------------------------------------------
// object-info

#[test]
fn object_info_like_git() {
    let sb = Sandbox::new("v2-object-info");
    let src = server(&sb, &[("transfer.advertiseObjectInfo", "true")]);
    let ids: Vec<String> = ["main", "main^{tree}", "main:src/mod0/file0.txt", "v1"]
        .iter()
        .map(|r| sb.rev_parse(&src, r))
        .collect();
    let mut lines =
        vec!["command=object-info".to_owned(), "object-format=sha1".into(), "0001".into(), "size".into()];
    lines.extend(ids.iter().map(|i| format!("oid {i}")));
    lines.push("oid 1111111111111111111111111111111111111111".into());
    lines.push("0000".into());
    let out = same_bytes(&sb, &src, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(pktline::render(&pktline::parse_all(&out)).starts_with("size"), "scenario is off");
    // Without `size`: just the ids.
    same_bytes(
        &sb,
        &src,
        &["command=object-info", "object-format=sha1", "0001", &format!("oid {}", ids[0]), "0000"],
    );
}

#[test]
fn object_info_protocol_errors_like_git() {
    let sb = Sandbox::new("v2-object-info-errors");
    let src = server(&sb, &[("transfer.advertiseObjectInfo", "true")]);
    // git answers these with an ERR line and exit status 0.
    same_bytes(&sb, &src, &["command=object-info", "object-format=sha1", "0001", "frob", "0000"]);
    same_bytes(&sb, &src, &["command=object-info", "object-format=sha1", "0001", "size", "oid xyz", "0000"]);
}

#[test]
fn object_info_refused_unless_advertised() {
    let sb = Sandbox::new("v2-object-info-off");
    let src = fixture("linear");
    let oid = sb.rev_parse(&src, "main");
    same_failure(
        &sb,
        &src,
        &["command=object-info", "object-format=sha1", "0001", "size", &format!("oid {oid}"), "0000"],
        "invalid command 'object-info'",
    );
}

// ---------------------------------------------------------------------------
// session-id and server-option

/// With transfer.advertiseSID on both sides the client sends its session id; the transfer
/// works and equals git's. Without the server advertising it, git refuses a session-id.
fn session_id(client: Client, protocol: u8) {
    let sb = Sandbox::new(&format!("session-id-{}", label(client, protocol)));
    let src = server(&sb, &[("transfer.advertiseSID", "true")]);
    let mut dests = Vec::new();
    for server in BOTH {
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let mut cmd = sb.git_cmd(client, protocol, sb.path());
        cmd.env("GIT_TRACE_PACKET", "1")
            .args(["-c", "transfer.advertiseSID=true", "clone", "--no-progress"])
            .arg(format!("--upload-pack={}", server.program().display()))
            .arg(file_url(&src))
            .arg(&dest);
        let out = run(cmd, None);
        assert!(out.status.success(), "{}:\n{out}", server_name(server));
        let trace = out.stderr_str();
        assert!(
            trace.lines().any(|l| l.contains("clone<") && l.contains("session-id=")),
            "{}: session-id not advertised:\n{trace}",
            server_name(server)
        );
        dests.push(dest);
    }
    sb.assert_same_repo(&dests[1], &dests[0], "clone with session ids");
}

client_variants! {
    session_id_advertised_and_accepted => session_id;
}

#[test]
fn session_id_refused_unless_advertised() {
    let sb = Sandbox::new("session-id-off");
    let src = fixture("linear");
    same_failure(
        &sb,
        &src,
        &["command=ls-refs", "session-id=abc", "object-format=sha1", "0001", "0000"],
        "unknown capability 'session-id=abc'",
    );
}

/// `git ls-remote -o` and `git clone --server-option` in v2: accepted and ignored.
fn server_options(client: Client) {
    let sb = Sandbox::new("server-option");
    let src = fixture("linear");
    let mut outs = Vec::new();
    for server in BOTH {
        let out = sb
            .try_ls_remote_via(client, 2, &server.program(), &src, &["-o", "foo", "-o", "bar=baz qux"], &[])
            .assert_success();
        outs.push(out.stdout_str());
        let dest = sb.join(format!("clone-{}", server_name(server)));
        let t = sb.try_clone_via(client, 2, &server.program(), &src, &dest, &["--server-option=x=y"]);
        assert!(t.output.status.success(), "{}:\n{}", server_name(server), t.output);
    }
    assert_eq!(outs[1], outs[0]);
    sb.assert_same_repo(
        &sb.join("clone-packserve"),
        &sb.join("clone-git-upload-pack"),
        "clone with server options",
    );
}

#[test]
fn server_option_git247() {
    server_options(Client::New)
}

#[test]
fn server_option_git239() {
    server_options(Client::Old)
}

#[test]
fn raw_server_options_in_ls_refs_and_fetch() {
    let sb = Sandbox::new("server-option-raw");
    let src = fixture("linear");
    same_bytes(
        &sb,
        &src,
        &[
            "command=ls-refs",
            "server-option=a",
            "server-option=b c",
            "object-format=sha1",
            "0001",
            "peel",
            "0000",
        ],
    );
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn unknown_fetch_argument_is_unexpected_line() {
    let sb = Sandbox::new("v2-err-fetch-arg");
    let src = fixture("linear");
    let want = sb.rev_parse(&src, "main");
    same_failure(
        &sb,
        &src,
        &[
            "command=fetch",
            "object-format=sha1",
            "0001",
            &format!("want {want}"),
            "frobnicate",
            "done",
            "0000",
        ],
        "unexpected line: 'frobnicate'",
    );
}

#[test]
fn unknown_ls_refs_argument_is_unexpected_line() {
    let sb = Sandbox::new("v2-err-ls-refs-arg");
    same_failure(
        &sb,
        &fixture("linear"),
        &["command=ls-refs", "object-format=sha1", "0001", "frob", "0000"],
        "unexpected line: 'frob'",
    );
}

#[test]
fn unknown_command_is_invalid() {
    let sb = Sandbox::new("v2-err-command");
    same_failure(
        &sb,
        &fixture("linear"),
        &["command=frob", "object-format=sha1", "0001", "0000"],
        "invalid command 'frob'",
    );
}

#[test]
fn unknown_capability_is_refused() {
    let sb = Sandbox::new("v2-err-capability");
    same_failure(
        &sb,
        &fixture("linear"),
        &["command=ls-refs", "frob=1", "object-format=sha1", "0001", "0000"],
        "unknown capability 'frob=1'",
    );
}
