//! Checks of the test harness itself, run against git's own git-upload-pack only: if these
//! fail, the other tests' verdicts mean nothing.

mod common;

use common::pktline::{self, Pkt};
use common::*;

/// `GIT_TRACE_PACKFILE` gives the received pack's object count with both clients and all
/// protocol versions.
#[test]
fn traced_pack_count_is_the_clone_object_count() {
    let src = fixture("merges");
    let sb = Sandbox::new("harness-trace");
    for client in Client::ALL {
        for protocol in [0u8, 1, 2] {
            let dest = sb.unique("clone");
            let t = sb.clone(client, protocol, Server::Reference, &src, &dest, &[]);
            let n = sb.objects(&dest).len();
            assert!(n > 10);
            assert_eq!(t.pack_objects, Some(n as u32), "{}", label(client, protocol));
        }
    }
}

#[test]
fn traced_pack_count_is_none_without_a_pack() {
    let src = fixture("empty");
    let sb = Sandbox::new("harness-trace-empty");
    let t = sb.clone(Client::New, 2, Server::Reference, &src, &sb.join("c"), &[]);
    assert_eq!(t.pack_objects, None);
}

/// The clients really are the two different versions the tests claim to cover.
#[test]
fn clients_are_two_git_versions() {
    let sb = Sandbox::new("harness-versions");
    let new = sb.git_with(Client::New, sb.path(), &["--version"]).assert_success().stdout_str();
    let old = sb.git_with(Client::Old, sb.path(), &["--version"]).assert_success().stdout_str();
    assert!(new.starts_with("git version 2.47"), "{new}");
    assert!(old.starts_with("git version 2.39"), "{old}");
}

/// Fixture scripts are deterministic: a rebuild yields the same objects and refs.
#[test]
fn fixtures_are_deterministic() {
    for name in ["linear", "merges", "tags"] {
        let cached = fixture(name);
        let sb = Sandbox::new("harness-determinism");
        let mut cmd = sb.command("bash");
        cmd.current_dir(sb.path()).arg(fixtures_dir().join(format!("{name}.sh")));
        run(cmd, None).assert_success();
        let rebuilt = sb.join("repo");
        assert_eq!(sb.refs(&rebuilt), sb.refs(&cached), "{name}: refs differ between builds");
        assert_eq!(sb.objects(&rebuilt), sb.objects(&cached), "{name}: objects differ between builds");
    }
}

/// The sandbox really is isolated from the user's configuration.
#[test]
fn sandbox_config_is_isolated() {
    let sb = Sandbox::new("harness-config");
    let out = sb.git(sb.path(), &["config", "--show-origin", "--list"]);
    for line in out.lines() {
        assert!(
            line.starts_with(&format!("file:{}", sb.home().join(".gitconfig").display())),
            "config from elsewhere: {line}"
        );
    }
    assert!(out.contains("init.defaultbranch=main"), "{out}");
}

#[test]
fn pktline_round_trip() {
    let bytes = pktline::request(&["command=fetch", "0001", "want abc", "0000"]);
    assert_eq!(bytes, b"0012command=fetch\n0001000dwant abc\n0000");
    let pkts = pktline::parse_all(&bytes);
    assert_eq!(
        pkts,
        vec![
            Pkt::Data(b"command=fetch\n".to_vec()),
            Pkt::Delim,
            Pkt::Data(b"want abc\n".to_vec()),
            Pkt::Flush
        ]
    );
    let (pkts, used) = pktline::parse_prefix(b"0008abcd00");
    assert_eq!((pkts.len(), used), (1, 8));
}

#[test]
fn sideband_response_is_split() {
    let mut out = pktline::request(&["NAK"]);
    out.extend(pktline::data(b"\x01PACK\0\0\0\x02\0\0\0\x07"));
    out.extend(pktline::data(b"\x02progress"));
    out.extend(pktline::FLUSH);
    let r = pktline::parse_fetch_response(&out);
    assert_eq!(r.lines, vec!["NAK"]);
    assert_eq!(pktline::pack_header_count(&r.pack), Some(7));
    assert_eq!(r.progress, b"progress");
    assert!(r.ended_with_flush);
}

/// A command that hangs is killed after PACKSERVE_TEST_TIMEOUT; here only that `run` returns
/// promptly for a quick command and reports exit codes.
#[test]
fn run_reports_exit_codes() {
    let sb = Sandbox::new("harness-run");
    let mut cmd = sb.command("bash");
    cmd.args(["-c", "cat; echo err >&2; exit 3"]);
    let out = run(cmd, Some(b"in"));
    assert_eq!(out.code(), Some(3));
    assert_eq!(out.stdout, b"in");
    assert_eq!(out.stderr, b"err\n");
}

#[test]
fn pack_count_tolerance_is_five_percent_of_git() {
    assert_pack_counts_close("equal", Some(7), Some(7));
    assert_pack_counts_close("none", None, None);
    assert_pack_counts_close("5% more", Some(105), Some(100));
    assert_pack_counts_close("5% fewer", Some(95), Some(100));
    for (ours, git) in
        [(Some(106), Some(100)), (Some(94), Some(100)), (Some(4), Some(3)), (None, Some(3)), (Some(3), None)]
    {
        let r = std::panic::catch_unwind(|| assert_pack_counts_close("x", ours, git));
        assert!(r.is_err(), "{ours:?} vs {git:?} must be rejected");
    }
}
