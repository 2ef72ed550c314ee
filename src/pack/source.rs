//! The repository's packfiles, mmapped: `.idx` lookup (through `gix-pack`), `.rev` or an
//! in-memory reverse index for "which entry follows this one", and raw entry bytes.
//!
//! Loose objects are not here; the caller falls back to the object database for them.

use std::path::{Path, PathBuf};

use gix::hash::{oid, ObjectId};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use gix::odb::pack::{self, data::entry::Header};
use memmap2::Mmap;

use super::idx::{interpolate, IdxFile};

/// Errors opening or reading packs.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read pack index {path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error("cannot map pack {path}: {source}")]
    Map { path: PathBuf, source: std::io::Error },
    #[error("pack {path} is corrupt: {what}")]
    Corrupt { path: PathBuf, what: String },
}

/// How many times the pack directory is listed again when a listed pack vanished before it
/// could be opened (a repack deleting it): each time means another repack finished meanwhile.
const RESCANS: u32 = 8;

/// Why listing and opening the packs failed.
enum Listed {
    /// A listed pack was deleted before it was opened: list again.
    Vanished(SourceError),
    /// A pack that is there cannot be used.
    Failed(SourceError),
}

/// Which pack, as an index into [`PackSet::packs`].
pub type PackId = u32;

/// An object's number: its pack's first number plus its position in that pack's `.idx`
/// (packs numbered one after the other in [`PackSet`] order). Objects that are in no pack get
/// numbers after the last packed one from the object database's side table. Flags and plans
/// are bit sets and small arrays over these numbers; an object id is looked up only where the
/// wire or an index needs one.
pub type ObjNum = u32;

/// One `.pack` with its `.idx`.
pub struct Pack {
    idx: IdxFile,
    data: Mmap,
    path: PathBuf,
    /// Index positions ordered by pack offset, from `.rev` or built on first use.
    rev: std::sync::OnceLock<RevIndex>,
    /// The inverse of `rev`: `.idx` position → pack position, built on first use (4 bytes per
    /// object) so that entry bounds need no binary search.
    ranks: std::sync::OnceLock<Vec<u32>>,
    rev_path: PathBuf,
    /// Positions found by search before the table is built ([`Pack::pack_position_of_index`]).
    rank_searches: AtomicU32,
    /// The 64 KiB window of the last access, for [`Pack::touch`].
    last_window: AtomicU64,
    /// Bytes the accesses since the last release may have made resident.
    resident: AtomicU64,
}

/// What a page fault in a mapped file makes resident: the kernel maps the 64 KiB around it
/// (fault-around), whatever the access size or `madvise` advice.
const FAULT_WINDOW_SHIFT: u32 = 16;

/// Bytes a pass in stored order ([`Pack::touch_passing`]) leaves resident.
const PASSING_BUDGET: u64 = 8 << 20;

/// Index-to-pack-position answers found by binary search before the table is built.
const SEARCHED_RANKS: u32 = 1024;

/// Bytes of a pack's mapping that may stay resident between two releases: a quarter of the
/// pack, between 4 and 16 MiB. Releasing costs page faults when the pages are touched again,
/// which the decoded-base cache mostly spares the walk: on the 2M-object benchmark a full
/// clone's walk took the same time with 16 MiB as with 64 MiB, and a fetch of git.git peaked
/// 34 MiB lower.
fn resident_budget(pack_bytes: u64) -> u64 {
    (pack_bytes / 4).clamp(4 << 20, 16 << 20)
}

enum RevIndex {
    File(Mmap),
    Memory(Vec<u32>),
}

impl RevIndex {
    fn get(&self, rank: usize) -> u32 {
        match self {
            RevIndex::File(m) => {
                let at = 12 + rank * 4;
                u32::from_be_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]])
            }
            RevIndex::Memory(v) => v[rank],
        }
    }
}

/// A parsed entry header at some offset.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Offset of the entry in its pack.
    pub offset: u64,
    /// Size of the type/size header plus the delta base reference.
    pub header_len: usize,
    /// End of the entry (start of the next one, or the trailer).
    pub end: u64,
    /// Object type or delta kind.
    pub header: Header,
    /// Size of the inflated data (the delta size for deltas).
    pub size: u64,
}

impl Pack {
    fn open(idx_path: &Path, hash: gix::hash::Kind) -> Result<Self, SourceError> {
        let idx = IdxFile::open(idx_path, hash)
            .map_err(|e| SourceError::Index { path: e.path, message: e.message })?;
        let path = idx_path.with_extension("pack");
        let file =
            std::fs::File::open(&path).map_err(|source| SourceError::Map { path: path.clone(), source })?;
        // SAFETY: packs are immutable once written; git replaces them, never rewrites them in place.
        let data =
            unsafe { Mmap::map(&file) }.map_err(|source| SourceError::Map { path: path.clone(), source })?;
        let trailer = hash.len_in_bytes();
        if data.len() < 12 + trailer || &data[..4] != b"PACK" {
            return Err(SourceError::Corrupt { path, what: "bad header".into() });
        }
        let version = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        if version != 2 && version != 3 {
            return Err(SourceError::Corrupt { path, what: format!("unsupported version {version}") });
        }
        let count = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if count != idx.num_objects() {
            return Err(SourceError::Corrupt { path, what: "object count differs from its index".into() });
        }
        // The trailer must be the checksum the index was made for: a truncated pack, a damaged
        // trailer or a pack replaced under its index fails here, not in the client's index-pack.
        // (Entry bytes are checked against the index's CRCs as they are copied.)
        if data[data.len() - trailer..] != *idx.pack_checksum() {
            return Err(SourceError::Corrupt { path, what: "trailer does not match its index".into() });
        }
        let rev_path = idx_path.with_extension("rev");
        Ok(Pack {
            idx,
            data,
            path,
            rev: std::sync::OnceLock::new(),
            ranks: std::sync::OnceLock::new(),
            rev_path,
            rank_searches: AtomicU32::new(0),
            last_window: AtomicU64::new(u64::MAX),
            resident: AtomicU64::new(0),
        })
    }

    /// The pack file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `.idx`.
    pub fn index(&self) -> &IdxFile {
        &self.idx
    }

    /// Where the entries end (the trailer starts).
    pub fn entries_end(&self) -> u64 {
        (self.data.len() - self.idx.object_hash().len_in_bytes()) as u64
    }

    fn rev(&self) -> &RevIndex {
        self.rev.get_or_init(|| {
            let n = self.idx.num_objects() as usize;
            if let Some(m) = self.load_rev_file(n) {
                return RevIndex::File(m);
            }
            let mut v: Vec<u32> = (0..n as u32).collect();
            v.sort_unstable_by_key(|&i| self.idx.pack_offset_at_index(i));
            RevIndex::Memory(v)
        })
    }

    fn load_rev_file(&self, n: usize) -> Option<Mmap> {
        let file = std::fs::File::open(&self.rev_path).ok()?;
        // SAFETY: as for the pack, `.rev` files are written once.
        let m = unsafe { Mmap::map(&file) }.ok()?;
        let hash_len = self.idx.object_hash().len_in_bytes();
        let want_id = match self.idx.object_hash() {
            gix::hash::Kind::Sha1 => 1u32,
            _ => 2,
        };
        let ok = m.len() == 12 + 4 * n + 2 * hash_len
            && &m[..4] == b"RIDX"
            && u32::from_be_bytes([m[4], m[5], m[6], m[7]]) == 1
            && u32::from_be_bytes([m[8], m[9], m[10], m[11]]) == want_id
            // It names this pack. (Its positions are not scanned here: 8 MB at 2M objects before
            // the first byte. Every use is bounds-checked: a position past the index reads as
            // an impossible offset, and the entry then fails its checks.)
            && m[12 + 4 * n..12 + 4 * n + hash_len] == *self.checksum();
        ok.then_some(m)
    }

    /// The rank (position in offset order) of the entry starting at `offset`.
    fn rank_of(&self, offset: u64) -> Option<usize> {
        let rev = self.rev();
        let (mut lo, mut hi) = (0usize, self.idx.num_objects() as usize);
        // Offsets grow with the rank, about evenly: interpolating between the offsets that bound
        // the range finds an entry in a few probes (each a random read of the `.idx`), and a
        // probe that does not halve the range is followed by one at the middle.
        let (mut olo, mut ohi) = (12u64, self.entries_end());
        let mut bisect = false;
        while lo < hi {
            let span = hi - lo;
            let mid = interpolate(lo as u64, span as u64, offset, olo, ohi, bisect) as usize;
            let o = self.idx.pack_offset_at_index(rev.get(mid));
            match o.cmp(&offset) {
                std::cmp::Ordering::Less => {
                    lo = mid + 1;
                    olo = o;
                }
                std::cmp::Ordering::Greater => {
                    hi = mid;
                    ohi = o;
                }
                std::cmp::Ordering::Equal => return Some(mid),
            }
            bisect = !bisect && hi - lo > span / 2;
        }
        None
    }

    /// The index position of the entry at `offset`, if an entry starts there.
    pub fn index_at_offset(&self, offset: u64) -> Option<u32> {
        self.rank_of(offset).map(|r| self.rev().get(r))
    }

    /// The end of the entry starting at `offset`.
    pub fn entry_end(&self, offset: u64) -> Option<u64> {
        let rank = self.rank_of(offset)?;
        if rank + 1 < self.idx.num_objects() as usize {
            Some(self.idx.pack_offset_at_index(self.rev().get(rank + 1)))
        } else {
            Some(self.entries_end())
        }
    }

    fn ranks(&self) -> &[u32] {
        self.ranks.get_or_init(|| {
            let n = self.idx.num_objects() as usize;
            let rev = self.rev();
            let mut v = vec![0u32; n];
            for r in 0..n {
                let i = rev.get(r) as usize;
                if let Some(slot) = v.get_mut(i) {
                    *slot = r as u32;
                }
            }
            v
        })
    }

    /// Parses the entry header at `offset`.
    pub fn entry(&self, offset: u64) -> Result<EntryInfo, SourceError> {
        let end = self.entry_end(offset);
        self.entry_with_end(offset, end)
    }

    /// Parses the header of the entry at `offset` without finding where it ends (no search in
    /// the reverse index): `end` is the end of all entries. Enough to inflate it, since the
    /// deflate stream ends by itself; not for copying its bytes.
    pub fn entry_unbounded(&self, offset: u64) -> Result<EntryInfo, SourceError> {
        self.entry_with_end(offset, Some(self.entries_end()))
    }

    /// Parses the header of the entry at `.idx` position `index` (at `offset`), finding its end
    /// without a search.
    pub fn entry_at_index(&self, index: u32, offset: u64) -> Result<EntryInfo, SourceError> {
        let end = self.pack_position_of_index(index).map(|r| self.offset_at_pack_position(r + 1));
        self.entry_with_end(offset, end)
    }

    /// Parses the header of the entry at `offset` that ends at `end` (known to the caller).
    pub fn entry_bounded(&self, offset: u64, end: u64) -> Result<EntryInfo, SourceError> {
        self.entry_with_end(offset, Some(end))
    }

    fn entry_with_end(&self, offset: u64, end: Option<u64>) -> Result<EntryInfo, SourceError> {
        let corrupt = |what: &str| SourceError::Corrupt {
            path: self.path.clone(),
            what: format!("{what} at offset {offset}"),
        };
        let end = end.ok_or_else(|| corrupt("no entry"))?;
        if end <= offset || end > self.entries_end() {
            return Err(corrupt("bad entry bounds"));
        }
        let bytes = &self.data[offset as usize..end as usize];
        let e = pack::data::Entry::from_bytes(bytes, offset, self.idx.object_hash())
            .map_err(|e| corrupt(&format!("bad entry header ({e})")))?;
        let header_len = (e.data_offset - offset) as usize;
        if header_len >= bytes.len() {
            return Err(corrupt("truncated entry"));
        }
        Ok(EntryInfo { offset, header_len, end, header: e.header, size: e.decompressed_size })
    }

    /// The raw bytes `[from, to)` of the pack.
    pub fn bytes(&self, from: u64, to: u64) -> &[u8] {
        &self.data[from as usize..to as usize]
    }

    /// The pack's trailing checksum (what its `.idx`, `.rev` and `.bitmap` name).
    pub fn checksum(&self) -> &[u8] {
        &self.data[self.entries_end() as usize..]
    }

    /// Objects in the pack.
    pub fn num_objects(&self) -> u32 {
        self.idx.num_objects()
    }

    /// The `.idx` position of the entry at pack position (offset rank) `rank`.
    pub fn index_at_pack_position(&self, rank: u32) -> Option<u32> {
        (rank < self.idx.num_objects()).then(|| self.rev().get(rank as usize))
    }

    /// The pack position (offset rank) of the entry at `.idx` position `index`.
    ///
    /// The first [`SEARCHED_RANKS`] answers are binary searches in the reverse index; after that
    /// the whole index-to-position table is built (4 bytes per object), so that a fetch of a few
    /// objects from a big pack does not pay for the table.
    pub fn pack_position_of_index(&self, index: u32) -> Option<u32> {
        if self.ranks.get().is_none() && self.rank_searches.fetch_add(1, Ordering::Relaxed) < SEARCHED_RANKS {
            if index >= self.idx.num_objects() {
                return None;
            }
            return self.rank_of(self.idx.pack_offset_at_index(index)).map(|r| r as u32);
        }
        self.ranks().get(index as usize).copied()
    }

    /// Starts loading the `.idx` offset and CRC of the entry at pack position `rank`, for a scan
    /// in pack order that will reach it soon.
    #[inline]
    pub fn prefetch_pack_position(&self, rank: u32) {
        if let Some(i) = self.index_at_pack_position(rank) {
            self.idx.prefetch_entry(i);
        }
    }

    /// The offset where the entry at pack position `rank` starts (the trailer for `rank == n`).
    pub fn offset_at_pack_position(&self, rank: u32) -> u64 {
        match self.index_at_pack_position(rank) {
            Some(i) => self.idx.pack_offset_at_index(i),
            None => self.entries_end(),
        }
    }

    /// Notes an access to `[offset, offset + len)` of the mapping, and drops the mapping's pages
    /// from the resident set once the accesses since the last release may have made
    /// [`resident_budget`] bytes resident. Counted in fault-around windows: a sequential scan
    /// costs what it reads, scattered small reads (tree walks, a fetch's few objects) cost 64 KiB
    /// each, which per-byte accounting would miss.
    pub fn touch(&self, offset: u64, len: u64) {
        self.touch_within(offset, len, resident_budget(self.data.len() as u64));
    }

    /// [`Pack::touch`] for a pass through the pack in (nearly) stored order — planning and
    /// writing — that does not come back to what it passed: a small budget, so that the pack's
    /// pages do not pile up while it streams.
    pub fn touch_passing(&self, offset: u64, len: u64) {
        self.touch_within(offset, len, PASSING_BUDGET.min(resident_budget(self.data.len() as u64)));
    }

    fn touch_within(&self, offset: u64, len: u64, budget: u64) {
        let first = offset >> FAULT_WINDOW_SHIFT;
        let last = offset.saturating_add(len.max(1) - 1) >> FAULT_WINDOW_SHIFT;
        let prev = self.last_window.swap(last, Ordering::Relaxed);
        let windows = if prev == first { last - first } else { last - first + 1 };
        let used = self.resident.fetch_add(windows << FAULT_WINDOW_SHIFT, Ordering::Relaxed)
            + (windows << FAULT_WINDOW_SHIFT);
        if used >= budget {
            self.release_all();
        }
    }

    /// Drops all of the mapping's pages from the resident set and restarts the count of
    /// [`Pack::touch`].
    pub fn release_all(&self) {
        self.release(0, self.data.len() as u64);
        self.resident.store(0, Ordering::Relaxed);
        self.last_window.store(u64::MAX, Ordering::Relaxed);
    }

    /// Tells the kernel these pages won't be needed again soon.
    pub fn release(&self, from: u64, to: u64) {
        let page = 4096u64;
        let start = from.div_ceil(page) * page;
        let end = to / page * page;
        if end > start {
            // SAFETY: the mapping is a read-only view of a file; dropped pages are read again from
            // the file if touched later, so no data is lost. Only a hint; errors are irrelevant.
            let _ = unsafe {
                self.data.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }
}

/// Where a packed object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The pack.
    pub pack: PackId,
    /// Offset of the entry.
    pub offset: u64,
    /// Position in the pack's `.idx`.
    pub index: u32,
}

/// All packs of a repository (and of its alternates).
pub struct PackSet {
    packs: Vec<Pack>,
    /// The first object number of each pack, and the total after the last.
    bases: Vec<ObjNum>,
    hash: gix::hash::Kind,
}

impl PackSet {
    /// Opens every `pack-*.idx` in `objects_dirs/pack`: packs with a reachability bitmap first,
    /// then the biggest first (most lookups end in the first pack they try; an object stored
    /// twice is always found, and numbered, in the first pack that has it), newest first among
    /// equals.
    ///
    /// A concurrent `git repack -d` or `git gc` may delete a listed pack (its `.idx` or its
    /// `.pack`) before it is opened; its objects are then in a pack written before the deletion,
    /// so the directory is listed again, as git's `reprepare_packed_git` does. Once mapped, a pack
    /// stays readable for the whole session even if it is unlinked.
    pub fn open(objects_dirs: &[PathBuf], hash: gix::hash::Kind) -> Result<Self, SourceError> {
        let mut attempts = 0;
        loop {
            match Self::open_listed(objects_dirs, hash) {
                Ok(set) => return Ok(set),
                Err(Listed::Vanished(e)) if attempts < RESCANS => {
                    attempts += 1;
                    // Give the repack a moment to finish deleting what it replaced.
                    std::thread::sleep(std::time::Duration::from_millis(5 << attempts.min(6)));
                    drop(e);
                }
                Err(Listed::Vanished(e) | Listed::Failed(e)) => return Err(e),
            }
        }
    }

    fn open_listed(objects_dirs: &[PathBuf], hash: gix::hash::Kind) -> Result<Self, Listed> {
        let mut found = Vec::new();
        for dir in objects_dirs {
            let Ok(rd) = std::fs::read_dir(dir.join("pack")) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("pack-") && name.ends_with(".idx") && p.with_extension("pack").exists() {
                    let meta = p.with_extension("pack").metadata().ok();
                    let size = meta.as_ref().map_or(0, |m| m.len());
                    let mtime = e.metadata().and_then(|m| m.modified()).ok();
                    let bitmap = p.with_extension("bitmap").exists();
                    found.push((bitmap, size, mtime, p));
                }
            }
        }
        found.sort_by(|a, b| {
            b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)).then_with(|| b.2.cmp(&a.2)).then_with(|| a.3.cmp(&b.3))
        });
        let mut packs = Vec::with_capacity(found.len());
        for (_, _, _, p) in found {
            match Pack::open(&p, hash) {
                Ok(pack) => packs.push(pack),
                Err(e) if !p.exists() || !p.with_extension("pack").exists() => {
                    return Err(Listed::Vanished(e))
                }
                Err(e) => return Err(Listed::Failed(e)),
            }
        }
        let mut bases = Vec::with_capacity(packs.len() + 1);
        let mut total: u64 = 0;
        for p in &packs {
            bases.push(total as ObjNum);
            total += u64::from(p.num_objects());
        }
        if total >= u64::from(ObjNum::MAX / 2) {
            return Err(Listed::Failed(SourceError::Corrupt {
                path: objects_dirs.first().cloned().unwrap_or_default(),
                what: format!("{total} packed objects are more than packserve numbers"),
            }));
        }
        bases.push(total as ObjNum);
        Ok(PackSet { packs, bases, hash })
    }

    /// The object hash kind.
    pub fn hash_kind(&self) -> gix::hash::Kind {
        self.hash
    }

    /// The packs.
    pub fn packs(&self) -> &[Pack] {
        &self.packs
    }

    /// The pack with this id.
    pub fn pack(&self, id: PackId) -> &Pack {
        &self.packs[id as usize]
    }

    /// The pack whose file name (without extension) is `stem`, e.g. `pack-1234…`.
    pub fn by_stem(&self, stem: &str) -> Option<PackId> {
        self.packs.iter().position(|p| p.path.file_stem().is_some_and(|s| s == stem)).map(|i| i as PackId)
    }

    /// Where `id` is stored in a pack, if it is.
    pub fn locate(&self, id: &oid) -> Option<Location> {
        for (i, p) in self.packs.iter().enumerate() {
            if let Some(index) = p.idx.lookup(id) {
                return Some(Location {
                    pack: i as PackId,
                    offset: p.idx.pack_offset_at_index(index),
                    index,
                });
            }
        }
        None
    }

    /// Objects in all packs: the first number that is no packed object's.
    pub fn total(&self) -> ObjNum {
        *self.bases.last().unwrap_or(&0)
    }

    /// The first object number of `pack`.
    pub fn base(&self, pack: PackId) -> ObjNum {
        self.bases[pack as usize]
    }

    /// The number of `id`, if it is in a pack (the first pack that has it).
    pub fn num_of(&self, id: &oid) -> Option<ObjNum> {
        self.packs.iter().zip(&self.bases).find_map(|(p, &base)| p.idx.lookup(id).map(|i| base + i))
    }

    /// The pack and `.idx` position of a packed object's number.
    pub fn split(&self, num: ObjNum) -> Option<(PackId, u32)> {
        if num >= self.total() {
            return None;
        }
        // Few packs: the partition point of the bases is quick.
        let pack = self.bases.partition_point(|&b| b <= num) - 1;
        Some((pack as PackId, num - self.bases[pack]))
    }

    /// Where the object with number `num` is stored, `None` for numbers of unpacked objects.
    pub fn location(&self, num: ObjNum) -> Option<Location> {
        let (pack, index) = self.split(num)?;
        let offset = self.packs[pack as usize].idx.pack_offset_at_index(index);
        Some(Location { pack, offset, index })
    }

    /// The id of a packed object's number.
    pub fn oid_of(&self, num: ObjNum) -> Option<&oid> {
        let (pack, index) = self.split(num)?;
        Some(self.packs[pack as usize].idx.oid_at_index(index))
    }

    /// Drops every pack's mapped pages from this process's resident set (they stay in the page
    /// cache and are mapped again on the next touch).
    pub fn release_all(&self) {
        self.packs.iter().for_each(Pack::release_all);
    }

    /// The object id of the entry at `offset` in `pack`.
    pub fn oid_at(&self, pack: PackId, offset: u64) -> Option<ObjectId> {
        let p = &self.packs[pack as usize];
        p.index_at_offset(offset).map(|i| p.idx.oid_at_index(i).to_owned())
    }
}
