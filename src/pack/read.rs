//! Whole objects decoded out of the mapped packs: an entry is inflated and its delta chain
//! resolved against bases read from the same mapping the writer streams from, so that the
//! walk and the writer share one mapping of each pack and one `.idx` (and the walk's pages
//! can be released like the writer's). Decoded delta bases are kept in an LRU cache sized for
//! the packs: 1/16 of their bytes, between 4 and 32 MiB.

use gix::objs::Kind;
use gix::odb::pack::cache::DecodeEntry;
use gix::odb::pack::data::entry::Header;

use super::delta;
use super::source::{EntryInfo, Location, PackId, PackSet, SourceError};

/// Bytes of decoded delta bases kept (trees of neighbouring commits share long delta chains):
/// a bigger repository has longer chains and bigger trees. At 2M objects (320 MB of pack) a
/// 4 MiB cache made the walk of a full clone twice as slow as with 16 MiB; at 200k objects
/// 4 and 8 MiB cost the same.
fn base_cache_bytes(packs: &PackSet) -> usize {
    let total: u64 = packs.packs().iter().map(|p| p.entries_end()).sum();
    usize::try_from(total / 16).unwrap_or(usize::MAX).clamp(4 << 20, 32 << 20)
}

/// Longest delta chain followed (git writes at most 4095; pack.depth caps it at 50 by default).
const MAX_CHAIN: usize = 10_000;

/// zlib cannot expand data by more than about 1032:1; a declared size beyond that is a lie.
const MAX_RATIO: u64 = 1100;

/// Decodes objects from a [`PackSet`], keeping a cache of delta bases.
#[derive(Default)]
pub struct Reader {
    /// Made on the first read of a delta, sized for the packs.
    cache: Option<gix::odb::pack::cache::lru::MemoryCappedHashmap>,
    /// A smaller size for the cache than the packs' (see [`Reader::for_writing`]).
    cap: Option<usize>,
    /// Made on the first inflate (a ref listing reads only entry headers, to peel).
    inflate: Option<flate2::Decompress>,
    delta: Vec<u8>,
    /// Where a delta's result is built (then swapped with the caller's buffer).
    result: Vec<u8>,
}

/// Bytes of decoded delta bases kept while a pack is written: the writer reads each object
/// once, in pack order (mostly whole, or a delta against what was just read), so a big cache
/// helps little there, while it is most of a small request's memory (`--depth=1` of git.git:
/// 80 MiB peak with the walk's 19 MiB cache, 52 MiB with 4 MiB, for the same CPU).
const WRITE_CACHE_BYTES: usize = 4 << 20;

impl Reader {
    /// A reader for the writing phase: its cache of delta bases is kept small.
    pub fn for_writing() -> Self {
        Reader { cap: Some(WRITE_CACHE_BYTES), ..Default::default() }
    }

    /// Reads the object stored at `loc` into `out`, returning its kind.
    pub fn read(&mut self, packs: &PackSet, loc: Location, out: &mut Vec<u8>) -> Result<Kind, SourceError> {
        // Each delta with where its base is (the base's cache key).
        let mut chain: Vec<(PackId, EntryInfo, (PackId, u64))> = Vec::new();
        // Entries are parsed without finding where they end (that needs the reverse index and
        // three scattered reads per object): the deflate stream ends by itself.
        let (mut pack, mut offset) = (loc.pack, loc.offset);
        // The chain from the object down to the first entry that is not a delta (or is cached;
        // the cache is made with the first delta: reading a whole object needs none).
        let kind = loop {
            if !chain.is_empty() {
                let cap = self.cap;
                let cache = self.cache.get_or_insert_with(|| {
                    let bytes = base_cache_bytes(packs);
                    gix::odb::pack::cache::lru::MemoryCappedHashmap::new(cap.map_or(bytes, |c| c.min(bytes)))
                });
                if let Some((kind, _)) = cache.get(pack, offset, out) {
                    break kind;
                }
            }
            let p = packs.pack(pack);
            let info = p.entry_unbounded(offset)?;
            let Some(next) = delta_base(packs, pack, offset, &info.header)? else {
                let kind = info.header.as_kind().unwrap_or(Kind::Blob);
                self.inflate(packs, pack, &info, out)?;
                break kind;
            };
            chain.push((pack, info, next));
            if chain.len() > MAX_CHAIN {
                return Err(corrupt(packs, pack, format!("delta chain too long at offset {offset}")));
            }
            (pack, offset) = next;
        };
        // `out` holds the base of the last delta in the chain: apply them back up.
        while let Some((pack, info, (base_pack, base_offset))) = chain.pop() {
            if let Some(cache) = self.cache.as_mut() {
                cache.put(base_pack, base_offset, out, kind, 0);
            }
            let mut delta = std::mem::take(&mut self.delta);
            self.inflate(packs, pack, &info, &mut delta)?;
            let result = delta::apply_into(out, &delta, &mut self.result)
                .map_err(|e| corrupt(packs, pack, format!("bad delta at offset {}: {e}", info.offset)));
            self.delta = delta;
            result?;
            std::mem::swap(out, &mut self.result);
        }
        Ok(kind)
    }

    /// The kind of the object stored at `loc`, following its delta chain through the headers only.
    pub fn kind(&mut self, packs: &PackSet, loc: Location) -> Result<Kind, SourceError> {
        let (mut pack, mut offset) = (loc.pack, loc.offset);
        for _ in 0..=MAX_CHAIN {
            let info = packs.pack(pack).entry_unbounded(offset)?;
            packs.pack(pack).touch(offset, info.header_len as u64);
            match delta_base(packs, pack, offset, &info.header)? {
                Some(next) => (pack, offset) = next,
                None => return Ok(info.header.as_kind().unwrap_or(Kind::Blob)),
            }
        }
        Err(corrupt(packs, pack, format!("delta chain too long at offset {}", loc.offset)))
    }

    /// The size of the object stored at `loc`: a delta's result size is read from the first
    /// bytes of its data, so nothing is resolved.
    pub fn size(&mut self, packs: &PackSet, loc: Location) -> Result<u64, SourceError> {
        let p = packs.pack(loc.pack);
        let info = p.entry_unbounded(loc.offset)?;
        p.touch(loc.offset, info.header_len as u64 + 32);
        match info.header {
            Header::OfsDelta { .. } | Header::RefDelta { .. } => {
                let data = p.bytes(info.offset + info.header_len as u64, info.end);
                let mut head = [0u8; 32];
                let inflate = self.inflater();
                // A partial inflate: the buffer being full is expected.
                let _ = inflate.decompress(data, &mut head, flate2::FlushDecompress::None);
                let n = inflate.total_out() as usize;
                delta::sizes(&head[..n]).map(|(_, result)| result).map_err(|e| {
                    corrupt(packs, loc.pack, format!("bad delta at offset {}: {e}", info.offset))
                })
            }
            _ => Ok(info.size),
        }
    }

    /// Inflates the data of `info` into `out` (exactly its declared size).
    fn inflate(
        &mut self,
        packs: &PackSet,
        pack: PackId,
        info: &EntryInfo,
        out: &mut Vec<u8>,
    ) -> Result<(), SourceError> {
        let p = packs.pack(pack);
        let data = p.bytes(info.offset + info.header_len as u64, info.end);
        let bad = |what: &str| corrupt(packs, pack, format!("{what} at offset {}", info.offset));
        if info.size > (data.len() as u64).saturating_mul(MAX_RATIO).saturating_add(1024) {
            return Err(bad("declared size larger than its data can inflate to"));
        }
        let size = usize::try_from(info.size).map_err(|_| bad("object too large"))?;
        out.clear();
        out.resize(size, 0);
        let inflate = self.inflater();
        let status = inflate
            .decompress(data, out, flate2::FlushDecompress::Finish)
            .map_err(|e| bad(&format!("cannot inflate ({e})")))?;
        if inflate.total_out() != info.size || status != flate2::Status::StreamEnd {
            return Err(bad("inflated size differs from the declared size"));
        }
        p.touch(info.offset, info.header_len as u64 + inflate.total_in());
        Ok(())
    }

    /// The inflater, reset for a new stream.
    fn inflater(&mut self) -> &mut flate2::Decompress {
        let inflate = self.inflate.get_or_insert_with(|| flate2::Decompress::new(true));
        inflate.reset(true);
        inflate
    }
}

/// Where the base of the entry at (`pack`, `offset`) is, `None` if the entry is no delta.
fn delta_base(
    packs: &PackSet,
    pack: PackId,
    offset: u64,
    header: &Header,
) -> Result<Option<(PackId, u64)>, SourceError> {
    match *header {
        Header::OfsDelta { base_distance } => {
            let base = offset.checked_sub(base_distance).filter(|&b| b >= 12).ok_or_else(|| {
                corrupt(packs, pack, format!("delta base before the start at offset {offset}"))
            })?;
            Ok(Some((pack, base)))
        }
        Header::RefDelta { base_id } => {
            let l = packs.locate(&base_id).ok_or_else(|| {
                corrupt(packs, pack, format!("delta base {base_id} of offset {offset} is in no pack"))
            })?;
            Ok(Some((l.pack, l.offset)))
        }
        _ => Ok(None),
    }
}

fn corrupt(packs: &PackSet, pack: PackId, what: String) -> SourceError {
    SourceError::Corrupt { path: packs.pack(pack).path().to_owned(), what }
}
