//! How glibc's allocator grows its heaps.
//!
//! By default glibc extends a heap by little more than the allocation
//! that does not fit, and serves an allocation of 128 KiB or more that
//! does not fit with a fresh `mmap`, unmapped again when it is freed.
//! Encrypting builds each piece's tree and output in buffers of that size,
//! so every piece paid for fresh, zeroed pages and for `mmap`/`munmap`
//! calls, which take the address-space lock that the other threads' page
//! faults wait on. With 16 MiB of headroom at each growth, taken before
//! the first one, those buffers come from the heap and are reused: a 1 MB
//! encrypt was 7–14 % faster (median of 40 round-robin runs each of
//! dotenv, YAML and JSON; decrypt within 2 %).
//!
//! glibc also keeps that headroom when it trims a heap, which raised a
//! large file's peak memory by about 2 MiB, and that peak must stay under
//! 4× the file. So `encrypt` puts the default headroom back for inputs of
//! [`LARGE_INPUT`] and more, before any worker starts. Setting any of
//! these parameters also stops glibc from raising its `mmap` threshold as
//! it goes (up to the largest mapped block freed so far), and without that
//! a large file's pieces were mapped afresh one by one (17 % slower), so
//! the threshold is then set above the pieces' buffers. Input from stdin
//! (size unknown) keeps the headroom.
//!
//! The static build links musl and allocates with mimalloc
//! (`rsops::bigbuf`), which reuses freed pages itself; none of this applies
//! there. It keeps freed pages to the end (no purging), which leaves a
//! large YAML encrypt's peak at about 3.8× the file: purging as pages free
//! up took it to 3.7× at 6 % more time.

/// Inputs from this size on keep glibc's default headroom.
pub const LARGE_INPUT: u64 = 4 << 20;

/// Called first thing in `main`, before the first heap growth.
pub fn grow_in_large_steps() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    mallopt(libc::M_TOP_PAD, 16 << 20);
}

/// glibc's default headroom again, for a large input (see the module
/// comment). Call before any worker thread starts.
pub fn default_steps_for_large_input() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // DEFAULT_TOP_PAD in glibc's malloc.c.
        mallopt(libc::M_TOP_PAD, 128 << 10);
        mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn mallopt(param: libc::c_int, value: libc::c_int) {
    // SAFETY: mallopt sets one tuning parameter under the allocator's own
    // lock; nothing but two integers is passed.
    unsafe {
        libc::mallopt(param, value);
    }
}
