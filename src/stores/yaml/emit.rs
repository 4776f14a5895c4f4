//! Emission: sops' tree → go-yaml node events (as sops 3.11's
//! `appendTreeBranch`/`appendSequence` and go-yaml's encoder build them) →
//! a port of go-yaml v3's `emitterc.go` state machine (block styles; flow
//! only for empty collections, which is all sops ever produces).

use super::resolve::{is_base60_float, is_old_bool, resolve_plain, Tag};
use crate::gofmt::format_float_yaml;
use crate::tree::{Branch, Item, Key, Value};
use base64::Engine;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    StreamStart,
    FirstDocumentStart,
    DocumentStart,
    DocumentContent,
    DocumentEnd,
    FlowSequenceFirstItem,
    FlowMappingFirstKey,
    BlockSequenceFirstItem,
    BlockSequenceItem,
    BlockMappingFirstKey,
    BlockMappingKey,
    BlockMappingSimpleValue,
    BlockMappingValue,
    End,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EvKind {
    StreamStart,
    StreamEnd,
    DocStart,
    DocEnd,
    MapStart,
    MapEnd,
    SeqStart,
    SeqEnd,
    Scalar,
}

/// One emitter event. Comments are full `#`-prefixed texts.
struct Ev<'a> {
    kind: EvKind,
    /// Collection is empty (go-yaml looks one event ahead for this).
    empty: bool,
    value: &'a str,
    tag: &'a str,
    style: Style,
    analysis: Option<Analysis>,
    head: String,
    foot: String,
    tail: String,
}

impl<'a> Ev<'a> {
    fn new(kind: EvKind) -> Ev<'a> {
        Ev {
            kind,
            empty: false,
            value: "",
            tag: "",
            style: Style::Plain,
            analysis: None,
            head: String::new(),
            foot: String::new(),
            tail: String::new(),
        }
    }
}

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

#[inline]
fn at(v: &[u8], i: usize) -> u8 {
    v.get(i).copied().unwrap_or(0)
}

#[inline]
fn width(b: u8) -> usize {
    if b & 0x80 == 0 {
        1
    } else if b & 0xE0 == 0xC0 {
        2
    } else if b & 0xF0 == 0xE0 {
        3
    } else if b & 0xF8 == 0xF0 {
        4
    } else {
        1
    }
}

/// `v.is_ascii()`, 8 bytes per step to the end: std's version goes 64
/// bytes at a time but then one by one through up to 63 trailing bytes,
/// which is most of a typical 100–300 byte value.
fn is_ascii_words(v: &[u8]) -> bool {
    let mut chunks = v.chunks_exact(8);
    let mut acc = 0u64;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        acc |= u64::from_le_bytes(w);
    }
    let tail = chunks.remainder().iter().fold(0u8, |a, &b| a | b);
    acc & 0x8080_8080_8080_8080 == 0 && tail < 0x80
}

fn is_break(v: &[u8], i: usize) -> bool {
    match at(v, i) {
        b'\r' | b'\n' => true,
        0xC2 => at(v, i + 1) == 0x85,
        0xE2 => at(v, i + 1) == 0x80 && (at(v, i + 2) == 0xA8 || at(v, i + 2) == 0xA9),
        _ => false,
    }
}

fn is_blank(v: &[u8], i: usize) -> bool {
    let b = at(v, i);
    b == b' ' || b == b'\t'
}

/// go-yaml's `is_bom` looks at the start of the buffer, not at `i`: once a
/// value starts with U+FEFF every character of it is escaped. Reproduced
/// because sops's output depends on it (`"\uFEFF\x78"` for "\u{feff}x").
fn is_bom(v: &[u8], _i: usize) -> bool {
    at(v, 0) == 0xEF && at(v, 1) == 0xBB && at(v, 2) == 0xBF
}

/// go-yaml's `is_printable` (note: excludes all 4-byte characters).
fn is_printable(v: &[u8], i: usize) -> bool {
    let b = at(v, i);
    let b1 = at(v, i + 1);
    let b2 = at(v, i + 2);
    b == 0x0A
        || (0x20..=0x7E).contains(&b)
        || (b == 0xC2 && b1 >= 0xA0)
        || (b > 0xC2 && b < 0xED)
        || (b == 0xED && b1 < 0xA0)
        || b == 0xEE
        || (b == 0xEF && !(b1 == 0xBB && b2 == 0xBF) && !(b1 == 0xBF && (b2 == 0xBE || b2 == 0xBF)))
}

/// Byte classes for `analyze_ascii`: 1 = outside printable ASCII (space
/// included), 2 = flow indicator `,?[]{}`, 4 = `:`, 8 = `#`, 16 = space.
const ASCII_CLASS: [u8; 256] = {
    let mut t = [1u8; 256];
    let mut c = 0x20;
    while c <= 0x7E {
        t[c] = 0;
        c += 1;
    }
    t[b',' as usize] = 2;
    t[b'?' as usize] = 2;
    t[b'[' as usize] = 2;
    t[b']' as usize] = 2;
    t[b'{' as usize] = 2;
    t[b'}' as usize] = 2;
    t[b':' as usize] = 4;
    t[b'#' as usize] = 8;
    t[b' ' as usize] = 16;
    t
};

/// The OR of the [`ASCII_CLASS`] bits of all of `v`.
fn class_bits(v: &[u8]) -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        // Sixteen bytes per step: encrypted values (`ENC[…]`, ~200 bytes)
        // make this the emitter's longest loop.
        let chunks = v.chunks_exact(16);
        let tail = chunks.remainder();
        tail.iter()
            .fold(class_bits_sse2(chunks), |acc, &c| acc | ASCII_CLASS[usize::from(c)])
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        v.iter().fold(0, |acc, &c| acc | ASCII_CLASS[usize::from(c)])
    }
}

#[cfg(target_arch = "x86_64")]
fn class_bits_sse2(chunks: std::slice::ChunksExact<'_, u8>) -> u8 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, and every load reads
    // one whole 16-byte chunk of the slice.
    unsafe {
        let eq = |x: __m128i, b: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(b as i8));
        let (mut other, mut flow, mut colon, mut hash, mut space) = (
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
            _mm_setzero_si128(),
        );
        for c in chunks {
            let x = _mm_loadu_si128(c.as_ptr().cast());
            // Below 0x20 or from 0x80 on (negative as i8), or DEL.
            let low_or_high = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
            other = _mm_or_si128(other, _mm_or_si128(low_or_high, eq(x, 0x7F)));
            // `[` / `{` and `]` / `}` differ only in bit 0x20.
            let folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
            let brackets = _mm_or_si128(eq(folded, b'{'), eq(folded, b'}'));
            flow = _mm_or_si128(flow, _mm_or_si128(brackets, _mm_or_si128(eq(x, b','), eq(x, b'?'))));
            colon = _mm_or_si128(colon, eq(x, b':'));
            hash = _mm_or_si128(hash, eq(x, b'#'));
            space = _mm_or_si128(space, eq(x, b' '));
        }
        let any = |m: __m128i| u8::from(_mm_movemask_epi8(m) != 0);
        any(other) | any(flow) << 1 | any(colon) << 2 | any(hash) << 3 | any(space) << 4
    }
}

/// `analyze_scalar` for text made only of printable ASCII and spaces (the
/// common case): no widths, breaks, tabs or special characters to track.
fn analyze_ascii(v: &[u8]) -> Option<Analysis> {
    if v.is_empty() {
        return None;
    }
    let acc = class_bits(v);
    if acc & 1 != 0 {
        return None;
    }
    let n = v.len();
    let ws_after = |i: usize| i + 1 >= n || v[i + 1] == b' ';
    let mut block_indicators = false;
    // Any of `,?[]{}:` anywhere is a flow indicator (at the start too).
    let mut flow_indicators = acc & 6 != 0;
    if n >= 3 && (v.starts_with(b"---") || v.starts_with(b"...")) {
        block_indicators = true;
        flow_indicators = true;
    }
    match v[0] {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@'
        | b'`' => {
            flow_indicators = true;
            block_indicators = true;
        }
        b'?' | b':' if ws_after(0) => block_indicators = true,
        b'-' if ws_after(0) => {
            flow_indicators = true;
            block_indicators = true;
        }
        _ => {}
    }
    if acc & 12 != 0 && !block_indicators && acc & 16 == 0 {
        // Without spaces only a final `:` can be a block indicator (a first
        // one was handled above), which spares the scan below for the many
        // values like `ENC[AES256_GCM,data:…]`.
        block_indicators = n > 1 && v[n - 1] == b':';
    } else if acc & 12 != 0 && !block_indicators {
        // `: ` / `:` at the end, or ` #`, make a block indicator.
        for i in 1..n {
            match v[i] {
                b':' if ws_after(i) => {
                    block_indicators = true;
                    break;
                }
                b'#' if v[i - 1] == b' ' => {
                    flow_indicators = true;
                    block_indicators = true;
                    break;
                }
                _ => {}
            }
        }
    }
    let edge_space = v[0] == b' ' || v[n - 1] == b' ';
    Some(Analysis {
        multiline: false,
        flow_plain_allowed: !edge_space && !flow_indicators,
        block_plain_allowed: !edge_space && !block_indicators,
        single_quoted_allowed: true,
        block_allowed: v[n - 1] != b' ',
    })
}

fn analyze_scalar(value: &str) -> Analysis {
    match analyze_ascii(value.as_bytes()) {
        Some(a) => a,
        None => analyze_scalar_full(value),
    }
}

/// go-yaml's `yaml_emitter_analyze_scalar`.
fn analyze_scalar_full(value: &str) -> Analysis {
    let v = value.as_bytes();
    if v.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain_allowed: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut tab_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;

    if v.len() >= 3 && (v.starts_with(b"---") || v.starts_with(b"...")) {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while i < v.len() {
        let w = width(v[i]);
        let followed_by_whitespace = i + w >= v.len() || is_blank(v, i + w);
        let c = v[i];
        if i == 0 {
            match c {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%'
                | b'@' | b'`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                b'?' | b':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                b'-' if followed_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match c {
                b',' | b'?' | b'[' | b']' | b'{' | b'}' => flow_indicators = true,
                b':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                b'#' if preceded_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }
        if c == b'\t' {
            tab_characters = true;
        } else if if c < 0x80 {
            !(c == b'\n' || (0x20..=0x7E).contains(&c))
        } else {
            !is_printable(v, i)
        } {
            special_characters = true;
        }
        let brk = if c < 0x80 {
            c == b'\n' || c == b'\r'
        } else {
            is_break(v, i)
        };
        if c == b' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + w == v.len() {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if brk {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + w == v.len() {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = c == b' ' || c == b'\t' || brk;
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain_allowed: true,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tab_characters || special_characters {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_indicators {
        a.flow_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// `yaml_emitter_select_scalar_style` (block context, not canonical).
fn select_style(requested: Style, a: &Analysis, value: &str, simple_key: bool, no_tag: bool, implicit: bool) -> Style {
    let mut style = requested;
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain {
        if !a.block_plain_allowed {
            style = Style::Single;
        }
        if value.is_empty() && simple_key {
            style = Style::Single;
        }
        if no_tag && !implicit {
            style = Style::Single;
        }
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

/// How go-yaml renders one tree scalar as a key or value node: its text,
/// tag and the style the node ends up with after sops' `Node.Encode`
/// round trip (encode at document root, re-parse, re-emit).
pub struct ScalarRepr<'a> {
    pub text: std::borrow::Cow<'a, str>,
    pub tag: &'static str,
    pub style: Style,
    analysis: Option<Analysis>,
}

fn encode_base64_lines(b: &[u8]) -> String {
    // go-yaml breaks base64 into 70-column lines when it is that long.
    let enc = base64::engine::general_purpose::STANDARD.encode(b);
    const LINE: usize = 70;
    let lines = enc.len() / LINE + 1;
    if lines <= 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    let mut i = 0;
    while i < enc.len() {
        let j = (i + LINE).min(enc.len());
        out.push_str(&enc[i..j]);
        out.push('\n');
        i = j;
    }
    out
}

/// sops builds each scalar node with `Node.Encode`, which emits the value
/// on its own and parses it back; if that text does not parse (go-yaml
/// cannot read its own literal block when the first line starts with a
/// tab), the error is ignored and the empty node is written as `null`.
fn string_node<'a>(s: &'a str) -> ScalarRepr<'a> {
    use std::borrow::Cow;
    let (style, tag, a) = string_repr(s);
    if style == Style::Literal && s.starts_with('\t') {
        return ScalarRepr {
            text: Cow::Borrowed("null"),
            tag: "",
            style: Style::Plain,
            analysis: None,
        };
    }
    ScalarRepr {
        text: Cow::Borrowed(s),
        tag,
        style,
        analysis: Some(a),
    }
}

fn string_repr(s: &str) -> (Style, &'static str, Analysis) {
    // First pass: the node is encoded on its own, at the document root.
    let a = analyze_scalar(s);
    let (rtag, _) = resolve_plain(s);
    let can_use_plain = rtag == Tag::Str && !(is_base60_float(s) || is_old_bool(s));
    // Only text with line breaks (`multiline`) can hold a `\n`.
    let requested = if a.multiline && s.contains('\n') {
        Style::Literal
    } else if can_use_plain {
        Style::Plain
    } else {
        Style::Double
    };
    let style = select_style(requested, &a, s, false, true, true);
    // A plain `<<` re-parses as a merge key and keeps that tag.
    let tag = if style == Style::Plain && s == "<<" {
        "!!merge"
    } else {
        ""
    };
    (style, tag, a)
}

pub fn scalar_repr(v: &Value) -> Option<ScalarRepr<'_>> {
    use std::borrow::Cow;
    Some(match v {
        Value::Null => ScalarRepr {
            text: Cow::Borrowed("null"),
            tag: "",
            style: Style::Plain,
            analysis: None,
        },
        Value::Bool(b) => ScalarRepr {
            text: Cow::Borrowed(if *b { "true" } else { "false" }),
            tag: "",
            style: Style::Plain,
            analysis: None,
        },
        Value::Int(i) => ScalarRepr {
            text: Cow::Owned(i.to_string()),
            tag: "",
            style: Style::Plain,
            analysis: None,
        },
        Value::Float(f) => ScalarRepr {
            text: Cow::Owned(format_float_yaml(*f)),
            tag: "",
            style: Style::Plain,
            analysis: None,
        },
        Value::Time(t) => ScalarRepr {
            text: Cow::Borrowed(t.as_str()),
            tag: "",
            style: Style::Plain,
            analysis: None,
        },
        Value::Str(s) => string_node(s),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => string_node(s),
            Err(_) => {
                let text = encode_base64_lines(b);
                let requested = if text.contains('\n') {
                    Style::Literal
                } else {
                    Style::Plain
                };
                let a = analyze_scalar(&text);
                let style = select_style(requested, &a, &text, false, false, false);
                ScalarRepr {
                    text: Cow::Owned(text),
                    tag: "!!binary",
                    style,
                    analysis: Some(a),
                }
            }
        },
        Value::Comment(_) | Value::Map(_) | Value::List(_) => return None,
    })
}

fn key_repr(k: &Key) -> ScalarRepr<'_> {
    use std::borrow::Cow;
    match k {
        Key::Str(s) | Key::Comment(s) => string_node(s),
        Key::NonString { type_name, text } => {
            // Go re-encodes the decoded key value: rebuild it from its text.
            use super::resolve::Resolved;
            let v = match (*type_name, resolve_plain(text).1) {
                ("<nil>", _) => Value::Null,
                (_, Resolved::Int(i)) => Value::Int(i),
                (_, Resolved::Uint(u)) => Value::Str(u.to_string()),
                (_, Resolved::Float(f)) => Value::Float(f),
                (_, Resolved::Bool(b)) => Value::Bool(b),
                (_, Resolved::Time(t)) => Value::Time(t),
                _ => Value::Str(text.clone()),
            };
            let uint = matches!(resolve_plain(text).1, Resolved::Uint(_));
            match scalar_repr(&v) {
                Some(r) => {
                    let (tag, style, analysis) = (r.tag, if uint { Style::Plain } else { r.style }, r.analysis);
                    ScalarRepr {
                        text: Cow::Owned(r.text.into_owned()),
                        tag,
                        style,
                        analysis,
                    }
                }
                None => ScalarRepr {
                    text: Cow::Borrowed("null"),
                    tag: "",
                    style: Style::Plain,
                    analysis: None,
                },
            }
        }
    }
}

fn join_comments(lines: &[&str]) -> String {
    let mut s = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push('#');
        s.push_str(l);
    }
    s
}

pub struct Emitter {
    out: Vec<u8>,
    best_indent: i64,
    state: State,
    states: Vec<State>,
    indent: i64,
    indents: Vec<i64>,
    flow_level: i64,
    column: i64,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
    foot_indent: i64,
    simple_key_context: bool,
    root_context: bool,
    head_comment: String,
    line_comment: String,
    foot_comment: String,
    tail_comment: String,
    key_line_comment: String,
    // Per-scalar data set by the analysis step.
    scalar_style: Style,
    analysis: Analysis,
}

impl Emitter {
    pub fn new(indent: usize) -> Emitter {
        let mut best_indent = indent as i64;
        if !(2..=9).contains(&best_indent) {
            best_indent = 2;
        }
        Emitter {
            out: Vec::new(),
            best_indent,
            state: State::StreamStart,
            states: Vec::new(),
            indent: -1,
            indents: Vec::new(),
            flow_level: 0,
            column: 0,
            whitespace: true,
            indention: true,
            open_ended: false,
            foot_indent: -1,
            simple_key_context: false,
            root_context: false,
            head_comment: String::new(),
            line_comment: String::new(),
            foot_comment: String::new(),
            tail_comment: String::new(),
            key_line_comment: String::new(),
            scalar_style: Style::Plain,
            analysis: Analysis::default(),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    // ---- low-level writers ----

    fn put(&mut self, b: u8) {
        self.out.push(b);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
        self.indention = true;
    }

    /// Write one character starting at `v[*i]`.
    fn write(&mut self, v: &[u8], i: &mut usize) {
        let w = width(v[*i]).min(v.len() - *i);
        self.out.extend_from_slice(&v[*i..*i + w]);
        self.column += 1;
        *i += w;
    }

    fn write_all(&mut self, s: &[u8]) {
        let mut i = 0;
        while i < s.len() {
            self.write(s, &mut i);
        }
    }

    fn write_break(&mut self, v: &[u8], i: &mut usize) {
        if v[*i] == b'\n' {
            self.put_break();
            *i += 1;
        } else {
            self.write(v, i);
            self.column = 0;
            self.indention = true;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        if self.foot_indent == indent {
            self.put_break();
        }
        if self.column < indent {
            // One fill instead of a push per space.
            let n = (indent - self.column) as usize;
            self.out.resize(self.out.len() + n, b' ');
            self.column = indent;
        }
        self.whitespace = true;
        self.foot_indent = -1;
    }

    fn write_indicator(&mut self, ind: &[u8], need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(b' ');
        }
        self.write_all(ind);
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
        self.open_ended = false;
    }

    fn write_tag_handle(&mut self, value: &[u8]) {
        if !self.whitespace {
            self.put(b' ');
        }
        self.write_all(value);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_comment(&mut self, comment: &[u8]) {
        let mut breaks = false;
        let mut pound = false;
        let mut i = 0;
        while i < comment.len() {
            if is_break(comment, i) {
                self.write_break(comment, &mut i);
                breaks = true;
                pound = false;
            } else {
                if breaks {
                    self.write_indent();
                }
                if !pound {
                    if comment[i] != b'#' {
                        self.put(b'#');
                        self.put(b' ');
                    }
                    pound = true;
                }
                // Copy a run of ordinary characters at once.
                let st = i;
                while i < comment.len() && !is_break(comment, i) {
                    i += width(comment[i]);
                    self.column += 1;
                }
                let end = i.min(comment.len());
                self.out.extend_from_slice(&comment[st..end]);
                i = end;
                self.indention = false;
                breaks = false;
            }
        }
        if !breaks {
            self.put_break();
        }
        self.whitespace = true;
    }

    fn process_head_comment(&mut self) {
        if !self.tail_comment.is_empty() {
            self.write_indent();
            let c = std::mem::take(&mut self.tail_comment);
            self.write_comment(c.as_bytes());
            self.foot_indent = self.indent.max(0);
        }
        if self.head_comment.is_empty() {
            return;
        }
        self.write_indent();
        let c = std::mem::take(&mut self.head_comment);
        self.write_comment(c.as_bytes());
    }

    fn process_line_comment(&mut self) {
        if self.line_comment.is_empty() {
            return;
        }
        if !self.whitespace {
            self.put(b' ');
        }
        let c = std::mem::take(&mut self.line_comment);
        self.write_comment(c.as_bytes());
    }

    fn process_foot_comment(&mut self) {
        if self.foot_comment.is_empty() {
            return;
        }
        self.write_indent();
        let c = std::mem::take(&mut self.foot_comment);
        self.write_comment(c.as_bytes());
        self.foot_indent = self.indent.max(0);
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { self.best_indent } else { 0 };
        } else if !indentless {
            if self.states.last() == Some(&State::BlockSequenceItem) {
                // The first indent inside a sequence skips the "- ".
                self.indent += 2;
            } else {
                self.indent = self.best_indent * ((self.indent + self.best_indent) / self.best_indent);
            }
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn pop_state(&mut self) {
        self.state = self.states.pop().unwrap_or(State::End);
    }

    /// A block mapping pair of two plain scalars without comments, written
    /// with the same primitive steps the key and value events take through
    /// the state machine (`BlockMapping{First,}Key` → `BlockMappingSimpleValue`
    /// → `BlockMappingKey`), minus the event and state bookkeeping, which
    /// nets out for such a pair. `false` (nothing written) when the pair or
    /// the emitter state is anything else; the caller then emits events.
    fn plain_pair(&mut self, key: &ScalarRepr<'_>, value: &ScalarRepr<'_>) -> bool {
        #[cfg(test)]
        if tests::NO_PLAIN_PAIRS.with(std::cell::Cell::get) {
            return false;
        }
        let first = match self.state {
            State::BlockMappingFirstKey => true,
            State::BlockMappingKey => false,
            _ => return false,
        };
        if self.flow_level != 0
            || !self.head_comment.is_empty()
            || !self.line_comment.is_empty()
            || !self.foot_comment.is_empty()
            || !self.tail_comment.is_empty()
            || !self.key_line_comment.is_empty()
            || !key.tag.is_empty()
            || !value.tag.is_empty()
            || key.text.is_empty()
            || value.text.is_empty()
            // `check_simple_key`.
            || key.text.len() > 128
        {
            return false;
        }
        let ka = key.analysis.unwrap_or_else(|| analyze_scalar(&key.text));
        let va = value.analysis.unwrap_or_else(|| analyze_scalar(&value.text));
        if ka.multiline
            || va.multiline
            || select_style(key.style, &ka, &key.text, true, true, true) != Style::Plain
            || select_style(value.style, &va, &value.text, false, true, true) != Style::Plain
        {
            return false;
        }
        if first {
            self.increase_indent(false, false);
        }
        self.write_indent();
        self.simple_key_context = true;
        self.root_context = false;
        self.analysis = ka;
        self.write_plain(key.text.as_bytes());
        self.write_indicator(b":", false, false, false);
        self.simple_key_context = false;
        self.analysis = va;
        self.scalar_style = Style::Plain;
        self.write_plain(value.text.as_bytes());
        self.state = State::BlockMappingKey;
        true
    }

    // ---- event processing ----

    fn emit(&mut self, mut ev: Ev) {
        // analyze_event: comments are taken over when present.
        if !ev.head.is_empty() {
            self.head_comment = std::mem::take(&mut ev.head);
        }
        if !ev.foot.is_empty() {
            self.foot_comment = std::mem::take(&mut ev.foot);
        }
        if !ev.tail.is_empty() {
            self.tail_comment = std::mem::take(&mut ev.tail);
        }
        if ev.kind == EvKind::Scalar {
            self.analysis = match ev.analysis {
                Some(a) => a,
                None => analyze_scalar(ev.value),
            };
        }
        self.state_machine(&ev);
    }

    fn state_machine(&mut self, ev: &Ev) {
        match self.state {
            State::StreamStart => {
                self.indent = -1;
                self.column = 0;
                self.whitespace = true;
                self.indention = true;
                self.foot_indent = -1;
                self.state = State::FirstDocumentStart;
            }
            State::FirstDocumentStart => self.emit_document_start(ev, true),
            State::DocumentStart => self.emit_document_start(ev, false),
            State::DocumentContent => {
                self.states.push(State::DocumentEnd);
                self.process_head_comment();
                self.emit_node_ctx(ev, false, true);
                self.process_line_comment();
                self.process_foot_comment();
            }
            State::DocumentEnd => {
                self.foot_indent = 0;
                self.process_foot_comment();
                self.foot_indent = -1;
                self.write_indent();
                self.state = State::DocumentStart;
            }
            State::FlowSequenceFirstItem | State::FlowMappingFirstKey => {
                // Only empty collections are emitted in flow style.
                let (open, close) = if self.state == State::FlowSequenceFirstItem {
                    (b"[", b"]")
                } else {
                    (b"{", b"}")
                };
                self.write_indicator(open, true, true, false);
                self.increase_indent(true, false);
                self.flow_level += 1;
                if self.state == State::FlowMappingFirstKey {
                    self.process_head_comment();
                }
                self.flow_level -= 1;
                self.pop_indent();
                if self.state == State::FlowSequenceFirstItem && self.column == 0 {
                    self.write_indent();
                }
                self.write_indicator(close, false, false, false);
                self.process_line_comment();
                self.process_foot_comment();
                self.pop_state();
            }
            State::BlockSequenceFirstItem | State::BlockSequenceItem => {
                if self.state == State::BlockSequenceFirstItem {
                    self.increase_indent(false, false);
                }
                if ev.kind == EvKind::SeqEnd {
                    self.pop_indent();
                    self.pop_state();
                    return;
                }
                self.process_head_comment();
                self.write_indent();
                self.write_indicator(b"-", true, false, true);
                self.states.push(State::BlockSequenceItem);
                self.emit_node(ev, false);
                self.process_line_comment();
                self.process_foot_comment();
            }
            State::BlockMappingFirstKey | State::BlockMappingKey => {
                if self.state == State::BlockMappingFirstKey {
                    self.increase_indent(false, false);
                }
                self.process_head_comment();
                if ev.kind == EvKind::MapEnd {
                    self.pop_indent();
                    self.pop_state();
                    return;
                }
                self.write_indent();
                if !self.line_comment.is_empty() {
                    self.key_line_comment = std::mem::take(&mut self.line_comment);
                }
                if self.check_simple_key(ev) {
                    self.states.push(State::BlockMappingSimpleValue);
                    self.emit_node(ev, true);
                } else {
                    self.write_indicator(b"?", true, false, true);
                    self.states.push(State::BlockMappingValue);
                    self.emit_node(ev, false);
                }
            }
            State::BlockMappingSimpleValue | State::BlockMappingValue => {
                if self.state == State::BlockMappingSimpleValue {
                    self.write_indicator(b":", false, false, false);
                } else {
                    self.write_indent();
                    self.write_indicator(b":", true, false, true);
                }
                if !self.key_line_comment.is_empty() {
                    if ev.kind == EvKind::Scalar {
                        if self.line_comment.is_empty() {
                            self.line_comment = std::mem::take(&mut self.key_line_comment);
                        }
                    } else if ev.kind == EvKind::MapStart || ev.kind == EvKind::SeqStart {
                        std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                        self.process_line_comment();
                        std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                    }
                }
                self.states.push(State::BlockMappingKey);
                self.emit_node(ev, false);
                self.process_line_comment();
                self.process_foot_comment();
            }
            State::End => {}
        }
    }

    fn emit_document_start(&mut self, ev: &Ev, first: bool) {
        if ev.kind == EvKind::DocStart {
            let implicit = first;
            if !implicit {
                self.write_indent();
                self.write_indicator(b"---", true, false, false);
                self.write_indent();
            }
            if !self.head_comment.is_empty() {
                self.process_head_comment();
                self.put_break();
            }
            self.state = State::DocumentContent;
        } else if ev.kind == EvKind::StreamEnd {
            // go-yaml's encoder clears `open_ended` before STREAM-END, so
            // no "..." is ever written here.
            self.state = State::End;
        }
    }

    fn check_simple_key(&self, ev: &Ev) -> bool {
        match ev.kind {
            EvKind::Scalar => {
                if self.analysis.multiline {
                    return false;
                }
                ev.tag.len() + ev.value.len() <= 128
            }
            EvKind::SeqStart | EvKind::MapStart => ev.empty,
            _ => false,
        }
    }

    fn emit_node(&mut self, ev: &Ev, simple_key: bool) {
        self.emit_node_ctx(ev, simple_key, false)
    }

    fn emit_node_ctx(&mut self, ev: &Ev, simple_key: bool, root: bool) {
        self.simple_key_context = simple_key;
        self.root_context = root;
        match ev.kind {
            EvKind::Scalar => self.emit_scalar(ev),
            EvKind::SeqStart => {
                self.state = if self.flow_level > 0 || ev.empty {
                    State::FlowSequenceFirstItem
                } else {
                    State::BlockSequenceFirstItem
                };
            }
            EvKind::MapStart => {
                self.state = if self.flow_level > 0 || ev.empty {
                    State::FlowMappingFirstKey
                } else {
                    State::BlockMappingFirstKey
                };
            }
            _ => {}
        }
    }

    fn emit_scalar(&mut self, ev: &Ev) {
        let no_tag = ev.tag.is_empty();
        self.scalar_style = select_style(
            ev.style,
            &self.analysis,
            ev.value,
            self.simple_key_context,
            no_tag,
            no_tag,
        );
        if !ev.tag.is_empty() {
            self.write_tag_handle(ev.tag.as_bytes());
        }
        self.increase_indent(true, false);
        let v = ev.value.as_bytes();
        match self.scalar_style {
            Style::Plain => self.write_plain(v),
            Style::Single => self.write_single(v),
            Style::Double => self.write_double(v),
            Style::Literal => self.write_literal(v),
        }
        self.pop_indent();
        self.pop_state();
    }

    fn write_plain(&mut self, v: &[u8]) {
        if !v.is_empty() && !self.whitespace {
            self.put(b' ');
        }
        // `self.analysis` (of this very text) found no line break, as it
        // must for plain style, and the width is unlimited: the character
        // loop would copy the text as is, one column per character.
        if !self.analysis.multiline {
            self.out.extend_from_slice(v);
            let chars = if is_ascii_words(v) {
                v.len()
            } else {
                v.iter().filter(|&&c| c & 0xC0 != 0x80).count()
            };
            self.column += chars as i64;
        } else {
            self.write_plain_text(v);
        }
        if !v.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
        if self.root_context {
            self.open_ended = true;
        }
    }

    /// go-yaml's character loop of `yaml_emitter_write_plain_scalar`.
    fn write_plain_text(&mut self, v: &[u8]) {
        let mut i = 0;
        let mut breaks = false;
        while i < v.len() {
            if is_break(v, i) {
                if !breaks && v[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(v, &mut i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write(v, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
    }

    fn write_single(&mut self, v: &[u8]) {
        self.write_indicator(b"'", true, false, false);
        let mut breaks = false;
        let mut i = 0;
        while i < v.len() {
            if is_break(v, i) {
                if !breaks && v[i] == b'\n' {
                    self.put_break();
                }
                self.write_break(v, &mut i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if v[i] == b'\'' {
                    self.put(b'\'');
                }
                self.write(v, &mut i);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator(b"'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, v: &[u8]) {
        self.write_indicator(b"\"", true, false, false);
        let mut i = 0;
        while i < v.len() {
            let c = v[i];
            if !is_printable(v, i) || is_bom(v, i) || is_break(v, i) || c == b'"' || c == b'\\' {
                let w = width(c).min(v.len() - i);
                let mut cp: u32 = match w {
                    1 => (c & 0x7F) as u32,
                    2 => (c & 0x1F) as u32,
                    3 => (c & 0x0F) as u32,
                    _ => (c & 0x07) as u32,
                };
                for k in 1..w {
                    cp = (cp << 6) + (v[i + k] & 0x3F) as u32;
                }
                i += w;
                self.put(b'\\');
                let esc = match cp {
                    0x00 => Some(b'0'),
                    0x07 => Some(b'a'),
                    0x08 => Some(b'b'),
                    0x09 => Some(b't'),
                    0x0A => Some(b'n'),
                    0x0B => Some(b'v'),
                    0x0C => Some(b'f'),
                    0x0D => Some(b'r'),
                    0x1B => Some(b'e'),
                    0x22 => Some(b'"'),
                    0x5C => Some(b'\\'),
                    0x85 => Some(b'N'),
                    0xA0 => Some(b'_'),
                    0x2028 => Some(b'L'),
                    0x2029 => Some(b'P'),
                    _ => None,
                };
                match esc {
                    Some(e) => self.put(e),
                    None => {
                        let (letter, digits) = if cp <= 0xFF {
                            (b'x', 2)
                        } else if cp <= 0xFFFF {
                            (b'u', 4)
                        } else {
                            (b'U', 8)
                        };
                        self.put(letter);
                        for k in (0..digits).rev() {
                            let d = ((cp >> (k * 4)) & 0x0F) as u8;
                            self.put(if d < 10 { b'0' + d } else { b'A' + d - 10 });
                        }
                    }
                }
            } else {
                // Copy a run of characters that need no escaping.
                let st = i;
                while i < v.len() {
                    let c = v[i];
                    if c < 0x80 {
                        if !(0x20..=0x7E).contains(&c) || c == b'"' || c == b'\\' || is_bom(v, i) {
                            break;
                        }
                        i += 1;
                    } else {
                        if !is_printable(v, i) || is_bom(v, i) || is_break(v, i) {
                            break;
                        }
                        i += width(c).min(v.len() - i);
                    }
                    self.column += 1;
                }
                self.out.extend_from_slice(&v[st..i]);
            }
        }
        self.write_indicator(b"\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_block_scalar_hints(&mut self, v: &[u8]) {
        if at(v, 0) == b' ' || is_break(v, 0) {
            let hint = [b'0' + self.best_indent as u8];
            self.write_indicator(&hint, false, false, false);
        }
        self.open_ended = false;
        let mut chomp: Option<u8> = None;
        if v.is_empty() {
            chomp = Some(b'-');
        } else {
            let mut i = v.len() - 1;
            while i > 0 && v[i] & 0xC0 == 0x80 {
                i -= 1;
            }
            if !is_break(v, i) {
                chomp = Some(b'-');
            } else if i == 0 {
                chomp = Some(b'+');
                self.open_ended = true;
            } else {
                i -= 1;
                while i > 0 && v[i] & 0xC0 == 0x80 {
                    i -= 1;
                }
                if is_break(v, i) {
                    chomp = Some(b'+');
                    self.open_ended = true;
                }
            }
        }
        if let Some(c) = chomp {
            self.write_indicator(&[c], false, false, false);
        }
    }

    fn write_literal(&mut self, v: &[u8]) {
        self.write_indicator(b"|", true, false, false);
        self.write_block_scalar_hints(v);
        // go-yaml v3.0.1+ (issue #755): the header line always ends here.
        if self.line_comment.is_empty() {
            self.put_break();
        } else {
            self.process_line_comment();
        }
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < v.len() {
            if is_break(v, i) {
                self.write_break(v, &mut i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                // Copy the rest of the line at once.
                let st = i;
                while i < v.len() && !is_break(v, i) {
                    i += width(v[i]);
                    self.column += 1;
                }
                let end = i.min(v.len());
                self.out.extend_from_slice(&v[st..end]);
                i = end;
                self.indention = false;
                breaks = false;
            }
        }
    }
}

// -------------------------------------------------------------------------
// Tree → events (sops `appendTreeBranch` / `appendSequence`, go-yaml
// `encoder.node`).

struct Gen<'e, 's> {
    em: &'e mut Emitter,
    /// Where full output chunks go while emitting (streaming), if anywhere.
    sink: Option<&'s mut dyn std::io::Write>,
    /// The first write error; later output is dropped.
    error: Option<std::io::Error>,
}

/// Output is handed to the sink in chunks of about this size.
const FLUSH_AT: usize = 64 * 1024;

impl<'e, 's> Gen<'e, 's> {
    fn new(em: &'e mut Emitter) -> Gen<'e, 's> {
        Gen {
            em,
            sink: None,
            error: None,
        }
    }

    /// Pass the output so far to the sink once it is large.
    fn flush_if_full(&mut self) {
        if self.em.out.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.error.is_none() {
            if let Err(e) = sink.write_all(&self.em.out) {
                self.error = Some(e);
            }
        }
        // The buffer may hold plaintext (decrypt): wipe what was written.
        let out = &mut self.em.out;
        out.fill(0);
        std::hint::black_box(out.as_ptr());
        out.clear();
    }

    fn scalar<'v>(&mut self, r: &'v ScalarRepr<'v>, head: String, foot: String, tail: String) {
        let mut ev = Ev::new(EvKind::Scalar);
        ev.value = &r.text;
        ev.tag = r.tag;
        ev.style = r.style;
        ev.analysis = r.analysis;
        ev.head = head;
        ev.foot = foot;
        ev.tail = tail;
        self.em.emit(ev);
    }

    /// A value node (mapping value or sequence item) with its head comment
    /// and (for the last item of a sequence) its foot comment.
    fn value(&mut self, v: &Value, head: String, foot: String) {
        match v {
            Value::Map(b) => self.mapping(b, head, foot),
            Value::List(l) => self.sequence(l, head, foot),
            other => {
                if let Some(r) = scalar_repr(other) {
                    self.scalar(&r, head, foot, String::new());
                }
            }
        }
    }

    fn mapping(&mut self, b: &Branch, head: String, foot: String) {
        self.mapping_items(&b.0, head, foot);
    }

    fn mapping_items(&mut self, items: &[Item], head: String, foot: String) {
        // Comments before the first key go to the mapping, others to the
        // next key; trailing ones become the foot of the last key.
        let mut pending: Vec<&str> = Vec::new();
        let mut mhead = head;
        let mut keys: Vec<(&Item, String)> = Vec::with_capacity(items.len());
        let mut beginning = true;
        for it in items {
            if let Key::Comment(c) = &it.key {
                pending.push(c);
                continue;
            }
            let mut khead = String::new();
            if !pending.is_empty() {
                let c = join_comments(&pending);
                pending.clear();
                if beginning {
                    mhead = if mhead.is_empty() { c } else { format!("{c}\n{mhead}") };
                } else {
                    khead = c;
                }
            }
            beginning = false;
            keys.push((it, khead));
        }
        let mut last_foot = String::new();
        if !pending.is_empty() {
            let c = join_comments(&pending);
            if keys.is_empty() {
                mhead = if mhead.is_empty() { c } else { format!("{c}\n{mhead}") };
            } else {
                last_foot = c;
            }
        }
        let mut ev = Ev::new(EvKind::MapStart);
        ev.empty = keys.is_empty();
        ev.head = mhead;
        self.em.emit(ev);
        let mut tail = String::new();
        let n = keys.len();
        for (idx, (it, khead)) in keys.into_iter().enumerate() {
            let kr = key_repr(&it.key);
            if idx + 1 == n {
                tail = std::mem::take(&mut last_foot);
            }
            if khead.is_empty() {
                if let Some(vr) = scalar_repr(&it.value) {
                    if !self.em.plain_pair(&kr, &vr) {
                        self.scalar(&kr, khead, String::new(), String::new());
                        self.scalar(&vr, String::new(), String::new(), String::new());
                    }
                    self.flush_if_full();
                    continue;
                }
            }
            self.scalar(&kr, khead, String::new(), String::new());
            self.value(&it.value, String::new(), String::new());
            self.flush_if_full();
        }
        let mut end = Ev::new(EvKind::MapEnd);
        end.tail = tail;
        end.foot = foot;
        self.em.emit(end);
    }

    fn sequence(&mut self, l: &[Value], head: String, foot: String) {
        let mut pending: Vec<&str> = Vec::new();
        let mut shead = head;
        let mut elems: Vec<(&Value, String)> = Vec::with_capacity(l.len());
        let mut beginning = true;
        for v in l {
            if let Value::Comment(c) = v {
                pending.push(c);
                continue;
            }
            let mut ehead = String::new();
            if !pending.is_empty() {
                let c = join_comments(&pending);
                pending.clear();
                if beginning {
                    shead = if shead.is_empty() { c } else { format!("{c}\n{shead}") };
                } else {
                    ehead = c;
                }
            }
            beginning = false;
            elems.push((v, ehead));
        }
        let mut last_foot = String::new();
        if !pending.is_empty() {
            let c = join_comments(&pending);
            if elems.is_empty() {
                shead = if shead.is_empty() { c } else { format!("{c}\n{shead}") };
            } else {
                last_foot = c;
            }
        }
        let mut ev = Ev::new(EvKind::SeqStart);
        ev.empty = elems.is_empty();
        ev.head = shead;
        self.em.emit(ev);
        let n = elems.len();
        for (idx, (v, ehead)) in elems.into_iter().enumerate() {
            let f = if idx + 1 == n {
                std::mem::take(&mut last_foot)
            } else {
                String::new()
            };
            self.value(v, ehead, f);
            self.flush_if_full();
        }
        let mut end = Ev::new(EvKind::SeqEnd);
        end.foot = foot;
        self.em.emit(end);
    }
}

impl Emitter {
    fn stream_start(&mut self) {
        self.emit(Ev::new(EvKind::StreamStart));
    }

    /// Emit one document whose root is `root`.
    fn document(&mut self, root: &Value) {
        self.emit(Ev::new(EvKind::DocStart));
        let mut g = Gen::new(self);
        g.value(root, String::new(), String::new());
        self.emit(Ev::new(EvKind::DocEnd));
    }

    fn stream_end(&mut self) {
        self.emit(Ev::new(EvKind::StreamEnd));
    }
}

/// A whole YAML file: one document per branch.
pub fn emit_documents(branches: &[Branch], indent: usize) -> Vec<u8> {
    let mut em = Emitter::new(indent);
    em.stream_start();
    for b in branches {
        // The Value wrapper only borrows through; clone-free via a view.
        em.document_branch(b);
    }
    em.stream_end();
    em.finish()
}

/// One value as its own document (sops `EmitValue` uses `yaml.Marshal`).
pub fn emit_single_value(v: &Value, indent: usize) -> Vec<u8> {
    let mut em = Emitter::new(indent);
    em.stream_start();
    em.document(v);
    em.stream_end();
    em.finish()
}

impl Emitter {
    fn document_branch(&mut self, b: &Branch) {
        self.emit(Ev::new(EvKind::DocStart));
        let mut g = Gen::new(self);
        g.mapping(b, String::new(), String::new());
        self.emit(Ev::new(EvKind::DocEnd));
    }
}

/// One document whose top-level mapping arrives in batches of items (a large
/// file processed in pieces, see `pipeline`). The bytes are those
/// [`emit_documents`] prints for the one branch of all items concatenated:
/// the same events in the same order, as [`Gen::mapping_items`] makes them.
pub struct DocumentStream {
    em: Emitter,
    /// Comments not yet attached: to the next key's head, or to the
    /// mapping's head before the first key, or the last key's foot at the end.
    pending: Vec<String>,
    started: bool,
}

impl DocumentStream {
    pub fn new(indent: usize) -> DocumentStream {
        let mut em = Emitter::new(indent);
        em.stream_start();
        em.emit(Ev::new(EvKind::DocStart));
        DocumentStream {
            em,
            pending: Vec::new(),
            started: false,
        }
    }

    fn take_comments(&mut self) -> String {
        let lines: Vec<&str> = self.pending.iter().map(String::as_str).collect();
        let joined = join_comments(&lines);
        self.pending.clear();
        joined
    }

    /// The next top-level items, in document order.
    pub fn push(&mut self, items: &[Item]) {
        for it in items {
            if let Key::Comment(c) = &it.key {
                self.pending.push(c.clone());
                continue;
            }
            let mut khead = String::new();
            if !self.started {
                let mut ev = Ev::new(EvKind::MapStart);
                ev.head = self.take_comments();
                self.em.emit(ev);
                self.started = true;
            } else if !self.pending.is_empty() {
                khead = self.take_comments();
            }
            let mut g = Gen::new(&mut self.em);
            let kr = key_repr(&it.key);
            g.scalar(&kr, khead, String::new(), String::new());
            g.value(&it.value, String::new(), String::new());
        }
    }

    /// The output printed so far (callers may drain it).
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.em.out
    }

    /// End the mapping, the document and the stream; the rest of the output.
    pub fn finish(mut self) -> Vec<u8> {
        let rest = self.take_comments();
        let mut end = Ev::new(EvKind::MapEnd);
        if self.started {
            end.tail = rest;
        } else {
            let mut ev = Ev::new(EvKind::MapStart);
            ev.empty = true;
            ev.head = rest;
            self.em.emit(ev);
        }
        self.em.emit(end);
        self.em.emit(Ev::new(EvKind::DocEnd));
        self.em.stream_end();
        self.em.finish()
    }
}

/// Below this many bytes of scalars a file is emitted on one thread.
const PIECES_MIN_BYTES: usize = 256 * 1024;
const MAX_PIECES: usize = 8;

/// [`emit_documents`] into a writer, in 64 KiB chunks. A large single
/// document is emitted in pieces of top-level keys on several threads (see
/// [`piece_cuts`]); the first piece streams, the others are buffered.
pub fn emit_documents_to(branches: &[Branch], indent: usize, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    if let [only] = branches {
        let threads = crate::cpus::available().min(MAX_PIECES);
        if threads > 1 && scalar_bytes(&only.0, PIECES_MIN_BYTES) >= PIECES_MIN_BYTES {
            let cuts = piece_cuts(&only.0, threads);
            if !cuts.is_empty() {
                return emit_pieces(&only.0, &cuts, indent, out);
            }
        }
    }
    let mut em = Emitter::new(indent);
    em.stream_start();
    let mut error = None;
    for b in branches {
        em.emit(Ev::new(EvKind::DocStart));
        let mut g = Gen::new(&mut em);
        g.sink = Some(&mut *out);
        g.mapping(b, String::new(), String::new());
        g.flush();
        error = error.or(g.error.take());
        em.emit(Ev::new(EvKind::DocEnd));
    }
    em.stream_end();
    finish_into(em, error, out)
}

/// Write what is left in the emitter, wipe its buffer, report the first error.
fn finish_into(em: Emitter, error: Option<std::io::Error>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut rest = em.finish();
    let result = match error {
        Some(e) => Err(e),
        None => out.write_all(&rest),
    };
    crate::tree::wipe_vec(&mut rest);
    result
}

/// Top-level items `items[..]` as one document; the caller concatenates.
fn emit_piece(
    items: &[Item],
    indent: usize,
    sink: Option<&mut dyn std::io::Write>,
) -> (Emitter, Option<std::io::Error>) {
    let mut em = Emitter::new(indent);
    em.stream_start();
    em.emit(Ev::new(EvKind::DocStart));
    let mut g = Gen::new(&mut em);
    g.sink = sink;
    g.mapping_items(items, String::new(), String::new());
    g.flush();
    let error = g.error.take();
    em.emit(Ev::new(EvKind::DocEnd));
    em.stream_end();
    (em, error)
}

fn emit_pieces(items: &[Item], cuts: &[usize], indent: usize, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(items.len());
    let ranges: Vec<std::ops::Range<usize>> = bounds.windows(2).map(|w| w[0]..w[1]).collect();
    std::thread::scope(|s| {
        // A thread that cannot be started leaves its piece to this one.
        let handles: Vec<_> = ranges[1..]
            .iter()
            .map(|r| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || emit_piece(&items[r.clone()], indent, None).0.finish())
                    .map_err(|_| r.clone())
            })
            .collect();
        let (em, error) = emit_piece(&items[ranges[0].clone()], indent, Some(&mut *out));
        let mut result = finish_into(em, error, out);
        for h in handles {
            let mut piece = match h {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(r) => emit_piece(&items[r], indent, None).0.finish(),
            };
            if result.is_ok() {
                result = out.write_all(&piece);
            }
            crate::tree::wipe_vec(&mut piece);
        }
        result
    })
}

/// Total length of the scalars under `items`, counted up to `limit`.
fn scalar_bytes(items: &[Item], limit: usize) -> usize {
    fn value(v: &Value, n: &mut usize, limit: usize) {
        if *n >= limit {
            return;
        }
        match v {
            Value::Map(b) => b.0.iter().for_each(|i| value(&i.value, n, limit)),
            Value::List(l) => l.iter().for_each(|v| value(v, n, limit)),
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => *n += s.len() + 8,
            Value::Bytes(b) => *n += b.len() + 8,
            _ => *n += 8,
        }
    }
    let mut n = 0;
    items.iter().for_each(|i| value(&i.value, &mut n, limit));
    n
}

/// Whether the emitter's state between `items[at - 1]` and `items[at]` is
/// the fresh state of a new document's first key: both are plain keys and
/// the earlier value holds no comment (foot comments carry indentation
/// state to the next key) and no multi-line string (block scalars may
/// leave the document open-ended). The output of a piece then ends with
/// exactly the line break the whole emission writes there.
fn is_piece_boundary(items: &[Item], at: usize) -> bool {
    fn plain(v: &Value) -> bool {
        match v {
            Value::Map(b) => b.0.iter().all(|i| !i.key.is_comment() && plain(&i.value)),
            Value::List(l) => l.iter().all(plain),
            Value::Comment(_) => false,
            Value::Str(s) => !s.contains(['\n', '\r']),
            Value::Bytes(_) => false,
            _ => true,
        }
    }
    // The next key may have comments above it (they are its head comment
    // either way). Capped, so that trying every item of a long comment run
    // stays linear.
    let next_key = items
        .get(at..)
        .and_then(|rest| rest.iter().take(64).find(|i| !i.key.is_comment()));
    at > 0
        && matches!(items[at - 1].key, Key::Str(_))
        && matches!(next_key.map(|i| &i.key), Some(Key::Str(_)))
        && plain(&items[at - 1].value)
}

/// Up to `pieces - 1` boundaries near equal item counts.
fn piece_cuts(items: &[Item], pieces: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let step = items.len() / pieces.max(1);
    if step == 0 {
        return cuts;
    }
    let mut from = 1;
    for k in 1..pieces {
        if let Some(c) = (from.max(k * step)..items.len()).find(|&at| is_piece_boundary(items, at)) {
            cuts.push(c);
            from = c + 1;
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    thread_local! {
        /// Set by a test to take `Emitter::plain_pair` out.
        pub(super) static NO_PLAIN_PAIRS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    const TEXTS: &[&str] = &[
        "a",
        "key_1",
        "b c",
        "ENC[AES256_GCM,data:x+/==,iv:y,tag:z,type:str]",
        "",
        " lead",
        "trail ",
        "true",
        "123",
        "1.5",
        "null",
        "~",
        "a: b",
        "a:",
        "#x",
        "a #x",
        "- x",
        "-x",
        "caf\u{e9}",
        "line\nbreak",
        "tab\t",
        "'q'",
        "\"dq\"",
        "<<",
        "---",
        "2001-12-14",
        "0x1F",
        "yes",
        "[a]",
        "a,b",
        "k123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\
         0123456789012345678901234567890",
    ];

    fn random_value(rng: &mut Rng, depth: usize) -> Value {
        match rng.below(if depth < 3 { 13 } else { 9 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 0),
            2 => Value::Int(rng.next() as i64 >> rng.below(64)),
            3 => Value::Float([0.5, -0.0, 1e300, f64::INFINITY, 12.0, 1e-7][rng.below(6)]),
            4..=7 => Value::Str(TEXTS[rng.below(TEXTS.len())].to_string()),
            8 => Value::Time("2001-12-14T21:59:43.1-05:00".to_string()),
            9 | 10 => Value::Map(random_branch(rng, depth + 1)),
            _ => Value::List(
                (0..rng.below(4))
                    .map(|_| {
                        if rng.below(6) == 0 {
                            Value::Comment(" c".to_string())
                        } else {
                            random_value(rng, depth + 1)
                        }
                    })
                    .collect(),
            ),
        }
    }

    fn random_branch(rng: &mut Rng, depth: usize) -> Branch {
        let mut items = Vec::new();
        for i in 0..rng.below(5) {
            if rng.below(6) == 0 {
                items.push(Item::comment(TEXTS[rng.below(TEXTS.len())]));
                continue;
            }
            let key = match rng.below(8) {
                0 => Key::NonString {
                    type_name: "int",
                    text: "12".to_string(),
                },
                1 => Key::NonString {
                    type_name: "bool",
                    text: "true".to_string(),
                },
                2 | 3 => Key::Str(TEXTS[rng.below(TEXTS.len())].to_string()),
                _ => Key::Str(format!("k{i}")),
            };
            items.push(Item {
                key,
                value: random_value(rng, depth),
            });
        }
        Branch(items)
    }

    /// Output with and without `Emitter::plain_pair`.
    fn both_ways(emit: impl Fn() -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        let fast = emit();
        NO_PLAIN_PAIRS.with(|c| c.set(true));
        let slow = emit();
        NO_PLAIN_PAIRS.with(|c| c.set(false));
        (fast, slow)
    }

    #[test]
    fn plain_pairs_match_the_event_path() {
        let mut rng = Rng(0xFA57_BA15);
        let mut differing_from_none = 0;
        for round in 0..20_000 {
            let branch = random_branch(&mut rng, 0);
            let indent = [2, 4][round % 2];
            let (fast, slow) = both_ways(|| emit_documents(std::slice::from_ref(&branch), indent));
            assert!(
                fast == slow,
                "plain pairs changed the output:\n{}\n---\n{}",
                String::from_utf8_lossy(&slow),
                String::from_utf8_lossy(&fast)
            );
            let (fast, slow) = both_ways(|| {
                let mut d = DocumentStream::new(indent);
                d.push(&branch.0);
                d.finish()
            });
            assert!(
                fast == slow,
                "plain pairs changed the streamed output:\n{}",
                String::from_utf8_lossy(&slow)
            );
            differing_from_none += usize::from(slow.windows(2).any(|w| w == b": "));
        }
        assert!(
            differing_from_none > 5_000,
            "too few pairs generated: {differing_from_none}"
        );
    }

    #[test]
    fn class_bits_match_the_table() {
        let mut rng = crate::testutil::Rng(0x5EED);
        let special = b"\x00\x09\x0a\x1f\x20\x21\x22#,:?[]{}\x5c\x5a\x5e\x7a\x7c\x7e\x7f\x80\xc2\xff";
        for round in 0..20_000 {
            let len = rng.below(if round % 2 == 0 { 40 } else { 300 });
            let v: Vec<u8> = (0..len)
                .map(|_| match rng.below(10) {
                    0..=6 => b'A' + rng.below(26) as u8,
                    _ => special[rng.below(special.len())],
                })
                .collect();
            let slow = v.iter().fold(0, |acc, &c| acc | ASCII_CLASS[usize::from(c)]);
            assert_eq!(class_bits(&v), slow, "{v:?}");
        }
    }

    /// Emission in pieces (every allowed boundary, alone and all together)
    /// and streaming give the bytes of the one-buffer emission.
    fn check_pieces(branches: &[Branch], indent: usize) -> usize {
        let whole = emit_documents(branches, indent);
        let mut streamed = Vec::new();
        emit_documents_to(branches, indent, &mut streamed).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&streamed),
            String::from_utf8_lossy(&whole),
            "streaming"
        );
        let [only] = branches else { return 0 };
        let items = &only.0;
        let all: Vec<usize> = (1..items.len()).filter(|&at| is_piece_boundary(items, at)).collect();
        // Every boundary alone (at most 40, evenly spread), then all at once.
        let step = all.len().div_ceil(40).max(1);
        let mut attempts: Vec<Vec<usize>> = all.iter().step_by(step).map(|&c| vec![c]).collect();
        attempts.push(all.clone());
        for cuts in &attempts {
            if cuts.is_empty() {
                continue;
            }
            let mut out = Vec::new();
            emit_pieces(items, cuts, indent, &mut out).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&whole),
                "pieces cut at {cuts:?}"
            );
        }
        all.len()
    }

    #[test]
    fn pieces_and_streaming_match_whole_emission() {
        let mut cut_count = 0;
        let mut files = 0;
        for (_, data) in crate::testutil::corpus_files("yaml") {
            let Ok(branches) =
                <super::super::YamlStore as crate::stores::Store>::load(&super::super::YamlStore::default(), &data)
            else {
                continue;
            };
            files += 1;
            for indent in [2, 4] {
                cut_count += check_pieces(&branches, indent);
            }
        }
        assert!(files > 30, "only {files} corpus files");
        assert!(cut_count > 50, "only {cut_count} boundaries were tried");
        // Large values and many keys: streaming flushes mid-document.
        let mut big = Branch::new();
        for i in 0..3000 {
            big.push(format!("k{i}"), Value::Str("v".repeat(i % 97)));
            if i % 10 == 0 {
                big.0.push(Item::comment(format!(" c{i}")));
            }
            if i % 13 == 0 {
                big.push(format!("m{i}"), Value::Str(format!("line\nbreak {i}\n")));
            }
        }
        assert!(check_pieces(&[big], 4) > 100);
    }

    #[test]
    fn plain_fast_path_matches_char_loop() {
        // Texts with and without breaks, ASCII and not (including the lead
        // bytes of NEL and LS/PS without the rest, and 4-byte characters).
        const PIECES: &[&str] = &[
            "a",
            "Z",
            " ",
            ":",
            "#",
            "-",
            "\t",
            "\n",
            "\r",
            "é",
            "\u{85}",
            "\u{2028}",
            "\u{2029}",
            "\u{2030}",
            "\u{a0}",
            "😀",
            "ENC[AES256_GCM,data:",
            "xyz123",
        ];
        let mut rng = crate::testutil::Rng(0x2545_F491_4F6C_DD1D);
        for round in 0..50_000 {
            let r = rng.next();
            let len = (r % 6) as usize;
            let s: String = (0..len)
                .map(|k| PIECES[((r >> (8 + 5 * k)) % PIECES.len() as u64) as usize])
                .collect();
            let mut fast = Emitter::new(4);
            let mut slow = Emitter::new(4);
            fast.analysis = analyze_scalar(&s);
            for e in [&mut fast, &mut slow] {
                e.indent = 4;
                e.column = (round % 7) as i64;
                e.whitespace = round % 2 == 0;
                e.root_context = round % 3 == 0;
            }
            fast.write_plain(s.as_bytes());
            // The same writer with the fast path taken out.
            if !s.is_empty() && !slow.whitespace {
                slow.put(b' ');
            }
            slow.write_plain_text(s.as_bytes());
            if !s.is_empty() {
                slow.whitespace = false;
            }
            slow.indention = false;
            if slow.root_context {
                slow.open_ended = true;
            }
            let state = |e: &Emitter| (e.out.clone(), e.column, e.whitespace, e.indention, e.open_ended);
            assert_eq!(state(&fast), state(&slow), "{s:?}");
        }
    }

    #[test]
    fn ascii_words_matches_std() {
        for len in 0..40 {
            let mut v = vec![b'a'; len];
            assert!(is_ascii_words(&v));
            for pos in 0..len {
                for b in [0x7F, 0x80, 0xC3, 0xFF] {
                    v[pos] = b;
                    assert_eq!(is_ascii_words(&v), v.is_ascii(), "{b:#x} at {pos} of {len}");
                    v[pos] = b'a';
                }
            }
        }
    }

    #[test]
    fn ascii_analysis_matches_full() {
        const ALPHABET: &[u8] = b" ab:#-?,[]{}&*!|>'\"%@`.~=";
        let mut rng = crate::testutil::Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..200_000 {
            let r = rng.next();
            let len = (r % 7) as usize;
            let s: String = (0..len)
                .map(|k| ALPHABET[((r >> (8 + 6 * k)) % ALPHABET.len() as u64) as usize] as char)
                .collect();
            if let Some(a) = analyze_ascii(s.as_bytes()) {
                assert_eq!(a, analyze_scalar_full(&s), "{s:?}");
            }
        }
        for s in [
            "---",
            "--- x",
            "...",
            "- ",
            "-",
            "-x",
            ": ",
            ":",
            "a:b",
            "a: b",
            "a #b",
            "a#b",
            " a",
            "a ",
            "a:",
            "::",
            "a:b:",
            "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]",
            "a: b:",
            "#a:",
        ] {
            assert_eq!(analyze_ascii(s.as_bytes()), Some(analyze_scalar_full(s)), "{s:?}");
        }
    }
}
