//! EWAH-compressed bitmaps as git and JGit serialize them (the `.bitmap` format's Appendix A),
//! decoded into plain word vectors, and the plain [`Bits`] set the bitmap code computes with.
//!
//! Decoding is bounded by the bitmap's declared size, so a corrupt run length cannot make it
//! allocate more than the bitmap claims to hold.

/// Errors decoding an EWAH bitmap.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EwahError {
    #[error("EWAH bitmap truncated")]
    Truncated,
    #[error("EWAH bitmap longer than its declared {0} bits")]
    TooLong(u32),
}

fn be32(data: &[u8], at: usize) -> Result<u32, EwahError> {
    data.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or(EwahError::Truncated)
}

/// The serialized length of the EWAH bitmap starting at `data[0]`.
pub fn serialized_len(data: &[u8]) -> Result<usize, EwahError> {
    let words = be32(data, 4)? as usize;
    let len = 8 + words.checked_mul(8).ok_or(EwahError::Truncated)? + 4;
    if data.len() < len {
        return Err(EwahError::Truncated);
    }
    Ok(len)
}

/// Decodes the EWAH bitmap at the start of `data`.
pub fn decode(data: &[u8]) -> Result<Bits, EwahError> {
    let len = serialized_len(data)?;
    let bits = be32(data, 0)?;
    let nwords = (len - 12) / 8;
    let max_words = (bits as usize).div_ceil(64);
    let word = |i: usize| {
        let at = 8 + i * 8;
        u64::from_be_bytes(data[at..at + 8].try_into().unwrap_or([0; 8]))
    };
    let mut out: Vec<u64> = Vec::with_capacity(max_words);
    let mut i = 0;
    while i < nwords {
        let rlw = word(i);
        i += 1;
        let fill = if rlw & 1 != 0 { u64::MAX } else { 0 };
        let run = ((rlw >> 1) & 0xffff_ffff) as usize;
        let literals = (rlw >> 33) as usize;
        if out.len() + run > max_words || out.len() + run + literals > max_words {
            return Err(EwahError::TooLong(bits));
        }
        if i + literals > nwords {
            return Err(EwahError::Truncated);
        }
        out.resize(out.len() + run, fill);
        out.extend((i..i + literals).map(word));
        i += literals;
    }
    // Bits past the declared size are not part of the set.
    if bits % 64 != 0 {
        if let Some(last) = out.get_mut(max_words.wrapping_sub(1)) {
            *last &= (1u64 << (bits % 64)) - 1;
        }
    }
    Ok(Bits::from_words(out))
}

pub use crate::bits::Bits;

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(bits: u32, words: &[u64]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&bits.to_be_bytes());
        v.extend_from_slice(&(words.len() as u32).to_be_bytes());
        for w in words {
            v.extend_from_slice(&w.to_be_bytes());
        }
        v.extend_from_slice(&0u32.to_be_bytes());
        v
    }

    fn rlw(bit: bool, run: u64, literals: u64) -> u64 {
        (bit as u64) | (run << 1) | (literals << 33)
    }

    #[test]
    fn decodes_runs_and_literals() {
        // 2 words of ones, then one literal 0b101, 200 bits declared.
        let data = ser(200, &[rlw(true, 2, 1), 0b101]);
        let b = decode(&data).unwrap();
        assert!(b.get(0) && b.get(127) && b.get(128) && !b.get(129) && b.get(130));
        assert_eq!(b.count(), 130);
        assert_eq!(b.leading_ones(), 129);
        assert_eq!(serialized_len(&data).unwrap(), data.len());
        assert_eq!(b.iter().take(3).collect::<Vec<_>>(), vec![0, 1, 2]);
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        assert_eq!(decode(&ser(64, &[rlw(true, 5, 0)])), Err(EwahError::TooLong(64)));
        assert_eq!(decode(&ser(640, &[rlw(false, 0, 3), 1])), Err(EwahError::Truncated));
        assert_eq!(decode(&[0, 0, 0, 1, 0, 0, 0, 9]), Err(EwahError::Truncated));
    }

    #[test]
    fn masks_bits_past_the_end() {
        let b = decode(&ser(3, &[rlw(false, 0, 1), u64::MAX])).unwrap();
        assert_eq!(b.count(), 3);
    }
}
