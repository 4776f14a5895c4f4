//! How many CPUs this process may run on, asked once.

use std::sync::OnceLock;

/// `std::thread::available_parallelism`, 1 if unknown, remembered: on
/// Linux each answer costs about 16 system calls (the affinity mask, then
/// the cgroup's CPU quota from /proc and /sys), and a run asks several
/// times (each piecewise stage sizes its threads).
pub fn available() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
