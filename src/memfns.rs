//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp` for the static musl
//! build, in place of musl's (`src/main.rs` exports them under the C
//! names there; on other targets they are only compiled and tested).
//!
//! musl's x86_64 `memcpy` copies with `rep movsq` whatever the size and
//! moves the ragged ends one `movsb` at a time; its `memcmp` compares a
//! byte per step. A medium dotenv encrypt makes about 72k copies, three
//! in four of 16 bytes or less (IVs, tags, GHASH blocks, short values),
//! and spent a fifth of its CPU time in musl's `memcpy`. These copy short
//! lengths with two overlapping loads and stores, as glibc's do, and
//! leave long ones to `rep movsb` (fast on CPUs with ERMS, which every
//! x86_64 CPU of the last decade has).
//!
//! The compiler turns a variable-length copy loop, or
//! `ptr::copy_nonoverlapping` with a length it does not know, into a call
//! to `memcpy`, which here would call itself. So everything below moves
//! fixed-size integers (`read_unaligned`/`write_unaligned` of `u64`,
//! `u128`) or uses `rep movsb`/`rep stosb` directly; the loops that remain
//! compare or store blocks of 32 bytes, not bytes.

use core::arch::asm;
use core::ptr::{read_unaligned, write_unaligned};

/// Copy `n` bytes, `size_of::<T>()` <= n <= 2 * `size_of::<T>()`, as a
/// head and a tail word that may overlap; both are loaded before either is
/// stored, so overlapping ranges are fine.
#[inline(always)]
unsafe fn copy_two<T: Copy>(dst: *mut u8, src: *const u8, n: usize) {
    let tail = n - core::mem::size_of::<T>();
    let a = read_unaligned(src.cast::<T>());
    let b = read_unaligned(src.add(tail).cast::<T>());
    write_unaligned(dst.cast::<T>(), a);
    write_unaligned(dst.add(tail).cast::<T>(), b);
}

/// Copy `n` <= 32 bytes, forwards or backwards alike.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    if n >= 16 {
        copy_two::<u128>(dst, src, n);
    } else if n >= 8 {
        copy_two::<u64>(dst, src, n);
    } else if n >= 4 {
        copy_two::<u32>(dst, src, n);
    } else if n >= 2 {
        copy_two::<u16>(dst, src, n);
    } else if n == 1 {
        *dst = *src;
    }
}

/// Copy 33..=64 bytes, overlap allowed (all loads first).
#[inline(always)]
unsafe fn copy_medium(dst: *mut u8, src: *const u8, n: usize) {
    let a = read_unaligned(src.cast::<u128>());
    let b = read_unaligned(src.add(16).cast::<u128>());
    let c = read_unaligned(src.add(n - 32).cast::<u128>());
    let d = read_unaligned(src.add(n - 16).cast::<u128>());
    write_unaligned(dst.cast::<u128>(), a);
    write_unaligned(dst.add(16).cast::<u128>(), b);
    write_unaligned(dst.add(n - 32).cast::<u128>(), c);
    write_unaligned(dst.add(n - 16).cast::<u128>(), d);
}

#[inline(always)]
unsafe fn rep_movsb_forward(dst: *mut u8, src: *const u8, n: usize) {
    asm!(
        "rep movsb",
        inout("rcx") n => _,
        inout("rdi") dst => _,
        inout("rsi") src => _,
        options(nostack, preserves_flags)
    );
}

/// C's `memcpy`.
///
/// # Safety
/// `src` and `dst` valid for `n` bytes and not overlapping.
#[inline]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 32 {
        copy_small(dst, src, n);
    } else if n <= 64 {
        copy_medium(dst, src, n);
    } else {
        rep_movsb_forward(dst, src, n);
    }
}

/// C's `memmove`.
///
/// # Safety
/// `src` and `dst` valid for `n` bytes; they may overlap.
#[inline]
pub unsafe fn copy_overlapping(dst: *mut u8, src: *const u8, n: usize) {
    if n <= 32 {
        copy_small(dst, src, n);
    } else if n <= 64 {
        copy_medium(dst, src, n);
    } else if (dst as usize).wrapping_sub(src as usize) >= n {
        // `dst` is before `src` or past its end: a forward copy never
        // overwrites a byte it has yet to read.
        rep_movsb_forward(dst, src, n);
    } else {
        // `dst` inside `src`'s range, after its start: copy backwards in
        // 16-byte blocks, the first (lowest) block loaded before any store
        // and written last.
        let head = read_unaligned(src.cast::<u128>());
        let mut end = n;
        while end > 16 {
            end -= 16;
            let block = read_unaligned(src.add(end).cast::<u128>());
            write_unaligned(dst.add(end).cast::<u128>(), block);
        }
        write_unaligned(dst.cast::<u128>(), head);
    }
}

/// C's `memset`.
///
/// # Safety
/// `dst` valid for `n` bytes.
#[inline]
pub unsafe fn fill(dst: *mut u8, byte: u8, n: usize) {
    if n <= 32 {
        let w8 = u64::from(byte) * 0x0101_0101_0101_0101;
        if n >= 16 {
            let w = u128::from(w8) | (u128::from(w8) << 64);
            write_unaligned(dst.cast::<u128>(), w);
            write_unaligned(dst.add(n - 16).cast::<u128>(), w);
        } else if n >= 8 {
            write_unaligned(dst.cast::<u64>(), w8);
            write_unaligned(dst.add(n - 8).cast::<u64>(), w8);
        } else if n >= 4 {
            write_unaligned(dst.cast::<u32>(), w8 as u32);
            write_unaligned(dst.add(n - 4).cast::<u32>(), w8 as u32);
        } else if n >= 2 {
            write_unaligned(dst.cast::<u16>(), w8 as u16);
            write_unaligned(dst.add(n - 2).cast::<u16>(), w8 as u16);
        } else if n == 1 {
            *dst = byte;
        }
    } else {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            in("al") byte,
            options(nostack, preserves_flags)
        );
    }
}

/// C's `memcmp`: negative, zero or positive as `a` sorts before, equal to
/// or after `b`, byte by byte.
///
/// # Safety
/// `a` and `b` valid for `n` bytes.
#[inline]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i + 8 <= n {
        let x = read_unaligned(a.add(i).cast::<u64>());
        let y = read_unaligned(b.add(i).cast::<u64>());
        if x != y {
            // Big-endian order compares as the bytes do, first byte first.
            return if x.swap_bytes() < y.swap_bytes() { -1 } else { 1 };
        }
        i += 8;
    }
    while i < n {
        let (x, y) = (*a.add(i), *b.add(i));
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// C's `bcmp`: zero if equal, not zero if not.
///
/// # Safety
/// `a` and `b` valid for `n` bytes.
#[inline]
pub unsafe fn differ(a: *const u8, b: *const u8, n: usize) -> i32 {
    if n < 8 {
        let mut diff = 0u8;
        for i in 0..n {
            diff |= *a.add(i) ^ *b.add(i);
        }
        return i32::from(diff);
    }
    // Overlapping last word: no byte loop for the tail.
    let mut i = 0;
    while i + 8 < n {
        if read_unaligned(a.add(i).cast::<u64>()) != read_unaligned(b.add(i).cast::<u64>()) {
            return 1;
        }
        i += 8;
    }
    i32::from(read_unaligned(a.add(n - 8).cast::<u64>()) != read_unaligned(b.add(n - 8).cast::<u64>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ from position to position and from call to call.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn copies_every_length_and_alignment() {
        for n in 0..300 {
            for (src_off, dst_off) in [(0, 0), (1, 0), (0, 3), (7, 5)] {
                let src = pattern(n + src_off, 1);
                let mut dst = vec![0xAA; n + dst_off + 8];
                unsafe { copy(dst.as_mut_ptr().add(dst_off), src.as_ptr().add(src_off), n) };
                assert_eq!(&dst[dst_off..dst_off + n], &src[src_off..], "length {n}");
                assert!(dst[..dst_off].iter().all(|&b| b == 0xAA), "before, length {n}");
                assert!(dst[dst_off + n..].iter().all(|&b| b == 0xAA), "after, length {n}");
            }
        }
    }

    #[test]
    fn moves_overlapping_ranges_both_ways() {
        for n in 0..300 {
            for shift in [1usize, 2, 15, 16, 17, 63, 64, 65, 200] {
                let original = pattern(n + shift, 3);
                // Forwards: the destination after the source.
                let mut buf = original.clone();
                unsafe { copy_overlapping(buf.as_mut_ptr().add(shift), buf.as_ptr(), n) };
                assert_eq!(&buf[shift..], &original[..n], "up by {shift}, length {n}");
                assert_eq!(&buf[..shift], &original[..shift]);
                // Backwards: the destination before the source.
                let mut buf = original.clone();
                unsafe { copy_overlapping(buf.as_mut_ptr(), buf.as_ptr().add(shift), n) };
                assert_eq!(&buf[..n], &original[shift..], "down by {shift}, length {n}");
                assert_eq!(&buf[n..], &original[n..]);
            }
        }
    }

    #[test]
    fn fills_every_length() {
        for n in 0..300 {
            for off in [0, 3] {
                let mut buf = vec![0x55; n + off + 8];
                unsafe { fill(buf.as_mut_ptr().add(off), 0xC3, n) };
                assert!(buf[off..off + n].iter().all(|&b| b == 0xC3), "length {n}");
                assert!(
                    buf[..off].iter().chain(&buf[off + n..]).all(|&b| b == 0x55),
                    "length {n}"
                );
            }
        }
    }

    #[test]
    fn compares_as_bytes_do() {
        for n in 0..80 {
            let a = pattern(n, 9);
            assert_eq!(unsafe { compare(a.as_ptr(), a.as_ptr(), n) }, 0);
            assert_eq!(unsafe { differ(a.as_ptr(), a.clone().as_ptr(), n) }, 0);
            for at in 0..n {
                for delta in [1u8, 0x80, 0xFF] {
                    let mut b = a.clone();
                    b[at] = b[at].wrapping_add(delta);
                    let want = a.cmp(&b) as i32;
                    let got = unsafe { compare(a.as_ptr(), b.as_ptr(), n) }.signum();
                    assert_eq!(got, want, "length {n}, byte {at}, +{delta}");
                    assert_ne!(unsafe { differ(a.as_ptr(), b.as_ptr(), n) }, 0, "length {n}, byte {at}");
                }
                // The first difference decides, whatever the later ones say.
                for later in at + 1..n {
                    let (mut low, mut high) = (vec![0x80; n], vec![0x80; n]);
                    low[at] = 0x10;
                    low[later] = 0xF0;
                    high[later] = 0x01;
                    let got = unsafe { compare(low.as_ptr(), high.as_ptr(), n) };
                    assert!(got < 0, "length {n}, bytes {at} and {later}");
                    assert!(unsafe { compare(high.as_ptr(), low.as_ptr(), n) } > 0);
                }
            }
        }
    }
}
