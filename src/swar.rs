//! Many-bytes-at-a-time byte search: the scanners of the stores test 16
//! (SSE2, x86_64) or 8 (SWAR, elsewhere and for tails) bytes per step
//! instead of one, which matters because string bodies are most of a
//! secrets file. Each SWAR mask sets the high bit of every matching byte;
//! borrows can also flag bytes *above* a true match, never below, so the
//! lowest flag of a mask (or of an OR of masks) is always exact.

pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;

/// Flags the bytes of `x` equal to `b`.
#[inline(always)]
pub(crate) fn eq_mask(x: u64, b: u8) -> u64 {
    let y = x ^ (LO * u64::from(b));
    y.wrapping_sub(LO) & !y & HI
}

/// Flags the bytes of `x` below `n` (`n` ≤ 0x80).
#[inline(always)]
pub(crate) fn lt_mask(x: u64, n: u8) -> u64 {
    x.wrapping_sub(LO * u64::from(n)) & !x & HI
}

/// Offset of the first byte in `src[from..]` where `stop(word)` flags one,
/// or `src.len()`; `is_stop` is the same test for one byte (the tail).
#[inline(always)]
pub(crate) fn scan(src: &[u8], from: usize, stop: impl Fn(u64) -> u64, is_stop: impl Fn(u8) -> bool) -> usize {
    let rest = src.get(from..).unwrap_or_default();
    let mut chunks = rest.chunks_exact(8);
    let mut i = from;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let m = stop(u64::from_le_bytes(w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    for &b in chunks.remainder() {
        if is_stop(b) {
            return i;
        }
        i += 1;
    }
    i
}

/// The bytes a [`scan_for`] stops at: those equal to one of `eq`, those
/// below `below` (0: none), and, if `high`, those from 0x80 on.
#[derive(Clone, Copy)]
pub(crate) struct Stops<const N: usize> {
    pub eq: [u8; N],
    /// At most 0x80.
    pub below: u8,
    pub high: bool,
}

impl<const N: usize> Stops<N> {
    #[inline(always)]
    pub(crate) fn matches(&self, b: u8) -> bool {
        b < self.below || (self.high && b >= 0x80) || self.eq.contains(&b)
    }

    #[inline(always)]
    fn word_mask(&self, w: u64) -> u64 {
        let mut m = if self.below > 0 { lt_mask(w, self.below) } else { 0 };
        if self.high {
            m |= w & HI;
        }
        for &b in &self.eq {
            m |= eq_mask(w, b);
        }
        m
    }
}

/// Offset of the first byte of `src[from..]` in `stops`, or `src.len()`.
#[inline(always)]
pub(crate) fn scan_for<const N: usize>(src: &[u8], from: usize, stops: Stops<N>) -> usize {
    #[cfg(target_arch = "x86_64")]
    let from = scan_sse2(src, from, stops);
    scan(src, from, |w| stops.word_mask(w), |b| stops.matches(b))
}

/// The 16-byte steps of [`scan_for`]: where the first stop is, or where
/// fewer than 16 bytes are left.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn scan_sse2<const N: usize>(src: &[u8], from: usize, stops: Stops<N>) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut i = from;
    while let Some(chunk) = src.get(i..i + 16) {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the load reads
        // the 16 bytes of `chunk`.
        let bits = unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast());
            let mut m = _mm_set1_epi8(0);
            if stops.below > 0 {
                // x < below  <=>  min(x, below - 1) == x (unsigned).
                let limit = _mm_set1_epi8((stops.below - 1) as i8);
                m = _mm_cmpeq_epi8(_mm_min_epu8(x, limit), x);
            }
            for &b in &stops.eq {
                m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8)));
            }
            // The sign bits of `x` itself are the bytes from 0x80 on.
            let high = if stops.high { _mm_movemask_epi8(x) } else { 0 };
            _mm_movemask_epi8(m) | high
        };
        if bits != 0 {
            return i + bits.trailing_zeros() as usize;
        }
        i += 16;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_for_matches_a_byte_loop() {
        let mut rng = crate::testutil::Rng(0xC0FFEE);
        let stops = [
            Stops {
                eq: [b'"', b'\\', 0xE2],
                below: 0x20,
                high: false,
            },
            Stops {
                eq: [b':', 0x7F, b'#'],
                below: 0x21,
                high: true,
            },
            Stops {
                eq: [b'a', b'z', 0],
                below: 0,
                high: false,
            },
            Stops {
                eq: [0xFF, 0x80, 0x7F],
                below: 0x80,
                high: false,
            },
        ];
        for round in 0..40_000 {
            let len = rng.below(if round % 2 == 0 { 24 } else { 200 });
            let src: Vec<u8> = (0..len)
                .map(|_| match rng.below(40) {
                    0 => rng.below(256) as u8,
                    1 => [0x00, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0xE2, 0xFF][rng.below(9)],
                    2 => [b'"', b'\\', b':', b'#', b'a', b'z'][rng.below(6)],
                    _ => b'A' + rng.below(26) as u8,
                })
                .collect();
            let from = rng.below(len + 1);
            for s in &stops {
                let slow = (from..len).find(|&i| s.matches(src[i])).unwrap_or(len);
                assert_eq!(scan_for(&src, from, *s), slow, "{src:?} from {from}");
            }
        }
    }
}
