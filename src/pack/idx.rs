//! Pack index (`.idx`) lookups, read only where a lookup lands.
//!
//! gix's index type checks every 32-bit offset when it opens a file (8 MB of page faults for a
//! 2M-object pack, before the first lookup). Here opening reads the header and the fan-out
//! table only. A fault in a mapped file maps the 64 KiB around it (the kernel's fault-around,
//! which `MADV_RANDOM` does not turn off), so the binary searches of an advertisement that
//! checks a hundred tags would make megabytes resident: the first [`COLD_LOOKUPS`] lookups read
//! with `pread` instead (16 names around the interpolated position a read, so a lookup usually
//! costs one or two), and only a walk that looks up many objects goes through the mapping.
//! Every read is bounds-checked, so a damaged index gives an error (or "not found"), never a
//! panic.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use gix::hash::oid;
use memmap2::Mmap;

/// Errors opening an index.
#[derive(Debug, thiserror::Error)]
#[error("cannot read pack index {path}: {message}")]
pub struct IdxError {
    /// The index file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
}

const V2_MAGIC: [u8; 4] = [0xff, b't', b'O', b'c'];
const FAN: usize = 256 * 4;

/// Lookups and offset reads answered with `pread` before the mapping is used.
pub const COLD_LOOKUPS: u32 = 4096;

/// Entries an id search narrows a fan-out bucket to before it compares whole ids.
const NARROW_TO: u32 = 16;

/// A mapped `.idx` file, version 1 or 2.
pub struct IdxFile {
    data: Mmap,
    /// The file, for `pread` while few lookups were made (`None` in tests).
    file: Option<std::fs::File>,
    lookups: AtomicU32,
    hash: gix::hash::Kind,
    v2: bool,
    num: u32,
    fan: [u32; 256],
    /// Where the object names start.
    names: usize,
    /// Number of 64-bit offsets (version 2).
    large: usize,
}

/// The position in `[lo, lo + span)` where `key` would be if the keys between `klo` and `khi`
/// (those just outside the range) were evenly spread; the middle when `bisect` is asked for or
/// the bounds tell nothing. Id searches (nine-byte keys) and offset searches share it.
pub(crate) fn interpolate(lo: u64, span: u64, key: u64, klo: u64, khi: u64, bisect: bool) -> u64 {
    if bisect || khi <= klo || key < klo {
        return lo + span / 2;
    }
    let frac = u128::from(key - klo) * u128::from(span) / (u128::from(khi - klo) + 1);
    lo + (frac as u64).min(span - 1)
}

/// Bytes 1..9 of an id as a number: the interpolation key inside a fan-out bucket.
#[inline]
fn key_of(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]])
}

/// A hint to load the cache line at `p`; it never faults, whatever the address.
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing into the program and never faults, for any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl IdxFile {
    /// Maps and checks the index at `path`: its header, fan-out table and size.
    pub fn open(path: &Path, hash: gix::hash::Kind) -> Result<Self, IdxError> {
        let err = |message: String| IdxError { path: path.to_owned(), message };
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        // SAFETY: index files are written once and replaced, never changed in place.
        let data = unsafe { Mmap::map(&file) }.map_err(|e| err(e.to_string()))?;
        let mut idx = Self::from_mapping(data, hash).map_err(err)?;
        idx.file = Some(file);
        Ok(idx)
    }

    fn from_mapping(data: Mmap, hash: gix::hash::Kind) -> Result<Self, String> {
        let h = hash.len_in_bytes();
        let v2 = data.len() >= 8 && data[..4] == V2_MAGIC;
        let fan_at = if v2 {
            let version = be32(&data[4..8]);
            if version != 2 {
                return Err(format!("unsupported index version {version}"));
            }
            8
        } else {
            0
        };
        if data.len() < fan_at + FAN + 2 * h {
            return Err("too small for an index".into());
        }
        let mut fan = [0u32; 256];
        for (i, f) in fan.iter_mut().enumerate() {
            *f = be32(&data[fan_at + 4 * i..]);
        }
        if fan.windows(2).any(|w| w[0] > w[1]) {
            return Err("fan-out table not sorted".into());
        }
        let num = fan[255];
        let n = num as usize;
        let names = fan_at + FAN;
        let (fixed, large) = if v2 {
            // names, CRCs, 32-bit offsets, then 8 bytes per large offset, then two checksums.
            let fixed = names + n * (h + 8) + 2 * h;
            if data.len() < fixed || !(data.len() - fixed).is_multiple_of(8) {
                return Err(format!("size {} does not fit {num} objects", data.len()));
            }
            (fixed, (data.len() - fixed) / 8)
        } else {
            // (offset, name) pairs, then two checksums.
            (names + n * (4 + h) + 2 * h, 0)
        };
        if !v2 && data.len() != fixed {
            return Err(format!("size {} does not fit {num} objects", data.len()));
        }
        Ok(IdxFile { data, file: None, lookups: AtomicU32::new(0), hash, v2, num, fan, names, large })
    }

    /// Objects in the index.
    pub fn num_objects(&self) -> u32 {
        self.num
    }

    /// The hash kind.
    pub fn object_hash(&self) -> gix::hash::Kind {
        self.hash
    }

    /// The checksum of the pack the index was made for.
    pub fn pack_checksum(&self) -> &[u8] {
        let h = self.hash.len_in_bytes();
        let end = self.data.len() - h;
        &self.data[end - h..end]
    }

    fn name_at(&self, index: u32) -> usize {
        let h = self.hash.len_in_bytes();
        let i = index as usize;
        if self.v2 {
            self.names + i * h
        } else {
            self.names + i * (4 + h) + 4
        }
    }

    fn name_bytes(&self, index: u32) -> &[u8] {
        let at = self.name_at(index);
        &self.data[at..at + self.hash.len_in_bytes()]
    }

    /// Bytes `[at, at + out.len())` of the file: with `pread` while `cold`, else from the mapping.
    /// `at` is always inside the file (checked by the caller's arithmetic against its size).
    fn read_into(&self, cold: bool, at: usize, out: &mut [u8]) {
        if cold {
            if let Some(f) = &self.file {
                if f.read_exact_at(out, at as u64).is_ok() {
                    return;
                }
            }
        }
        out.copy_from_slice(&self.data[at..at + out.len()]);
    }

    /// Whether this access (a lookup or an offset) is one of the first few, answered with
    /// `pread`; a scan through every entry soon goes through the mapping.
    fn cold(&self) -> bool {
        self.file.is_some()
            && self.lookups.load(Ordering::Relaxed) < COLD_LOOKUPS
            && self.lookups.fetch_add(1, Ordering::Relaxed) < COLD_LOOKUPS
    }

    /// From now on every read goes through the mapping: a scan of many entries is about to
    /// start, for which a `pread` per read would cost more than the pages it touches.
    pub fn warm(&self) {
        self.lookups.store(COLD_LOOKUPS, Ordering::Relaxed);
    }

    /// The object id at position `index` (below [`IdxFile::num_objects`]).
    pub fn oid_at_index(&self, index: u32) -> &oid {
        static NULL: [u8; 32] = [0; 32];
        if index >= self.num {
            return oid::from_bytes_unchecked(&NULL[..self.hash.len_in_bytes()]);
        }
        oid::from_bytes_unchecked(self.name_bytes(index))
    }

    /// The position of `id`, if the index lists it.
    ///
    /// The fan-out table narrows the search to the ids with the same first byte; ids are
    /// uniformly distributed, so interpolating on the next eight bytes finds an id in two or three
    /// probes where a binary search takes a dozen (each probe a cache miss in a big index). A
    /// probe that fails to halve the range is followed by a bisection, which bounds the worst
    /// case by twice the binary search's.
    pub fn lookup(&self, id: &oid) -> Option<u32> {
        let bytes = id.as_bytes();
        if bytes.len() != self.hash.len_in_bytes() {
            return None;
        }
        let first = bytes[0] as usize;
        let lo = if first == 0 { 0 } else { self.fan[first - 1] };
        let hi = self.fan[first];
        if lo >= hi {
            return None;
        }
        if self.cold() {
            return self.lookup_cold(bytes, lo, hi);
        }
        self.lookup_mapped(bytes, lo, hi)
    }

    /// With `pread`: few lookups, no page faults. Each read fetches [`NARROW_TO`] names
    /// around the interpolated position: the id is usually among them (one read), else the
    /// block's ends bound the rest of the search. A read that does not halve the range is
    /// followed by one at the middle, which bounds the worst case by a binary search's.
    fn lookup_cold(&self, bytes: &[u8], mut lo: u32, mut hi: u32) -> Option<u32> {
        let h = bytes.len();
        let stride = if self.v2 { h } else { 4 + h };
        let key = key_of(bytes);
        let (mut klo, mut khi) = (0u64, u64::MAX);
        let mut bisect = false;
        let mut block = [0u8; NARROW_TO as usize * (4 + 32)];
        while lo < hi {
            let span = hi - lo;
            let guess = interpolate(lo.into(), span.into(), key, klo, khi, bisect) as u32;
            // The block [wlo, whi) of at most NARROW_TO entries, centred on the guess.
            let wlo = guess.saturating_sub(NARROW_TO / 2).max(lo).min(hi.saturating_sub(NARROW_TO).max(lo));
            let whi = (wlo + NARROW_TO).min(hi);
            let n = (whi - wlo) as usize;
            self.read_into(true, self.name_at(wlo), &mut block[..(n - 1) * stride + h]);
            let name = |j: usize| &block[j * stride..j * stride + h];
            if bytes < name(0) {
                hi = wlo;
                khi = key_of(name(0));
            } else if bytes > name(n - 1) {
                lo = whi;
                klo = key_of(name(n - 1));
            } else {
                return (0..n).find(|&j| name(j) == bytes).map(|j| wlo + j as u32);
            }
            bisect = !bisect && hi - lo > span / 2;
        }
        None
    }

    /// Interpolation search through the mapping, within one fan-out bucket `[lo, hi)`.
    fn lookup_mapped(&self, bytes: &[u8], lo: u32, hi: u32) -> Option<u32> {
        let (mut lo, mut hi, hit) = self.narrow(bytes, lo, hi, |i| key_of(self.name_bytes(i)));
        if let Some(i) = hit.filter(|&i| self.name_bytes(i) == bytes) {
            return Some(i);
        }
        // A few entries left (or a match of the first nine bytes): bisect on the full id.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.name_bytes(mid).cmp(bytes) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Narrows the fan-out bucket `[lo, hi)` to at most [`NARROW_TO`] entries that would hold
    /// `bytes`, by interpolating on the nine-byte keys `key_at` reads, alternating with bisection
    /// when a probe does not halve the range (which bounds the worst case by twice a binary
    /// search's). A probe whose key equals that of `bytes` ends it early: its position is
    /// returned too (the id is most likely there; if not, it is in the range, which may then
    /// hold more entries).
    fn narrow(
        &self,
        bytes: &[u8],
        mut lo: u32,
        mut hi: u32,
        mut key_at: impl FnMut(u32) -> u64,
    ) -> (u32, u32, Option<u32>) {
        let key = key_of(bytes);
        // Keys of the entries just outside the range (virtual bounds at first): every key in
        // the range lies between them.
        let (mut klo, mut khi) = (0u64, u64::MAX);
        let mut bisect = false;
        while hi - lo > NARROW_TO {
            let span = hi - lo;
            let mid = interpolate(lo.into(), span.into(), key, klo, khi, bisect) as u32;
            let k = key_at(mid);
            match k.cmp(&key) {
                std::cmp::Ordering::Less => {
                    lo = mid + 1;
                    klo = k;
                }
                std::cmp::Ordering::Greater => {
                    hi = mid;
                    khi = k;
                }
                std::cmp::Ordering::Equal => return (lo, hi, Some(mid)),
            }
            bisect = !bisect && hi - lo > span / 2;
        }
        (lo, hi, None)
    }

    /// The pack offset of the object at position `index`; `u64::MAX` when the index points at a
    /// 64-bit offset it does not hold (a damaged index: the entry then fails its bounds check).
    pub fn pack_offset_at_index(&self, index: u32) -> u64 {
        let h = self.hash.len_in_bytes();
        let n = self.num as usize;
        let i = index as usize;
        if i >= n {
            return u64::MAX;
        }
        let cold = self.cold();
        let mut b4 = [0u8; 4];
        if !self.v2 {
            self.read_into(cold, self.names + i * (4 + h), &mut b4);
            return u64::from(u32::from_be_bytes(b4));
        }
        let off32 = self.names + n * (h + 4);
        self.read_into(cold, off32 + 4 * i, &mut b4);
        let v = u32::from_be_bytes(b4);
        if v & 0x8000_0000 == 0 {
            return u64::from(v);
        }
        let k = (v & 0x7fff_ffff) as usize;
        if k >= self.large {
            return u64::MAX;
        }
        let mut b8 = [0u8; 8];
        self.read_into(cold, off32 + 4 * n + 8 * k, &mut b8);
        u64::from_be_bytes(b8)
    }

    /// The CRC32 of the entry at position `index` (version 2 only).
    /// Asks the CPU to start loading the offset and CRC of position `index` (a scan in pack order
    /// reads them at random: issued a few entries ahead, the loads overlap).
    #[inline]
    pub fn prefetch_entry(&self, index: u32) {
        let h = self.hash.len_in_bytes();
        let n = self.num as usize;
        let i = index as usize;
        if !self.v2 || i >= n {
            return;
        }
        let crc = self.names + n * h + 4 * i;
        prefetch(self.data.as_ptr().wrapping_add(crc));
        prefetch(self.data.as_ptr().wrapping_add(crc + 4 * n));
    }

    pub fn crc32_at_index(&self, index: u32) -> Option<u32> {
        let h = self.hash.len_in_bytes();
        let n = self.num as usize;
        (self.v2 && (index as usize) < n).then(|| be32(&self.data[self.names + n * h + 4 * index as usize..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(bytes: &[u8]) -> Mmap {
        let mut m = memmap2::MmapMut::map_anon(bytes.len().max(1)).unwrap();
        m[..bytes.len()].copy_from_slice(bytes);
        m.make_read_only().unwrap()
    }

    /// A version 2 index of the given (sorted) ids and offsets, with large offsets as needed.
    fn v2_index(ids: &[[u8; 20]], offsets: &[u64]) -> Vec<u8> {
        let mut d = V2_MAGIC.to_vec();
        d.extend_from_slice(&2u32.to_be_bytes());
        for b in 0..256usize {
            let c = ids.iter().filter(|id| (id[0] as usize) <= b).count() as u32;
            d.extend_from_slice(&c.to_be_bytes());
        }
        for id in ids {
            d.extend_from_slice(id);
        }
        for (i, _) in ids.iter().enumerate() {
            d.extend_from_slice(&(0xc0de_0000u32 + i as u32).to_be_bytes());
        }
        let mut large = Vec::new();
        for &o in offsets {
            if o < 0x8000_0000 {
                d.extend_from_slice(&(o as u32).to_be_bytes());
            } else {
                d.extend_from_slice(&(0x8000_0000u32 | large.len() as u32).to_be_bytes());
                large.push(o);
            }
        }
        for o in large {
            d.extend_from_slice(&o.to_be_bytes());
        }
        d.extend_from_slice(&[0xaa; 20]);
        d.extend_from_slice(&[0xbb; 20]);
        d
    }

    #[test]
    fn looks_up_v2_with_large_offsets() {
        let ids = [[0x01; 20], [0x7f; 20], [0x80; 20], [0xff; 20]];
        let offsets = [12, 5_000_000_000, 99, 0x8000_0000];
        let idx = IdxFile::from_mapping(mapping(&v2_index(&ids, &offsets)), gix::hash::Kind::Sha1).unwrap();
        assert_eq!(idx.num_objects(), 4);
        for (i, id) in ids.iter().enumerate() {
            let pos = idx.lookup(oid::from_bytes_unchecked(id)).unwrap();
            assert_eq!(pos, i as u32);
            assert_eq!(idx.pack_offset_at_index(pos), offsets[i]);
            assert_eq!(idx.oid_at_index(pos).as_bytes(), id);
            assert_eq!(idx.crc32_at_index(pos), Some(0xc0de_0000 + i as u32));
        }
        assert_eq!(idx.lookup(oid::from_bytes_unchecked(&[0x02; 20])), None);
        assert_eq!(idx.pack_checksum(), &[0xaa; 20]);
        assert_eq!(idx.pack_offset_at_index(4), u64::MAX);
    }

    /// `n` ids with a skewed distribution (not uniform: the search must not rely on it).
    fn skewed_ids(n: u32) -> Vec<[u8; 20]> {
        (0..n)
            .map(|i| {
                let mut id = [0u8; 20];
                let v = (i as u64).pow(3).wrapping_mul(0x9e37_79b9);
                id[0] = (i % 3) as u8;
                id[1..9].copy_from_slice(&v.to_be_bytes());
                id[19] = i as u8;
                id
            })
            .collect()
    }

    #[test]
    fn interpolation_finds_every_id_and_no_other() {
        let mut ids = skewed_ids(5000);
        ids.sort();
        ids.dedup();
        let offsets: Vec<u64> = (0..ids.len() as u64).map(|i| 12 + i).collect();
        let mut idx =
            IdxFile::from_mapping(mapping(&v2_index(&ids, &offsets)), gix::hash::Kind::Sha1).unwrap();
        idx.lookups = AtomicU32::new(COLD_LOOKUPS);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(idx.lookup(oid::from_bytes_unchecked(id)), Some(i as u32));
            let mut other = *id;
            other[19] ^= 0x80;
            if ids.binary_search(&other).is_err() {
                assert_eq!(idx.lookup(oid::from_bytes_unchecked(&other)), None);
            }
        }
    }

    fn v1_index(ids: &[[u8; 20]]) -> Vec<u8> {
        let mut d = Vec::new();
        for b in 0..256usize {
            let c = ids.iter().filter(|id| (id[0] as usize) <= b).count() as u32;
            d.extend_from_slice(&c.to_be_bytes());
        }
        for (i, id) in ids.iter().enumerate() {
            d.extend_from_slice(&(12 + i as u32).to_be_bytes());
            d.extend_from_slice(id);
        }
        d.extend_from_slice(&[0xcc; 20]);
        d.extend_from_slice(&[0xdd; 20]);
        d
    }

    #[test]
    fn cold_lookups_find_every_id_and_no_other() {
        // Skewed ids, and a run of ids alike in their first ten bytes (the search's key is
        // nine of them: it must fall back to comparing whole ids).
        let mut ids = skewed_ids(3000);
        ids.extend((0u8..40).map(|i| {
            let mut id = [0x05u8; 20];
            id[10] = i;
            id
        }));
        ids.sort();
        ids.dedup();
        let dir = std::env::temp_dir().join(format!("packserve-idx-cold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let offsets: Vec<u64> = (0..ids.len() as u64).map(|i| 12 + i).collect();
        for (name, bytes) in [("v2.idx", v2_index(&ids, &offsets)), ("v1.idx", v1_index(&ids))] {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let idx = IdxFile::open(&path, gix::hash::Kind::Sha1).unwrap();
            for (i, id) in ids.iter().enumerate() {
                // Every lookup the first one, so every one goes through `pread`.
                idx.lookups.store(0, Ordering::Relaxed);
                assert_eq!(idx.lookup(oid::from_bytes_unchecked(id)), Some(i as u32), "{name}");
                let mut other = *id;
                other[19] ^= 0x80;
                if ids.binary_search(&other).is_err() {
                    idx.lookups.store(0, Ordering::Relaxed);
                    assert_eq!(idx.lookup(oid::from_bytes_unchecked(&other)), None, "{name}");
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_indexes_are_refused_or_answer_safely() {
        let ids = [[0x01; 20], [0x02; 20]];
        let good = v2_index(&ids, &[12, 40]);
        // Truncated, padded by an odd amount, unsorted fan-out, wrong version.
        for bad in [
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0; 3]].concat(),
            {
                let mut b = good.clone();
                b[8 + 4 * 0x10..8 + 4 * 0x11].copy_from_slice(&9u32.to_be_bytes());
                b
            },
            {
                let mut b = good.clone();
                b[7] = 3;
                b
            },
            vec![],
        ] {
            assert!(IdxFile::from_mapping(mapping(&bad), gix::hash::Kind::Sha1).is_err());
        }
        // A large-offset reference past the table reads as an impossible offset.
        let mut b = good.clone();
        let off32 = 8 + FAN + 2 * 20 + 2 * 4;
        b[off32..off32 + 4].copy_from_slice(&0x8000_0005u32.to_be_bytes());
        let idx = IdxFile::from_mapping(mapping(&b), gix::hash::Kind::Sha1).unwrap();
        assert_eq!(idx.pack_offset_at_index(0), u64::MAX);
        assert_eq!(idx.pack_offset_at_index(1), 40);
    }

    #[test]
    fn reads_version_1() {
        let ids = [[0x10; 20], [0x20; 20]];
        let mut d = Vec::new();
        for b in 0..256usize {
            let c = ids.iter().filter(|id| (id[0] as usize) <= b).count() as u32;
            d.extend_from_slice(&c.to_be_bytes());
        }
        for (id, off) in ids.iter().zip([12u32, 77]) {
            d.extend_from_slice(&off.to_be_bytes());
            d.extend_from_slice(id);
        }
        d.extend_from_slice(&[0xcc; 20]);
        d.extend_from_slice(&[0xdd; 20]);
        let idx = IdxFile::from_mapping(mapping(&d), gix::hash::Kind::Sha1).unwrap();
        assert_eq!(idx.lookup(oid::from_bytes_unchecked(&[0x20; 20])), Some(1));
        assert_eq!(idx.pack_offset_at_index(1), 77);
        assert_eq!(idx.crc32_at_index(1), None);
        assert_eq!(idx.pack_checksum(), &[0xcc; 20]);
    }
}
