//! Tokenizer: a port of go-yaml v3's `scannerc.go`, including its comment
//! bookkeeping (head/line/foot association happens here and in the parser),
//! because sops' tree shape depends on exactly where go-yaml puts comments.
//!
//! The input is validated UTF-8 without a leading BOM (see `reader`); every
//! read past the end yields 0, which the scanner treats as end of stream, so
//! indexing can never panic.

use super::FxBuild;
use crate::swar;
use std::collections::{HashMap, VecDeque};

/// A position. `index` counts characters (as go-yaml does), `line` and
/// `column` are 0-based. Signed because go-yaml decrements them in places.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub index: i64,
    pub line: i64,
    pub column: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokType {
    None,
    StreamStart,
    StreamEnd,
    VersionDirective,
    TagDirective,
    DocumentStart,
    DocumentEnd,
    BlockSequenceStart,
    BlockMappingStart,
    BlockEnd,
    FlowSequenceStart,
    FlowSequenceEnd,
    FlowMappingStart,
    FlowMappingEnd,
    BlockEntry,
    FlowEntry,
    Key,
    Value,
    Alias,
    Anchor,
    Tag,
    Scalar,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub typ: TokType,
    pub start: Mark,
    pub end: Mark,
    /// Scalar text, anchor/alias name, tag handle, or %TAG handle.
    pub value: Vec<u8>,
    /// Tag suffix or %TAG prefix.
    pub suffix: Vec<u8>,
    pub style: ScalarStyle,
    pub major: i8,
    pub minor: i8,
}

impl Token {
    fn new(typ: TokType, start: Mark, end: Mark) -> Token {
        Token {
            typ,
            start,
            end,
            value: Vec::new(),
            suffix: Vec::new(),
            style: ScalarStyle::Plain,
            major: 0,
            minor: 0,
        }
    }
}

#[derive(Clone, Copy, Default)]
struct SimpleKey {
    possible: bool,
    required: bool,
    token_number: usize,
    mark: Mark,
}

#[derive(Clone, Default, Debug)]
pub struct Comment {
    pub scan_mark: Mark,
    pub token_mark: Mark,
    pub start_mark: Mark,
    pub end_mark: Mark,
    pub head: Vec<u8>,
    pub line: Vec<u8>,
    pub foot: Vec<u8>,
}

/// A scanner or parser error in go-yaml's terms; formatted by `fail`.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    pub scanner: bool,
    pub context_mark: Mark,
    pub problem: String,
    pub problem_mark: Mark,
}

const MAX_FLOW_LEVEL: i64 = 10000;
const MAX_INDENTS: usize = 10000;

pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    pub mark: Mark,
    newlines: i64,

    /// Unconsumed tokens (go-yaml's `tokens[tokens_head:]`).
    pub tokens: VecDeque<Token>,
    /// The two most recently consumed tokens (type, start mark), newest first:
    /// go-yaml's comment logic looks at `tokens[len-1]` / `tokens[len-2]`,
    /// which may already have been consumed.
    consumed: [Option<(TokType, Mark)>; 2],
    pub tokens_parsed: usize,
    pub token_available: bool,
    stream_start_produced: bool,
    pub stream_end_produced: bool,

    flow_level: i64,
    indent: i64,
    indents: Vec<i64>,
    simple_key_allowed: bool,
    simple_keys: Vec<SimpleKey>,
    simple_keys_by_tok: HashMap<usize, usize, FxBuild>,
    /// Map size that triggers dropping its stale entries (see `save_simple_key`).
    simple_keys_prune_at: usize,

    pub comments: Vec<Comment>,
    pub comments_head: usize,

    pub error: Option<SyntaxError>,
    plain_scratch: PlainScratch,
}

/// The joining buffers of [`Scanner::scan_plain_scalar`] (go-yaml's
/// `leading_break`, `trailing_breaks`, `whitespaces`).
#[derive(Default)]
struct PlainScratch {
    leading_break: Vec<u8>,
    trailing_breaks: Vec<u8>,
    whitespaces: Vec<u8>,
}

type R = Result<(), ()>;

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
        // Cannot happen on validated input; advance anyway so loops end.
        1
    }
}

/// Bytes that never end a plain-scalar run (printable ASCII other than
/// blanks, `:` and the flow indicators): scanned in a tight loop.
const PLAIN_RUN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0x21;
    while c <= 0x7E {
        t[c] = !matches!(c as u8, b':' | b',' | b'?' | b'[' | b']' | b'{' | b'}');
        c += 1;
    }
    t
};

/// A line break at `buf[p]` (0 past the end is not one).
#[inline]
fn break_at(buf: &[u8], p: usize) -> bool {
    let at = |k: usize| buf.get(p + k).copied().unwrap_or(0);
    match at(0) {
        b'\r' | b'\n' => true,
        0xC2 => at(1) == 0x85,
        0xE2 => at(1) == 0x80 && (at(2) == 0xA8 || at(2) == 0xA9),
        _ => false,
    }
}

/// Blank, break or end of input at `buf[p]`.
#[inline]
fn blankz_at(buf: &[u8], p: usize) -> bool {
    match buf.get(p) {
        None | Some(0) | Some(b' ') | Some(b'\t') => true,
        _ => break_at(buf, p),
    }
}

impl<'a> Scanner<'a> {
    pub fn new(buf: &'a [u8]) -> Scanner<'a> {
        Scanner {
            buf,
            pos: 0,
            mark: Mark::default(),
            newlines: 0,
            tokens: VecDeque::new(),
            consumed: [None, None],
            tokens_parsed: 0,
            token_available: false,
            stream_start_produced: false,
            stream_end_produced: false,
            flow_level: 0,
            indent: 0,
            indents: Vec::new(),
            simple_key_allowed: false,
            simple_keys: Vec::new(),
            simple_keys_by_tok: HashMap::default(),
            simple_keys_prune_at: 64,
            comments: Vec::new(),
            comments_head: 0,
            error: None,
            plain_scratch: PlainScratch::default(),
        }
    }

    // ---- character classes at byte offset `self.pos + k` (0 past the end) ----

    #[inline]
    fn at(&self, k: usize) -> u8 {
        match self.buf.get(self.pos + k) {
            Some(&b) => b,
            None => 0,
        }
    }
    #[inline]
    fn is_blank(&self, k: usize) -> bool {
        let b = self.at(k);
        b == b' ' || b == b'\t'
    }
    #[inline]
    fn is_space(&self, k: usize) -> bool {
        self.at(k) == b' '
    }
    #[inline]
    fn is_tab(&self, k: usize) -> bool {
        self.at(k) == b'\t'
    }
    #[inline]
    fn is_z(&self, k: usize) -> bool {
        self.at(k) == 0
    }
    #[inline]
    fn is_break(&self, k: usize) -> bool {
        match self.at(k) {
            b'\r' | b'\n' => true,
            0xC2 => self.at(k + 1) == 0x85,
            0xE2 => self.at(k + 1) == 0x80 && (self.at(k + 2) == 0xA8 || self.at(k + 2) == 0xA9),
            _ => false,
        }
    }
    #[inline]
    fn is_crlf(&self, k: usize) -> bool {
        self.at(k) == b'\r' && self.at(k + 1) == b'\n'
    }
    #[inline]
    fn is_breakz(&self, k: usize) -> bool {
        self.is_break(k) || self.is_z(k)
    }
    #[inline]
    fn is_blankz(&self, k: usize) -> bool {
        self.is_blank(k) || self.is_breakz(k)
    }
    #[inline]
    fn is_alpha(&self, k: usize) -> bool {
        let b = self.at(k);
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
    }
    #[inline]
    fn is_digit(&self, k: usize) -> bool {
        self.at(k).is_ascii_digit()
    }
    #[inline]
    fn is_hex(&self, k: usize) -> bool {
        self.at(k).is_ascii_hexdigit()
    }
    fn as_hex(&self, k: usize) -> u32 {
        let b = self.at(k);
        match b {
            b'0'..=b'9' => (b - b'0') as u32,
            b'a'..=b'f' => (b - b'a' + 10) as u32,
            b'A'..=b'F' => (b - b'A' + 10) as u32,
            _ => 0,
        }
    }
    #[inline]
    fn is_bom(&self, k: usize) -> bool {
        self.at(k) == 0xEF && self.at(k + 1) == 0xBB && self.at(k + 2) == 0xBF
    }

    // ---- cursor movement ----

    #[inline]
    fn skip(&mut self) {
        if !self.is_blank(0) {
            self.newlines = 0;
        }
        self.mark.index += 1;
        self.mark.column += 1;
        self.pos += width(self.at(0));
    }

    fn skip_line(&mut self) {
        if self.is_crlf(0) {
            self.mark.index += 2;
            self.mark.column = 0;
            self.mark.line += 1;
            self.pos += 2;
            self.newlines += 1;
        } else if self.is_break(0) {
            self.mark.index += 1;
            self.mark.column = 0;
            self.mark.line += 1;
            self.pos += width(self.at(0));
            self.newlines += 1;
        }
    }

    #[inline]
    fn read(&mut self, s: &mut Vec<u8>) {
        if !self.is_blank(0) {
            self.newlines = 0;
        }
        let w = width(self.at(0));
        let end = (self.pos + w).min(self.buf.len());
        if self.pos < end {
            s.extend_from_slice(&self.buf[self.pos..end]);
        }
        self.pos += w;
        self.mark.index += 1;
        self.mark.column += 1;
    }

    fn read_line(&mut self, s: &mut Vec<u8>) {
        let (a, b, c) = (self.at(0), self.at(1), self.at(2));
        if a == b'\r' && b == b'\n' {
            s.push(b'\n');
            self.pos += 2;
            self.mark.index += 1;
        } else if a == b'\r' || a == b'\n' {
            s.push(b'\n');
            self.pos += 1;
        } else if a == 0xC2 && b == 0x85 {
            s.push(b'\n');
            self.pos += 2;
        } else if a == 0xE2 && b == 0x80 && (c == 0xA8 || c == 0xA9) {
            s.extend_from_slice(&[a, b, c]);
            self.pos += 3;
        } else {
            return;
        }
        self.mark.index += 1;
        self.mark.column = 0;
        self.mark.line += 1;
        self.newlines += 1;
    }

    // ---- errors ----

    fn set_scanner_error(&mut self, context_mark: Mark, problem: &str) -> R {
        self.error = Some(SyntaxError {
            scanner: true,
            context_mark,
            problem: problem.to_string(),
            problem_mark: self.mark,
        });
        Err(())
    }

    // ---- token queue helpers ----

    fn insert_token(&mut self, pos: Option<usize>, token: Token) {
        match pos {
            None => self.tokens.push_back(token),
            Some(p) => {
                let p = p.min(self.tokens.len());
                self.tokens.insert(p, token);
            }
        }
    }

    /// go-yaml's `tokens[len(tokens)-1-k]`: the k-th most recently queued token.
    fn tok_from_end(&self, k: usize) -> Option<(TokType, Mark)> {
        let n = self.tokens.len();
        if k < n {
            let t = &self.tokens[n - 1 - k];
            Some((t.typ, t.start))
        } else {
            self.consumed.get(k - n).copied().flatten()
        }
    }

    /// Removes the head token (the parser's `skip_token`).
    pub fn pop_token(&mut self) -> Option<Token> {
        let t = self.tokens.pop_front()?;
        self.consumed[1] = self.consumed[0];
        self.consumed[0] = Some((t.typ, t.start));
        self.token_available = false;
        self.tokens_parsed += 1;
        self.stream_end_produced = t.typ == TokType::StreamEnd;
        Some(t)
    }

    /// Ensure a token is available at the head of the queue.
    pub fn fetch_more_tokens(&mut self) -> R {
        loop {
            // Keep two tokens of lookahead for the comment logic.
            if self.tokens.len() > 2 {
                match self.simple_keys_by_tok.get(&self.tokens_parsed).copied() {
                    None => break,
                    Some(idx) => {
                        let valid = self.simple_key_is_valid(idx)?;
                        if !valid {
                            break;
                        }
                    }
                }
            }
            self.fetch_next_token()?;
        }
        self.token_available = true;
        Ok(())
    }

    fn fetch_next_token(&mut self) -> R {
        if self.error.is_some() {
            return Err(());
        }
        if !self.stream_start_produced {
            self.fetch_stream_start();
            return Ok(());
        }
        let scan_mark = self.mark;
        self.scan_to_next_token()?;
        self.unroll_indent(self.mark.column, scan_mark);

        if self.is_z(0) {
            return self.fetch_stream_end();
        }
        let c = self.at(0);
        if self.mark.column == 0 && c == b'%' {
            return self.fetch_directive();
        }
        if self.mark.column == 0 && c == b'-' && self.at(1) == b'-' && self.at(2) == b'-' && self.is_blankz(3) {
            return self.fetch_document_indicator(TokType::DocumentStart);
        }
        if self.mark.column == 0 && c == b'.' && self.at(1) == b'.' && self.at(2) == b'.' && self.is_blankz(3) {
            return self.fetch_document_indicator(TokType::DocumentEnd);
        }

        let mut comment_mark = self.mark;
        if self.tok_from_end(0).is_some() && ((self.flow_level == 0 && c == b':') || (self.flow_level > 0 && c == b','))
        {
            // Associate any following comments with the prior token.
            if let Some((_, m)) = self.tok_from_end(0) {
                comment_mark = m;
            }
        }

        self.fetch_token_body(c)?;

        // Deferred in go-yaml: look for a line comment after the token.
        if let Some((TokType::BlockEntry, _)) = self.tok_from_end(0) {
            // A lone '-' has no line comment; it becomes a head comment.
            return Ok(());
        }
        self.scan_line_comment(comment_mark)
    }

    fn fetch_token_body(&mut self, c: u8) -> R {
        match c {
            b'[' => return self.fetch_flow_collection_start(TokType::FlowSequenceStart),
            b'{' => return self.fetch_flow_collection_start(TokType::FlowMappingStart),
            b']' => return self.fetch_flow_collection_end(TokType::FlowSequenceEnd),
            b'}' => return self.fetch_flow_collection_end(TokType::FlowMappingEnd),
            b',' => return self.fetch_flow_entry(),
            _ => {}
        }
        if c == b'-' && self.is_blankz(1) {
            return self.fetch_block_entry();
        }
        if c == b'?' && (self.flow_level > 0 || self.is_blankz(1)) {
            return self.fetch_key();
        }
        if c == b':' && (self.flow_level > 0 || self.is_blankz(1)) {
            return self.fetch_value();
        }
        match c {
            b'*' => return self.fetch_anchor(TokType::Alias),
            b'&' => return self.fetch_anchor(TokType::Anchor),
            b'!' => return self.fetch_tag(),
            b'|' if self.flow_level == 0 => return self.fetch_block_scalar(true),
            b'>' if self.flow_level == 0 => return self.fetch_block_scalar(false),
            b'\'' => return self.fetch_flow_scalar(true),
            b'"' => return self.fetch_flow_scalar(false),
            _ => {}
        }
        let indicator = matches!(
            c,
            b'-' | b'?'
                | b':'
                | b','
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'#'
                | b'&'
                | b'*'
                | b'!'
                | b'|'
                | b'>'
                | b'\''
                | b'"'
                | b'%'
                | b'@'
                | b'`'
        );
        if !(self.is_blankz(0) || indicator)
            || (c == b'-' && !self.is_blank(1))
            || (self.flow_level == 0 && (c == b'?' || c == b':') && !self.is_blankz(1))
        {
            return self.fetch_plain_scalar();
        }
        let m = self.mark;
        self.set_scanner_error(m, "found character that cannot start any token")
    }

    fn simple_key_is_valid(&mut self, idx: usize) -> Result<bool, ()> {
        let Some(sk) = self.simple_keys.get(idx).copied() else {
            return Ok(false);
        };
        if !sk.possible {
            return Ok(false);
        }
        if sk.mark.line < self.mark.line || sk.mark.index + 1024 < self.mark.index {
            if sk.required {
                self.set_scanner_error(sk.mark, "could not find expected ':'")?;
            }
            if let Some(k) = self.simple_keys.get_mut(idx) {
                k.possible = false;
            }
            return Ok(false);
        }
        Ok(true)
    }

    fn save_simple_key(&mut self) -> R {
        let required = self.flow_level == 0 && self.indent == self.mark.column;
        if self.simple_key_allowed {
            let sk = SimpleKey {
                possible: true,
                required,
                token_number: self.tokens_parsed + self.tokens.len(),
                mark: self.mark,
            };
            self.remove_simple_key()?;
            let last = self.simple_keys.len() - 1;
            self.simple_keys[last] = sk;
            self.simple_keys_by_tok.insert(sk.token_number, last);
            if self.simple_keys_by_tok.len() > self.simple_keys_prune_at {
                // Keys invalidated by `simple_key_is_valid` stay in the map
                // (as in go-yaml) but are only ever looked up by the current
                // `tokens_parsed`, which never decreases: entries below it
                // are dead. Dropping them changes nothing and keeps the map
                // small; the doubling threshold keeps this amortised linear.
                let parsed = self.tokens_parsed;
                self.simple_keys_by_tok.retain(|&tn, _| tn >= parsed);
                self.simple_keys_prune_at = 64 + 2 * self.simple_keys_by_tok.len();
            }
        }
        Ok(())
    }

    fn remove_simple_key(&mut self) -> R {
        let i = self.simple_keys.len() - 1;
        if self.simple_keys[i].possible {
            if self.simple_keys[i].required {
                let m = self.simple_keys[i].mark;
                return self.set_scanner_error(m, "could not find expected ':'");
            }
            self.simple_keys[i].possible = false;
            let tn = self.simple_keys[i].token_number;
            self.simple_keys_by_tok.remove(&tn);
        }
        Ok(())
    }

    fn increase_flow_level(&mut self) -> R {
        self.simple_keys.push(SimpleKey {
            possible: false,
            required: false,
            token_number: self.tokens_parsed + self.tokens.len(),
            mark: self.mark,
        });
        self.flow_level += 1;
        if self.flow_level > MAX_FLOW_LEVEL {
            let m = self.simple_keys[self.simple_keys.len() - 1].mark;
            return self.set_scanner_error(m, "exceeded max depth of 10000");
        }
        Ok(())
    }

    fn decrease_flow_level(&mut self) {
        if self.flow_level > 0 {
            self.flow_level -= 1;
            if let Some(last) = self.simple_keys.pop() {
                self.simple_keys_by_tok.remove(&last.token_number);
            }
        }
    }

    fn roll_indent(&mut self, column: i64, number: Option<usize>, typ: TokType, mark: Mark) -> R {
        if self.flow_level > 0 {
            return Ok(());
        }
        if self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
            if self.indents.len() > MAX_INDENTS {
                let m = self.simple_keys[self.simple_keys.len() - 1].mark;
                return self.set_scanner_error(m, "exceeded max depth of 10000");
            }
            let token = Token::new(typ, mark, mark);
            let pos = number.map(|n| n.saturating_sub(self.tokens_parsed));
            self.insert_token(pos, token);
        }
        Ok(())
    }

    fn unroll_indent(&mut self, column: i64, scan_mark: Mark) {
        if self.flow_level > 0 {
            return;
        }
        let mut block_mark = scan_mark;
        block_mark.index -= 1;
        while self.indent > column {
            // Reposition the end token before potential following foot
            // comments of parent blocks.
            let mut stop_index = block_mark.index;
            for i in (0..self.comments.len()).rev() {
                let comment = &self.comments[i];
                if comment.end_mark.index < stop_index {
                    break;
                }
                if comment.start_mark.column == self.indent + 1 {
                    block_mark = comment.start_mark;
                }
                stop_index = comment.scan_mark.index;
            }
            self.insert_token(None, Token::new(TokType::BlockEnd, block_mark, block_mark));
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    fn fetch_stream_start(&mut self) {
        self.indent = -1;
        self.simple_keys.push(SimpleKey::default());
        self.simple_key_allowed = true;
        self.stream_start_produced = true;
        let m = self.mark;
        self.insert_token(None, Token::new(TokType::StreamStart, m, m));
    }

    fn fetch_stream_end(&mut self) -> R {
        if self.mark.column != 0 {
            self.mark.column = 0;
            self.mark.line += 1;
        }
        let m = self.mark;
        self.unroll_indent(-1, m);
        self.remove_simple_key()?;
        self.simple_key_allowed = false;
        let m = self.mark;
        self.insert_token(None, Token::new(TokType::StreamEnd, m, m));
        Ok(())
    }

    fn fetch_directive(&mut self) -> R {
        let m = self.mark;
        self.unroll_indent(-1, m);
        self.remove_simple_key()?;
        self.simple_key_allowed = false;
        let token = self.scan_directive()?;
        self.insert_token(None, token);
        Ok(())
    }

    fn fetch_document_indicator(&mut self, typ: TokType) -> R {
        let m = self.mark;
        self.unroll_indent(-1, m);
        self.remove_simple_key()?;
        self.simple_key_allowed = false;
        let start = self.mark;
        self.skip();
        self.skip();
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(typ, start, end));
        Ok(())
    }

    fn fetch_flow_collection_start(&mut self, typ: TokType) -> R {
        self.save_simple_key()?;
        self.increase_flow_level()?;
        self.simple_key_allowed = true;
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(typ, start, end));
        Ok(())
    }

    fn fetch_flow_collection_end(&mut self, typ: TokType) -> R {
        self.remove_simple_key()?;
        self.decrease_flow_level();
        self.simple_key_allowed = false;
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(typ, start, end));
        Ok(())
    }

    fn fetch_flow_entry(&mut self) -> R {
        self.remove_simple_key()?;
        self.simple_key_allowed = true;
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(TokType::FlowEntry, start, end));
        Ok(())
    }

    fn fetch_block_entry(&mut self) -> R {
        if self.flow_level == 0 {
            if !self.simple_key_allowed {
                let m = self.mark;
                return self.set_scanner_error(m, "block sequence entries are not allowed in this context");
            }
            let (col, m) = (self.mark.column, self.mark);
            self.roll_indent(col, None, TokType::BlockSequenceStart, m)?;
        }
        self.remove_simple_key()?;
        self.simple_key_allowed = true;
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(TokType::BlockEntry, start, end));
        Ok(())
    }

    fn fetch_key(&mut self) -> R {
        if self.flow_level == 0 {
            if !self.simple_key_allowed {
                let m = self.mark;
                return self.set_scanner_error(m, "mapping keys are not allowed in this context");
            }
            let (col, m) = (self.mark.column, self.mark);
            self.roll_indent(col, None, TokType::BlockMappingStart, m)?;
        }
        self.remove_simple_key()?;
        self.simple_key_allowed = self.flow_level == 0;
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(TokType::Key, start, end));
        Ok(())
    }

    fn fetch_value(&mut self) -> R {
        let idx = self.simple_keys.len() - 1;
        let valid = self.simple_key_is_valid(idx)?;
        if valid {
            let sk = self.simple_keys[idx];
            let pos = sk.token_number.saturating_sub(self.tokens_parsed);
            self.insert_token(Some(pos), Token::new(TokType::Key, sk.mark, sk.mark));
            self.roll_indent(
                sk.mark.column,
                Some(sk.token_number),
                TokType::BlockMappingStart,
                sk.mark,
            )?;
            self.simple_keys[idx].possible = false;
            self.simple_keys_by_tok.remove(&sk.token_number);
            self.simple_key_allowed = false;
        } else {
            if self.flow_level == 0 {
                if !self.simple_key_allowed {
                    let m = self.mark;
                    return self.set_scanner_error(m, "mapping values are not allowed in this context");
                }
                let (col, m) = (self.mark.column, self.mark);
                self.roll_indent(col, None, TokType::BlockMappingStart, m)?;
            }
            self.simple_key_allowed = self.flow_level == 0;
        }
        let start = self.mark;
        self.skip();
        let end = self.mark;
        self.insert_token(None, Token::new(TokType::Value, start, end));
        Ok(())
    }

    fn fetch_anchor(&mut self, typ: TokType) -> R {
        self.save_simple_key()?;
        self.simple_key_allowed = false;
        let t = self.scan_anchor(typ)?;
        self.insert_token(None, t);
        Ok(())
    }

    fn fetch_tag(&mut self) -> R {
        self.save_simple_key()?;
        self.simple_key_allowed = false;
        let t = self.scan_tag()?;
        self.insert_token(None, t);
        Ok(())
    }

    fn fetch_block_scalar(&mut self, literal: bool) -> R {
        self.remove_simple_key()?;
        self.simple_key_allowed = true;
        let t = self.scan_block_scalar(literal)?;
        self.insert_token(None, t);
        Ok(())
    }

    fn fetch_flow_scalar(&mut self, single: bool) -> R {
        self.save_simple_key()?;
        self.simple_key_allowed = false;
        let t = self.scan_flow_scalar(single)?;
        self.insert_token(None, t);
        Ok(())
    }

    fn fetch_plain_scalar(&mut self) -> R {
        self.save_simple_key()?;
        self.simple_key_allowed = false;
        let t = self.scan_plain_scalar()?;
        self.insert_token(None, t);
        Ok(())
    }

    fn scan_to_next_token(&mut self) -> R {
        let scan_mark = self.mark;
        loop {
            if self.mark.column == 0 && self.is_bom(0) {
                self.skip();
            }
            // Skip blanks in one go (`skip` per character in go-yaml; blanks
            // leave `newlines` alone).
            let tabs = self.flow_level > 0 || !self.simple_key_allowed;
            let mut p = self.pos;
            while let Some(&b) = self.buf.get(p) {
                if b == b' ' || (tabs && b == b'\t') {
                    p += 1;
                } else {
                    break;
                }
            }
            let n = (p - self.pos) as i64;
            self.pos = p;
            self.mark.index += n;
            self.mark.column += n;

            // A line comment under a lone sequence entry that looks like a
            // header of the following content becomes a head comment.
            if !self.comments.is_empty() {
                if let (Some((ta, _)), Some((tb, _))) = (self.tok_from_end(1), self.tok_from_end(0)) {
                    let brk = self.is_break(0);
                    let line = self.mark.line;
                    let mark = self.mark;
                    if let Some(comment) = self.comments.last_mut() {
                        if ta == TokType::BlockSequenceStart
                            && tb == TokType::BlockEntry
                            && !comment.line.is_empty()
                            && !brk
                        {
                            comment.head = std::mem::take(&mut comment.line);
                            if comment.start_mark.line == line - 1 {
                                comment.token_mark = mark;
                            }
                        }
                    }
                }
            }

            if self.at(0) == b'#' {
                self.scan_comments(scan_mark)?;
            }

            if self.is_break(0) {
                self.skip_line();
                if self.flow_level == 0 {
                    self.simple_key_allowed = true;
                }
            } else {
                break;
            }
        }
        Ok(())
    }

    fn scan_directive(&mut self) -> Result<Token, ()> {
        let start = self.mark;
        self.skip();
        let name = self.scan_directive_name(start)?;
        let mut token;
        if name == b"YAML" {
            let (major, minor) = self.scan_version_directive_value(start)?;
            token = Token::new(TokType::VersionDirective, start, self.mark);
            token.major = major;
            token.minor = minor;
        } else if name == b"TAG" {
            let (handle, prefix) = self.scan_tag_directive_value(start)?;
            token = Token::new(TokType::TagDirective, start, self.mark);
            token.value = handle;
            token.suffix = prefix;
        } else {
            self.set_scanner_error(start, "found unknown directive name")?;
            return Err(());
        }
        while self.is_blank(0) {
            self.skip();
        }
        if self.at(0) == b'#' {
            while !self.is_breakz(0) {
                self.skip();
            }
        }
        if !self.is_breakz(0) {
            self.set_scanner_error(start, "did not find expected comment or line break")?;
        }
        if self.is_break(0) {
            self.skip_line();
        }
        Ok(token)
    }

    fn scan_directive_name(&mut self, start: Mark) -> Result<Vec<u8>, ()> {
        let mut s = Vec::new();
        while self.is_alpha(0) {
            self.read(&mut s);
        }
        if s.is_empty() {
            self.set_scanner_error(start, "could not find expected directive name")?;
        }
        if !self.is_blankz(0) {
            self.set_scanner_error(start, "found unexpected non-alphabetical character")?;
        }
        Ok(s)
    }

    fn scan_version_directive_value(&mut self, start: Mark) -> Result<(i8, i8), ()> {
        while self.is_blank(0) {
            self.skip();
        }
        let major = self.scan_version_directive_number(start)?;
        if self.at(0) != b'.' {
            self.set_scanner_error(start, "did not find expected digit or '.' character")?;
        }
        self.skip();
        let minor = self.scan_version_directive_number(start)?;
        Ok((major, minor))
    }

    fn scan_version_directive_number(&mut self, start: Mark) -> Result<i8, ()> {
        let mut value: i8 = 0;
        let mut length = 0;
        while self.is_digit(0) {
            length += 1;
            if length > 2 {
                self.set_scanner_error(start, "found extremely long version number")?;
            }
            value = value * 10 + (self.at(0) - b'0') as i8;
            self.skip();
        }
        if length == 0 {
            self.set_scanner_error(start, "did not find expected version number")?;
        }
        Ok(value)
    }

    fn scan_tag_directive_value(&mut self, start: Mark) -> Result<(Vec<u8>, Vec<u8>), ()> {
        while self.is_blank(0) {
            self.skip();
        }
        let handle = self.scan_tag_handle(true, start)?;
        if !self.is_blank(0) {
            self.set_scanner_error(start, "did not find expected whitespace")?;
        }
        while self.is_blank(0) {
            self.skip();
        }
        let prefix = self.scan_tag_uri(true, &[], start)?;
        if !self.is_blankz(0) {
            self.set_scanner_error(start, "did not find expected whitespace or line break")?;
        }
        Ok((handle, prefix))
    }

    fn scan_anchor(&mut self, typ: TokType) -> Result<Token, ()> {
        let mut s = Vec::new();
        let start = self.mark;
        self.skip();
        while self.is_alpha(0) {
            self.read(&mut s);
        }
        let end = self.mark;
        let c = self.at(0);
        if s.is_empty() || !(self.is_blankz(0) || matches!(c, b'?' | b':' | b',' | b']' | b'}' | b'%' | b'@' | b'`')) {
            let ctx_problem = "did not find expected alphabetic or numeric character";
            self.set_scanner_error(start, ctx_problem)?;
        }
        let mut t = Token::new(typ, start, end);
        t.value = s;
        Ok(t)
    }

    fn scan_tag(&mut self) -> Result<Token, ()> {
        let start = self.mark;
        let handle;
        let suffix;
        if self.at(1) == b'<' {
            self.skip();
            self.skip();
            suffix = self.scan_tag_uri(false, &[], start)?;
            if self.at(0) != b'>' {
                self.set_scanner_error(start, "did not find the expected '>'")?;
            }
            self.skip();
            handle = Vec::new();
        } else {
            let h = self.scan_tag_handle(false, start)?;
            if h.len() > 1 && h[0] == b'!' && h[h.len() - 1] == b'!' {
                suffix = self.scan_tag_uri(false, &[], start)?;
                handle = h;
            } else {
                let s = self.scan_tag_uri(false, &h, start)?;
                if s.is_empty() {
                    // The '!' tag: handle '' and suffix '!'.
                    handle = Vec::new();
                    suffix = b"!".to_vec();
                } else {
                    handle = b"!".to_vec();
                    suffix = s;
                }
            }
        }
        if !self.is_blankz(0) {
            self.set_scanner_error(start, "did not find expected whitespace or line break")?;
        }
        let mut t = Token::new(TokType::Tag, start, self.mark);
        t.value = handle;
        t.suffix = suffix;
        Ok(t)
    }

    fn scan_tag_handle(&mut self, directive: bool, start: Mark) -> Result<Vec<u8>, ()> {
        if self.at(0) != b'!' {
            self.set_scanner_error(start, "did not find expected '!'")?;
        }
        let mut s = Vec::new();
        self.read(&mut s);
        while self.is_alpha(0) {
            self.read(&mut s);
        }
        if self.at(0) == b'!' {
            self.read(&mut s);
        } else if directive && s != b"!" {
            self.set_scanner_error(start, "did not find expected '!'")?;
        }
        Ok(s)
    }

    fn scan_tag_uri(&mut self, directive: bool, head: &[u8], start: Mark) -> Result<Vec<u8>, ()> {
        let mut s = Vec::new();
        let mut has_tag = !head.is_empty();
        if head.len() > 1 {
            s.extend_from_slice(&head[1..]);
        }
        loop {
            let c = self.at(0);
            let ok = self.is_alpha(0)
                || matches!(
                    c,
                    b';' | b'/'
                        | b'?'
                        | b':'
                        | b'@'
                        | b'&'
                        | b'='
                        | b'+'
                        | b'$'
                        | b','
                        | b'.'
                        | b'!'
                        | b'~'
                        | b'*'
                        | b'\''
                        | b'('
                        | b')'
                        | b'['
                        | b']'
                        | b'%'
                );
            if !ok {
                break;
            }
            if c == b'%' {
                self.scan_uri_escapes(directive, start, &mut s)?;
            } else {
                self.read(&mut s);
            }
            has_tag = true;
        }
        if !has_tag {
            self.set_scanner_error(start, "did not find expected tag URI")?;
        }
        Ok(s)
    }

    fn scan_uri_escapes(&mut self, _directive: bool, start: Mark, s: &mut Vec<u8>) -> R {
        let mut w: usize = 1024;
        while w > 0 {
            if !(self.at(0) == b'%' && self.is_hex(1) && self.is_hex(2)) {
                return self.set_scanner_error(start, "did not find URI escaped octet");
            }
            let octet = ((self.as_hex(1) << 4) + self.as_hex(2)) as u8;
            if w == 1024 {
                w = match octet {
                    o if o & 0x80 == 0 => 1,
                    o if o & 0xE0 == 0xC0 => 2,
                    o if o & 0xF0 == 0xE0 => 3,
                    o if o & 0xF8 == 0xF0 => 4,
                    _ => 0,
                };
                if w == 0 {
                    return self.set_scanner_error(start, "found an incorrect leading UTF-8 octet");
                }
            } else if octet & 0xC0 != 0x80 {
                return self.set_scanner_error(start, "found an incorrect trailing UTF-8 octet");
            }
            s.push(octet);
            self.skip();
            self.skip();
            self.skip();
            w -= 1;
        }
        Ok(())
    }

    fn scan_block_scalar(&mut self, literal: bool) -> Result<Token, ()> {
        let start = self.mark;
        self.skip();
        let mut chomping = 0i32;
        let mut increment = 0i64;
        if self.at(0) == b'+' || self.at(0) == b'-' {
            chomping = if self.at(0) == b'+' { 1 } else { -1 };
            self.skip();
            if self.is_digit(0) {
                if self.at(0) == b'0' {
                    self.set_scanner_error(start, "found an indentation indicator equal to 0")?;
                }
                increment = (self.at(0) - b'0') as i64;
                self.skip();
            }
        } else if self.is_digit(0) {
            if self.at(0) == b'0' {
                self.set_scanner_error(start, "found an indentation indicator equal to 0")?;
            }
            increment = (self.at(0) - b'0') as i64;
            self.skip();
            if self.at(0) == b'+' || self.at(0) == b'-' {
                chomping = if self.at(0) == b'+' { 1 } else { -1 };
                self.skip();
            }
        }
        while self.is_blank(0) {
            self.skip();
        }
        if self.at(0) == b'#' {
            self.scan_line_comment(start)?;
            while !self.is_breakz(0) {
                self.skip();
            }
        }
        if !self.is_breakz(0) {
            self.set_scanner_error(start, "did not find expected comment or line break")?;
        }
        if self.is_break(0) {
            self.skip_line();
        }
        let mut end = self.mark;
        let mut indent: i64 = 0;
        if increment > 0 {
            indent = if self.indent >= 0 {
                self.indent + increment
            } else {
                increment
            };
        }
        let mut s = Vec::new();
        let mut leading_break = Vec::new();
        let mut trailing_breaks = Vec::new();
        self.scan_block_scalar_breaks(&mut indent, &mut trailing_breaks, start, &mut end)?;
        let mut leading_blank = false;
        while self.mark.column == indent && !self.is_z(0) {
            let trailing_blank = self.is_blank(0);
            if !literal && !leading_blank && !trailing_blank && leading_break.first() == Some(&b'\n') {
                if trailing_breaks.is_empty() {
                    s.push(b' ');
                }
            } else {
                s.extend_from_slice(&leading_break);
            }
            leading_break.clear();
            s.extend_from_slice(&trailing_breaks);
            trailing_breaks.clear();
            leading_blank = self.is_blank(0);
            // Copy the rest of the line in one go (no breaks inside).
            let line_start = self.pos;
            {
                let buf = self.buf;
                let mut p = line_start;
                let mut n: i64 = 0;
                let mut non_blank = false;
                while let Some(&c) = buf.get(p) {
                    match c {
                        0 | b'\r' | b'\n' => break,
                        0xC2 | 0xE2 if break_at(buf, p) => break,
                        b' ' | b'\t' => {}
                        _ => non_blank = true,
                    }
                    p += width(c);
                    n += 1;
                }
                if non_blank {
                    self.newlines = 0;
                }
                self.pos = p;
                self.mark.index += n;
                self.mark.column += n;
            }
            let line_end = self.pos.min(self.buf.len());
            if line_start < line_end {
                s.extend_from_slice(&self.buf[line_start..line_end]);
            }
            self.read_line(&mut leading_break);
            self.scan_block_scalar_breaks(&mut indent, &mut trailing_breaks, start, &mut end)?;
        }
        if chomping != -1 {
            s.extend_from_slice(&leading_break);
        }
        if chomping == 1 {
            s.extend_from_slice(&trailing_breaks);
        }
        let mut t = Token::new(TokType::Scalar, start, end);
        t.value = s;
        t.style = if literal {
            ScalarStyle::Literal
        } else {
            ScalarStyle::Folded
        };
        Ok(t)
    }

    fn scan_block_scalar_breaks(&mut self, indent: &mut i64, breaks: &mut Vec<u8>, start: Mark, end: &mut Mark) -> R {
        *end = self.mark;
        let mut max_indent = 0;
        loop {
            while (*indent == 0 || self.mark.column < *indent) && self.is_space(0) {
                self.skip();
            }
            if self.mark.column > max_indent {
                max_indent = self.mark.column;
            }
            if (*indent == 0 || self.mark.column < *indent) && self.is_tab(0) {
                return self.set_scanner_error(start, "found a tab character where an indentation space is expected");
            }
            if !self.is_break(0) {
                break;
            }
            self.read_line(breaks);
            *end = self.mark;
        }
        if *indent == 0 {
            *indent = max_indent;
            if *indent < self.indent + 1 {
                *indent = self.indent + 1;
            }
            if *indent < 1 {
                *indent = 1;
            }
        }
        Ok(())
    }

    fn scan_flow_scalar(&mut self, single: bool) -> Result<Token, ()> {
        let start = self.mark;
        self.skip();
        let mut s = Vec::new();
        let mut leading_break = Vec::new();
        let mut trailing_breaks = Vec::new();
        let mut whitespaces = Vec::new();
        loop {
            if self.mark.column == 0
                && ((self.at(0) == b'-' && self.at(1) == b'-' && self.at(2) == b'-')
                    || (self.at(0) == b'.' && self.at(1) == b'.' && self.at(2) == b'.'))
                && self.is_blankz(3)
            {
                self.set_scanner_error(start, "found unexpected document indicator")?;
            }
            if self.is_z(0) {
                self.set_scanner_error(start, "found unexpected end of stream")?;
            }
            let mut leading_blanks = false;
            while !self.is_blankz(0) {
                let c = self.at(0);
                if single && c == b'\'' && self.at(1) == b'\'' {
                    s.push(b'\'');
                    self.skip();
                    self.skip();
                } else if (single && c == b'\'') || (!single && c == b'"') {
                    // The closing quote.
                    break;
                } else if !single && c == b'\\' && self.is_break(1) {
                    self.skip();
                    self.skip_line();
                    leading_blanks = true;
                    break;
                } else if !single && c == b'\\' {
                    let mut code_length = 0usize;
                    match self.at(1) {
                        b'0' => s.push(0),
                        b'a' => s.push(0x07),
                        b'b' => s.push(0x08),
                        b't' | b'\t' => s.push(0x09),
                        b'n' => s.push(0x0A),
                        b'v' => s.push(0x0B),
                        b'f' => s.push(0x0C),
                        b'r' => s.push(0x0D),
                        b'e' => s.push(0x1B),
                        b' ' => s.push(0x20),
                        b'"' => s.push(b'"'),
                        b'\'' => s.push(b'\''),
                        b'\\' => s.push(b'\\'),
                        b'N' => s.extend_from_slice(&[0xC2, 0x85]),
                        b'_' => s.extend_from_slice(&[0xC2, 0xA0]),
                        b'L' => s.extend_from_slice(&[0xE2, 0x80, 0xA8]),
                        b'P' => s.extend_from_slice(&[0xE2, 0x80, 0xA9]),
                        b'x' => code_length = 2,
                        b'u' => code_length = 4,
                        b'U' => code_length = 8,
                        _ => {
                            self.set_scanner_error(start, "found unknown escape character")?;
                        }
                    }
                    self.skip();
                    self.skip();
                    if code_length > 0 {
                        let mut value: u32 = 0;
                        for k in 0..code_length {
                            if !self.is_hex(k) {
                                self.set_scanner_error(start, "did not find expected hexdecimal number")?;
                            }
                            value = (value << 4) + self.as_hex(k);
                        }
                        match char::from_u32(value) {
                            Some(ch) => {
                                let mut b = [0u8; 4];
                                s.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                            }
                            None => {
                                self.set_scanner_error(start, "found invalid Unicode character escape code")?;
                            }
                        }
                        for _ in 0..code_length {
                            self.skip();
                        }
                    }
                } else {
                    // Copy a run of ordinary characters at once.
                    let st = self.pos;
                    let buf = self.buf;
                    let mut p = st;
                    let mut n: i64 = 0;
                    loop {
                        let q = p;
                        // Stop at what is not printable ASCII (DEL and
                        // non-ASCII included), blanks, quotes and backslash.
                        p = swar::scan_for(
                            buf,
                            p,
                            swar::Stops {
                                eq: [0x7F, b'"', b'\'', b'\\'],
                                below: 0x21,
                                high: true,
                            },
                        );
                        n += (p - q) as i64;
                        let Some(&c) = buf.get(p) else { break };
                        match c {
                            0 | b' ' | b'\t' | b'\r' | b'\n' | b'\'' | b'"' | b'\\' => break,
                            0xC2 | 0xE2 if break_at(buf, p) => break,
                            _ => {}
                        }
                        p += width(c);
                        n += 1;
                    }
                    self.pos = p;
                    self.mark.index += n;
                    self.mark.column += n;
                    if self.pos == st {
                        // A quote or backslash not handled above.
                        self.read(&mut s);
                    } else {
                        let en = self.pos.min(self.buf.len());
                        s.extend_from_slice(&self.buf[st..en]);
                        self.newlines = 0;
                    }
                }
            }
            let c = self.at(0);
            if (single && c == b'\'') || (!single && c == b'"') {
                break;
            }
            while self.is_blank(0) || self.is_break(0) {
                if self.is_blank(0) {
                    if !leading_blanks {
                        self.read(&mut whitespaces);
                    } else {
                        self.skip();
                    }
                } else if !leading_blanks {
                    whitespaces.clear();
                    self.read_line(&mut leading_break);
                    leading_blanks = true;
                } else {
                    self.read_line(&mut trailing_breaks);
                }
            }
            if leading_blanks {
                if leading_break.first() == Some(&b'\n') {
                    if trailing_breaks.is_empty() {
                        s.push(b' ');
                    } else {
                        s.extend_from_slice(&trailing_breaks);
                    }
                } else {
                    s.extend_from_slice(&leading_break);
                    s.extend_from_slice(&trailing_breaks);
                }
                trailing_breaks.clear();
                leading_break.clear();
            } else {
                s.extend_from_slice(&whitespaces);
                whitespaces.clear();
            }
        }
        self.skip();
        let mut t = Token::new(TokType::Scalar, start, self.mark);
        t.value = s;
        t.style = if single {
            ScalarStyle::SingleQuoted
        } else {
            ScalarStyle::DoubleQuoted
        };
        Ok(t)
    }

    fn scan_plain_scalar(&mut self) -> Result<Token, ()> {
        let mut s = Vec::new();
        // Buffers kept from one scalar to the next: nearly every plain
        // scalar ends at a line break, which goes into `leading_break`.
        let PlainScratch {
            mut leading_break,
            mut trailing_breaks,
            mut whitespaces,
        } = std::mem::take(&mut self.plain_scratch);
        leading_break.clear();
        trailing_breaks.clear();
        whitespaces.clear();
        let mut leading_blanks = false;
        let indent = self.indent + 1;
        let start = self.mark;
        let mut end = self.mark;
        loop {
            if self.mark.column == 0
                && ((self.at(0) == b'-' && self.at(1) == b'-' && self.at(2) == b'-')
                    || (self.at(0) == b'.' && self.at(1) == b'.' && self.at(2) == b'.'))
                && self.is_blankz(3)
            {
                break;
            }
            if self.at(0) == b'#' {
                break;
            }
            while !self.is_blankz(0) {
                let c = self.at(0);
                if (c == b':' && self.is_blankz(1))
                    || (self.flow_level > 0 && matches!(c, b',' | b'?' | b'[' | b']' | b'{' | b'}'))
                {
                    break;
                }
                if leading_blanks || !whitespaces.is_empty() {
                    if leading_blanks {
                        if leading_break.first() == Some(&b'\n') {
                            if trailing_breaks.is_empty() {
                                s.push(b' ');
                            } else {
                                s.extend_from_slice(&trailing_breaks);
                            }
                        } else {
                            s.extend_from_slice(&leading_break);
                            s.extend_from_slice(&trailing_breaks);
                        }
                        trailing_breaks.clear();
                        leading_break.clear();
                        leading_blanks = false;
                    } else {
                        s.extend_from_slice(&whitespaces);
                        whitespaces.clear();
                    }
                }
                // Copy the run of ordinary characters in one go (nothing in
                // a run needs joining; go-yaml reads them one by one).
                let st = self.pos;
                let buf = self.buf;
                let flow = self.flow_level > 0;
                let mut p = st;
                let mut n: i64 = 0;
                loop {
                    // Ordinary ASCII bytes in one tight loop; the rest below.
                    let q = p;
                    if flow {
                        while p < buf.len() && PLAIN_RUN[buf[p] as usize] {
                            p += 1;
                        }
                    } else {
                        // Outside flow context only blanks, breaks, `:`, DEL
                        // and non-ASCII bytes need a look (as below); skip
                        // the rest many bytes at a time.
                        p = swar::scan_for(
                            buf,
                            p,
                            swar::Stops {
                                eq: [b':', 0x7F],
                                below: 0x21,
                                high: true,
                            },
                        );
                    }
                    n += (p - q) as i64;
                    let Some(&c) = buf.get(p) else { break };
                    match c {
                        0 | b' ' | b'\t' | b'\r' | b'\n' => break,
                        b':' if blankz_at(buf, p + 1) => break,
                        b',' | b'?' | b'[' | b']' | b'{' | b'}' if flow => break,
                        0xC2 | 0xE2 if break_at(buf, p) => break,
                        _ => {}
                    }
                    p += width(c);
                    n += 1;
                }
                self.pos = p;
                self.mark.index += n;
                self.mark.column += n;
                let en = self.pos.min(self.buf.len());
                s.extend_from_slice(&self.buf[st..en]);
                self.newlines = 0;
                end = self.mark;
            }
            if !(self.is_blank(0) || self.is_break(0)) {
                break;
            }
            while self.is_blank(0) || self.is_break(0) {
                if self.is_blank(0) {
                    if leading_blanks && self.mark.column < indent && self.is_tab(0) {
                        self.set_scanner_error(start, "found a tab character that violates indentation")?;
                    }
                    if !leading_blanks {
                        self.read(&mut whitespaces);
                    } else {
                        self.skip();
                    }
                } else if !leading_blanks {
                    whitespaces.clear();
                    self.read_line(&mut leading_break);
                    leading_blanks = true;
                } else {
                    self.read_line(&mut trailing_breaks);
                }
            }
            if self.flow_level == 0 && self.mark.column < indent {
                break;
            }
        }
        let mut t = Token::new(TokType::Scalar, start, end);
        t.value = s;
        t.style = ScalarStyle::Plain;
        if leading_blanks {
            self.simple_key_allowed = true;
        }
        self.plain_scratch = PlainScratch {
            leading_break,
            trailing_breaks,
            whitespaces,
        };
        Ok(t)
    }

    fn scan_line_comment(&mut self, token_mark: Mark) -> R {
        if self.newlines > 0 {
            return Ok(());
        }
        let mut start_mark = Mark::default();
        let mut text = Vec::new();
        let mut peek = 0usize;
        while peek < 512 {
            if self.is_blank(peek) {
                peek += 1;
                continue;
            }
            if self.at(peek) == b'#' {
                let seen = self.mark.index + peek as i64;
                loop {
                    if self.is_breakz(0) {
                        if self.mark.index >= seen {
                            break;
                        }
                        self.skip_line();
                    } else if self.mark.index >= seen {
                        if text.is_empty() {
                            start_mark = self.mark;
                        }
                        self.read(&mut text);
                    } else {
                        self.skip();
                    }
                }
            }
            break;
        }
        if !text.is_empty() {
            self.comments.push(Comment {
                token_mark,
                start_mark,
                line: text,
                ..Default::default()
            });
        }
        Ok(())
    }

    fn scan_comments(&mut self, scan_mark_in: Mark) -> R {
        let mut scan_mark = scan_mark_in;
        let (mut token_typ, mut token_start) = self.tok_from_end(0).unwrap_or((TokType::None, Mark::default()));
        if token_typ == TokType::FlowEntry {
            if let Some((t, m)) = self.tok_from_end(1) {
                token_typ = t;
                token_start = m;
            }
        }
        let mut token_mark = token_start;
        let mut start_mark = Mark::default();
        let mut next_indent = self.indent.max(0);

        let mut recent_empty = false;
        let mut first_empty = self.newlines <= 1;

        let mut line = self.mark.line;
        let mut column = self.mark.column;

        let mut text: Vec<u8> = Vec::new();

        let mut foot_line = -1;
        if scan_mark.line > 0 {
            foot_line = self.mark.line - self.newlines + 1;
            if self.newlines == 0 && self.mark.column > 1 {
                foot_line += 1;
            }
        }

        let mut peek = 0usize;
        while peek < 512 {
            column += 1;
            if self.is_blank(peek) {
                peek += 1;
                continue;
            }
            let c = self.at(peek);
            let close_flow = self.flow_level > 0 && (c == b']' || c == b'}');
            if close_flow || self.is_breakz(peek) {
                if close_flow || !recent_empty {
                    if close_flow
                        || (first_empty
                            && ((start_mark.line == foot_line && token_typ != TokType::Value)
                                || start_mark.column - 1 < next_indent))
                    {
                        // The initial part of the comment is a foot of the
                        // prior token rather than a head of the next one.
                        if !text.is_empty() {
                            if start_mark.column - 1 < next_indent {
                                token_mark = start_mark;
                            }
                            let end = Mark {
                                index: self.mark.index + peek as i64,
                                line,
                                column,
                            };
                            self.comments.push(Comment {
                                scan_mark,
                                token_mark,
                                start_mark,
                                end_mark: end,
                                foot: std::mem::take(&mut text),
                                ..Default::default()
                            });
                            scan_mark = end;
                            token_mark = scan_mark;
                        }
                    } else if !text.is_empty() && self.at(peek) != 0 {
                        text.push(b'\n');
                    }
                }
                if !self.is_break(peek) {
                    break;
                }
                first_empty = false;
                recent_empty = true;
                column = 0;
                line += 1;
                peek += 1;
                continue;
            }

            if !text.is_empty() && (close_flow || (column - 1 < next_indent && column != start_mark.column)) {
                // A comment at a different indentation is a foot of the
                // preceding data rather than a head of the upcoming one.
                let end = Mark {
                    index: self.mark.index + peek as i64,
                    line,
                    column,
                };
                self.comments.push(Comment {
                    scan_mark,
                    token_mark,
                    start_mark,
                    end_mark: end,
                    foot: std::mem::take(&mut text),
                    ..Default::default()
                });
                scan_mark = end;
                token_mark = scan_mark;
            }

            if self.at(peek) != b'#' {
                break;
            }

            if text.is_empty() {
                start_mark = Mark {
                    index: self.mark.index + peek as i64,
                    line,
                    column,
                };
            } else {
                text.push(b'\n');
            }
            recent_empty = false;

            // Consume until after the comment line.
            let seen = self.mark.index + peek as i64;
            loop {
                if self.is_breakz(0) {
                    if self.mark.index >= seen {
                        break;
                    }
                    self.skip_line();
                } else if self.mark.index >= seen {
                    // Copy the rest of the comment line at once.
                    let from = self.pos;
                    let buf = self.buf;
                    let mut p = from;
                    let mut n: i64 = 0;
                    while let Some(&c) = buf.get(p) {
                        match c {
                            0 | b'\r' | b'\n' => break,
                            0xC2 | 0xE2 if break_at(buf, p) => break,
                            _ => {}
                        }
                        p += width(c);
                        n += 1;
                    }
                    if n > 0 {
                        self.newlines = 0;
                    }
                    self.pos = p;
                    self.mark.index += n;
                    self.mark.column += n;
                    let to = self.pos.min(self.buf.len());
                    if from < to {
                        text.extend_from_slice(&self.buf[from..to]);
                    }
                } else {
                    self.skip();
                }
            }

            // go-yaml resets peek to 0 and its loop then increments it, so
            // the break ending the comment line is never looked at.
            peek = 1;
            column = 0;
            line = self.mark.line;
            next_indent = self.indent.max(0);
        }

        if !text.is_empty() {
            self.comments.push(Comment {
                scan_mark,
                token_mark: start_mark,
                start_mark,
                end_mark: Mark {
                    index: self.mark.index + peek as i64 - 1,
                    line,
                    column,
                },
                head: text,
                ..Default::default()
            });
        }
        Ok(())
    }
}
