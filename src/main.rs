//! The `rsops` binary: a drop-in replacement for the `sops` command.
//!
//! On Linux the process starts at the C `main` below, not at Rust's: std's
//! start-up reads /proc/self/maps and maps an alternate signal stack so
//! that a stack overflow ends with a message instead of a bare SIGSEGV,
//! about 0.07 ms of every run on the benchmark machine (an empty program:
//! 0.72 against 0.65 ms to reach `main`). What rsops relies on from it is
//! done here: standard descriptors that are open, SIGPIPE ignored (a
//! closed pipe is a write error, handled as the end of the output) and a
//! panic turned into exit code 101. `std::env::args` needs no start-up:
//! glibc hands the arguments to std's initialiser.
#![cfg_attr(all(target_os = "linux", not(test)), no_main)]

mod cli;

#[global_allocator]
static ALLOCATOR: rsops::bigbuf::Allocator = rsops::bigbuf::Allocator;

#[cfg(all(target_os = "linux", not(test)))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    open_standard_descriptors();
    // SAFETY: sets the disposition of one signal; no handler code runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    run()
}

#[cfg(any(not(target_os = "linux"), test))]
fn main() {
    run()
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
