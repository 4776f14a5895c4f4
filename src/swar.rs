//! Word-at-a-time byte search (SWAR): the scanners of the stores test 8
//! bytes per step instead of one, which matters because string bodies are
//! most of a secrets file. Each mask sets the high bit of every matching
//! byte; borrows can also flag bytes *above* a true match, never below, so
//! the lowest flag of a mask (or of an OR of masks) is always exact.

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
