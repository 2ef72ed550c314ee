//! git's delta window, for the objects that must be written anew: stored deltas whose base is
//! not sent (a shallow boundary or a filter cut it off, or the client's copy is not one it is
//! known to have at hand) and objects in no pack. Every candidate — those objects, the trees
//! and blobs sent as they are stored, and for a thin pack the client's versions of the sent
//! paths (git's "preferred bases") — is sorted by type, path name hash and size (largest first),
//! as git's `type_size_sort` does, and each object to write anew is compared with the `window`
//! objects before it; the smallest delta wins, within `depth` new deltas in a chain.
//!
//! An object stored whole is not compared with the other objects of its own pack (that pack's
//! writer already did, as git's `try_delta` assumes), only with those of other packs, objects
//! in no pack and the client's: in a repository of one pack nothing new is tried for it, while
//! the small packs that pushes leave between repacks get searched against each other as git
//! does. The client's objects only serve as bases. Only the choice of base is kept: the writer makes the delta
//! again when it writes the object, so no delta is held in memory.

use gix::objs::Kind;

use super::delta::DeltaIndex;
use super::search::{MAX_SIZE, MIN_SIZE};
use super::source::ObjNum;
use super::Objects;

/// What an object of the window's list is there for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A sent object that needs a new delta (or is written whole).
    Target,
    /// A sent object stored whole: tried against objects of other packs and the client's.
    StoredWhole,
    /// An object the client has (a thin pack's base).
    Client,
}

/// One object of the window's list.
#[derive(Debug, Clone, Copy)]
pub struct WindowObject {
    /// Plan index (for [`Role::Client`], an index the caller gave).
    pub entry: u32,
    num: ObjNum,
    /// Kind as git's type numbers (blob 3 sorts before tree 2, as git sorts).
    kind: u8,
    role: Role,
    /// Its pack (`u16::MAX` for an object in no pack).
    pack: u16,
    name_hash: u32,
    size: u64,
}

impl WindowObject {
    /// The name hash of its path.
    pub fn name_hash(&self) -> u32 {
        self.name_hash
    }

    /// What it is in the window.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Its pack.
    pub fn pack(&self) -> u16 {
        self.pack
    }

    /// The same, in pack `pack` (`u16::MAX`: in no pack, the default).
    pub fn in_pack(self, pack: u16) -> Self {
        WindowObject { pack, ..self }
    }

    /// An object of plan entry `entry` (or, for [`Role::Client`], of the caller's list).
    pub fn new(entry: u32, num: ObjNum, kind: Kind, name_hash: u32, size: u64, role: Role) -> Self {
        let kind = match kind {
            Kind::Commit => 1,
            Kind::Tree => 2,
            Kind::Blob => 3,
            Kind::Tag => 4,
        };
        WindowObject { entry, num, kind, role, pack: u16::MAX, name_hash, size }
    }

    /// Whether it looks for a base.
    fn searches(&self) -> bool {
        matches!(self.role, Role::Target | Role::StoredWhole)
    }
}

/// Deltas the window keeps for the writer (those of at most this size; git keeps those under
/// 1000 bytes by default), up to [`DELTA_CACHE_BYTES`] in all. Bigger ones are made again.
const DELTA_CACHE_MAX: usize = 4096;
const DELTA_CACHE_BYTES: usize = 64 << 20;

/// A chosen base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// A sent object, by plan index.
    Sent(u32),
    /// An object the client has, by the caller's index.
    Client(u32),
}

/// Chooses new delta bases: returns (target plan index, base, the delta if it was small
/// enough to keep) triples. A target is written after
/// its base (the plan orders them); a base may itself be a target, never one that comes after
/// it in the sorted list, so no cycle can form.
pub fn find_bases(
    list: &mut [WindowObject],
    objects: &dyn Objects,
    window: usize,
    max_depth: u32,
) -> Vec<(u32, Chosen, Option<Vec<u8>>)> {
    // git: type, then name hash, all descending; the client's objects first; then size,
    // largest first.
    list.sort_by(|a, b| {
        b.kind
            .cmp(&a.kind)
            .then(b.name_hash.cmp(&a.name_hash))
            .then((b.role == Role::Client).cmp(&(a.role == Role::Client)))
            .then(b.size.cmp(&a.size))
            .then(a.entry.cmp(&b.entry))
    });
    let hash_len = objects.hash_kind().len_in_bytes();
    let mut chosen = Vec::new();
    // Depth of new deltas of each list position that got one.
    let mut depth_of: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    // Loaded objects of the last `window` positions, each indexed once as a base.
    let mut loaded: std::collections::VecDeque<(usize, DeltaIndex<Vec<u8>>)> =
        std::collections::VecDeque::new();
    let mut target_buf = Vec::new();
    let mut kept = 0usize;
    for i in 0..list.len() {
        let t = list[i];
        // Forget what slid out of the window.
        while loaded.front().is_some_and(|l| l.0 + window < i) {
            loaded.pop_front();
        }
        if !t.searches() || !(MIN_SIZE as u64..=MAX_SIZE as u64).contains(&t.size) {
            continue;
        }
        let first = i.saturating_sub(window);
        let first_max = (t.size / 2).saturating_sub(hash_len as u64);
        let usable = |c: &WindowObject| {
            c.kind == t.kind
                && (t.role == Role::Target || c.role == Role::Client || c.pack != t.pack)
                && c.size >= t.size / 32
                && c.size <= MAX_SIZE as u64
                && t.size.saturating_sub(c.size) < first_max
        };
        // Nothing in the window could make a delta that pays: the target is not even read.
        if !(first..i).any(|j| usable(&list[j])) {
            continue;
        }
        if objects.read(t.num, &mut target_buf).is_err() {
            continue;
        }
        let target = &target_buf;
        let mut best: Option<(usize, u32, Vec<u8>)> = None; // (position, depth, delta)
        let mut max_size = (target.len() / 2).saturating_sub(hash_len);
        // Nearest first, as git tries them.
        for j in (first..i).rev() {
            let c = list[j];
            if c.kind != t.kind {
                break;
            }
            if !usable(&c) {
                continue;
            }
            let base_depth = depth_of.get(&j).copied().unwrap_or(0);
            if base_depth >= max_depth {
                continue;
            }
            let size_diff = t.size.saturating_sub(c.size) as usize;
            if size_diff >= max_size {
                continue;
            }
            // Load the candidate (kept while it is in the window).
            let slot = match loaded.iter().position(|l| l.0 == j) {
                Some(s) => s,
                None => {
                    let mut data = Vec::new();
                    if objects.read(c.num, &mut data).is_err() {
                        continue;
                    }
                    // Keep the deque in list order.
                    let at = loaded.partition_point(|l| l.0 < j);
                    loaded.insert(at, (j, DeltaIndex::new(data)));
                    at
                }
            };
            if let Some(delta) = loaded[slot].1.encode(target, max_size) {
                max_size = delta.len().saturating_sub(1);
                best = Some((j, base_depth + 1, delta));
            }
        }
        if let Some((j, depth, mut delta)) = best {
            let base = list[j];
            let base =
                if base.role == Role::Client { Chosen::Client(base.entry) } else { Chosen::Sent(base.entry) };
            let keep = delta.len() <= DELTA_CACHE_MAX && kept + delta.len() <= DELTA_CACHE_BYTES;
            kept += if keep { delta.len() } else { 0 };
            if keep {
                // The encoder reserved room for a delta half the target's size.
                delta.shrink_to_fit();
            }
            chosen.push((t.entry, base, keep.then_some(delta)));
            depth_of.insert(i, depth);
        }
    }
    chosen
}
