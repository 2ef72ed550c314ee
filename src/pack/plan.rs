//! The order of the pack and where each entry comes from: every pack's entries to send in the
//! order they are stored (so that an ofs-delta's base, if it is sent, is always written before
//! it, and a pack written by git keeps git's write order), the packs one after the other, then
//! the objects that are in no pack.
//!
//! A planned entry is 16 bytes: its pack position, where it starts in its pack, and (once
//! written) where it starts in the output. Object ids are not kept; the writer finds an
//! ofs-delta's base among the entries planned before it by its offset.

use crate::bits::Bits;

use super::source::{ObjNum, PackId, PackSet};

/// A run of a pack sent as one byte range from its first entry: the output's first `objects`
/// entries are that pack's first `objects` entries, at the same offsets (both headers are 12
/// bytes), so ofs-deltas inside the run keep their distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbatim {
    /// The pack.
    pub pack: PackId,
    /// Entries in the run (pack positions `0..objects`).
    pub objects: u32,
    /// Offset where the run ends (the entry after it, or the trailer).
    pub end: u64,
}

/// Offsets are kept in 48 bits (256 TiB).
const OFFSET_BITS: u32 = 48;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// One planned entry of a pack: its pack position, its offset in the pack and its offset in the
/// output (0 until written), in 16 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanEntry {
    pos: u32,
    in_lo: u32,
    out_lo: u32,
    /// High 16 bits of the input offset, then of the output offset.
    hi: u32,
}

impl PlanEntry {
    fn new(pos: u32, in_off: u64) -> Self {
        PlanEntry { pos, in_lo: in_off as u32, out_lo: 0, hi: ((in_off >> 32) as u32) & 0xffff }
    }

    /// Its pack position.
    pub fn pos(&self) -> u32 {
        self.pos
    }

    /// Where it starts in its pack.
    pub fn in_offset(&self) -> u64 {
        u64::from(self.in_lo) | (u64::from(self.hi & 0xffff) << 32)
    }

    /// Where it starts in the output (once written).
    pub fn out_offset(&self) -> u64 {
        u64::from(self.out_lo) | (u64::from(self.hi >> 16) << 32)
    }

    /// Records where it was written. Offsets past 2^48 are refused by [`Plan::new`]'s caller.
    pub fn set_out_offset(&mut self, out: u64) {
        let out = out & OFFSET_MASK;
        self.out_lo = out as u32;
        self.hi = (self.hi & 0xffff) | (((out >> 32) as u32) << 16);
    }
}

/// The planned entries of one pack, in pack order.
#[derive(Debug)]
pub struct PackPlan {
    /// The pack.
    pub pack: PackId,
    /// Its entries to send, by ascending pack position.
    pub entries: Vec<PlanEntry>,
}

impl PackPlan {
    /// The index of the entry planned before `before` that starts at `offset`, searching
    /// backwards from `before` (an ofs-delta's base is usually a few entries back).
    pub fn find_before(&self, before: usize, offset: u64) -> Option<usize> {
        let e = &self.entries[..before.min(self.entries.len())];
        // Gallop back to a bracket, then bisect it.
        let mut hi = e.len();
        let mut step = 1;
        let lo = loop {
            if hi == 0 {
                return None;
            }
            let probe = hi.saturating_sub(step);
            let o = e[probe].in_offset();
            if o == offset {
                return Some(probe);
            }
            if o < offset {
                break probe + 1;
            }
            if probe == 0 {
                return None;
            }
            hi = probe;
            step *= 2;
        };
        let i = e[lo..hi].partition_point(|x| x.in_offset() < offset) + lo;
        (i < hi && e[i].in_offset() == offset).then_some(i)
    }

    /// The index of the entry at pack position `pos`, if it is planned.
    pub fn find_position(&self, pos: u32) -> Option<usize> {
        self.entries.binary_search_by_key(&pos, |e| e.pos).ok()
    }
}

/// The ordered list of entries.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sent first, before the packs' entries.
    pub verbatim: Option<Verbatim>,
    /// The packs' entries, pack after pack.
    pub packs: Vec<PackPlan>,
    /// Objects in no pack (by number), written last.
    pub unpacked: Vec<ObjNum>,
}

/// Planning failed: the packs are too big for the plan's offsets.
#[derive(Debug, thiserror::Error)]
#[error("pack {0} is too large to be planned (offsets past 2^48)")]
pub struct PlanError(pub String);

impl Plan {
    /// Plans the objects whose numbers are set in `sent`, numbered by `packs` (numbers past the
    /// packs' are unpacked objects).
    pub fn new(sent: &Bits, packs: &PackSet) -> Result<Self, PlanError> {
        let mut plan = Plan::default();
        for (i, p) in packs.packs().iter().enumerate() {
            let pack = i as PackId;
            let base = packs.base(pack) as usize;
            let n = p.num_objects() as usize;
            let count = sent.count_range(base, base + n);
            if count == 0 {
                continue;
            }
            if p.entries_end() > OFFSET_MASK {
                return Err(PlanError(p.path().display().to_string()));
            }
            let mut entries = Vec::with_capacity(count);
            if count >= n / 32 {
                // Dense: one pass in pack order through the reverse index.
                for pos in 0..n as u32 {
                    if let Some(index) = p.index_at_pack_position(pos) {
                        if sent.get(base + index as usize) {
                            entries.push(PlanEntry::new(pos, p.index().pack_offset_at_index(index)));
                        }
                    }
                }
            } else {
                // Sparse: each object's pack position, then sorted.
                for num in sent.iter_from(base).take_while(|&x| x < base + n) {
                    let index = (num - base) as u32;
                    if let Some(pos) = p.pack_position_of_index(index) {
                        entries.push(PlanEntry::new(pos, p.index().pack_offset_at_index(index)));
                    }
                }
                entries.sort_unstable_by_key(|e| e.pos);
            }
            plan.packs.push(PackPlan { pack, entries });
        }
        let total = packs.total() as usize;
        plan.unpacked = sent.iter_from(total).map(|n| n as ObjNum).collect();
        Ok(plan)
    }

    /// Entries in the pack, the verbatim run included.
    pub fn len(&self) -> usize {
        self.verbatim.map_or(0, |v| v.objects as usize)
            + self.packs.iter().map(|p| p.entries.len()).sum::<usize>()
            + self.unpacked.len()
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `pack` is in [`Plan::packs`].
    pub fn pack_plan(&self, pack: PackId) -> Option<usize> {
        self.packs.binary_search_by_key(&pack, |p| p.pack).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_48_bit_offsets() {
        let mut e = PlanEntry::new(7, (1 << 47) + 12345);
        assert_eq!(e.pos(), 7);
        assert_eq!(e.in_offset(), (1 << 47) + 12345);
        assert_eq!(e.out_offset(), 0);
        e.set_out_offset((1 << 40) + 99);
        assert_eq!(e.out_offset(), (1 << 40) + 99);
        assert_eq!(e.in_offset(), (1 << 47) + 12345);
        assert_eq!(std::mem::size_of::<PlanEntry>(), 16);
    }

    #[test]
    fn finds_bases_before() {
        let entries: Vec<PlanEntry> =
            (0..100u32).map(|i| PlanEntry::new(i * 2, 12 + u64::from(i) * 10)).collect();
        let p = PackPlan { pack: 0, entries };
        for before in [1usize, 2, 5, 50, 100] {
            for target in 0..before {
                let off = 12 + target as u64 * 10;
                assert_eq!(p.find_before(before, off), Some(target), "before {before} target {target}");
            }
            assert_eq!(p.find_before(before, 13), None);
            assert_eq!(p.find_before(before, 12 + before as u64 * 10), None);
        }
        assert_eq!(p.find_before(0, 12), None);
        assert_eq!(p.find_position(40), Some(20));
        assert_eq!(p.find_position(41), None);
    }
}
