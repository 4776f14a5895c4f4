//! AES-256-GCM for sops' 32-byte IVs with a GHASH that sums up to sixteen
//! blocks per reduction (x86-64 with PCLMULQDQ). The `aes-gcm` crate
//! multiplies and reduces once per 16-byte block, and every value of a file
//! pays that three times over for its IV alone; here a typical value's IV
//! is one reduction and its AAD, data and lengths another.
//!
//! Used by [`crate::cipher::ValueCipher`] where the CPU has the
//! instructions ([`Gcm32::new`] gives `None` elsewhere, and the `aes-gcm`
//! crate does the work). Tested against that crate byte for byte.
//!
//! GCM (NIST SP 800-38D) with a 256-bit IV: J0 = GHASH(IV ‖ 0⁶⁴ ‖ [256]₆₄),
//! the data is XORed with AES(inc32(J0)), AES(inc32²(J0)), …, and the tag
//! is AES(J0) ⊕ GHASH(A ‖ pad ‖ C ‖ pad ‖ [len A]₆₄ ‖ [len C]₆₄).

const BLOCK: usize = 16;

/// The tag did not verify: wrong key, AAD, IV or altered data.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// AES-256-GCM keyed for one file; only for 32-byte IVs.
pub struct Gcm32 {
    aes: aesni::Aes256,
    ghash: clmul::Ghash,
}

impl Gcm32 {
    /// `None` where the CPU lacks AES-NI or carry-less multiplication.
    pub fn new(key: &[u8; 32]) -> Option<Gcm32> {
        let aes = aesni::Aes256::new(key)?;
        let mut h = [0u8; BLOCK];
        aes.encrypt_block(&mut h);
        let ghash = clmul::Ghash::new(&h);
        // H is key material (it lets one forge tags): leave no copy behind.
        h.fill(0);
        std::hint::black_box(&h);
        Some(Gcm32 { aes, ghash: ghash? })
    }

    /// Encrypt `buf` in place; returns the tag.
    pub fn encrypt(&self, iv: &[u8; 32], aad: &[u8], buf: &mut [u8]) -> [u8; BLOCK] {
        let j0 = self.ghash.digest(&[], iv);
        let (mask, _) = self.aes.keystream(&j0, buf, |_| true);
        let s = self.ghash.digest(aad, buf);
        std::array::from_fn(|i| s[i] ^ mask[i])
    }

    /// Check `tag`, then decrypt `buf` in place; on failure `buf` is left
    /// as it was (still ciphertext).
    pub fn decrypt(
        &self,
        iv: &[u8; 32],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; BLOCK],
    ) -> Result<(), AuthenticationFailed> {
        let j0 = self.ghash.digest(&[], iv);
        let s = self.ghash.digest(aad, buf);
        let tag_matches = |mask: &[u8; BLOCK]| {
            // Constant time: every byte is compared whatever the first ones give.
            let diff = (0..BLOCK).fold(0u8, |d, i| d | (s[i] ^ mask[i] ^ tag[i]));
            std::hint::black_box(diff) == 0
        };
        match self.aes.keystream(&j0, buf, tag_matches) {
            (_, true) => Ok(()),
            (_, false) => Err(AuthenticationFailed),
        }
    }
}

/// The most [`AesRng::fill`] gives per call.
pub const RNG_BATCH: usize = 1024;

/// A random number generator for IVs: AES-256 in counter mode under a key
/// from the operating system, replaced after every batch by the batch's
/// first 32 bytes of output, which are never handed out ("fast key
/// erasure", Bernstein 2017: a copy of the state taken later reveals
/// nothing of what was drawn before). Where the CPU has AES-NI it takes
/// the place of `rand`'s ChaCha12 generator, which selected its AVX2 code
/// with std's feature detection (ten trapped `cpuid` per run in a VM, see
/// [`crate::cpu`]) and cost 2–3 % of a dotenv encrypt.
pub struct AesRng {
    aes: aesni::Aes256,
}

impl AesRng {
    /// Keyed with `seed`; `None` without AES-NI.
    pub fn new(seed: &[u8; 32]) -> Option<AesRng> {
        Some(AesRng {
            aes: aesni::Aes256::new(seed)?,
        })
    }

    /// Fill `out` (at most [`RNG_BATCH`] bytes) and take the next key.
    pub fn fill(&mut self, out: &mut [u8]) {
        assert!(out.len() <= RNG_BATCH, "at most RNG_BATCH bytes a call");
        let mut stream = [0u8; 32 + RNG_BATCH];
        let stream_len = 32 + out.len();
        self.aes.counter_blocks(&mut stream[..stream_len]);
        out.copy_from_slice(&stream[32..stream_len]);
        let key: &[u8; 32] = stream[..32].try_into().expect("32 bytes");
        self.aes = aesni::Aes256::new(key).expect("AES-NI, as when first keyed");
        // SAFETY: a volatile write of zeros over our own stack array, so
        // the next key leaves no copy behind.
        unsafe { std::ptr::write_volatile(&mut stream, [0u8; 32 + RNG_BATCH]) };
    }
}

#[cfg(target_arch = "x86_64")]
mod aesni {
    //! AES-256 with the AES-NI instructions (Gueron, "Intel Advanced
    //! Encryption Standard (AES) New Instructions Set", 2010): the key
    //! schedule with `aeskeygenassist`, and the counter mode eight blocks
    //! at a time in registers, so that the rounds of independent blocks
    //! overlap. Replaces the `aes` crate's call per batch, which copied
    //! every counter block through memory and detected the CPU itself.

    use super::BLOCK;
    use std::arch::x86_64::*;

    /// The fifteen round keys.
    pub struct Aes256 {
        keys: [__m128i; 15],
    }

    impl Drop for Aes256 {
        fn drop(&mut self) {
            // SAFETY: writing zeros into our own SSE registers' storage.
            for k in &mut self.keys {
                unsafe { std::ptr::write_volatile(k, _mm_setzero_si128()) };
            }
        }
    }

    impl Aes256 {
        /// `None` without AES-NI and SSE4.1 (which every AES-NI CPU has).
        pub fn new(key: &[u8; 32]) -> Option<Aes256> {
            use crate::cpu::{has, Feature};
            if !(has(Feature::Aes) && has(Feature::Sse41)) {
                return None;
            }
            // SAFETY: the CPU has the features `expand` is compiled for.
            Some(Aes256 {
                keys: unsafe { expand(key) },
            })
        }

        pub fn encrypt_block(&self, block: &mut [u8; BLOCK]) {
            // SAFETY: an `Aes256` only exists where `new` found AES-NI.
            unsafe {
                let mut b = [_mm_loadu_si128(block.as_ptr().cast())];
                encrypt_n(&self.keys, &mut b);
                _mm_storeu_si128(block.as_mut_ptr().cast(), b[0]);
            }
        }

        /// E(J0), the tag mask, and whether `check` accepted it; if it did,
        /// `buf` is XORed with the keystream that starts at inc32(J0), else
        /// left as it was. E(J0) is encrypted with the first counter blocks.
        pub fn keystream(
            &self,
            j0: &[u8; BLOCK],
            buf: &mut [u8],
            check: impl FnOnce(&[u8; BLOCK]) -> bool,
        ) -> ([u8; BLOCK], bool) {
            // SAFETY: an `Aes256` only exists where `new` found the features.
            unsafe { keystream(&self.keys, j0, buf, check) }
        }

        /// Fill `out` with the encryptions of the counter blocks 0, 1, 2,
        /// … (128-bit, little-endian).
        pub fn counter_blocks(&self, out: &mut [u8]) {
            // SAFETY: an `Aes256` only exists where `new` found the features.
            unsafe { counter_blocks(&self.keys, out) }
        }
    }

    #[target_feature(enable = "aes,sse2")]
    unsafe fn counter_blocks(keys: &[__m128i; 15], out: &mut [u8]) {
        let mut next = 0i64;
        for chunk in out.chunks_mut(8 * BLOCK) {
            let mut blocks: [__m128i; 8] = std::array::from_fn(|k| _mm_set_epi64x(0, next + k as i64));
            encrypt_n(keys, &mut blocks);
            let mut bytes = [0u8; 8 * BLOCK];
            for (k, b) in blocks.iter().enumerate() {
                _mm_storeu_si128(bytes.as_mut_ptr().add(k * BLOCK).cast(), *b);
            }
            chunk.copy_from_slice(&bytes[..chunk.len()]);
            // Output that may become a key: do not leave it on the stack.
            std::ptr::write_volatile(&mut bytes, [0u8; 8 * BLOCK]);
            std::ptr::write_volatile(&mut blocks, [_mm_setzero_si128(); 8]);
            next += 8;
        }
    }

    /// x ⊕ x≪32 ⊕ x≪64 ⊕ x≪96: each word of a round key XORs in the ones
    /// before it.
    #[inline]
    #[target_feature(enable = "sse2")]
    unsafe fn fold_words(x: __m128i) -> __m128i {
        let x = _mm_xor_si128(x, _mm_slli_si128(x, 4));
        let x = _mm_xor_si128(x, _mm_slli_si128(x, 4));
        _mm_xor_si128(x, _mm_slli_si128(x, 4))
    }

    #[target_feature(enable = "aes,sse2")]
    unsafe fn expand(key: &[u8; 32]) -> [__m128i; 15] {
        let mut keys = [_mm_setzero_si128(); 15];
        let mut a = _mm_loadu_si128(key.as_ptr().cast());
        let mut b = _mm_loadu_si128(key.as_ptr().add(16).cast());
        keys[0] = a;
        keys[1] = b;
        // The round constant must be an immediate: one step per constant.
        macro_rules! even {
            ($i:expr, $rcon:expr) => {
                a = _mm_xor_si128(
                    fold_words(a),
                    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, $rcon), 0xff),
                );
                keys[$i] = a;
            };
        }
        macro_rules! odd {
            ($i:expr) => {
                b = _mm_xor_si128(
                    fold_words(b),
                    _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa),
                );
                keys[$i] = b;
            };
        }
        even!(2, 0x01);
        odd!(3);
        even!(4, 0x02);
        odd!(5);
        even!(6, 0x04);
        odd!(7);
        even!(8, 0x08);
        odd!(9);
        even!(10, 0x10);
        odd!(11);
        even!(12, 0x20);
        odd!(13);
        even!(14, 0x40);
        keys
    }

    /// Encrypt `N` independent blocks, round by round.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    unsafe fn encrypt_n<const N: usize>(keys: &[__m128i; 15], blocks: &mut [__m128i; N]) {
        for b in blocks.iter_mut() {
            *b = _mm_xor_si128(*b, keys[0]);
        }
        for key in &keys[1..14] {
            for b in blocks.iter_mut() {
                *b = _mm_aesenc_si128(*b, *key);
            }
        }
        for b in blocks.iter_mut() {
            *b = _mm_aesenclast_si128(*b, keys[14]);
        }
    }

    /// XOR `data` (at most eight blocks) with the keystream blocks.
    #[inline]
    #[target_feature(enable = "sse2")]
    unsafe fn xor_keystream(data: &mut [u8], keystream: &[__m128i]) {
        let mut whole = data.chunks_exact_mut(BLOCK);
        let mut i = 0;
        for chunk in &mut whole {
            let p = chunk.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), keystream[i]));
            i += 1;
        }
        let tail = whole.into_remainder();
        if !tail.is_empty() {
            let mut key = [0u8; BLOCK];
            _mm_storeu_si128(key.as_mut_ptr().cast(), keystream[i]);
            for (b, k) in tail.iter_mut().zip(&key) {
                *b ^= k;
            }
            // Keystream: do not leave it on the stack.
            std::ptr::write_volatile(&mut key, [0u8; BLOCK]);
        }
    }

    #[target_feature(enable = "aes,sse4.1")]
    unsafe fn keystream(
        keys: &[__m128i; 15],
        j0: &[u8; BLOCK],
        buf: &mut [u8],
        check: impl FnOnce(&[u8; BLOCK]) -> bool,
    ) -> ([u8; BLOCK], bool) {
        let j0v = _mm_loadu_si128(j0.as_ptr().cast());
        let c0 = u32::from_be_bytes(j0[12..].try_into().expect("16-byte block"));
        // inc32 applied k times: the last four bytes count, big-endian, mod 2³².
        let counter = |k: u32| _mm_insert_epi32(j0v, c0.wrapping_add(k).swap_bytes() as i32, 3);
        // The first batch: E(J0) and up to seven blocks of keystream.
        let first = buf.len().min(7 * BLOCK);
        let n = first.div_ceil(BLOCK);
        let mut blocks: [__m128i; 8] = std::array::from_fn(|k| if k == 0 { j0v } else { counter(k as u32) });
        if n < 4 {
            let mut four = [blocks[0], blocks[1], blocks[2], blocks[3]];
            encrypt_n(keys, &mut four);
            blocks[..4].copy_from_slice(&four);
        } else {
            encrypt_n(keys, &mut blocks);
        }
        let mut mask = [0u8; BLOCK];
        _mm_storeu_si128(mask.as_mut_ptr().cast(), blocks[0]);
        let accepted = check(&mask);
        if accepted {
            xor_keystream(&mut buf[..first], &blocks[1..=n]);
            let mut next = 8u32;
            for chunk in buf[first..].chunks_mut(8 * BLOCK) {
                blocks = std::array::from_fn(|k| counter(next + k as u32));
                encrypt_n(keys, &mut blocks);
                xor_keystream(chunk, &blocks);
                next = next.wrapping_add(8);
            }
        }
        // The keystream encrypts this value's data: do not leave it behind.
        std::ptr::write_volatile(&mut blocks, [_mm_setzero_si128(); 8]);
        (mask, accepted)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod aesni {
    //! Elsewhere the `aes-gcm` crate does the work.
    use super::BLOCK;

    pub enum Aes256 {}

    impl Aes256 {
        pub fn new(_key: &[u8; 32]) -> Option<Aes256> {
            None
        }

        pub fn encrypt_block(&self, _block: &mut [u8; BLOCK]) {
            match *self {}
        }

        pub fn keystream(
            &self,
            _j0: &[u8; BLOCK],
            _buf: &mut [u8],
            _check: impl FnOnce(&[u8; BLOCK]) -> bool,
        ) -> ([u8; BLOCK], bool) {
            match *self {}
        }

        pub fn counter_blocks(&self, _out: &mut [u8]) {
            match *self {}
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod clmul {
    //! GHASH computed as POLYVAL (RFC 8452, appendix A): GHASH_H(X₁ … Xₙ) is
    //! the byte-swapped POLYVAL, keyed with mulX of the byte-swapped H, over
    //! the byte-swapped blocks. POLYVAL's
    //! product needs no one-bit shift, and its reduction is two carry-less
    //! multiplications (Gueron, Langley and Lindell's AES-GCM-SIV code).
    //! Products are summed unreduced over up to [`POWERS`] blocks, each
    //! multiplied by the power of the key it ends up with, and reduced once:
    //! a typical value (its AAD, data and lengths block) is one reduction.

    use super::BLOCK;
    use std::arch::x86_64::*;

    /// Blocks summed per reduction.
    const POWERS: usize = 16;

    pub struct Ghash {
        /// The POLYVAL key and its powers: `powers[i]` is K^(i+1).
        powers: [__m128i; POWERS],
    }

    impl Ghash {
        /// `None` without PCLMULQDQ and SSSE3 (byte shuffles).
        pub fn new(h: &[u8; BLOCK]) -> Option<Ghash> {
            use crate::cpu::{has, Feature};
            if !(has(Feature::Pclmulqdq) && has(Feature::Ssse3)) {
                return None;
            }
            // SAFETY: the CPU has the features `powers_of` is compiled for.
            Some(Ghash {
                powers: unsafe { powers_of(h) },
            })
        }

        /// GHASH(A ‖ pad ‖ C ‖ pad ‖ [len A]₆₄ ‖ [len C]₆₄), both lengths in bits.
        pub fn digest(&self, aad: &[u8], data: &[u8]) -> [u8; BLOCK] {
            // SAFETY: a `Ghash` only exists where `new` found the features.
            unsafe { digest(&self.powers, aad, data) }
        }
    }

    impl Drop for Ghash {
        fn drop(&mut self) {
            // SAFETY: writing zeros into our own SSE registers' storage.
            for p in &mut self.powers {
                unsafe { std::ptr::write_volatile(p, _mm_setzero_si128()) };
            }
        }
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn byte_swap(x: __m128i) -> __m128i {
        _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn load(bytes: &[u8]) -> __m128i {
        debug_assert_eq!(bytes.len(), BLOCK);
        byte_swap(_mm_loadu_si128(bytes.as_ptr().cast()))
    }

    /// A partial block, zero-padded.
    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn load_padded(bytes: &[u8]) -> __m128i {
        let mut block = [0u8; BLOCK];
        block[..bytes.len()].copy_from_slice(bytes);
        // GHASH only ever sees ciphertext, AAD and IVs: nothing to wipe.
        load(&block)
    }

    /// A sum of 256-bit carry-less products, not yet reduced: the low and
    /// high 128 bits and the middle 128 bits that straddle them.
    #[derive(Clone, Copy)]
    struct Wide {
        lo: __m128i,
        mid: __m128i,
        hi: __m128i,
    }

    impl Wide {
        #[inline]
        #[target_feature(enable = "sse2")]
        unsafe fn zero() -> Wide {
            Wide {
                lo: _mm_setzero_si128(),
                mid: _mm_setzero_si128(),
                hi: _mm_setzero_si128(),
            }
        }

        /// Add the product a·b.
        #[inline]
        #[target_feature(enable = "pclmulqdq")]
        unsafe fn add(&mut self, a: __m128i, b: __m128i) {
            self.lo = _mm_xor_si128(self.lo, _mm_clmulepi64_si128(a, b, 0x00));
            self.hi = _mm_xor_si128(self.hi, _mm_clmulepi64_si128(a, b, 0x11));
            let mid = _mm_xor_si128(_mm_clmulepi64_si128(a, b, 0x10), _mm_clmulepi64_si128(a, b, 0x01));
            self.mid = _mm_xor_si128(self.mid, mid);
        }

        /// The sum times x⁻¹²⁸ modulo x¹²⁸ + x¹²⁷ + x¹²⁶ + x¹²¹ + 1: the
        /// POLYVAL product of each pair, summed.
        #[inline]
        #[target_feature(enable = "pclmulqdq")]
        unsafe fn reduce(self) -> __m128i {
            let lo = _mm_xor_si128(self.lo, _mm_slli_si128(self.mid, 8));
            let hi = _mm_xor_si128(self.hi, _mm_srli_si128(self.mid, 8));
            // x¹²⁸ ≡ x¹²⁷ + x¹²⁶ + x¹²¹ + 1: the high word 0xc2 << 56 folds
            // the low 64 bits up, twice.
            let poly = _mm_set_epi64x(0xc200_0000_0000_0000_u64 as i64, 1);
            let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, poly, 0x10));
            let lo = _mm_xor_si128(_mm_shuffle_epi32(lo, 0x4e), _mm_clmulepi64_si128(lo, poly, 0x10));
            _mm_xor_si128(hi, lo)
        }
    }

    /// The POLYVAL product a·b·x⁻¹²⁸.
    #[inline]
    #[target_feature(enable = "pclmulqdq")]
    unsafe fn dot(a: __m128i, b: __m128i) -> __m128i {
        let mut wide = Wide::zero();
        wide.add(a, b);
        wide.reduce()
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn powers_of(h: &[u8; BLOCK]) -> [__m128i; POWERS] {
        // mulX(H'): shift the byte-swapped H left by one bit, folding the
        // bit shifted out back in as x¹²⁷ + x¹²⁶ + x¹²¹ + 1.
        let h = load(h);
        let carries = _mm_srli_epi64(h, 63);
        let shifted = _mm_or_si128(_mm_slli_epi64(h, 1), _mm_slli_si128(carries, 8));
        let top = _mm_shuffle_epi32(_mm_srai_epi32(h, 31), 0xff);
        let key = _mm_xor_si128(
            shifted,
            _mm_and_si128(top, _mm_set_epi64x(0xc200_0000_0000_0000_u64 as i64, 1)),
        );
        let mut powers = [key; POWERS];
        for i in 1..POWERS {
            powers[i] = dot(powers[i - 1], key);
        }
        powers
    }

    /// One digest's blocks summed against the key's powers: in a run of n
    /// blocks, block i (from 0) is multiplied by K^(n-i), and the hash so
    /// far is added to the run's first block. The first run is the short
    /// one (the block count mod [`POWERS`]), so every later run is full.
    struct Runs<'p> {
        powers: &'p [__m128i; POWERS],
        /// The hash so far while the next block starts a run, else zero.
        carry: __m128i,
        wide: Wide,
        /// Blocks left in the current run, the next one included.
        left: usize,
    }

    impl<'p> Runs<'p> {
        #[inline]
        #[target_feature(enable = "sse2")]
        unsafe fn new(powers: &'p [__m128i; POWERS], blocks: usize) -> Runs<'p> {
            Runs {
                powers,
                carry: _mm_setzero_si128(),
                wide: Wide::zero(),
                left: (blocks - 1) % POWERS + 1,
            }
        }

        #[inline]
        #[target_feature(enable = "pclmulqdq")]
        unsafe fn push(&mut self, block: __m128i) {
            self.wide
                .add(_mm_xor_si128(block, self.carry), self.powers[self.left - 1]);
            self.carry = _mm_setzero_si128();
            self.left -= 1;
            if self.left == 0 {
                self.carry = self.wide.reduce();
                self.wide = Wide::zero();
                self.left = POWERS;
            }
        }

        /// Whole blocks of `bytes`, then the zero-padded rest.
        #[inline]
        #[target_feature(enable = "pclmulqdq,ssse3")]
        unsafe fn absorb(&mut self, bytes: &[u8]) {
            let mut blocks = bytes.chunks_exact(BLOCK);
            for block in &mut blocks {
                self.push(load(block));
            }
            let tail = blocks.remainder();
            if !tail.is_empty() {
                self.push(load_padded(tail));
            }
        }
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn digest(powers: &[__m128i; POWERS], aad: &[u8], data: &[u8]) -> [u8; BLOCK] {
        let blocks = aad.len().div_ceil(BLOCK) + data.len().div_ceil(BLOCK) + 1;
        let mut runs = Runs::new(powers, blocks);
        runs.absorb(aad);
        runs.absorb(data);
        let lengths = _mm_set_epi64x((aad.len() as u64 * 8) as i64, (data.len() as u64 * 8) as i64);
        // The lengths block ends the last run, which leaves the hash in `carry`.
        runs.push(lengths);
        debug_assert_eq!(runs.left, POWERS);
        let mut out = [0u8; BLOCK];
        _mm_storeu_si128(out.as_mut_ptr().cast(), byte_swap(runs.carry));
        out
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod clmul {
    //! Elsewhere the `aes-gcm` crate does the work.
    use super::BLOCK;

    pub enum Ghash {}

    impl Ghash {
        pub fn new(_h: &[u8; BLOCK]) -> Option<Ghash> {
            None
        }

        pub fn digest(&self, _aad: &[u8], _data: &[u8]) -> [u8; BLOCK] {
            match *self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use aes_gcm::aead::consts::U32;
    use aes_gcm::aead::generic_array::GenericArray;
    use aes_gcm::aead::AeadInPlace;
    use aes_gcm::aead::KeyInit;
    use aes_gcm::aes::Aes256;
    use aes_gcm::AesGcm;

    fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next() as u8).collect()
    }

    /// AES-256 of the counter blocks `from..from + n` (128-bit,
    /// little-endian) under `key`, by the `aes` crate.
    fn aes_ctr(key: &[u8], from: u128, n: usize) -> Vec<u8> {
        use aes_gcm::aes::cipher::BlockEncrypt;
        let aes = Aes256::new(GenericArray::from_slice(key));
        (from..from + n as u128)
            .flat_map(|c| {
                let mut block = GenericArray::clone_from_slice(&c.to_le_bytes());
                aes.encrypt_block(&mut block);
                block.to_vec()
            })
            .collect()
    }

    /// The generator's output is AES-256-CTR under the seed, from the
    /// third block on (the first two are the next key, never handed
    /// out); each batch starts again under that next key. Lengths that
    /// end mid-block and a full batch.
    #[test]
    fn aes_rng_is_counter_mode_with_the_key_replaced_each_batch() {
        let mut rng = Rng(0x51A7_3C0E_8D42_9B61);
        for len in [0, 1, 15, 16, 17, 100, 127, 128, 129, 1000, RNG_BATCH] {
            let seed: [u8; 32] = bytes(&mut rng, 32).try_into().expect("32 bytes");
            let mut gen = AesRng::new(&seed).expect("this test machine has AES-NI");
            let mut key = seed.to_vec();
            for _batch in 0..3 {
                let mut out = vec![0u8; len];
                gen.fill(&mut out);
                let stream = aes_ctr(&key, 0, (32 + len).div_ceil(BLOCK));
                assert_eq!(out, stream[32..32 + len], "length {len}");
                key = stream[..32].to_vec();
            }
        }
    }

    /// Every length from 0 to 300 bytes (all block remainders, runs of one
    /// to sixteen blocks and two runs), some to 1200 bytes (five runs), and
    /// AADs of 0 to 80 bytes: the same ciphertext and tag as the `aes-gcm`
    /// crate, and decryption back.
    #[test]
    fn agrees_with_the_aes_gcm_crate() {
        let mut rng = Rng(0x6C3A_11D0_9E2B_4F17);
        for round in 0..1200 {
            let key: [u8; 32] = bytes(&mut rng, 32).try_into().unwrap();
            let Some(gcm) = Gcm32::new(&key) else {
                panic!("this test machine must have PCLMULQDQ (x86-64 since 2010)");
            };
            let reference = AesGcm::<Aes256, U32>::new(GenericArray::from_slice(&key));
            let iv: [u8; 32] = bytes(&mut rng, 32).try_into().unwrap();
            let aad = bytes(&mut rng, round % 81);
            let plain = bytes(&mut rng, if round % 7 == 0 { round } else { round % 301 });
            let mut ours = plain.clone();
            let tag = gcm.encrypt(&iv, &aad, &mut ours);
            let mut theirs = plain.clone();
            let their_tag = reference
                .encrypt_in_place_detached(GenericArray::from_slice(&iv), &aad, &mut theirs)
                .unwrap();
            assert_eq!(ours, theirs, "ciphertext, round {round}");
            assert_eq!(tag[..], their_tag[..], "tag, round {round}");
            gcm.decrypt(&iv, &aad, &mut ours, &tag).unwrap();
            assert_eq!(ours, plain, "round trip, round {round}");
        }
    }

    /// The counter wraps within its last 32 bits (inc32) across and within
    /// batches: the keystream is AES of each counter block, as the `aes`
    /// crate computes it.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn counter_wraps_in_its_last_four_bytes() {
        use aes_gcm::aes::cipher::BlockEncrypt;
        let mut rng = Rng(0x5EED_0FC0_FFEE);
        let key: [u8; 32] = bytes(&mut rng, 32).try_into().unwrap();
        let ours = aesni::Aes256::new(&key).expect("AES-NI");
        let reference = Aes256::new(GenericArray::from_slice(&key));
        for start in [0xffff_fff0_u32, 0xffff_fffa, 0xffff_ffff, 0xffff_fff8] {
            let mut j0: [u8; 16] = bytes(&mut rng, 16).try_into().unwrap();
            j0[12..].copy_from_slice(&start.to_be_bytes());
            for len in [1, 16, 100, 112, 113, 300] {
                let plain = bytes(&mut rng, len);
                let mut buf = plain.clone();
                let (mask, accepted) = ours.keystream(&j0, &mut buf, |_| true);
                assert!(accepted);
                let mut block = GenericArray::from(j0);
                reference.encrypt_block(&mut block);
                assert_eq!(mask[..], block[..], "E(J0)");
                for (i, chunk) in plain.chunks(16).enumerate() {
                    let mut counter = j0;
                    counter[12..].copy_from_slice(&start.wrapping_add(i as u32 + 1).to_be_bytes());
                    let mut ks = GenericArray::from(counter);
                    reference.encrypt_block(&mut ks);
                    for (k, b) in chunk.iter().enumerate() {
                        assert_eq!(buf[i * 16 + k], b ^ ks[k], "start {start:#x}, len {len}, block {i}");
                    }
                }
                // Refused: the data is left as it was.
                let mut untouched = plain.clone();
                assert!(!ours.keystream(&j0, &mut untouched, |_| false).1);
                assert_eq!(untouched, plain);
            }
        }
    }

    /// A change anywhere (data, AAD, IV, tag) fails, and the data is left as
    /// it was.
    #[test]
    fn any_change_fails_authentication_and_keeps_the_data() {
        let mut rng = Rng(0x0BAD_F00D_1234_5678);
        let key: [u8; 32] = bytes(&mut rng, 32).try_into().unwrap();
        let gcm = Gcm32::new(&key).expect("PCLMULQDQ");
        let iv: [u8; 32] = bytes(&mut rng, 32).try_into().unwrap();
        let aad = b"app:password:".to_vec();
        let mut ct = bytes(&mut rng, 70);
        let tag = gcm.encrypt(&iv, &aad, &mut ct);
        let flip = |v: &[u8], i: usize| {
            let mut v = v.to_vec();
            v[i] ^= 1;
            v
        };
        for i in 0..ct.len() {
            let mut altered = flip(&ct, i);
            let before = altered.clone();
            assert_eq!(gcm.decrypt(&iv, &aad, &mut altered, &tag), Err(AuthenticationFailed));
            assert_eq!(altered, before);
        }
        for i in 0..aad.len() {
            assert!(gcm.decrypt(&iv, &flip(&aad, i), &mut ct.clone(), &tag).is_err());
        }
        for i in 0..32 {
            let iv2: [u8; 32] = flip(&iv, i).try_into().unwrap();
            assert!(gcm.decrypt(&iv2, &aad, &mut ct.clone(), &tag).is_err());
        }
        for i in 0..16 {
            let tag2: [u8; 16] = flip(&tag, i).try_into().unwrap();
            assert!(gcm.decrypt(&iv, &aad, &mut ct.clone(), &tag2).is_err());
        }
        assert!(gcm.decrypt(&iv, &aad, &mut ct, &tag).is_ok());
    }
}
