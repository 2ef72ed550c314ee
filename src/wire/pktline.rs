//! pkt-line reading and writing (gitprotocol-common), on top of `gix-packetline`'s encoders.
//!
//! The reader is strict: a length that lies, a length of 1..=3 or over 65520, or a stream that
//! ends inside a packet are errors, never silently accepted.

use std::io::{self, Read, Write};

use gix_packetline::blocking_io::encode;

/// Largest pkt-line including its four-byte header.
pub const MAX_PKT_LEN: usize = 65520;
/// Largest payload of a pkt-line.
pub const MAX_PAYLOAD: usize = MAX_PKT_LEN - 4;

/// One packet as read from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data line (payload as sent, including a trailing newline if any).
    Data(&'a [u8]),
    /// `0000`
    Flush,
    /// `0001` (v2 only)
    Delim,
    /// `0002` (v2 only)
    ResponseEnd,
}

impl<'a> Packet<'a> {
    /// The payload of a data line without one trailing `\n`, or `None` for special packets.
    pub fn line(&self) -> Option<&'a [u8]> {
        match self {
            Packet::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d)),
            _ => None,
        }
    }
}

/// Errors while reading pkt-lines.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("protocol error: bad line length character: {0}")]
    BadLength(String),
    #[error("protocol error: bad line length {0}")]
    BadLengthValue(usize),
    #[error("the remote end hung up unexpectedly")]
    UnexpectedEof,
    /// The current request passed the reader's byte budget.
    #[error("request larger than {0} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Observer of packets read (for `GIT_TRACE_PACKET`).
pub type ReadTrace = Box<dyn FnMut(&Packet<'_>)>;
/// Observer of packets written: a data line, or `None` for a flush.
pub type WriteTrace = Box<dyn FnMut(Option<&[u8]>)>;

/// Reads pkt-lines from a byte stream, one at a time, into an internal buffer.
pub struct PktReader<R> {
    inner: R,
    buf: Vec<u8>,
    trace: Option<ReadTrace>,
    /// Bytes of the current request so far, and the most it may have.
    request_bytes: u64,
    max_request_bytes: u64,
    /// A packet read by [`peek_gentle`](Self::peek_gentle) and not yet returned (data in `buf`).
    peeked: Option<Kind>,
}

/// What kind of packet `buf` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Flush,
    Delim,
    ResponseEnd,
}

impl Kind {
    fn packet(self, buf: &[u8]) -> Packet<'_> {
        match self {
            Kind::Data => Packet::Data(buf),
            Kind::Flush => Packet::Flush,
            Kind::Delim => Packet::Delim,
            Kind::ResponseEnd => Packet::ResponseEnd,
        }
    }
}

impl<R: Read> PktReader<R> {
    /// Wraps `inner`; reads are done in exact sizes, so no bytes beyond a packet are consumed.
    pub fn new(inner: R) -> Self {
        PktReader {
            inner,
            buf: Vec::with_capacity(1024),
            trace: None,
            request_bytes: 0,
            max_request_bytes: u64::MAX,
            peeked: None,
        }
    }

    /// Bounds the bytes of one request (see [`start_request`](Self::start_request)); a packet
    /// that would pass the bound is refused with [`ReadError::TooLarge`] before it is read.
    pub fn set_max_request_bytes(&mut self, max: u64) {
        self.max_request_bytes = max;
    }

    /// A new request starts: its byte count starts from zero.
    pub fn start_request(&mut self) {
        self.request_bytes = 0;
    }

    /// Calls `f` for every packet read (used for `GIT_TRACE_PACKET`).
    pub fn set_trace(&mut self, f: ReadTrace) {
        self.trace = Some(f);
    }

    /// Reads the next packet; `Ok(None)` when the stream ends cleanly before a packet starts.
    pub fn read(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        let kind = match self.peeked.take() {
            Some(k) => Some(k),
            None => self.read_packet(false)?,
        };
        Ok(kind.map(|k| self.packet(k)))
    }

    /// Reads the next packet the way git reads where a conversation may end
    /// (`PACKET_READ_GENTLE_ON_EOF`): a stream that ends anywhere before the packet is complete,
    /// inside its length or its payload, is `Ok(None)`, the end, not an error. The packet is
    /// kept: the next [`read`](Self::read) returns it.
    pub fn peek_gentle(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        if self.peeked.is_none() {
            self.peeked = self.read_packet(true)?;
        }
        Ok(self.peeked.map(|k| self.packet(k)))
    }

    fn packet(&self, kind: Kind) -> Packet<'_> {
        kind.packet(&self.buf)
    }

    /// Reads one packet into `buf`; `gentle`: an end of stream inside it is `Ok(None)`.
    fn read_packet(&mut self, gentle: bool) -> Result<Option<Kind>, ReadError> {
        let ended = |got_any: bool| if gentle || !got_any { Ok(None) } else { Err(ReadError::UnexpectedEof) };
        let mut hdr = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match self.inner.read(&mut hdr[got..]) {
                Ok(0) => return ended(got > 0),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let len = parse_len(&hdr)?;
        self.request_bytes += len.max(4) as u64;
        if self.request_bytes > self.max_request_bytes {
            return Err(ReadError::TooLarge(self.max_request_bytes));
        }
        let kind = match len {
            0 => Kind::Flush,
            1 => Kind::Delim,
            2 => Kind::ResponseEnd,
            3 => return Err(ReadError::BadLengthValue(3)),
            n if n > MAX_PKT_LEN => return Err(ReadError::BadLengthValue(n)),
            n => {
                self.buf.resize(n - 4, 0);
                match read_exact(&mut self.inner, &mut self.buf) {
                    Err(ReadError::UnexpectedEof) => return ended(true),
                    other => other?,
                }
                Kind::Data
            }
        };
        if let Some(t) = self.trace.as_mut() {
            t(&kind.packet(&self.buf));
        }
        Ok(Some(kind))
    }

    /// Like [`read`](Self::read) but end of stream is an error.
    pub fn read_required(&mut self) -> Result<Packet<'_>, ReadError> {
        self.read()?.ok_or(ReadError::UnexpectedEof)
    }

    /// The wrapped reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

fn read_exact(r: &mut impl Read, mut buf: &mut [u8]) -> Result<(), ReadError> {
    while !buf.is_empty() {
        match r.read(buf) {
            Ok(0) => return Err(ReadError::UnexpectedEof),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn parse_len(hdr: &[u8; 4]) -> Result<usize, ReadError> {
    let mut n = 0usize;
    for &c in hdr {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(ReadError::BadLength(String::from_utf8_lossy(hdr).into_owned())),
        };
        n = n * 16 + v as usize;
    }
    Ok(n)
}

/// Writes pkt-lines; buffered, flushed at the end of every protocol turn with [`PktWriter::flush`].
pub struct PktWriter<W: Write> {
    inner: io::BufWriter<W>,
    trace: Option<WriteTrace>,
    /// v2 `sideband-all`: every data line goes out on band 1 (errors on band 3).
    sideband_all: bool,
    /// A copy of every byte written while set (the response cache's tee).
    tap: Option<TapState>,
    /// Bytes put into the buffer since the last [`PktWriter::flush`].
    since_flush: u64,
    /// The descriptor the output ends in, when nothing between counts the bytes.
    output_fd: Option<i32>,
}

/// Receives a copy of the bytes written (see [`PktWriter::set_tap`]).
pub type Tap = Box<dyn FnMut(&[u8])>;

/// The tap and the client's first write error while tapping.
struct TapState {
    tap: Tap,
    client_error: Option<io::Error>,
}

impl<W: Write> PktWriter<W> {
    /// Wraps `inner` with a buffer.
    pub fn new(inner: W) -> Self {
        PktWriter {
            inner: io::BufWriter::with_capacity(64 * 1024, inner),
            trace: None,
            sideband_all: false,
            tap: None,
            since_flush: 0,
            output_fd: None,
        }
    }

    /// Says that the output ends in the descriptor `fd` (stdout), so that a caller may send a
    /// file there directly (`sendfile`) once this writer is flushed.
    pub fn set_output_fd(&mut self, fd: Option<i32>) {
        self.output_fd = fd;
    }

    /// The descriptor set by [`PktWriter::set_output_fd`].
    pub fn output_fd(&self) -> Option<i32> {
        self.output_fd
    }

    /// Copies every byte written from now on to `tap`, until [`PktWriter::take_tap`]. While
    /// tapped, a failed write to the client does not stop the writing: the error is kept for
    /// `take_tap` and the bytes still go to the tap (so that a client hanging up does not
    /// cancel a cache entry others follow).
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(TapState { tap, client_error: None });
    }

    /// Stops tapping; the client's write error while tapped, if any.
    pub fn take_tap(&mut self) -> Option<io::Error> {
        self.tap.take().and_then(|t| t.client_error)
    }

    /// Whether nothing written since the last [`PktWriter::flush`] has reached the client yet
    /// (it is all still in the buffer, and can be dropped with [`PktWriter::discard`]).
    pub fn unsent_since_flush(&self) -> bool {
        self.since_flush == self.inner.buffer().len() as u64
    }

    /// Drops what is buffered and gives back the output.
    pub fn discard(self) -> W {
        self.inner.into_parts().0
    }

    fn put(&mut self, data: &[u8]) -> io::Result<()> {
        self.since_flush += data.len() as u64;
        let Some(t) = self.tap.as_mut() else { return self.inner.write_all(data) };
        (t.tap)(data);
        if t.client_error.is_none() {
            if let Err(e) = self.inner.write_all(data) {
                t.client_error = Some(e);
            }
        }
        Ok(())
    }

    /// Calls `f` with every data line written (`None` for a flush), for `GIT_TRACE_PACKET`.
    pub fn set_trace(&mut self, f: WriteTrace) {
        self.trace = Some(f);
    }

    /// From now on, wrap every data line in band 1 (v2 `sideband-all`).
    pub fn set_sideband_all(&mut self, on: bool) {
        self.sideband_all = on;
    }

    /// Whether lines go on band 1 (`sideband-all`).
    pub fn sideband_all(&self) -> bool {
        self.sideband_all
    }

    /// Writes one data line (on band 1 under `sideband-all`). Lines longer than [`MAX_PAYLOAD`]
    /// are an error.
    pub fn data(&mut self, data: &[u8]) -> io::Result<()> {
        if self.sideband_all {
            return self.band(1, data);
        }
        self.raw_line(data)
    }

    /// Writes a side-band packet: the band byte, then `data`.
    pub fn band(&mut self, band: u8, data: &[u8]) -> io::Result<()> {
        self.band_packet(band, data, true)
    }

    /// Writes a packet of the pack stream (pack data, progress): like git's server, these are
    /// not traced.
    pub fn stream_band(&mut self, band: u8, data: &[u8]) -> io::Result<()> {
        self.band_packet(band, data, false)
    }

    fn band_packet(&mut self, band: u8, data: &[u8], traced: bool) -> io::Result<()> {
        let mut pkt = Vec::with_capacity(data.len() + 1);
        pkt.push(band);
        pkt.extend_from_slice(data);
        if traced {
            self.raw_line(&pkt)
        } else {
            self.untraced_line(&pkt)
        }
    }

    fn raw_line(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(t) = self.trace.as_mut() {
            t(Some(data));
        }
        self.untraced_line(data)
    }

    fn untraced_line(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() > MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "pkt-line too long"));
        }
        if data.is_empty() {
            // gix's error for an empty data line.
            return encode::data_to_write(data, &mut self.inner).map(drop);
        }
        let n = data.len() + 4;
        let hex = |d: usize| b"0123456789abcdef"[d & 15];
        self.put(&[hex(n >> 12), hex(n >> 8), hex(n >> 4), hex(n)])?;
        self.put(data)
    }

    /// Writes a text line, adding the trailing newline.
    pub fn line(&mut self, text: impl AsRef<[u8]>) -> io::Result<()> {
        let text = text.as_ref();
        let mut v = Vec::with_capacity(text.len() + 1);
        v.extend_from_slice(text);
        v.push(b'\n');
        self.data(&v)
    }

    /// `0000`
    pub fn flush_pkt(&mut self) -> io::Result<()> {
        if let Some(t) = self.trace.as_mut() {
            t(None);
        }
        self.since_flush += 4;
        encode::flush_to_write(&mut self.inner).map(drop)
    }

    /// `0001`
    pub fn delim_pkt(&mut self) -> io::Result<()> {
        if let Some(t) = self.trace.as_mut() {
            t(Some(b"0001"));
        }
        self.since_flush += 4;
        encode::delim_to_write(&mut self.inner).map(drop)
    }

    /// An `ERR <message>` line, without a trailing newline as git (2.39, 2.47) writes it; under
    /// `sideband-all` the message goes to band 3 instead, also without newline.
    pub fn error(&mut self, message: &str) -> io::Result<()> {
        if self.sideband_all {
            return self.band(3, message.as_bytes());
        }
        self.data(format!("ERR {message}").as_bytes())
    }

    /// Raw bytes, unframed (a v0 pack without side-band).
    pub fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        self.put(data)
    }

    /// Pushes buffered bytes to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.since_flush = 0;
        match self.tap.as_mut() {
            Some(t) if t.client_error.is_some() => Ok(()),
            Some(t) => {
                if let Err(e) = self.inner.flush() {
                    t.client_error = Some(e);
                }
                Ok(())
            }
            None => self.inner.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<Result<Option<String>, String>> {
        let mut r = PktReader::new(input);
        let mut out = Vec::new();
        loop {
            match r.read() {
                Ok(None) => break,
                Ok(Some(Packet::Data(d))) => out.push(Ok(Some(String::from_utf8_lossy(d).into_owned()))),
                Ok(Some(Packet::Flush)) => out.push(Ok(None)),
                Ok(Some(p)) => out.push(Ok(Some(format!("{p:?}")))),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn reads_lines_and_specials() {
        let got = read_all(b"0009done\n00000001000a hello");
        assert_eq!(
            got,
            vec![Ok(Some("done\n".into())), Ok(None), Ok(Some("Delim".into())), Ok(Some(" hello".into()))]
        );
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(read_all(b"0003"), vec![Err("protocol error: bad line length 3".into())]);
        assert_eq!(read_all(b"zzzz"), vec![Err("protocol error: bad line length character: zzzz".into())]);
        assert_eq!(read_all(b"fff1"), vec![Err("protocol error: bad line length 65521".into())]);
        assert_eq!(read_all(b"000adon"), vec![Err("the remote end hung up unexpectedly".into())]);
        assert_eq!(read_all(b"00"), vec![Err("the remote end hung up unexpectedly".into())]);
    }

    #[test]
    fn gentle_end_anywhere_inside_a_packet() {
        for input in [&b""[..], b"0", b"000", b"0009don", b"0009done"] {
            let mut r = PktReader::new(input);
            assert!(matches!(r.peek_gentle(), Ok(None)), "{input:?}");
            assert!(matches!(r.read(), Ok(None)), "{input:?}");
        }
        let mut r = PktReader::new(&b"0009done\n0000"[..]);
        assert_eq!(r.peek_gentle().unwrap(), Some(Packet::Data(b"done\n")));
        assert_eq!(r.read().unwrap(), Some(Packet::Data(b"done\n")));
        assert_eq!(r.read().unwrap(), Some(Packet::Flush));
        assert!(matches!(PktReader::new(&b"zz"[..]).peek_gentle(), Ok(None)));
        assert!(matches!(PktReader::new(&b"zzzz"[..]).peek_gentle(), Err(ReadError::BadLength(_))));
    }

    #[test]
    fn empty_data_line_is_data() {
        assert_eq!(read_all(b"0004"), vec![Ok(Some(String::new()))]);
    }

    #[test]
    fn line_strips_one_newline() {
        assert_eq!(Packet::Data(b"want x\n").line(), Some(&b"want x"[..]));
        assert_eq!(Packet::Data(b"want x").line(), Some(&b"want x"[..]));
        assert_eq!(Packet::Flush.line(), None);
    }

    #[test]
    fn request_budget() {
        let input = b"0009want\n00000009have\n0000";
        let mut r = PktReader::new(&input[..]);
        r.set_max_request_bytes(13);
        assert!(matches!(r.read(), Ok(Some(Packet::Data(_)))));
        assert!(matches!(r.read(), Ok(Some(Packet::Flush))));
        assert!(matches!(r.read(), Err(ReadError::TooLarge(13))));
        let mut r = PktReader::new(&input[..]);
        r.set_max_request_bytes(13);
        r.read().unwrap();
        r.read().unwrap();
        r.start_request();
        assert!(matches!(r.read(), Ok(Some(Packet::Data(_)))));
    }

    #[test]
    fn writes_exact_bytes() {
        let mut out = Vec::new();
        {
            let mut w = PktWriter::new(&mut out);
            w.line("NAK").unwrap();
            w.delim_pkt().unwrap();
            w.error("upload-pack: not our ref 1234").unwrap();
            w.flush_pkt().unwrap();
            w.flush().unwrap();
        }
        assert_eq!(out, b"0008NAK\n00010025ERR upload-pack: not our ref 12340000");
    }

    #[test]
    fn refuses_oversized_line() {
        let mut out = Vec::new();
        let mut w = PktWriter::new(&mut out);
        assert!(w.data(&vec![b'a'; MAX_PAYLOAD + 1]).is_err());
        assert!(w.data(&vec![b'a'; MAX_PAYLOAD]).is_ok());
    }
}
