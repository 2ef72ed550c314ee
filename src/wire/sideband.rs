//! Side-band multiplexing: pack data on band 1, progress on band 2, a fatal error on band 3.
//!
//! Without side-band (plain v0 without the capability) pack bytes go out raw and progress is dropped.

use std::io::{self, Write};

use super::pktline::PktWriter;

/// How the pack is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Raw bytes, no progress possible.
    Raw,
    /// `side-band`: packets of at most 1000 bytes.
    SideBand,
    /// `side-band-64k` (and always in v2): packets of at most 65520 bytes.
    SideBand64k,
}

impl Framing {
    fn max_payload(self) -> usize {
        match self {
            Framing::Raw => usize::MAX,
            Framing::SideBand => 1000 - 5,
            Framing::SideBand64k => super::pktline::MAX_PAYLOAD - 1,
        }
    }
}

/// A writer for the packfile response. Implements [`Write`] for band-1 data.
pub struct SideBand<'w, W: Write> {
    out: &'w mut PktWriter<W>,
    framing: Framing,
    progress: bool,
    buf: Vec<u8>,
}

impl<'w, W: Write> SideBand<'w, W> {
    /// `progress` false drops band-2 messages (`no-progress`).
    pub fn new(out: &'w mut PktWriter<W>, framing: Framing, progress: bool) -> Self {
        let cap = if framing == Framing::Raw { 64 * 1024 } else { framing.max_payload() };
        SideBand { out, framing, progress: progress && framing != Framing::Raw, buf: Vec::with_capacity(cap) }
    }

    /// Sends a progress message on band 2 (the caller adds `\r` or `\n`).
    pub fn progress(&mut self, msg: &str) -> io::Result<()> {
        if !self.progress {
            return Ok(());
        }
        self.flush_data()?;
        self.band(2, msg.as_bytes())?;
        self.out.flush()
    }

    /// Sends a fatal error on band 3 (or as `ERR` without side-band) and flushes.
    pub fn error(&mut self, msg: &str) -> io::Result<()> {
        self.flush_data()?;
        match self.framing {
            Framing::Raw => self.out.error(msg)?,
            _ => self.band(3, format!("{msg}\n").as_bytes())?,
        }
        self.out.flush()
    }

    /// A keep-alive: an empty band-1 packet (`0005\1`), harmless to the client.
    pub fn keepalive(&mut self) -> io::Result<()> {
        if self.framing == Framing::Raw {
            return Ok(());
        }
        self.flush_data()?;
        self.band(1, b"")?;
        self.out.flush()
    }

    fn band(&mut self, band: u8, data: &[u8]) -> io::Result<()> {
        let max = self.framing.max_payload();
        for chunk in data.chunks(max.max(1)) {
            self.out.stream_band(band, chunk)?;
        }
        if data.is_empty() {
            self.out.stream_band(band, &[])?;
        }
        Ok(())
    }

    fn flush_data(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let res = match self.framing {
            Framing::Raw => self.out.raw(&buf),
            _ => self.band(1, &buf),
        };
        self.buf = buf;
        self.buf.clear();
        res
    }

    /// Whether the writer puts section lines on band 1 too (`sideband-all`).
    pub fn lines_on_band_1(&self) -> bool {
        self.out.sideband_all()
    }

    /// The pkt-line writer, for section lines before the pack starts (buffered data first).
    pub fn lines(&mut self) -> io::Result<&mut PktWriter<W>> {
        self.flush_data()?;
        Ok(self.out)
    }

    /// Flushes buffered data and the underlying writer.
    pub fn finish(&mut self) -> io::Result<()> {
        self.flush_data()?;
        self.out.flush()
    }
}

impl<W: Write> Write for SideBand<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let max = if self.framing == Framing::Raw { 64 * 1024 } else { self.framing.max_payload() };
        let room = max - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == max {
            self.flush_data()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_data()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_are_framed() {
        let mut out = Vec::new();
        {
            let mut w = PktWriter::new(&mut out);
            let mut sb = SideBand::new(&mut w, Framing::SideBand64k, true);
            sb.write_all(b"PACK").unwrap();
            sb.progress("Total 3\n").unwrap();
            sb.error("fatal: oops").unwrap();
            sb.finish().unwrap();
        }
        assert_eq!(out, b"0009\x01PACK000d\x02Total 3\n0011\x03fatal: oops\n".to_vec());
    }

    #[test]
    fn small_sideband_splits_at_1000() {
        let mut out = Vec::new();
        {
            let mut w = PktWriter::new(&mut out);
            let mut sb = SideBand::new(&mut w, Framing::SideBand, false);
            sb.write_all(&[7u8; 2000]).unwrap();
            sb.progress("dropped").unwrap();
            sb.finish().unwrap();
        }
        assert_eq!(&out[..5], b"03e8\x01");
        assert_eq!(&out[1000..1005], b"03e8\x01");
        assert_eq!(&out[2000..2005], b"000f\x01");
        assert_eq!(out.len(), 2000 + 5 * 3);
    }

    #[test]
    fn raw_has_no_framing_and_err_on_failure() {
        let mut out = Vec::new();
        {
            let mut w = PktWriter::new(&mut out);
            let mut sb = SideBand::new(&mut w, Framing::Raw, true);
            sb.write_all(b"PACK").unwrap();
            sb.progress("dropped").unwrap();
            sb.finish().unwrap();
        }
        assert_eq!(out, b"PACK");
    }
}
