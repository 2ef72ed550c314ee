//! Reachability bitmaps (`pack-*.bitmap` of one pack, `multi-pack-index-*.bitmap` of the
//! multi-pack-index) and counting with them: the objects to send are the wants' reachability
//! OR-ed together, minus the haves' (the common commits'), as bit operations.
//!
//! Wants and haves without a stored bitmap are filled in by walking (commits until ones with a
//! bitmap, then their trees), as git's `find_objects` does; objects outside the bitmapped
//! pack(s) get "extended" positions after the last bitmapped one. The result is the same
//! [`Selection`] the walk produces, plus the longest run of the bitmapped pack that is sent
//! whole from its start (for verbatim reuse).
//!
//! Bitmaps must not be used for shallow requests, for filters that depend on paths or tree
//! depth, nor when hidden refs could make the answer differ: the session asks [`eligible`]
//! first. Filters that decide by type and size (`blob:none`, `blob:limit`, `tree:0`,
//! `object:type`) are applied to the counted bitmap, as git does.
//!
//! Knows the file formats and the pack layer's positions; nothing of the protocol.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use gix::hash::{oid, ObjectId};
use gix::objs::Kind;
use memmap2::Mmap;

use super::ewah::{self, Bits, EwahError};
use super::filter::Filter;
use super::walk::{
    child_hash, name_hash, set_name_hash, ClientHas, Request, Selection, ThinBases, THIN_CANDIDATES,
};
use crate::odb::{EntryKind, Odb, OdbError};
use crate::pack::midx::{Midx, MidxError};
use crate::pack::plan::Verbatim;
use crate::pack::source::{PackId, PackSet};
use crate::pack::ObjNum;

/// What the session knows about a request that rules bitmaps out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions {
    /// `shallow`/`deepen*` lines: the history is cut, bitmaps would count past the cut.
    pub shallow: bool,
    /// A `filter` spec that depends on paths or tree depth (see
    /// [`Filter::decides_by_type`](super::filter::Filter::decides_by_type)): it needs the walk.
    pub filter: bool,
    /// Hidden refs (`uploadpack.hideRefs`, namespaces) are configured.
    pub hidden_refs: bool,
    /// `pack.useBitmaps` is false.
    pub disabled: bool,
}

/// Whether a request may be counted with bitmaps.
pub fn eligible(c: Conditions) -> bool {
    !(c.shallow || c.filter || c.hidden_refs || c.disabled)
}

/// Errors reading or using a bitmap. The caller falls back to the walk on any of them.
#[derive(Debug, thiserror::Error)]
pub enum BitmapError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("bitmap {path} is malformed: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error(transparent)]
    Midx(#[from] MidxError),
    #[error(transparent)]
    Odb(#[from] OdbError),
}

const BITMAP_OPT_FULL_DAG: u16 = 0x1;
const BITMAP_OPT_HASH_CACHE: u16 = 0x4;
const BITMAP_OPT_LOOKUP_TABLE: u16 = 0x10;

/// Decoded commit bitmaps kept per request (XOR chains share their bases); each is one bit
/// per object, so this bounds the cache at 8 bytes per object.
const CACHE_ENTRIES: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// `.idx` (or midx) position of the commit.
    commit_pos: u32,
    /// Offset of its EWAH in the file.
    offset: usize,
    /// The entry it is XOR-ed with.
    xor_row: Option<u32>,
}

enum Backing {
    Pack(PackId),
    Midx { midx: Midx, packs: Vec<PackId> },
}

/// An opened reachability bitmap over a pack or the multi-pack-index.
pub struct BitmapIndex<'a> {
    packs: &'a PackSet,
    data: Mmap,
    path: PathBuf,
    backing: Backing,
    num_objects: u32,
    /// Commits, trees, blobs, tags.
    types: [Bits; 4],
    entries: Vec<Entry>,
    by_commit: std::collections::HashMap<u32, u32>,
    hashes: Option<usize>,
    cache: RefCell<std::collections::HashMap<u32, std::rc::Rc<Bits>>>,
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> BitmapIndex<'a> {
    /// Opens the repository's bitmap: the multi-pack-index's if there is one, else the first
    /// pack in `pack_dir` that has one. `None` when there is no usable bitmap.
    pub fn open(packs: &'a PackSet, pack_dir: &Path) -> Result<Option<Self>, BitmapError> {
        let hash = packs.hash_kind();
        if let Some(midx) = Midx::open(pack_dir, hash)? {
            let hex: String = midx.checksum().iter().map(|b| format!("{b:02x}")).collect();
            let path = pack_dir.join(format!("multi-pack-index-{hex}.bitmap"));
            if path.exists() && midx.has_pseudo_pack_order() {
                let ids: Option<Vec<PackId>> = midx
                    .pack_names
                    .iter()
                    .map(|n| packs.by_stem(n.strip_suffix(".idx").unwrap_or(n)))
                    .collect();
                if let Some(ids) = ids {
                    let checksum = midx.checksum().to_vec();
                    let n = midx.num_objects();
                    return Self::load(packs, path, Backing::Midx { midx, packs: ids }, n, &checksum)
                        .map(Some);
                }
            }
        }
        for (i, p) in packs.packs().iter().enumerate() {
            if p.path().parent() != Some(pack_dir) {
                continue;
            }
            let path = p.path().with_extension("bitmap");
            if path.exists() {
                let checksum = p.checksum().to_vec();
                return Self::load(packs, path, Backing::Pack(i as PackId), p.num_objects(), &checksum)
                    .map(Some);
            }
        }
        Ok(None)
    }

    fn load(
        packs: &'a PackSet,
        path: PathBuf,
        backing: Backing,
        num_objects: u32,
        checksum: &[u8],
    ) -> Result<Self, BitmapError> {
        let file =
            std::fs::File::open(&path).map_err(|source| BitmapError::Io { path: path.clone(), source })?;
        // SAFETY: bitmaps are written once and renamed into place.
        let data =
            unsafe { Mmap::map(&file) }.map_err(|source| BitmapError::Io { path: path.clone(), source })?;
        let bad = |what: &str| BitmapError::Malformed { path: path.clone(), what: what.to_owned() };
        let hash_len = packs.hash_kind().len_in_bytes();
        let header = 12 + hash_len;
        if data.len() < header + hash_len || &data[..4] != b"BITM" || data[4..6] != [0, 1] {
            return Err(bad("bad header"));
        }
        let flags = u16::from_be_bytes([data[6], data[7]]);
        if flags & BITMAP_OPT_FULL_DAG == 0 {
            return Err(bad("not a full-closure bitmap"));
        }
        let count = be32(&data, 8).ok_or_else(|| bad("header"))? as usize;
        if &data[12..12 + hash_len] != checksum {
            return Err(bad("belongs to another pack or multi-pack-index"));
        }
        let n = num_objects as usize;
        let mut end = data.len() - hash_len;
        let mut hashes = None;
        if flags & BITMAP_OPT_HASH_CACHE != 0 {
            end = end.checked_sub(n * 4).ok_or_else(|| bad("name-hash cache"))?;
            hashes = Some(end);
        }
        let mut table = None;
        if flags & BITMAP_OPT_LOOKUP_TABLE != 0 {
            end = end.checked_sub(count * 16).ok_or_else(|| bad("lookup table"))?;
            table = Some(end);
        }
        let mut at = header;
        let mut types: [Bits; 4] = Default::default();
        for t in &mut types {
            let d = data.get(at..end).ok_or_else(|| bad("type bitmaps"))?;
            let len = ewah::serialized_len(d).map_err(|e: EwahError| bad(&e.to_string()))?;
            *t = ewah::decode(d).map_err(|e| bad(&e.to_string()))?;
            at += len;
        }
        let mut entries = Vec::with_capacity(count);
        if let Some(t) = table {
            for i in 0..count {
                let row = t + i * 16;
                let commit_pos = be32(&data, row).ok_or_else(|| bad("lookup table"))?;
                let offset =
                    u64::from_be_bytes(data[row + 4..row + 12].try_into().map_err(|_| bad("lookup table"))?);
                let xor = be32(&data, row + 12).ok_or_else(|| bad("lookup table"))?;
                let offset = usize::try_from(offset).map_err(|_| bad("lookup table offset"))?;
                if offset < at || offset + 6 > end || (xor != u32::MAX && xor as usize >= count) {
                    return Err(bad("lookup table entry out of range"));
                }
                // The row points at the entry header (position, xor offset, flags).
                entries.push(Entry {
                    commit_pos,
                    offset: offset + 6,
                    xor_row: (xor != u32::MAX).then_some(xor),
                });
            }
        } else {
            for i in 0..count {
                let commit_pos = be32(&data, at).ok_or_else(|| bad("truncated entry"))?;
                let xor = *data.get(at + 4).ok_or_else(|| bad("truncated entry"))? as usize;
                if xor > i || xor > 160 {
                    return Err(bad("XOR offset out of range"));
                }
                let d = data.get(at + 6..end).ok_or_else(|| bad("truncated entry"))?;
                let len = ewah::serialized_len(d).map_err(|e| bad(&e.to_string()))?;
                entries.push(Entry {
                    commit_pos,
                    offset: at + 6,
                    xor_row: (xor != 0).then(|| (i - xor) as u32),
                });
                at += 6 + len;
            }
        }
        let mut by_commit = std::collections::HashMap::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if e.commit_pos >= num_objects {
                return Err(bad("entry for an object outside the index"));
            }
            by_commit.insert(e.commit_pos, i as u32);
        }
        Ok(BitmapIndex {
            packs,
            data,
            path,
            backing,
            num_objects,
            types,
            entries,
            by_commit,
            hashes,
            cache: RefCell::new(std::collections::HashMap::new()),
        })
    }

    fn bad(&self, what: &str) -> BitmapError {
        BitmapError::Malformed { path: self.path.clone(), what: what.to_owned() }
    }

    /// Objects covered by the bitmap.
    pub fn num_objects(&self) -> u32 {
        self.num_objects
    }

    /// Commits with a stored bitmap.
    pub fn num_entries(&self) -> usize {
        self.entries.len()
    }

    /// The `.idx`/midx position of bit `pos`.
    fn index_pos(&self, pos: u32) -> Option<u32> {
        match &self.backing {
            Backing::Pack(p) => self.packs.pack(*p).index_at_pack_position(pos),
            Backing::Midx { midx, .. } => midx.pseudo_to_midx(pos),
        }
    }

    /// The bit position of `id`, if the bitmap covers it.
    pub fn position(&self, id: &oid) -> Option<u32> {
        match &self.backing {
            Backing::Pack(p) => {
                let pack = self.packs.pack(*p);
                pack.pack_position_of_index(pack.index().lookup(id)?)
            }
            Backing::Midx { midx, .. } => midx.midx_to_pseudo(midx.lookup(id)?),
        }
    }

    /// The id of the object at bit `pos`.
    pub fn oid_at(&self, pos: u32) -> Option<ObjectId> {
        let i = self.index_pos(pos)?;
        match &self.backing {
            Backing::Pack(p) => Some(self.packs.pack(*p).index().oid_at_index(i).to_owned()),
            Backing::Midx { midx, .. } => midx.oid_at(i).map(ToOwned::to_owned),
        }
    }

    /// The object number of the object at bit `pos`: for a pack's bitmap its `.idx` position
    /// (the reverse index read in order), for the multi-pack-index's through its id (the number
    /// of the copy the packs number, which may be another pack's than the one the midx chose).
    pub fn num_at(&self, pos: u32) -> Option<ObjNum> {
        match &self.backing {
            Backing::Pack(p) => {
                let base = self.packs.base(*p);
                self.packs.pack(*p).index_at_pack_position(pos).map(|i| base + i)
            }
            Backing::Midx { midx, .. } => self.packs.num_of(midx.oid_at(midx.pseudo_to_midx(pos)?)?),
        }
    }

    /// The bit position of object number `num`, if the bitmap covers it.
    pub fn position_of_num(&self, num: ObjNum) -> Option<u32> {
        match &self.backing {
            Backing::Pack(p) => {
                let (pack, index) = self.packs.split(num)?;
                (pack == *p).then(|| self.packs.pack(pack).pack_position_of_index(index)).flatten()
            }
            Backing::Midx { midx, .. } => midx.midx_to_pseudo(midx.lookup(self.packs.oid_of(num)?)?),
        }
    }

    /// The type of the object at bit `pos`.
    pub fn kind_at(&self, pos: u32) -> Option<Kind> {
        let p = pos as usize;
        [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag]
            .into_iter()
            .zip(&self.types)
            .find(|(_, b)| b.get(p))
            .map(|(k, _)| k)
    }

    /// The name hash of the object at bit `pos` (0 without a name-hash cache).
    pub fn name_hash_at(&self, pos: u32) -> u32 {
        match (self.hashes, self.index_pos(pos)) {
            (Some(h), Some(i)) => be32(&self.data, h + i as usize * 4).unwrap_or(0),
            _ => 0,
        }
    }

    /// The reachability bitmap stored for the commit at bit `pos`.
    pub fn commit_bitmap(&self, pos: u32) -> Result<Option<std::rc::Rc<Bits>>, BitmapError> {
        let Some(ipos) = self.index_pos(pos) else { return Ok(None) };
        let Some(&row) = self.by_commit.get(&ipos) else { return Ok(None) };
        self.entry_bitmap(row).map(Some)
    }

    fn entry_bitmap(&self, row: u32) -> Result<std::rc::Rc<Bits>, BitmapError> {
        if let Some(b) = self.cache.borrow().get(&row) {
            return Ok(b.clone());
        }
        // The XOR chain down to a plain bitmap (or a cached one), then back up.
        let mut chain = vec![row];
        let mut base: Option<std::rc::Rc<Bits>> = None;
        while let Some(prev) = self.entries[*chain.last().unwrap_or(&row) as usize].xor_row {
            if chain.len() > self.entries.len() {
                return Err(self.bad("XOR chain loops"));
            }
            if let Some(b) = self.cache.borrow().get(&prev) {
                base = Some(b.clone());
                break;
            }
            chain.push(prev);
        }
        let mut acc: Option<Bits> = base.map(|b| (*b).clone());
        for &r in chain.iter().rev() {
            let e = self.entries[r as usize];
            let d = self.data.get(e.offset..).ok_or_else(|| self.bad("entry offset"))?;
            let mut b = ewah::decode(d).map_err(|err| self.bad(&err.to_string()))?;
            if let Some(a) = &acc {
                b.xor(a);
            }
            let rc = std::rc::Rc::new(b.clone());
            let mut cache = self.cache.borrow_mut();
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(r, rc);
            acc = Some(b);
        }
        let rc = self.cache.borrow().get(&row).cloned();
        rc.ok_or_else(|| self.bad("entry"))
    }

    /// The pack and pack-position count of the longest run sent whole from the start of the
    /// bitmapped (or midx-preferred) pack, given the set to send.
    fn verbatim_prefix(&self, result: &Bits) -> Option<Verbatim> {
        let lead = (result.leading_ones() as u64).min(u64::from(self.num_objects)) as u32;
        if lead == 0 {
            return None;
        }
        let (pack, count) = match &self.backing {
            Backing::Pack(p) => (*p, lead),
            Backing::Midx { midx, packs } => {
                // Pseudo-pack positions 0.. are the preferred pack's objects in pack order.
                let first = midx.pseudo_to_midx(0)?;
                let (pref, _) = midx.pack_and_offset(first)?;
                let pid = *packs.get(pref as usize)?;
                let n = lead.min(self.packs.pack(pid).num_objects());
                let last = midx.pack_and_offset(midx.pseudo_to_midx(n - 1)?)?;
                if last != (pref, self.packs.pack(pid).offset_at_pack_position(n - 1)) {
                    return None;
                }
                (pid, n)
            }
        };
        let end = self.packs.pack(pack).offset_at_pack_position(count);
        Some(Verbatim { pack, objects: count, end })
    }
}

/// Objects met while filling in that the bitmap does not cover, at positions after its last.
struct Extended {
    base: u32,
    /// Number, kind and name hash of each.
    objs: Vec<(ObjNum, Kind, u32)>,
    pos: std::collections::HashMap<ObjNum, u32>,
}

impl Extended {
    fn get(&self, num: ObjNum) -> Option<u32> {
        self.pos.get(&num).copied()
    }
    fn add(&mut self, num: ObjNum, kind: Kind, name_hash: u32) -> u32 {
        if let Some(p) = self.get(num) {
            return p;
        }
        let p = self.base + self.objs.len() as u32;
        self.objs.push((num, kind, name_hash));
        self.pos.insert(num, p);
        p
    }
    fn at(&self, pos: u32) -> Option<&(ObjNum, Kind, u32)> {
        pos.checked_sub(self.base).and_then(|i| self.objs.get(i as usize))
    }
}

/// Counting state of one request.
struct Count<'i, 'a> {
    index: &'i BitmapIndex<'a>,
    odb: &'i Odb,
    ext: Extended,
    commits_walked: usize,
}

impl Count<'_, '_> {
    /// The bit position of `id`: in the bitmap, or extended. Looked up through the object
    /// database's numbering (which keeps recent lookups), then the pack's reverse index.
    fn position(&self, id: &oid) -> Option<u32> {
        let num = self.odb.num(id)?;
        self.position_of_num(num)
    }

    fn position_of_num(&self, num: ObjNum) -> Option<u32> {
        self.index.position_of_num(num).or_else(|| self.ext.get(num))
    }

    /// The bitmap stored for the commit at `pos`, if the bitmap has one.
    fn stored_bitmap(&self, pos: u32) -> Result<Option<std::rc::Rc<Bits>>, BitmapError> {
        if pos < self.index.num_objects {
            self.index.commit_bitmap(pos)
        } else {
            Ok(None)
        }
    }

    fn kind_of(&self, id: &oid, pos: Option<u32>) -> Result<Option<Kind>, OdbError> {
        match pos {
            Some(p) if p < self.index.num_objects => Ok(self.index.kind_at(p)),
            Some(p) => Ok(self.ext.at(p).map(|o| o.1)),
            None => self.odb.kind(id),
        }
    }

    fn position_or_add(&mut self, id: &oid, kind: Kind, name_hash: u32) -> u32 {
        let num = self.odb.num_or_add(id);
        self.num_position_or_add(num, kind, name_hash)
    }

    fn num_position_or_add(&mut self, num: ObjNum, kind: Kind, name_hash: u32) -> u32 {
        match self.index.position_of_num(num) {
            Some(p) => p,
            None => self.ext.add(num, kind, name_hash),
        }
    }

    /// Clears from `sent` what `filter` leaves out, keeping the objects the client named
    /// (`wants`) and what their tags point at, as git's bitmap filters do (a tag of a blob
    /// brings its blob under `blob:none`). Types come from the bitmap's type bitmaps, a word
    /// at a time; only `blob:limit` looks at each blob (its size, from the entry header).
    fn filter(&self, sent: &mut Bits, filter: &Filter, wants: &[ObjectId]) -> Result<(), BitmapError> {
        let is_tag = |p: u32| match (p as usize).checked_sub(self.ext.base as usize) {
            Some(i) => self.ext.objs.get(i).is_some_and(|o| o.1 == Kind::Tag),
            None => self.index.types[3].get(p as usize),
        };
        let mut named: Vec<u32> = Vec::new();
        for w in wants {
            let mut cur = *w;
            // A chain of tags, peeled as far as git peels one (bounded against loops).
            for _ in 0..100 {
                let Some(p) = self.position(&cur) else { break };
                named.push(p);
                if !is_tag(p) {
                    break;
                }
                match self.odb.tag_target(&cur) {
                    Ok((target, _)) => cur = target,
                    Err(_) => break,
                }
            }
        }
        named.retain(|&p| sent.get(p as usize));
        let kinds = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];
        let sized = filter.needs_blob_size();
        // Kinds dropped whatever their size (blobs are decided one by one with blob:limit).
        let dropped: Vec<bool> =
            kinds.iter().map(|&k| !(filter.keeps(k, 0, 0, &|| true) || k == Kind::Blob && sized)).collect();
        for (t, &drop) in self.index.types.iter().zip(&dropped) {
            if drop {
                sent.and_not(t);
            }
        }
        let mut left_out = Bits::new();
        for (i, &(num, kind, _)) in self.ext.objs.iter().enumerate() {
            let p = (self.ext.base as usize) + i;
            if !sent.get(p) {
                continue;
            }
            let k = kinds.iter().position(|&x| x == kind).unwrap_or(2);
            if dropped[k] || (kind == Kind::Blob && sized && !self.keeps_blob(filter, num)?) {
                left_out.set(p);
            }
        }
        if sized {
            let blobs = &self.index.types[2];
            let n = self.index.num_objects as usize;
            for (wi, (&sw, &bw)) in sent.words().iter().zip(blobs.words()).enumerate() {
                let mut w = sw & bw;
                while w != 0 {
                    let p = wi * 64 + w.trailing_zeros() as usize;
                    w &= w - 1;
                    if p >= n {
                        break;
                    }
                    let num = self
                        .index
                        .num_at(p as u32)
                        .ok_or_else(|| self.index.bad("position without an object"))?;
                    if !self.keeps_blob(filter, num)? {
                        left_out.set(p);
                    }
                }
            }
        }
        sent.and_not(&left_out);
        for p in named {
            sent.set(p as usize);
        }
        Ok(())
    }

    fn keeps_blob(&self, filter: &Filter, num: ObjNum) -> Result<bool, BitmapError> {
        let size = self.odb.size_num(num)?.unwrap_or(0);
        Ok(filter.keeps(Kind::Blob, 0, size, &|| true))
    }

    /// Everything reachable from `roots`, skipping what is in `seen` (closed under reachability).
    /// Missing roots are skipped when `lenient` (haves), an error otherwise.
    fn reach(&mut self, roots: &[ObjectId], seen: Option<&Bits>, lenient: bool) -> Result<Bits, BitmapError> {
        let mut base = Bits::with_len(self.index.num_objects as usize);
        let in_seen = |b: &Bits, p: u32| b.get(p as usize) || seen.is_some_and(|s| s.get(p as usize));
        let mut commits: Vec<ObjectId> = Vec::new();
        // (tree, name hash of its path, whether it is a root tree)
        let mut trees: Vec<(ObjectId, u32, bool)> = Vec::new();
        for root in roots {
            let mut cur = *root;
            for _ in 0..100 {
                let pos = self.position(&cur);
                let kind = match self.kind_of(&cur, pos)? {
                    Some(k) => k,
                    None if lenient => break,
                    None => return Err(OdbError::Missing(cur).into()),
                };
                let pos = match pos {
                    Some(p) => p,
                    None => self.position_or_add(&cur, kind, 0),
                };
                if in_seen(&base, pos) {
                    break;
                }
                match kind {
                    Kind::Commit => {
                        commits.push(cur);
                        break;
                    }
                    Kind::Tag => {
                        base.set(pos as usize);
                        cur = self.odb.tag_target(&cur)?.0;
                    }
                    Kind::Tree => {
                        trees.push((cur, 0, true));
                        break;
                    }
                    Kind::Blob => {
                        base.set(pos as usize);
                        break;
                    }
                }
            }
        }
        // Commits first: a stored bitmap met on the way covers all the trees below it. As in
        // git's `find_objects`, the roots' own bitmaps are OR-ed in first, then the others are
        // walked newest first, so that the big bitmaps of recent commits are met (and cover
        // the history below them) before the walk goes deep into old history.
        let mut queue: std::collections::BinaryHeap<(i64, u64, ObjectId)> =
            std::collections::BinaryHeap::new();
        let mut seq = u64::MAX;
        for c in commits {
            let pos = self.position_or_add(&c, Kind::Commit, 0);
            if in_seen(&base, pos) {
                continue;
            }
            if let Some(bm) = self.stored_bitmap(pos)? {
                base.or(&bm);
                continue;
            }
            let time = self.odb.commit(&c)?.time;
            queue.push((time, seq, c));
            seq -= 1;
        }
        while let Some((_, _, c)) = queue.pop() {
            let pos = self.position_or_add(&c, Kind::Commit, 0);
            if in_seen(&base, pos) {
                continue;
            }
            if let Some(bm) = self.stored_bitmap(pos)? {
                base.or(&bm);
                continue;
            }
            base.set(pos as usize);
            self.commits_walked += 1;
            let info = self.odb.commit(&c)?;
            trees.push((info.tree, 0, true));
            for p in info.parents {
                let ppos = self.position_or_add(&p, Kind::Commit, 0);
                if in_seen(&base, ppos) {
                    continue;
                }
                if let Some(bm) = self.stored_bitmap(ppos)? {
                    base.or(&bm);
                    continue;
                }
                let time = match self.odb.commit(&p) {
                    Ok(i) => i.time,
                    Err(OdbError::Missing(_)) if lenient => continue,
                    Err(e) => return Err(e.into()),
                };
                queue.push((time, seq, p));
                seq -= 1;
            }
        }
        let mut buf = Vec::new();
        let mut tree_nums: Vec<(ObjNum, u32, bool)> =
            trees.into_iter().map(|(t, h, r)| (self.odb.num_or_add(&t), h, r)).collect();
        let mut entries: Vec<(EntryKind, ObjNum, u32)> = Vec::new();
        while let Some((t, hash, root)) = tree_nums.pop() {
            let pos = self.num_position_or_add(t, Kind::Tree, hash);
            if in_seen(&base, pos) {
                continue;
            }
            base.set(pos as usize);
            entries.clear();
            let odb = self.odb;
            odb.for_each_tree_entry_num(t, &mut buf, |kind, name, id| {
                if kind != EntryKind::Commit {
                    entries.push((kind, odb.num_or_add(id), child_hash(hash, root, name)));
                }
            })?;
            for &(kind, num, h) in &entries {
                match kind {
                    EntryKind::Tree => {
                        // Not pushed when already counted (the common case under a bitmap).
                        let known = self.position_of_num(num).is_some_and(|p| in_seen(&base, p));
                        if !known {
                            tree_nums.push((num, h, false));
                        }
                    }
                    _ => {
                        let pos = self.num_position_or_add(num, Kind::Blob, h);
                        if !in_seen(&base, pos) {
                            base.set(pos as usize);
                        }
                    }
                }
            }
        }
        Ok(base)
    }
}

/// What the client has, answered from the haves' bitmap.
struct BitmapClient<'i, 'a> {
    index: &'i BitmapIndex<'a>,
    ext: std::collections::HashMap<ObjNum, u32>,
    haves: Bits,
}

impl ClientHas for BitmapClient<'_, '_> {
    fn has(&self, num: ObjNum) -> bool {
        self.index
            .position_of_num(num)
            .or_else(|| self.ext.get(&num).copied())
            .is_some_and(|p| self.haves.get(p as usize))
    }
}

/// Counts `req` with the bitmap: the same objects a walk would send (minus whatever else the
/// client is known to have), the client's side as thin-pack bases, and the verbatim run.
pub fn select<'i>(
    index: &'i BitmapIndex<'_>,
    odb: &'i Odb,
    req: &Request,
    verbatim_ok: bool,
) -> Result<Selection<'i>, BitmapError> {
    let n = index.num_objects;
    let mut count = Count {
        index,
        odb,
        ext: Extended { base: n, objs: Vec::new(), pos: std::collections::HashMap::new() },
        commits_walked: 0,
    };
    let haves = count.reach(&req.common, None, true)?;
    let mut sent = count.reach(&req.wants, Some(&haves), false)?;
    sent.and_not(&haves);
    if let Some(f) = &req.filter {
        if !f.filter.decides_by_type() {
            return Err(index.bad("filter needs the walk"));
        }
        count.filter(&mut sent, &f.filter, &req.wants)?;
    }

    // include-tag: annotated tags whose (peeled) target is sent.
    for &tag in &req.include_tags {
        let tpos = count.position_or_add(&tag, Kind::Tag, 0);
        if sent.get(tpos as usize) || haves.get(tpos as usize) {
            continue;
        }
        let mut chain = vec![tag];
        let mut cur = tag;
        let peeled = loop {
            match odb.tag_target(&cur) {
                Ok((target, Kind::Tag)) if chain.len() < 100 => {
                    chain.push(target);
                    cur = target;
                }
                Ok((target, k)) if k != Kind::Tag => break Some(target),
                _ => break None,
            }
        };
        if peeled.and_then(|p| count.position(&p)).is_some_and(|p| sent.get(p as usize)) {
            for t in chain {
                let p = count.position_or_add(&t, Kind::Tag, 0);
                if !haves.get(p as usize) {
                    sent.set(p as usize);
                }
            }
        }
    }

    let verbatim = if verbatim_ok { index.verbatim_prefix(&sent) } else { None };
    let skip = verbatim.as_ref().map_or(0, |v| v.objects as usize);
    // Into object numbers: the bitmapped pack's positions through its reverse index, in order.
    let mut sent_nums = Bits::with_len(odb.num_end() as usize);
    let mut name_hashes: Vec<u32> = Vec::new();
    let mut sent_count = 0;
    let expected = odb.num_end() as usize;
    let mut note = |num: ObjNum, hash: u32, bits: &mut Bits| {
        if !bits.test_and_set(num as usize) {
            sent_count += 1;
        }
        set_name_hash(&mut name_hashes, num, hash, expected);
    };
    for pos in sent.iter_from(skip) {
        let pos32 = pos as u32;
        if pos32 < n {
            let num = index.num_at(pos32).ok_or_else(|| index.bad("position without an object"))?;
            note(num, index.name_hash_at(pos32), &mut sent_nums);
        } else if let Some(&(num, _, hash)) = count.ext.at(pos32) {
            note(num, hash, &mut sent_nums);
        }
    }

    // Thin-pack bases: the client's versions of the paths that changed, found by comparing the
    // trees of the boundary commits (the client's parents of sent commits) with the trees of
    // the wanted tips, descending only where they differ. Only when asked for: like git's, a
    // fetch counted with bitmaps otherwise reuses what is stored and searches no deltas for
    // objects stored whole (a several times smaller pack for several times the CPU).
    let mut thin_bases = ThinBases::new();
    // (A filtered client may lack the boundary's objects: never thin, so no bases to find.)
    if req.bitmap_thin_bases && !req.common.is_empty() && req.filter.is_none() {
        let mut boundary: Vec<ObjectId> = Vec::new();
        let mut tips: Vec<ObjectId> = Vec::new();
        let sent_commits = sent.iter().filter(|&p| match p < n as usize {
            true => index.types[0].get(p),
            false => count.ext.at(p as u32).is_some_and(|o| o.1 == Kind::Commit),
        });
        for pos in sent_commits {
            let num = if pos < n as usize {
                index.num_at(pos as u32)
            } else {
                count.ext.at(pos as u32).map(|o| o.0)
            };
            let Some(info) = num.and_then(|num| odb.commit(&odb.id(num)).ok()) else { continue };
            for p in &info.parents {
                if count.position(p).is_some_and(|pp| haves.get(pp as usize)) && boundary.len() < MAX_BOUNDARY
                {
                    if let Ok(pi) = odb.commit(p) {
                        if !boundary.contains(&pi.tree) {
                            boundary.push(pi.tree);
                        }
                    }
                }
            }
        }
        for w in &req.wants {
            if let Ok((c, Kind::Commit)) = odb.peel(w) {
                if let Ok(info) = odb.commit(&c) {
                    if !tips.contains(&info.tree) && tips.len() < MAX_BOUNDARY {
                        tips.push(info.tree);
                    }
                }
            }
        }
        let mut buf = Vec::new();
        let mut seen_pairs = std::collections::HashSet::new();
        for b in &boundary {
            for t in &tips {
                changed_paths(odb, *b, *t, &mut thin_bases, &mut seen_pairs, &mut buf);
            }
        }
    }

    let commits_walked = count.commits_walked;
    let client = BitmapClient { index, ext: count.ext.pos, haves };
    Ok(Selection {
        sent: sent_nums,
        count: sent_count,
        name_hashes,
        client: Box::new(client),
        commits_walked,
        thin_bases,
        verbatim,
        used_bitmap: true,
        excluded: Vec::new(),
        trees: Bits::default(),
        blobs: Bits::default(),
    })
}

/// `dir/name` (or `name` at the root): the path git's name hash is taken of, as in
/// `rev-list --objects` and the bitmap's name-hash cache.
fn join_path(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    if !dir.is_empty() {
        p.extend_from_slice(dir);
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// Boundary trees and wanted trees compared for thin-pack bases, at most.
const MAX_BOUNDARY: usize = 8;

/// Adds to `out` the entries of `old` (the client's tree) that differ from `new` at the same
/// path, recursing into differing subtrees; best effort (unreadable trees are skipped).
fn changed_paths(
    odb: &Odb,
    old: ObjectId,
    new: ObjectId,
    out: &mut ThinBases,
    seen_pairs: &mut std::collections::HashSet<(ObjectId, ObjectId)>,
    buf: &mut Vec<u8>,
) {
    let mut stack = vec![(old, new, Vec::new())];
    let mut budget = 10_000usize;
    while let Some((o, n, path)) = stack.pop() {
        // The tips share most subtrees: compare each pair once.
        if o == n || budget == 0 || !seen_pairs.insert((o, n)) {
            continue;
        }
        budget -= 1;
        let mut new_entries: std::collections::HashMap<Vec<u8>, (EntryKind, ObjectId)> =
            std::collections::HashMap::new();
        if odb
            .for_each_tree_entry(&n, buf, |k, name, id| {
                new_entries.insert(name.to_vec(), (k, id.to_owned()));
            })
            .is_err()
        {
            continue;
        }
        let mut old_entries: Vec<(EntryKind, Vec<u8>, ObjectId)> = Vec::new();
        if odb
            .for_each_tree_entry(&o, buf, |k, name, id| old_entries.push((k, name.to_vec(), id.to_owned())))
            .is_err()
        {
            continue;
        }
        for (kind, name, id) in old_entries {
            let counterpart = new_entries.get(&name);
            if counterpart.is_some_and(|(_, nid)| *nid == id) {
                continue;
            }
            let full = join_path(&path, &name);
            let h = name_hash(&full);
            let k = match kind {
                EntryKind::Tree => Kind::Tree,
                EntryKind::Blob => Kind::Blob,
                EntryKind::Commit => continue,
            };
            let num = odb.num_or_add(&id);
            let v = out.entry(h).or_default();
            if v.len() < THIN_CANDIDATES && !v.iter().any(|&(x, _)| x == num) {
                v.push((num, k));
            }
            if let (EntryKind::Tree, Some((EntryKind::Tree, nid))) = (kind, counterpart) {
                stack.push((id, *nid, full));
            }
        }
    }
}

/// Opens the bitmap if the request may use one and the repository has a usable one.
pub fn open_if_eligible<'a>(packs: &'a PackSet, pack_dir: &Path, c: Conditions) -> Option<BitmapIndex<'a>> {
    if !eligible(c) {
        return None;
    }
    // An unreadable bitmap only costs speed: the walk gives the same answer.
    BitmapIndex::open(packs, pack_dir).ok().flatten()
}

/// Counts with `index` when there is one, falling back to the walk if the bitmap can't answer
/// (a malformed file, objects it does not cover that are missing). `verbatim_ok`: the client
/// takes ofs-deltas, so a run of the pack can be copied as it is.
pub fn select_or_walk<'i>(
    index: Option<&'i BitmapIndex<'_>>,
    odb: &'i Odb,
    req: &Request,
    verbatim_ok: bool,
    ticker: &mut super::walk::Ticker<'_>,
) -> Result<Selection<'i>, super::walk::WalkError> {
    // A verbatim run would carry excluded objects along.
    let verbatim_ok = verbatim_ok && req.exclude.is_empty();
    if let Some(index) = index {
        if let Ok(mut sel) = select(index, odb, req, verbatim_ok) {
            if !verbatim_ok {
                sel.verbatim = None;
            }
            sel.exclude(odb, &req.exclude);
            return Ok(sel);
        }
    }
    let mut sel = super::walk::enumerate(odb, req, ticker)?;
    sel.exclude(odb, &req.exclude);
    Ok(sel)
}

/// Of `targets`, those that no tip in `tips` reaches, answered from the bitmap: the tips'
/// reachability is OR-ed in one tip at a time (a stored bitmap, or a fill-in walk down to the
/// nearest stored ones that skips what is already counted) until every target's bit is set.
/// Tips come in the caller's order, most likely first (HEAD, then the branches), so that the
/// usual want, reachable from the default branch, costs one bitmap. A tip whose objects are
/// missing reaches nothing more than what can be read (never more than it really reaches).
pub fn unreached(
    index: &BitmapIndex<'_>,
    odb: &Odb,
    tips: &[ObjectId],
    targets: &[ObjectId],
) -> Result<Vec<ObjectId>, BitmapError> {
    let n = index.num_objects;
    let mut count = Count {
        index,
        odb,
        ext: Extended { base: n, objs: Vec::new(), pos: std::collections::HashMap::new() },
        commits_walked: 0,
    };
    let mut reached = Bits::with_len(n as usize);
    let mut pending: Vec<ObjectId> = targets.to_vec();
    for tip in tips {
        if pending.is_empty() {
            break;
        }
        let more = count.reach(std::slice::from_ref(tip), Some(&reached), true)?;
        reached.or(&more);
        pending.retain(|t| !count.position(t).is_some_and(|p| reached.get(p as usize)));
    }
    Ok(pending)
}
