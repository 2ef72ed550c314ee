//! `GIT_TRACE_PACKET`-compatible tracing: every pkt-line read or written, in git's format
//! (`<time> pkt-line.c:<n>  packet:  upload-pack< <line>`), so operators debug packserve the way
//! they debug git. Pack data is shown once as `PACK ...`, as git does.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// Where trace lines go.
pub type Sink = Rc<RefCell<Box<dyn Write>>>;

/// The trace destination of a connection, if tracing is on.
#[derive(Clone)]
pub struct Trace {
    /// Where the lines go.
    pub sink: Sink,
    /// `GIT_TRACE_BARE`: lines without the time and `file:line` prefix.
    pub bare: bool,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trace")
    }
}

/// What a `GIT_TRACE_*` value names, as git's `get_trace_fd` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Unset, empty, `0` or `false` (any case).
    Off,
    /// `1` or `true` (any case).
    Stderr,
    /// Another single digit: that file descriptor (`2` is stderr too).
    Fd(i32),
    /// An absolute path: appended to, created if missing.
    File(std::path::PathBuf),
    /// Anything else: git warns and traces nothing.
    Unknown,
}

impl Destination {
    /// Reads a variable's value (`None`: unset).
    pub fn parse(value: Option<&str>) -> Destination {
        let Some(v) = value else { return Destination::Off };
        if v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false") {
            Destination::Off
        } else if v == "1" || v.eq_ignore_ascii_case("true") {
            Destination::Stderr
        } else if v.len() == 1 && v.as_bytes()[0].is_ascii_digit() {
            Destination::Fd(i32::from(v.as_bytes()[0] - b'0'))
        } else if v.starts_with('/') {
            Destination::File(v.into())
        } else {
            Destination::Unknown
        }
    }
}

/// git's warning for a value it cannot trace to (`key` is the variable's name).
fn unknown_value_warning(key: &str, value: &str) -> String {
    format!(
        "unknown trace value for '{key}': {value}\n         If you want to trace into a file, then please set {key}\n         to an absolute pathname (starting with /)"
    )
}

/// Opens the destination of the trace variable `key` set to `value`, as git interprets it:
/// `1` or `true` → stderr; `2`..`9` → that file descriptor; an absolute path → appended to
/// that file; unset, empty, `0` or `false` → off. `Err` carries git's warning (without
/// `warning: `) for a value git cannot trace to; nothing is traced then either.
pub fn open(key: &str, value: Option<&str>) -> Result<Option<Box<dyn Write + Send>>, String> {
    match Destination::parse(value) {
        Destination::Off => Ok(None),
        Destination::Stderr | Destination::Fd(2) => Ok(Some(Box::new(std::io::stderr()))),
        Destination::Fd(fd) => {
            use std::os::fd::FromRawFd;
            // The fd must be open, or writing would hit some other file later.
            // SAFETY: fcntl(F_GETFD) only queries the descriptor.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Ok(None);
            }
            // SAFETY: the descriptor is open and handed to us by our parent for this purpose;
            // it is never closed (ManuallyDrop), so it stays valid as long as the process.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            Ok(Some(Box::new(InheritedFd(std::mem::ManuallyDrop::new(file)))))
        }
        Destination::File(path) => match std::fs::OpenOptions::new().append(true).create(true).open(&path) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) => {
                Err(format!("could not open '{}' for tracing: {}", path.display(), crate::strerror(&e)))
            }
        },
        Destination::Unknown => Err(unknown_value_warning(key, value.unwrap_or_default())),
    }
}

/// Whether `GIT_TRACE_BARE` (set to `value`) asks for bare lines: git asks whether that key
/// would trace anywhere, opening (and so creating) a named file as it does. `Err` is git's
/// warning for a value it cannot use; the lines keep their prefix then.
pub fn bare(value: Option<&str>) -> Result<bool, String> {
    match Destination::parse(value) {
        Destination::Off => Ok(false),
        Destination::Stderr | Destination::Fd(_) => Ok(true),
        Destination::File(_) | Destination::Unknown => open("GIT_TRACE_BARE", value).map(|w| w.is_some()),
    }
}

/// A descriptor handed to us by our parent: written to, never closed.
struct InheritedFd(std::mem::ManuallyDrop<std::fs::File>);

impl Write for InheritedFd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Hours, minutes and seconds of `secs` after the epoch in local time (`TZ`, as git's trace
/// prints them, through `localtime_r`); UTC if the C library cannot convert.
pub fn local_hms(secs: u64) -> (u64, u64, u64) {
    // SAFETY: an all-zero `tm` is a valid value to be overwritten.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the reentrant form. (The
    // time type is inferred: musl's libc crate deprecates naming it.)
    if unsafe { libc::localtime_r(&(secs as _), &mut tm) }.is_null() {
        return ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    }
    (tm.tm_hour as u64, tm.tm_min as u64, tm.tm_sec as u64)
}

/// Formats one trace line; `None` data means a flush packet. `now` is the time for the
/// `HH:MM:SS.uuuuuu pkt-line.c:86` prefix; without it the line is bare (`GIT_TRACE_BARE`).
pub fn format_line(now: Option<std::time::SystemTime>, direction: char, data: Option<&[u8]>) -> String {
    let mut line = String::new();
    if let Some(now) = now {
        let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let micros = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
        let (h, m, s) = local_hms(secs);
        line = format!("{h:02}:{m:02}:{s:02}.{micros:06} pkt-line.c:86 ");
        while line.len() < 40 {
            line.push(' ');
        }
    }
    line.push_str(&format!("packet: {:>12}{direction} ", "upload-pack"));
    match data {
        None => line.push_str("0000"),
        Some(d) if d.starts_with(b"PACK") => line.push_str("PACK ..."),
        Some(d) => {
            for &b in d {
                match b {
                    b'\n' => {}
                    0x20..=0x7e => line.push(b as char),
                    other => line.push_str(&format!("\\{other:o}")),
                }
            }
        }
    }
    line.push('\n');
    line
}

/// A tracer for one direction; stops showing pack data after its first packet.
pub struct Tracer {
    trace: Trace,
    direction: char,
    in_pack: bool,
}

impl Tracer {
    /// `direction` is `<` for what the client sent, `>` for what we send.
    pub fn new(trace: Trace, direction: char) -> Self {
        Tracer { trace, direction, in_pack: false }
    }

    /// Traces one packet (`None` = flush). Band-1 pack data is shown once as `PACK ...`.
    pub fn packet(&mut self, data: Option<&[u8]>) {
        let shown = match data {
            Some([1, rest @ ..]) if rest.starts_with(b"PACK") || self.in_pack => {
                if self.in_pack {
                    return;
                }
                self.in_pack = true;
                Some(&b"PACK ..."[..])
            }
            other => other,
        };
        let now = (!self.trace.bare).then(std::time::SystemTime::now);
        let text = format_line(now, self.direction, shown);
        // Tracing must never break serving.
        let _ = self.trace.sink.borrow_mut().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_git() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(3_723_000_042);
        // Local time, as git prints it: 01:02:03 UTC in whatever zone the test runs in.
        let (h, m, _) = local_hms(3723);
        assert_eq!(
            format_line(Some(t), '<', Some(b"want abc multi_ack\n")),
            format!(
                "{h:02}:{m:02}:03.000042 pkt-line.c:86           packet:  upload-pack< want abc multi_ack\n"
            )
        );
        assert_eq!(
            format_line(Some(t), '>', None),
            format!("{h:02}:{m:02}:03.000042 pkt-line.c:86           packet:  upload-pack> 0000\n")
        );
        assert!(format_line(Some(t), '>', Some(b"a\x01b")).ends_with("a\\1b\n"));
        assert_eq!(format_line(None, '>', Some(b"NAK\n")), "packet:  upload-pack> NAK\n");
    }

    struct Shared(Rc<RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn pack_data_once() {
        let bytes = Rc::new(RefCell::new(Vec::new()));
        let sink: Sink = Rc::new(RefCell::new(Box::new(Shared(bytes.clone()))));
        let mut t = Tracer::new(Trace { sink, bare: false }, '>');
        t.packet(Some(b"\x01PACK\x00\x00"));
        t.packet(Some(b"\x01more"));
        t.packet(None);
        let text = String::from_utf8(bytes.borrow().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("upload-pack> PACK ..."));
        assert!(lines[1].ends_with("upload-pack> 0000"));
    }

    #[test]
    fn destinations() {
        let k = "GIT_TRACE_PACKET";
        assert!(open(k, None).unwrap().is_none());
        assert!(open(k, Some("0")).unwrap().is_none());
        assert!(open(k, Some("FALSE")).unwrap().is_none());
        assert!(open(k, Some("1")).unwrap().is_some());
        assert!(open(k, Some("True")).unwrap().is_some());
        assert_eq!(Destination::parse(Some("2")), Destination::Fd(2));
        let warning = open(k, Some("relative/path")).err().unwrap_or_default();
        assert!(
            warning.starts_with("unknown trace value for 'GIT_TRACE_PACKET': relative/path\n"),
            "{warning}"
        );
        assert_eq!(Destination::parse(Some("yes")), Destination::Unknown);
        assert!(!bare(Some("0")).unwrap());
        assert!(bare(Some("1")).unwrap());
        assert!(bare(Some("7")).unwrap());
        assert!(bare(Some("on")).is_err());
    }
}
