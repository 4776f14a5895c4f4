//! Room for large buffers, backed by transparent huge pages where the
//! kernel offers them.
//!
//! A buffer of megabytes is touched once, front to back. With 4 KiB pages
//! that is one page fault per 4 KiB, about 2 µs each on the benchmark VM
//! (the zeroing is a tenth of it), against one fault and one 2 MiB clear
//! per huge page. Linux in THP `madvise` mode, a common default, only uses
//! huge pages for ranges marked `MADV_HUGEPAGE`, and only for 2 MiB blocks
//! that are aligned and have no small page yet. A block from glibc starts
//! at an arbitrary page, just after glibc's own header, so a buffer's
//! first megabytes stayed on small pages however it was advised. The
//! binary therefore allocates through [`Allocator`], which gives every
//! block of [`HUGE_PAGE`] bytes or more an aligned, advised mapping of its
//! own; [`with_capacity`] and [`reserve`] only make sure a large buffer is
//! taken in one step.
//!
//! A medium dotenv encrypt took 970 page faults and 1.5–2 ms of CPU in them
//! before, 360 after (its output, held until the MAC is known, now sits on
//! two huge pages): × 0.87–0.89 wall. A huge page is not always cheaper:
//! this VM hands free 2 MiB blocks back to its host after a few seconds,
//! and the first touch of one the host took back is slow. Touching 4 MiB
//! of fresh huge pages after 3 s idle took 0.3–0.4 ms in four runs of five
//! and 4.2 ms in one (2.0–2.3 ms on 4 KiB pages).

use std::alloc::{GlobalAlloc, Layout};
use std::collections::TryReserveError;

// `Small`, where ordinary blocks come from: the C library's `malloc`,
// except on musl, whose allocator maps and unmaps every block over 128 KiB
// (fresh zeroed pages for each piece's buffers, and the other thread's
// page faults waiting on the address-space lock) and serialises all
// threads on one lock: a large YAML encrypt took three times as long as
// with glibc's. mimalloc (per-thread heaps) took 0.72 of glibc's time.
#[cfg(target_env = "musl")]
use mimalloc::MiMalloc as Small;
#[cfg(not(target_env = "musl"))]
use std::alloc::System as Small;

/// mimalloc's options for a short-lived process, set first thing in
/// `main` (its arena is reserved at the first allocation, after that):
///
/// - no purging: by default mimalloc hands freed pages back to the kernel
///   (`madvise`) after 10 ms and at exit, about 35 calls at the end of a
///   medium encrypt; the process is about to exit, so they are only cost;
/// - no `MADV_HUGEPAGE` on its 1 GiB arena: each 2 MiB of small blocks
///   would be a huge page cleared on first touch (measured with mimalloc
///   3: a tiny decrypt took 1.8 times as long, a medium dotenv encrypt 1.3
///   times). Buffers of [`HUGE_PAGE`] and more still get huge pages here,
///   from `mapped`.
#[cfg(target_env = "musl")]
pub fn configure_mimalloc() {
    // The option numbers of mimalloc 2's `mi_option_t`.
    const PURGE_DELAY: libc::c_int = 15;
    const ALLOW_THP: libc::c_int = 37;
    extern "C" {
        fn mi_option_set(option: libc::c_int, value: libc::c_long);
    }
    // SAFETY: sets two of mimalloc's options, plain integers it reads with
    // atomic loads.
    unsafe {
        mi_option_set(PURGE_DELAY, -1);
        mi_option_set(ALLOW_THP, 0);
    }
}

/// Blocks of this size and more are mapped on their own, on this boundary.
pub const HUGE_PAGE: usize = 2 << 20;

/// An empty buffer with room for `bytes` (only address space until
/// written). Room for more than half a huge page is rounded up to whole
/// ones, which [`Allocator`] maps on their own.
pub fn with_capacity(bytes: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let bytes = if bytes > HUGE_PAGE / 2 {
        bytes.next_multiple_of(HUGE_PAGE)
    } else {
        bytes
    };
    // Refused address space: the buffer grows as it is written instead.
    let _ = reserve(&mut buf, bytes);
    buf
}

/// Reserve room for `additional` more bytes in `buf` at once.
pub fn reserve(buf: &mut Vec<u8>, additional: usize) -> Result<(), TryReserveError> {
    buf.try_reserve(additional)
}

/// Read all of `reader` into `buf`, sized for `size_hint` bytes up front.
pub fn read_to_end(reader: &mut impl std::io::Read, buf: &mut Vec<u8>, size_hint: usize) -> std::io::Result<usize> {
    // Room for one byte more, so the read that sees the end of the file
    // does not have to grow the buffer.
    reserve(buf, size_hint.saturating_add(1)).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
    reader.read_to_end(buf)
}

/// The binary's global allocator: [`Small`] (glibc's `malloc`, or
/// mimalloc on musl) for ordinary blocks; on Linux, blocks of [`HUGE_PAGE`] bytes or more get a mapping
/// of their own that starts on a 2 MiB boundary, is marked for huge pages
/// before it is touched, and goes straight back to the kernel (which
/// clears pages before it hands them out again) when freed.
pub struct Allocator;

// SAFETY: every block is either `Small`'s, made with the layout asked
// for, or a mapping of its own made and unmade in `mapped`. Which of the
// two is decided by the layout alone, and `dealloc` and `realloc` are
// given the layout the block was made with, so each block goes back to
// the side that made it.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout) {
            mapped::map(layout.size())
        } else {
            Small.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout) {
            // A fresh anonymous mapping reads as zeros.
            mapped::map(layout.size())
        } else {
            Small.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mapped(layout) {
            mapped::unmap(ptr, layout.size());
        } else {
            Small.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_mapped(layout), is_mapped(new_layout)) {
            (false, false) => Small.realloc(ptr, layout, new_size),
            (true, true) => mapped::remap(ptr, layout.size(), new_size),
            _ => {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

fn is_mapped(layout: Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= HUGE_PAGE && layout.align() <= HUGE_PAGE
}

#[cfg(target_os = "linux")]
mod mapped {
    use super::HUGE_PAGE;
    use std::ptr::null_mut;

    /// A block's mapping: whole 2 MiB blocks, so its last one can be a
    /// huge page too.
    fn mapped_len(size: usize) -> usize {
        // No overflow: a layout's size is at most isize::MAX.
        size.next_multiple_of(HUGE_PAGE)
    }

    /// A fresh mapping for `size` bytes on a 2 MiB boundary, advised for
    /// huge pages; null if refused.
    pub unsafe fn map(size: usize) -> *mut u8 {
        let len = mapped_len(size);
        // One huge page more than needed, so an aligned start lies within.
        let raw = libc::mmap(
            null_mut(),
            len + HUGE_PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if raw == libc::MAP_FAILED {
            return null_mut();
        }
        let raw = raw as usize;
        let start = raw.next_multiple_of(HUGE_PAGE);
        let (head, tail) = (start - raw, raw + HUGE_PAGE - start);
        // Unmapping whole pages at either end of our own mapping cannot
        // fail for any reason that leaves the middle unusable.
        if head > 0 {
            libc::munmap(raw as *mut libc::c_void, head);
        }
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        // Advice only: refused (THP off, an old kernel) it changes nothing.
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        start as *mut u8
    }

    pub unsafe fn unmap(ptr: *mut u8, size: usize) {
        libc::munmap(ptr.cast(), mapped_len(size));
    }

    /// Resize a block made by [`map`] from `old` to `new` bytes; null (the
    /// block left as it was) if refused.
    pub unsafe fn remap(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        let (old_len, new_len) = (mapped_len(old), mapped_len(new));
        if old_len == new_len {
            return ptr;
        }
        // In place: shrinking always works, growing where the address
        // space after the block is free. The new part keeps the advice.
        if libc::mremap(ptr.cast(), old_len, new_len, 0) != libc::MAP_FAILED {
            return ptr;
        }
        // Elsewhere: the pages move into a fresh aligned mapping (their
        // page tables do, huge pages included), nothing is copied.
        let dest = map(new);
        if dest.is_null() {
            return null_mut();
        }
        let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
        if libc::mremap(ptr.cast(), old_len, old_len, flags, dest) == libc::MAP_FAILED {
            std::ptr::copy_nonoverlapping(ptr, dest, old);
            unmap(ptr, old);
        }
        dest
    }
}

#[cfg(not(target_os = "linux"))]
mod mapped {
    // Never called: `is_mapped` is false off Linux.
    pub unsafe fn map(_size: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
    pub unsafe fn unmap(_ptr: *mut u8, _size: usize) {}
    pub unsafe fn remap(_ptr: *mut u8, _old: usize, _new: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fill `len` bytes at `ptr` with a pattern that depends on `seed`.
    unsafe fn fill(ptr: *mut u8, len: usize, seed: u8) {
        for i in 0..len {
            *ptr.add(i) = (i % 251) as u8 ^ seed;
        }
    }

    unsafe fn holds(ptr: *const u8, len: usize, seed: u8) -> bool {
        (0..len).all(|i| *ptr.add(i) == (i % 251) as u8 ^ seed)
    }

    /// The layout of a byte buffer of `size` bytes.
    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 1).unwrap()
    }

    /// The kernel's flags for the mapping that holds `ptr` (`VmFlags` in
    /// /proc/self/smaps).
    fn vm_flags(ptr: *const u8) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let first = line.split(' ').next().unwrap_or("");
            let range = first.split_once('-');
            let range =
                range.and_then(|(a, b)| Some(usize::from_str_radix(a, 16).ok()?..usize::from_str_radix(b, 16).ok()?));
            match range {
                // A mapping's first line: its address range.
                Some(range) if !first.ends_with(':') => inside = range.contains(&(ptr as usize)),
                _ if inside => {
                    if let Some(flags) = line.strip_prefix("VmFlags:") {
                        return flags.trim().to_string();
                    }
                }
                _ => {}
            }
        }
        panic!("no mapping holds {ptr:p}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn large_blocks_are_aligned_advised_and_keep_their_bytes() {
        let a = Allocator;
        unsafe {
            // Small, then large (moved to a mapping), grown, shrunk, small.
            let mut p = a.alloc(layout(1000));
            fill(p, 1000, 1);
            let mut size = 1000;
            for (new, seed) in [(3 << 20, 2), (9 << 20, 3), (HUGE_PAGE + 5, 4), (2 << 20, 5), (100, 6)] {
                p = a.realloc(p, layout(size), new);
                assert!(!p.is_null());
                assert!(holds(p, size.min(new), seed - 1), "{size} -> {new}");
                if new >= HUGE_PAGE {
                    assert_eq!(p as usize % HUGE_PAGE, 0, "{new} bytes at {p:p}");
                    assert!(vm_flags(p).split(' ').any(|f| f == "hg"), "{new} bytes not advised");
                }
                fill(p, new, seed);
                size = new;
            }
            a.dealloc(p, layout(size));

            let z = a.alloc_zeroed(layout(5 << 20));
            assert!((0..5 << 20).all(|i| *z.add(i) == 0));
            a.dealloc(z, layout(5 << 20));
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_large_block_that_cannot_grow_in_place_moves_whole() {
        let a = Allocator;
        unsafe {
            // A block with a page of our own just after it. (Another
            // test's thread may map the page first: then try a new block,
            // keeping the old one so the next lands elsewhere.)
            let mut tried = Vec::new();
            let (p, guard) = loop {
                let p = a.alloc(layout(HUGE_PAGE));
                let after = p.add(HUGE_PAGE).cast();
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
                let guard = libc::mmap(after, 4096, libc::PROT_NONE, flags, -1, 0);
                if guard == after {
                    break (p, guard);
                }
                if guard != libc::MAP_FAILED {
                    libc::munmap(guard, 4096);
                }
                tried.push(p);
                assert!(tried.len() < 16, "no free page after 16 blocks");
            };
            for t in tried {
                a.dealloc(t, layout(HUGE_PAGE));
            }
            fill(p, HUGE_PAGE, 7);
            let q = a.realloc(p, layout(HUGE_PAGE), 3 * HUGE_PAGE);
            assert!(!q.is_null() && q != p);
            assert_eq!(q as usize % HUGE_PAGE, 0);
            assert!(holds(q, HUGE_PAGE, 7));
            fill(q, 3 * HUGE_PAGE, 8);
            a.dealloc(q, layout(3 * HUGE_PAGE));
            libc::munmap(guard, 4096);
        }
    }

    #[test]
    fn large_and_small_buffers_work_as_usual() {
        for size in [0, 10, HUGE_PAGE - 1, HUGE_PAGE + 3 * (1 << 20) + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut buf = b"head".to_vec();
            let n = read_to_end(&mut &data[..], &mut buf, size).unwrap();
            assert_eq!(n, size);
            assert_eq!(&buf[..4], b"head");
            assert!(buf[4..] == data[..], "size {size}");
        }
    }
}
