//! The pack stream: header, entries, trailer. Stored entries are copied byte for byte from the
//! mapped packs (CRC-checked against the `.idx`); a stored delta is kept when its base is in the
//! pack (ofs-delta with the distance recomputed, or ref-delta) or, for a thin pack, on the client;
//! anything else is written whole, compressed anew.
//!
//! Entries are written in the [`Plan`]'s order, pack by pack in stored order, so an ofs-delta's
//! base (when sent) has been written already and is found among the entries planned before it
//! by its offset.
//!
//! Writes to any [`Write`]; knows nothing of side-bands or capabilities.

use std::io::{self, Write};

use gix::hash::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::data::entry::Header;

use super::delta::DeltaIndex;
use super::plan::{in_run, Plan, PlanEntry, PlanError, PlannedBase, UNPACKED};
use super::search::{DeltaBase, DeltaSearch};
use super::source::{ObjNum, PackId, PackSet, SourceError};
use super::{ObjectError, Objects};

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

/// What the writer may know about objects outside the plan, by object number.
pub struct Known<'a> {
    /// Whether an object is sent (the verbatim run aside: the writer knows that one).
    pub is_sent: &'a dyn Fn(ObjNum) -> bool,
    /// Whether the client has it.
    pub client_has: &'a dyn Fn(ObjNum) -> bool,
    /// The client's objects by name hash.
    pub thin_bases: &'a ThinBases,
    /// The name hash of a sent object's path.
    pub name_hash: &'a dyn Fn(ObjNum) -> u32,
}

/// Writes the whole pack for `plan` to `out` (the plan records where each entry went).
/// `on_entry` is called after each entry (progress).
pub fn write_pack<W: Write>(
    out: &mut W,
    plan: &mut Plan,
    packs: &PackSet,
    objects: &dyn Objects,
    known: &Known<'_>,
    opts: PackOptions,
    on_entry: &mut dyn FnMut(&PackStats),
) -> Result<PackStats, PackError> {
    let Known { is_sent, client_has, thin_bases, name_hash } = *known;
    let count = u32::try_from(plan.len()).map_err(|_| PackError::TooMany)?;
    let verbatim = plan.verbatim;
    if let Some(v) = verbatim {
        let p = packs.pack(v.pack);
        if plan.entries.is_empty() && v.objects == p.num_objects() && v.end == p.entries_end() {
            return super::reuse::write_whole_pack(out, p, on_entry);
        }
    }
    // Sent anywhere in this pack: listed, or in the run.
    let sent = |num: ObjNum| is_sent(num) || verbatim.is_some_and(|v| in_run(packs, v, num));
    let mut w = Hashing { out, hasher: gix::hash::hasher(packs.hash_kind()), count: 0 };
    let mut stats = PackStats::default();
    w.write_all(b"PACK")?;
    w.write_all(&2u32.to_be_bytes())?;
    w.write_all(&count.to_be_bytes())?;
    // The verbatim run first; `shifts` maps its input offsets to output offsets.
    let shifts = match verbatim {
        Some(v) => {
            let ok_base = |id: &gix::hash::oid| {
                packs
                    .num_of(id)
                    .or_else(|| objects.num(id))
                    .is_some_and(|n| sent(n) || (opts.thin && client_has(n)))
            };
            super::reuse::write_run(&mut w, packs, objects, v, &ok_base, opts, &mut stats, on_entry)?
        }
        None => super::reuse::Shifts::default(),
    };

    let mut anew = Anew {
        search: DeltaSearch::new(objects, opts.thin.then_some(thin_bases)),
        objects,
        opts,
        buf: Vec::new(),
        base_buf: Vec::new(),
        hdr: Vec::with_capacity(32),
    };
    let mut hdr = Vec::with_capacity(32);
    let mut kept = std::mem::take(&mut plan.deltas);
    for k in 0..plan.entries.len() {
        let here = w.count;
        let e = plan.entries[k];
        plan.entries[k].set_out_offset(here);
        // Where a new delta's base is.
        let new_base = |base: PlannedBase| match base {
            PlannedBase::New(b) => {
                Some((entry_num(packs, &plan.entries[b]), NewBase::Written(plan.entries[b].out_offset())))
            }
            PlannedBase::Client(c) => Some((plan.client_bases[c], NewBase::Client)),
            _ => None,
        };
        if e.pack() == UNPACKED {
            let num = e.pos();
            if let Some((delta, h)) = kept_delta(&mut kept, new_base(e.base()), num, here, opts, objects) {
                anew.write_delta(&mut w, &mut stats, h, &delta)?;
                stats.objects += 1;
                on_entry(&stats);
                continue;
            }
            anew.write(&mut w, &mut stats, num, name_hash(num), None, new_base(e.base()))?;
            stats.objects += 1;
            on_entry(&stats);
            continue;
        }
        let pack = PackId::from(e.pack());
        let p = packs.pack(pack);
        let corrupt = |what: String| SourceError::Corrupt { path: p.path().to_owned(), what };
        let index =
            p.index_at_pack_position(e.pos()).ok_or_else(|| corrupt(format!("no entry {}", e.pos())))?;
        let num = packs.base(pack) + index;
        let off = p.index().pack_offset_at_index(index);
        let end = p.offset_at_pack_position(e.pos() + 1);
        if end <= off || end > p.entries_end() {
            return Err(corrupt(format!("bad entry bounds at offset {off}")).into());
        }
        let info = p.entry_bounded(off, end)?;
        let raw = p.bytes(off, end);
        if let Some(crc) = p.index().crc32_at_index(index) {
            if crc32fast::hash(raw) != crc {
                return Err(PackError::Crc {
                    path: p.path().display().to_string(),
                    id: p.index().oid_at_index(index).to_owned(),
                });
            }
        }
        let data = &raw[info.header_len..];
        let mut written = false;
        // A stored non-delta entry, copied as it is if no better delta turns up.
        let mut stored_whole: Option<(&[u8], Kind)> = None;
        let new_header = match (e.base(), info.header) {
            (base @ (PlannedBase::New(_) | PlannedBase::Client(_)), h) => {
                if let Some((delta, h)) = kept_delta(&mut kept, new_base(e.base()), num, here, opts, objects)
                {
                    anew.write_delta(&mut w, &mut stats, h, &delta)?;
                } else {
                    let stored = h.as_kind().map(|k| (raw, k));
                    anew.write(&mut w, &mut stats, num, name_hash(num), stored, new_base(base))?;
                }
                written = true;
                None
            }
            (PlannedBase::Stored(b), Header::OfsDelta { .. } | Header::RefDelta { .. }) => {
                let at = plan.entries[b].out_offset();
                if at != 0 && opts.ofs_delta {
                    Some(Header::OfsDelta { base_distance: here - at })
                } else {
                    Some(Header::RefDelta { base_id: entry_id(packs, &plan.entries[b], objects) })
                }
            }
            (_, Header::OfsDelta { base_distance }) => {
                let base_off = off
                    .checked_sub(base_distance)
                    .ok_or_else(|| corrupt(format!("delta base before start at offset {off}")))?;
                match verbatim {
                    Some(v) if v.pack == pack && base_off < v.end && opts.ofs_delta => {
                        Some(Header::OfsDelta { base_distance: here - shifts.out_offset(base_off) })
                    }
                    _ => {
                        let bindex = p
                            .index_at_offset(base_off)
                            .ok_or_else(|| corrupt(format!("no entry at delta base offset {base_off}")))?;
                        let base_id = p.index().oid_at_index(bindex).to_owned();
                        let canon = packs.num_of(&base_id).unwrap_or(packs.base(pack) + bindex);
                        (sent(canon) || (opts.thin && client_has(canon)))
                            .then_some(Header::RefDelta { base_id })
                    }
                }
            }
            (_, Header::RefDelta { base_id }) => {
                match packs.num_of(&base_id).or_else(|| objects.num(&base_id)) {
                    Some(bnum) if verbatim.is_some_and(|v| in_run(packs, v, bnum)) && opts.ofs_delta => {
                        let bloc = packs.location(bnum).map(|l| l.offset).unwrap_or(0);
                        Some(Header::OfsDelta { base_distance: here - shifts.out_offset(bloc) })
                    }
                    Some(bnum) if sent(bnum) || (opts.thin && client_has(bnum)) => {
                        Some(Header::RefDelta { base_id })
                    }
                    _ => None,
                }
            }
            (_, h) => {
                let kind = h.as_kind().unwrap_or(Kind::Blob);
                if opts.thin && anew.search.worth_trying(kind, name_hash(num), info.size) {
                    stored_whole = Some((raw, kind));
                } else {
                    w.write_all(raw)?;
                    stats.reused += 1;
                    anew.search.note_whole(here, num, kind, name_hash(num));
                    written = true;
                }
                None
            }
        };
        if let Some(h) = new_header {
            hdr.clear();
            h.write_to(info.size, &mut hdr)?;
            w.write_all(&hdr)?;
            w.write_all(data)?;
            stats.reused += 1;
            stats.reused_deltas += 1;
            stats.deltas += 1;
            written = true;
        }
        p.touch_passing(off, end - off);
        if !written {
            anew.write(&mut w, &mut stats, num, name_hash(num), stored_whole, None)?;
        }
        stats.objects += 1;
        on_entry(&stats);
    }
    let Hashing { out, hasher, count } = w;
    let digest = hasher.try_finalize().map_err(|e| io::Error::other(e.to_string()))?;
    out.write_all(digest.as_bytes())?;
    stats.bytes = count + digest.as_bytes().len() as u64;
    Ok(stats)
}

/// The delta the window kept for entry `e` (object `num`, written at `here`), with its header,
/// if it kept one and its base is where the delta may name it.
fn kept_delta(
    kept: &mut std::collections::HashMap<ObjNum, Vec<u8>>,
    base: Option<(ObjNum, NewBase)>,
    num: ObjNum,
    here: u64,
    opts: PackOptions,
    objects: &dyn Objects,
) -> Option<(Vec<u8>, Header)> {
    let (bnum, at) = base?;
    let h = match at {
        NewBase::Written(0) => return None,
        NewBase::Written(o) if opts.ofs_delta => Header::OfsDelta { base_distance: here - o },
        NewBase::Client if !opts.thin => return None,
        _ => Header::RefDelta { base_id: objects.id(bnum) },
    };
    kept.remove(&num).map(|d| (d, h))
}

/// The object number of a planned entry.
fn entry_num(packs: &PackSet, e: &PlanEntry) -> ObjNum {
    if e.pack() == UNPACKED {
        return e.pos();
    }
    let pack = PackId::from(e.pack());
    packs.base(pack) + packs.pack(pack).index_at_pack_position(e.pos()).unwrap_or(0)
}

/// The object id of a planned entry.
fn entry_id(packs: &PackSet, e: &PlanEntry, objects: &dyn Objects) -> ObjectId {
    objects.id(entry_num(packs, e))
}

/// Where a new delta's base is.
#[derive(Clone, Copy)]
enum NewBase {
    /// Written at this output offset (0: not yet).
    Written(u64),
    /// On the client (a thin pack).
    Client,
}

/// Writes objects anew: as a delta against the base the window chose, or one the thin
/// search finds, or whole.
struct Anew<'a> {
    search: DeltaSearch<'a>,
    objects: &'a dyn Objects,
    opts: PackOptions,
    buf: Vec<u8>,
    base_buf: Vec<u8>,
    hdr: Vec<u8>,
}

impl Anew<'_> {
    /// Writes object `num`: as a delta against `base` if it pays, else as stored (`stored`, a
    /// whole entry) if there is a stored copy, else as the thin search finds or whole.
    fn write<W: Write>(
        &mut self,
        w: &mut Hashing<'_, W>,
        stats: &mut PackStats,
        num: ObjNum,
        name_hash: u32,
        stored: Option<(&[u8], Kind)>,
        base: Option<(ObjNum, NewBase)>,
    ) -> Result<(), PackError> {
        let here = w.count;
        let kind = self.objects.read(num, &mut self.buf)?;
        if let Some((bnum, at)) = base {
            let usable = match at {
                NewBase::Written(o) => o != 0,
                NewBase::Client => self.opts.thin,
            };
            if usable && self.objects.read(bnum, &mut self.base_buf)? == kind {
                let max = (self.buf.len() / 2).saturating_sub(self.objects.hash_kind().len_in_bytes());
                if let Some(delta) = DeltaIndex::new(&self.base_buf[..]).encode(&self.buf, max) {
                    let h = match at {
                        NewBase::Written(o) if self.opts.ofs_delta => {
                            Header::OfsDelta { base_distance: here - o }
                        }
                        _ => Header::RefDelta { base_id: self.objects.id(bnum) },
                    };
                    return self.write_delta(w, stats, h, &delta);
                }
            }
        }
        if let Some((b, delta)) = self.search.find(num, kind, name_hash, &self.buf) {
            let h = match b {
                DeltaBase::Written(at, _) if self.opts.ofs_delta => {
                    Header::OfsDelta { base_distance: here - at }
                }
                DeltaBase::Written(_, b) | DeltaBase::Thin(b) => {
                    Header::RefDelta { base_id: self.objects.id(b) }
                }
            };
            return self.write_delta(w, stats, h, &delta);
        }
        if let Some((raw, _)) = stored {
            w.write_all(raw)?;
            stats.reused += 1;
        } else {
            self.hdr.clear();
            type_header(kind).write_to(self.buf.len() as u64, &mut self.hdr)?;
            w.write_all(&self.hdr)?;
            compress(w, &self.buf)?;
        }
        self.search.note_whole(here, num, kind, name_hash);
        Ok(())
    }

    fn write_delta<W: Write>(
        &mut self,
        w: &mut Hashing<'_, W>,
        stats: &mut PackStats,
        h: Header,
        delta: &[u8],
    ) -> Result<(), PackError> {
        self.hdr.clear();
        h.write_to(delta.len() as u64, &mut self.hdr)?;
        w.write_all(&self.hdr)?;
        compress(w, delta)?;
        stats.deltas += 1;
        Ok(())
    }
}
