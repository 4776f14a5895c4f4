//! dotenv store (spec §8.4), as sops 3.11 reads and writes it: lines split on
//! `\n`, `KEY=VALUE` with no quoting or trimming, `\n` (two characters) as
//! the only escape, `#` comment lines.

use super::{Store, StoreError};
use crate::gofmt::format_float_valtostring;
use crate::tree::{Branch, Item, Key, Value};

/// The dotenv store.
#[derive(Clone, Copy, Debug, Default)]
pub struct DotenvStore;

impl DotenvStore {
    pub fn new() -> DotenvStore {
        DotenvStore
    }
}

impl Store for DotenvStore {
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError> {
        let mut branch = Branch(Vec::with_capacity(crate::find::count(b'\n', input) + 1));
        for (n, line) in lines(input).enumerate() {
            let utf8 = |bytes: &[u8], what: &str| {
                String::from_utf8(bytes.to_vec()).map_err(|_| {
                    // Keys and comments are Rust strings in our tree; an
                    // invalid one cannot round-trip, so refuse it clearly.
                    StoreError::new(format!(
                        "invalid dotenv input line: line {}: the {what} is not valid UTF-8",
                        n + 1
                    ))
                })
            };
            // sops echoes the whole line for a line without `=`; it may hold
            // a secret, so the line number is given instead.
            let parsed = parse_line(line)
                .ok_or_else(|| StoreError::new(format!("invalid dotenv input line: line {} has no '='", n + 1)))?;
            match parsed {
                Line::Blank => {}
                Line::Comment(comment) => branch.0.push(Item::comment(utf8(comment, "comment")?)),
                Line::Entry { key, value } => {
                    let key = utf8(key, "key")?;
                    let value = match String::from_utf8(decode_newlines(value)) {
                        Ok(s) => Value::Str(s),
                        Err(e) => Value::Bytes(e.into_bytes()),
                    };
                    branch.0.push(Item::new(key, value));
                }
            }
        }
        Ok(vec![branch])
    }

    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError> {
        let Some(branch) = branches.first() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(branch.0.iter().map(|i| 16 + scalar_len_hint(&i.value)).sum());
        print_items(&branch.0, &mut out)?;
        Ok(out)
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>, StoreError> {
        match value {
            Value::Str(s) => Ok(s.as_bytes().to_vec()),
            Value::Bytes(b) => Ok(b.clone()),
            other => Err(StoreError::new(format!(
                "the dotenv store only supports emitting strings, got {}",
                go_type_name(other)
            ))),
        }
    }
}

/// Print `items` as dotenv lines onto `out`; each item is one line of its
/// own, so a file may be printed in pieces (see `pipeline`).
pub fn print_items(items: &[Item], out: &mut Vec<u8>) -> Result<(), StoreError> {
    for item in items {
        let key: &str = match &item.key {
            Key::Comment(c) => {
                out.push(b'#');
                out.extend_from_slice(c.as_bytes());
                out.push(b'\n');
                continue;
            }
            Key::Str(k) => k,
            Key::NonString { text, .. } => text,
        };
        let value = value_text(&item.value)
            .ok_or_else(|| StoreError::new(format!("cannot use complex value in dotenv file; offending key {key}")))?;
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        push_escaped(out, &value);
        out.push(b'\n');
    }
    Ok(())
}

/// Whole lines of a dotenv file (cut after a newline), loaded as the
/// file's loader does; `None` where it reports an error (line numbers
/// would be the piece's; the caller then loads the whole file).
pub fn load_piece(piece: &[u8]) -> Option<Branch> {
    DotenvStore.load(piece).ok()?.pop()
}

/// A value as printed: every newline becomes the two characters `\n`.
pub(crate) fn push_escaped(out: &mut Vec<u8>, value: &[u8]) {
    let mut rest = value;
    while let Some(nl) = crate::find::byte(b'\n', rest) {
        out.extend_from_slice(&rest[..nl]);
        out.extend_from_slice(b"\\n");
        rest = &rest[nl + 1..];
    }
    out.extend_from_slice(rest);
}

/// One line of a dotenv file, as the loader reads it.
pub(crate) enum Line<'a> {
    /// An empty line: skipped.
    Blank,
    /// A `#` line: the text after the `#`.
    Comment(&'a [u8]),
    /// `KEY=VALUE`, cut at the first `=`; the value as written (escaped).
    Entry { key: &'a [u8], value: &'a [u8] },
}

/// Read one line (without its newline); `None` for a line without `=`,
/// which the loader rejects.
pub(crate) fn parse_line(line: &[u8]) -> Option<Line<'_>> {
    if line.is_empty() {
        return Some(Line::Blank);
    }
    if let Some(comment) = line.strip_prefix(b"#") {
        return Some(Line::Comment(comment));
    }
    let eq = crate::find::byte(b'=', line)?;
    Some(Line::Entry {
        key: &line[..eq],
        value: &line[eq + 1..],
    })
}

/// The value a loaded line holds: `value` itself, or its unescaped copy in
/// `scratch` when it has a `\n` to decode.
pub(crate) fn unescaped<'a>(value: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if crate::find::byte(b'\\', value).is_none() {
        return value;
    }
    scratch.clear();
    decode_newlines_into(value, scratch);
    scratch
}

/// The input's lines, split on `\n` like Go's `bytes.Split`.
pub(crate) fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(input);
    std::iter::from_fn(move || {
        let r = rest?;
        match crate::find::byte(b'\n', r) {
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// Bytes a scalar takes when printed, to size the output buffer.
fn scalar_len_hint(v: &Value) -> usize {
    match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.len(),
        Value::Bytes(b) => b.len(),
        _ => 24,
    }
}

/// [`value_to_string`] borrowing strings instead of copying them.
fn value_text(v: &Value) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    match v {
        Value::Str(s) => Some(Cow::Borrowed(s.as_bytes())),
        Value::Bytes(b) => Some(Cow::Borrowed(b)),
        other => value_to_string(other).map(Cow::Owned),
    }
}

/// Every two-character `\n` becomes a newline (Go `strings.Replace`,
/// left to right, non-overlapping).
fn decode_newlines(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    decode_newlines_into(s, &mut out);
    out
}

fn decode_newlines_into(s: &[u8], out: &mut Vec<u8>) {
    let mut rest = s;
    while let Some(i) = crate::find::byte(b'\\', rest) {
        out.extend_from_slice(&rest[..i]);
        if rest.get(i + 1) == Some(&b'n') {
            out.push(b'\n');
            rest = &rest[i + 2..];
        } else {
            out.push(b'\\');
            rest = &rest[i + 1..];
        }
    }
    out.extend_from_slice(rest);
}

/// The `%T` sops shows for a value in `emit_value` errors.
pub(crate) fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Str(_) | Value::Bytes(_) => "string",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Time(_) => "time.Time",
        Value::Map(_) => "sops.TreeBranch",
        Value::List(_) => "[]interface {}",
        Value::Comment(_) => "sops.Comment",
    }
}

/// sops' `ValueToString` for flat formats (dotenv, INI): the text of a
/// scalar, `None` for a map or list.
pub fn value_to_string(v: &Value) -> Option<Vec<u8>> {
    Some(match v {
        Value::Str(s) => s.as_bytes().to_vec(),
        Value::Bytes(b) => b.clone(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Float(f) => format_float_valtostring(*f).into_bytes(),
        Value::Bool(b) => b.to_string().into_bytes(),
        // Go formats with time.RFC3339, which drops fractional seconds.
        Value::Time(t) => strip_fraction(t).into_bytes(),
        // fmt.Sprint(nil)
        Value::Null => b"<nil>".to_vec(),
        // fmt.Sprint(sops.Comment{Value: c})
        Value::Comment(c) => format!("{{{c}}}").into_bytes(),
        Value::Map(_) | Value::List(_) => return None,
    })
}

/// `2024-01-02T03:04:05.5+02:00` → `2024-01-02T03:04:05+02:00`.
fn strip_fraction(t: &str) -> String {
    let Some(tpos) = t.find('T') else {
        return t.to_string();
    };
    let Some(dot) = t[tpos..].find('.').map(|d| d + tpos) else {
        return t.to_string();
    };
    let end = t[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(t.len(), |e| e + dot + 1);
    format!("{}{}", &t[..dot], &t[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_sops() {
        let b = DotenvStore
            .load(b"export A=x\n F =  y \r\n#c\n\nD=a\\\\nb\\nc\nE=\xff\n=v\n")
            .unwrap()
            .remove(0);
        assert_eq!(b.0[0].key, Key::Str("export A".into()));
        assert_eq!(b.0[1].key, Key::Str(" F ".into()));
        assert_eq!(b.0[1].value, Value::Str("  y \r".into()));
        assert_eq!(b.0[2].key, Key::Comment("c".into()));
        assert_eq!(b.0[3].value, Value::Str("a\\\nb\nc".into()));
        assert_eq!(b.0[4].value, Value::Bytes(vec![0xff]));
        assert_eq!(b.0[5].key, Key::Str(String::new()));
        let out = DotenvStore.emit(&[b]).unwrap();
        assert_eq!(out, b"export A=x\n F =  y \r\n#c\nD=a\\\\nb\\nc\nE=\xff\n=v\n");
    }

    #[test]
    fn errors_do_not_echo_the_line() {
        let e = DotenvStore.load(b"A=1\nsecret-without-equals\n").unwrap_err();
        assert_eq!(e.message, "invalid dotenv input line: line 2 has no '='");
        assert!(DotenvStore.load(b"A=1\n\r\n").is_err());
        assert!(DotenvStore.load(b"A=1\n  \n").is_err());
    }

    #[test]
    fn value_to_string_matches_sops() {
        let s = |v: Value| String::from_utf8(value_to_string(&v).unwrap()).unwrap();
        assert_eq!(s(Value::Null), "<nil>");
        assert_eq!(s(Value::Float(1.0)), "1.0");
        assert_eq!(s(Value::Float(1e6)), "1E+06");
        assert_eq!(s(Value::Float(f64::INFINITY)), "+Inf");
        assert_eq!(
            s(Value::Time("2024-01-02T03:04:05.5+02:00".into())),
            "2024-01-02T03:04:05+02:00"
        );
        assert_eq!(s(Value::Time("2024-01-01T00:00:00Z".into())), "2024-01-01T00:00:00Z");
        assert_eq!(
            s(Value::Time("2024-01-01T00:00:00.123Z".into())),
            "2024-01-01T00:00:00Z"
        );
        assert!(value_to_string(&Value::List(vec![])).is_none());
    }
}
