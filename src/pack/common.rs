//! What the pack layer's modules share: the options and counters of a pack, the errors, the
//! hashing writer, entry headers and compression, the client's delta bases. A leaf: it imports
//! only `source` and the module root, and `plan`, `search`, `reuse` and `writer` import it.

use std::io::{self, Write};

use gix::hash::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::data::entry::Header;

use super::source::{ObjNum, SourceError};
use super::ObjectError;

/// What the client accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Deltas may name their base by offset.
    pub ofs_delta: bool,
    /// Deltas may use bases the client has but that are not in the pack.
    pub thin: bool,
}

/// Counters of a written pack.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackStats {
    /// Entries written.
    pub objects: u32,
    /// Of which deltas.
    pub deltas: u32,
    /// Entries copied from stored bytes.
    pub reused: u32,
    /// Of which deltas.
    pub reused_deltas: u32,
    /// Bytes of the whole pack including the trailer.
    pub bytes: u64,
    /// Entries copied as one byte range from the start of a pack (counted in `reused` too).
    pub verbatim: u32,
}

/// Planning failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("pack {0} is too large to be planned (offsets past 2^48)")]
    TooLarge(String),
    #[error("too many objects for one pack")]
    TooMany,
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Errors writing a pack.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("pack {path}: CRC mismatch for object {id}")]
    Crc { path: String, id: ObjectId },
    #[error("too many objects for one pack")]
    TooMany,
}

/// Hashes and counts everything written through it.
pub(super) struct Hashing<'a, W: Write> {
    pub(super) out: &'a mut W,
    pub(super) hasher: gix::hash::Hasher,
    pub(super) count: u64,
}

impl<W: Write> Write for Hashing<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.out.write(data)?;
        self.hasher.update(&data[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

pub(super) fn type_header(kind: Kind) -> Header {
    match kind {
        Kind::Commit => Header::Commit,
        Kind::Tree => Header::Tree,
        Kind::Blob => Header::Blob,
        Kind::Tag => Header::Tag,
    }
}

/// Deflates `data` (zlib, git's default level) to `w`. One compressor and one output buffer
/// serve every entry: a compressor's state is a few hundred KiB, and allocating one per object
/// made the allocator grow and shrink the heap for every entry written anew.
pub(super) fn compress(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    thread_local! {
        static DEFLATE: std::cell::RefCell<(flate2::Compress, Vec<u8>)> = std::cell::RefCell::new((
            flate2::Compress::new(flate2::Compression::default(), true),
            Vec::with_capacity(64 << 10),
        ));
    }
    DEFLATE.with(|d| {
        let (z, out) = &mut *d.borrow_mut();
        z.reset();
        let mut input = data;
        loop {
            out.clear();
            let before = z.total_in();
            let status =
                z.compress_vec(input, out, flate2::FlushCompress::Finish).map_err(io::Error::other)?;
            input = &input[(z.total_in() - before) as usize..];
            w.write_all(out)?;
            if status == flate2::Status::StreamEnd {
                return Ok(());
            }
        }
    })
}

/// Objects of the client's side by name hash (a thin pack's possible delta bases).
pub type ThinBases = std::collections::HashMap<u32, Vec<(ObjNum, Kind)>>;
