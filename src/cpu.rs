//! Which instructions the CPU offers, asked once with two `cpuid`
//! instructions.
//!
//! std's `is_x86_feature_detected!` fills its cache on first use with
//! about ten of them, and a virtual machine traps every `cpuid` (about
//! 5–7 µs each on the benchmark VM): 0.05–0.07 ms of every run, a tenth of
//! a small decrypt. The vector code here asks this module instead, and the
//! byte searches of [`crate::find`] need nothing beyond SSE2, so a run that
//! uses no other crate's runtime detection asks the CPU twice.

/// Instruction set extensions the vector code here uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Feature {
    Ssse3,
    Sse41,
    Aes,
    Pclmulqdq,
    Avx2,
    Bmi1,
    Bmi2,
}

impl Feature {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Whether the CPU (and, for AVX2, the operating system) supports `feature`.
#[cfg(target_arch = "x86_64")]
pub fn has(feature: Feature) -> bool {
    use std::sync::atomic::{AtomicU32, Ordering};
    /// The feature bits, with `KNOWN` set once they are.
    static FEATURES: AtomicU32 = AtomicU32::new(0);
    const KNOWN: u32 = 1 << 31;
    let mut bits = FEATURES.load(Ordering::Relaxed);
    if bits & KNOWN == 0 {
        bits = detect() | KNOWN;
        FEATURES.store(bits, Ordering::Relaxed);
    }
    bits & feature.bit() != 0
}

#[cfg(not(target_arch = "x86_64"))]
pub fn has(_feature: Feature) -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn detect() -> u32 {
    use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    let leaf1 = __cpuid(1);
    let ecx = |bit: u32| leaf1.ecx & (1 << bit) != 0;
    let mut bits = 0;
    for (feature, present) in [
        (Feature::Ssse3, ecx(9)),
        (Feature::Sse41, ecx(19)),
        (Feature::Aes, ecx(25)),
        (Feature::Pclmulqdq, ecx(1)),
    ] {
        if present {
            bits |= feature.bit();
        }
    }
    // AVX2 needs the OS to save the YMM registers (OSXSAVE, then XCR0's
    // SSE and AVX bits) and leaf 7. A CPU with AVX has leaf 7: it reports
    // XSAVE, whose leaf 0xD is higher; without AVX there is no AVX2 to
    // look for, and leaf 7, which an old CPU may answer with another
    // leaf's bits, is not asked.
    let (osxsave, avx) = (ecx(27), ecx(28));
    // SAFETY: `xgetbv` exists where OSXSAVE is set.
    if osxsave && avx && unsafe { _xgetbv(0) } & 0b110 == 0b110 {
        let leaf7 = __cpuid_count(7, 0);
        let ebx = |bit: u32| leaf7.ebx & (1 << bit) != 0;
        for (feature, present) in [
            (Feature::Avx2, ebx(5)),
            (Feature::Bmi1, ebx(3)),
            (Feature::Bmi2, ebx(8)),
        ] {
            if present {
                bits |= feature.bit();
            }
        }
    }
    bits
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The same answers as std's detection, on this machine.
    #[test]
    fn agrees_with_std() {
        for (feature, std) in [
            (Feature::Ssse3, is_x86_feature_detected!("ssse3")),
            (Feature::Sse41, is_x86_feature_detected!("sse4.1")),
            (Feature::Aes, is_x86_feature_detected!("aes")),
            (Feature::Pclmulqdq, is_x86_feature_detected!("pclmulqdq")),
            (Feature::Avx2, is_x86_feature_detected!("avx2")),
            (Feature::Bmi1, is_x86_feature_detected!("bmi1")),
            (Feature::Bmi2, is_x86_feature_detected!("bmi2")),
        ] {
            assert_eq!(has(feature), std, "{feature:?}");
        }
        // The test machine has them all (the vector code is tested there).
        assert!(
            has(Feature::Avx2) && has(Feature::Aes),
            "this test machine must have AVX2 and AES-NI"
        );
    }
}
