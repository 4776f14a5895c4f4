//! Byte and substring searches with SSE2, which every x86-64 CPU has.
//!
//! The `memchr` crate picks AVX2 at run time through std's feature
//! detection, whose first use costs a run about ten trapped `cpuid`
//! instructions in a virtual machine (see [`crate::cpu`]). The searches
//! here are over lines and short values, where 16 bytes a step is as fast.
//! Elsewhere than x86-64 they are the `memchr` crate's.

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// The bit mask of the bytes of the 16 at `at` equal to `v`'s.
    ///
    /// # Safety
    /// `at..at + 16` must be within `hay`.
    #[inline(always)]
    unsafe fn mask(hay: &[u8], at: usize, v: __m128i) -> u32 {
        _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(hay.as_ptr().add(at).cast()), v)) as u32
    }

    #[inline(always)]
    fn splat(b: u8) -> __m128i {
        // SAFETY: SSE2 is part of x86-64.
        unsafe { _mm_set1_epi8(b as i8) }
    }

    pub fn byte(needle: u8, hay: &[u8]) -> Option<usize> {
        let v = splat(needle);
        let mut at = 0;
        while at + 16 <= hay.len() {
            // SAFETY: `at + 16 <= hay.len()`.
            let m = unsafe { mask(hay, at, v) };
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            at += 16;
        }
        hay[at..].iter().position(|&b| b == needle).map(|i| at + i)
    }

    pub fn either(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
        let (va, vb) = (splat(a), splat(b));
        let mut at = 0;
        while at + 16 <= hay.len() {
            // SAFETY: `at + 16 <= hay.len()`.
            let m = unsafe { mask(hay, at, va) | mask(hay, at, vb) };
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            at += 16;
        }
        hay[at..].iter().position(|&c| c == a || c == b).map(|i| at + i)
    }

    pub fn byte_rev(needle: u8, hay: &[u8]) -> Option<usize> {
        let v = splat(needle);
        let mut end = hay.len();
        while end >= 16 {
            // SAFETY: `end - 16 + 16 <= hay.len()`.
            let m = unsafe { mask(hay, end - 16, v) };
            if m != 0 {
                return Some(end - 16 + 31 - m.leading_zeros() as usize);
            }
            end -= 16;
        }
        hay[..end].iter().rposition(|&b| b == needle)
    }

    pub fn count(needle: u8, hay: &[u8]) -> usize {
        let v = splat(needle);
        let mut n = 0;
        let mut at = 0;
        while at + 16 <= hay.len() {
            // SAFETY: `at + 16 <= hay.len()`.
            n += unsafe { mask(hay, at, v) }.count_ones() as usize;
            at += 16;
        }
        n + hay[at..].iter().filter(|&&b| b == needle).count()
    }

    /// Where `needle` (two bytes or more) starts in `hay`: the places whose
    /// first and last bytes match, 16 at a time, then the whole compared.
    pub fn substring(hay: &[u8], needle: &[u8]) -> Option<usize> {
        let last = needle.len() - 1;
        let (first_v, last_v) = (splat(needle[0]), splat(needle[last]));
        let mut at = 0;
        while at + last + 16 <= hay.len() {
            // SAFETY: `at + last + 16 <= hay.len()`.
            let mut m = unsafe { mask(hay, at, first_v) & mask(hay, at + last, last_v) };
            while m != 0 {
                let start = at + m.trailing_zeros() as usize;
                if hay[start..start + needle.len()] == *needle {
                    return Some(start);
                }
                m &= m - 1;
            }
            at += 16;
        }
        hay.get(at..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| at + i)
    }

    /// Where the last `needle` (two bytes or more) starts in `hay`.
    pub fn substring_rev(hay: &[u8], needle: &[u8]) -> Option<usize> {
        let last = needle.len() - 1;
        let (first_v, last_v) = (splat(needle[0]), splat(needle[last]));
        // Candidates start at or after `base` and before `end`.
        let mut end = hay.len().checked_sub(last)?;
        while end >= 16 {
            let base = end - 16;
            // SAFETY: `base + last + 16 = end + last <= hay.len()`.
            let mut m = unsafe { mask(hay, base, first_v) & mask(hay, base + last, last_v) };
            while m != 0 {
                let start = base + 31 - m.leading_zeros() as usize;
                if hay[start..start + needle.len()] == *needle {
                    return Some(start);
                }
                m &= !(1 << (start - base));
            }
            end = base;
        }
        hay[..end + last].windows(needle.len()).rposition(|w| w == needle)
    }
}

/// The first `needle` in `hay`, as `memchr::memchr`.
#[inline]
pub fn byte(needle: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return sse2::byte(needle, hay);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memchr(needle, hay);
}

/// The first `a` or `b` in `hay`, as `memchr::memchr2`.
#[inline]
pub fn either(a: u8, b: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return sse2::either(a, b, hay);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memchr2(a, b, hay);
}

/// The last `needle` in `hay`, as `memchr::memrchr`.
#[inline]
pub fn byte_rev(needle: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return sse2::byte_rev(needle, hay);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memrchr(needle, hay);
}

/// How many `needle`s `hay` holds.
pub fn count(needle: u8, hay: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    return sse2::count(needle, hay);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memchr_iter(needle, hay).count();
}

/// Where the first `needle` starts in `hay`, as `memchr::memmem::find`.
pub fn substring(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => Some(0),
        [b] => byte(*b, hay),
        #[cfg(target_arch = "x86_64")]
        _ => sse2::substring(hay, needle),
        #[cfg(not(target_arch = "x86_64"))]
        _ => memchr::memmem::find(hay, needle),
    }
}

/// Where the last `needle` starts in `hay`, as `memchr::memmem::rfind`.
pub fn substring_rev(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => Some(hay.len()),
        [b] => byte_rev(*b, hay),
        #[cfg(target_arch = "x86_64")]
        _ => sse2::substring_rev(hay, needle),
        #[cfg(not(target_arch = "x86_64"))]
        _ => memchr::memmem::rfind(hay, needle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every search against the `memchr` crate's, on random text over a
    /// small alphabet (many matches and near misses) at every length up
    /// to 100 and some longer.
    #[test]
    fn agrees_with_memchr() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n) as u8
        };
        let alphabet = b"ab\n=s";
        let mut lengths: Vec<usize> = (0..100).collect();
        lengths.extend([255, 256, 257, 1000, 4099]);
        for len in lengths {
            for _ in 0..20 {
                let hay: Vec<u8> = (0..len).map(|_| alphabet[usize::from(next(5))]).collect();
                for &b in alphabet.iter().chain(b"x") {
                    assert_eq!(byte(b, &hay), memchr::memchr(b, &hay), "{hay:?} {b}");
                    assert_eq!(byte_rev(b, &hay), memchr::memrchr(b, &hay), "{hay:?} {b}");
                    assert_eq!(count(b, &hay), memchr::memchr_iter(b, &hay).count());
                    assert_eq!(either(b, b'=', &hay), memchr::memchr2(b, b'=', &hay));
                }
                for needle in [
                    &b""[..],
                    b"a",
                    b"\ns",
                    b"\nsa",
                    b"ab=",
                    b"sss",
                    b"\nsops_",
                    b"x",
                    b"a\nx",
                ] {
                    assert_eq!(
                        substring(&hay, needle),
                        memchr::memmem::find(&hay, needle),
                        "{hay:?} {needle:?}"
                    );
                    assert_eq!(
                        substring_rev(&hay, needle),
                        memchr::memmem::rfind(&hay, needle),
                        "{hay:?} {needle:?}"
                    );
                }
            }
        }
    }
}
