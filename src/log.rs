//! The operator's log: one line per request, in `key=value` form, appended to a file or
//! written to stderr.
//!
//! Owns the line's format and its destination; knows nothing of where the values come from
//! (the front-ends fill an [`Entry`] from their envelope and the session's
//! [`crate::session::Summary`]). Never logs a secret: no environment dump, no credentials,
//! no request bodies; the remote user is the name the web server or the key's `--user` gave.
//!
//! Format (documented in the manual, section LOG):
//!
//! ```text
//! 2026-11-22T10:11:12.345Z packserve frontend=http repo=/srv/git/a.git user=alice addr=10.0.0.7 proto=2 commands=ls-refs,fetch wants=3 haves=12 shallow=no filter=- objects=120 bytes=48213 ms=35 outcome=ok sid=20261122T101112.310000Z-Hd1e9a2f3-P00001234 agent=git/2.47.3 pid=4660
//! ```
//!
//! Values that are empty or unknown are `-`; values with spaces, quotes, `=` or control
//! characters are double-quoted with `\"`, `\\` and `\xNN` escapes, so every line splits
//! on spaces. `sid` is the client's `session-id` when it sent one (so the requests of one
//! clone share it), otherwise this process's own. [`Format::Json`] writes the same fields as
//! one JSON object a line.
//!
//! A log file that cannot be written is reported on stderr, once per process.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::session::{Summary, Version};

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Nowhere (e.g. `shell` without `--log`: its stderr is the client's).
    Off,
    /// Standard error.
    Stderr,
    /// Appended to this file (one `write` per line, so concurrent processes don't interleave).
    File(PathBuf),
}

/// The form of a log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// `key=value` pairs after the time and `packserve`.
    #[default]
    Text,
    /// One JSON object a line, with the same keys (numbers as numbers, unknown values null).
    Json,
}

impl Format {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown log format '{s}' (text or json)")),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// Refused before serving (bad path, not exported, wrong command...).
    Refused(String),
    /// Failed while serving (protocol error, corrupt object...).
    Error(String),
    /// The client went away.
    Hangup,
}

/// One request, as the operator sees it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `ssh`, `http`, `git` (inetd) or `upload-pack`.
    pub frontend: &'static str,
    /// The repository as the client named it (or as resolved, when known).
    pub repo: Option<String>,
    /// The remote user, when the envelope knows one.
    pub user: Option<String>,
    /// The remote address, when the envelope knows it.
    pub addr: Option<String>,
    /// Protocol version.
    pub version: Option<Version>,
    /// What the session did.
    pub summary: Summary,
    /// When the request started.
    pub start: SystemTime,
    /// How it ended.
    pub outcome: Outcome,
    /// The line's form.
    pub format: Format,
}

impl Entry {
    /// A new entry for `frontend`, started now.
    pub fn new(frontend: &'static str) -> Entry {
        Entry {
            frontend,
            repo: None,
            user: None,
            addr: None,
            version: None,
            summary: Summary::default(),
            start: SystemTime::now(),
            outcome: Outcome::Ok,
            format: Format::Text,
        }
    }

    /// The session id logged: the client's, else this process's.
    fn sid(&self) -> String {
        self.summary.client_sid.clone().unwrap_or_else(|| crate::trace2::session_id().to_owned())
    }

    /// The log line (without the newline) in the entry's format, with the duration up to `now`.
    pub fn line(&self, now: SystemTime) -> String {
        match self.format {
            Format::Text => self.text_line(now),
            Format::Json => self.json_line(now),
        }
    }

    /// The JSON form: the text form's keys and values, `time` first.
    fn json_line(&self, now: SystemTime) -> String {
        let ms = now.duration_since(self.start).unwrap_or(Duration::ZERO).as_millis();
        let s = &self.summary;
        let (outcome, reason) = self.outcome_reason();
        let str_or_null = |v: Option<&str>| v.map_or("null".to_owned(), json_string);
        let proto = self.version.map_or("null", |v| match v {
            Version::V0 => "0",
            Version::V1 => "1",
            Version::V2 => "2",
        });
        let mut line = format!(
            "{{\"time\":{},\"frontend\":{},\"repo\":{},\"user\":{},\"addr\":{},\"proto\":{},\"commands\":[{}],\"wants\":{},\"haves\":{},\"shallow\":{},\"filter\":{},\"objects\":{},\"bytes\":{},\"ms\":{},\"outcome\":{}",
            json_string(&rfc3339(self.start)),
            json_string(self.frontend),
            str_or_null(self.repo.as_deref()),
            str_or_null(self.user.as_deref()),
            str_or_null(self.addr.as_deref()),
            proto,
            s.commands.iter().map(|c| json_string(c)).collect::<Vec<_>>().join(","),
            s.wants,
            s.haves,
            s.shallow,
            str_or_null(s.filter.as_deref()),
            s.objects,
            s.bytes,
            ms,
            json_string(outcome),
        );
        if let Some(r) = reason {
            line.push_str(&format!(",\"reason\":{}", json_string(r)));
        }
        line.push_str(&format!(
            ",\"sid\":{},\"agent\":{},\"pid\":{}",
            json_string(&self.sid()),
            str_or_null(s.client_agent.as_deref()),
            std::process::id()
        ));
        // The pack and host fields, when the text form has them.
        for (name, v) in pack_values(s) {
            let v = match v {
                PackValue::Text(t) => str_or_null(t.as_deref()),
                PackValue::Number(n) => n.to_string(),
            };
            line.push_str(&format!(",\"{name}\":{v}"));
        }
        line.push('}');
        line
    }

    fn outcome_reason(&self) -> (&'static str, Option<&str>) {
        match &self.outcome {
            Outcome::Ok => ("ok", None),
            Outcome::Refused(r) => ("refused", Some(r.as_str())),
            Outcome::Error(r) => ("error", Some(r.as_str())),
            Outcome::Hangup => ("hangup", None),
        }
    }

    fn text_line(&self, now: SystemTime) -> String {
        let ms = now.duration_since(self.start).unwrap_or(Duration::ZERO).as_millis();
        let s = &self.summary;
        let (outcome, reason) = self.outcome_reason();
        let proto = match self.version {
            None => "-",
            Some(Version::V0) => "0",
            Some(Version::V1) => "1",
            Some(Version::V2) => "2",
        };
        let mut line = format!(
            "{} packserve frontend={} repo={} user={} addr={} proto={} commands={} wants={} haves={} shallow={} filter={} objects={} bytes={} ms={} outcome={}",
            rfc3339(self.start),
            self.frontend,
            value(self.repo.as_deref()),
            value(self.user.as_deref()),
            value(self.addr.as_deref()),
            proto,
            value(Some(&s.commands.join(","))),
            s.wants,
            s.haves,
            if s.shallow { "yes" } else { "no" },
            value(s.filter.as_deref()),
            s.objects,
            s.bytes,
            ms,
            outcome,
        );
        if let Some(r) = reason {
            line.push_str(" reason=");
            line.push_str(&value(Some(r)));
        }
        line.push_str(&format!(
            " sid={} agent={} pid={}",
            value(Some(&self.sid())),
            value(s.client_agent.as_deref()),
            std::process::id()
        ));
        line.push_str(&pack_fields(s));
        line
    }

    /// Writes the line to `sink`. Logging never fails a request: a file that cannot be opened
    /// or written is reported on stderr, once per process, and the request goes on.
    pub fn write(&self, sink: &Sink) {
        let mut line = self.line(SystemTime::now());
        line.push('\n');
        match sink {
            Sink::Off => {}
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::File(path) => {
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(line.as_bytes()));
                if let Err(e) = written {
                    report_once(path, &e);
                }
            }
        }
    }
}

/// Tells stderr, the first time only, that the log file cannot be written.
fn report_once(path: &std::path::Path, e: &std::io::Error) {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !REPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "packserve: cannot write the log {}: {}",
            path.display(),
            crate::strerror(e)
        );
    }
}

/// A JSON string literal.
pub fn json_string(v: &str) -> String {
    quoted(v, |c| format!("\\u{c:04x}"))
}

/// A value of [`pack_values`].
enum PackValue {
    Text(Option<String>),
    Number(u128),
}

/// The fields of a request that sent a pack or used the host's cache or slots: `cache` (hit,
/// follow, miss, uncached), `cache_bytes` (served from the cache), `queue_ms` (waited for an
/// admission slot), `count_ms`/`write_ms` (counting the pack versus writing it),
/// `host_problem` (a cache or slot problem served around, only when there was one). None
/// when none applies. Both forms of the line take them from here.
fn pack_values(s: &Summary) -> Vec<(&'static str, PackValue)> {
    let sent = s.cache.is_some() || !s.counting.is_zero() || !s.writing.is_zero() || !s.queue.is_zero();
    if !sent {
        return Vec::new();
    }
    let mut out = vec![
        ("cache", PackValue::Text(s.cache.map(str::to_owned))),
        ("cache_bytes", PackValue::Number(u128::from(s.cache_bytes))),
        ("queue_ms", PackValue::Number(s.queue.as_millis())),
        ("count_ms", PackValue::Number(s.counting.as_millis())),
        ("write_ms", PackValue::Number(s.writing.as_millis())),
    ];
    if let Some(p) = &s.host_problem {
        out.push(("host_problem", PackValue::Text(Some(p.clone()))));
    }
    out
}

/// [`pack_values`] in the text form: ` name=value` each.
fn pack_fields(s: &Summary) -> String {
    pack_values(s)
        .into_iter()
        .map(|(name, v)| match v {
            PackValue::Text(t) => format!(" {name}={}", value(t.as_deref())),
            PackValue::Number(n) => format!(" {name}={n}"),
        })
        .collect()
}

/// A log value: `-` when empty, quoted when it would not split on spaces.
fn value(v: Option<&str>) -> String {
    let v = match v {
        None | Some("") => return "-".to_owned(),
        Some(v) => v,
    };
    let plain = v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b'=');
    if plain {
        return v.to_owned();
    }
    quoted(v, |c| format!("\\x{c:02x}"))
}

/// `v` in double quotes, with `"` and `\` escaped by a backslash and control characters
/// written by `control` (given the character's code).
fn quoted(v: &str, control: impl Fn(u32) -> String) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&control(c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_795_342_272_345)),
            "2026-11-22T10:11:12.345Z"
        );
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn values_split_on_spaces() {
        assert_eq!(value(None), "-");
        assert_eq!(value(Some("")), "-");
        assert_eq!(value(Some("/srv/a.git")), "/srv/a.git");
        assert_eq!(value(Some("a b")), "\"a b\"");
        assert_eq!(value(Some("x=\"y\"\n")), "\"x=\\\"y\\\"\\x0a\"");
    }

    #[test]
    fn a_whole_line() {
        let mut e = Entry::new("http");
        e.start = UNIX_EPOCH + Duration::from_secs(1_795_342_272);
        e.repo = Some("/srv/a.git".into());
        e.user = Some("alice".into());
        e.version = Some(Version::V2);
        e.summary.commands = vec!["ls-refs", "fetch"];
        e.summary.wants = 3;
        e.summary.filter = Some("blob:none".into());
        e.outcome = Outcome::Refused("not exported".into());
        e.summary.client_sid = Some("s1".into());
        e.summary.client_agent = Some("git/2.47.3 (x)".into());
        assert_eq!(
            e.line(e.start + Duration::from_millis(35)),
            format!(
                "2026-11-22T10:11:12.000Z packserve frontend=http repo=/srv/a.git user=alice addr=- proto=2 \
             commands=ls-refs,fetch wants=3 haves=0 shallow=no filter=blob:none objects=0 bytes=0 ms=35 \
             outcome=refused reason=\"not exported\" sid=s1 agent=\"git/2.47.3 (x)\" pid={}",
                std::process::id()
            )
        );
        e.format = Format::Json;
        assert_eq!(
            e.line(e.start + Duration::from_millis(35)),
            format!(
                "{{\"time\":\"2026-11-22T10:11:12.000Z\",\"frontend\":\"http\",\"repo\":\"/srv/a.git\",\
                 \"user\":\"alice\",\"addr\":null,\"proto\":2,\"commands\":[\"ls-refs\",\"fetch\"],\"wants\":3,\
                 \"haves\":0,\"shallow\":false,\"filter\":\"blob:none\",\"objects\":0,\"bytes\":0,\"ms\":35,\
                 \"outcome\":\"refused\",\"reason\":\"not exported\",\"sid\":\"s1\",\"agent\":\"git/2.47.3 (x)\",\
                 \"pid\":{}}}",
                std::process::id()
            )
        );
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\u000a\\u0001\"");
    }

    #[test]
    fn pack_fields_when_a_pack_was_sent() {
        let mut s = Summary::default();
        assert_eq!(pack_fields(&s), "");
        s.cache = Some("hit");
        s.cache_bytes = 1234;
        s.queue = Duration::from_millis(7);
        s.host_problem = Some("cache: no space".into());
        assert_eq!(
            pack_fields(&s),
            " cache=hit cache_bytes=1234 queue_ms=7 count_ms=0 write_ms=0 host_problem=\"cache: no space\""
        );
    }
}
