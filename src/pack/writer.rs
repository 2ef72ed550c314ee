//! The pack stream: header, entries, trailer. Stored entries are copied byte for byte from the
//! mapped packs (CRC-checked against the `.idx`); a stored delta is kept when its base is in the
//! pack (ofs-delta with the distance recomputed, or ref-delta) or, for a thin pack, on the client;
//! anything else is written whole, compressed anew.
//!
//! Writes to any [`Write`]; knows nothing of side-bands or capabilities.

use std::io::{self, Write};

use flate2::write::ZlibEncoder;
use gix::hash::{oid, ObjectId};
use gix::objs::Kind;
use gix::odb::pack::data::entry::Header;

use super::plan::Plan;
use super::search::{DeltaBase, DeltaSearch};
use super::source::{PackSet, SourceError};
use crate::odb::{Odb, OdbError};

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
    Odb(#[from] OdbError),
    #[error("pack {path}: CRC mismatch for object {id}")]
    Crc { path: String, id: ObjectId },
    #[error("object {id} is a {actual} but was listed as a {expected}")]
    KindMismatch { id: ObjectId, actual: Kind, expected: Kind },
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

pub(super) fn compress(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let mut z = ZlibEncoder::new(w, flate2::Compression::default());
    z.write_all(data)?;
    z.finish().map(drop)
}

/// Objects of the client's side by name hash (a thin pack's possible delta bases).
pub type ThinBases = std::collections::HashMap<u32, Vec<(ObjectId, Kind)>>;

/// What the writer may know about objects outside the plan.
pub struct Known<'a> {
    /// Whether an object is in this pack (anywhere in the plan).
    pub is_sent: &'a dyn Fn(&oid) -> bool,
    /// Whether the client has it.
    pub client_has: &'a dyn Fn(&oid) -> bool,
    /// The client's objects by name hash.
    pub thin_bases: &'a ThinBases,
}

/// Where the planned base of a stored delta is in the output.
enum Base {
    /// At this plan position.
    Planned(usize),
    /// In the verbatim run, at this input offset.
    Run(u64),
}

/// Writes the whole pack for `plan` to `out`. `on_entry` is called after each entry (progress).
pub fn write_pack<W: Write>(
    out: &mut W,
    plan: &Plan,
    packs: &PackSet,
    odb: &Odb,
    known: &Known<'_>,
    opts: PackOptions,
    on_entry: &mut dyn FnMut(&PackStats),
) -> Result<PackStats, PackError> {
    let Known { is_sent, client_has, thin_bases } = *known;
    let run_objects = plan.verbatim.map_or(0, |v| v.objects as usize);
    let count = u32::try_from(plan.entries.len() + run_objects).map_err(|_| PackError::TooMany)?;
    if let Some(v) = plan.verbatim {
        let p = packs.pack(v.pack);
        if plan.entries.is_empty() && v.objects == p.num_objects() && v.end == p.entries_end() {
            return super::reuse::write_whole_pack(out, p, on_entry);
        }
    }
    let mut w = Hashing { out, hasher: gix::hash::hasher(packs.hash_kind()), count: 0 };
    let mut stats = PackStats::default();
    w.write_all(b"PACK")?;
    w.write_all(&2u32.to_be_bytes())?;
    w.write_all(&count.to_be_bytes())?;
    // The verbatim run first; `shifts` maps its input offsets to output offsets.
    let shifts = match plan.verbatim {
        Some(v) => {
            let ok_base = |id: &oid| is_sent(id) || (opts.thin && client_has(id));
            super::reuse::write_run(&mut w, packs, odb, v, &ok_base, opts, &mut stats, on_entry)?
        }
        None => super::reuse::Shifts::default(),
    };

    let mut search = DeltaSearch::new(odb, opts.thin.then_some(thin_bases));
    let mut out_offsets: Vec<u64> = Vec::with_capacity(plan.entries.len());
    let mut buf = Vec::new();
    let mut hdr = Vec::with_capacity(32);
    for (i, e) in plan.entries.iter().enumerate() {
        let here = w.count;
        out_offsets.push(here);
        // A stored non-delta entry we may copy as it is if no better delta turns up.
        let mut stored_whole: Option<&[u8]> = None;
        let mut written = false;
        if let Some(loc) = e.loc {
            let p = packs.pack(loc.pack);
            let info = p.entry_at_index(loc.index, loc.offset)?;
            let raw = p.bytes(info.offset, info.end);
            if let Some(crc) = p.index().crc32_at_index(loc.index) {
                if crc32fast::hash(raw) != crc {
                    return Err(PackError::Crc { path: p.path().display().to_string(), id: e.id });
                }
            }
            let data = &raw[info.header_len..];
            // The base of a stored delta, as (plan position if planned, its id).
            let base = match info.header {
                Header::OfsDelta { base_distance } => {
                    let base_off =
                        info.offset.checked_sub(base_distance).ok_or_else(|| SourceError::Corrupt {
                            path: p.path().to_owned(),
                            what: format!("delta base before start at offset {}", info.offset),
                        })?;
                    let pos = match plan.verbatim {
                        Some(v) if v.pack == loc.pack && base_off < v.end => Some(Base::Run(base_off)),
                        _ => plan.position_of(loc.pack, base_off).map(Base::Planned),
                    };
                    let id = packs.oid_at(loc.pack, base_off).ok_or_else(|| SourceError::Corrupt {
                        path: p.path().to_owned(),
                        what: format!("no entry at delta base offset {base_off}"),
                    })?;
                    Some((pos, id))
                }
                Header::RefDelta { base_id } => {
                    let pos = packs.locate(&base_id).and_then(|l| match plan.verbatim {
                        Some(v) if v.pack == l.pack && l.offset < v.end => Some(Base::Run(l.offset)),
                        _ => plan.position_of(l.pack, l.offset).map(Base::Planned),
                    });
                    Some((pos, base_id))
                }
                _ => None,
            };
            match base {
                None => {
                    if info.header.as_kind() != Some(e.kind) {
                        return Err(PackError::KindMismatch {
                            id: e.id,
                            actual: info.header.as_kind().unwrap_or(Kind::Blob),
                            expected: e.kind,
                        });
                    }
                    if search.worth_trying(e.kind, e.name_hash, info.size) {
                        stored_whole = Some(raw);
                    } else {
                        w.write_all(raw)?;
                        stats.reused += 1;
                        search.note_whole(i, e.id, e.kind, e.name_hash);
                        written = true;
                    }
                }
                Some((pos, base_id)) => {
                    let new_header = match pos {
                        Some(Base::Planned(j)) if j < i && opts.ofs_delta => {
                            Some(Header::OfsDelta { base_distance: here - out_offsets[j] })
                        }
                        Some(Base::Run(off)) if opts.ofs_delta => {
                            Some(Header::OfsDelta { base_distance: here - shifts.out_offset(off) })
                        }
                        Some(_) => Some(Header::RefDelta { base_id }),
                        None if is_sent(&base_id) || (opts.thin && client_has(&base_id)) => {
                            Some(Header::RefDelta { base_id })
                        }
                        None => None,
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
                }
            }
            p.touch(info.offset, info.end - info.offset);
        }
        if !written {
            let kind = odb.read(&e.id, &mut buf)?;
            if kind != e.kind {
                return Err(PackError::KindMismatch { id: e.id, actual: kind, expected: e.kind });
            }
            hdr.clear();
            if let Some((base, delta)) = search.find(&e.id, kind, e.name_hash, &buf) {
                let h = match base {
                    DeltaBase::Written(j, _) if opts.ofs_delta => {
                        Header::OfsDelta { base_distance: here - out_offsets[j] }
                    }
                    DeltaBase::Written(_, id) | DeltaBase::Thin(id) => Header::RefDelta { base_id: id },
                };
                h.write_to(delta.len() as u64, &mut hdr)?;
                w.write_all(&hdr)?;
                compress(&mut w, &delta)?;
                stats.deltas += 1;
            } else if let Some(raw) = stored_whole {
                w.write_all(raw)?;
                stats.reused += 1;
                search.note_whole(i, e.id, kind, e.name_hash);
            } else {
                type_header(kind).write_to(buf.len() as u64, &mut hdr)?;
                w.write_all(&hdr)?;
                compress(&mut w, &buf)?;
                search.note_whole(i, e.id, kind, e.name_hash);
            }
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
