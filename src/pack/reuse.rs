//! Verbatim reuse: a pack's leading entries copied as byte ranges straight from the mapping,
//! without decoding them — the whole file (trailer included) when every object of the pack is
//! sent and nothing else, otherwise a run from its first entry inside a new pack.
//!
//! Every entry is still checked against the CRC32 its `.idx` records, in pack order: the
//! reverse index gives each entry's `.idx` position, and the entry's end is where the next one
//! starts (one offset read per entry, which the next entry reuses). git copies without checking;
//! the check is what turns a damaged pack into an error naming it, instead of a clean exit with
//! a pack the client then fails to index. It costs two reads in the `.idx` tables per entry and a
//! CRC32 of the bytes (a few percent of the copy).
//! In a run from the pack's start an ofs-delta's base is always in the run at the same offset,
//! so its bytes stay valid; only an entry that must change (a ref-delta whose base is not
//! sent, written whole instead) shifts what follows, and ofs-deltas across the shift get a new
//! distance (git's pack-reuse does the same).

use std::io::{self, Write};

use gix::hash::oid;
use gix::odb::pack::data::entry::Header;

use super::common::{compress, type_header, Hashing, PackError, PackOptions, PackStats};
use super::plan::Verbatim;
use super::source::{Pack, PackId, PackSet, SourceError};
use super::Objects;

/// Bytes handed to the writer at once (and released from the mapping after).
const CHUNK: u64 = 1 << 20;
/// The first hand-over is smaller, so that the client has its first pack bytes sooner.
const FIRST_CHUNK: u64 = 64 << 10;

const OBJ_OFS_DELTA: u8 = 6;
const OBJ_REF_DELTA: u8 = 7;

/// How input offsets of a run map to output offsets: `(from, delta)` pairs sorted by `from`;
/// an entry at input offset `o` is at `o + delta` of the last pair with `from <= o`.
#[derive(Debug, Default)]
pub struct Shifts(Vec<(u64, i64)>);

impl Shifts {
    /// The output offset of the run entry at input offset `off`.
    pub fn out_offset(&self, off: u64) -> u64 {
        let i = self.0.partition_point(|&(from, _)| from <= off);
        match i.checked_sub(1) {
            Some(j) => off.wrapping_add_signed(self.0[j].1),
            None => off,
        }
    }
}

fn check_crc(p: &Pack, index: u32, raw: &[u8]) -> Result<(), PackError> {
    if let Some(crc) = p.index().crc32_at_index(index) {
        if crc32fast::hash(raw) != crc {
            let id = p.index().oid_at_index(index).to_owned();
            return Err(PackError::Crc { path: p.path().display().to_string(), id });
        }
    }
    Ok(())
}

fn corrupt(p: &Pack, what: String) -> PackError {
    PackError::Source(SourceError::Corrupt { path: p.path().to_owned(), what })
}

/// How many entries ahead [`Entries`] asks for the `.idx` slots it will read.
const PREFETCH_AHEAD: u32 = 16;

/// Walks a pack's first entries in pack order: each one's `.idx` position, offset and end.
struct Entries<'p> {
    p: &'p Pack,
    limit: u64,
    /// The offset of the next entry (the end of the current one).
    next_off: u64,
}

impl<'p> Entries<'p> {
    /// Entries `0..n`, which must end at or before `limit`.
    fn new(p: &'p Pack, n: u32, limit: u64) -> Result<Self, PackError> {
        if n > 1024 {
            // A scan: the `.idx` is read through its mapping from the start, not a `pread` each.
            p.index().warm();
        }
        let first = if n == 0 { limit } else { p.offset_at_pack_position(0) };
        if n > 0 && first != 12 {
            return Err(corrupt(p, "first entry not after the header".into()));
        }
        Ok(Entries { p, limit, next_off: first })
    }

    /// The entry at pack position `r` (called for `0, 1, 2, ...`): `.idx` position, start, end.
    fn next(&mut self, r: u32) -> Result<(u32, u64, u64), PackError> {
        let p = self.p;
        // The `.idx` is read at random in pack order: its slots are loaded ahead of time.
        p.prefetch_pack_position(r.saturating_add(PREFETCH_AHEAD));
        let index = p.index_at_pack_position(r).ok_or_else(|| corrupt(p, format!("no entry {r}")))?;
        let off = self.next_off;
        let next = p.offset_at_pack_position(r + 1);
        if next <= off || next > self.limit || next > p.entries_end() {
            return Err(corrupt(p, format!("bad entry bounds at offset {off}")));
        }
        self.next_off = next;
        Ok((index, off, next))
    }
}

/// Sends the pack file `p` as it is: every object of it and nothing else was selected. No
/// re-hashing: the stored trailer is the checksum of exactly these bytes.
pub fn write_whole_pack<W: Write>(
    out: &mut W,
    p: &Pack,
    on_entry: &mut dyn FnMut(&PackStats),
) -> Result<PackStats, PackError> {
    let n = p.num_objects();
    let mut stats = PackStats::default();
    let mut chunk_start = 0u64;
    let mut chunk = FIRST_CHUNK;
    let mut entries = Entries::new(p, n, p.entries_end())?;
    for r in 0..n {
        let (index, off, next) = entries.next(r)?;
        let raw = p.bytes(off, next);
        check_crc(p, index, raw)?;
        let kind = (raw[0] >> 4) & 7;
        if kind == OBJ_OFS_DELTA || kind == OBJ_REF_DELTA {
            stats.deltas += 1;
        }
        if kind == OBJ_REF_DELTA {
            let info = p.entry_bounded(off, next)?;
            if let Header::RefDelta { base_id } = info.header {
                if p.index().lookup(&base_id).is_none() {
                    return Err(corrupt(
                        p,
                        format!("delta at offset {off} has its base {base_id} outside the pack"),
                    ));
                }
            }
        }
        if next - chunk_start >= chunk {
            out.write_all(p.bytes(chunk_start, next))?;
            p.release(chunk_start, next);
            chunk_start = next;
            chunk = CHUNK;
            stats.objects = r + 1;
            on_entry(&stats);
        }
    }
    let len = p.entries_end() + p.checksum().len() as u64;
    out.write_all(p.bytes(chunk_start, len))?;
    p.release(chunk_start, len);
    stats.objects = n;
    stats.reused = n;
    stats.reused_deltas = stats.deltas;
    stats.verbatim = n;
    stats.bytes = len;
    on_entry(&stats);
    Ok(stats)
}

/// Writes the run `v` (after the pack header, which the caller wrote). `ok_base` says whether
/// a ref-delta's base outside the run may still be named (sent elsewhere in the pack, or on the
/// client for a thin pack); entries whose base may not are written whole.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_run<W: Write>(
    w: &mut Hashing<'_, W>,
    packs: &PackSet,
    objects: &dyn Objects,
    v: Verbatim,
    ok_base: &dyn Fn(&oid) -> bool,
    opts: PackOptions,
    stats: &mut PackStats,
    on_entry: &mut dyn FnMut(&PackStats),
) -> Result<Shifts, PackError> {
    let p = packs.pack(v.pack);
    if !opts.ofs_delta {
        return Err(corrupt(p, "verbatim reuse needs ofs-delta".into()));
    }
    let mut entries = Entries::new(p, v.objects, v.end)?;
    let mut shifts = Shifts::default();
    let mut shift: i64 = 0;
    let mut chunk_start = 12u64;
    let mut chunk = FIRST_CHUNK;
    let mut buf = Vec::new();
    let mut hdr = Vec::with_capacity(32);
    let flush = |w: &mut Hashing<'_, W>, from: u64, to: u64| -> io::Result<()> {
        if to > from {
            w.write_all(p.bytes(from, to))?;
            p.release(from, to);
        }
        Ok(())
    };
    for r in 0..v.objects {
        let (index, off, next) = entries.next(r)?;
        let raw = p.bytes(off, next);
        check_crc(p, index, raw)?;
        stats.objects += 1;
        stats.reused += 1;
        stats.verbatim += 1;
        let kind = (raw[0] >> 4) & 7;
        let is_delta = kind == OBJ_OFS_DELTA || kind == OBJ_REF_DELTA;
        // What to write instead of the stored bytes, if they can't stay.
        let mut replace = false;
        if kind == OBJ_REF_DELTA || (kind == OBJ_OFS_DELTA && shift != 0) {
            let info = p.entry_bounded(off, next)?;
            match info.header {
                Header::RefDelta { base_id } => {
                    let in_run = p
                        .index()
                        .lookup(&base_id)
                        .and_then(|i| p.pack_position_of_index(i))
                        .is_some_and(|pos| pos < v.objects);
                    if !in_run && !ok_base(&base_id) {
                        let num = packs.base(v.pack as PackId) + index;
                        let k = objects.read(num, &mut buf)?;
                        hdr.clear();
                        type_header(k).write_to(buf.len() as u64, &mut hdr)?;
                        flush(w, chunk_start, off)?;
                        let before = w.count;
                        w.write_all(&hdr)?;
                        compress(w, &buf)?;
                        stats.reused -= 1;
                        stats.verbatim -= 1;
                        replace = true;
                        shift += (w.count - before) as i64 - (next - off) as i64;
                    }
                }
                Header::OfsDelta { base_distance } => {
                    let base_in = off
                        .checked_sub(base_distance)
                        .ok_or_else(|| corrupt(p, format!("delta base before start at offset {off}")))?;
                    let here_out = off.wrapping_add_signed(shift);
                    let distance = here_out - shifts.out_offset(base_in);
                    if distance != base_distance {
                        hdr.clear();
                        Header::OfsDelta { base_distance: distance }.write_to(info.size, &mut hdr)?;
                        flush(w, chunk_start, off)?;
                        w.write_all(&hdr)?;
                        w.write_all(&raw[info.header_len..])?;
                        replace = true;
                        shift += hdr.len() as i64 - info.header_len as i64;
                    }
                }
                _ => {}
            }
        }
        if is_delta && !(replace && kind == OBJ_REF_DELTA) {
            stats.deltas += 1;
            stats.reused_deltas += 1;
        }
        if replace {
            shifts.0.push((next, shift));
            p.release(chunk_start, next);
            chunk_start = next;
        } else if next - chunk_start >= chunk {
            flush(w, chunk_start, next)?;
            chunk_start = next;
            chunk = CHUNK;
            on_entry(stats);
        }
    }
    flush(w, chunk_start, v.end)?;
    on_entry(stats);
    Ok(shifts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_map_offsets() {
        let s = Shifts(vec![(100, 5), (200, -3)]);
        assert_eq!(s.out_offset(12), 12);
        assert_eq!(s.out_offset(99), 99);
        assert_eq!(s.out_offset(100), 105);
        assert_eq!(s.out_offset(150), 155);
        assert_eq!(s.out_offset(250), 247);
    }
}
