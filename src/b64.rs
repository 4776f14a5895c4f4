//! Standard base64 (RFC 4648, padded) for the value cipher's short fields.
//!
//! Every encrypted value carries three base64 fields, so a large file
//! encodes or decodes a few hundred thousand short strings. The base64
//! crate's general-purpose engine pays a per-call setup and a table lookup
//! per character; base64-simd (already built for the AWS SDK) picks AVX2 or
//! SSSE3 at run time and was 1.5–4× faster on 12–300-byte fields. Decoding
//! takes only what base64-simd's strict engine accepts (canonical padded
//! base64); anything else is left to the base64 crate (`None`), so accepted
//! inputs and errors stay exactly the crate's.

use base64_simd::{Out, STANDARD};

/// The padded encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Append the padded base64 of `data` to `out`.
pub fn encode_into(out: &mut Vec<u8>, data: &[u8]) {
    let len = encoded_len(data.len());
    out.reserve(len);
    let start = out.len();
    // Written in place, not zeroed first (a memset per field).
    let spare = &mut out.spare_capacity_mut()[..len];
    let written = STANDARD.encode(data, Out::from_uninit_slice(spare)).len();
    debug_assert_eq!(written, len);
    // SAFETY: `encode` initialised the first `written` bytes of the spare
    // capacity (it returns the slice it wrote).
    unsafe { out.set_len(start + written) };
}

/// Decode canonical padded base64 into the start of `out` and return the
/// decoded length, or `None` when the text is not canonical base64 or does
/// not fit `out` (the caller then asks the base64 crate, which decides).
pub fn decode_canonical(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = STANDARD.decoded_length(text).ok()?;
    let out = out.get_mut(..len)?;
    STANDARD.decode(text, Out::from_slice(out)).ok().map(|d| d.len())
}

/// [`decode_canonical`] appending to `out` (which is left as it was on
/// `None`).
pub fn decode_canonical_append(text: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let len = STANDARD.decoded_length(text).ok()?;
    out.reserve(len);
    let start = out.len();
    let spare = &mut out.spare_capacity_mut()[..len];
    let written = STANDARD.decode(text, Out::from_uninit_slice(spare)).ok()?.len();
    // SAFETY: `decode` initialised the first `written` bytes of the spare
    // capacity (it returns the slice it wrote).
    unsafe { out.set_len(start + written) };
    Some(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    #[test]
    fn encoding_matches_the_base64_crate() {
        let mut rng = crate::testutil::Rng(7);
        for len in 0..400 {
            let data: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let mut out = b"prefix".to_vec();
            encode_into(&mut out, &data);
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(
                std::str::from_utf8(&out[6..]).unwrap(),
                STANDARD.encode(&data),
                "len {len}"
            );
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
