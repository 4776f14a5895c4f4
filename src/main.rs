//! The `rsops` binary: a drop-in replacement for the `sops` command.
//!
//! On Linux the process starts at the C `main` below, not at Rust's: std's
//! start-up reads /proc/self/maps and maps an alternate signal stack so
//! that a stack overflow ends with a message instead of a bare SIGSEGV,
//! about 0.07 ms of every run on the benchmark machine (an empty program:
//! 0.72 against 0.65 ms to reach `main`). What rsops relies on from it is
//! done here: standard descriptors that are open, SIGPIPE ignored (a
//! closed pipe is a write error, handled as the end of the output) and a
//! panic turned into exit code 101. The arguments are taken from `main`'s
//! own: musl, unlike glibc, does not hand them to std's initialiser, so
//! `std::env::args` would be empty.
//!
//! The static build (`scripts/build-static`) links musl, which runs no
//! CPUID at start (glibc's start-up asks the CPU for its cache sizes, about
//! a hundred trapped instructions on an Intel VM: 0.6 ms of every run).
//! It also takes musl's allocator and string functions out: mimalloc
//! (`rsops::bigbuf`) and `rsops::memfns`.
#![cfg_attr(all(target_os = "linux", not(test)), no_main)]

mod cli;

#[global_allocator]
static ALLOCATOR: rsops::bigbuf::Allocator = rsops::bigbuf::Allocator;

#[cfg(all(target_os = "linux", not(test)))]
#[no_mangle]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    #[cfg(target_env = "musl")]
    rsops::bigbuf::configure_mimalloc();
    ARGS.store(argc.max(0) as usize, argv);
    open_standard_descriptors();
    // SAFETY: sets the disposition of one signal; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    run()
}

#[cfg(any(not(target_os = "linux"), test))]
fn main() {
    run()
}

/// `main`'s `argc` and `argv`, kept for [`args_os`].
#[cfg(all(target_os = "linux", not(test)))]
struct Args {
    count: std::sync::atomic::AtomicUsize,
    vector: std::sync::atomic::AtomicPtr<*const libc::c_char>,
}

#[cfg(all(target_os = "linux", not(test)))]
impl Args {
    fn store(&self, count: usize, vector: *const *const libc::c_char) {
        use std::sync::atomic::Ordering::Relaxed;
        self.vector.store(vector.cast_mut(), Relaxed);
        self.count.store(count, Relaxed);
    }
}

#[cfg(all(target_os = "linux", not(test)))]
static ARGS: Args = Args {
    count: std::sync::atomic::AtomicUsize::new(0),
    vector: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
};

/// The command line, program name first.
#[cfg(all(target_os = "linux", not(test)))]
pub fn args_os() -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::Ordering::Relaxed;
    let vector = ARGS.vector.load(Relaxed);
    if vector.is_null() {
        return Vec::new();
    }
    (0..ARGS.count.load(Relaxed))
        .map(|i| {
            // SAFETY: the C start-up hands `main` argc pointers to
            // NUL-terminated strings that live as long as the process, and
            // nothing in rsops writes to them.
            let arg = unsafe { std::ffi::CStr::from_ptr(*vector.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_os_string()
        })
        .collect()
}

#[cfg(any(not(target_os = "linux"), test))]
pub fn args_os() -> Vec<std::ffi::OsString> {
    std::env::args_os().collect()
}

// musl's string functions replaced (see `rsops::memfns`): the linker takes
// these definitions and leaves musl's out.
#[cfg(all(target_env = "musl", target_arch = "x86_64", not(test)))]
mod c_string_functions {
    use rsops::memfns;

    /// # Safety
    /// As C's `memcpy`.
    #[no_mangle]
    pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        memfns::copy(dst, src, n);
        dst
    }

    /// # Safety
    /// As C's `memmove`.
    #[no_mangle]
    pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        memfns::copy_overlapping(dst, src, n);
        dst
    }

    /// # Safety
    /// As C's `memset`.
    #[no_mangle]
    pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
        // C passes the byte as an int and uses its low eight bits.
        memfns::fill(dst, c as u8, n);
        dst
    }

    /// # Safety
    /// As C's `memcmp`.
    #[no_mangle]
    pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        memfns::compare(a, b, n)
    }

    /// # Safety
    /// As C's `bcmp`.
    #[no_mangle]
    pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
        memfns::differ(a, b, n)
    }
}

fn run() -> ! {
    cli::heap::grow_in_large_steps();
    // The panic hook (cli::main) has printed the error by then.
    let code = std::panic::catch_unwind(cli::main).unwrap_or(101);
    std::process::exit(code)
}

/// Open /dev/null on any of descriptors 0, 1 and 2 that is closed, as
/// std's start-up does: a file rsops opens must not become its stdout.
#[cfg(all(target_os = "linux", not(test)))]
fn open_standard_descriptors() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the call's
    // duration; a zero timeout returns at once.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a constant NUL-terminated path; the lowest free
            // descriptor is the closed one, so it is filled in order.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}
