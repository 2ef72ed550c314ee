//! The order of the pack and where each entry comes from. Like git's write order, each delta
//! follows its base as closely as possible (a depth-first walk from every base to the deltas
//! stored against it), so ofs-delta distances stay short and every base precedes its deltas;
//! bases themselves keep their stored order, loose objects come last.

use gix::hash::ObjectId;
use gix::objs::Kind;
use gix::odb::pack::data::entry::Header;

use super::source::{Location, PackSet};

/// One object of the pack to write.
#[derive(Debug, Clone, Copy)]
pub struct PlanEntry {
    /// Its id.
    pub id: ObjectId,
    /// Its type.
    pub kind: Kind,
    /// Where it is stored in a pack, `None` for loose objects.
    pub loc: Option<Location>,
    /// Name hash of its path (for delta search), 0 if unknown.
    pub name_hash: u32,
}

/// A run of a pack sent as one byte range from its first entry: the output's first `objects`
/// entries are that pack's first `objects` entries, at the same offsets (both headers are 12
/// bytes), so ofs-deltas inside the run keep their distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verbatim {
    /// The pack.
    pub pack: super::source::PackId,
    /// Entries in the run (pack positions `0..objects`).
    pub objects: u32,
    /// Offset where the run ends (the entry after it, or the trailer).
    pub end: u64,
}

/// The ordered list of entries.
pub struct Plan {
    /// Sent first, before `entries`.
    pub verbatim: Option<Verbatim>,
    /// Entries in output order.
    pub entries: Vec<PlanEntry>,
    /// Positions in `entries` of the packed entries, sorted by (pack, offset).
    by_location: Vec<u32>,
    /// The loose entries' ids, sorted.
    loose: Vec<ObjectId>,
}

impl Plan {
    /// Locates each object and orders them.
    pub fn new(objects: impl IntoIterator<Item = (ObjectId, Kind, u32)>, packs: &PackSet) -> Self {
        let mut stored: Vec<PlanEntry> = objects
            .into_iter()
            .map(|(id, kind, name_hash)| PlanEntry { id, kind, loc: packs.locate(&id), name_hash })
            .collect();
        stored.sort_by_key(|e| match e.loc {
            Some(l) => (0u8, l.pack, l.offset),
            None => (1, 0, 0),
        });
        let n = stored.len();
        let find = |pack: u32, offset: u64| -> Option<usize> {
            stored
                .binary_search_by(|e| match e.loc {
                    Some(l) => (l.pack, l.offset).cmp(&(pack, offset)),
                    None => std::cmp::Ordering::Greater,
                })
                .ok()
        };
        // The planned base of each stored delta (index into `stored`), as a linked list of children.
        const NONE: u32 = u32::MAX;
        let mut first_child = vec![NONE; n];
        let mut next_sibling = vec![NONE; n];
        let mut has_base = vec![false; n];
        let mut last_child = vec![NONE; n];
        for (i, e) in stored.iter().enumerate() {
            let Some(loc) = e.loc else { continue };
            let p = packs.pack(loc.pack);
            let Ok(info) = p.entry_at_index(loc.index, loc.offset) else {
                continue;
            };
            p.touch(loc.offset, info.header_len as u64);
            let base = match info.header {
                Header::OfsDelta { base_distance } => {
                    loc.offset.checked_sub(base_distance).and_then(|off| find(loc.pack, off))
                }
                Header::RefDelta { base_id } => packs.locate(&base_id).and_then(|l| find(l.pack, l.offset)),
                _ => None,
            };
            if let Some(b) = base.filter(|&b| b != i) {
                has_base[i] = true;
                if last_child[b] == NONE {
                    first_child[b] = i as u32;
                } else {
                    next_sibling[last_child[b] as usize] = i as u32;
                }
                last_child[b] = i as u32;
            }
        }
        packs.release_all();
        drop(last_child);
        let mut order: Vec<u32> = Vec::with_capacity(n);
        let mut visited = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        let roots = (0..n).filter(|&i| !has_base[i]);
        // Anything not reached from a root (a cycle through duplicated objects) goes last.
        for root in roots.chain(0..n) {
            if visited[root] {
                continue;
            }
            stack.push(root as u32);
            while let Some(i) = stack.pop() {
                let i = i as usize;
                if visited[i] {
                    continue;
                }
                visited[i] = true;
                order.push(i as u32);
                // Children in stored order: push in reverse.
                let mut kids = Vec::new();
                let mut c = first_child[i];
                while c != NONE {
                    kids.push(c);
                    c = next_sibling[c as usize];
                }
                stack.extend(kids.into_iter().rev());
            }
        }
        let mut new_pos = vec![0u32; n];
        for (pos, &i) in order.iter().enumerate() {
            new_pos[i as usize] = pos as u32;
        }
        let by_location: Vec<u32> =
            stored.iter().enumerate().filter(|(_, e)| e.loc.is_some()).map(|(i, _)| new_pos[i]).collect();
        drop((order, visited, first_child, next_sibling, has_base));
        // Permute in place (following cycles) rather than copying: one entries vector alive.
        let mut entries = stored;
        for i in 0..n {
            while new_pos[i] as usize != i {
                let j = new_pos[i] as usize;
                entries.swap(i, j);
                new_pos.swap(i, j);
            }
        }
        let mut loose: Vec<ObjectId> = entries.iter().filter(|e| e.loc.is_none()).map(|e| e.id).collect();
        loose.sort_unstable();
        Plan { verbatim: None, entries, by_location, loose }
    }

    /// Whether `id` is in the pack being written (the verbatim run included).
    pub fn contains(&self, id: &gix::hash::oid, packs: &PackSet) -> bool {
        match packs.locate(id) {
            Some(l) => {
                self.verbatim.is_some_and(|v| v.pack == l.pack && l.offset < v.end)
                    || self.position_of(l.pack, l.offset).is_some()
            }
            None => self.loose.binary_search_by(|x| x.as_ref().cmp(id)).is_ok(),
        }
    }

    /// The position in the plan of the packed entry at (`pack`, `offset`), if it is planned.
    pub fn position_of(&self, pack: u32, offset: u64) -> Option<usize> {
        self.by_location
            .binary_search_by(|&p| match self.entries[p as usize].loc {
                Some(l) => (l.pack, l.offset).cmp(&(pack, offset)),
                None => std::cmp::Ordering::Greater,
            })
            .ok()
            .map(|i| self.by_location[i] as usize)
    }
}
