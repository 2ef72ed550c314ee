//! Plain (uncompressed) bit sets over object numbers and pack positions: the walk's flags,
//! bitmap results and the plan's "which entries of this pack are sent" are all one of these.
//!
//! Knows nothing of objects; a bit set is a vector of 64-bit words that grows on `set`.

/// A bit set. Bit `i` is bit `i % 64` of word `i / 64`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// An empty set.
    pub fn new() -> Self {
        Bits::default()
    }

    /// An empty set with room for bits `0..n` (allocated zeroed: pages never written stay
    /// unmapped, so a big set that is only sparsely used costs little memory).
    pub fn with_len(n: usize) -> Self {
        Bits { words: vec![0; n.div_ceil(64)] }
    }

    /// A set from its words.
    pub fn from_words(words: Vec<u64>) -> Self {
        Bits { words }
    }

    /// Whether bit `i` is set.
    #[inline]
    pub fn get(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets bit `i`.
    #[inline]
    pub fn set(&mut self, i: usize) {
        let w = i / 64;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (i % 64);
    }

    /// Sets bit `i`, returning whether it was set before.
    #[inline]
    pub fn test_and_set(&mut self, i: usize) -> bool {
        let w = i / 64;
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let mask = 1 << (i % 64);
        let was = self.words[w] & mask != 0;
        self.words[w] |= mask;
        was
    }

    /// Clears bit `i`.
    #[inline]
    pub fn clear(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }

    /// `self |= other`.
    pub fn or(&mut self, other: &Bits) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// `self ^= other`.
    pub fn xor(&mut self, other: &Bits) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a ^= b;
        }
    }

    /// `self &= !other`.
    pub fn and_not(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// `self &= other`.
    pub fn and(&mut self, other: &Bits) {
        self.words.truncate(other.words.len());
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// Number of set bits.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Number of set bits in `from..to`.
    pub fn count_range(&self, from: usize, to: usize) -> usize {
        if from >= to {
            return 0;
        }
        let (fw, tw) = (from / 64, (to - 1) / 64);
        let mut n = 0;
        for w in fw..=tw.min(self.words.len().saturating_sub(1)) {
            let mut word = self.words[w];
            if w == fw {
                word &= u64::MAX << (from % 64);
            }
            if w == tw && !to.is_multiple_of(64) {
                word &= (1u64 << (to % 64)) - 1;
            }
            n += word.count_ones() as usize;
        }
        n
    }

    /// The words (bit `i` is bit `i % 64` of word `i / 64`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Set bits in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.iter_from(0)
    }

    /// Set bits at or after `start`, in increasing order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = usize> + '_ {
        let first = start / 64;
        self.words.iter().enumerate().skip(first).flat_map(move |(wi, &w)| {
            let mut w = if wi == first { w & (u64::MAX << (start % 64)) } else { w };
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }

    /// The number of leading positions `0..n` that are all set.
    pub fn leading_ones(&self) -> usize {
        let mut n = 0;
        for &w in &self.words {
            if w == u64::MAX {
                n += 64;
            } else {
                return n + w.trailing_ones() as usize;
            }
        }
        n
    }

    /// Whether no bit is set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    /// Drops the capacity beyond the last set bit.
    pub fn shrink(&mut self) {
        let keep = self.words.iter().rposition(|&w| w != 0).map_or(0, |i| i + 1);
        self.words.truncate(keep);
        self.words.shrink_to_fit();
    }
}

/// Constant-time "how many set bits come before bit `i`" over a [`Bits`] that no longer
/// changes: a running count per 512 bits (one `u32` per eight words).
#[derive(Debug, Default)]
pub struct Rank {
    blocks: Vec<u32>,
}

impl Rank {
    /// The counts for `bits`.
    pub fn new(bits: &Bits) -> Self {
        let mut blocks = Vec::with_capacity(bits.words.len() / 8 + 1);
        let mut total = 0u32;
        for chunk in bits.words.chunks(8) {
            blocks.push(total);
            total += chunk.iter().map(|w| w.count_ones()).sum::<u32>();
        }
        blocks.push(total);
        Rank { blocks }
    }

    /// The number of set bits of `bits` (the set this was made for) before bit `i`.
    pub fn rank(&self, bits: &Bits, i: usize) -> usize {
        let w = i / 64;
        let block = w / 8;
        let Some(&base) = self.blocks.get(block) else {
            return self.blocks.last().copied().unwrap_or(0) as usize;
        };
        let mut n = base as usize;
        for word in &bits.words[block * 8..w.min(bits.words.len())] {
            n += word.count_ones() as usize;
        }
        if let Some(&word) = bits.words.get(w) {
            n += (word & ((1u64 << (i % 64)) - 1)).count_ones() as usize;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut a = Bits::new();
        a.set(1);
        a.set(100);
        let mut b = Bits::new();
        b.set(100);
        b.set(300);
        let mut c = a.clone();
        c.or(&b);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![1, 100, 300]);
        c.and_not(&a);
        assert_eq!(c.iter().collect::<Vec<_>>(), vec![300]);
        a.xor(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 300]);
        assert!(!a.test_and_set(5));
        assert!(a.test_and_set(5));
        a.clear(5);
        assert!(!a.get(5));
    }

    #[test]
    fn iterates_from_and_counts_ranges() {
        let mut a = Bits::with_len(1000);
        for i in [0, 63, 64, 65, 500, 999] {
            a.set(i);
        }
        assert_eq!(a.iter_from(64).collect::<Vec<_>>(), vec![64, 65, 500, 999]);
        assert_eq!(a.iter_from(66).collect::<Vec<_>>(), vec![500, 999]);
        assert_eq!(a.count_range(0, 64), 2);
        assert_eq!(a.count_range(63, 66), 3);
        assert_eq!(a.count_range(66, 1000), 2);
        assert_eq!(a.count_range(500, 500), 0);
        let r = Rank::new(&a);
        for i in [0, 1, 63, 64, 65, 66, 499, 500, 501, 999, 1000] {
            assert_eq!(r.rank(&a, i), a.count_range(0, i), "rank of {i}");
        }
    }
}
