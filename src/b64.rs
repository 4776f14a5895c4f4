//! Standard base64 (RFC 4648, padded) for the value cipher's short fields.
//!
//! Every encrypted value carries three base64 fields, so a large file
//! encodes or decodes a few hundred thousand short strings. The base64
//! crate's general-purpose engine pays a per-call setup and a table lookup
//! per output character; here 12 input bits map to two output characters in
//! one lookup, and decoding takes eight characters per step. Decoding only
//! handles the canonical form; anything else is left to the base64 crate
//! (`None`), so accepted inputs and errors stay exactly the crate's.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Two output characters (little-endian) for each 12-bit group.
static PAIRS: [u16; 4096] = {
    let mut t = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        t[i] = ALPHABET[i >> 6] as u16 | (ALPHABET[i & 63] as u16) << 8;
        i += 1;
    }
    t
};

/// 6-bit value of each character, 0xFF for characters outside the alphabet.
static VALUES: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The padded encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Append the padded base64 of `data` to `out`.
pub fn encode_into(out: &mut Vec<u8>, data: &[u8]) {
    let start = out.len();
    out.resize(start + encoded_len(data.len()), 0);
    let dst = &mut out[start..];
    let pair = |n: u64| u64::from(PAIRS[(n & 0xFFF) as usize]);
    // Six bytes (48 bits, four 12-bit groups) to eight characters per step.
    let wide = data.len() / 6;
    for (src, out8) in data.chunks_exact(6).zip(dst.chunks_exact_mut(8)) {
        let mut word = [0u8; 8];
        word[2..].copy_from_slice(src);
        let n = u64::from_be_bytes(word);
        let chars = pair(n >> 36) | pair(n >> 24) << 16 | pair(n >> 12) << 32 | pair(n) << 48;
        out8.copy_from_slice(&chars.to_le_bytes());
    }
    let (data, dst) = (&data[wide * 6..], &mut dst[wide * 8..]);
    let chunks = data.chunks_exact(3);
    let rest = chunks.remainder();
    let mut o = 0;
    for (c, out4) in chunks.zip(dst.chunks_exact_mut(4)) {
        let n = u64::from(c[0]) << 16 | u64::from(c[1]) << 8 | u64::from(c[2]);
        let chars = pair(n >> 12) | pair(n) << 16;
        out4.copy_from_slice(&(chars as u32).to_le_bytes());
        o += 4;
    }
    match *rest {
        [a] => {
            let n = usize::from(a) << 4;
            dst[o..o + 2].copy_from_slice(&PAIRS[n].to_le_bytes());
            dst[o + 2..o + 4].copy_from_slice(b"==");
        }
        [a, b] => {
            let n = usize::from(a) << 10 | usize::from(b) << 2;
            dst[o..o + 2].copy_from_slice(&PAIRS[n >> 6].to_le_bytes());
            dst[o + 2] = ALPHABET[n & 63];
            dst[o + 3] = b'=';
        }
        _ => {}
    }
}

/// Decode canonical padded base64 into the start of `out` and return the
/// decoded length, or `None` when the text is not canonical base64 or does
/// not fit `out` (the caller then asks the base64 crate, which decides).
pub fn decode_canonical(text: &[u8], out: &mut [u8]) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let (body, last) = text.split_at(text.len() - 4);
    let pad = last.iter().rev().take_while(|&&c| c == b'=').count();
    let len = body.len() / 4 * 3 + 3 - pad;
    if pad > 2 || len > out.len() {
        return None;
    }
    let value = |c: u8| u32::from(VALUES[usize::from(c)]);
    let wide = |c: u8| u64::from(VALUES[usize::from(c)]);
    // Eight characters (48 bits) to six bytes per step, then a last group
    // of four if the body has an odd number of groups.
    let pairs = body.len() / 8;
    for (q, dst) in body.chunks_exact(8).zip(out.chunks_exact_mut(6)) {
        let v: [u64; 8] = std::array::from_fn(|k| wide(q[k]));
        // A character outside the alphabet has its high bits set.
        if (v[0] | v[1] | v[2] | v[3] | v[4] | v[5] | v[6] | v[7]) & 0xC0 != 0 {
            return None;
        }
        let n = v[0] << 42 | v[1] << 36 | v[2] << 30 | v[3] << 24 | v[4] << 18 | v[5] << 12 | v[6] << 6 | v[7];
        dst.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    if let Some(q) = body.get(pairs * 8..).filter(|q| q.len() == 4) {
        let (a, b, c, d) = (value(q[0]), value(q[1]), value(q[2]), value(q[3]));
        if (a | b | c | d) & 0xC0 != 0 {
            return None;
        }
        let n = a << 18 | b << 12 | c << 6 | d;
        out[pairs * 6..pairs * 6 + 3].copy_from_slice(&n.to_be_bytes()[1..]);
    }
    let o = body.len() / 4 * 3;
    let (a, b) = (value(last[0]), value(last[1]));
    let c = if pad >= 2 { 0 } else { value(last[2]) };
    let d = if pad >= 1 { 0 } else { value(last[3]) };
    if (a | b | c | d) & 0xC0 != 0 {
        return None;
    }
    let n = a << 18 | b << 12 | c << 6 | d;
    let bytes = n.to_be_bytes();
    // Canonical: the bits below the last byte must be zero.
    if (pad == 1 && bytes[3] != 0) || (pad == 2 && (bytes[2] != 0 || bytes[3] != 0)) {
        return None;
    }
    out[o..len].copy_from_slice(&bytes[1..4 - pad]);
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    #[test]
    fn encoding_matches_the_base64_crate() {
        let mut rng = crate::testutil::Rng(7);
        for len in 0..200 {
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
        let mut decoded = 0;
        for round in 0..20_000 {
            let len = rng.below(40);
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
            let crate_result = STANDARD.decode(&text).ok();
            match ours {
                Some(bytes) => {
                    decoded += 1;
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
        assert!(decoded > 10_000);
    }

    #[test]
    fn decoding_defers_when_the_output_does_not_fit() {
        let text = STANDARD.encode([1u8; 10]);
        assert_eq!(decode_canonical(text.as_bytes(), &mut [0u8; 9]), None);
        assert_eq!(decode_canonical(text.as_bytes(), &mut [0u8; 10]), Some(10));
    }
}
