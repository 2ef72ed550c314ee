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
pub struct Trace(pub Sink);

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trace")
    }
}

/// Opens the destination a `GIT_TRACE_PACKET` value names, as git interprets it: `1`, `2` or
/// `true` → stderr; an absolute path → appended to that file; `3`..`9` → that file descriptor;
/// empty, `0` or `false` → off.
pub fn open(value: &str) -> Option<Box<dyn Write>> {
    match value.to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => None,
        "1" | "2" | "true" | "yes" | "on" => Some(Box::new(std::io::stderr())),
        v if v.len() == 1 && v.as_bytes()[0].is_ascii_digit() => {
            use std::os::fd::FromRawFd;
            let fd = i32::from(v.as_bytes()[0] - b'0');
            // The fd must be open, or writing would hit some other file later.
            // SAFETY: fcntl(F_GETFD) only queries the descriptor.
            if unsafe { libc_fcntl_getfd(fd) } < 0 {
                return None;
            }
            // SAFETY: the descriptor is open and handed to us by our parent for this purpose;
            // it lives as long as the process.
            Some(Box::new(unsafe { std::fs::File::from_raw_fd(fd) }))
        }
        _ if value.starts_with('/') => std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(value)
            .ok()
            .map(|f| Box::new(f) as Box<dyn Write>),
        _ => None,
    }
}

extern "C" {
    #[link_name = "fcntl"]
    fn fcntl_raw(fd: i32, cmd: i32, ...) -> i32;
}

/// `fcntl(fd, F_GETFD)`.
unsafe fn libc_fcntl_getfd(fd: i32) -> i32 {
    const F_GETFD: i32 = 1;
    // SAFETY: F_GETFD takes no further argument and has no side effect.
    unsafe { fcntl_raw(fd, F_GETFD) }
}

/// Formats one trace line; `None` data means a flush packet.
pub fn format_line(now: std::time::SystemTime, direction: char, data: Option<&[u8]>) -> String {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let micros = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let mut line = format!("{h:02}:{m:02}:{s:02}.{micros:06} pkt-line.c:86 ");
    while line.len() < 40 {
        line.push(' ');
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
    sink: Sink,
    direction: char,
    in_pack: bool,
}

impl Tracer {
    /// `direction` is `<` for what the client sent, `>` for what we send.
    pub fn new(sink: Sink, direction: char) -> Self {
        Tracer { sink, direction, in_pack: false }
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
        let text = format_line(std::time::SystemTime::now(), self.direction, shown);
        // Tracing must never break serving.
        let _ = self.sink.borrow_mut().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_git() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(3_723_000_042);
        assert_eq!(
            format_line(t, '<', Some(b"want abc multi_ack\n")),
            "01:02:03.000042 pkt-line.c:86           packet:  upload-pack< want abc multi_ack\n"
        );
        assert_eq!(
            format_line(t, '>', None),
            "01:02:03.000042 pkt-line.c:86           packet:  upload-pack> 0000\n"
        );
        assert!(format_line(t, '>', Some(b"a\x01b")).ends_with("a\\1b\n"));
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
        let mut t = Tracer::new(sink, '>');
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
        assert!(open("0").is_none());
        assert!(open("false").is_none());
        assert!(open("relative/path").is_none());
        assert!(open("1").is_some());
    }
}
