//! dotenv pieces encrypted and decrypted line by line, without a tree.
//!
//! A dotenv file is flat: each line is a blank, a comment or one
//! `KEY=VALUE` pair whose value is a string. The general piece path loads a
//! piece into a tree (a key and a value allocated per line), walks it and
//! prints it; here each line goes straight from the input into the output
//! and the MAC input, with the walk's decisions ([`Selector`]) and the
//! printer's bytes. Whatever the general path would refuse or report as an
//! error gives `None`, and the caller falls back to the whole-tree path,
//! which gives the exact result or error. `pipeline`'s tests hold both
//! paths to the same bytes and MAC on random files.

use crate::cipher::{plaintext_bytes, value_from_plaintext, ValueCipher};
use crate::policy::Selector;
use crate::stores::dotenv::{push_escaped, unescaped, value_to_string, Line};
use crate::swar::{eq_mask, HI};
use crate::tree::{reserve_wiped, wipe_vec, Value};
use std::ops::Range;
use zeroize::{Zeroize, Zeroizing};

/// A dotenv line as [`crate::stores::dotenv::parse_line`] reads it, and
/// whether an entry's value has a `\` (to unescape).
struct Scanned<'a> {
    line: Line<'a>,
    /// The line's length in bytes.
    len: usize,
    value_has_backslash: bool,
}

/// The lines of a piece, split on `\n` as [`crate::stores::dotenv::lines`]
/// splits them (the text after the last newline is a line too), each
/// parsed as [`crate::stores::dotenv::parse_line`] parses it (`None`: a
/// line with no `=`). One pass over 64 bytes at a time marks the newlines,
/// `=` and `\` in bit masks, and each line is read from the masks: the
/// three searches per line it replaces were calls of their own over the
/// same bytes.
struct LineScanner<'a> {
    input: &'a [u8],
    /// Where the next line starts.
    pos: usize,
    /// The 64-byte block the masks are of.
    base: usize,
    newlines: u64,
    equals: u64,
    backslashes: u64,
    done: bool,
}

impl<'a> LineScanner<'a> {
    fn new(input: &'a [u8]) -> LineScanner<'a> {
        let mut scanner = LineScanner {
            input,
            pos: 0,
            base: 0,
            newlines: 0,
            equals: 0,
            backslashes: 0,
            done: false,
        };
        scanner.mark();
        scanner
    }

    /// The masks of the block at `base` (zeros past the end mark nothing).
    fn mark(&mut self) {
        let rest = &self.input[self.base.min(self.input.len())..];
        let block: &[u8; 64] = match rest.first_chunk::<64>() {
            Some(block) => block,
            None => {
                let mut padded = [0u8; 64];
                padded[..rest.len()].copy_from_slice(rest);
                (self.newlines, self.equals, self.backslashes) = masks(&padded);
                return;
            }
        };
        (self.newlines, self.equals, self.backslashes) = masks(block);
    }

    /// The next line: where it is, where its first `=` is, and whether a
    /// `\` follows that `=` in it.
    fn next_span(&mut self) -> Option<(Range<usize>, Option<usize>, bool)> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut equals = None;
        let mut backslash = false;
        loop {
            while self.pos - self.base >= 64 {
                self.base += 64;
                self.mark();
            }
            let from = !0u64 << (self.pos - self.base);
            let newline = self.newlines & from;
            // The bits of this block that belong to the line: those below
            // its newline (all of them when there is none).
            let line = from & newline.wrapping_sub(1) & !newline;
            if equals.is_none() {
                let eq = self.equals & line;
                if eq != 0 {
                    let at = eq.trailing_zeros();
                    equals = Some(self.base + at as usize);
                    // Backslashes after it (shifting by 64 leaves none).
                    backslash |= self.backslashes & line & (!0u64).checked_shl(at + 1).unwrap_or(0) != 0;
                }
            } else {
                backslash |= self.backslashes & line != 0;
            }
            if newline != 0 {
                let end = self.base + newline.trailing_zeros() as usize;
                self.pos = end + 1;
                return Some((start..end, equals, backslash));
            }
            if self.base + 64 >= self.input.len() {
                self.done = true;
                return Some((start..self.input.len(), equals, backslash));
            }
            self.pos = self.base + 64;
        }
    }
}

impl<'a> Iterator for LineScanner<'a> {
    type Item = Option<Scanned<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (span, equals, value_has_backslash) = self.next_span()?;
        let input = self.input;
        let line = &input[span.clone()];
        Some(Some(if line.is_empty() {
            Scanned {
                line: Line::Blank,
                len: 0,
                value_has_backslash: false,
            }
        } else if line[0] == b'#' {
            Scanned {
                line: Line::Comment(&line[1..]),
                len: line.len(),
                value_has_backslash: false,
            }
        } else {
            let Some(eq) = equals else { return Some(None) };
            Scanned {
                line: Line::Entry {
                    key: &input[span.start..eq],
                    value: &input[eq + 1..span.end],
                },
                len: line.len(),
                value_has_backslash,
            }
        }))
    }
}

/// Bit i of each mask: byte i of `block` is `\n`, `=`, `\`.
#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86-64; the four loads are within `block`.
    unsafe {
        let (nl, eq, bs) = (
            _mm_set1_epi8(b'\n' as i8),
            _mm_set1_epi8(b'=' as i8),
            _mm_set1_epi8(b'\\' as i8),
        );
        let mut masks = (0u64, 0u64, 0u64);
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast());
            let bit = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
            masks.0 |= bit(_mm_cmpeq_epi8(v, nl));
            masks.1 |= bit(_mm_cmpeq_epi8(v, eq));
            masks.2 |= bit(_mm_cmpeq_epi8(v, bs));
        }
        masks
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 64]) -> (u64, u64, u64) {
    let mut masks = (0u64, 0u64, 0u64);
    for (i, &b) in block.iter().enumerate() {
        masks.0 |= u64::from(b == b'\n') << i;
        masks.1 |= u64::from(b == b'=') << i;
        masks.2 |= u64::from(b == b'\\') << i;
    }
    masks
}

/// The cipher settings of one file.
pub(super) struct LineCrypt<'a> {
    pub cipher: &'a ValueCipher,
    pub selector: &'a Selector,
    pub mac_only_encrypted: bool,
}

/// The AAD of a top-level comment (an empty path).
const COMMENT_AAD: &[u8] = b":";

/// A key the general path keeps: UTF-8 (keys are strings in the tree) and
/// not `sops_…` (metadata to the whole-tree path: "already encrypted" on
/// encrypt, merged into the `sops` block on decrypt).
fn entry_key(key: &[u8]) -> Option<&str> {
    let key = if key.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. (Checked inline: keys are a few
        // bytes, and `from_utf8`'s call took 1.5–2 % of a dotenv decrypt.)
        unsafe { std::str::from_utf8_unchecked(key) }
    } else {
        std::str::from_utf8(key).ok()?
    };
    (!key.starts_with("sops_")).then_some(key)
}

/// Whether `bytes` is ASCII without a `\`: one pass, eight bytes a step,
/// no early exit (so it vectorises; values are short).
fn ascii_without_backslash(bytes: &[u8]) -> bool {
    let (mut high, mut backslash) = (0u64, 0u64);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        high |= w;
        backslash |= eq_mask(w, b'\\');
    }
    let tail_ok = words.remainder().iter().all(|&b| b.is_ascii() && b != b'\\');
    tail_ok && high & HI == 0 && backslash == 0
}

/// Move the plaintext `out[start..]` into a buffer of its own, wiping it
/// where it was.
fn take_tail(out: &mut Vec<u8>, start: usize) -> Zeroizing<Vec<u8>> {
    let tail = Zeroizing::new(out[start..].to_vec());
    out[start..].zeroize();
    out.truncate(start);
    tail
}

/// The AAD of a top-level key: `key:`.
fn key_aad<'b>(key: &str, buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    buf.extend_from_slice(key.as_bytes());
    buf.push(b':');
    buf
}

impl LineCrypt<'_> {
    /// Whether a value under `key` is encrypted.
    fn encrypts(&self, key: &str) -> bool {
        self.selector.should_encrypt(self.selector.key_matches(key), &[], false)
    }

    /// Encrypt the lines of `piece` onto `out` (the encrypted file's lines)
    /// and `mac_input` (the bytes the MAC covers).
    pub fn encrypt(&self, piece: &[u8], out: &mut Vec<u8>, mac_input: &mut Vec<u8>) -> Option<()> {
        let encrypt_comments = self.selector.should_encrypt(false, &[], true);
        let mut aad = Vec::with_capacity(64);
        let mut scratch = Zeroizing::new(Vec::new());
        for scanned in LineScanner::new(piece) {
            let Scanned {
                line,
                value_has_backslash,
                ..
            } = scanned?;
            match line {
                Line::Blank => {}
                Line::Comment(text) => {
                    std::str::from_utf8(text).ok()?;
                    out.push(b'#');
                    // Comments are encrypted, never hashed.
                    if encrypt_comments && !text.is_empty() {
                        self.cipher.encrypt_into(text, "comment", COMMENT_AAD, out);
                    } else {
                        out.extend_from_slice(text);
                    }
                    out.push(b'\n');
                }
                Line::Entry { key, value } => {
                    let key = entry_key(key)?;
                    let encrypted = self.encrypts(key);
                    let plain = if value_has_backslash {
                        // Room for the plaintext (see `reserve_wiped`): an
                        // unescaped value is no longer than its text.
                        reserve_wiped(&mut scratch, value.len());
                        unescaped(value, &mut scratch)
                    } else {
                        value
                    };
                    if encrypted || !self.mac_only_encrypted {
                        reserve_wiped(mac_input, plain.len());
                        mac_input.extend_from_slice(plain);
                    }
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'=');
                    if encrypted && !plain.is_empty() {
                        // Invalid UTF-8 is a byte string: still type `str`.
                        self.cipher.encrypt_into(plain, "str", key_aad(key, &mut aad), out);
                    } else {
                        // Escaping the unescaped value gives it back as written.
                        out.extend_from_slice(value);
                    }
                    out.push(b'\n');
                }
            }
        }
        Some(())
    }

    /// Decrypt the lines of `piece` onto `out` (the plaintext file's lines,
    /// which the caller wipes) and `mac_input`; returns how many comments
    /// did not decrypt (the "possibly unencrypted comment" warning).
    /// Plaintext never lands in `out`'s spare capacity (what is cut back
    /// is wiped first), so wiping its bytes is enough.
    pub fn decrypt(&self, piece: &[u8], out: &mut Vec<u8>, mac_input: &mut Vec<u8>) -> Option<usize> {
        let decrypt_comments = self.selector.should_encrypt(false, &[], true);
        let mut warned = 0;
        let mut aad = Vec::with_capacity(64);
        let mut scratch = Zeroizing::new(Vec::new());
        for scanned in LineScanner::new(piece) {
            let Scanned { line, len, .. } = scanned?;
            // Room for what this line can add, so that plaintext is never
            // left behind by a reallocation (see `reserve_wiped`): a
            // decrypted value is shorter than its text, and at most doubles
            // when its newlines are escaped.
            reserve_wiped(out, 2 * len + 2);
            reserve_wiped(mac_input, len);
            reserve_wiped(&mut scratch, len);
            match line {
                Line::Blank => {}
                Line::Comment(text) => {
                    let text = std::str::from_utf8(text).ok()?;
                    out.push(b'#');
                    if decrypt_comments && !text.is_empty() {
                        match self.cipher.decrypt_value_shared(text, COMMENT_AAD) {
                            Ok(Value::Comment(mut c) | Value::Str(mut c)) => {
                                out.extend_from_slice(c.as_bytes());
                                c.zeroize();
                            }
                            Ok(mut other) => {
                                other.zeroize();
                                warned += 1;
                                out.extend_from_slice(text.as_bytes());
                            }
                            Err(_) => {
                                warned += 1;
                                out.extend_from_slice(text.as_bytes());
                            }
                        }
                    } else {
                        out.extend_from_slice(text.as_bytes());
                    }
                    out.push(b'\n');
                }
                Line::Entry { key, value } => {
                    let key = entry_key(key)?;
                    out.extend_from_slice(key.as_bytes());
                    out.push(b'=');
                    if !self.encrypts(key) {
                        if !self.mac_only_encrypted {
                            mac_input.extend_from_slice(unescaped(value, &mut scratch));
                        }
                        out.extend_from_slice(value);
                    } else if !value.is_empty() {
                        // An `ENC[…]` text is ASCII without `\` (which the
                        // general path would unescape first); anything else
                        // is that path's to report.
                        if !ascii_without_backslash(value) {
                            return None;
                        }
                        // SAFETY: ASCII is valid UTF-8.
                        let text = unsafe { std::str::from_utf8_unchecked(value) };
                        self.decrypt_value(text, key_aad(key, &mut aad), out, mac_input)?;
                    }
                    out.push(b'\n');
                }
            }
        }
        Some(warned)
    }

    /// Decrypt one value onto `out`, printed, and its MAC input onto
    /// `mac_input`.
    fn decrypt_value(&self, text: &str, aad: &[u8], out: &mut Vec<u8>, mac_input: &mut Vec<u8>) -> Option<()> {
        let start = out.len();
        let typ = self.cipher.open_line_into(text, aad, out).ok()?;
        if matches!(typ, "str" | "bytes") {
            // The plaintext is printed as it is, valid UTF-8 or not, unless
            // it has a newline to escape.
            mac_input.extend_from_slice(&out[start..]);
            if crate::find::byte(b'\n', &out[start..]).is_some() {
                let plain = take_tail(out, start);
                push_escaped(out, &plain);
            }
            return Some(());
        }
        // Other types print and hash as the tree does with their values.
        let plain = take_tail(out, start);
        let mut value = value_from_plaintext(plain, typ).ok()?;
        if !matches!(value, Value::Comment(_)) {
            // Room for any number's digits (a float's run to a few hundred).
            let mut number = Zeroizing::new(Vec::with_capacity(1024));
            if let Some((bytes, _)) = plaintext_bytes(&value, &mut number) {
                // A float's digits may outgrow its text.
                reserve_wiped(mac_input, bytes.len());
                mac_input.extend_from_slice(bytes);
            }
        }
        let mut printed = value_to_string(&value);
        value.zeroize();
        let printed = printed.as_mut()?;
        reserve_wiped(out, 2 * printed.len() + 1);
        push_escaped(out, printed);
        wipe_vec(printed);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    /// The scanner reads the same lines as `lines` and `parse_line`, with
    /// the backslash flag of `memchr`, on random text dense in the bytes it
    /// marks and lines that cross its 64-byte blocks, ending with and
    /// without a newline.
    #[test]
    fn scanner_agrees_with_lines_and_parse_line() {
        use crate::stores::dotenv::{lines, parse_line};
        let mut rng = Rng(0x11E5_CA77);
        for round in 0..4000 {
            let len = if round % 3 == 0 { rng.below(400) } else { rng.below(70) };
            // Every other round, long lines: `=` and `\` in other blocks.
            let spread = if round % 2 == 0 { 12 } else { 160 };
            let input: Vec<u8> = (0..len)
                .map(|_| match rng.below(spread) {
                    0 | 1 => b'\n',
                    2 => b'=',
                    3 => b'\\',
                    4 => b'#',
                    5 => 0,
                    6 => 0xff,
                    _ => b'a' + rng.below(26) as u8,
                })
                .collect();
            // (kind, key or text, value, backslash in the value)
            type Parts<'a> = Option<(u8, &'a [u8], &'a [u8], bool)>;
            fn parts(line: Line<'_>) -> (u8, &[u8], &[u8]) {
                match line {
                    Line::Blank => (0, b"", b""),
                    Line::Comment(text) => (1, text, b""),
                    Line::Entry { key, value } => (2, key, value),
                }
            }
            let expected: Vec<Parts<'_>> = lines(&input)
                .map(|line| {
                    parse_line(line).map(|parsed| {
                        let (kind, a, b) = parts(parsed);
                        (kind, a, b, kind == 2 && b.contains(&b'\\'))
                    })
                })
                .collect();
            let scanned: Vec<Parts<'_>> = LineScanner::new(&input)
                .map(|s| {
                    s.map(|s| {
                        let (kind, a, b) = parts(s.line);
                        (kind, a, b, s.value_has_backslash)
                    })
                })
                .collect();
            assert_eq!(scanned, expected, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn ascii_check_agrees_with_the_plain_one() {
        let mut rng = Rng(0xA5C1_1000);
        for round in 0..20_000 {
            let len = rng.below(80);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(40) {
                    0 => b'\\',
                    1 => 0x80 + rng.below(128) as u8,
                    2 => 0x5c ^ 0x80,
                    _ => rng.below(128) as u8,
                })
                .map(|b| if round % 2 == 0 && b >= 0x80 { b & 0x7f } else { b })
                .collect();
            let plain = bytes.iter().all(|&b| b.is_ascii() && b != b'\\');
            assert_eq!(ascii_without_backslash(&bytes), plain, "{bytes:?}");
        }
    }
}
