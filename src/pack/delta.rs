//! Git binary deltas: creating and applying them.
//!
//! This module owns the byte format of a git delta, the payload of an
//! `OBJ_OFS_DELTA` / `OBJ_REF_DELTA` pack entry (see gitformat-pack,
//! "Deltified representation"), and nothing else: it knows nothing of
//! packs, object ids, zlib or protocols. It turns (base, target) byte
//! slices into a delta and (base, delta) back into the target.
//!
//! Format: a header of two little-endian base-128 varints (base size,
//! result size), then instructions. An instruction byte with the high bit
//! set copies a range of the base (bits 0..=3 say which offset bytes
//! follow, bits 4..=6 which size bytes follow, size 0 meaning 0x10000); a
//! byte `1..=127` inserts that many literal bytes that follow it; byte 0 is
//! reserved and rejected.
//!
//! Encoding follows the approach of git's `diff-delta`: the base is cut
//! into 16-byte blocks, each hashed with a polynomial rolling hash into a
//! bucketed index (buckets capped at 64 entries, culled evenly, so that
//! repetitive data cannot make matching quadratic; runs of identical
//! blocks keep only their first block). The target is scanned with the same
//! rolling hash at every byte position; a small Bloom filter per bucket
//! rejects most positions with one load. Candidates are verified byte by
//! byte, the longest wins, and it is extended backwards over pending
//! literals. Copies are emitted at most 0x10000 bytes at a time, as git
//! does, so every delta made here is one git's `patch_delta` accepts.
//!
//! The index takes 14 to 20 bytes per 16-byte block of the base (about as
//! much as git's) and only borrows the base, so one index serves many
//! targets.

use thiserror::Error;

/// Width of the hashed window, and spacing of indexed blocks in the base.
const WINDOW: usize = 16;
/// Most entries kept per hash bucket (excess entries are culled evenly).
const BUCKET_LIMIT: usize = 64;
/// Largest size a single emitted copy instruction covers.
const MAX_COPY: usize = 0x10000;
/// Largest size of a single insert instruction.
const MAX_INSERT: usize = 0x7f;
/// Shortest delta git accepts (git's `DELTA_SIZE_MIN`); `apply` rejects
/// shorter ones too. Every delta of a non-empty target is at least this long.
pub const MIN_DELTA_LEN: usize = 4;
/// Most bytes `apply` allocates up front beyond what the inputs justify.
const PREALLOC_FLOOR: usize = 1 << 16;

/// Multiplier of the polynomial rolling hash (odd, well mixed).
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Byte values mapped to random 64-bit words, so that every bit of the
/// hash depends on every bit of the window.
const BYTE_WORDS: [u64; 256] = byte_words();
/// `BYTE_WORDS[b] * HASH_MUL^WINDOW`: what leaves the hash when `b` slides out.
const BYTE_WORDS_OUT: [u64; 256] = byte_words_out();

const fn splitmix64(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const fn byte_words() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = splitmix64((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        i += 1;
    }
    table
}

const fn byte_words_out() -> [u64; 256] {
    let mut pow = 1u64;
    let mut k = 0;
    while k < WINDOW {
        pow = pow.wrapping_mul(HASH_MUL);
        k += 1;
    }
    let words = byte_words();
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = words[i].wrapping_mul(pow);
        i += 1;
    }
    table
}

/// `HASH_MUL^(WINDOW - 1 - i)`: weight of the window's byte `i`.
const WINDOW_POWERS: [u64; WINDOW] = window_powers();

const fn window_powers() -> [u64; WINDOW] {
    let mut table = [1u64; WINDOW];
    let mut i = WINDOW - 1;
    while i > 0 {
        table[i - 1] = table[i].wrapping_mul(HASH_MUL);
        i -= 1;
    }
    table
}

/// Hash of one full window (`window.len() == WINDOW`): the polynomial
/// `sum(BYTE_WORDS[w[i]] * HASH_MUL^(WINDOW - 1 - i))`, which `hash_roll`
/// maintains incrementally. Written as a sum of independent products.
#[inline]
fn hash_window(window: &[u8]) -> u64 {
    window
        .iter()
        .zip(WINDOW_POWERS)
        .fold(0u64, |h, (&b, p)| h.wrapping_add(BYTE_WORDS[b as usize].wrapping_mul(p)))
}

/// Slides the window one byte: `out` leaves at the front, `inp` enters at the back.
#[inline]
fn hash_roll(h: u64, out: u8, inp: u8) -> u64 {
    h.wrapping_mul(HASH_MUL).wrapping_sub(BYTE_WORDS_OUT[out as usize]).wrapping_add(BYTE_WORDS[inp as usize])
}

/// Length of the common prefix of `a` and `b`.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut done = 0;
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let wa = u64::from_le_bytes([ca[0], ca[1], ca[2], ca[3], ca[4], ca[5], ca[6], ca[7]]);
        let wb = u64::from_le_bytes([cb[0], cb[1], cb[2], cb[3], cb[4], cb[5], cb[6], cb[7]]);
        let x = wa ^ wb;
        if x != 0 {
            return done + (x.trailing_zeros() / 8) as usize;
        }
        done += 8;
    }
    done + a[done..].iter().zip(&b[done..]).take_while(|(x, y)| x == y).count()
}

/// One indexed base block.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Low 32 bits of the block's hash (the bucket comes from the high bits).
    check: u32,
    /// Offset of the block in the base.
    offset: u32,
}

/// Bloom filter mask (two of 64 bits) of an entry check: a bucket's filter
/// is the union of its entries' masks, so that most misses cost one load
/// and a predictable branch.
#[inline]
fn filter_mask(check: u32) -> u64 {
    (1 << (check >> 26)) | (1 << ((check >> 20) & 63))
}

/// An index over a base object's bytes, built once and reused for many targets.
pub struct DeltaIndex<B> {
    base: B,
    /// Part of the base that copy instructions can address (32-bit offsets).
    reach: usize,
    /// `64 - log2(bucket count)`: the bucket of hash `h` is `h >> shift`.
    shift: u32,
    /// Bucket `b` holds `entries[starts[b]..starts[b + 1]]`, in ascending
    /// offset order.
    starts: Vec<u32>,
    /// Union of `filter_mask` of the entries of each bucket.
    filters: Vec<u64>,
    entries: Vec<Entry>,
}

impl<B: AsRef<[u8]>> DeltaIndex<B> {
    /// Indexes `base` in 16-byte blocks. Memory is O(base.len() / 16). The base is borrowed
    /// (`&[u8]`) or owned (`Vec<u8>`, to keep an index with its data).
    pub fn new(base: B) -> Self {
        let reach = base.as_ref().len().min(u32::MAX as usize);
        let blocks = reach / WINDOW;
        let mut index = DeltaIndex {
            base,
            reach,
            shift: 64,
            starts: Vec::new(),
            filters: Vec::new(),
            entries: Vec::new(),
        };
        if blocks == 0 {
            return index;
        }

        // Hash each block; of a run of identical consecutive blocks keep only
        // the first, which gives the longest forward matches.
        let mut hashed: Vec<(u64, u32)> = Vec::with_capacity(blocks);
        let mut prev: Option<&[u8]> = None;
        for (i, block) in index.base.as_ref()[..blocks * WINDOW].chunks_exact(WINDOW).enumerate() {
            if prev == Some(block) {
                continue;
            }
            prev = Some(block);
            hashed.push((hash_window(block), (i * WINDOW) as u32));
        }

        // About two blocks per bucket: the Bloom filters keep misses cheap,
        // and a smaller table is faster to build and to probe.
        let mut bits = 4u32;
        while (1usize << bits) < hashed.len() / 2 && bits < 31 {
            bits += 1;
        }
        let nbuckets = 1usize << bits;
        let shift = 64 - bits;

        // Counting sort by bucket, ties in ascending offset order: `bounds[b]`
        // ends as the start of bucket b, `bounds[b + 1]` as its end.
        let mut bounds = vec![0u32; nbuckets + 1];
        for &(h, _) in &hashed {
            bounds[(h >> shift) as usize] += 1;
        }
        let mut total = 0u32;
        for bound in bounds.iter_mut() {
            total += *bound;
            *bound = total;
        }
        let mut entries = vec![Entry { check: 0, offset: 0 }; hashed.len()];
        for &(h, offset) in hashed.iter().rev() {
            let slot = &mut bounds[(h >> shift) as usize];
            *slot -= 1;
            entries[*slot as usize] = Entry { check: h as u32, offset };
        }
        drop(hashed);

        // Cap every bucket in place, culling evenly across the base. Writes
        // never overtake reads: kept entry k of a bucket moves to or below
        // its own position.
        let mut starts = Vec::with_capacity(nbuckets + 1);
        let mut filters = Vec::with_capacity(nbuckets);
        let mut write = 0usize;
        for b in 0..nbuckets {
            let (start, end) = (bounds[b] as usize, bounds[b + 1] as usize);
            let len = end - start;
            let kept = len.min(BUCKET_LIMIT);
            if kept == len {
                entries.copy_within(start..end, write);
            } else {
                for k in 0..kept {
                    entries[write + k] = entries[start + k * len / kept];
                }
            }
            let filter = entries[write..write + kept].iter().fold(0, |f, e| f | filter_mask(e.check));
            starts.push(write as u32);
            filters.push(filter);
            write += kept;
        }
        starts.push(write as u32);
        if write < entries.len() {
            entries.truncate(write);
            entries.shrink_to_fit();
        }

        index.shift = shift;
        index.starts = starts;
        index.filters = filters;
        index.entries = entries;
        index
    }

    /// Size of the indexed base.
    pub fn base_len(&self) -> usize {
        self.base.as_ref().len()
    }

    /// The delta turning base into target, or None when it would be larger than
    /// `max_delta_size` bytes (use `usize::MAX` for no limit).
    ///
    /// Encoding stops as soon as the output clearly exceeds the limit. A
    /// returned delta is never larger than the limit; near the limit a delta
    /// that would just fit may still be given up on, as git does.
    ///
    /// An empty target gets None too, as in git: its delta would be a bare
    /// header, which git refuses when shorter than [`MIN_DELTA_LEN`] bytes,
    /// and whose result size 0 git's object lookup takes for a bad object.
    pub fn encode(&self, target: &[u8], max_delta_size: usize) -> Option<Vec<u8>> {
        if target.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(max_delta_size.min(target.len() / 2 + 64).min(1 << 20));
        write_varint(&mut out, self.base.as_ref().len() as u64);
        write_varint(&mut out, target.len() as u64);
        if out.len() > max_delta_size {
            return None;
        }

        let n = target.len();
        let mut lit_start = 0;
        if !self.entries.is_empty() && n >= WINDOW {
            let last = n - WINDOW; // start of the last full window
            let mut pos = 0;
            let mut h = hash_window(&target[..WINDOW]);
            let mut abort_at = literal_abort(&out, lit_start, max_delta_size);
            loop {
                // Invariant: pos <= last and h hashes target[pos..pos + WINDOW].
                (pos, h) = self.skip_misses(target, pos, last.min(abort_at), h);
                match self.longest_match(target, pos, h) {
                    Some((mut boff, len)) => {
                        let mut start = pos;
                        while start > lit_start
                            && boff > 0
                            && self.base.as_ref()[boff - 1] == target[start - 1]
                        {
                            start -= 1;
                            boff -= 1;
                        }
                        emit_inserts(&mut out, &target[lit_start..start]);
                        pos += len;
                        emit_copies(&mut out, boff, pos - start);
                        lit_start = pos;
                        if out.len() > max_delta_size {
                            return None;
                        }
                        abort_at = literal_abort(&out, lit_start, max_delta_size);
                        if pos > last {
                            break;
                        }
                        h = hash_window(&target[pos..pos + WINDOW]);
                    }
                    None => {
                        if pos >= abort_at {
                            return None;
                        }
                        if pos == last {
                            break;
                        }
                        h = hash_roll(h, target[pos], target[pos + WINDOW]);
                        pos += 1;
                    }
                }
            }
        }
        if out.len() + insert_cost(n - lit_start) > max_delta_size {
            return None;
        }
        emit_inserts(&mut out, &target[lit_start..]);
        Some(out)
    }

    /// Rolls the hash forward from `pos` to the first position, at most
    /// `stop`, whose bucket filter admits a possible match. This is where
    /// encoding unrelated data spends its time.
    #[inline]
    fn skip_misses(&self, target: &[u8], mut pos: usize, stop: usize, mut h: u64) -> (usize, u64) {
        if pos >= stop {
            return (pos, h);
        }
        let leaving = &target[pos..stop];
        let entering = &target[pos + WINDOW..stop + WINDOW];
        for (&out, &inp) in leaving.iter().zip(entering) {
            let mask = filter_mask(h as u32);
            if self.filters[(h >> self.shift) as usize] & mask == mask {
                break;
            }
            h = hash_roll(h, out, inp);
            pos += 1;
        }
        (pos, h)
    }

    /// Longest verified match (base offset, length >= WINDOW) of the base
    /// against `target[pos..]`, whose first window hashes to `h`.
    #[inline]
    fn longest_match(&self, target: &[u8], pos: usize, h: u64) -> Option<(usize, usize)> {
        let b = (h >> self.shift) as usize;
        let check = h as u32;
        let mask = filter_mask(check);
        if self.filters[b] & mask != mask {
            return None;
        }
        let (lo, hi) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        let rest = &target[pos..];
        let mut best_len = 0;
        let mut best_off = 0;
        for e in &self.entries[lo..hi] {
            if e.check != check {
                continue;
            }
            let off = e.offset as usize;
            let room = (self.reach - off).min(rest.len());
            // Entries ascend by offset, so later ones have no more room.
            if room <= best_len {
                break;
            }
            // A candidate can only beat the best if it also matches the
            // byte just past the best match: one cheap test first.
            let base = self.base.as_ref();
            if base[off + best_len] != rest[best_len] {
                continue;
            }
            let len = common_prefix(&base[off..off + room], &rest[..room]);
            if len > best_len {
                best_len = len;
                best_off = off;
            }
        }
        (best_len >= WINDOW).then_some((best_off, best_len))
    }
}

/// Target position at which the literals pending since `lit_start` make
/// the delta exceed `max` for sure, give or take what a later match can win
/// back by extending backwards (typically less than a window).
#[inline]
fn literal_abort(out: &[u8], lit_start: usize, max: usize) -> usize {
    let budget = max.saturating_sub(out.len());
    lit_start.saturating_add(WINDOW).saturating_add(max_literals(budget))
}

/// Most literal bytes whose insert instructions fit in `budget` bytes.
#[inline]
fn max_literals(budget: usize) -> usize {
    let per_op = MAX_INSERT + 1;
    (budget / per_op) * MAX_INSERT + (budget % per_op).saturating_sub(1)
}

/// Bytes taken by `n` literal bytes as insert instructions.
#[inline]
fn insert_cost(n: usize) -> usize {
    n + n.div_ceil(MAX_INSERT)
}

fn emit_inserts(out: &mut Vec<u8>, mut lit: &[u8]) {
    while !lit.is_empty() {
        let take = lit.len().min(MAX_INSERT);
        out.push(take as u8);
        out.extend_from_slice(&lit[..take]);
        lit = &lit[take..];
    }
}

/// Copy instructions for `base[off..off + len]`; `off + len` fits in 32 bits.
fn emit_copies(out: &mut Vec<u8>, mut off: usize, mut len: usize) {
    while len > 0 {
        let take = len.min(MAX_COPY);
        let op_at = out.len();
        out.push(0);
        let mut op = 0x80u8;
        for i in 0..4 {
            let byte = (off >> (8 * i)) as u8;
            if byte != 0 {
                op |= 1 << i;
                out.push(byte);
            }
        }
        // take == 0x10000 is encoded as size 0: no size bytes at all.
        for i in 0..2 {
            let byte = (take >> (8 * i)) as u8;
            if byte != 0 {
                op |= 0x10 << i;
                out.push(byte);
            }
        }
        out[op_at] = op;
        off += take;
        len -= take;
    }
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Why a delta could not be read or applied.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// Shorter than any delta git accepts.
    #[error("delta of {0} bytes is shorter than the minimum of 4")]
    TooShort(usize),
    /// The delta ends inside its size header.
    #[error("delta header truncated")]
    TruncatedHeader,
    /// A header size does not fit in 64 bits.
    #[error("delta header size overflows 64 bits")]
    HeaderOverflow,
    /// The delta was made for a base of another size.
    #[error("delta expects a base of {expected} bytes, got {actual}")]
    BaseSizeMismatch { expected: u64, actual: u64 },
    /// The declared result cannot be held in memory on this platform.
    #[error("delta result size {0} is too large")]
    ResultTooLarge(u64),
    /// The delta ends inside an instruction.
    #[error("delta instruction at byte {at} is truncated")]
    TruncatedInstruction { at: usize },
    /// Instruction byte 0, reserved by the format.
    #[error("reserved delta opcode 0 at byte {at}")]
    ReservedOpcode { at: usize },
    /// A copy reaches outside the base.
    #[error(
        "delta copy at byte {at} reads {size} bytes at offset {offset}, outside a base of {base_len} bytes"
    )]
    CopyOutOfRange { at: usize, offset: u64, size: u64, base_len: u64 },
    /// The instructions produce more than the declared result size.
    #[error("delta instruction at byte {at} writes past the declared result size {declared}")]
    ResultOverflow { at: usize, declared: u64 },
    /// The instructions produce less than the declared result size.
    #[error("delta produces {actual} bytes, but declares {declared}")]
    ResultTooShort { declared: u64, actual: u64 },
}

fn read_varint(delta: &[u8], pos: &mut usize) -> Result<u64, DeltaError> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *delta.get(*pos).ok_or(DeltaError::TruncatedHeader)?;
        *pos += 1;
        let part = u64::from(byte & 0x7f);
        if shift >= 64 || (part << shift) >> shift != part {
            return Err(DeltaError::HeaderOverflow);
        }
        value |= part << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

fn read_header(delta: &[u8]) -> Result<(u64, u64, usize), DeltaError> {
    let mut pos = 0;
    let base = read_varint(delta, &mut pos)?;
    let result = read_varint(delta, &mut pos)?;
    Ok((base, result, pos))
}

/// Reads the (base_size, result_size) header varints of a delta.
pub fn sizes(delta: &[u8]) -> Result<(u64, u64), DeltaError> {
    read_header(delta).map(|(base, result, _)| (base, result))
}

/// Makes room for `extra` more bytes, never growing capacity past `limit`.
#[inline]
fn reserve_within(out: &mut Vec<u8>, extra: usize, limit: usize) {
    if out.capacity() - out.len() < extra {
        let want = out.capacity().saturating_mul(2).max(out.len() + extra).min(limit);
        out.reserve_exact(want - out.len());
    }
}

/// Applies a delta to a base; errors (typed, `DeltaError`) on any malformed delta: never panics on hostile input.
///
/// Allocation never exceeds the declared result size, and up front it is
/// bounded by the sizes of the inputs; callers that must bound memory should
/// check [`sizes`] against their own limit first.
pub fn apply(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, DeltaError> {
    let mut out = Vec::new();
    apply_into(base, delta, &mut out)?;
    Ok(out)
}

/// [`apply`] into `out` (cleared first), reusing its allocation.
pub fn apply_into(base: &[u8], delta: &[u8], out: &mut Vec<u8>) -> Result<(), DeltaError> {
    out.clear();
    if delta.len() < MIN_DELTA_LEN {
        return Err(DeltaError::TooShort(delta.len()));
    }
    let (base_size, result_size, mut pos) = read_header(delta)?;
    if base_size != base.len() as u64 {
        return Err(DeltaError::BaseSizeMismatch { expected: base_size, actual: base.len() as u64 });
    }
    let limit = usize::try_from(result_size)
        .ok()
        .filter(|&l| l <= isize::MAX as usize)
        .ok_or(DeltaError::ResultTooLarge(result_size))?;
    let prealloc = base.len().saturating_add(delta.len()).max(PREALLOC_FLOOR).min(limit);
    out.reserve(prealloc);

    while let Some(&cmd) = delta.get(pos) {
        let at = pos;
        pos += 1;
        if cmd & 0x80 != 0 {
            let (mut offset, mut size) = (0u64, 0u64);
            for bit in 0..7 {
                if cmd & (1 << bit) != 0 {
                    let byte = u64::from(*delta.get(pos).ok_or(DeltaError::TruncatedInstruction { at })?);
                    pos += 1;
                    if bit < 4 {
                        offset |= byte << (8 * bit);
                    } else {
                        size |= byte << (8 * (bit - 4));
                    }
                }
            }
            if size == 0 {
                size = 0x10000;
            }
            let end = offset + size; // both < 2^32: cannot overflow
            if end > base.len() as u64 {
                return Err(DeltaError::CopyOutOfRange { at, offset, size, base_len: base.len() as u64 });
            }
            // end <= base.len(), so these conversions are lossless.
            let (offset, size) = (offset as usize, size as usize);
            if size > limit - out.len() {
                return Err(DeltaError::ResultOverflow { at, declared: result_size });
            }
            reserve_within(out, size, limit);
            out.extend_from_slice(&base[offset..offset + size]);
        } else if cmd != 0 {
            let size = usize::from(cmd);
            let data = delta.get(pos..pos + size).ok_or(DeltaError::TruncatedInstruction { at })?;
            pos += size;
            if size > limit - out.len() {
                return Err(DeltaError::ResultOverflow { at, declared: result_size });
            }
            reserve_within(out, size, limit);
            out.extend_from_slice(data);
        } else {
            return Err(DeltaError::ReservedOpcode { at });
        }
    }
    if out.len() != limit {
        return Err(DeltaError::ResultTooShort { declared: result_size, actual: out.len() as u64 });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator (xorshift64*), so tests need no crates.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Self {
            Rng(splitmix64(seed) | 1)
        }
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        /// Text-like bytes: few distinct values, lots of short repeats.
        fn text(&mut self, n: usize) -> Vec<u8> {
            const WORDS: [&[u8]; 8] =
                [b"fn ", b"let ", b"self", b".iter()", b"\n    ", b"return ", b"{ ", b"} "];
            let mut v = Vec::with_capacity(n + 8);
            while v.len() < n {
                if self.below(3) == 0 {
                    v.extend_from_slice(WORDS[self.below(WORDS.len())]);
                } else {
                    v.push(b'a' + self.below(26) as u8);
                }
            }
            v.truncate(n);
            v
        }
    }

    fn roundtrip(base: &[u8], target: &[u8]) -> Vec<u8> {
        let index = DeltaIndex::new(base);
        assert_eq!(index.base_len(), base.len());
        let delta = index.encode(target, usize::MAX).expect("unlimited encode");
        assert_eq!(sizes(&delta).unwrap(), (base.len() as u64, target.len() as u64));
        let rebuilt = apply(base, &delta).expect("own delta applies");
        assert!(rebuilt == target, "roundtrip mismatch");
        check_well_formed(&delta);
        delta
    }

    /// Every instruction is one git emits: no opcode 0, copies <= 0x10000
    /// with no size3 byte, inserts 1..=127.
    fn check_well_formed(delta: &[u8]) {
        let (_, _, mut pos) = read_header(delta).unwrap();
        while pos < delta.len() {
            let cmd = delta[pos];
            pos += 1;
            assert_ne!(cmd, 0);
            if cmd & 0x80 != 0 {
                assert_eq!(cmd & 0x40, 0, "no size3 byte");
                pos += (cmd & 0x3f).count_ones() as usize;
            } else {
                assert!(cmd as usize <= MAX_INSERT);
                pos += cmd as usize;
            }
        }
        assert_eq!(pos, delta.len());
    }

    /// Random edits: replacements, insertions, deletions and block moves.
    fn mutate(rng: &mut Rng, base: &[u8], edits: usize) -> Vec<u8> {
        let mut t = base.to_vec();
        for _ in 0..edits {
            let at = rng.below(t.len() + 1);
            match rng.below(4) {
                0 => {
                    let n = rng.below(40).min(t.len() - at);
                    let fresh = rng.bytes(n);
                    t[at..at + n].copy_from_slice(&fresh);
                }
                1 => {
                    let n = 1 + rng.below(200);
                    let fresh = rng.bytes(n);
                    t.splice(at..at, fresh);
                }
                2 => {
                    let n = rng.below(300).min(t.len() - at);
                    t.drain(at..at + n);
                }
                _ => {
                    let n = rng.below(2000).min(t.len() - at);
                    let moved: Vec<u8> = t.drain(at..at + n).collect();
                    let to = rng.below(t.len() + 1);
                    t.splice(to..to, moved);
                }
            }
        }
        t
    }

    #[test]
    fn rolling_hash_matches_direct_hash() {
        let data = Rng::new(99).bytes(200);
        let mut h = hash_window(&data[..WINDOW]);
        for pos in 1..=data.len() - WINDOW {
            h = hash_roll(h, data[pos - 1], data[pos + WINDOW - 1]);
            assert_eq!(h, hash_window(&data[pos..pos + WINDOW]), "pos {pos}");
        }
        let horner = data[..WINDOW]
            .iter()
            .fold(0u64, |h, &b| h.wrapping_mul(HASH_MUL).wrapping_add(BYTE_WORDS[b as usize]));
        assert_eq!(horner, hash_window(&data[..WINDOW]));
    }

    #[test]
    fn literal_budget_is_exact() {
        for budget in 0..2000 {
            let n = max_literals(budget);
            assert!(insert_cost(n) <= budget, "budget {budget}");
            assert!(insert_cost(n + 1) > budget, "budget {budget}");
        }
    }

    #[test]
    fn roundtrip_random_edits() {
        let mut rng = Rng::new(1);
        for round in 0..40 {
            let len = rng.below(50_000) + 1;
            let base = if round % 2 == 0 { rng.bytes(len) } else { rng.text(len) };
            let edits = 1 + rng.below(30);
            let target = mutate(&mut rng, &base, edits);
            let delta = roundtrip(&base, &target);
            if base.len() > 10_000 {
                assert!(
                    delta.len() < target.len() / 2,
                    "round {round}: delta {} for target {}",
                    delta.len(),
                    target.len()
                );
            }
        }
    }

    #[test]
    fn roundtrip_identical() {
        let mut rng = Rng::new(2);
        let base = rng.bytes(100_000);
        let delta = roundtrip(&base, &base);
        // Two varint headers + two copy ops of <= 7 bytes each.
        assert!(delta.len() <= 6 + 6 + 2 * 7, "delta {} bytes", delta.len());
    }

    #[test]
    fn roundtrip_single_byte_change_is_small() {
        let mut rng = Rng::new(3);
        let base = rng.text(20_000);
        let mut target = base.clone();
        target[10_000] ^= 0x55;
        let delta = roundtrip(&base, &target);
        assert!(delta.len() < 40, "delta {} bytes", delta.len());
    }

    #[test]
    fn roundtrip_insert_delete_move() {
        let mut rng = Rng::new(4);
        let base = rng.bytes(30_000);
        let mut inserted = base.clone();
        inserted.splice(12_345..12_345, rng.bytes(500));
        let d = roundtrip(&base, &inserted);
        assert!(d.len() < 600, "insert delta {}", d.len());

        let mut deleted = base.clone();
        deleted.drain(5_000..9_000);
        let d = roundtrip(&base, &deleted);
        assert!(d.len() < 40, "delete delta {}", d.len());

        let mut moved = base[20_000..].to_vec();
        moved.extend_from_slice(&base[..20_000]);
        let d = roundtrip(&base, &moved);
        assert!(d.len() < 40, "move delta {}", d.len());
    }

    #[test]
    fn empty_target() {
        let base = Rng::new(5).bytes(1000);
        assert_eq!(DeltaIndex::new(&base).encode(b"", usize::MAX), None);
        assert_eq!(DeltaIndex::new(b"").encode(b"", usize::MAX), None);
        // A bare header is a valid empty result once it is 4 bytes long
        // (base of at least 2^14 bytes), as in git.
        let big = vec![7u8; 1 << 14];
        assert_eq!(apply(&big, &[0x80, 0x80, 0x01, 0x00]), Ok(Vec::new()));
        assert_eq!(apply(&base, &[0xe8, 0x07, 0x00]), Err(DeltaError::TooShort(3)));
    }

    #[test]
    fn roundtrip_empty_and_tiny_base() {
        let mut rng = Rng::new(6);
        let target = rng.bytes(1000);
        let delta = roundtrip(b"", &target);
        assert_eq!(delta.len(), 1 + 2 + insert_cost(1000));
        roundtrip(b"short base", &target);
        roundtrip(b"short base", b"short base");
        roundtrip(&target[..15], &target[..15]);
        roundtrip(&target[..16], &target[..16]);
    }

    #[test]
    fn roundtrip_target_shorter_and_tails() {
        let mut rng = Rng::new(7);
        let base = rng.bytes(10_000);
        roundtrip(&base, &base[3_000..3_050]);
        roundtrip(&base, &base[..17]);
        roundtrip(&base, &base[base.len() - 5..]);
        roundtrip(&base, &base[1..]);
        roundtrip(&base, &base[..base.len() - 1]);
        let mut t = base[100..200].to_vec();
        t.extend_from_slice(b"tail!");
        roundtrip(&base, &t);
    }

    #[test]
    fn roundtrip_unrelated_data() {
        let mut rng = Rng::new(8);
        let base = rng.bytes(5_000);
        let target = rng.bytes(5_000);
        let delta = roundtrip(&base, &target);
        assert_eq!(delta.len(), 2 + 2 + insert_cost(5_000));
    }

    #[test]
    fn roundtrip_large_copies() {
        let mut rng = Rng::new(9);
        let base = rng.bytes(300_000);
        let mut target = base[1_000..250_000].to_vec();
        target.extend_from_slice(b"some new bytes in between");
        target.extend_from_slice(&base[..100_000]);
        let delta = roundtrip(&base, &target);
        assert!(delta.len() < 100, "delta {} bytes", delta.len());
        // 0x10000-byte copies are encoded without size bytes.
        let exact = base[..MAX_COPY * 2].to_vec();
        let d = roundtrip(&base, &exact);
        let (_, _, header) = read_header(&d).unwrap();
        assert_eq!(&d[header..], &[0x80, 0x84, 0x01]);
    }

    #[test]
    fn roundtrip_repetitive_data() {
        let zeros = vec![0u8; 200_000];
        let mut target = zeros.clone();
        target[77_777] = 1;
        let d = roundtrip(&zeros, &target);
        assert!(d.len() < 60, "delta {}", d.len());
        // A period-17 pattern fills buckets to the cap.
        let pattern: Vec<u8> = (0..500_000).map(|i| (i % 17) as u8).collect();
        let mut target = pattern[5..].to_vec();
        target.extend_from_slice(b"xyz");
        let d = roundtrip(&pattern, &target);
        assert!(d.len() < 100, "delta {}", d.len());
        let mut rng = Rng::new(10);
        let text = rng.text(100_000);
        let doubled = [&text[..], &text[..]].concat();
        roundtrip(&text, &doubled);
    }

    #[test]
    fn max_delta_size_cut_off() {
        let mut rng = Rng::new(11);
        let base = rng.bytes(20_000);
        let target = rng.bytes(20_000);
        let index = DeltaIndex::new(&base);
        assert!(index.encode(&target, 1000).is_none());
        assert!(index.encode(&target, 0).is_none());
        let full = index.encode(&target, usize::MAX).unwrap();
        assert_eq!(index.encode(&target, full.len()), Some(full.clone()));
        assert!(index.encode(&target, full.len() - 1).is_none());

        let similar = mutate(&mut rng, &base, 5);
        let full = index.encode(&similar, usize::MAX).unwrap();
        assert_eq!(index.encode(&similar, full.len()), Some(full.clone()));
        assert!(index.encode(&similar, full.len() - 1).is_none());
        assert!(index.encode(&similar, 3).is_none());

        // Any limit: a returned delta fits it and applies.
        for _ in 0..200 {
            let max = rng.below(full.len() * 2);
            if let Some(d) = index.encode(&similar, max) {
                assert!(d.len() <= max);
                assert_eq!(apply(&base, &d).unwrap(), similar);
            }
        }
    }

    #[test]
    fn index_reused_for_many_targets() {
        let mut rng = Rng::new(12);
        let base = rng.text(40_000);
        let index = DeltaIndex::new(&base);
        for _ in 0..10 {
            let target = mutate(&mut rng, &base, 10);
            let delta = index.encode(&target, usize::MAX).unwrap();
            assert_eq!(apply(&base, &delta).unwrap(), target);
        }
    }

    #[test]
    fn apply_known_delta() {
        // base "hello world", result "world, hello!"
        let base = b"hello world";
        let delta = [
            11, 13, // sizes
            0x91, 6, 5, // copy offset 6 size 5: "world"
            2, b',', b' ', // insert ", "
            0x90, 5, // copy offset 0 size 5: "hello"
            1, b'!', // insert "!"
        ];
        assert_eq!(apply(base, &delta).unwrap(), b"world, hello!");
        assert_eq!(sizes(&delta).unwrap(), (11, 13));
    }

    #[test]
    fn apply_rejects_malformed() {
        let base = b"0123456789abcdef0123456789abcdef";
        let ok = DeltaIndex::new(base).encode(base, usize::MAX).unwrap();
        assert_eq!(apply(base, &ok).unwrap(), base);

        // Truncated / overlong header varints.
        assert_eq!(sizes(&[]), Err(DeltaError::TruncatedHeader));
        assert_eq!(sizes(&[0x80]), Err(DeltaError::TruncatedHeader));
        assert_eq!(sizes(&[5]), Err(DeltaError::TruncatedHeader));
        assert_eq!(sizes(&[5, 0xff]), Err(DeltaError::TruncatedHeader));
        assert_eq!(apply(base, &[]), Err(DeltaError::TooShort(0)));
        assert_eq!(apply(base, &[0x80, 0x80, 0x80, 0x80]), Err(DeltaError::TruncatedHeader));
        let overlong = [0xff; 11];
        assert_eq!(sizes(&overlong), Err(DeltaError::HeaderOverflow));
        let mut big = vec![0xff; 9];
        big.push(0x02); // bit 64
        assert_eq!(sizes(&big), Err(DeltaError::HeaderOverflow));
        let mut max = vec![0xff; 9];
        max.push(0x01);
        max.push(0);
        assert_eq!(sizes(&max), Ok((u64::MAX, 0)));

        // Base size mismatch.
        assert!(matches!(
            apply(&base[1..], &ok),
            Err(DeltaError::BaseSizeMismatch { expected: 32, actual: 31 })
        ));

        // Huge declared result with no instructions: no big allocation, error.
        let mut huge = vec![32];
        write_varint(&mut huge, 1 << 40);
        assert!(matches!(
            apply(base, &huge),
            Err(DeltaError::ResultTooShort { .. }) | Err(DeltaError::ResultTooLarge(_))
        ));
        let mut huge = vec![32];
        write_varint(&mut huge, u64::MAX);
        assert!(apply(base, &huge).is_err());

        // Opcode 0.
        assert_eq!(apply(base, &[32, 2, 1, b'x', 0]), Err(DeltaError::ReservedOpcode { at: 4 }));
        // Truncated copy and insert.
        assert_eq!(apply(base, &[32, 4, 0x91, 1]), Err(DeltaError::TruncatedInstruction { at: 2 }));
        assert_eq!(apply(base, &[32, 4, 4, b'a', b'b']), Err(DeltaError::TruncatedInstruction { at: 2 }));
        // Copy out of the base.
        assert!(matches!(
            apply(base, &[32, 4, 0x91, 30, 4]),
            Err(DeltaError::CopyOutOfRange { offset: 30, size: 4, .. })
        ));
        assert!(matches!(
            apply(base, &[32, 4, 0x8f, 0xff, 0xff, 0xff, 0xff]),
            Err(DeltaError::CopyOutOfRange { .. })
        ));
        // Size 0 means 0x10000: out of a 32-byte base.
        assert!(matches!(
            apply(base, &[32, 4, 0x81, 0]),
            Err(DeltaError::CopyOutOfRange { size: 0x10000, .. })
        ));
        // Result longer or shorter than declared.
        assert!(matches!(
            apply(base, &[32, 4, 0x90, 5]),
            Err(DeltaError::ResultOverflow { at: 2, declared: 4 })
        ));
        assert!(matches!(apply(base, &[32, 4, 5, 1, 2, 3, 4, 5]), Err(DeltaError::ResultOverflow { .. })));
        assert_eq!(
            apply(base, &[32, 4, 0x90, 3]),
            Err(DeltaError::ResultTooShort { declared: 4, actual: 3 })
        );
    }

    #[test]
    fn apply_never_panics_on_garbage() {
        let mut rng = Rng::new(13);
        let base = rng.bytes(300);
        let index = DeltaIndex::new(&base);
        let target = mutate(&mut rng, &base, 5);
        let good = index.encode(&target, usize::MAX).unwrap();
        for _ in 0..20_000 {
            let mut d = good.clone();
            match rng.below(3) {
                0 => {
                    let i = rng.below(d.len());
                    d[i] = rng.next() as u8;
                }
                1 => d.truncate(rng.below(d.len())),
                _ => {
                    let n = rng.below(40);
                    d = rng.bytes(n);
                }
            }
            if let Ok(out) = apply(&base, &d) {
                assert_eq!(out.len() as u64, sizes(&d).unwrap().1);
            }
        }
    }
}
