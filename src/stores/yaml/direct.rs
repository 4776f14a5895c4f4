//! Direct load of the plainest YAML, line by line, without tokens or events.
//!
//! Most secrets files are block mappings and sequences of one-line scalars
//! with a few comments. For those, the scanner → parser → streaming loader
//! chain (`fast`) spends most of its time on machinery the file does not
//! use. This loader reads such a document straight into the tree and gives
//! up (`None`) at the first thing outside that subset; the caller then runs
//! the streaming loader, which produces the identical tree or error. The
//! result is checked against that loader on random documents in the tests.
//!
//! The subset:
//! - printable ASCII and `\n` only (no tabs, `\r`, control or non-ASCII
//!   characters, whose YAML rules are subtle);
//! - block mappings whose keys are plain words (`[A-Za-z0-9_][A-Za-z0-9_./-]*`)
//!   followed by `:` and a space or the line end, no duplicate keys;
//! - block sequences (`- `) of one-line scalars or of mappings whose first
//!   key is on the dash line;
//! - one-line scalars: plain (no indicator first, no `: ` inside), single-
//!   quoted, or double-quoted without escapes; never empty (null by absence);
//! - a line comment after a scalar value of a mapping pair (not on a dash
//!   line), and blocks of whole-line comments directly above a key at the
//!   key's column, with no blank line next to them.
//!
//! Everything else — flow collections, block scalars, multi-line scalars,
//! anchors, tags, document markers, comments anywhere else — gives up.

use super::fast::{has_duplicate_keys, scalar_value};
use super::resolve::{resolve_plain, Resolved};
use crate::tree::{Branch, Item, Key, Value};

/// Bail out: the input is outside the subset.
struct Off;

type R<T> = Result<T, Off>;

/// Nesting beyond which the streaming loader takes over.
const MAX_DEPTH: usize = 64;

/// Longest plain key taken (go-yaml's simple keys end 1024 bytes on).
const MAX_KEY_LEN: usize = 1000;

/// go-yaml looks for a line comment at most 512 bytes past a token; stay
/// well inside that.
const LINE_COMMENT_REACH: usize = 400;

/// The document in `input` as its top-level items, or `None` when it is
/// outside the subset (see the module comment).
pub fn load(input: &[u8]) -> Option<Branch> {
    if !printable_ascii(input) {
        return None;
    }
    let mut d = Direct {
        s: input,
        pos: 0,
        depth: 0,
    };
    let items = d.mapping(0, None).ok()?;
    if items.is_empty() || d.pos < input.len() {
        return None;
    }
    Some(Branch(items))
}

/// Only `\n` and 0x20..=0x7E.
fn printable_ascii(s: &[u8]) -> bool {
    let stops = crate::swar::Stops {
        eq: [0x7F],
        below: 0x20,
        high: true,
    };
    let mut i = 0;
    loop {
        i = crate::swar::scan_for(s, i, stops);
        match s.get(i) {
            None => return true,
            Some(b'\n') => i += 1,
            Some(_) => return false,
        }
    }
}

fn is_key_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-')
}

/// What follows a position: the first line that is neither blank nor a
/// comment, and what was passed on the way.
struct Ahead {
    /// Start of that line, or `None` at the end of the input.
    line: Option<usize>,
    /// Its indentation.
    indent: usize,
    comments: bool,
    blanks: bool,
}

struct Direct<'a> {
    s: &'a [u8],
    /// A line start, except while a dash line's first key is being read.
    pos: usize,
    depth: usize,
}

impl<'a> Direct<'a> {
    fn line_end(&self, from: usize) -> usize {
        crate::find::byte(b'\n', &self.s[from..]).map_or(self.s.len(), |i| from + i)
    }

    fn next_line(&self, end: usize) -> usize {
        (end + 1).min(self.s.len())
    }

    fn indent(&self, line: usize) -> usize {
        self.s[line..].iter().take_while(|&&b| b == b' ').count()
    }

    fn ahead(&self, from: usize) -> Ahead {
        let mut a = Ahead {
            line: None,
            indent: 0,
            comments: false,
            blanks: false,
        };
        let mut at = from;
        while at < self.s.len() {
            let ind = self.indent(at);
            let end = self.line_end(at);
            if at + ind == end {
                a.blanks = true;
            } else {
                if self.s[at + ind] != b'#' {
                    a.line = Some(at);
                    a.indent = ind;
                    return a;
                }
                a.comments = true;
            }
            at = self.next_line(end);
        }
        a
    }

    /// Nothing but blank or comment lines left: the open collections end,
    /// unless there are comments (foot comments, left to the streaming loader).
    fn end_of_input(&mut self, a: &Ahead) -> R<()> {
        if a.comments {
            return Err(Off);
        }
        self.pos = self.s.len();
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Off);
        }
        Ok(())
    }

    /// The comment lines from `self.pos` up to `line`, each at column `col`,
    /// as items.
    fn head_comments(&mut self, line: usize, col: usize, items: &mut Vec<Item>) -> R<()> {
        let mut at = self.pos;
        while at < line {
            let end = self.line_end(at);
            if self.indent(at) != col {
                return Err(Off);
            }
            items.push(Item {
                key: Key::Comment(ascii(&self.s[at + col + 1..end])?),
                value: Value::Null,
            });
            at = self.next_line(end);
        }
        Ok(())
    }

    /// A plain key at `at`: its end, or `None` if the text there is not one.
    /// The key is followed by `:` and a space or the line end.
    fn key_end(&self, at: usize) -> Option<usize> {
        let s = self.s;
        if !s.get(at).is_some_and(|&b| is_key_start(b)) {
            return None;
        }
        let mut e = at + 1;
        while e < s.len() && is_key_char(s[e]) {
            e += 1;
        }
        // go-yaml drops a simple key candidate 1024 bytes on.
        if e - at > MAX_KEY_LEN || s.get(e) != Some(&b':') {
            return None;
        }
        match s.get(e + 1) {
            None | Some(b' ' | b'\n') => Some(e),
            _ => None,
        }
    }

    /// The block mapping whose keys are at column `col`, from `self.pos` (a
    /// line start) or, for a mapping in a sequence entry, from `first`, its
    /// first key on the dash line.
    fn mapping(&mut self, col: usize, mut first: Option<usize>) -> R<Vec<Item>> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            let on_dash_line = first.is_some();
            let key_at = match first.take() {
                Some(k) => k,
                None => {
                    let a = self.ahead(self.pos);
                    let Some(line) = a.line else {
                        self.end_of_input(&a)?;
                        break;
                    };
                    if a.indent < col {
                        // Whatever comments lie between belong further out.
                        break;
                    }
                    if a.indent > col || (a.comments && a.blanks) {
                        return Err(Off);
                    }
                    if a.comments {
                        self.head_comments(line, col, &mut items)?;
                    }
                    line + col
                }
            };
            let key_end = self.key_end(key_at).ok_or(Off)?;
            let key = plain_key(&self.s[key_at..key_end])?;
            let end = self.line_end(key_end);
            let rest = key_end + 1;
            if self.s[rest..end].iter().all(|&b| b == b' ') {
                // A nested collection on the following lines.
                self.pos = self.next_line(end);
                let a = self.ahead(self.pos);
                let line = a.line.ok_or(Off)?;
                let dash = self.s[line + a.indent..].starts_with(b"- ");
                // Comment lines above the first key of a nested mapping are
                // its head comments (the mapping reads them); anything else
                // between is left to the streaming loader.
                if a.blanks || (a.comments && dash) {
                    return Err(Off);
                }
                let value = if a.indent > col && !dash {
                    Value::Map(Branch(self.mapping(a.indent, None)?))
                } else if a.indent >= col && dash {
                    Value::List(self.sequence(a.indent)?)
                } else {
                    // An empty value (null).
                    return Err(Off);
                };
                items.push(Item { key, value });
            } else {
                let (value, comment) = self.scalar(rest, end)?;
                if let Some(c) = comment {
                    if on_dash_line {
                        return Err(Off);
                    }
                    items.push(Item {
                        key: Key::Comment(c),
                        value: Value::Null,
                    });
                }
                items.push(Item { key, value });
                // A deeper line next (a continuation of the scalar or an
                // error) makes the next lookahead give up: deeper content,
                // or comments off the key column or inside a sequence.
                self.pos = self.next_line(end);
            }
        }
        self.depth -= 1;
        if has_duplicate_keys(&items) {
            return Err(Off);
        }
        Ok(items)
    }

    /// The block sequence whose dashes are at column `col`, from `self.pos`.
    fn sequence(&mut self, col: usize) -> R<Vec<Value>> {
        self.enter()?;
        let mut list = Vec::new();
        loop {
            let a = self.ahead(self.pos);
            let Some(line) = a.line else {
                self.end_of_input(&a)?;
                break;
            };
            if a.indent < col || (a.indent == col && !self.s[line + col..].starts_with(b"- ")) {
                // The end of the sequence (at the parent key's column, a
                // sibling key).
                break;
            }
            if a.indent > col || a.comments {
                return Err(Off);
            }
            let end = self.line_end(line);
            let item = line + col + 2;
            let item_at = item + self.s[item..end].iter().take_while(|&&b| b == b' ').count();
            if item_at == end {
                return Err(Off);
            }
            if self.key_end(item_at).is_some() {
                self.pos = line;
                list.push(Value::Map(Branch(self.mapping(item_at - line, Some(item_at))?)));
            } else {
                let (value, comment) = self.scalar(item_at, end)?;
                if comment.is_some() {
                    return Err(Off);
                }
                list.push(value);
                self.pos = self.next_line(end);
            }
        }
        self.depth -= 1;
        Ok(list)
    }

    /// A one-line scalar in `[from, end)` (leading spaces skipped) and the
    /// text of a line comment after it (without the `#`).
    fn scalar(&self, from: usize, end: usize) -> R<(Value, Option<String>)> {
        let s = self.s;
        let at = from + s[from..end].iter().take_while(|&&b| b == b' ').count();
        if at == end {
            return Err(Off);
        }
        let (value, after) = match s[at] {
            b'"' => {
                let close = crate::find::byte(b'"', &s[at + 1..end]).ok_or(Off)? + at + 1;
                if crate::find::byte(b'\\', &s[at + 1..close]).is_some() {
                    return Err(Off);
                }
                (Value::Str(ascii(&s[at + 1..close])?), close + 1)
            }
            b'\'' => {
                let mut text = Vec::new();
                let mut i = at + 1;
                loop {
                    let q = crate::find::byte(b'\'', &s[i..end]).ok_or(Off)? + i;
                    text.extend_from_slice(&s[i..q]);
                    if s.get(q + 1) == Some(&b'\'') {
                        text.push(b'\'');
                        i = q + 2;
                    } else {
                        break (Value::Str(ascii(&text)?), q + 1);
                    }
                }
            }
            b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@'
            | b'`' => return Err(Off),
            b'-' if matches!(s.get(at + 1), None | Some(b' ' | b'\n')) => return Err(Off),
            _ => {
                // A plain scalar ends at " #" or the line end; ": " or a
                // final ':' inside would make it a key.
                let (mut from, mut e) = (at, end);
                while let Some(i) = crate::find::either(b':', b'#', &s[from..end]) {
                    let p = from + i;
                    if s[p] == b':' && (p + 1 == end || s[p + 1] == b' ') {
                        return Err(Off);
                    }
                    if s[p] == b'#' && s[p - 1] == b' ' {
                        e = p;
                        break;
                    }
                    from = p + 1;
                }
                while s[e - 1] == b' ' {
                    e -= 1;
                }
                let text = &s[at..e];
                if text == b"<<" {
                    return Err(Off);
                }
                let text = ascii(text)?;
                let (_, r) = resolve_plain(&text);
                if matches!(r, Resolved::Uint(_)) {
                    return Err(Off);
                }
                (scalar_value(text, r), e)
            }
        };
        let gap = s[after..end].iter().take_while(|&&b| b == b' ').count();
        let hash = after + gap;
        if hash == end {
            return Ok((value, None));
        }
        if s[hash] != b'#' || gap == 0 || gap > LINE_COMMENT_REACH {
            return Err(Off);
        }
        Ok((value, Some(ascii(&s[hash + 1..end])?)))
    }
}

/// Text already checked to be printable ASCII (std's UTF-8 check has an
/// ASCII fast path; the lossy conversion goes byte by byte).
fn ascii(b: &[u8]) -> R<String> {
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| Off)
}

/// A plain key as the streaming loader keys it: strings as `Key::Str`,
/// other resolved types as `Key::NonString` with Go's type name.
fn plain_key(text: &[u8]) -> R<Key> {
    let text = ascii(text)?;
    let (_, r) = resolve_plain(&text);
    let type_name = match r {
        Resolved::Str => return Ok(Key::Str(text)),
        Resolved::Uint(_) => return Err(Off),
        Resolved::Null => "<nil>",
        Resolved::Bool(_) => "bool",
        Resolved::Int(_) => "int",
        Resolved::Float(_) => "float64",
        Resolved::Time(_) => "time.Time",
    };
    Ok(Key::NonString { type_name, text })
}

#[cfg(test)]
mod tests {
    use super::super::tests::same_branch;
    use super::*;
    use crate::testutil::{corpus_files, generated_document, Rng};

    /// What the store would load without the direct loader: the streaming
    /// loader, else the reference one (`None` for an error).
    fn without_direct(doc: &[u8]) -> Option<Vec<Branch>> {
        match super::super::fast::Fast::new(doc).load() {
            Ok(b) => Some(b),
            Err(_) => super::super::load_reference(doc).ok(),
        }
    }

    fn check(doc: &[u8]) -> bool {
        let Some(got) = load(doc) else {
            return false;
        };
        let text = String::from_utf8_lossy(doc);
        match without_direct(doc) {
            Some(want) => assert!(
                want.len() == 1 && same_branch(&want[0], &got),
                "direct load differs from the streaming load on:\n{text}"
            ),
            None => panic!("direct load accepted a document the reference load rejects:\n{text}"),
        }
        true
    }

    const KEYS: &[&str] = &[
        "a",
        "b",
        "key_1",
        "x.y",
        "p/q",
        "n-1",
        "_k",
        "123",
        "true",
        "null",
        "1.5",
        "0x1F",
        "2001-12-14",
        "Yes",
        "k-",
        "a.",
        "18446744073709551615",
        LONG_KEY,
    ];

    /// A key too long for a go-yaml simple key (1,025 bytes).
    const LONG_KEY: &str = concat!(
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "k123456789012345678901234",
    );

    const SCALARS: &[&str] = &[
        "plain",
        "two words",
        "a  b",
        "a:b",
        "http://x:80/p?q=1#f",
        "-5",
        "-x",
        "--- x",
        "1e3",
        ".5",
        "0o17",
        "+12",
        "0x1F",
        "1_000",
        "18446744073709551615",
        "9223372036854775808",
        "-9223372036854775809",
        "yes",
        "No",
        "~",
        "null",
        "true",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "2001-12-14 21:59:43.10 -5",
        "a#b",
        "<<",
        "'single ''q'''",
        "''",
        "'a # b'",
        "\"dq\"",
        "\"\"",
        "\"a # b\"",
        "\"with \\\\ bs\"",
        "\"a'b\"",
        "'unterminated",
        "\"unterminated",
        "x ,y",
        "a]",
        "[a]",
        "{a: b}",
        "&a x",
        "*a",
        "!tag x",
        "|",
        ">",
        "@x",
        "`x",
        "?x",
        ": x",
        "- x",
        "-",
        "a: b",
        "a:",
        "%x",
        "'a' b",
        "\"a\"b",
        "ENC[AES256_GCM,data:abc==,iv:x/y+z=,tag:q==,type:str]",
        "caf\u{e9}",
        "tab\there",
    ];

    fn comment_text(rng: &mut Rng) -> String {
        ["# c", "#", "#x ", "# two  words", "## deep", "#: colon"][rng.below(6)].to_string()
    }

    fn scalar_line(rng: &mut Rng, out: &mut String) {
        out.push_str(SCALARS[rng.below(SCALARS.len())]);
        if rng.below(8) == 0 {
            out.push_str("  ");
        }
        if rng.below(5) == 0 {
            out.push_str(&" ".repeat(rng.below(3)));
            out.push_str(&comment_text(rng));
        }
        out.push('\n');
        if rng.below(25) == 0 {
            // A continuation line or stray deeper comment.
            out.push_str(&format!(
                "{:w$}{}\n",
                "",
                ["more", "# deeper"][rng.below(2)],
                w = 1 + rng.below(8)
            ));
        }
    }

    fn noise(rng: &mut Rng, out: &mut String, col: usize) {
        for _ in 0..rng.below(3) {
            match rng.below(10) {
                0 | 1 => out.push('\n'),
                2 => out.push_str("   \n"),
                3 => out.push_str(&format!("{:w$}# off\n", "", w = col + 2)),
                4 if col >= 2 => out.push_str(&format!("{:w$}# out\n", "", w = col - 2)),
                _ => out.push_str(&format!("{:col$}{}\n", "", comment_text(rng))),
            }
        }
    }

    fn mapping(rng: &mut Rng, out: &mut String, col: usize, depth: usize, dash: bool) {
        let n = 1 + rng.below(4);
        for i in 0..n {
            let first_on_dash = dash && i == 0;
            if !first_on_dash {
                if rng.below(4) == 0 {
                    noise(rng, out, col);
                }
                out.push_str(&" ".repeat(col));
            }
            let key = if rng.below(3) == 0 {
                KEYS[rng.below(KEYS.len())].to_string()
            } else {
                format!("k{}", rng.below(6))
            };
            out.push_str(&key);
            out.push(':');
            let nested = depth < 4 && rng.below(3) == 0;
            if !nested {
                match rng.below(30) {
                    0 => out.push('\n'),
                    1 => out.push_str(":\n"),
                    _ => {
                        out.push(' ');
                        scalar_line(rng, out);
                    }
                }
                continue;
            }
            if rng.below(12) == 0 {
                out.push_str(" # on key");
            }
            if rng.below(12) == 0 {
                out.push_str("  ");
            }
            out.push('\n');
            if rng.below(15) == 0 {
                noise(rng, out, col + 2);
            }
            if rng.below(2) == 0 {
                let sub = if rng.below(4) == 0 { col } else { col + 2 };
                sequence(rng, out, sub, depth + 1);
            } else {
                let sub = col + 2 + 2 * rng.below(2);
                mapping(rng, out, sub, depth + 1, false);
            }
        }
    }

    fn sequence(rng: &mut Rng, out: &mut String, col: usize, depth: usize) {
        for _ in 0..1 + rng.below(3) {
            if rng.below(8) == 0 {
                noise(rng, out, col);
            }
            out.push_str(&" ".repeat(col));
            out.push('-');
            let gap = if rng.below(6) == 0 { 2 } else { 1 };
            out.push_str(&" ".repeat(gap));
            if depth < 4 && rng.below(2) == 0 {
                mapping(rng, out, col + 1 + gap, depth + 1, true);
            } else {
                scalar_line(rng, out);
            }
        }
    }

    fn document(rng: &mut Rng) -> String {
        let mut s = String::new();
        if rng.below(6) == 0 {
            noise(rng, &mut s, 0);
        }
        mapping(rng, &mut s, 0, 0, false);
        match rng.below(12) {
            0 => s.push_str("# foot\n"),
            1 => s.push('\n'),
            2 => {
                s.pop();
            }
            _ => {}
        }
        s
    }

    #[test]
    fn agrees_with_the_streaming_loader_on_random_documents() {
        let mut rng = Rng(0xD1EC7);
        let total = 60_000;
        // Documents taken, and of those: with comments, with sequences.
        let (mut taken, mut commented, mut listed) = (0, 0, 0);
        for _ in 0..total {
            let doc = document(&mut rng);
            if check(doc.as_bytes()) {
                taken += 1;
                commented += usize::from(doc.contains('#'));
                listed += usize::from(doc.contains("- "));
            }
        }
        // The generator aims at the subset's edges; enough documents must
        // land inside it for the comparison to mean something.
        assert!(
            taken > total / 20 && commented > 500 && listed > 500,
            "too few documents took the direct path: {taken} of {total}, {commented} with comments, {listed} with lists"
        );
    }

    #[test]
    fn agrees_with_the_streaming_loader_on_the_corpora() {
        let mut taken = 0;
        for (_, data) in corpus_files("yaml") {
            taken += usize::from(check(&data));
        }
        let mut rng = Rng(77);
        for i in 0..3000 {
            taken += usize::from(check(generated_document(&mut rng, i, 5).as_bytes()));
        }
        assert!(taken > 0, "no corpus document took the direct path");
    }

    #[test]
    fn takes_printable_ascii_only() {
        let base = "k0: plain value that is longer than one sixteen-byte step\nk1: x\n";
        assert!(load(base.as_bytes()).is_some());
        for bad in ["\t", "\r", "\u{7f}", "\u{0}", "\u{e9}", "\u{1b}"] {
            for at in [4, 30, base.len() - 2] {
                let mut doc = base.to_string();
                doc.insert_str(at, bad);
                assert!(load(doc.as_bytes()).is_none(), "{bad:?} at {at} was taken");
            }
        }
    }

    #[test]
    fn takes_the_benchmark_shape() {
        let doc = "# head\nservice_0:\n    key_0: \"a b\"\n    key_1: 543.386  # note\n    nested:\n        \
                   port: 3326\n    replicas:\n        - name: \"r0\"\n          token: false\n# next\nservice_1:\n    \
                   key_0: 'it''s'\n";
        assert!(check(doc.as_bytes()));
    }
}
