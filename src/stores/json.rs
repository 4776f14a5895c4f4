//! JSON store (spec §8.3), reproducing sops 3.11 over Go's `encoding/json`.
//!
//! Loading mirrors sops' token-stream reader (`json.Decoder.Token` plus the
//! recursive `treeBranchFromJSONDecoder`), including its quirks: every number
//! is a float, duplicate keys are kept, bytes after the top-level object are
//! never read, and an input that ends right after a key or inside an array is
//! silently truncated at the innermost object (while an input that ends where
//! a key is expected is an error). The parser is iterative (explicit stack),
//! linear-time and works directly on bytes.
//!
//! Emitting mirrors sops' `encodeTree`/`encodeArray` followed by `json.Indent`:
//! one element per line, `"key": value`, `{}`/`[]` for empty containers, and
//! Go's HTML-safe string escaping.

use super::{Store, StoreError};
use crate::gofmt::format_float_json;
use crate::swar::{scan_for, Stops};
use crate::tree::{Branch, Item, Key, Value};
use std::io::Write as _;

/// Nesting limit for parsing. sops itself has none (Go stacks grow), but a
/// deeper tree would overflow Rust stacks in the recursive tree walkers and
/// in `Drop`; no real secrets file comes close.
pub const MAX_DEPTH: usize = 10_000;

const LOAD_PREFIX: &str = "Could not unmarshal input data: ";

/// The JSON store. `indent` is the string `json.Indent` repeats per level.
#[derive(Clone, Debug)]
pub struct JsonStore {
    indent: String,
}

impl JsonStore {
    /// `indent` as in `stores.json.indent`: −1 → one TAB, N ≥ 0 → N spaces
    /// (0 still puts every element on its own line), < −1 → error.
    ///
    /// sops only reports the bad value when it emits; rejecting it here is
    /// earlier but prints the same text.
    pub fn new(indent: i64) -> Result<JsonStore, StoreError> {
        let indent = match indent {
            -1 => "\t".to_string(),
            n if n < -1 => {
                return Err(StoreError::new(
                    "JSON Indentation parameter smaller than -1 is not accepted",
                ))
            }
            n => {
                // Guard against absurd configs turning into gigabytes of spaces.
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= 1 << 16)
                    .ok_or_else(|| StoreError::new("JSON Indentation parameter is too large"))?;
                " ".repeat(n)
            }
        };
        Ok(JsonStore { indent })
    }
}

impl Default for JsonStore {
    fn default() -> JsonStore {
        JsonStore {
            indent: "\t".to_string(),
        }
    }
}

impl Store for JsonStore {
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError> {
        parse_document(input)
            .map(|b| vec![b])
            .map_err(|e| e.into_store_error(input, LOAD_PREFIX))
    }

    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError> {
        let branch = branches
            .first()
            .ok_or_else(|| StoreError::new("Error marshaling to json: no document to emit"))?;
        let mut out = Vec::with_capacity(4096);
        Emitter::new(self.indent.as_bytes(), &mut out)
            .map(branch, 0)
            .map_err(|e| StoreError::new(format!("Error marshaling to json: {e}")))?;
        out.push(b'\n');
        Ok(out)
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        Emitter::new(self.indent.as_bytes(), &mut out)
            .value(value, 0)
            .map_err(StoreError::new)?;
        Ok(out)
    }

    fn emit_to(&self, branches: &[Branch], out: &mut dyn std::io::Write) -> Result<(), super::EmitError> {
        let Some(branch) = branches.first().filter(|b| !has_unencodable(&b.0)) else {
            // Errors (or nothing to emit) come from the buffered path, before any output.
            let bytes = zeroize::Zeroizing::new(self.emit(branches)?);
            return out.write_all(&bytes).map_err(super::EmitError::Write);
        };
        let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
        let mut em = Emitter::new(self.indent.as_bytes(), &mut buf);
        em.sink = Some(&mut *out);
        let result = em.map(branch, 0);
        em.out.push(b'\n');
        em.flush();
        let write_error = em.write_error.take();
        crate::tree::wipe_vec(&mut buf);
        result.map_err(|e| super::EmitError::Store(StoreError::new(format!("Error marshaling to json: {e}"))))?;
        write_error.map_or(Ok(()), |e| Err(super::EmitError::Write(e)))
    }
}

// ---------------------------------------------------------------------------
// Errors

/// A parse failure: Go's message and the byte offset it refers to.
struct ParseError {
    msg: String,
    offset: usize,
}

impl ParseError {
    fn new(msg: impl Into<String>, offset: usize) -> ParseError {
        ParseError {
            msg: msg.into(),
            offset,
        }
    }

    /// sops' text followed by a position, so users can find the problem
    /// without the message ever quoting file content beyond one character.
    fn into_store_error(self, input: &[u8], prefix: &str) -> StoreError {
        let (line, col) = line_col(input, self.offset);
        StoreError::new(format!("{prefix}{} (line {line}, column {col})", self.msg))
    }
}

/// 1-based line and column (in characters) of byte `offset`.
fn line_col(input: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(input.len());
    let before = &input[..offset];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    // Count UTF-8 lead bytes so multi-byte characters count once.
    let col = before[line_start..].iter().filter(|&&b| (b & 0xC0) != 0x80).count() + 1;
    (line, col)
}

/// Go's `quoteChar`: how `encoding/json` shows an offending byte.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".to_string(),
        b'"' => "'\"'".to_string(),
        _ => format!("'{}'", go_quote_rune(char::from(c))),
    }
}

/// The inside of Go's `strconv.Quote(string(r))` for a rune in U+0000..U+00FF.
fn go_quote_rune(r: char) -> String {
    match r {
        '\u{7}' => r"\a".to_string(),
        '\u{8}' => r"\b".to_string(),
        '\u{c}' => r"\f".to_string(),
        '\n' => r"\n".to_string(),
        '\r' => r"\r".to_string(),
        '\t' => r"\t".to_string(),
        '\u{b}' => r"\v".to_string(),
        '\\' => r"\\".to_string(),
        c if (c as u32) < 0x20 || c == '\u{7f}' => format!(r"\x{:02x}", c as u32),
        // Go's IsPrint is false for C1 controls, NBSP and the soft hyphen.
        c if ('\u{80}'..='\u{a0}').contains(&c) || c == '\u{ad}' => {
            format!(r"\u{:04x}", c as u32)
        }
        c => c.to_string(),
    }
}

fn invalid_char(c: u8, context: &str, offset: usize) -> ParseError {
    ParseError::new(format!("invalid character {}{context}", quote_char(c)), offset)
}

// ---------------------------------------------------------------------------
// Tokenizer: Go's `json.Decoder.Token` state machine.

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokState {
    TopValue,
    ArrayStart,
    ArrayValue,
    ArrayComma,
    ObjectStart,
    ObjectKey,
    ObjectColon,
    ObjectValue,
    ObjectComma,
}

impl TokState {
    fn value_allowed(self) -> bool {
        matches!(
            self,
            TokState::TopValue | TokState::ArrayStart | TokState::ArrayValue | TokState::ObjectValue
        )
    }

    /// The context Go's `tokenError` appends (none for `ObjectStart`).
    fn error_context(self) -> &'static str {
        match self {
            TokState::TopValue | TokState::ArrayStart | TokState::ArrayValue | TokState::ObjectValue => {
                " looking for beginning of value"
            }
            TokState::ArrayComma => " after array element",
            TokState::ObjectKey => " looking for beginning of object key string",
            TokState::ObjectColon => " after object key",
            TokState::ObjectComma => " after object key:value pair",
            TokState::ObjectStart => "",
        }
    }
}

enum Token {
    BeginObject,
    EndObject,
    BeginArray,
    EndArray,
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    /// End of input (Go's `io.EOF`): sticky, returned again on every call.
    Eof,
}

struct Tokenizer<'a> {
    src: &'a [u8],
    pos: usize,
    state: TokState,
    stack: Vec<TokState>,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Tokenizer<'a> {
    fn new(src: &'a [u8]) -> Tokenizer<'a> {
        Tokenizer {
            src,
            pos: 0,
            state: TokState::TopValue,
            stack: Vec::new(),
        }
    }

    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.src.get(self.pos) {
            if !is_space(b) {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    fn token_error(&self, c: u8) -> ParseError {
        invalid_char(c, self.state.error_context(), self.pos)
    }

    /// Go's `tokenValueEnd`.
    fn value_end(&mut self) {
        match self.state {
            TokState::ArrayStart | TokState::ArrayValue => self.state = TokState::ArrayComma,
            TokState::ObjectValue => self.state = TokState::ObjectComma,
            _ => {}
        }
    }

    fn pop_state(&mut self) {
        // Token only pops after a matching push, so the stack is never empty
        // here; fall back to the top state rather than panic.
        self.state = self.stack.pop().unwrap_or(TokState::TopValue);
        self.value_end();
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        loop {
            let Some(c) = self.peek() else {
                return Ok(Token::Eof);
            };
            match c {
                b'[' | b'{' => {
                    if !self.state.value_allowed() {
                        return Err(self.token_error(c));
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        return Err(ParseError::new(
                            format!("nesting deeper than {MAX_DEPTH} levels is not supported"),
                            self.pos,
                        ));
                    }
                    self.pos += 1;
                    self.stack.push(self.state);
                    if c == b'[' {
                        self.state = TokState::ArrayStart;
                        return Ok(Token::BeginArray);
                    }
                    self.state = TokState::ObjectStart;
                    return Ok(Token::BeginObject);
                }
                b']' => {
                    if !matches!(self.state, TokState::ArrayStart | TokState::ArrayComma) {
                        return Err(self.token_error(c));
                    }
                    self.pos += 1;
                    self.pop_state();
                    return Ok(Token::EndArray);
                }
                b'}' => {
                    if !matches!(self.state, TokState::ObjectStart | TokState::ObjectComma) {
                        return Err(self.token_error(c));
                    }
                    self.pos += 1;
                    self.pop_state();
                    return Ok(Token::EndObject);
                }
                b':' => {
                    if self.state != TokState::ObjectColon {
                        return Err(self.token_error(c));
                    }
                    self.pos += 1;
                    self.state = TokState::ObjectValue;
                }
                b',' => match self.state {
                    TokState::ArrayComma => {
                        self.pos += 1;
                        self.state = TokState::ArrayValue;
                    }
                    TokState::ObjectComma => {
                        self.pos += 1;
                        self.state = TokState::ObjectKey;
                    }
                    _ => return Err(self.token_error(c)),
                },
                b'"' if matches!(self.state, TokState::ObjectStart | TokState::ObjectKey) => {
                    let s = self.string()?;
                    self.state = TokState::ObjectColon;
                    return Ok(Token::Str(s));
                }
                _ => {
                    if !self.state.value_allowed() {
                        return Err(self.token_error(c));
                    }
                    let tok = self.scalar(c)?;
                    self.value_end();
                    return Ok(tok);
                }
            }
        }
    }

    /// One scalar value starting at `self.pos` (Go's `readValue` + unmarshal
    /// into `interface{}`).
    fn scalar(&mut self, c: u8) -> Result<Token, ParseError> {
        match c {
            b'"' => self.string().map(Token::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true", "true").map(|_| Token::Bool(true)),
            b'f' => self.literal(b"false", "false").map(|_| Token::Bool(false)),
            b'n' => self.literal(b"null", "null").map(|_| Token::Null),
            _ => Err(invalid_char(c, " looking for beginning of value", self.pos)),
        }
    }

    fn unexpected_eof(&self) -> ParseError {
        ParseError::new("unexpected EOF", self.src.len())
    }

    fn literal(&mut self, word: &[u8], name: &str) -> Result<(), ParseError> {
        // The first byte was already matched by the caller.
        for (i, &want) in word.iter().enumerate().skip(1) {
            let at = self.pos + i;
            match self.src.get(at) {
                None => return Err(self.unexpected_eof()),
                Some(&b) if b == want => {}
                Some(&b) => {
                    let ctx = format!(" in literal {name} (expecting '{}')", char::from(want));
                    return Err(invalid_char(b, &ctx, at));
                }
            }
        }
        self.pos += word.len();
        Ok(())
    }

    /// Go's number grammar, then `strconv.ParseFloat` (both correctly
    /// rounded, so Rust's parser gives the same float).
    fn number(&mut self) -> Result<Token, ParseError> {
        let src = self.src;
        let start = self.pos;
        let mut i = start;
        let digits = |mut i: usize| {
            while src.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        if src.get(i) == Some(&b'-') {
            i += 1;
        }
        match src.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(i + 1),
            Some(&b) => return Err(invalid_char(b, " in numeric literal", i)),
            None => return Err(self.unexpected_eof()),
        }
        if src.get(i) == Some(&b'.') {
            i += 1;
            match src.get(i) {
                Some(b) if b.is_ascii_digit() => i = digits(i),
                Some(&b) => return Err(invalid_char(b, " after decimal point in numeric literal", i)),
                None => return Err(self.unexpected_eof()),
            }
        }
        if matches!(src.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(src.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            match src.get(i) {
                Some(b) if b.is_ascii_digit() => i = digits(i),
                Some(&b) => return Err(invalid_char(b, " in exponent of numeric literal", i)),
                None => return Err(self.unexpected_eof()),
            }
        }
        self.pos = i;
        // The grammar above only admits ASCII, which Rust's parser accepts.
        let text = std::str::from_utf8(&src[start..i]).unwrap_or("NaN");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Token::Num(f)),
            // Go: "json: cannot unmarshal number 1e400 into Go value of type
            // float64"; the literal is left out because it is file content.
            _ => Err(ParseError::new(
                "json: cannot unmarshal number into Go value of type float64",
                start,
            )),
        }
    }

    /// A string literal starting at the opening quote at `self.pos`, decoded
    /// like Go's `unquote`: invalid UTF-8 bytes and unpaired surrogate
    /// escapes each become U+FFFD.
    fn string(&mut self) -> Result<String, ParseError> {
        let src = self.src;
        let start = self.pos + 1;
        // Fast path: no escapes, no control characters, valid UTF-8.
        let i = scan_string(src, start);
        if src.get(i) == Some(&b'"') {
            if let Ok(s) = std::str::from_utf8(&src[start..i]) {
                self.pos = i + 1;
                return Ok(s.to_string());
            }
        }
        self.string_slow(start)
    }

    fn string_slow(&mut self, start: usize) -> Result<String, ParseError> {
        let src = self.src;
        let mut out = String::new();
        let mut i = start;
        let mut run = start;
        loop {
            i = scan_string(src, i);
            let Some(&b) = src.get(i) else {
                return Err(self.unexpected_eof());
            };
            match b {
                b'"' => {
                    push_go_lossy(&mut out, &src[run..i]);
                    self.pos = i + 1;
                    return Ok(out);
                }
                b'\\' => {
                    push_go_lossy(&mut out, &src[run..i]);
                    i = self.escape(i, &mut out)?;
                    run = i;
                }
                _ => return Err(invalid_char(b, " in string literal", i)),
            }
        }
    }

    /// Checks the string literal at `self.pos` as [`Self::string`] would
    /// (same errors), without decoding it: validation needs no value.
    fn skip_string(&mut self) -> Result<(), ParseError> {
        let src = self.src;
        let mut i = self.pos + 1;
        loop {
            i = scan_string(src, i);
            let Some(&b) = src.get(i) else {
                return Err(self.unexpected_eof());
            };
            match b {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(());
                }
                // Every escape is checked on its own, also the second half
                // of a surrogate pair, so pairing needs no special case.
                b'\\' => match src.get(i + 1) {
                    None => return Err(self.unexpected_eof()),
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        self.hex4(i + 2)?;
                        i += 6;
                    }
                    Some(&e) => return Err(invalid_char(e, " in string escape code", i + 1)),
                },
                _ => return Err(invalid_char(b, " in string literal", i)),
            }
        }
    }

    /// Decodes the escape at `at` (a backslash) into `out`; returns the
    /// offset after it.
    fn escape(&self, at: usize, out: &mut String) -> Result<usize, ParseError> {
        let src = self.src;
        let Some(&e) = src.get(at + 1) else {
            return Err(self.unexpected_eof());
        };
        let simple = match e {
            b'"' => Some('"'),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'u' => None,
            _ => return Err(invalid_char(e, " in string escape code", at + 1)),
        };
        if let Some(c) = simple {
            out.push(c);
            return Ok(at + 2);
        }
        let r = self.hex4(at + 2)?;
        if (0xD800..0xE000).contains(&r) {
            // A surrogate: only a high one directly followed by a well-formed
            // `\u` low one pairs up; anything else is U+FFFD and the next
            // escape is decoded (and validated) on its own.
            if (0xD800..0xDC00).contains(&r) && src.get(at + 6) == Some(&b'\\') && src.get(at + 7) == Some(&b'u') {
                if let Some(r2) = hex4_opt(src, at + 8) {
                    if (0xDC00..0xE000).contains(&r2) {
                        let c = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
                        out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                        return Ok(at + 12);
                    }
                }
            }
            out.push('\u{FFFD}');
            return Ok(at + 6);
        }
        out.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
        Ok(at + 6)
    }

    fn hex4(&self, at: usize) -> Result<u32, ParseError> {
        let mut r = 0;
        for i in at..at + 4 {
            let Some(&b) = self.src.get(i) else {
                return Err(self.unexpected_eof());
            };
            let Some(d) = hex_val(b) else {
                return Err(invalid_char(b, r" in \u hexadecimal character escape", i));
            };
            r = r * 16 + d;
        }
        Ok(r)
    }
}

/// Offset of the next byte a string literal cannot hold as is: `"`, `\` or
/// a control character; `src.len()` if none.
fn scan_string(src: &[u8], from: usize) -> usize {
    scan_for(
        src,
        from,
        Stops {
            eq: [b'"', b'\\'],
            below: 0x20,
            high: false,
        },
    )
}

/// The byte-at-a-time equivalent of [`scan_string`] (for tests).
#[cfg(test)]
fn scan_string_slow(src: &[u8], from: usize) -> usize {
    (from..src.len())
        .find(|&i| matches!(src[i], b'"' | b'\\' | 0..=0x1f))
        .unwrap_or(src.len())
}

fn hex_val(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

fn hex4_opt(src: &[u8], at: usize) -> Option<u32> {
    let digits = src.get(at..at + 4)?;
    digits.iter().try_fold(0, |r, &b| Some(r * 16 + hex_val(b)?))
}

/// Appends `bytes`, replacing each byte that does not start a valid UTF-8
/// sequence with U+FFFD, one per byte as Go's `utf8.DecodeRune` does (Rust's
/// `from_utf8_lossy` would merge a truncated sequence into one U+FFFD).
fn push_go_lossy(out: &mut String, mut bytes: &[u8]) {
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return;
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                // `good` is valid by construction.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &bad[1..];
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Tree builder: sops' `treeBranchFromJSON` over the tokens, iteratively.

/// A container being read. Children accumulate on shared scratch stacks
/// (`start` marks where this container's begin) so each finished container
/// is allocated once at its exact size.
enum Frame {
    /// An object; `key` is set between a key and its value.
    Object {
        start: usize,
        key: Option<String>,
    },
    Array {
        start: usize,
    },
}

fn parse_document(input: &[u8]) -> Result<Branch, ParseError> {
    let mut tok = Tokenizer::new(input);
    let first_at = {
        tok.peek();
        tok.pos
    };
    match tok.next()? {
        Token::BeginObject => {}
        Token::Eof => return Err(ParseError::new("EOF", input.len())),
        Token::BeginArray => {
            return Err(ParseError::new(
                "Expected JSON object start, got delimiter [ instead",
                first_at,
            ))
        }
        // sops prints the value with %#v; strings and numbers are file
        // content, so only their type is shown.
        Token::Str(_) => return Err(not_an_object("<redacted> of type string", first_at)),
        Token::Num(_) => return Err(not_an_object("<redacted> of type float64", first_at)),
        Token::Bool(b) => return Err(not_an_object(&format!("{b} of type bool"), first_at)),
        Token::Null => return Err(not_an_object("<nil> of type <nil>", first_at)),
        // Token never returns a closing delimiter at the top level.
        Token::EndObject | Token::EndArray => return Err(ParseError::new("unexpected delimiter", first_at)),
    }

    let mut items: Vec<Item> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut stack = vec![Frame::Object { start: 0, key: None }];
    loop {
        let Some(top) = stack.last_mut() else {
            return Err(ParseError::new("internal parser error", tok.pos));
        };
        let token = tok.next()?;
        let finished: Value = match top {
            Frame::Object { start, key } => match (key.is_some(), token) {
                (false, Token::Str(k)) => {
                    *key = Some(k);
                    continue;
                }
                (false, Token::EndObject) => Value::Map(Branch(items.split_off(*start))),
                // Token only yields a key, `}`, an error or EOF here; sops
                // reports EOF in key position as a nil key.
                (false, _) => {
                    return Err(ParseError::new(
                        "Expected JSON object key, got %!s(<nil>) of type <nil> instead",
                        input.len(),
                    ))
                }
                // EOF where a value should be: sops' treeItem returns io.EOF
                // and the branch ends without the pending key, successfully.
                (true, Token::Eof) => {
                    *key = None;
                    Value::Map(Branch(items.split_off(*start)))
                }
                (true, Token::BeginObject) => {
                    stack.push(Frame::Object {
                        start: items.len(),
                        key: None,
                    });
                    continue;
                }
                (true, Token::BeginArray) => {
                    stack.push(Frame::Array { start: values.len() });
                    continue;
                }
                (true, t) => {
                    let value = scalar_value(t);
                    if let Some(k) = key.take() {
                        items.push(Item::new(k, value));
                    }
                    continue;
                }
            },
            Frame::Array { start } => match token {
                Token::EndArray => Value::List(values.split_off(*start)),
                // EOF inside an array propagates io.EOF up to the nearest
                // object, dropping the array: the parent sees EOF again.
                Token::Eof => {
                    values.truncate(*start);
                    stack.pop();
                    continue;
                }
                Token::BeginObject => {
                    stack.push(Frame::Object {
                        start: items.len(),
                        key: None,
                    });
                    continue;
                }
                Token::BeginArray => {
                    stack.push(Frame::Array { start: values.len() });
                    continue;
                }
                t => {
                    values.push(scalar_value(t));
                    continue;
                }
            },
        };
        // A container is complete: hand it to its parent.
        stack.pop();
        match stack.last_mut() {
            None => {
                return match finished {
                    Value::Map(b) => Ok(b),
                    _ => Err(ParseError::new("internal parser error", tok.pos)),
                }
            }
            Some(Frame::Object { key, .. }) => {
                if let Some(k) = key.take() {
                    items.push(Item::new(k, finished));
                }
            }
            Some(Frame::Array { .. }) => values.push(finished),
        }
    }
}

fn not_an_object(what: &str, offset: usize) -> ParseError {
    ParseError::new(format!("Expected JSON object start, got {what} instead"), offset)
}

fn scalar_value(t: Token) -> Value {
    match t {
        Token::Str(s) => Value::Str(s),
        Token::Num(f) => Value::Float(f),
        Token::Bool(b) => Value::Bool(b),
        // Null, and (unreachable) delimiters/EOF.
        _ => Value::Null,
    }
}

// ---------------------------------------------------------------------------
// Strict validation: `json.Unmarshal`'s `checkValid`.

/// Checks `input` the way `json.Unmarshal` does before decoding: exactly one
/// JSON value, nothing but whitespace after it. sops' `LoadEncryptedFile`
/// runs this first (via `json.Unmarshal` into the metadata struct), so an
/// encrypted file with trailing garbage fails to decrypt although a plain one
/// encrypts. The caller prefixes `Error unmarshalling input json: `.
pub fn validate_strict(input: &[u8]) -> Result<(), StoreError> {
    check_valid(input).map_err(|e| e.into_store_error(input, ""))
}

#[derive(Clone, Copy, PartialEq)]
enum Container {
    ObjectKey,
    ObjectValue,
    Array,
}

fn check_valid(src: &[u8]) -> Result<(), ParseError> {
    let eoi = || ParseError::new("unexpected end of JSON input", src.len());
    let mut stack: Vec<Container> = Vec::new();
    let mut i = 0;
    let skip = |mut i: usize| {
        while src.get(i).copied().is_some_and(is_space) {
            i += 1;
        }
        i
    };
    // Each iteration reads one value at `i`, then the separators after it.
    'value: loop {
        i = skip(i);
        let Some(&c) = src.get(i) else {
            return Err(eoi());
        };
        match c {
            b'{' | b'[' => {
                if stack.len() >= 10_000 {
                    return Err(ParseError::new("exceeded max depth", i));
                }
                i = skip(i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                match src.get(i) {
                    None => return Err(eoi()),
                    Some(&b) if b == close => i += 1,
                    Some(&b) => {
                        if c == b'{' {
                            if b != b'"' {
                                return Err(invalid_char(b, " looking for beginning of object key string", i));
                            }
                            stack.push(Container::ObjectKey);
                        } else {
                            stack.push(Container::Array);
                        }
                        continue 'value;
                    }
                }
            }
            b'"' => {
                let mut t = Tokenizer::new(src);
                t.pos = i;
                match t.skip_string() {
                    Ok(()) => i = t.pos,
                    Err(e) if e.msg == "unexpected EOF" => return Err(eoi()),
                    Err(e) => return Err(e),
                }
            }
            _ => {
                let mut t = Tokenizer::new(src);
                t.pos = i;
                match t.scalar(c) {
                    Ok(_) => i = t.pos,
                    // Out-of-range numbers are a decode error, not a syntax
                    // error; this check only cares about syntax.
                    Err(e) if e.msg.starts_with("json: cannot unmarshal") => i = skip_number(src, i),
                    Err(e) if e.msg == "unexpected EOF" => return Err(eoi()),
                    Err(e) => return Err(e),
                }
            }
        }
        // After a value: a separator, a closing delimiter, or the end.
        loop {
            i = skip(i);
            let Some(top) = stack.last_mut() else {
                return match src.get(i) {
                    None => Ok(()),
                    Some(&b) => Err(invalid_char(b, " after top-level value", i)),
                };
            };
            let Some(&b) = src.get(i) else {
                return Err(eoi());
            };
            match (*top, b) {
                (Container::ObjectKey, b':') => {
                    *top = Container::ObjectValue;
                    i += 1;
                    continue 'value;
                }
                (Container::ObjectKey, _) => return Err(invalid_char(b, " after object key", i)),
                (Container::ObjectValue, b',') => {
                    *top = Container::ObjectKey;
                    i = skip(i + 1);
                    match src.get(i) {
                        None => return Err(eoi()),
                        Some(b'"') => continue 'value,
                        Some(&b) => return Err(invalid_char(b, " looking for beginning of object key string", i)),
                    }
                }
                (Container::ObjectValue, b'}') | (Container::Array, b']') => {
                    stack.pop();
                    i += 1;
                }
                (Container::ObjectValue, _) => return Err(invalid_char(b, " after object key:value pair", i)),
                (Container::Array, b',') => {
                    i += 1;
                    continue 'value;
                }
                (Container::Array, _) => return Err(invalid_char(b, " after array element", i)),
            }
        }
    }
}

fn skip_number(src: &[u8], mut i: usize) -> usize {
    while src
        .get(i)
        .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        i += 1;
    }
    i
}

// ---------------------------------------------------------------------------
// Large files in pieces (see `pipeline`).

/// Finds the commas between top-level members as the input is read: a
/// lexical scan of strings (with escapes) and bracket depth, the same rules
/// the tokenizer applies up to the first error. A piece cut at such a comma
/// parses as an object once braces are put around it (see [`load_piece`]).
#[derive(Default)]
pub struct MemberCuts {
    depth: usize,
    in_string: bool,
    /// The outermost container has ended: what follows is trailing bytes
    /// the load ignores, never cut (a comma there is not a member's).
    closed: bool,
}

impl MemberCuts {
    /// Scans `buf[from..]`. Returns the first comma directly inside the
    /// outermost container at or after `min_cut`, if any, and where the scan
    /// stopped (resume there with more input; after a cut the state is that
    /// of the comma, so the next scan starts right after it).
    pub fn scan(&mut self, buf: &[u8], from: usize, min_cut: usize) -> (Option<usize>, usize) {
        let mut i = from;
        while i < buf.len() {
            if self.in_string {
                let Some(k) = crate::find::either(b'"', b'\\', &buf[i..]) else {
                    return (None, buf.len());
                };
                i += k;
                if buf[i] == b'"' {
                    self.in_string = false;
                    i += 1;
                } else if i + 1 < buf.len() {
                    i += 2;
                } else {
                    // The escaped byte is not read yet: resume at the backslash.
                    return (None, i);
                }
                continue;
            }
            match buf[i] {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.closed |= self.depth == 0;
                }
                b',' if self.depth == 1 && !self.closed && i >= min_cut => return (Some(i), i + 1),
                _ => {}
            }
            i += 1;
        }
        (None, i)
    }
}

/// One piece of a large file as the members it holds. `piece` is the input
/// between two top-level commas ([`MemberCuts`]) with braces put around it:
/// the first piece keeps its own `{` and gets a `}`, the last keeps its end
/// and gets a `{`. `None` (the caller then loads the whole input, which
/// gives the exact result or error): a syntax error, or no member at all
/// (`{"a": 1,}` must fail as a whole, not parse as two pieces).
pub fn load_piece(piece: &[u8]) -> Option<Branch> {
    parse_document(piece).ok().filter(|b| !b.0.is_empty())
}

/// A top-level object whose members arrive in batches (large files
/// processed in pieces, see `pipeline`): the bytes [`JsonStore::emit`]
/// prints for all the members at once.
pub struct ObjectStream {
    indent: Vec<u8>,
    out: Vec<u8>,
    empty: bool,
}

impl ObjectStream {
    pub fn new(store: &JsonStore) -> ObjectStream {
        ObjectStream {
            indent: store.indent.as_bytes().to_vec(),
            out: vec![b'{'],
            empty: true,
        }
    }

    /// The next members, in order. An error (a value JSON cannot hold)
    /// leaves the output unusable.
    pub fn push(&mut self, items: &[Item]) -> Result<(), String> {
        let wrote = write_members(&self.indent, &mut self.out, items, self.empty)?;
        self.empty &= !wrote;
        Ok(())
    }

    /// The indentation unit, for [`print_members`] on other threads.
    pub fn indent(&self) -> &[u8] {
        &self.indent
    }

    /// The next members as [`print_members`] printed them.
    pub fn push_printed(&mut self, printed: &[u8]) {
        if printed.is_empty() {
            return;
        }
        let printed = match printed.strip_prefix(b",") {
            Some(rest) if self.empty => rest,
            _ => printed,
        };
        self.empty = false;
        self.out.extend_from_slice(printed);
    }

    /// The output printed so far.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Close the object: the whole output.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.empty {
            self.out.push(b'\n');
        }
        self.out.extend_from_slice(b"}\n");
        self.out
    }
}

/// `items` as members of a top-level object, each after a comma, for
/// [`ObjectStream::push_printed`]: a piece printed apart from the others
/// (on another thread) gives the bytes [`ObjectStream::push`] would.
pub fn print_members(indent: &[u8], items: &[Item], out: &mut Vec<u8>) -> Result<(), String> {
    write_members(indent, out, items, false).map(|_| ())
}

/// Members at depth 1, the first after a comma unless `first`; whether any
/// member was written.
fn write_members(indent: &[u8], out: &mut Vec<u8>, items: &[Item], mut first: bool) -> Result<bool, String> {
    let mut em = Emitter::new(indent, out);
    let mut wrote = false;
    for item in items {
        let key = match &item.key {
            Key::Str(k) => k,
            Key::Comment(_) => continue,
            Key::NonString { type_name, .. } => {
                return Err(format!("a key of type {type_name} cannot be written as JSON"))
            }
        };
        if !first {
            em.out.push(b',');
        }
        first = false;
        wrote = true;
        em.newline(1);
        write_str(em.out, key);
        em.out.extend_from_slice(b": ");
        em.value(&item.value, 1)?;
    }
    Ok(wrote)
}

// ---------------------------------------------------------------------------
// Emitter: sops' encodeTree/encodeArray + json.Indent, in one pass.

struct Emitter<'a> {
    indent: &'a [u8],
    out: &'a mut Vec<u8>,
    /// A newline followed by `indent` repeated for the deepest level seen so
    /// far: each line start is then one copy of a prefix of it.
    nl: Vec<u8>,
    /// Streaming: full chunks of `out` go here as they are produced.
    sink: Option<&'a mut dyn std::io::Write>,
    /// The first write error; later output is dropped.
    write_error: Option<std::io::Error>,
}

/// Output is handed to the sink in chunks of about this size.
const FLUSH_AT: usize = 64 * 1024;

impl<'a> Emitter<'a> {
    fn new(indent: &'a [u8], out: &'a mut Vec<u8>) -> Emitter<'a> {
        Emitter {
            indent,
            out,
            nl: Vec::new(),
            sink: None,
            write_error: None,
        }
    }

    /// Hand the output so far to the sink, wiping the buffer (it may hold
    /// plaintext).
    fn flush(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.write_error.is_none() {
            if let Err(e) = sink.write_all(self.out) {
                self.write_error = Some(e);
            }
        }
        self.out.fill(0);
        std::hint::black_box(self.out.as_ptr());
        self.out.clear();
    }
}

/// Whether the JSON emitter would refuse something in the tree (a non-string
/// key, a NaN or infinite float): such trees are not streamed, so the error
/// comes before any output.
fn has_unencodable(items: &[Item]) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::Map(b) => has_unencodable(&b.0),
            Value::List(l) => l.iter().any(value),
            Value::Float(f) => !f.is_finite(),
            _ => false,
        }
    }
    items
        .iter()
        .any(|i| matches!(i.key, Key::NonString { .. }) || value(&i.value))
}

/// A container being written, with the rest of its children.
enum Open<'t> {
    Map(std::slice::Iter<'t, Item>, bool),
    List(std::slice::Iter<'t, Value>, bool),
}

impl Emitter<'_> {
    fn newline(&mut self, depth: usize) {
        let n = 1 + depth * self.indent.len();
        if self.nl.len() < n {
            self.nl.clear();
            self.nl.push(b'\n');
            for _ in 0..depth {
                self.nl.extend_from_slice(self.indent);
            }
        }
        self.out.extend_from_slice(&self.nl[..n]);
    }

    fn map(&mut self, branch: &Branch, depth: usize) -> Result<(), String> {
        self.out.push(b'{');
        let stack = vec![Open::Map(branch.0.iter(), true)];
        self.run(stack, depth)
    }

    fn value(&mut self, v: &Value, depth: usize) -> Result<(), String> {
        let stack = match v {
            Value::Map(b) => {
                self.out.push(b'{');
                vec![Open::Map(b.0.iter(), true)]
            }
            Value::List(l) => {
                self.out.push(b'[');
                vec![Open::List(l.iter(), true)]
            }
            _ => return self.scalar(v, depth),
        };
        self.run(stack, depth)
    }

    /// Writes the open containers to completion, iteratively (no recursion,
    /// whatever the depth). Errors are Go's texts; each enclosing object adds
    /// sops' `Error encoding value : ` (the `%s` of a nil byte slice prints
    /// nothing), arrays add nothing.
    fn run(&mut self, mut stack: Vec<Open<'_>>, base: usize) -> Result<(), String> {
        let wrap = |stack: &[Open<'_>], e: String| {
            let maps = stack.iter().filter(|o| matches!(o, Open::Map(..))).count();
            "Error encoding value : ".repeat(maps) + &e
        };
        loop {
            if self.out.len() >= FLUSH_AT {
                self.flush();
            }
            // Children of the top container sit one level deeper than it.
            let depth = base + stack.len();
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            let child = match top {
                Open::Map(items, empty) => loop {
                    let Some(item) = items.next() else {
                        break None;
                    };
                    let key = match &item.key {
                        Key::Str(k) => k,
                        Key::Comment(_) => continue,
                        // sops would panic on its type assertion; refuse.
                        Key::NonString { type_name, .. } => {
                            let e = format!("Error encoding key: a key of type {type_name} cannot be written as JSON");
                            stack.pop();
                            return Err(wrap(&stack, e));
                        }
                    };
                    if !*empty {
                        self.out.push(b',');
                    }
                    *empty = false;
                    self.newline(depth);
                    write_str(self.out, key);
                    self.out.extend_from_slice(b": ");
                    break Some(&item.value);
                },
                Open::List(values, empty) => loop {
                    let Some(v) = values.next() else {
                        break None;
                    };
                    if matches!(v, Value::Comment(_)) {
                        continue;
                    }
                    if !*empty {
                        self.out.push(b',');
                    }
                    *empty = false;
                    self.newline(depth);
                    break Some(v);
                },
            };
            match child {
                None => {
                    let (close, empty) = match top {
                        Open::Map(_, e) => (b'}', *e),
                        Open::List(_, e) => (b']', *e),
                    };
                    if !empty {
                        self.newline(depth - 1);
                    }
                    self.out.push(close);
                    stack.pop();
                }
                Some(Value::Map(b)) => {
                    self.out.push(b'{');
                    stack.push(Open::Map(b.0.iter(), true));
                }
                Some(Value::List(l)) => {
                    self.out.push(b'[');
                    stack.push(Open::List(l.iter(), true));
                }
                Some(v) => {
                    if let Err(e) = self.scalar(v, depth) {
                        return Err(wrap(&stack, e));
                    }
                }
            }
        }
    }

    fn scalar(&mut self, v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::Null => self.out.extend_from_slice(b"null"),
            Value::Str(s) | Value::Time(s) => write_str(self.out, s),
            // Go holds these as strings, not []byte: no base64.
            Value::Bytes(b) => write_string(self.out, b),
            Value::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            // Go's positional range: Rust's Display prints the same shortest
            // digits, written without an intermediate String.
            Value::Float(f) if *f == 0.0 || (1e-6..1e21).contains(&f.abs()) => {
                let _ = write!(self.out, "{f}");
            }
            Value::Float(f) => match format_float_json(*f) {
                Some(s) => self.out.extend_from_slice(s.as_bytes()),
                None => {
                    let shown = if f.is_nan() {
                        "NaN"
                    } else if *f > 0.0 {
                        "+Inf"
                    } else {
                        "-Inf"
                    };
                    return Err(format!("json: unsupported value: {shown}"));
                }
            },
            Value::Bool(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            // A comment outside a list (never produced by the stores) is the
            // Go struct `sops.Comment{Value}` to json.Marshal.
            Value::Comment(c) => {
                self.out.push(b'{');
                self.newline(depth + 1);
                self.out.extend_from_slice(b"\"Value\": ");
                write_string(self.out, c.as_bytes());
                self.newline(depth);
                self.out.push(b'}');
            }
            // Containers are handled by `run`.
            Value::Map(_) | Value::List(_) => return self.value(v, depth),
        }
        Ok(())
    }
}

/// `json.Marshal` of a tree value in Go's compact form, as the INI store's
/// `EmitValue` prints it. A branch is a Go slice of `TreeItem` structs, so it
/// marshals as `[{"Key":…,"Value":…}]`, and a comment as `{"Value":…}`.
pub(crate) fn write_compact(out: &mut Vec<u8>, v: &Value) -> Result<(), String> {
    // Nesting is bounded by the parsers' depth limits.
    match v {
        Value::Map(b) => {
            out.push(b'[');
            for (i, item) in b.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(br#"{"Key":"#);
                match &item.key {
                    Key::Str(k) => write_str(out, k),
                    Key::Comment(c) => {
                        out.extend_from_slice(br#"{"Value":"#);
                        write_str(out, c);
                        out.push(b'}');
                    }
                    Key::NonString { text, .. } => out.extend_from_slice(text.as_bytes()),
                }
                out.extend_from_slice(br#","Value":"#);
                write_compact(out, &item.value)?;
                out.push(b'}');
            }
            out.push(b']');
        }
        Value::List(l) => {
            out.push(b'[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(out, v)?;
            }
            out.push(b']');
        }
        Value::Comment(c) => {
            out.extend_from_slice(br#"{"Value":"#);
            write_str(out, c);
            out.push(b'}');
        }
        scalar => {
            Emitter::new(b"", out).scalar(scalar, 0)?;
        }
    }
    Ok(())
}

/// Bytes that Go's HTML-safe encoder writes unchanged.
#[cfg(test)]
const fn safe_table() -> [bool; 128] {
    let mut t = [false; 128];
    let mut i = 0x20;
    while i < 128 {
        t[i] = !matches!(i as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        i += 1;
    }
    t
}
#[cfg(test)]
static SAFE: [bool; 128] = safe_table();

const HEX: &[u8; 16] = b"0123456789abcdef";

/// [`write_string`] for text already known to be valid UTF-8.
fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape_valid(out, s.as_bytes());
    out.push(b'"');
}

/// A JSON string as Go's `encodeState.string` (escapeHTML = true) writes it.
/// Invalid UTF-8 (possible in [`Value::Bytes`]) becomes `\ufffd` per byte.
pub(crate) fn write_string(out: &mut Vec<u8>, mut bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    loop {
        match std::str::from_utf8(bytes) {
            Ok(_) => {
                escape_valid(out, bytes);
                break;
            }
            Err(e) => {
                let (good, bad) = bytes.split_at(e.valid_up_to());
                escape_valid(out, good);
                out.extend_from_slice(br"\ufffd");
                bytes = &bad[1..];
            }
        }
    }
    out.push(b'"');
}

/// Offset of the next byte at or after `from` that [`escape_valid`] must
/// look at: one Go escapes (`"`, `\\`, `<`, `>`, `&`, controls) or 0xE2, the
/// lead byte of U+2028/U+2029; `s.len()` if none.
fn scan_escape(s: &[u8], from: usize) -> usize {
    // The bytes Go's HTML-safe encoder escapes, and 0xE2 (the tests check
    // this against `needs_escape_check`).
    scan_for(
        s,
        from,
        Stops {
            eq: [b'"', b'\\', b'<', b'>', b'&', 0xE2],
            below: 0x20,
            high: false,
        },
    )
}

/// The byte test behind [`scan_escape`] (for tests).
#[cfg(test)]
fn needs_escape_check(b: u8) -> bool {
    b == 0xE2 || (b < 0x80 && !SAFE[usize::from(b)])
}

fn escape_valid(out: &mut Vec<u8>, s: &[u8]) {
    let mut run = 0;
    let mut i = 0;
    loop {
        i = scan_escape(s, i);
        let Some(&b) = s.get(i) else {
            break;
        };
        if b < 0x80 {
            out.extend_from_slice(&s[run..i]);
            match b {
                b'"' => out.extend_from_slice(br#"\""#),
                b'\\' => out.extend_from_slice(br"\\"),
                b'\n' => out.extend_from_slice(br"\n"),
                b'\r' => out.extend_from_slice(br"\r"),
                b'\t' => out.extend_from_slice(br"\t"),
                // Go ≥ 1.22 writes these short forms (verified on sops 3.11).
                0x08 => out.extend_from_slice(br"\b"),
                0x0c => out.extend_from_slice(br"\f"),
                _ => {
                    out.extend_from_slice(br"\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
            }
            i += 1;
            run = i;
        } else if s.get(i + 1) == Some(&0x80) && matches!(s.get(i + 2), Some(0xA8 | 0xA9)) {
            // U+2028 / U+2029 break JavaScript string literals.
            out.extend_from_slice(&s[run..i]);
            out.extend_from_slice(if s[i + 2] == 0xA8 { br"\u2028" } else { br"\u2029" });
            i += 3;
            run = i;
        } else {
            // Another character starting with 0xE2: copied as is.
            i += 1;
        }
    }
    out.extend_from_slice(&s[run..]);
}

/// The byte-at-a-time equivalent of [`scan_escape`] (for tests).
#[cfg(test)]
fn scan_escape_slow(s: &[u8], from: usize) -> usize {
    (from..s.len()).find(|&i| needs_escape_check(s[i])).unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_printed_apart_join_like_one_stream() {
        let store = JsonStore::new(4).unwrap();
        let items: Vec<Item> = (0..5)
            .map(|i| {
                Item::new(
                    format!("k{i}"),
                    Value::List(vec![Value::Int(i), Value::Str("<x>".into())]),
                )
            })
            .collect();
        let mut whole = ObjectStream::new(&store);
        whole.push(&items).unwrap();
        let whole = whole.finish();
        // Every split into three runs, empty ones included.
        for a in 0..=items.len() {
            for b in a..=items.len() {
                let mut joined = ObjectStream::new(&store);
                for run in [&items[..a], &items[a..b], &items[b..]] {
                    let mut printed = Vec::new();
                    print_members(joined.indent(), run, &mut printed).unwrap();
                    joined.push_printed(&printed);
                }
                assert_eq!(joined.finish(), whole, "cuts at {a} and {b}");
            }
        }
        let mut empty = ObjectStream::new(&store);
        empty.push_printed(b"");
        assert_eq!(empty.finish(), b"{}\n");
    }

    #[test]
    fn streamed_emission_matches_buffered() {
        let store = JsonStore::new(4).unwrap();
        let mut files = 0;
        for (p, data) in crate::testutil::corpus_files("json") {
            let Ok(branches) = store.load(&data) else {
                continue;
            };
            files += 1;
            let mut streamed = Vec::new();
            store.emit_to(&branches, &mut streamed).unwrap();
            assert_eq!(streamed, store.emit(&branches).unwrap(), "{}", p.display());
        }
        assert!(files > 5, "only {files} JSON files");
        // Large enough to flush many times, nested.
        let mut big = Branch::new();
        for i in 0..5000 {
            let inner = Branch(vec![
                Item::new("s", Value::Str("x".repeat(i % 50))),
                Item::new("n", Value::List(vec![Value::Int(i as i64), Value::Null])),
            ]);
            big.push(format!("k{i}"), Value::Map(inner));
        }
        let mut streamed = Vec::new();
        store.emit_to(std::slice::from_ref(&big), &mut streamed).unwrap();
        assert_eq!(streamed, store.emit(&[big.clone()]).unwrap());
        // What the emitter refuses is refused before any byte is written.
        big.push("bad", Value::Float(f64::NAN));
        let mut out = Vec::new();
        let err = store.emit_to(&[big.clone()], &mut out).unwrap_err();
        assert!(out.is_empty());
        match err {
            crate::stores::EmitError::Store(e) => assert_eq!(e, store.emit(&[big]).unwrap_err()),
            crate::stores::EmitError::Write(e) => panic!("unexpected write error {e}"),
        }
    }

    fn load(s: &[u8]) -> Result<Branch, String> {
        JsonStore::default()
            .load(s)
            .map(|mut v| v.remove(0))
            .map_err(|e| e.message)
    }

    fn roundtrip(s: &[u8]) -> Result<String, String> {
        let b = load(s)?;
        let out = JsonStore::default().emit(&[b]).map_err(|e| e.message)?;
        String::from_utf8(out).map_err(|_| "not utf8".to_string())
    }

    /// The message without the position suffix.
    fn err_text(s: &[u8]) -> String {
        let e = load(s).expect_err("should fail");
        let e = e.strip_prefix(LOAD_PREFIX).expect("prefix").to_string();
        match e.rfind(" (line ") {
            Some(p) => e[..p].to_string(),
            None => e,
        }
    }

    #[test]
    fn indent_options() {
        let b = load(br#"{"a":{"b":[1,{}]}}"#).unwrap();
        let emit = |n| String::from_utf8(JsonStore::new(n).unwrap().emit(std::slice::from_ref(&b)).unwrap()).unwrap();
        assert_eq!(
            emit(-1),
            "{\n\t\"a\": {\n\t\t\"b\": [\n\t\t\t1,\n\t\t\t{}\n\t\t]\n\t}\n}\n"
        );
        assert_eq!(emit(0), "{\n\"a\": {\n\"b\": [\n1,\n{}\n]\n}\n}\n");
        assert_eq!(
            emit(2),
            "{\n  \"a\": {\n    \"b\": [\n      1,\n      {}\n    ]\n  }\n}\n"
        );
        assert_eq!(
            JsonStore::new(-2).unwrap_err().message,
            "JSON Indentation parameter smaller than -1 is not accepted"
        );
    }

    #[test]
    fn numbers_are_floats() {
        let b = load(br#"{"a": 1, "b": 9007199254740993, "c": -0, "d": 1e-400}"#).unwrap();
        assert!(matches!(b.get("a"), Some(Value::Float(f)) if *f == 1.0));
        assert!(matches!(b.get("b"), Some(Value::Float(f)) if *f == 9007199254740992.0));
        assert!(matches!(b.get("c"), Some(Value::Float(f)) if f.is_sign_negative()));
        assert!(matches!(b.get("d"), Some(Value::Float(f)) if *f == 0.0));
    }

    #[test]
    fn strings_decode_like_go() {
        let b =
            load(b"{\"s\":\"\xe2\x82x\xed\xa0\x80\xff\", \"u\":\"\\ud800\\u0041\\udc00\\ud83d\\ude00\\/\"}").unwrap();
        assert_eq!(
            b.get("s").unwrap().as_str().unwrap(),
            "\u{FFFD}\u{FFFD}x\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert_eq!(b.get("u").unwrap().as_str().unwrap(), "\u{FFFD}A\u{FFFD}\u{1F600}/");
    }

    #[test]
    fn escapes_like_go() {
        let out = roundtrip(
            "{\"k<\":\"<>&\\u2028\\u2029\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\\u{7f}\u{85}\u{feff}é😀\"}".as_bytes(),
        )
        .unwrap();
        assert_eq!(
            out,
            "{\n\t\"k\\u003c\": \"\\u003c\\u003e\\u0026\\u2028\\u2029\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\\u{7f}\u{85}\u{feff}é😀\"\n}\n"
        );
        let mut out = Vec::new();
        write_string(&mut out, b"a\xffb\xe2\x82");
        assert_eq!(out, br#""a\ufffdb\ufffd\ufffd""#);
    }

    #[test]
    fn eof_quirks_match_sops() {
        // Observed with sops 3.11.
        assert_eq!(roundtrip(br#"{"a":"#).unwrap(), "{}\n");
        assert_eq!(roundtrip(br#"{"a""#).unwrap(), "{}\n");
        assert_eq!(roundtrip(br#"{"x":1,"a":[1,2"#).unwrap(), "{\n\t\"x\": 1\n}\n");
        assert_eq!(roundtrip(br#"{"x":[{"a":"#).unwrap(), "{}\n");
        assert_eq!(roundtrip(br#"{"a":1}}garbage["#).unwrap(), "{\n\t\"a\": 1\n}\n");
        let nil_key = "Expected JSON object key, got %!s(<nil>) of type <nil> instead";
        for s in [&br#"{"#[..], br#"{"a":1"#, br#"{"x":{"a":"#, br#"{"a":"x","#] {
            assert_eq!(err_text(s), nil_key);
        }
        assert_eq!(err_text(b""), "EOF");
        assert_eq!(err_text(b" \n"), "EOF");
        assert_eq!(err_text(br#"{"a":"abc"#), "unexpected EOF");
    }

    #[test]
    fn syntax_errors_match_sops() {
        let cases: &[(&[u8], &str)] = &[
            (b"[1]", "Expected JSON object start, got delimiter [ instead"),
            (b"null", "Expected JSON object start, got <nil> of type <nil> instead"),
            (b"true", "Expected JSON object start, got true of type bool instead"),
            (
                b"\"s\"",
                "Expected JSON object start, got <redacted> of type string instead",
            ),
            (b"}", "invalid character '}' looking for beginning of value"),
            (b"x", "invalid character 'x' looking for beginning of value"),
            (
                br#"{"a":1,}"#,
                "invalid character '}' looking for beginning of object key string",
            ),
            (b"{,}", "invalid character ','"),
            (br#"{"a" 1}"#, "invalid character '1' after object key"),
            (
                br#"{"a":1 "b":2}"#,
                "invalid character '\"' after object key:value pair",
            ),
            (br#"{"a":[1 2]}"#, "invalid character '2' after array element"),
            (br#"{"a":[1,]}"#, "invalid character ']' looking for beginning of value"),
            (br#"{"a":01}"#, "invalid character '1' after object key:value pair"),
            (br#"{"a":tru}"#, "invalid character '}' in literal true (expecting 'e')"),
            (br#"{"a":-}"#, "invalid character '}' in numeric literal"),
            (
                br#"{"a":1.}"#,
                "invalid character '}' after decimal point in numeric literal",
            ),
            (br#"{"a":1e}"#, "invalid character '}' in exponent of numeric literal"),
            (
                br#"{"a":1e400}"#,
                "json: cannot unmarshal number into Go value of type float64",
            ),
            (br#"{"a":"a\qb"}"#, "invalid character 'q' in string escape code"),
            (
                br#"{"a":"\u12G4"}"#,
                r"invalid character 'G' in \u hexadecimal character escape",
            ),
            (b"{\"a\":\"x\x01y\"}", r"invalid character '\x01' in string literal"),
            (
                b"\xef\xbb\xbf{}",
                "invalid character 'ï' looking for beginning of value",
            ),
            (b"\x80", r"invalid character '\u0080' looking for beginning of value"),
            (b"'", r"invalid character '\'' looking for beginning of value"),
            (br#"{"a":{]}"#, "invalid character ']'"),
        ];
        for (input, want) in cases {
            assert_eq!(&err_text(input), want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn error_position() {
        let e = load(b"{\n  \"a\": tx}").unwrap_err();
        assert!(e.ends_with("(line 2, column 9)"), "{e}");
    }

    #[test]
    fn emit_errors_wrap_like_sops() {
        let store = JsonStore::default();
        let nan = Branch(vec![Item::new("a", Value::Float(f64::NAN))]);
        assert_eq!(
            store.emit(&[nan]).unwrap_err().message,
            "Error marshaling to json: Error encoding value : json: unsupported value: NaN"
        );
        let inner = Branch(vec![Item::new("a", Value::List(vec![Value::Float(f64::NEG_INFINITY)]))]);
        let outer = Branch(vec![Item::new("x", Value::Map(inner))]);
        assert_eq!(
            store.emit(&[outer]).unwrap_err().message,
            "Error marshaling to json: Error encoding value : Error encoding value : json: unsupported value: -Inf"
        );
        assert_eq!(
            store.emit_value(&Value::Float(f64::INFINITY)).unwrap_err().message,
            "json: unsupported value: +Inf"
        );
    }

    #[test]
    fn emit_value_forms() {
        let store = JsonStore::default();
        let ev = |v: Value| String::from_utf8(store.emit_value(&v).unwrap()).unwrap();
        assert_eq!(ev(Value::Int(42)), "42");
        assert_eq!(ev(Value::Float(2.25)), "2.25");
        assert_eq!(ev(Value::Str("<x>".into())), "\"\\u003cx\\u003e\"");
        assert_eq!(
            ev(Value::Time("2024-01-01T00:00:00Z".into())),
            "\"2024-01-01T00:00:00Z\""
        );
        assert_eq!(ev(Value::List(vec![])), "[]");
        assert_eq!(
            ev(Value::List(vec![
                Value::Int(1),
                Value::Comment("c".into()),
                Value::Null
            ])),
            "[\n\t1,\n\tnull\n]"
        );
        assert_eq!(ev(Value::Map(Branch::new())), "{}");
    }

    #[test]
    fn comments_are_skipped() {
        let b = Branch(vec![
            Item::comment(" top"),
            Item::new("a", Value::List(vec![Value::Comment(" c".into())])),
            Item::comment(" end"),
        ]);
        let out = JsonStore::default().emit(&[b]).unwrap();
        assert_eq!(out, b"{\n\t\"a\": []\n}\n");
    }

    #[test]
    fn strict_validation_like_unmarshal() {
        let v = |s: &[u8]| {
            validate_strict(s).map_err(|e| {
                let m = e.message;
                m[..m.rfind(" (line ").unwrap_or(m.len())].to_string()
            })
        };
        assert_eq!(v(br#"{"a": [1, {"b": null}], "c": "\u0041"} "#), Ok(()));
        assert_eq!(v(br#"{"a": 1e400}"#), Ok(()));
        assert_eq!(v(b"{} x").unwrap_err(), "invalid character 'x' after top-level value");
        assert_eq!(v(br#"{"a": 1"#).unwrap_err(), "unexpected end of JSON input");
        assert_eq!(v(b"").unwrap_err(), "unexpected end of JSON input");
        assert_eq!(
            v(br#"{"a": [1,]"#).unwrap_err(),
            "invalid character ']' looking for beginning of value"
        );
        assert_eq!(
            v(b"{,}").unwrap_err(),
            "invalid character ',' looking for beginning of object key string"
        );
        assert_eq!(
            v(br#"{"a":1,2}"#).unwrap_err(),
            "invalid character '2' looking for beginning of object key string"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let depth = MAX_DEPTH - 1;
        let mut s = b"{\"a\":".to_vec();
        s.extend(std::iter::repeat_n(b'[', depth));
        s.extend(std::iter::repeat_n(b']', depth));
        s.push(b'}');
        let out = roundtrip(&s).expect("deep but allowed");
        assert!(out.len() > depth);
        let mut s = b"{\"a\":".to_vec();
        s.extend(std::iter::repeat_n(b'[', MAX_DEPTH + 5));
        assert!(load(&s).unwrap_err().contains("nesting deeper than"));
    }

    use crate::testutil::Rng;

    /// The byte-at-a-time escaper the word-at-a-time one replaced.
    fn escape_valid_slow(out: &mut Vec<u8>, s: &[u8]) {
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b == 0xE2 && s.get(i + 1) == Some(&0x80) && matches!(s.get(i + 2), Some(0xA8 | 0xA9)) {
                out.extend_from_slice(if s[i + 2] == 0xA8 { br"\u2028" } else { br"\u2029" });
                i += 3;
                continue;
            }
            match b {
                b'"' => out.extend_from_slice(br#"\""#),
                b'\\' => out.extend_from_slice(br"\\"),
                b'\n' => out.extend_from_slice(br"\n"),
                b'\r' => out.extend_from_slice(br"\r"),
                b'\t' => out.extend_from_slice(br"\t"),
                0x08 => out.extend_from_slice(br"\b"),
                0x0c => out.extend_from_slice(br"\f"),
                b'<' | b'>' | b'&' | 0..=0x1f => {
                    out.extend_from_slice(br"\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                _ => out.push(b),
            }
            i += 1;
        }
    }

    #[test]
    fn word_scans_match_byte_scans() {
        // Every byte next to every other in a word, at every alignment: the
        // bytes the masks flag or nearly flag (±1 for borrows), plus others.
        let special: Vec<u8> = vec![
            0x00, 0x01, 0x08, 0x0c, 0x1f, 0x20, 0x21, b'"', 0x23, 0x25, b'&', 0x27, 0x3b, b'<', 0x3d, b'>', 0x3f, 0x5b,
            b'\\', 0x5d, b'a', 0x7f, 0x80, 0x81, 0xa8, 0xa9, 0xe1, 0xe2, 0xe3, 0xfe, 0xff,
        ];
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        for round in 0..40_000 {
            let len = rng.below(40);
            let s: Vec<u8> = (0..len)
                .map(|_| match rng.below(8) {
                    // Mostly ordinary text so runs get long enough to span words.
                    0..=4 => b'a' + rng.below(26) as u8,
                    5 => 0x80 + rng.below(0x80) as u8,
                    _ => special[rng.below(special.len())],
                })
                .collect();
            let from = if round % 2 == 0 { 0 } else { rng.below(len + 1) };
            assert_eq!(scan_string(&s, from), scan_string_slow(&s, from), "{s:?} from {from}");
            assert_eq!(scan_escape(&s, from), scan_escape_slow(&s, from), "{s:?} from {from}");
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            escape_valid(&mut fast, &s);
            escape_valid_slow(&mut slow, &s);
            assert_eq!(fast, slow, "{s:?}");
            // U+2028/U+2029 split across words.
            let mut t = s.clone();
            t.splice(len / 2..len / 2, [0xE2, 0x80, 0xA8 + (round % 2) as u8]);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            escape_valid(&mut fast, &t);
            escape_valid_slow(&mut slow, &t);
            assert_eq!(fast, slow, "{t:?}");
        }
        for b in 0..=255u8 {
            for pos in 0..17 {
                let mut s = vec![b'a'; 17];
                s[pos] = b;
                assert_eq!(scan_string(&s, 0), scan_string_slow(&s, 0), "{b:#x} at {pos}");
                assert_eq!(scan_escape(&s, 0), scan_escape_slow(&s, 0), "{b:#x} at {pos}");
            }
        }
    }

    #[test]
    fn strict_validation_matches_decoding_errors() {
        // `skip_string` must fail exactly where `string` fails, same text.
        let bodies: &[&[u8]] = &[
            br#"abc""#,
            br#"a\"b\\c\/\b\f\n\r\t""#,
            br#"\u00e9\ud83d\ude00\ud800\u0041""#,
            br#"\ud800\u12G4""#,
            br#"\ud800\x""#,
            br#"a\qb""#,
            br#"\u12"#,
            br#"\u"#,
            br#"\"#,
            b"x\x01y\"",
            b"\xff\xfe\"",
            br#"no end"#,
        ];
        for body in bodies {
            let mut src = b"\"".to_vec();
            src.extend_from_slice(body);
            src.extend_from_slice(b"   ");
            let mut a = Tokenizer::new(&src);
            let mut b = Tokenizer::new(&src);
            let (ra, rb) = (a.string().map(|_| a.pos), b.skip_string().map(|_| b.pos));
            match (ra, rb) {
                (Ok(x), Ok(y)) => assert_eq!(x, y),
                (Err(x), Err(y)) => assert_eq!((x.msg, x.offset), (y.msg, y.offset)),
                _ => panic!("{:?}", String::from_utf8_lossy(body)),
            }
        }
    }

    #[test]
    fn fuzz_never_panics_and_roundtrips() {
        let seeds: &[&[u8]] = &[
            br#"{"a": 1, "b": [true, false, null, -1.5e3, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"], "c": {"d": {}}, "e": []}"#,
            br#"{"k": [[[]], [{}], {"z": [1, 2, {"y": "w"}]}], "a": "a", "a": 0.000001}"#,
            b"{\"\xff\xfe\": \"\xe2\x82\", \"n\": 123456789012345678901234567890}",
        ];
        let alphabet = b"{}[]:,\"\\ -+.0123456789eEtrufalsn\xff\x01\nux";
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let store = JsonStore::default();
        for _ in 0..20_000 {
            let mut input = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..1 + rng.below(6) {
                let pos = rng.below(input.len() + 1);
                match rng.below(4) {
                    0 if pos < input.len() => {
                        input.remove(pos);
                    }
                    1 if pos < input.len() => input[pos] = alphabet[rng.below(alphabet.len())],
                    2 => input.insert(pos, alphabet[rng.below(alphabet.len())]),
                    _ => input.truncate(pos),
                }
            }
            let _ = validate_strict(&input);
            if let Ok(doc) = store.load(&input) {
                // Whatever parses must print, and re-parse to the same output.
                let out = store.emit(&doc).expect("parsed trees always emit");
                let again = store.emit(&store.load(&out).expect("own output parses")).unwrap();
                assert_eq!(out, again);
                validate_strict(&out).expect("own output is strict JSON");
            }
        }
        // Pure random bytes too.
        for _ in 0..5_000 {
            let len = rng.below(64);
            let input: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let _ = store.load(&input);
            let _ = validate_strict(&input);
        }
    }
}
