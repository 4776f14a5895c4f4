//! How many CPUs this process may run on, asked once.

use std::sync::OnceLock;

/// How many threads to run at most: the CPUs this process may run on,
/// 1 if unknown, remembered (a run asks several times: each piecewise
/// stage sizes its threads).
///
/// `std::thread::available_parallelism` also reads the cgroup's CPU quota
/// from /proc and /sys: about 16 system calls and 0.06-0.09 ms here,
/// against 0.4 µs for the affinity mask alone. A quota can only lower
/// the count, and where the mask allows at most two CPUs that changes
/// nothing that matters: two threads under a quota of one CPU use the
/// same CPU time as one thread would (a short run is not throttled at
/// all, a long one is throttled either way), so the quota is read only
/// for masks of more CPUs, where it keeps a small quota on a large host
/// from starting more threads than it lets run.
pub fn available() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| match affinity_count() {
        Some(n @ 1..=2) => n,
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

/// The CPUs in this thread's affinity mask.
#[cfg(target_os = "linux")]
fn affinity_count() -> Option<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid for writes of its own size for the call.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    // SAFETY: `set` was filled in by the kernel.
    (r == 0)
        .then(|| unsafe { libc::CPU_COUNT(&set) })
        .and_then(|n| usize::try_from(n).ok())
}

#[cfg(not(target_os = "linux"))]
fn affinity_count() -> Option<usize> {
    None
}

#[cfg(test)]
#[cfg(target_os = "linux")]
mod tests {
    use super::*;

    /// The mask's count is what the kernel allows this thread: all the
    /// CPUs std counts (no quota here can raise it), and one CPU on a
    /// thread pinned to one.
    #[test]
    fn affinity_count_follows_the_mask() {
        let all = affinity_count().expect("the mask can be read");
        let std_count = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(all >= std_count, "{all} < {std_count}");
        std::thread::spawn(|| {
            // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET
            // and sched_setaffinity get valid pointers to it.
            unsafe {
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(usize::try_from(libc::sched_getcpu()).expect("a CPU"), &mut one);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one),
                    0
                );
            }
            assert_eq!(affinity_count(), Some(1));
        })
        .join()
        .expect("pinned thread");
    }
}
