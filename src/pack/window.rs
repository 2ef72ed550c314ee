//! git's delta window, for the objects that must be written anew: stored deltas whose base is
//! not sent (a shallow boundary or a filter cut it off, or it is in no pack) and objects in no
//! pack. Every candidate — those objects and the trees and blobs sent as they are stored —
//! is sorted by type, path name hash and size (largest first), as git's `type_size_sort`
//! does, and each object to write anew is compared with the `window` objects before it; the
//! smallest delta wins, within `depth` new deltas in a chain.
//!
//! Objects stored whole are never targets (their pack's writer already searched them, as git
//! assumes for objects it reuses); they only serve as bases. Only the choice of base is kept:
//! the writer makes the delta again when it writes the object, so no delta is held in memory.

use gix::objs::Kind;

use super::delta::DeltaIndex;
use super::search::{MAX_SIZE, MIN_SIZE};
use super::source::ObjNum;
use super::Objects;

/// One object of the window's list.
#[derive(Debug, Clone, Copy)]
pub struct WindowObject {
    /// Plan index.
    entry: u32,
    num: ObjNum,
    /// Kind as git's type numbers (blob 3 sorts before tree 2, as git sorts).
    kind: u8,
    /// Needs a new delta (else it is only a base).
    target: bool,
    name_hash: u32,
    size: u64,
}

impl WindowObject {
    /// An object of plan entry `entry`.
    pub fn new(entry: u32, num: ObjNum, kind: Kind, name_hash: u32, size: u64, target: bool) -> Self {
        let kind = match kind {
            Kind::Commit => 1,
            Kind::Tree => 2,
            Kind::Blob => 3,
            Kind::Tag => 4,
        };
        WindowObject { entry, num, kind, target, name_hash, size }
    }
}

/// Chooses new delta bases: returns (target plan index, base plan index) pairs. A target is
/// written after its base (the plan orders them); a base may itself be a target, never one
/// that comes after it in the sorted list, so no cycle can form.
pub fn find_bases(
    list: &mut [WindowObject],
    objects: &dyn Objects,
    window: usize,
    max_depth: u32,
) -> Vec<(u32, u32)> {
    // git: type, then name hash, then size, all descending.
    list.sort_by(|a, b| {
        b.kind
            .cmp(&a.kind)
            .then(b.name_hash.cmp(&a.name_hash))
            .then(b.size.cmp(&a.size))
            .then(a.entry.cmp(&b.entry))
    });
    let hash_len = objects.hash_kind().len_in_bytes();
    let mut chosen = Vec::new();
    // Depth of new deltas of each list position that got one.
    let mut depth_of: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    // Loaded objects of the last `window` positions, each indexed once as a base:
    // (position, index over its data).
    let mut loaded: std::collections::VecDeque<(usize, DeltaIndex<Vec<u8>>)> =
        std::collections::VecDeque::new();
    let mut target_buf = Vec::new();
    for i in 0..list.len() {
        let t = list[i];
        // Forget what slid out of the window.
        while loaded.front().is_some_and(|l| l.0 + window < i) {
            loaded.pop_front();
        }
        if !t.target || !(MIN_SIZE as u64..=MAX_SIZE as u64).contains(&t.size) {
            continue;
        }
        let first = i.saturating_sub(window);
        if !(first..i).any(|j| list[j].kind == t.kind) {
            continue;
        }
        if objects.read(t.num, &mut target_buf).is_err() {
            continue;
        }
        let target = &target_buf;
        let mut best: Option<(usize, u32)> = None; // (position, depth)
        let mut max_size = (target.len() / 2).saturating_sub(hash_len);
        // Nearest first, as git tries them.
        for j in (first..i).rev() {
            let c = list[j];
            if c.kind != t.kind {
                break;
            }
            if c.size < t.size / 32 || c.size > MAX_SIZE as u64 {
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
                best = Some((j, base_depth + 1));
            }
        }
        if let Some((j, depth)) = best {
            chosen.push((t.entry, list[j].entry));
            depth_of.insert(i, depth);
        }
    }
    chosen
}
