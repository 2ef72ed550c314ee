//! The order of the pack and where each entry comes from: packed objects in their stored order
//! (so that a delta's base, when it is sent, is written before the delta), loose ones last.

use gix::hash::ObjectId;
use gix::objs::Kind;

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
}

/// The ordered list of entries.
pub struct Plan {
    /// Entries in output order.
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// Locates each object and orders them.
    pub fn new(objects: impl IntoIterator<Item = (ObjectId, Kind)>, packs: &PackSet) -> Self {
        let mut entries: Vec<PlanEntry> =
            objects.into_iter().map(|(id, kind)| PlanEntry { id, kind, loc: packs.locate(&id) }).collect();
        entries.sort_by_key(|e| match e.loc {
            Some(l) => (0u8, l.pack, l.offset),
            None => (1, 0, 0),
        });
        Plan { entries }
    }

    /// The position in the plan of the packed entry at (`pack`, `offset`), if it is planned.
    pub fn position_of(&self, pack: u32, offset: u64) -> Option<usize> {
        self.entries
            .binary_search_by(|e| match e.loc {
                Some(l) => (l.pack, l.offset).cmp(&(pack, offset)),
                None => std::cmp::Ordering::Greater,
            })
            .ok()
    }
}
