//! `--timeout=<n>`: a client that goes quiet is dropped (git's upload-pack is killed by its
//! alarm in v0/v1; it does not apply the timeout in v2, so neither is tested there), and
//! `uploadpack.keepAlive` is accepted.

mod common;

use common::*;
use std::io::Write;
use std::time::Duration;

/// Starts the server with `--timeout=1` (plus `args`), writes `first` and then nothing, keeping
/// stdin open. It must exit unsuccessfully within a few seconds, and not before the second
/// has passed.
fn dropped_when_quiet(server: Server, args: &[&str], git_protocol: Option<&str>, first: &[u8]) -> Duration {
    let sb = Sandbox::new("timeout");
    let src = fixture("linear");
    let mut cmd = sb.command(server.program());
    cmd.arg("--timeout=1").args(args).arg(&src);
    if let Some(p) = git_protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    let mut held = Held::spawn(cmd);
    if !first.is_empty() {
        held.stdin.as_mut().unwrap().write_all(first).unwrap();
        held.stdin.as_mut().unwrap().flush().unwrap();
    }
    let (status, elapsed, out, _err) = held.wait_for(Duration::from_secs(8));
    let who = server_name(server);
    assert!(!status.success(), "{who}: exited successfully after a quiet client ({status})");
    assert!(elapsed >= Duration::from_millis(900), "{who}: gave up after {elapsed:?}, before the timeout");
    assert!(elapsed <= Duration::from_secs(5), "{who}: took {elapsed:?} to drop a quiet client");
    assert!(!out.windows(4).any(|w| w == b"PACK"), "{who}: sent a pack");
    elapsed
}

fn both(args: &[&str], git_protocol: Option<&str>, first: &[u8]) {
    for server in BOTH {
        let t = dropped_when_quiet(server, args, git_protocol, first);
        eprintln!("{}: dropped after {t:?}", server_name(server));
    }
}

#[test]
fn timeout_v0_client_sends_nothing() {
    both(&[], None, b"")
}

#[test]
fn timeout_v1_client_sends_nothing() {
    both(&[], Some("version=1"), b"")
}

#[test]
fn timeout_v0_client_stops_after_a_want() {
    let sb = Sandbox::new("timeout-want");
    let oid = sb.rev_parse(&fixture("linear"), "main");
    let first = common::pktline::request(&[&format!("want {oid} side-band-64k ofs-delta")]);
    both(&[], None, &first)
}

#[test]
fn timeout_stateless_v0_client_sends_nothing() {
    both(&["--stateless-rpc"], None, b"")
}

/// `uploadpack.keepAlive` (0 disables it, n seconds otherwise) does not disturb a clone.
#[test]
fn keep_alive_is_accepted() {
    let sb = Sandbox::new("keepalive");
    for value in ["1", "0", "5"] {
        let src = sb.fixture_copy("merges");
        sb.config(&src, "uploadpack.keepAlive", value);
        let mut dests = Vec::new();
        for (protocol, server) in [(0, Server::Reference), (0, Server::UnderTest), (2, Server::UnderTest)] {
            let dest = sb.unique(&format!("clone-{}", server_name(server)));
            let t = sb.try_clone_via(Client::New, protocol, &server.program(), &src, &dest, &["--quiet"]);
            assert!(t.output.status.success(), "keepAlive={value}, {}:\n{}", server_name(server), t.output);
            dests.push(dest);
        }
        sb.assert_same_repo(&dests[1], &dests[0], &format!("keepAlive={value} v0"));
        sb.assert_same_repo(&dests[2], &dests[0], &format!("keepAlive={value} v2"));
        std::fs::remove_dir_all(&src).unwrap();
    }
}
