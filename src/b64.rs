//! Standard base64 (RFC 4648, padded) for the value cipher's short fields.
//!
//! Every encrypted value carries three base64 fields, so a large file
//! encodes or decodes a few hundred thousand short strings: per-call setup
//! matters as much as speed per byte. Encoding is done here: twelve bytes
//! at a time with SSSE3 (two twelve-byte groups with AVX2), the rest with a
//! table, inline, so a 32-byte IV or a 16-byte tag costs a few dozen
//! instructions (base64-simd's call for them went to its scalar fallback).
//! Decoding is done here too, sixteen characters at a time with SSSE3, and
//! takes only canonical padded base64; anything else is left to the base64
//! crate (`None`), so accepted inputs and errors stay exactly the crate's.
//! (base64-simd decoded before: it chose its code with std's feature
//! detection, about ten trapped `cpuid` per run in a VM, see [`crate::cpu`].)

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The padded encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Append the padded base64 of `data` to `out`.
pub fn encode_into(out: &mut Vec<u8>, data: &[u8]) {
    let len = encoded_len(data.len());
    // Exactly: callers size their buffers with `encoded_len`, and more
    // would make each value's string grow (a reallocation per value).
    out.reserve(len);
    let start = out.len();
    let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `dst` has room for `len` bytes.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        if data.len() >= 16 && crate::cpu::has(crate::cpu::Feature::Ssse3) {
            if crate::cpu::has(crate::cpu::Feature::Avx2) {
                simd::encode_avx2(data, dst);
            } else {
                simd::encode_ssse3(data, dst);
            }
        } else {
            encode_scalar(data, dst);
        }
        #[cfg(not(target_arch = "x86_64"))]
        encode_scalar(data, dst);
    }
    // SAFETY: the encoder initialised the `len` bytes after `start`.
    unsafe { out.set_len(start + len) };
}

/// The middle of an `ENC[…]` value, appended to `out`:
/// `,iv:` + the IV's base64 + `,tag:` + the tag's + `,type:`.
pub fn encode_iv_and_tag(out: &mut Vec<u8>, iv: &[u8; 32], tag: &[u8; 16]) {
    let mut text = [0u8; IV_AND_TAG + 16];
    text[..4].copy_from_slice(b",iv:");
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has(crate::cpu::Feature::Ssse3) {
        // SAFETY: the CPU has SSSE3; `text` has room for every store.
        unsafe { simd::encode_iv_and_tag(&mut text, iv, tag) };
        out.extend_from_slice(&text[..IV_AND_TAG]);
        return;
    }
    // SAFETY: each field fits where it is written.
    unsafe {
        encode_scalar(iv, text[4..].as_mut_ptr());
        text[48..53].copy_from_slice(b",tag:");
        encode_scalar(tag, text[53..].as_mut_ptr());
    }
    text[77..83].copy_from_slice(b",type:");
    out.extend_from_slice(&text[..IV_AND_TAG]);
}

/// `,iv:` (4), 44 characters, `,tag:` (5), 24 characters, `,type:` (6).
const IV_AND_TAG: usize = 83;

/// Encode `data` to `dst`.
///
/// # Safety
/// `dst` must be valid for `encoded_len(data.len())` bytes of writes.
#[inline]
unsafe fn encode_scalar(data: &[u8], dst: *mut u8) {
    let mut at = dst;
    let mut i = 0;
    while i + 3 <= data.len() {
        let n = u32::from(data[i]) << 16 | u32::from(data[i + 1]) << 8 | u32::from(data[i + 2]);
        let chars = [
            ALPHABET[(n >> 18) as usize],
            ALPHABET[(n >> 12 & 63) as usize],
            ALPHABET[(n >> 6 & 63) as usize],
            ALPHABET[(n & 63) as usize],
        ];
        at.cast::<[u8; 4]>().write_unaligned(chars);
        at = at.add(4);
        i += 3;
    }
    let chars = match data[i..] {
        [a] => [
            ALPHABET[usize::from(a >> 2)],
            ALPHABET[usize::from(a & 3) << 4],
            b'=',
            b'=',
        ],
        [a, b] => {
            let n = u32::from(a) << 8 | u32::from(b);
            [
                ALPHABET[(n >> 10) as usize],
                ALPHABET[(n >> 4 & 63) as usize],
                ALPHABET[((n & 15) << 2) as usize],
                b'=',
            ]
        }
        _ => return,
    };
    at.cast::<[u8; 4]>().write_unaligned(chars);
}

#[cfg(target_arch = "x86_64")]
mod simd {
    //! Muła and Lemire's vector base64 ("Faster Base64 Encoding and
    //! Decoding Using AVX2 Instructions", 2018): each three bytes are
    //! spread over a 32-bit lane, cut into four 6-bit indices with two
    //! multiplies, and the indices become ASCII through one byte shuffle.

    use std::arch::x86_64::*;

    /// Sixteen characters to twelve bytes at `dst` (sixteen are stored),
    /// or `false` if one is not of the alphabet. The decoding half of the
    /// same paper: each character's high and low nibble look up bit sets
    /// whose overlap marks it invalid, the high nibble (and `/`) picks
    /// the offset that turns it into its value, and two multiply-adds and
    /// a shuffle pack the 6-bit values.
    ///
    /// # Safety
    /// The CPU must have SSSE3; `dst` must be valid for 16 bytes of writes.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn decode_16(chars: &[u8; 16], dst: *mut u8) -> bool {
        let input = _mm_loadu_si128(chars.as_ptr().cast());
        let lut_lo = _mm_setr_epi8(
            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a,
        );
        let lut_hi = _mm_setr_epi8(
            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        );
        let lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
        let mask_2f = _mm_set1_epi8(0x2f);
        let hi_nibbles = _mm_and_si128(_mm_srli_epi32(input, 4), mask_2f);
        let lo_nibbles = _mm_and_si128(input, mask_2f);
        let lo = _mm_shuffle_epi8(lut_lo, lo_nibbles);
        let hi = _mm_shuffle_epi8(lut_hi, hi_nibbles);
        let clean = _mm_cmpeq_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128());
        if _mm_movemask_epi8(clean) != 0xffff {
            return false;
        }
        let eq_2f = _mm_cmpeq_epi8(input, mask_2f);
        let roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(eq_2f, hi_nibbles));
        let values = _mm_add_epi8(input, roll);
        let pairs = _mm_maddubs_epi16(values, _mm_set1_epi32(0x0140_0140));
        let words = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_1000));
        let bytes = _mm_shuffle_epi8(
            words,
            _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1),
        );
        _mm_storeu_si128(dst.cast(), bytes);
        true
    }

    /// Twelve bytes (the low twelve of each 128-bit lane) to sixteen
    /// characters, at either vector width.
    macro_rules! encode_lanes {
        ($input:expr, $set1_epi32:ident, $set1_epi8:ident, $shuffle:ident, $and:ident, $mulhi:ident,
         $mullo:ident, $or:ident, $subs:ident, $cmpgt:ident, $add:ident, $spread:expr, $lut:expr) => {{
            let x = $shuffle($input, $spread);
            let hi = $mulhi($and(x, $set1_epi32(0x0fc0_fc00)), $set1_epi32(0x0400_0040));
            let lo = $mullo($and(x, $set1_epi32(0x003f_03f0)), $set1_epi32(0x0100_0010));
            let indices = $or(hi, lo);
            // 0–25 → 13, 26–51 → 0, 52–61 → 1–10, 62 → 11, 63 → 12: which
            // offset of the table turns the index into its character.
            let class = $or(
                $subs(indices, $set1_epi8(51)),
                $and($cmpgt($set1_epi8(26), indices), $set1_epi8(13)),
            );
            $add($shuffle($lut, class), indices)
        }};
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn spread128() -> __m128i {
        _mm_setr_epi8(1, 0, 2, 1, 4, 3, 5, 4, 7, 6, 8, 7, 10, 9, 11, 10)
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn lut128() -> __m128i {
        let digit = (b'0' as i8).wrapping_sub(52);
        _mm_setr_epi8(
            (b'a' as i8).wrapping_sub(26),
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            digit,
            (b'+' as i8).wrapping_sub(62),
            (b'/' as i8).wrapping_sub(63),
            b'A' as i8,
            0,
            0,
        )
    }

    /// Sixteen characters of the low twelve bytes of `input`.
    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn encode12(input: __m128i) -> __m128i {
        encode_lanes!(
            input,
            _mm_set1_epi32,
            _mm_set1_epi8,
            _mm_shuffle_epi8,
            _mm_and_si128,
            _mm_mulhi_epu16,
            _mm_mullo_epi16,
            _mm_or_si128,
            _mm_subs_epu8,
            _mm_cmpgt_epi8,
            _mm_add_epi8,
            spread128(),
            lut128()
        )
    }

    /// `0, 1, …, 15` then sixteen `0x80`: from offset d, the shuffle that
    /// moves a vector's bytes down by d and zeroes the top d.
    static SHIFT_DOWN: [u8; 32] = {
        let mut t = [0x80u8; 32];
        let mut i = 0;
        while i < 16 {
            t[i] = i as u8;
            i += 1;
        }
        t
    };

    /// The last 4–15 bytes of `data` (at least sixteen long) from `i` on,
    /// then the padding: read as the sixteen bytes that end `data`, moved
    /// down and zero-filled, so nothing outside `data` is read; written
    /// through a stack buffer, four characters at a time, so nothing past
    /// the encoded length is written either.
    #[inline]
    #[target_feature(enable = "ssse3")]
    unsafe fn encode_tail(data: &[u8], mut i: usize, mut at: *mut u8) {
        let n = data.len();
        let last16 = _mm_loadu_si128(data.as_ptr().add(n - 16).cast());
        while i < n {
            let shift = _mm_loadu_si128(SHIFT_DOWN.as_ptr().add(i + 16 - n).cast());
            let mut chars = [0u8; 16];
            _mm_storeu_si128(chars.as_mut_ptr().cast(), encode12(_mm_shuffle_epi8(last16, shift)));
            let take = (n - i).min(12);
            // Zero bits encode as 'A': the characters past the data are
            // padding.
            match take % 3 {
                1 => chars[take / 3 * 4 + 2..][..2].copy_from_slice(b"=="),
                2 => chars[take / 3 * 4 + 3] = b'=',
                _ => {}
            }
            for quad in chars.chunks_exact(4).take(take.div_ceil(3)) {
                at.cast::<[u8; 4]>()
                    .write_unaligned(quad.try_into().expect("chunks of 4"));
                at = at.add(4);
            }
            i += take;
        }
    }

    /// [`super::encode_iv_and_tag`]'s text after its `,iv:`: the IV as
    /// twelve, twelve and eight bytes, the tag as twelve and four, each
    /// zero-filled to a vector; the characters of the zeros are then
    /// overwritten by the padding and the separators.
    ///
    /// # Safety
    /// The CPU has SSSE3.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn encode_iv_and_tag(text: &mut [u8; super::IV_AND_TAG + 16], iv: &[u8; 32], tag: &[u8; 16]) {
        let at = text.as_mut_ptr();
        let store = |offset: usize, input: __m128i| _mm_storeu_si128(at.add(offset).cast(), encode12(input));
        // Twelve of sixteen bytes loaded each time; the last loads take 8
        // and 4 bytes, zero-extended.
        store(4, _mm_loadu_si128(iv.as_ptr().cast()));
        store(20, _mm_loadu_si128(iv.as_ptr().add(12).cast()));
        store(36, _mm_loadl_epi64(iv.as_ptr().add(24).cast()));
        text[47] = b'=';
        text[48..53].copy_from_slice(b",tag:");
        store(53, _mm_loadu_si128(tag.as_ptr().cast()));
        let last = u32::from_le_bytes(tag[12..].try_into().expect("4 bytes"));
        store(69, _mm_cvtsi32_si128(last as i32));
        text[75..77].copy_from_slice(b"==");
        text[77..83].copy_from_slice(b",type:");
    }

    /// # Safety
    /// The CPU has SSSE3; `data` is at least sixteen bytes; `dst` has room
    /// for the encoded length of `data`.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn encode_ssse3(data: &[u8], dst: *mut u8) {
        debug_assert!(data.len() >= 16);
        let mut i = 0;
        let mut at = dst;
        // Each step reads sixteen bytes and uses twelve.
        while i + 16 <= data.len() {
            let chars = encode12(_mm_loadu_si128(data.as_ptr().add(i).cast()));
            _mm_storeu_si128(at.cast(), chars);
            i += 12;
            at = at.add(16);
        }
        encode_tail(data, i, at);
    }

    /// # Safety
    /// The CPU has AVX2; `data` is at least sixteen bytes; `dst` has room
    /// for the encoded length of `data`.
    #[target_feature(enable = "avx2")]
    pub unsafe fn encode_avx2(data: &[u8], dst: *mut u8) {
        debug_assert!(data.len() >= 16);
        let mut i = 0;
        let mut at = dst;
        let spread = _mm256_broadcastsi128_si256(spread128());
        let lut = _mm256_broadcastsi128_si256(lut128());
        // Each step reads sixteen bytes at `i` and at `i + 12`, and uses
        // twelve of each.
        while i + 28 <= data.len() {
            let p = data.as_ptr().add(i);
            let input = _mm256_set_m128i(_mm_loadu_si128(p.add(12).cast()), _mm_loadu_si128(p.cast()));
            let chars = encode_lanes!(
                input,
                _mm256_set1_epi32,
                _mm256_set1_epi8,
                _mm256_shuffle_epi8,
                _mm256_and_si256,
                _mm256_mulhi_epu16,
                _mm256_mullo_epi16,
                _mm256_or_si256,
                _mm256_subs_epu8,
                _mm256_cmpgt_epi8,
                _mm256_add_epi8,
                spread,
                lut
            );
            _mm256_storeu_si256(at.cast(), chars);
            i += 24;
            at = at.add(32);
        }
        if i + 16 <= data.len() {
            _mm_storeu_si128(at.cast(), encode12(_mm_loadu_si128(data.as_ptr().add(i).cast())));
            i += 12;
            at = at.add(16);
        }
        encode_tail(data, i, at);
    }
}

/// Each character's 6-bit value, or `INVALID`.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// The padded decoded length of `text`: `None` unless it is whole groups
/// of four with at most two `=` at the end.
fn decoded_len(text: &[u8]) -> Option<usize> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let pad = match text {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    Some(text.len() / 4 * 3 - pad)
}

/// Decode `text` (whose length [`decoded_len`] accepted as `len`) to `dst`:
/// `false` if a character is not of the alphabet or the last one has bits
/// set past the data (not canonical). Writes at most `len` bytes.
///
/// # Safety
/// `dst` must be valid for `len` bytes of writes.
unsafe fn decode_to(text: &[u8], len: usize, dst: *mut u8) -> bool {
    let groups = text.len() / 4;
    if groups == 0 {
        return true;
    }
    // All groups but the last, which may hold padding.
    let body = &text[..(groups - 1) * 4];
    let mut i = 0;
    let mut at = dst;
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has(crate::cpu::Feature::Ssse3) {
        // Sixteen characters give twelve bytes; the store writes sixteen,
        // so it stops while four more bytes of the body follow.
        while i + 16 + 4 <= body.len() {
            if !simd::decode_16(body[i..i + 16].try_into().expect("16 characters"), at) {
                return false;
            }
            i += 16;
            at = at.add(12);
        }
    }
    let mut bits = 0u32;
    while i < body.len() {
        let n = quad(&body[i..i + 4]);
        bits |= n;
        at.cast::<[u8; 3]>()
            .write_unaligned([(n >> 16) as u8, (n >> 8) as u8, n as u8]);
        at = at.add(3);
        i += 4;
    }
    if bits & INVALID_BIT != 0 {
        return false;
    }
    // The last group: 1, 2 or 3 bytes.
    let last = &text[text.len() - 4..];
    let tail = len - (groups - 1) * 3;
    let chars: [u8; 4] = std::array::from_fn(|k| if k <= tail { last[k] } else { b'A' });
    let n = quad(&chars);
    // Past the data, the bits must be zero (what a canonical encoder writes).
    let spare = match tail {
        1 => n & 0xffff,
        2 => n & 0xff,
        _ => 0,
    };
    if n & INVALID_BIT != 0 || spare != 0 {
        return false;
    }
    let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, tail);
    true
}

/// Set in [`quad`]'s result when a character is not of the alphabet.
const INVALID_BIT: u32 = 1 << 31;

/// Four characters' 24 bits, with [`INVALID_BIT`] if one is not of the
/// alphabet.
#[inline]
fn quad(chars: &[u8]) -> u32 {
    let v = |k: usize| u32::from(DECODE[usize::from(chars[k])]);
    let (a, b, c, d) = (v(0), v(1), v(2), v(3));
    let invalid = (a | b | c | d) & 0x80;
    a << 18 | b << 12 | c << 6 | d | invalid << 24
}

/// Decode canonical padded base64 into the start of `out` and return the
/// decoded length, or `None` when the text is not canonical base64 or does
/// not fit `out` (the caller then asks the base64 crate, which decides).
pub fn decode_canonical(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = decoded_len(text)?;
    let out = out.get_mut(..len)?;
    // SAFETY: `out` has room for the `len` bytes `decode_to` writes.
    unsafe { decode_to(text, len, out.as_mut_ptr()) }.then_some(len)
}

/// [`decode_canonical`] appending to `out` (which is left as it was on
/// `None`).
pub fn decode_canonical_append(text: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let len = decoded_len(text)?;
    out.reserve(len);
    let start = out.len();
    let spare = out.spare_capacity_mut().as_mut_ptr().cast::<u8>();
    // SAFETY: `spare` has room for `len` bytes; on failure the length is
    // left as it was, so what was written there is not part of `out`.
    if !unsafe { decode_to(text, len, spare) } {
        return None;
    }
    // SAFETY: `decode_to` initialised the `len` bytes after `start`.
    unsafe { out.set_len(start + len) };
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    type Encoder = unsafe fn(&[u8], *mut u8);

    /// Every length to 400 (each vector step and tail, the scalar encoder
    /// below sixteen bytes), random bytes and
    /// bytes that give every index (`0x00`, `0xff`, runs of each 6-bit
    /// value), through the dispatcher and each encoder the CPU has.
    #[test]
    fn encoding_matches_the_base64_crate() {
        let mut rng = crate::testutil::Rng(7);
        for len in 0..400 {
            for fill in 0..4 {
                let data: Vec<u8> = (0..len)
                    .map(|i| match fill {
                        0 => rng.below(256) as u8,
                        1 => 0xff,
                        2 => 0,
                        // 0b000000_000001_000010_… : each 6-bit index in turn.
                        _ => {
                            let bit = i * 8;
                            (0..8).fold(0u8, |b, k| {
                                let pos = bit + k;
                                let index = (pos / 6) % 64;
                                b << 1 | ((index >> (5 - pos % 6)) & 1) as u8
                            })
                        }
                    })
                    .collect();
                let expected = STANDARD.encode(&data);
                let mut out = b"prefix".to_vec();
                encode_into(&mut out, &data);
                assert_eq!(&out[..6], b"prefix");
                assert_eq!(std::str::from_utf8(&out[6..]).unwrap(), expected, "len {len}");
                let n = encoded_len(len);
                let mut each: Vec<(&str, Encoder)> = vec![("scalar", encode_scalar)];
                #[cfg(target_arch = "x86_64")]
                if len >= 16 {
                    assert!(
                        std::arch::is_x86_feature_detected!("avx2"),
                        "this test machine must have AVX2 to test both vector encoders"
                    );
                    each.push(("ssse3", simd::encode_ssse3));
                    each.push(("avx2", simd::encode_avx2));
                }
                for (name, encode) in each {
                    // A guard byte after the encoded length.
                    let mut buf = vec![0x5a_u8; n + 1];
                    // SAFETY: `buf` has room for `n` bytes; the CPU has the
                    // features (asserted above).
                    unsafe { encode(&data, buf.as_mut_ptr()) };
                    assert_eq!(&buf[..n], expected.as_bytes(), "{name}, len {len}");
                    assert_eq!(buf[n], 0x5a, "{name} wrote past the end, len {len}");
                }
            }
        }
    }

    /// The IV and tag fields come out as the base64 crate encodes them,
    /// between the separators, through the vector path and the table.
    #[test]
    fn iv_and_tag_fields_match_the_base64_crate() {
        let mut rng = crate::testutil::Rng(0x1B7A_6001);
        for round in 0..2000 {
            let iv: [u8; 32] = std::array::from_fn(|_| if round % 3 == 0 { 0xff } else { rng.below(256) as u8 });
            let tag: [u8; 16] = std::array::from_fn(|_| if round % 5 == 0 { 0 } else { rng.below(256) as u8 });
            let expected = format!(",iv:{},tag:{},type:", STANDARD.encode(iv), STANDARD.encode(tag));
            let mut out = b"ENC[".to_vec();
            encode_iv_and_tag(&mut out, &iv, &tag);
            assert_eq!(std::str::from_utf8(&out[4..]).unwrap(), expected);
            // The table path, as on CPUs without SSSE3.
            let mut text = [0u8; IV_AND_TAG];
            text[..4].copy_from_slice(b",iv:");
            // SAFETY: each field fits where it is written.
            unsafe {
                encode_scalar(&iv, text[4..].as_mut_ptr());
                encode_scalar(&tag, text[53..].as_mut_ptr());
            }
            assert_eq!(&text[4..48], &expected.as_bytes()[4..48]);
            assert_eq!(&text[53..77], &expected.as_bytes()[53..77]);
        }
    }

    #[test]
    fn decoding_agrees_with_the_base64_crate_or_defers() {
        let mut rng = crate::testutil::Rng(11);
        let mut buf = [0u8; 300];
        let mut long = 0;
        let mut decoded = 0;
        for round in 0..20_000 {
            // Short fields and ones long enough for the vector paths.
            let len = if round % 2 == 0 { rng.below(40) } else { rng.below(220) };
            let data: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let mut text = STANDARD.encode(&data).into_bytes();
            // Damage a third of them: a character, padding, or length.
            if round % 3 == 0 && !text.is_empty() {
                let i = rng.below(text.len());
                text[i] = b"A=/+-_ \n\x80z"[rng.below(10)];
            } else if round % 3 == 1 && rng.below(4) == 0 {
                text.push(b'=');
            }
            let ours = decode_canonical(&text, &mut buf).map(|n| buf[..n].to_vec());
            let mut appended = b"prefix".to_vec();
            let append_result = decode_canonical_append(&text, &mut appended);
            match &ours {
                Some(bytes) => {
                    assert_eq!(append_result, Some(bytes.len()));
                    assert_eq!(&appended[6..], &bytes[..]);
                }
                None => assert!(append_result.is_none() && appended == b"prefix"),
            }
            let crate_result = STANDARD.decode(&text).ok();
            match ours {
                Some(bytes) => {
                    decoded += 1;
                    long += usize::from(text.len() > 64);
                    assert_eq!(Some(bytes), crate_result, "{:?}", String::from_utf8_lossy(&text));
                }
                // Deferring is always allowed, but never for canonical input.
                None => assert!(
                    crate_result.is_none() || crate_result.as_ref().is_some_and(|d| d.len() > buf.len()),
                    "deferred canonical {:?}",
                    String::from_utf8_lossy(&text)
                ),
            }
        }
        assert!(decoded > 10_000 && long > 3_000, "{decoded} decoded, {long} long");
    }

    /// Every one- and two-byte input with every possible last character:
    /// the canonical ones decode, the others (bits set past the data)
    /// are left to the crate, which rejects them.
    #[test]
    fn decoding_rejects_bits_past_the_data() {
        let mut buf = [0u8; 8];
        for data in (0..=255u8)
            .map(|b| vec![b])
            .chain((0..=255u8).map(|b| vec![b, b ^ 0x5a]))
        {
            let text = STANDARD.encode(&data).into_bytes();
            // The last character before the padding.
            let at = data.len();
            for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
                let mut altered = text.clone();
                altered[at] = *c;
                let ours = decode_canonical(&altered, &mut buf).map(|n| buf[..n].to_vec());
                assert_eq!(
                    ours,
                    STANDARD.decode(&altered).ok(),
                    "{:?}",
                    String::from_utf8_lossy(&altered)
                );
            }
        }
    }

    #[test]
    fn decoding_defers_when_the_output_does_not_fit() {
        let text = STANDARD.encode([1u8; 10]);
        assert_eq!(decode_canonical(text.as_bytes(), &mut [0u8; 9]), None);
        assert_eq!(decode_canonical(text.as_bytes(), &mut [0u8; 10]), Some(10));
    }
}
