//! The multi-pack-index (`objects/pack/multi-pack-index`), as far as multi-pack bitmaps need
//! it: object ids (OIDF/OIDL), where each is stored (OOFF/LOFF), the pack names (PNAM) and the
//! pseudo-pack order (the RIDX chunk, or the older `multi-pack-index-<hash>.rev` file).
//!
//! Read-only and bounds-checked: a malformed file is an error, never a panic.

use std::path::{Path, PathBuf};

use gix::hash::oid;
use memmap2::Mmap;

/// Errors reading a multi-pack-index.
#[derive(Debug, thiserror::Error)]
pub enum MidxError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("multi-pack-index {path} is malformed: {what}")]
    Malformed { path: PathBuf, what: &'static str },
}

/// A mapped multi-pack-index.
pub struct Midx {
    data: Mmap,
    path: PathBuf,
    hash_len: usize,
    num_objects: u32,
    fanout: usize,
    oids: usize,
    offsets: usize,
    large: Option<(usize, usize)>,
    /// Pseudo-pack order: `ridx[i]` is the midx position of the object at bit position `i`.
    ridx: Option<Ridx>,
    /// Pack names (`pack-<hash>.idx`) by pack-int-id.
    pub pack_names: Vec<String>,
    preferred: Option<u32>,
}

enum Ridx {
    Chunk(usize),
    File(Mmap),
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

impl Midx {
    /// Opens `dir/multi-pack-index`, `None` if there is none.
    pub fn open(dir: &Path, hash: gix::hash::Kind) -> Result<Option<Midx>, MidxError> {
        let path = dir.join("multi-pack-index");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(MidxError::Io { path, source }),
        };
        // SAFETY: git writes a new multi-pack-index and renames it into place; never in place.
        let data =
            unsafe { Mmap::map(&file) }.map_err(|source| MidxError::Io { path: path.clone(), source })?;
        Self::parse(data, path, hash).map(Some)
    }

    fn parse(data: Mmap, path: PathBuf, hash: gix::hash::Kind) -> Result<Midx, MidxError> {
        let bad = |what| MidxError::Malformed { path: path.clone(), what };
        let hash_len = hash.len_in_bytes();
        if data.len() < 12 + hash_len || &data[..4] != b"MIDX" || data[4] != 1 {
            return Err(bad("bad header"));
        }
        let want_hash = if hash == gix::hash::Kind::Sha1 { 1 } else { 2 };
        if data[5] != want_hash {
            return Err(bad("hash kind differs from the repository's"));
        }
        if data[7] != 0 {
            return Err(bad("incremental multi-pack-index chains are not supported"));
        }
        let chunks = data[6] as usize;
        let num_packs = be32(&data, 8) as usize;
        let toc_end = 12 + (chunks + 1) * 12;
        if data.len() < toc_end + hash_len {
            return Err(bad("truncated chunk table"));
        }
        let body_end = data.len() - hash_len;
        let mut table: Vec<([u8; 4], usize)> = Vec::with_capacity(chunks + 1);
        for i in 0..=chunks {
            let at = 12 + i * 12;
            let id = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            let off = u64::from_be_bytes(data[at + 4..at + 12].try_into().map_err(|_| bad("chunk table"))?);
            let off = usize::try_from(off).map_err(|_| bad("chunk offset"))?;
            if off > body_end || off < toc_end {
                return Err(bad("chunk offset out of range"));
            }
            table.push((id, off));
        }
        let chunk = |name: &[u8; 4]| -> Option<(usize, usize)> {
            let i = table[..chunks].iter().position(|(id, _)| id == name)?;
            let (start, end) = (table[i].1, table[i + 1].1);
            (end >= start).then_some((start, end))
        };
        let (fanout, fend) = chunk(b"OIDF").ok_or_else(|| bad("no OIDF chunk"))?;
        if fend - fanout != 256 * 4 {
            return Err(bad("OIDF chunk size"));
        }
        let num_objects = be32(&data, fanout + 255 * 4);
        let n = num_objects as usize;
        let (oids, oend) = chunk(b"OIDL").ok_or_else(|| bad("no OIDL chunk"))?;
        if oend - oids != n * hash_len {
            return Err(bad("OIDL chunk size"));
        }
        let (offsets, ofend) = chunk(b"OOFF").ok_or_else(|| bad("no OOFF chunk"))?;
        if ofend - offsets != n * 8 {
            return Err(bad("OOFF chunk size"));
        }
        let large = chunk(b"LOFF");
        let ridx = match chunk(b"RIDX") {
            Some((s, e)) if e - s == n * 4 => Some(Ridx::Chunk(s)),
            Some(_) => return Err(bad("RIDX chunk size")),
            None => None,
        };
        let (names, nend) = chunk(b"PNAM").ok_or_else(|| bad("no PNAM chunk"))?;
        let pack_names: Vec<String> = data[names..nend]
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        if pack_names.len() != num_packs {
            return Err(bad("PNAM chunk names a different number of packs"));
        }
        let mut midx = Midx {
            data,
            path: path.clone(),
            hash_len,
            num_objects,
            fanout,
            oids,
            offsets,
            large,
            ridx,
            pack_names,
            preferred: None,
        };
        if midx.ridx.is_none() {
            midx.ridx = midx.load_rev_file();
        }
        if midx.ridx.is_some() && n > 0 {
            let bad = |what| MidxError::Malformed { path: path.clone(), what };
            let first = midx.pseudo_to_midx(0).ok_or_else(|| bad("reverse index"))?;
            midx.preferred = Some(midx.pack_and_offset(first).ok_or_else(|| bad("object offsets"))?.0);
        }
        Ok(midx)
    }

    fn load_rev_file(&self) -> Option<Ridx> {
        let checksum = &self.data[self.data.len() - self.hash_len..];
        let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
        let p = self.path.with_file_name(format!("multi-pack-index-{hex}.rev"));
        let file = std::fs::File::open(p).ok()?;
        // SAFETY: written once, like the multi-pack-index itself.
        let m = unsafe { Mmap::map(&file) }.ok()?;
        let ok = m.len() == 12 + 4 * self.num_objects as usize + 2 * self.hash_len && &m[..4] == b"RIDX";
        ok.then_some(Ridx::File(m))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trailing checksum (what a multi-pack bitmap names).
    pub fn checksum(&self) -> &[u8] {
        &self.data[self.data.len() - self.hash_len..]
    }

    /// Objects in the index.
    pub fn num_objects(&self) -> u32 {
        self.num_objects
    }

    /// Whether the pseudo-pack order is known (needed for bitmaps).
    pub fn has_pseudo_pack_order(&self) -> bool {
        self.ridx.is_some()
    }

    /// The id at midx position `i`.
    pub fn oid_at(&self, i: u32) -> Option<&oid> {
        if i >= self.num_objects {
            return None;
        }
        let at = self.oids + i as usize * self.hash_len;
        oid::try_from_bytes(&self.data[at..at + self.hash_len]).ok()
    }

    /// The midx position of `id`.
    pub fn lookup(&self, id: &oid) -> Option<u32> {
        let first = id.as_bytes()[0] as usize;
        let lo = if first == 0 { 0 } else { be32(&self.data, self.fanout + (first - 1) * 4) };
        let hi = be32(&self.data, self.fanout + first * 4).min(self.num_objects);
        let (mut lo, mut hi) = (lo, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = self.oids + mid as usize * self.hash_len;
            match self.data[at..at + self.hash_len].cmp(id.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// The pack-int-id and offset of the object at midx position `i`.
    pub fn pack_and_offset(&self, i: u32) -> Option<(u32, u64)> {
        if i >= self.num_objects {
            return None;
        }
        let at = self.offsets + i as usize * 8;
        let pack = be32(&self.data, at);
        let off = be32(&self.data, at + 4);
        let offset = if off & 0x8000_0000 != 0 {
            let (start, end) = self.large?;
            let row = (off & 0x7fff_ffff) as usize;
            let at = start + row * 8;
            if at + 8 > end {
                return None;
            }
            u64::from_be_bytes(self.data[at..at + 8].try_into().ok()?)
        } else {
            u64::from(off)
        };
        Some((pack, offset))
    }

    /// The midx position of the object at pseudo-pack (bit) position `p`.
    pub fn pseudo_to_midx(&self, p: u32) -> Option<u32> {
        if p >= self.num_objects {
            return None;
        }
        let v = match self.ridx.as_ref()? {
            Ridx::Chunk(start) => be32(&self.data, start + p as usize * 4),
            Ridx::File(m) => be32(m, 12 + p as usize * 4),
        };
        (v < self.num_objects).then_some(v)
    }

    fn order_key(&self, i: u32) -> Option<(bool, u32, u64)> {
        let (pack, offset) = self.pack_and_offset(i)?;
        Some((Some(pack) != self.preferred, pack, offset))
    }

    /// The pseudo-pack (bit) position of midx position `i`: preferred pack first, then packs by
    /// id, each in offset order.
    pub fn midx_to_pseudo(&self, i: u32) -> Option<u32> {
        let key = self.order_key(i)?;
        let (mut lo, mut hi) = (0u32, self.num_objects);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let k = self.order_key(self.pseudo_to_midx(mid)?)?;
            match k.cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}
