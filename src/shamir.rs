//! Shamir secret sharing over GF(2^8) exactly as sops lays it out (spec §6.3):
//! AES polynomial 0x11B, x-coordinates 1..=n, each share is the y-bytes
//! followed by one x byte.

use rand::RngCore;
use std::fmt;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShamirError {
    ThresholdTooSmall,
    PartsLessThanThreshold,
    TooManyParts,
    EmptySecret,
    TooFewParts,
    UnequalLengths,
    ShareTooShort,
    DuplicateX,
}

impl fmt::Display for ShamirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShamirError::ThresholdTooSmall => "threshold must be at least 2",
            ShamirError::PartsLessThanThreshold => "parts cannot be less than threshold",
            ShamirError::TooManyParts => "parts cannot exceed 255",
            ShamirError::EmptySecret => "cannot split an empty secret",
            ShamirError::TooFewParts => "less than two parts cannot be used to reconstruct the secret",
            ShamirError::UnequalLengths => "all parts must be the same length",
            ShamirError::ShareTooShort => "parts must be at least two bytes",
            ShamirError::DuplicateX => "duplicate part detected",
        })
    }
}

impl std::error::Error for ShamirError {}

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, constant time.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut r: u8 = 0;
    for _ in 0..8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let hi = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & hi);
        b >>= 1;
    }
    r
}

/// Multiplicative inverse (a^254); inverse of 0 is 0, never used for it.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

fn div(a: u8, b: u8) -> u8 {
    mul(a, inv(b))
}

/// Split `secret` into `parts` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if parts < threshold {
        return Err(ShamirError::PartsLessThanThreshold);
    }
    if parts > 255 {
        return Err(ShamirError::TooManyParts);
    }
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if secret.is_empty() {
        return Err(ShamirError::EmptySecret);
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|i| {
            let mut s = vec![0u8; secret.len() + 1];
            s[secret.len()] = (i + 1) as u8;
            Zeroizing::new(s)
        })
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold]);
    for (byte_index, &secret_byte) in secret.iter().enumerate() {
        coefficients[0] = secret_byte;
        rand::rngs::OsRng.fill_bytes(&mut coefficients[1..]);
        for share in shares.iter_mut() {
            let x = share[secret.len()];
            // Horner evaluation of the polynomial at x.
            let mut y = 0u8;
            for &c in coefficients.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share[byte_index] = y;
        }
    }
    Ok(shares)
}

/// Recombine shares (Lagrange interpolation at x = 0).
pub fn combine(parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if parts.len() < 2 {
        return Err(ShamirError::TooFewParts);
    }
    let len = parts[0].len();
    if len < 2 {
        return Err(ShamirError::ShareTooShort);
    }
    if parts.iter().any(|p| p.len() != len) {
        return Err(ShamirError::UnequalLengths);
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(ShamirError::DuplicateX);
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (byte_index, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (i, part) in parts.iter().enumerate() {
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, div(xj, xs[i] ^ xj));
                }
            }
            acc ^= mul(part[byte_index], basis);
        }
        *out = acc;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn spec_vector_combines_with_any_two() {
        // spec §13.4
        let shares = [
            hex("2784e2e572f2614d10e4d018239546d22b63b8e6530d565eeb52fbd284a634d0 01"),
            hex("476532cb671b699b97a6075da293423ac40958f64a5150d55576e22407122c0a 02"),
            hex("673a8bd19db59820ea984a97dd91b762682ff10fb46552ac3f6a1c768f7e24b5 03"),
        ];
        let key = hex("07db5bff885c90f66dda9dd25c97b38a8745111fad395427814e05800cca3c6f");
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let parts: Vec<&[u8]> = pair.iter().map(|&i| shares[i].as_slice()).collect();
            assert_eq!(&combine(&parts).unwrap()[..], &key[..]);
        }
        let all: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        assert_eq!(&combine(&all).unwrap()[..], &key[..]);
    }

    #[test]
    fn split_then_combine() {
        let secret = [7u8; 32];
        let shares = split(&secret, 5, 3).unwrap();
        assert!(shares
            .iter()
            .enumerate()
            .all(|(i, s)| s.len() == 33 && s[32] == i as u8 + 1));
        let parts: Vec<&[u8]> = [4, 0, 2].iter().map(|&i| shares[i].as_slice()).collect();
        assert_eq!(&combine(&parts).unwrap()[..], &secret[..]);
    }

    #[test]
    fn field_inverse() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
    }

    #[test]
    fn rejects_bad_parameters() {
        assert_eq!(split(&[1], 3, 1).err(), Some(ShamirError::ThresholdTooSmall));
        assert_eq!(split(&[1], 2, 3).err(), Some(ShamirError::PartsLessThanThreshold));
        assert_eq!(
            combine(&[&[1, 1][..], &[2, 1][..]]).err(),
            Some(ShamirError::DuplicateX)
        );
    }
}
