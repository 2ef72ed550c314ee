//! `GIT_TRACE_PACKET` in the server's environment, as git writes it: every pkt-line read or
//! written, as `<time> <source>:<line> packet:  upload-pack< <payload>` (or `>`), flushes as
//! `0000`, delimiters as `0001`, non-printable bytes as `\<octal>`, newlines dropped, pack data
//! not traced. Destinations: stderr (`1`, `2`, `true`), an absolute file path, a file
//! descriptor number; `0`/`false` turn it off. The traced lines are compared with what git's
//! own upload-pack traces for the same exchange.

mod common;

use common::pktline;
use common::*;

/// One traced pkt-line: `<` (read) or `>` (written), and the payload as traced.
type Entry = (char, String);

/// Parses git-style packet trace lines from `text`, checking the format of each line that
/// mentions `upload-pack`. Lines of other programs (the client's) are skipped.
#[track_caller]
fn parse_trace(text: &str, who: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for line in text.lines() {
        let Some(pos) = line.find("packet:  upload-pack") else {
            assert!(
                !line.contains("upload-pack<") && !line.contains("upload-pack>"),
                "{who}: odd line {line:?}"
            );
            continue;
        };
        // `HH:MM:SS.uuuuuu <file>:<line> <padding>packet:  upload-pack> <payload>`
        let head = &line[..pos];
        let mut parts = head.split_whitespace();
        let time = parts.next().unwrap_or("");
        let b = time.as_bytes();
        assert!(
            b.len() == 15
                && b[2] == b':'
                && b[5] == b':'
                && b[8] == b'.'
                && b.iter().enumerate().all(|(i, c)| [2, 5, 8].contains(&i) || c.is_ascii_digit()),
            "{who}: trace line does not start with a HH:MM:SS.uuuuuu time: {line:?}"
        );
        let source = parts.next().unwrap_or("");
        assert!(
            source.rsplit_once(':').is_some_and(|(f, n)| !f.is_empty() && n.parse::<u32>().is_ok()),
            "{who}: no <file>:<line> before `packet:`: {line:?}"
        );
        assert!(parts.next().is_none(), "{who}: unexpected text before `packet:`: {line:?}");
        let rest = &line[pos + "packet:  upload-pack".len()..];
        let mut chars = rest.chars();
        let dir = chars.next().unwrap_or(' ');
        assert!(dir == '<' || dir == '>', "{who}: no direction marker: {line:?}");
        let payload = chars.as_str();
        assert!(payload.starts_with(' '), "{who}: no space after the marker: {line:?}");
        entries.push((dir, payload[1..].to_owned()));
    }
    entries
}

fn render(entries: &[Entry]) -> String {
    entries.iter().map(|(d, p)| format!("upload-pack{d} {p}\n")).collect()
}

fn ls_refs_request() -> Vec<u8> {
    pktline::request(&[
        "command=ls-refs",
        "agent=packserve-tests/1",
        "object-format=sha1",
        "0001",
        "peel",
        "symrefs",
        "ref-prefix HEAD",
        "ref-prefix refs/",
        "0000",
    ])
}

/// Runs a server (through a wrapper that sets `env` and runs `setup`) with `args` and stdin.
fn traced(
    sb: &Sandbox,
    server: Server,
    env: &[(&str, &str)],
    setup: &str,
    args: &[&str],
    git_protocol: Option<&str>,
    stdin: Option<&[u8]>,
) -> Output {
    let wrapper = sb.wrapper(server, env, setup);
    let mut cmd = sb.command(&wrapper);
    cmd.args(args);
    if let Some(p) = git_protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    run(cmd, stdin)
}

/// The trace of a v2 ls-refs exchange, written to stderr, equals git's line for line.
#[test]
fn v2_ls_refs_traced_to_stderr_like_git() {
    let sb = Sandbox::new("trace-stderr");
    let src = fixture("tags");
    let req = ls_refs_request();
    let mut traces = Vec::new();
    for value in ["1", "2", "true"] {
        for server in BOTH {
            let who = format!("{} GIT_TRACE_PACKET={value}", server_name(server));
            let out = traced(
                &sb,
                server,
                &[("GIT_TRACE_PACKET", value)],
                "",
                &["--stateless-rpc", src.to_str().unwrap()],
                Some("version=2"),
                Some(&req),
            )
            .assert_success();
            let entries = parse_trace(&out.stderr_str(), &who);
            assert!(!entries.is_empty(), "{who}: nothing traced on stderr:\n{out}");
            traces.push(entries);
        }
        assert!(traces[0].iter().any(|(d, p)| *d == '<' && p == "command=ls-refs"), "{}", render(&traces[0]));
        assert_eq!(render(&traces[1]), render(&traces[0]), "trace (left packserve, right git)");
        traces.clear();
    }
}

/// `GIT_TRACE_PACKET=0` (or `false`, or empty): nothing traced.
#[test]
fn trace_off_values() {
    let sb = Sandbox::new("trace-off");
    let src = fixture("tags");
    for value in ["0", "false", ""] {
        for server in BOTH {
            let out = traced(
                &sb,
                server,
                &[("GIT_TRACE_PACKET", value)],
                "",
                &["--stateless-rpc", src.to_str().unwrap()],
                Some("version=2"),
                Some(&ls_refs_request()),
            )
            .assert_success();
            assert!(
                !out.stderr_str().contains("packet:"),
                "{} GIT_TRACE_PACKET={value:?} traced:\n{out}",
                server_name(server)
            );
        }
    }
}

/// A v2 fetch traced to an absolute file path: request lines, section headers and the final
/// flush as git traces them; no pack data.
#[test]
fn v2_fetch_traced_to_a_file_like_git() {
    let sb = Sandbox::new("trace-file");
    let src = fixture("merges");
    let want = sb.rev_parse(&src, "main");
    let have = sb.rev_parse(&src, "main~2");
    let req = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "thin-pack",
        "no-progress",
        "ofs-delta",
        &format!("want {want}"),
        &format!("have {have}"),
        "done",
        "0000",
    ]);
    let mut traces = Vec::new();
    for server in BOTH {
        let file = sb.unique("trace.txt");
        let out = traced(
            &sb,
            server,
            &[("GIT_TRACE_PACKET", file.to_str().unwrap())],
            "",
            &["--stateless-rpc", src.to_str().unwrap()],
            Some("version=2"),
            Some(&req),
        )
        .assert_success();
        assert!(
            !out.stderr_str().contains("packet:"),
            "{}: traced to stderr instead of the file",
            server_name(server)
        );
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: no trace file {}: {e}", server_name(server), file.display()));
        traces.push(parse_trace(&text, server_name(server)));
    }
    let shown = render(&traces[0]);
    assert!(shown.contains("upload-pack> packfile") && !shown.contains("PACK"), "scenario is off:\n{shown}");
    assert_eq!(render(&traces[1]), shown, "trace (left packserve, right git)");
}

/// The v0 advertisement traced to file descriptor 9: the NUL before the capabilities shows as
/// `\0`; the ref lines equal git's (the capability lists may differ).
#[test]
fn v0_advertisement_traced_to_a_file_descriptor() {
    let sb = Sandbox::new("trace-fd");
    let src = fixture("merges");
    let mut traces = Vec::new();
    for server in BOTH {
        let file = sb.unique("trace-fd.txt");
        let setup = format!("exec 9>{}", sh_quote(file.to_str().unwrap()));
        let out = traced(
            &sb,
            server,
            &[("GIT_TRACE_PACKET", "9")],
            &setup,
            &["--advertise-refs", src.to_str().unwrap()],
            None,
            None,
        )
        .assert_success();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut entries = parse_trace(&text, server_name(server));
        assert!(
            !entries.is_empty(),
            "{}: nothing traced to fd 9 (stderr: {})",
            server_name(server),
            out.stderr_str()
        );
        let first = &mut entries[0].1;
        let nul = first.find("\\0").unwrap_or_else(|| panic!("{}: no \\0 in {first:?}", server_name(server)));
        first.truncate(nul + 2);
        traces.push(entries);
    }
    assert_eq!(render(&traces[1]), render(&traces[0]), "trace (left packserve, right git)");
}

/// A v0 clone with the server tracing to a file: the ref advertisement, the wants (minus
/// capabilities, which depend on what each server offers), `done`, `NAK` and the final flush.
fn v0_clone_trace(client: Client) {
    let sb = Sandbox::new("trace-clone");
    let src = fixture("tags");
    let mut traces = Vec::new();
    for server in BOTH {
        let file = sb.unique("trace-clone.txt");
        let wrapper = sb.wrapper(server, &[("GIT_TRACE_PACKET", file.to_str().unwrap())], "");
        let dest = sb.unique("clone");
        let t = sb.try_clone_via(client, 0, &wrapper, &src, &dest, &[]);
        assert!(t.output.status.success(), "{}", t.output);
        let text = std::fs::read_to_string(&file).unwrap();
        let entries: Vec<Entry> = parse_trace(&text, server_name(server))
            .into_iter()
            .map(|(d, p)| {
                let p = match p.find("\\0") {
                    Some(n) => p[..n].to_owned(),
                    None if p.starts_with("want ") => p.split(' ').take(2).collect::<Vec<_>>().join(" "),
                    None => p,
                };
                (d, p)
            })
            .collect();
        traces.push(entries);
    }
    let shown = render(&traces[0]);
    assert!(
        shown.contains("upload-pack< done") && shown.contains("upload-pack> NAK"),
        "scenario is off:\n{shown}"
    );
    assert_eq!(render(&traces[1]), shown, "trace (left packserve, right git)");
}

#[test]
fn v0_clone_traced_git247() {
    v0_clone_trace(Client::New)
}

#[test]
fn v0_clone_traced_git239() {
    v0_clone_trace(Client::Old)
}

/// With sideband-all the traced section lines carry the band byte as `\1`, like git's.
#[test]
fn sideband_all_trace_escapes_the_band_byte() {
    let sb = Sandbox::new("trace-sideband-all");
    let src = sb.fixture_copy("linear");
    sb.config(&src, "uploadpack.allowSidebandAll", "true");
    let want = sb.rev_parse(&src, "main");
    let req = pktline::request(&[
        "command=fetch",
        "object-format=sha1",
        "0001",
        "no-progress",
        "sideband-all",
        &format!("want {want}"),
        "done",
        "0000",
    ]);
    let mut traces = Vec::new();
    for server in BOTH {
        let out = traced(
            &sb,
            server,
            &[("GIT_TRACE_PACKET", "1")],
            "",
            &["--stateless-rpc", src.to_str().unwrap()],
            Some("version=2"),
            Some(&req),
        )
        .assert_success();
        traces.push(parse_trace(&out.stderr_str(), server_name(server)));
    }
    let shown = render(&traces[0]);
    assert!(shown.contains("upload-pack> \\1packfile"), "scenario is off:\n{shown}");
    assert_eq!(render(&traces[1]), shown, "trace (left packserve, right git)");
}

// ---------------------------------------------------------------------------
// GIT_TRACE_PACKET's time is local time, as git's

/// With `TZ=Europe/Berlin` (one or two hours off UTC), the hour of each traced line is the one
/// git prints for the same exchange, not UTC's.
#[test]
fn packet_trace_times_are_local_like_gits() {
    let sb = Sandbox::new("trace-localtime");
    let src = fixture("tags");
    let mut hours = Vec::new();
    for server in BOTH {
        let out = traced(
            &sb,
            server,
            &[("GIT_TRACE_PACKET", "2"), ("TZ", "Europe/Berlin")],
            "",
            &["--stateless-rpc", src.to_str().unwrap()],
            Some("version=2"),
            Some(&ls_refs_request()),
        )
        .assert_success();
        let err = out.stderr_str();
        let line = err.lines().find(|l| l.contains("packet:")).expect("a traced line");
        hours.push((server_name(server), line[..5].to_owned()));
    }
    let utc = sb.sh(sb.path(), "TZ=UTC date +%H:%M");
    let berlin = sb.sh(sb.path(), "TZ=Europe/Berlin date +%H:%M");
    assert_ne!(utc.trim(), berlin.trim(), "the zone database does not know Europe/Berlin");
    // Both printed within the same minute, in Berlin's time (allow the minute to turn).
    assert_eq!(hours[0].1[..2], hours[1].1[..2], "hour (packserve, git): {hours:?}");
    assert_eq!(hours[0].1[..2], berlin.trim()[..2], "packserve's hour is not Berlin's: {hours:?}");
}

// ---------------------------------------------------------------------------
// GIT_TRACE2_EVENT

/// Removes the members of a flat JSON object line whose values vary from run to run or from
/// program to program (times, source locations, session ids, the version, argv[0]), so that
/// packserve's events compare with git's.
fn normalize_event(line: &str) -> String {
    let mut out = line.to_owned();
    for key in ["time", "file", "line", "t_abs", "t_rel", "sid", "exe"] {
        let pat = format!("\"{key}\":");
        while let Some(start) = out.find(&pat) {
            let vstart = start + pat.len();
            let bytes = out.as_bytes();
            let mut end = vstart;
            if bytes[vstart] == b'"' {
                end += 1;
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                end += 1;
            } else {
                while bytes[end] != b',' && bytes[end] != b'}' {
                    end += 1;
                }
            }
            // Drop the member and one comma.
            if bytes[end] == b',' {
                end += 1;
            }
            out.replace_range(start..end, "");
        }
    }
    // The program's own path.
    if let Some(i) = out.find("\"argv\":[\"") {
        let from = i + "\"argv\":[\"".len();
        let to = from + out[from..].find('"').unwrap();
        out.replace_range(from..to, "<program>");
    }
    // The client's session id.
    if out.contains("\"key\":\"client-sid\"") {
        let from = out.find("\"value\":\"").unwrap() + "\"value\":\"".len();
        let to = from + out[from..].find('"').unwrap();
        out.replace_range(from..to, "<client-sid>");
    }
    out
}

/// The upload-pack events of one trace2 event file: the first event's session only (git's
/// pack-objects child writes to the same file under a longer id), without the events packserve
/// does not write (`cmd_ancestry`, child processes, regions).
fn own_events(text: &str) -> Vec<String> {
    let sid_of = |l: &str| {
        let from = l.find("\"sid\":\"").map(|i| i + 7).unwrap_or(0);
        l[from..from + l[from..].find('"').unwrap_or(0)].to_owned()
    };
    let Some(first) = text.lines().next() else { return Vec::new() };
    let own = sid_of(first);
    text.lines()
        .filter(|l| sid_of(l) == own)
        .filter(|l| {
            !["cmd_ancestry", "child_start", "child_exit", "region_enter", "region_leave"]
                .iter()
                .any(|e| l.contains(&format!("\"event\":\"{e}\"")))
        })
        .map(normalize_event)
        .collect()
}

/// Runs `git <args>` with `--upload-pack` set to a wrapper that traces each server's events to
/// a file; returns the events of git and of packserve (in [`BOTH`]'s order).
fn trace2_of(
    sb: &Sandbox,
    label: &str,
    protocol: u8,
    git_args: &[&str],
    expect_ok: bool,
) -> [Vec<String>; 2] {
    let mut events = Vec::new();
    for server in BOTH {
        let file = sb.join(format!("trace2-{label}-{}.json", server_name(server)));
        let wrapper = sb.wrapper(server, &[("GIT_TRACE2_EVENT", file.to_str().unwrap())], "");
        let mut cmd = sb.git_cmd(Client::New, protocol, sb.path());
        cmd.args(["-c", "transfer.advertiseSID=true"]);
        cmd.args(git_args.iter().map(|a| a.replace("@UPLOAD_PACK@", wrapper.to_str().unwrap())));
        cmd.arg(sb.join(format!("dest-{label}-{}", server_name(server))));
        let out = run(cmd, None);
        assert_eq!(out.status.success(), expect_ok, "{label} {}:\n{out}", server_name(server));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        events.push(own_events(&text));
    }
    [events.remove(0), events.remove(0)]
}

/// `GIT_TRACE2_EVENT`: packserve writes the events git's upload-pack writes — version, start,
/// cmd_name, the negotiated version, the client's session id, each v2 fetch's fetch-info
/// (haves, wants, depth, shallows, deepen-*, the filter's name) and exit — with the same
/// members, once times, source locations, session ids and program paths are set aside.
#[test]
fn trace2_events_like_gits() {
    let sb = Sandbox::new("trace2");
    let src = sb.fixture_copy("history");
    sb.git(&src, &["config", "transfer.advertiseSID", "true"]);
    sb.git(&src, &["config", "uploadpack.allowFilter", "true"]);
    let url = file_url(&src);
    let cases: &[(&str, u8, Vec<&str>)] = &[
        ("v2-shallow", 2, vec!["clone", "--no-progress", "--depth=1", "--upload-pack=@UPLOAD_PACK@", &url]),
        (
            "v2-filter",
            2,
            vec!["clone", "--no-progress", "--filter=blob:none", "--upload-pack=@UPLOAD_PACK@", &url],
        ),
        (
            "v2-since",
            2,
            vec!["clone", "--no-progress", "--shallow-since=2000-01-01", "--upload-pack=@UPLOAD_PACK@", &url],
        ),
        ("v0", 0, vec!["clone", "--no-progress", "--upload-pack=@UPLOAD_PACK@", &url]),
        ("v1", 1, vec!["clone", "--no-progress", "--upload-pack=@UPLOAD_PACK@", &url]),
    ];
    for (label, protocol, args) in cases {
        let [git, ours] = trace2_of(&sb, label, *protocol, args, true);
        assert!(git.iter().any(|e| e.contains("\"negotiated-version\"")), "{label}: git wrote {git:#?}");
        assert!(git.iter().any(|e| e.contains("\"client-sid\"")), "{label}: no client sid in {git:#?}");
        assert_eq!(ours, git, "{label}: trace2 events (left packserve, right git)");
    }
    // A repository that does not exist: no negotiated version, git's `error` event, exit 128.
    let missing = file_url(&sb.join("missing.git"));
    let [git, ours] = trace2_of(
        &sb,
        "missing",
        2,
        &["clone", "--no-progress", "--upload-pack=@UPLOAD_PACK@", &missing],
        false,
    );
    assert!(git.last().is_some_and(|e| e.contains("\"code\":128")), "{git:#?}");
    assert_eq!(ours, git, "missing repository: trace2 events (left packserve, right git)");
}

/// `GIT_TRACE2_EVENT` naming a directory: one file per process in it, named by its session id.
#[test]
fn trace2_event_directory() {
    let sb = Sandbox::new("trace2-dir");
    let src = fixture("tags");
    let dir = sb.join("events");
    std::fs::create_dir(&dir).unwrap();
    let out = traced(
        &sb,
        Server::UnderTest,
        &[("GIT_TRACE2_EVENT", dir.to_str().unwrap())],
        "",
        &["--stateless-rpc", src.to_str().unwrap()],
        Some("version=2"),
        Some(&ls_refs_request()),
    )
    .assert_success();
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}\n{out}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(text.lines().all(|l| l.contains(&format!("\"sid\":\"{name}\""))), "{name}:\n{text}");
    assert!(text.lines().last().is_some_and(|l| l.contains("\"event\":\"atexit\"")), "{text}");
}
