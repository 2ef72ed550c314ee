//! The order of the pack and where each entry comes from.
//!
//! Every pack's entries to send are taken in the order they are stored, the packs one after
//! the other, then the objects that are in no pack. Each entry's header is read once here to
//! find the base of a stored delta among the planned entries; a delta whose base is not sent
//! (cut off by a shallow boundary or a filter, or in no pack) is given a new base by git's
//! delta window ([`super::window`]). With `delta_order`, each delta is then moved right after
//! its base (a depth-first walk from every base to its deltas, as git's write order keeps
//! delta families together), which keeps ofs-delta distances, and so the pack, small; without
//! it the stored order stays (bitmap reuse, as git's), unless the window made new deltas,
//! whose bases must be written before them.
//!
//! A planned entry is 16 bytes: its pack position (or, for an object in no pack, its number),
//! the plan index of its delta base, its pack and (once written) its offset in the output.
//! Object ids are not kept.

use gix::odb::pack::data::entry::Header;

use crate::bits::Bits;

use super::source::{ObjNum, PackId, PackSet, SourceError};
use super::window::{self, Chosen, Role, WindowObject};
use super::Objects;

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

/// Offsets are kept in 48 bits (256 TiB); the pack id in the 16 above them.
const OFFSET_MASK: u64 = (1 << 48) - 1;
/// The "pack" of objects that are in no pack.
pub const UNPACKED: u16 = u16::MAX;
/// No base.
const NO_BASE: u32 = u32::MAX;
/// The base was chosen by the delta window (a new delta), not stored.
const NEW_BASE: u32 = 1 << 31;
/// With [`NEW_BASE`]: the base is an object the client has (index into [`Plan::client_bases`]).
const CLIENT_BASE: u32 = 1 << 30;

/// One planned entry, in 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanEntry {
    /// Pack position, or the object number for an object in no pack.
    pos: u32,
    /// Plan index of the base ([`NEW_BASE`] set for a new delta), or [`NO_BASE`].
    base: u32,
    /// The pack (high 16 bits) and the output offset once written (low 48; while planning,
    /// the input offset).
    pack_off: u64,
}

/// What an entry's base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlannedBase {
    /// No planned base: an object stored whole, or a delta whose base the writer finds itself
    /// (in the verbatim run, or on the client).
    None,
    /// The stored delta's base, at this plan index.
    Stored(usize),
    /// A new delta against the object at this plan index (chosen by the delta window).
    New(usize),
    /// A new delta against an object the client has (index into [`Plan::client_bases`]).
    Client(usize),
}

impl PlanEntry {
    fn new(pack: u16, pos: u32, off: u64) -> Self {
        PlanEntry { pos, base: NO_BASE, pack_off: (u64::from(pack) << 48) | (off & OFFSET_MASK) }
    }

    /// Its pack, or [`UNPACKED`].
    pub fn pack(&self) -> u16 {
        (self.pack_off >> 48) as u16
    }

    /// Its pack position (for [`UNPACKED`], its object number).
    pub fn pos(&self) -> u32 {
        self.pos
    }

    /// Where it starts in the output (0 until written: no entry starts before the header).
    pub fn out_offset(&self) -> u64 {
        self.pack_off & OFFSET_MASK
    }

    /// Records where it was written.
    pub fn set_out_offset(&mut self, out: u64) {
        self.pack_off = (self.pack_off & !OFFSET_MASK) | (out & OFFSET_MASK);
    }

    /// Its base.
    pub fn base(&self) -> PlannedBase {
        match self.base {
            NO_BASE => PlannedBase::None,
            b if b & (NEW_BASE | CLIENT_BASE) == NEW_BASE | CLIENT_BASE => {
                PlannedBase::Client((b & !(NEW_BASE | CLIENT_BASE)) as usize)
            }
            b if b & NEW_BASE != 0 => PlannedBase::New((b & !NEW_BASE) as usize),
            b => PlannedBase::Stored(b as usize),
        }
    }
}

/// How to plan.
pub struct PlanOptions<'a> {
    /// The run sent first, if any (its objects are not in the set to plan).
    pub verbatim: Option<Verbatim>,
    /// Move each delta after its base (else keep the stored order).
    pub delta_order: bool,
    /// The client takes thin packs.
    pub thin: bool,
    /// Whether a stored delta against this object, which the client has, may be sent as it is
    /// (git: against any object the client has when counting with bitmaps, else only against
    /// its "preferred bases", the client's versions of the paths sent).
    pub reuse_against: &'a dyn Fn(ObjNum) -> bool,
    /// For a thin pack: objects the client has that the window may choose as bases, with
    /// their kinds and name hashes (git's preferred bases).
    pub client_candidates: &'a [(ObjNum, gix::objs::Kind, u32)],
    /// The name hash of a sent object's path.
    pub name_hash: &'a dyn Fn(ObjNum) -> u32,
    /// A sent object's kind when the caller knows it (spares following a stored delta's chain
    /// to its base to learn it).
    pub kind_of: &'a dyn Fn(ObjNum) -> Option<gix::objs::Kind>,
    /// Objects compared with each object that needs a new delta (`pack.window`; 0: none).
    pub window: usize,
    /// Longest chain of new deltas (`pack.depth`).
    pub depth: u32,
}

/// The ordered list of entries.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sent first, before the entries.
    pub verbatim: Option<Verbatim>,
    /// Entries in output order.
    pub entries: Vec<PlanEntry>,
    /// Entries that got a new delta base from the window.
    pub new_deltas: usize,
    /// Objects the client has that new deltas are made against.
    pub client_bases: Vec<ObjNum>,
    /// The small new deltas the window made, by object number (the writer makes the others
    /// again).
    pub deltas: std::collections::HashMap<ObjNum, Vec<u8>>,
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

impl Plan {
    /// Plans the objects whose numbers are set in `sent`, numbered by `packs` (numbers past the
    /// packs' are unpacked objects).
    pub fn new(
        sent: &Bits,
        packs: &PackSet,
        objects: &dyn Objects,
        opts: &PlanOptions<'_>,
    ) -> Result<Self, PlanError> {
        // Kind and size for the delta window.
        let header = |num: ObjNum| match (opts.kind_of)(num) {
            Some(kind) => objects.size(num).map(|size| (kind, size)),
            None => objects.header(num),
        };
        let mut entries: Vec<PlanEntry> = Vec::with_capacity(sent.count());
        // Each pack's entries, as a range of `entries` (sorted by position).
        let mut ranges: Vec<(PackId, usize, usize)> = Vec::new();
        for (i, p) in packs.packs().iter().enumerate() {
            let pack = i as PackId;
            let base = packs.base(pack) as usize;
            let n = p.num_objects() as usize;
            let count = sent.count_range(base, base + n);
            if count == 0 {
                continue;
            }
            if p.entries_end() > OFFSET_MASK || i >= usize::from(UNPACKED) {
                return Err(PlanError::TooLarge(p.path().display().to_string()));
            }
            let start = entries.len();
            if count >= n / 32 {
                // Dense: one pass in pack order through the reverse index.
                for pos in 0..n as u32 {
                    if let Some(index) = p.index_at_pack_position(pos) {
                        if sent.get(base + index as usize) {
                            entries.push(PlanEntry::new(
                                i as u16,
                                pos,
                                p.index().pack_offset_at_index(index),
                            ));
                        }
                    }
                }
            } else {
                // Sparse: each object's pack position, then sorted.
                for num in sent.iter_from(base).take_while(|&x| x < base + n) {
                    let index = (num - base) as u32;
                    if let Some(pos) = p.pack_position_of_index(index) {
                        entries.push(PlanEntry::new(i as u16, pos, p.index().pack_offset_at_index(index)));
                    }
                }
                entries[start..].sort_unstable_by_key(|e| e.pos);
            }
            ranges.push((pack, start, entries.len()));
        }
        let total = packs.total() as usize;
        for num in sent.iter_from(total) {
            entries.push(PlanEntry::new(UNPACKED, num as u32, 0));
        }
        if entries.len() >= CLIENT_BASE as usize {
            return Err(PlanError::TooMany);
        }

        // Stored bases, and what needs a new one.
        let find = |pack: PackId, pos: u32, entries: &[PlanEntry]| -> Option<usize> {
            let &(_, s, e) = ranges.iter().find(|r| r.0 == pack)?;
            entries[s..e].binary_search_by_key(&pos, |x| x.pos).ok().map(|j| s + j)
        };
        let mut win: Vec<WindowObject> = Vec::new();
        // The window's view of plan entry `k`, object `num` of `pack`.
        let window_object = |k: usize, num: ObjNum, kind, size, role, pack: PackId| {
            WindowObject::new(k as u32, num, kind, (opts.name_hash)(num), size, role).in_pack(pack as u16)
        };
        // Objects that need a new delta, and trees and blobs stored whole.
        let mut targets = 0usize;
        let mut whole = 0usize;
        for &(pack, start, end) in &ranges {
            let p = packs.pack(pack);
            let base_num = packs.base(pack);
            for k in start..end {
                let off = entries[k].pack_off & OFFSET_MASK;
                let info = p.entry_unbounded(off)?;
                p.touch_passing(off, info.header_len as u64);
                let stored = match info.header {
                    Header::OfsDelta { base_distance } => {
                        let Some(base_off) = off.checked_sub(base_distance) else {
                            continue; // the writer reports it
                        };
                        if opts.verbatim.is_some_and(|v| v.pack == pack && base_off < v.end) {
                            continue;
                        }
                        match find_offset(&entries[start..k], base_off) {
                            Some(j) => Some(Ok(start + j)),
                            None => p
                                .index_at_offset(base_off)
                                .map(|bi| Err(p.index().oid_at_index(bi).to_owned())),
                        }
                    }
                    Header::RefDelta { base_id } => Some(Err(base_id)),
                    h => {
                        let kind = h.as_kind().unwrap_or(gix::objs::Kind::Blob);
                        // Commits and tags too where another pack's may serve as bases (in the
                        // first pack, the most common case, only trees and blobs can find any).
                        let searched =
                            pack != 0 || matches!(kind, gix::objs::Kind::Tree | gix::objs::Kind::Blob);
                        if searched && opts.window > 0 {
                            let num = base_num + p.index_at_pack_position(entries[k].pos).unwrap_or(0);
                            win.push(window_object(k, num, kind, info.size, Role::StoredWhole, pack));
                            whole += 1;
                        }
                        None
                    }
                };
                let base = match stored {
                    None => continue,
                    Some(Ok(j)) => Some(j),
                    Some(Err(id)) => match packs.num_of(&id).or_else(|| objects.num(&id)) {
                        Some(bnum) if sent.get(bnum as usize) => match packs.split(bnum) {
                            Some((bp, bidx)) => packs
                                .pack(bp)
                                .pack_position_of_index(bidx)
                                .and_then(|bpos| find(bp, bpos, &entries)),
                            None => entries[total_start(&ranges, &entries)..]
                                .binary_search_by_key(&bnum, |e| e.pos)
                                .ok()
                                .map(|j| j + total_start(&ranges, &entries)),
                        },
                        // In the run, or on the client: the writer keeps the stored delta.
                        Some(bnum)
                            if opts.verbatim.is_some_and(|v| in_run(packs, v, bnum))
                                || (opts.thin && (opts.reuse_against)(bnum)) =>
                        {
                            continue
                        }
                        _ => None,
                    },
                };
                match base {
                    Some(j) if j != k => entries[k].base = j as u32,
                    _ => {
                        // Cut off: it is written anew, as a delta against what the window finds.
                        if opts.window > 0 {
                            let num = base_num + p.index_at_pack_position(entries[k].pos).unwrap_or(0);
                            if let Ok((kind, size)) = header(num) {
                                win.push(window_object(k, num, kind, size, Role::Target, pack));
                                targets += 1;
                            }
                        }
                    }
                }
            }
        }
        if opts.window > 0 {
            let start = total_start(&ranges, &entries);
            for (k, e) in entries.iter().enumerate().skip(start) {
                let num = e.pos;
                if let Ok((kind, size)) = header(num) {
                    win.push(WindowObject::new(
                        k as u32,
                        num,
                        kind,
                        (opts.name_hash)(num),
                        size,
                        Role::Target,
                    ));
                    targets += 1;
                }
            }
        }
        // Objects stored whole look for a base among the client's objects (a thin pack) and,
        // as git's try_delta does, among the objects of other packs: worth a search only when
        // there is one of those.
        let mut window_packs = win.iter().map(|w| w.pack());
        let first = window_packs.next();
        if (opts.thin && !opts.client_candidates.is_empty()) || window_packs.any(|p| Some(p) != first) {
            targets += whole;
        }
        packs.release_all();
        let mut new_deltas = 0;
        let mut client_bases = Vec::new();
        let mut deltas = std::collections::HashMap::new();
        if targets > 0 {
            if opts.thin {
                // Only the client's versions of the paths written anew, or stored whole outside
                // the first pack (pushed since the last repack), can be their bases (git's
                // preferred bases are the client's entries at the sent objects' paths).
                let mut hashes: Vec<u32> = win
                    .iter()
                    .filter(|w| w.role() == Role::Target || w.pack() != 0)
                    .map(|w| w.name_hash())
                    .collect();
                hashes.sort_unstable();
                hashes.dedup();
                for (i, &(num, kind, hash)) in opts.client_candidates.iter().enumerate() {
                    if hashes.binary_search(&hash).is_err() {
                        continue;
                    }
                    if let Ok(size) = objects.size(num) {
                        win.push(WindowObject::new(i as u32, num, kind, hash, size, Role::Client));
                    }
                }
            }
            for (target, base, delta) in window::find_bases(&mut win, objects, opts.window, opts.depth) {
                if let Some(d) = delta {
                    let num = match entries[target as usize].pack() {
                        UNPACKED => entries[target as usize].pos,
                        pack => {
                            let pack = PackId::from(pack);
                            packs.base(pack)
                                + packs
                                    .pack(pack)
                                    .index_at_pack_position(entries[target as usize].pos)
                                    .unwrap_or(0)
                        }
                    };
                    deltas.insert(num, d);
                }
                entries[target as usize].base = match base {
                    Chosen::Sent(b) => b | NEW_BASE,
                    Chosen::Client(c) => {
                        client_bases.push(opts.client_candidates[c as usize].0);
                        (client_bases.len() - 1) as u32 | NEW_BASE | CLIENT_BASE
                    }
                };
                new_deltas += 1;
            }
        }
        drop(win);
        // A new delta's base may come after it in the stored order: the writer needs the base
        // written first, so the order follows the bases then too.
        if opts.delta_order || new_deltas > 0 {
            entries = delta_order(entries);
        }
        for e in &mut entries {
            e.set_out_offset(0);
        }
        Ok(Plan { verbatim: opts.verbatim, entries, new_deltas, client_bases, deltas })
    }

    /// Entries in the pack, the verbatim run included.
    pub fn len(&self) -> usize {
        self.verbatim.map_or(0, |v| v.objects as usize) + self.entries.len()
    }

    /// Whether nothing is planned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where the unpacked objects start in `entries`: after the last pack's range.
fn total_start(ranges: &[(PackId, usize, usize)], _entries: &[PlanEntry]) -> usize {
    // (`_entries`: the ranges describe them.)
    ranges.last().map_or(0, |r| r.2)
}

/// Whether object number `num` is in the verbatim run `v`.
pub fn in_run(packs: &PackSet, v: Verbatim, num: ObjNum) -> bool {
    match packs.split(num) {
        Some((pack, index)) if pack == v.pack => {
            packs.pack(pack).pack_position_of_index(index).is_some_and(|pos| pos < v.objects)
        }
        _ => false,
    }
}

/// The index among `e` (sorted by input offset, which is in the low bits while planning) of the
/// entry starting at `offset`, searching back from the end (a base is usually a few entries
/// back): gallop to a bracket, then bisect it.
fn find_offset(e: &[PlanEntry], offset: u64) -> Option<usize> {
    let at = |i: usize| e[i].pack_off & OFFSET_MASK;
    let mut hi = e.len();
    let mut step = 1;
    let lo = loop {
        if hi == 0 {
            return None;
        }
        let probe = hi.saturating_sub(step);
        let o = at(probe);
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
    let i = e[lo..hi].partition_point(|x| (x.pack_off & OFFSET_MASK) < offset) + lo;
    (i < hi && at(i) == offset).then_some(i)
}

/// Reorders `entries` so that each entry with a base comes right after it (after the entries
/// before it with the same base), the others keeping their order; base indices follow.
fn delta_order(mut entries: Vec<PlanEntry>) -> Vec<PlanEntry> {
    let n = entries.len();
    // Children lists, in plan order: built backwards so that each list comes out ascending.
    let mut first_child = vec![NO_BASE; n];
    let mut next_sibling = vec![NO_BASE; n];
    for i in (0..n).rev() {
        if let PlannedBase::Stored(b) | PlannedBase::New(b) = entries[i].base() {
            next_sibling[i] = first_child[b];
            first_child[b] = i as u32;
        }
    }
    let mut new_pos = vec![NO_BASE; n];
    let mut next = 0u32;
    let mut stack: Vec<u32> = Vec::new();
    // Roots in order; then whatever a loop of bases (not possible from a well-formed pack)
    // left unvisited.
    let roots = (0..n).filter(|&i| matches!(entries[i].base(), PlannedBase::None | PlannedBase::Client(_)));
    for root in roots.chain(0..n) {
        if new_pos[root] != NO_BASE {
            continue;
        }
        stack.push(root as u32);
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if new_pos[i] != NO_BASE {
                continue;
            }
            new_pos[i] = next;
            next += 1;
            // Children in order: the first child is popped first.
            let at = stack.len();
            let mut c = first_child[i];
            while c != NO_BASE {
                stack.push(c);
                c = next_sibling[c as usize];
            }
            stack[at..].reverse();
        }
    }
    drop((first_child, next_sibling));
    for e in &mut entries {
        match e.base() {
            PlannedBase::Stored(b) => e.base = new_pos[b],
            PlannedBase::New(b) => e.base = new_pos[b] | NEW_BASE,
            PlannedBase::None | PlannedBase::Client(_) => {}
        }
    }
    // Permute in place, following cycles: one entries vector alive.
    for i in 0..n {
        while new_pos[i] as usize != i {
            let j = new_pos[i] as usize;
            entries.swap(i, j);
            new_pos.swap(i, j);
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pos: u32, off: u64) -> PlanEntry {
        PlanEntry::new(0, pos, off)
    }

    #[test]
    fn entries_are_16_bytes_with_48_bit_offsets() {
        let mut e = PlanEntry::new(7, 9, (1 << 47) + 12345);
        assert_eq!((e.pack(), e.pos()), (7, 9));
        e.set_out_offset((1 << 40) + 99);
        assert_eq!(e.out_offset(), (1 << 40) + 99);
        assert_eq!(e.pack(), 7);
        assert_eq!(std::mem::size_of::<PlanEntry>(), 16);
        assert_eq!(e.base(), PlannedBase::None);
    }

    #[test]
    fn finds_bases_before() {
        let e: Vec<PlanEntry> = (0..100u32).map(|i| entry(i * 2, 12 + u64::from(i) * 10)).collect();
        for before in [1usize, 2, 5, 50, 100] {
            for target in 0..before {
                let off = 12 + target as u64 * 10;
                assert_eq!(find_offset(&e[..before], off), Some(target), "before {before} target {target}");
            }
            assert_eq!(find_offset(&e[..before], 13), None);
            assert_eq!(find_offset(&e[..before], 12 + before as u64 * 10), None);
        }
        assert_eq!(find_offset(&e[..0], 12), None);
    }

    #[test]
    fn deltas_follow_their_bases() {
        // 0 <- 2 <- 3, 1 <- 4 (new), 5 alone
        let mut e: Vec<PlanEntry> = (0..6u32).map(|i| entry(i, 0)).collect();
        e[2].base = 0;
        e[3].base = 2;
        e[4].base = 1 | NEW_BASE;
        let out = delta_order(e);
        let order: Vec<u32> = out.iter().map(|x| x.pos).collect();
        assert_eq!(order, vec![0, 2, 3, 1, 4, 5]);
        assert_eq!(out[1].base(), PlannedBase::Stored(0));
        assert_eq!(out[2].base(), PlannedBase::Stored(1));
        assert_eq!(out[4].base(), PlannedBase::New(3));
    }
}
