//! Parallel load of large YAML files: the input is cut before top-level
//! keys and the pieces go through the direct (else the streaming) loader on
//! several threads.
//!
//! A cut is only made before a line that starts a plain key at column 0 (or
//! before the column-0 comment lines directly above such a key) and follows
//! a non-blank, non-comment line, so comments stay with the key they precede
//! (go-yaml attaches comments by position) and every value of the previous
//! piece has ended: block and plain scalars of a top-level value are
//! indented, and a quoted scalar or flow collection running over the cut
//! leaves its piece unterminated, which fails to load. Anything unusual —
//! a piece that fails or bails, more than one document, a key repeated
//! across pieces — makes the caller load the whole input the usual way,
//! which gives the exact result or error.

use super::fast::Fast;
use super::FxBuild;
use crate::tree::{Branch, Item};
use std::collections::HashSet;

/// Below this size one thread is faster.
pub const PARALLEL_MIN_BYTES: usize = 256 * 1024;
const MAX_PIECES: usize = 8;
/// Longest comment block a cut may be placed above.
const MAX_COMMENT_LINES: usize = 64;

/// Whether a line may start a piece (see the module comment): a plain key
/// at column 0, or a block of column-0 comment lines directly followed by
/// one (the comments then stay with the key they precede), right after a
/// non-blank, non-comment line.
pub(super) fn is_cut_line(data: &[u8], start: usize) -> bool {
    let line_end = |from: usize| crate::find::byte(b'\n', &data[from..]).map_or(data.len(), |i| from + i);
    // Skip column-0 comment lines; a key line must follow with no blank line.
    // Capped, so that trying every line of a long comment block stays linear.
    let mut key = start;
    for _ in 0..MAX_COMMENT_LINES {
        if data.get(key) != Some(&b'#') {
            break;
        }
        key = line_end(key) + 1;
    }
    let Some(&first) = data.get(key) else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return false;
    }
    // The previous line: non-blank and not a comment.
    let Some(prev_end) = start.checked_sub(1) else {
        return false;
    };
    let prev_start = crate::find::byte_rev(b'\n', &data[..prev_end]).map_or(0, |i| i + 1);
    let prev = &data[prev_start..prev_end];
    // Not after a document marker (`---`, `...`) or a directive: a piece
    // must not end a document the whole input continues.
    if matches!(prev.first(), Some(b'-' | b'.' | b'%')) {
        return false;
    }
    match prev.iter().find(|&&b| b != b' ' && b != b'\t' && b != b'\r') {
        None | Some(b'#') => false,
        Some(_) => true,
    }
}

/// Cut points near `len / pieces` multiples; fewer when none is found.
pub fn cut_points(data: &[u8], pieces: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let step = data.len() / pieces.max(1);
    let mut from = 0;
    for k in 1..pieces {
        let mut pos = (k * step).max(from + 1);
        let mut found = None;
        while pos < data.len() {
            let Some(nl) = data[pos..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let start = pos + nl + 1;
            if is_cut_line(data, start) {
                found = Some(start);
                break;
            }
            pos = start;
        }
        match found {
            Some(c) => {
                cuts.push(c);
                from = c;
            }
            None => break,
        }
    }
    cuts
}

/// Load `data` cut at `cuts` (ascending), one piece per thread. `None`
/// means "load it whole instead".
pub fn load_pieces(data: &[u8], cuts: &[usize]) -> Option<Vec<Branch>> {
    if cuts.is_empty() {
        return None;
    }
    let mut bounds = Vec::with_capacity(cuts.len() + 2);
    bounds.push(0);
    bounds.extend_from_slice(cuts);
    bounds.push(data.len());
    let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &data[w[0]..w[1]]).collect();
    let loaded: Vec<Option<Branch>> = std::thread::scope(|s| {
        // A thread that cannot be started leaves its piece to this one.
        let handles: Vec<_> = pieces[1..]
            .iter()
            .map(|&p| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || load_one(p))
                    .map_err(|_| p)
            })
            .collect();
        let mut out = vec![load_one(pieces[0])];
        for h in handles {
            out.push(match h {
                Ok(h) => h.join().ok().flatten(),
                Err(p) => load_one(p),
            });
        }
        out
    });
    let mut items: Vec<Item> = Vec::new();
    for piece in loaded {
        items.extend(piece?.0);
    }
    // The streaming loader checks duplicate keys inside each piece only.
    let mut seen: HashSet<&str, FxBuild> = HashSet::with_capacity_and_hasher(items.len(), FxBuild::default());
    let repeated = items
        .iter()
        .filter_map(|i| match &i.key {
            crate::tree::Key::Str(s) => Some(s.as_str()),
            crate::tree::Key::NonString { text, .. } => Some(text.as_str()),
            crate::tree::Key::Comment(_) => None,
        })
        .any(|k| !seen.insert(k));
    if repeated {
        return None;
    }
    Some(vec![Branch(items)])
}

/// One piece: exactly one mapping document through the direct loader or,
/// where it gives up, the streaming one.
pub(super) fn load_one(piece: &[u8]) -> Option<Branch> {
    super::direct::load(piece).or_else(|| load_streaming(piece))
}

/// [`load_one`] without the direct loader (which has given up already).
pub(super) fn load_streaming(piece: &[u8]) -> Option<Branch> {
    let mut docs = Fast::new(piece).load().ok()?;
    if docs.len() != 1 {
        return None;
    }
    docs.pop()
}

/// Parallel load if the input is large enough and cuts cleanly.
pub fn load(data: &[u8]) -> Option<Vec<Branch>> {
    if data.len() < PARALLEL_MIN_BYTES {
        return None;
    }
    let threads = crate::cpus::available().min(MAX_PIECES);
    if threads < 2 {
        return None;
    }
    load_pieces(data, &cut_points(data, threads))
}
