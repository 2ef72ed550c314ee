//! Delta search where a stored delta can't be reused: for an object about to be written whole,
//! try a few bases of the same type and path name (git's name hash) — objects the client has
//! (thin packs) and objects already written whole in this pack — and keep the smallest delta.
//!
//! Bounded: at most [`WINDOW`] tries per object, only objects between [`MIN_SIZE`] and
//! [`MAX_SIZE`] bytes, and only bases that are not deltas in this pack, so no delta cycle can form.

use gix::objs::Kind;

use super::common::ThinBases;
use super::delta::DeltaIndex;
use super::source::ObjNum;
use super::Objects;

/// Tries per object.
pub const WINDOW: usize = 10;
/// Smaller objects are not worth a delta.
pub const MIN_SIZE: usize = 64;
/// Larger objects are sent as they are (bounded memory and time).
pub const MAX_SIZE: usize = 32 << 20;

/// Where the chosen base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaBase {
    /// Written earlier in this pack at this output offset.
    Written(u64, ObjNum),
    /// On the client (thin pack).
    Thin(ObjNum),
}

/// The search state of one pack.
pub struct DeltaSearch<'a> {
    objects: &'a dyn Objects,
    thin: Option<&'a ThinBases>,
    written: std::collections::HashMap<u32, Vec<(u64, ObjNum, Kind)>>,
    base_buf: Vec<u8>,
}

impl<'a> DeltaSearch<'a> {
    /// `thin` are the client's objects by name hash, when the client accepts a thin pack.
    pub fn new(objects: &'a dyn Objects, thin: Option<&'a ThinBases>) -> Self {
        DeltaSearch { objects, thin, written: std::collections::HashMap::new(), base_buf: Vec::new() }
    }

    /// Records an object written whole (not as a delta) at output offset `out`.
    pub fn note_whole(&mut self, out: u64, num: ObjNum, kind: Kind, name_hash: u32) {
        if kind != Kind::Blob && kind != Kind::Tree {
            return;
        }
        let v = self.written.entry(name_hash).or_default();
        if v.len() >= WINDOW {
            v.remove(0);
        }
        v.push((out, num, kind));
    }

    /// Whether a stored whole object is worth inflating to look for a delta: only when the client
    /// has an object of the same type at the same path (a fetch of a changed file).
    pub fn worth_trying(&self, kind: Kind, name_hash: u32, size: u64) -> bool {
        (MIN_SIZE as u64..=MAX_SIZE as u64).contains(&size)
            && self.thin.and_then(|t| t.get(&name_hash)).is_some_and(|v| v.iter().any(|c| c.1 == kind))
    }

    /// The best delta for `target` (object `num` of `kind`, at a path with `name_hash`), if one
    /// pays.
    pub fn find(
        &mut self,
        num: ObjNum,
        kind: Kind,
        name_hash: u32,
        target: &[u8],
    ) -> Option<(DeltaBase, Vec<u8>)> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&target.len()) || (kind != Kind::Blob && kind != Kind::Tree) {
            return None;
        }
        let mut candidates: Vec<DeltaBase> = Vec::with_capacity(WINDOW);
        if let Some(v) = self.written.get(&name_hash) {
            candidates.extend(v.iter().rev().filter(|c| c.2 == kind).map(|c| DeltaBase::Written(c.0, c.1)));
        }
        if let Some(v) = self.thin.and_then(|t| t.get(&name_hash)) {
            candidates.extend(v.iter().filter(|c| c.1 == kind).map(|c| DeltaBase::Thin(c.0)));
        }
        candidates.truncate(WINDOW);
        let hash_len = self.objects.hash_kind().len_in_bytes();
        let mut max_size = (target.len() / 2).saturating_sub(hash_len);
        let mut best: Option<(DeltaBase, Vec<u8>)> = None;
        for cand in candidates {
            let base_num = match cand {
                DeltaBase::Written(_, b) | DeltaBase::Thin(b) => b,
            };
            if base_num == num || max_size == 0 {
                continue;
            }
            if self.objects.read(base_num, &mut self.base_buf).ok() != Some(kind) {
                continue;
            }
            let base = &self.base_buf;
            if base.len() > MAX_SIZE || base.len() < target.len() / 32 {
                continue;
            }
            let size_diff = target.len().saturating_sub(base.len());
            if size_diff >= max_size {
                continue;
            }
            if let Some(delta) = DeltaIndex::new(base).encode(target, max_size) {
                max_size = delta.len().saturating_sub(1);
                best = Some((cand, delta));
            }
        }
        best
    }
}
