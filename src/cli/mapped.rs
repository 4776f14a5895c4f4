//! A large input file mapped into memory instead of read: no copy out of
//! the page cache and no zeroed buffer to fault in. Reading a 2.5 MB
//! encrypted file that way took 15 % off a whole `decrypt` (a 23 MB one:
//! 13 %), measured on the benchmark VM; mapping a 1 MB plaintext file took
//! 16 % off an `encrypt` (`encrypt` maps files under 4 MiB only).
//!
//! Two hazards come with a mapping of a file that another process may
//! change while it is mapped, and both are handled here or by the reader:
//!
//! - If the file is truncated, touching a page past its new end raises
//!   SIGBUS (so does an I/O error under a mapped page). A handler installed
//!   here replaces the pages from there to the end of the mapping with
//!   zeros and records it ([`MappedFile::changed`]); the command then
//!   reports an error instead of dying on a signal.
//! - Bytes may change under a reader. [`rsops::pipeline`] copies every
//!   piece (and the metadata) out of the mapping before it parses it, so
//!   no check it makes is undone by a later change; a change shows up as a
//!   MAC mismatch or a parse error, as with a read that races a write.

use crate::cli::common::{self, codes, CliError, CliResult};
use std::path::Path;

/// Map only files at least this large: below it, reading is as cheap as
/// the mapping's system calls.
pub const MIN_BYTES: u64 = rsops::pipeline::MIN_BYTES;

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// The one live mapping (start and end address; 0 when none) that the
    /// SIGBUS handler may patch, and whether it had to.
    static START: AtomicUsize = AtomicUsize::new(0);
    static END: AtomicUsize = AtomicUsize::new(0);
    static CHANGED: AtomicBool = AtomicBool::new(false);
    static PAGE: AtomicUsize = AtomicUsize::new(4096);
    /// The handler that was there before ours, put back for a SIGBUS that
    /// is not about the mapping.
    static PREVIOUS: OnceLock<Option<SavedAction>> = OnceLock::new();

    struct SavedAction(libc::sigaction);
    // SAFETY: a plain C struct of a handler address, flags and a signal
    // mask; it is only read after it is set.
    unsafe impl Sync for SavedAction {}
    unsafe impl Send for SavedAction {}

    pub struct MappedFile {
        ptr: *mut u8,
        len: usize,
    }

    // SAFETY: the mapping is read-only and owned by this value; sharing
    // it across threads is sharing a `&[u8]`.
    unsafe impl Sync for MappedFile {}
    unsafe impl Send for MappedFile {}

    impl MappedFile {
        /// Map `file` (`len` bytes, its size) read-only, or `None` when
        /// it cannot be (the caller reads it instead): another mapping is
        /// live, the handler could not be installed, or `mmap` failed.
        pub fn map(file: &File, len: usize) -> Option<MappedFile> {
            if len == 0 || !handler_installed() {
                return None;
            }
            // Claim the one slot before mapping, so that two mappings
            // never share it.
            if START
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return None;
            }
            // SAFETY: a fresh read-only private mapping of an open file;
            // the kernel picks the address. MAP_POPULATE maps the cached
            // pages now, in one call, instead of a fault per 64 KiB.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_POPULATE,
                    file.as_raw_fd(),
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                START.store(0, Ordering::Release);
                return None;
            }
            CHANGED.store(false, Ordering::Release);
            END.store(ptr as usize + len, Ordering::Release);
            START.store(ptr as usize, Ordering::Release);
            Some(MappedFile { ptr: ptr.cast(), len })
        }

        /// Whether the file shrank while it was mapped (its missing end
        /// reads as zeros).
        pub fn changed(&self) -> bool {
            CHANGED.load(Ordering::Acquire)
        }
    }

    impl std::ops::Deref for MappedFile {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            // SAFETY: `len` readable bytes at `ptr` for as long as `self`
            // lives (pages past a truncation read as zeros, see above).
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    impl Drop for MappedFile {
        fn drop(&mut self) {
            // Stop claiming the range before it goes away.
            END.store(0, Ordering::Release);
            START.store(0, Ordering::Release);
            // SAFETY: our own mapping, unmapped once; no slice of it
            // outlives `self`.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }

    fn handler_installed() -> bool {
        PREVIOUS
            .get_or_init(|| {
                // SAFETY: sysconf has no preconditions.
                let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
                if let Ok(page) = usize::try_from(page) {
                    if page.is_power_of_two() {
                        PAGE.store(page, Ordering::Relaxed);
                    }
                }
                // SAFETY: installing a handler that only does
                // async-signal-safe work (atomics, mmap, sigaction); the
                // previous action is saved for the faults it is not for.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
                    action.sa_flags = libc::SA_SIGINFO;
                    libc::sigemptyset(&mut action.sa_mask);
                    let mut previous: libc::sigaction = std::mem::zeroed();
                    (libc::sigaction(libc::SIGBUS, &action, &mut previous) == 0).then_some(SavedAction(previous))
                }
            })
            .is_some()
    }

    extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
        let addr = unsafe { (*info).si_addr() } as usize;
        let (start, end) = (START.load(Ordering::Acquire), END.load(Ordering::Acquire));
        if start != 0 && start != usize::MAX && (start..end).contains(&addr) {
            let page = addr & !(PAGE.load(Ordering::Relaxed) - 1);
            // The file ends before this page now: zeros from here to the
            // end of the mapping, and the faulting read runs again.
            // SAFETY: the range lies inside our own mapping, which nothing
            // else uses; MAP_FIXED replaces its pages.
            let zeros = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    end - page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeros != libc::MAP_FAILED {
                CHANGED.store(true, Ordering::Release);
                return;
            }
        }
        // Not ours (or the patch failed): the previous handler sees the
        // fault when the instruction runs again.
        if let Some(Some(SavedAction(previous))) = PREVIOUS.get() {
            // SAFETY: restoring an action the kernel gave us.
            unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    /// Elsewhere files are read.
    pub enum MappedFile {}

    impl MappedFile {
        pub fn map(_file: &std::fs::File, _len: usize) -> Option<MappedFile> {
            None
        }

        pub fn changed(&self) -> bool {
            match *self {}
        }
    }

    impl std::ops::Deref for MappedFile {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            match *self {}
        }
    }
}

pub use imp::MappedFile;

/// An encrypted input file, mapped when it is large enough to pay, else
/// read.
pub enum Input {
    Read(Vec<u8>),
    Mapped(MappedFile),
}

impl Input {
    /// Map the named file if it is a regular file of at least
    /// [`MIN_BYTES`], else read it (or stdin) as [`common::read_input`]
    /// does, with the same errors.
    pub fn open(file: Option<&Path>) -> CliResult<Input> {
        if let Some(path) = file {
            if let Ok(f) = std::fs::File::open(path) {
                let size = f.metadata().ok().filter(|m| m.is_file()).map_or(0, |m| m.len());
                if size >= MIN_BYTES {
                    if let Some(mapped) = usize::try_from(size).ok().and_then(|len| MappedFile::map(&f, len)) {
                        return Ok(Input::Mapped(mapped));
                    }
                }
            }
        }
        Ok(Input::Read(common::read_input(file)?.into_unwiped()))
    }

    /// The bytes in a buffer of our own (a copy of a mapping), for the
    /// whole-tree path, whose parsers read the same bytes more than once.
    pub fn into_owned(self, path: Option<&Path>) -> CliResult<Vec<u8>> {
        match self {
            Input::Read(bytes) => Ok(bytes),
            Input::Mapped(mapped) => {
                let bytes = mapped.to_vec();
                if mapped.changed() {
                    return Err(truncated(path));
                }
                Ok(bytes)
            }
        }
    }

    /// An error if the file was cut short while it was mapped: what was
    /// read of it is then not the file.
    pub fn check_unchanged(&self, path: Option<&Path>) -> CliResult<()> {
        match self {
            Input::Mapped(mapped) if mapped.changed() => Err(truncated(path)),
            _ => Ok(()),
        }
    }
}

fn truncated(path: Option<&Path>) -> CliError {
    let name = path.map_or_else(String::new, |p| p.display().to_string());
    CliError::new(
        codes::COULD_NOT_READ_INPUT_FILE,
        format!("Error reading file {name}: the file was truncated (or could not be read) while it was being read"),
    )
    .hint("another process is writing this file; run the command again once it is done")
}

impl std::ops::Deref for Input {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Input::Read(bytes) => bytes,
            Input::Mapped(mapped) => mapped,
        }
    }
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;
    use std::io::Write;

    /// One mapping at a time per process: the tests take turns.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// A file cut short while mapped: no signal kills the test, the lost
    /// end reads as zeros, and `changed` says so. A second mapping while
    /// one is live is refused; after a drop, mapping works again.
    #[test]
    fn truncation_while_mapped_reads_zeros_and_is_reported() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let mapped = MappedFile::map(&file, data.len()).expect("maps");
        assert!(mapped[..] == data[..]);
        assert!(!mapped.changed());
        assert!(MappedFile::map(&file, data.len()).is_none(), "one mapping at a time");

        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10_000)
            .unwrap();
        let sum: u64 = mapped.iter().map(|&b| u64::from(b)).sum();
        assert!(mapped.changed());
        // Everything past the new end reads as zero.
        assert!(mapped[10_000..].iter().all(|&b| b == 0));
        assert!(mapped[..10_000] == data[..10_000]);
        assert!(sum < data.iter().map(|&b| u64::from(b)).sum());
        drop(mapped);

        let again = MappedFile::map(&file, 10_000).expect("maps after the drop");
        assert!(!again.changed());
        assert!(again[..] == data[..10_000]);
    }

    /// `Input` maps a large file and reads a small one; a truncation seen
    /// through the mapping is exit 2 with a message, never the old bytes.
    #[test]
    fn input_maps_large_files_and_reports_a_truncation() {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, b"a: 1\n").unwrap();
        assert!(matches!(Input::open(Some(&small)).unwrap(), Input::Read(ref b) if b == b"a: 1\n"));

        let large = dir.path().join("large");
        let data = vec![b'x'; MIN_BYTES as usize + 5000];
        std::fs::write(&large, &data).unwrap();
        let input = Input::open(Some(&large)).unwrap();
        assert!(matches!(input, Input::Mapped(_)));
        assert!(input[..] == data[..]);
        assert!(input.check_unchanged(Some(&large)).is_ok());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&large)
            .unwrap()
            .set_len(100)
            .unwrap();
        let err = input.into_owned(Some(&large)).unwrap_err();
        assert_eq!(err.code, codes::COULD_NOT_READ_INPUT_FILE);
        assert!(
            err.message
                .contains("truncated (or could not be read) while it was being read"),
            "{}",
            err.message
        );

        let missing = dir.path().join("missing");
        let err = Input::open(Some(&missing)).err().expect("no such file");
        assert_eq!(err.code, codes::COULD_NOT_READ_INPUT_FILE);
    }
}
