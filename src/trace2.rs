//! `GIT_TRACE2_EVENT`-compatible tracing: the events git's upload-pack writes, in git's event
//! format (one JSON object a line), so that what forges collect from git's upload-pack they
//! collect from packserve too: `version`, `start`, `cmd_name`, the negotiated protocol version
//! (`transfer`/`negotiated-version`), the client's session id (`transfer`/`client-sid`), each
//! v2 fetch's `upload-pack`/`fetch-info`, and `exit`/`atexit`. git's `cmd_ancestry`, regions
//! and child-process events are not written (packserve starts no child).
//!
//! Also owns this process's session id, in git's form (`<UTC time>-H<host hash>-P<pid>`,
//! after the parent's id and a `/` when one is given), which `transfer.advertiseSID`
//! advertises and the operator log falls back to.
//!
//! Process-wide, as in git: the front-end installs the destination once ([`install`]) and the
//! session adds events wherever it is. Reads no environment: the front-end passes the values.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::log::json_string;

struct State {
    sink: Box<dyn Write + Send>,
    start: Instant,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);
static PARENT_SID: OnceLock<Option<String>> = OnceLock::new();
static SID: OnceLock<String> = OnceLock::new();

/// The event format's version (git's `evt`).
const EVENT_VERSION: &str = "4";

/// This process's session id: `<parent>/<own>` when a parent id was given to [`install`], as
/// git's `GIT_TRACE2_PARENT_SID` makes it.
pub fn session_id() -> &'static str {
    SID.get_or_init(|| {
        let own = own_sid(SystemTime::now());
        match PARENT_SID.get().cloned().flatten() {
            Some(parent) if !parent.is_empty() => format!("{parent}/{own}"),
            _ => own,
        }
    })
}

/// git's own session id component: `YYYYMMDDTHHMMSS.uuuuuuZ-H<8 hex of SHA-1(hostname)>-P<pid>`.
fn own_sid(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let t = crate::log::rfc3339(now);
    // rfc3339 gives YYYY-MM-DDTHH:MM:SS.mmmZ; git's form is compact with microseconds.
    let compact: String = t[..19].chars().filter(|c| *c != '-' && *c != ':').collect();
    let host = hostname()
        .map(|h| {
            let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
            hasher.update(h.as_bytes());
            let hex = hasher.try_finalize().map(|id| id.to_hex().to_string()).unwrap_or_default();
            format!("H{}", &hex[..8.min(hex.len())])
        })
        .unwrap_or_else(|| "Localhost".to_owned());
    format!("{compact}.{:06}Z-{host}-P{:08x}", d.subsec_micros(), std::process::id())
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// Where the events of this process go, from the front-end: `sink` (opened from
/// `GIT_TRACE2_EVENT` as git reads it), the parent's session id (`GIT_TRACE2_PARENT_SID`), and
/// the command hierarchy above this one (`GIT_TRACE2_PARENT_NAME`). Writes `version`, `start`
/// (with `argv`) and `cmd_name`. Without a sink nothing is traced, but the session id still
/// takes the parent's.
pub fn install(
    sink: Option<Box<dyn Write + Send>>,
    parent_sid: Option<String>,
    parent_name: Option<String>,
    argv: &[String],
) {
    let _ = PARENT_SID.set(parent_sid);
    let Some(sink) = sink else { return };
    *STATE.lock().unwrap_or_else(|e| e.into_inner()) = Some(State { sink, start: Instant::now() });
    event(
        "version",
        line!(),
        &format!(",\"evt\":\"{EVENT_VERSION}\",\"exe\":\"{}\"", env!("CARGO_PKG_VERSION")),
    );
    let argv = argv.iter().map(|a| json_string(a)).collect::<Vec<_>>().join(",");
    event("start", line!(), &format!(",\"t_abs\":{:.6},\"argv\":[{argv}]", t_abs()));
    let hierarchy = match parent_name.filter(|n| !n.is_empty()) {
        Some(p) => format!("{p}/upload-pack"),
        None => "upload-pack".to_owned(),
    };
    event(
        "cmd_name",
        line!(),
        &format!(",\"name\":\"upload-pack\",\"hierarchy\":{}", json_string(&hierarchy)),
    );
}

/// Whether events are being written.
pub fn enabled() -> bool {
    STATE.lock().map(|s| s.is_some()).unwrap_or(false)
}

fn t_abs() -> f64 {
    STATE.lock().ok().and_then(|s| s.as_ref().map(|s| s.start.elapsed().as_secs_f64())).unwrap_or(0.0)
}

/// Writes one event: the common fields, then `rest` (starting with a comma).
fn event(name: &str, line: u32, rest: &str) {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = state.as_mut() else { return };
    let time = crate::log::rfc3339(SystemTime::now());
    // git's event times have microseconds.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let time = format!("{}.{:06}Z", &time[..19], now.subsec_micros());
    let text = format!(
        "{{\"event\":\"{name}\",\"sid\":{},\"thread\":\"main\",\"time\":\"{time}\",\"file\":\"{}\",\"line\":{line}{rest}}}\n",
        json_string(session_id()),
        file!()
    );
    // Tracing must never break serving.
    let _ = s.sink.write_all(text.as_bytes());
    let _ = s.sink.flush();
}

/// A `data` event with a string value (`transfer`/`negotiated-version`, `transfer`/`client-sid`).
pub fn data(category: &str, key: &str, value: &str) {
    if !enabled() {
        return;
    }
    let t = t_abs();
    event(
        "data",
        line!(),
        &format!(
            ",\"t_abs\":{t:.6},\"t_rel\":{t:.6},\"nesting\":1,\"category\":{},\"key\":{},\"value\":{}",
            json_string(category),
            json_string(key),
            json_string(value)
        ),
    );
}

/// What git's upload-pack reports of each v2 fetch request (`upload-pack`/`fetch-info`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FetchInfo {
    /// `have` lines.
    pub haves: usize,
    /// `want` lines.
    pub wants: usize,
    /// `want-ref` lines.
    pub want_refs: usize,
    /// `deepen <n>`, 0 without.
    pub depth: u32,
    /// `shallow` lines.
    pub shallows: usize,
    /// `deepen-since` given.
    pub deepen_since: bool,
    /// `deepen-not` lines.
    pub deepen_not: usize,
    /// `deepen-relative`.
    pub deepen_relative: bool,
    /// The filter spec, if any.
    pub filter: Option<String>,
}

/// The name git gives a filter spec's kind (`list_object_filter_config_name`): `blob:none`,
/// `blob:limit`, `tree`, `sparse:oid`, `object:type`, `combine`.
pub fn filter_name(spec: &str) -> &str {
    if spec.starts_with("combine:") {
        "combine"
    } else if spec.starts_with("tree:") {
        "tree"
    } else {
        spec.split('=').next().unwrap_or(spec)
    }
}

/// The `data_json` event of one v2 fetch.
pub fn fetch_info(info: &FetchInfo) {
    if !enabled() {
        return;
    }
    let t = t_abs();
    let filter = info.filter.as_deref().map_or("null".to_owned(), |f| json_string(filter_name(f)));
    event(
        "data_json",
        line!(),
        &format!(
            ",\"repo\":0,\"t_abs\":{t:.6},\"t_rel\":{t:.6},\"nesting\":1,\"category\":\"upload-pack\",\"key\":\"fetch-info\",\"value\":{{\"haves\":{},\"wants\":{},\"want-refs\":{},\"depth\":{},\"shallows\":{},\"deepen-since\":{},\"deepen-not\":{},\"deepen-relative\":{},\"filter\":{filter}}}",
            info.haves,
            info.wants,
            info.want_refs,
            info.depth,
            info.shallows,
            info.deepen_since,
            info.deepen_not,
            info.deepen_relative,
        ),
    );
}

static ERROR_WRITTEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The `error` event git's `die` writes: the message (without `fatal: `) and its format
/// string (git's `printf` format: `%s` where the message has a value).
pub fn error(msg: &str, fmt: &str) {
    if !enabled() || ERROR_WRITTEN.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    event("error", line!(), &format!(",\"msg\":{},\"fmt\":{}", json_string(msg), json_string(fmt)));
}

/// The `exit` and `atexit` events, with the process's exit status.
pub fn exit(code: i32) {
    if !enabled() {
        return;
    }
    for name in ["exit", "atexit"] {
        let t = t_abs();
        event(name, line!(), &format!(",\"t_abs\":{t:.6},\"code\":{code}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_as_git_gives_them() {
        for (spec, name) in [
            ("blob:none", "blob:none"),
            ("blob:limit=1k", "blob:limit"),
            ("tree:0", "tree"),
            ("sparse:oid=main:.sparse", "sparse:oid"),
            ("object:type=blob", "object:type"),
            ("combine:blob:none+tree:1", "combine"),
        ] {
            assert_eq!(filter_name(spec), name);
        }
    }

    #[test]
    fn session_ids_look_like_gits() {
        let sid = own_sid(UNIX_EPOCH + Duration::from_micros(1_795_342_272_000_042));
        let (time, rest) = sid.split_once('-').unwrap();
        assert_eq!(time, "20261122T101112.000042Z");
        let (host, pid) = rest.split_once('-').unwrap();
        assert!(host == "Localhost" || (host.len() == 9 && host.starts_with('H')), "{sid}");
        assert_eq!(pid, format!("P{:08x}", std::process::id()));
    }
}
