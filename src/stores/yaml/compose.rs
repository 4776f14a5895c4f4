//! Node tree (go-yaml `yaml.Node`), the composer that builds it from events
//! (go-yaml `decode.go` parser), the unique-key pre-check sops runs on the
//! first document (a decode into `map[string]interface{}`), and the
//! conversion to the sops tree (sops `stores/yaml/store.go`, 3.11).

use super::parser::{EvType, Event, Parser};
use super::resolve::{resolve, resolve_plain, Resolved, Tag};
use super::scanner::{ScalarStyle, SyntaxError};
use super::FxBuild;
use crate::tree::{Branch, Item, Key, Value};
use std::collections::{HashMap, HashSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Document,
    Sequence,
    Mapping,
    Scalar,
    Alias,
}

pub const TAGGED: u8 = 1;
pub const DOUBLE_QUOTED: u8 = 2;
pub const SINGLE_QUOTED: u8 = 4;
pub const LITERAL: u8 = 8;
pub const FOLDED: u8 = 16;
pub const FLOW: u8 = 32;
const QUOTED_OR_BLOCK: u8 = DOUBLE_QUOTED | SINGLE_QUOTED | LITERAL | FOLDED;

#[derive(Default, Debug)]
pub struct Comments {
    pub head: String,
    pub line: String,
    pub foot: String,
}

#[derive(Debug)]
pub struct Node {
    pub kind: Kind,
    pub style: u8,
    pub tag: Tag,
    pub value: String,
    /// Target of an alias node.
    pub alias: usize,
    pub line: i64,
    pub comments: Option<Box<Comments>>,
    pub content: Vec<usize>,
    /// Resolution of an untagged plain scalar, computed once.
    pub resolved: Option<Resolved>,
    /// Target of some anchor (its subtree may be copied by aliases).
    pub anchored: bool,
}

impl Node {
    fn head(&self) -> &str {
        self.comments.as_ref().map_or("", |c| c.head.as_str())
    }
    fn line_comment(&self) -> &str {
        self.comments.as_ref().map_or("", |c| c.line.as_str())
    }
    fn foot(&self) -> &str {
        self.comments.as_ref().map_or("", |c| c.foot.as_str())
    }
    fn take_foot(&mut self) -> String {
        self.comments
            .as_mut()
            .map(|c| std::mem::take(&mut c.foot))
            .unwrap_or_default()
    }
    fn set_foot(&mut self, foot: String) {
        if foot.is_empty() && self.comments.is_none() {
            return;
        }
        self.comments.get_or_insert_with(Default::default).foot = foot;
    }
    fn set_line(&mut self, line: String) {
        if line.is_empty() && self.comments.is_none() {
            return;
        }
        self.comments.get_or_insert_with(Default::default).line = line;
    }
}

/// Deepest node nesting accepted (see `parse_node`).
pub const MAX_NESTING: usize = 500;

/// A load failure, already formatted as go-yaml/sops print it.
pub struct Fail(pub String);

fn bytes_to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn format_syntax_error(e: &SyntaxError) -> String {
    let mut line = 0;
    if e.problem_mark.line != 0 {
        line = e.problem_mark.line;
        if e.scanner {
            line += 1;
        }
    } else if e.context_mark.line != 0 {
        line = e.context_mark.line;
    }
    if line != 0 {
        format!("yaml: line {}: {}", line, e.problem)
    } else {
        format!("yaml: {}", e.problem)
    }
}

pub struct Composer<'a> {
    parser: Parser<'a>,
    event: Option<Event>,
    pub nodes: Vec<Node>,
    anchors: HashMap<Vec<u8>, usize, FxBuild>,
    started: bool,
    depth: usize,
}

impl<'a> Composer<'a> {
    pub fn new(input: &'a [u8]) -> Composer<'a> {
        Composer {
            parser: Parser::new(input),
            event: None,
            nodes: Vec::with_capacity(input.len() / 24),
            anchors: HashMap::default(),
            started: false,
            depth: 0,
        }
    }

    fn fail(&mut self) -> Fail {
        match self.parser.take_error() {
            Some(e) => Fail(format_syntax_error(&e)),
            None => Fail("yaml: unknown problem parsing YAML content".into()),
        }
    }

    fn peek(&mut self) -> Result<EvType, Fail> {
        if self.event.is_none() {
            match self.parser.parse() {
                Ok(Some(ev)) => self.event = Some(ev),
                Ok(None) => {
                    return Err(Fail(
                        "yaml: attempted to go past the end of stream; corrupted value?".into(),
                    ))
                }
                Err(()) => return Err(self.fail()),
            }
        }
        Ok(self.event.as_ref().map_or(EvType::StreamEnd, |e| e.typ))
    }

    fn expect(&mut self, e: EvType) -> Result<Event, Fail> {
        let t = self.peek()?;
        if t == EvType::StreamEnd && e != EvType::StreamEnd {
            return Err(Fail(
                "yaml: attempted to go past the end of stream; corrupted value?".into(),
            ));
        }
        if t != e {
            return Err(Fail(format!("yaml: expected {e:?} event but got {t:?}")));
        }
        self.event
            .take()
            .ok_or_else(|| Fail("yaml: unknown problem parsing YAML content".into()))
    }

    /// The next document node, or `None` at the end of the stream.
    pub fn next_document(&mut self) -> Result<Option<usize>, Fail> {
        if !self.started {
            self.expect(EvType::StreamStart)?;
            self.started = true;
        }
        match self.peek()? {
            EvType::StreamEnd => Ok(None),
            _ => self.parse_node().map(Some),
        }
    }

    fn push(&mut self, kind: Kind, tag: Tag, style: u8, value: String, ev: &mut Event) -> usize {
        let comments = if ev.head_comment.is_empty() && ev.line_comment.is_empty() && ev.foot_comment.is_empty() {
            None
        } else {
            Some(Box::new(Comments {
                head: bytes_to_string(std::mem::take(&mut ev.head_comment)),
                line: bytes_to_string(std::mem::take(&mut ev.line_comment)),
                foot: bytes_to_string(std::mem::take(&mut ev.foot_comment)),
            }))
        };
        self.nodes.push(Node {
            kind,
            style,
            tag,
            value,
            alias: 0,
            line: ev.start.line + 1,
            comments,
            content: Vec::new(),
            resolved: None,
            anchored: false,
        });
        self.nodes.len() - 1
    }

    /// go-yaml `p.node`: explicit tag wins, else the default, else resolved.
    fn node_tag(ev_tag: &[u8], default: Tag, kind: Kind, value: &str) -> (Tag, u8) {
        if !ev_tag.is_empty() && ev_tag != b"!" {
            (Tag::from_full(&String::from_utf8_lossy(ev_tag)), TAGGED)
        } else if default != Tag::None {
            (default, 0)
        } else if kind == Kind::Scalar {
            (resolve_plain(value).0, 0)
        } else {
            (Tag::None, 0)
        }
    }

    fn set_anchor(&mut self, anchor: Vec<u8>, n: usize) {
        if !anchor.is_empty() {
            self.nodes[n].anchored = true;
            self.anchors.insert(anchor, n);
        }
    }

    fn parse_node(&mut self) -> Result<usize, Fail> {
        // go-yaml allows 10000 levels (Go stacks grow); recursion here is
        // bounded lower so no input can overflow the stack.
        if self.depth >= MAX_NESTING {
            return Err(Fail(format!("yaml: exceeded max depth of {MAX_NESTING}")));
        }
        self.depth += 1;
        let r = self.parse_node_inner();
        self.depth -= 1;
        r
    }

    fn parse_node_inner(&mut self) -> Result<usize, Fail> {
        match self.peek()? {
            EvType::Scalar => self.scalar(),
            EvType::Alias => self.alias(),
            EvType::MappingStart => self.mapping(),
            EvType::SequenceStart => self.sequence(),
            EvType::DocumentStart => self.document(),
            t => Err(Fail(format!("yaml: internal error: unexpected event {t:?}"))),
        }
    }

    fn document(&mut self) -> Result<usize, Fail> {
        let mut ev = self.expect(EvType::DocumentStart)?;
        let n = self.push(Kind::Document, Tag::None, 0, String::new(), &mut ev);
        let child = self.parse_node()?;
        self.nodes[n].content.push(child);
        if self.peek()? == EvType::DocumentEnd {
            if let Some(ev) = self.event.as_mut() {
                let foot = bytes_to_string(std::mem::take(&mut ev.foot_comment));
                self.nodes[n].set_foot(foot);
            }
        }
        self.expect(EvType::DocumentEnd)?;
        Ok(n)
    }

    fn alias(&mut self) -> Result<usize, Fail> {
        let mut ev = self.expect(EvType::Alias)?;
        let name = std::mem::take(&mut ev.anchor);
        let target = match self.anchors.get(&name) {
            Some(&t) => t,
            None => {
                return Err(Fail(format!(
                    "yaml: unknown anchor '{}' referenced",
                    String::from_utf8_lossy(&name)
                )))
            }
        };
        let n = self.push(Kind::Alias, Tag::None, 0, bytes_to_string(name), &mut ev);
        self.nodes[n].alias = target;
        Ok(n)
    }

    fn scalar(&mut self) -> Result<usize, Fail> {
        let mut ev = self.expect(EvType::Scalar)?;
        let style = match ev.style {
            ScalarStyle::DoubleQuoted => DOUBLE_QUOTED,
            ScalarStyle::SingleQuoted => SINGLE_QUOTED,
            ScalarStyle::Literal => LITERAL,
            ScalarStyle::Folded => FOLDED,
            ScalarStyle::Plain => 0,
        };
        let value = bytes_to_string(std::mem::take(&mut ev.value));
        let default = if style == 0 {
            if value == "<<" {
                Tag::Merge
            } else {
                Tag::None
            }
        } else {
            Tag::Str
        };
        let explicit = !ev.tag.is_empty() && ev.tag != b"!";
        let (tag, tstyle, resolved) = if !explicit && default == Tag::None {
            let (t, r) = resolve_plain(&value);
            (t, 0, Some(r))
        } else {
            let (t, st) = Self::node_tag(&ev.tag, default, Kind::Scalar, &value);
            (t, st, None)
        };
        let anchor = std::mem::take(&mut ev.anchor);
        let n = self.push(Kind::Scalar, tag, style | tstyle, value, &mut ev);
        self.nodes[n].resolved = resolved;
        self.set_anchor(anchor, n);
        Ok(n)
    }

    fn sequence(&mut self) -> Result<usize, Fail> {
        let mut ev = self.expect(EvType::SequenceStart)?;
        let (tag, tstyle) = Self::node_tag(&ev.tag, Tag::Seq, Kind::Sequence, "");
        let style = tstyle | if ev.flow { FLOW } else { 0 };
        let anchor = std::mem::take(&mut ev.anchor);
        let n = self.push(Kind::Sequence, tag, style, String::new(), &mut ev);
        self.set_anchor(anchor, n);
        while self.peek()? != EvType::SequenceEnd {
            let c = self.parse_node()?;
            self.nodes[n].content.push(c);
        }
        let mut end = self.expect(EvType::SequenceEnd)?;
        self.nodes[n].set_line(bytes_to_string(std::mem::take(&mut end.line_comment)));
        self.nodes[n].set_foot(bytes_to_string(std::mem::take(&mut end.foot_comment)));
        Ok(n)
    }

    fn mapping(&mut self) -> Result<usize, Fail> {
        let mut ev = self.expect(EvType::MappingStart)?;
        let (tag, tstyle) = Self::node_tag(&ev.tag, Tag::Map, Kind::Mapping, "");
        let block = !ev.flow;
        let style = tstyle | if ev.flow { FLOW } else { 0 };
        let anchor = std::mem::take(&mut ev.anchor);
        let n = self.push(Kind::Mapping, tag, style, String::new(), &mut ev);
        self.set_anchor(anchor, n);
        while self.peek()? != EvType::MappingEnd {
            let k = self.parse_node()?;
            self.nodes[n].content.push(k);
            if block && !self.nodes[k].foot().is_empty() {
                // A foot comment for the prior value when being dedented.
                let len = self.nodes[n].content.len();
                if len > 2 {
                    let prev = self.nodes[n].content[len - 3];
                    let foot = self.nodes[k].take_foot();
                    self.nodes[prev].set_foot(foot);
                }
            }
            let v = self.parse_node()?;
            self.nodes[n].content.push(v);
            if self.nodes[k].foot().is_empty() && !self.nodes[v].foot().is_empty() {
                let foot = self.nodes[v].take_foot();
                self.nodes[k].set_foot(foot);
            }
        }
        let mut end = self.expect(EvType::MappingEnd)?;
        self.nodes[n].set_line(bytes_to_string(std::mem::take(&mut end.line_comment)));
        let foot = bytes_to_string(std::mem::take(&mut end.foot_comment));
        let len = self.nodes[n].content.len();
        if block && !foot.is_empty() && len > 1 {
            let k = self.nodes[n].content[len - 2];
            self.nodes[k].set_foot(foot);
        } else {
            self.nodes[n].set_foot(foot);
        }
        Ok(n)
    }

    // ---------------------------------------------------------------------
    // Node helpers shared by the pre-check and the conversion.

    fn short_tag(&self, n: usize) -> Tag {
        short_tag(&self.nodes, n)
    }

    fn decode_scalar(&self, n: usize) -> Result<Decoded, String> {
        decode_scalar(&self.nodes, n)
    }

    fn is_merge(&self, n: usize) -> bool {
        let node = &self.nodes[n];
        node.kind == Kind::Scalar && node.value == "<<" && (node.tag == Tag::None || node.tag == Tag::Merge)
    }
}

fn short_tag(nodes: &[Node], n: usize) -> Tag {
    let mut n = n;
    let mut guard = 0;
    // Aliases report their target's tag.
    while nodes[n].kind == Kind::Alias && nodes[n].tag == Tag::None && guard < MAX_NESTING * 4 {
        n = nodes[n].alias;
        guard += 1;
    }
    let node = &nodes[n];
    if indicated_string(nodes, n) {
        return Tag::Str;
    }
    if node.tag == Tag::None {
        return match node.kind {
            Kind::Mapping => Tag::Map,
            Kind::Sequence => Tag::Seq,
            Kind::Scalar => resolve_plain(&node.value).0,
            Kind::Alias | Kind::Document => Tag::None,
        };
    }
    node.tag.clone()
}

fn indicated_string(nodes: &[Node], n: usize) -> bool {
    let node = &nodes[n];
    node.kind == Kind::Scalar && (node.tag == Tag::Str || (node.tag == Tag::None && node.style & QUOTED_OR_BLOCK != 0))
}

/// go-yaml `d.scalar` into `interface{}`: the decoded Go value.
fn decode_scalar(nodes: &[Node], n: usize) -> Result<Decoded, String> {
    let node = &nodes[n];
    if indicated_string(nodes, n) {
        return Ok(Decoded::Str);
    }
    if let Some(r) = &node.resolved {
        // Untagged plain scalar: resolved once while composing.
        return Ok(Decoded::R(r.clone()));
    }
    let (tag, r) = resolve(&node.tag, &node.value)?;
    if tag == Tag::Binary {
        return match go_base64_decode(&node.value) {
            Some(b) => Ok(Decoded::Binary(b)),
            None => Err("!!binary value contains invalid base64 data".into()),
        };
    }
    Ok(Decoded::R(r))
}

enum Decoded {
    Str,
    Binary(Vec<u8>),
    R(Resolved),
}

/// Go `base64.StdEncoding.DecodeString`: padding required, `\r`/`\n`
/// ignored, non-zero trailing bits accepted.
pub fn go_base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a') as u32 + 26,
            b'0'..=b'9' => (c - b'0') as u32 + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
    if !clean.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let chunks = clean.len() / 4;
    for (ci, q) in clean.chunks(4).enumerate() {
        let last = ci + 1 == chunks;
        let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v: u32 = 0;
        for &c in &q[..4 - pad] {
            v = (v << 6) | val(c)?;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

// -------------------------------------------------------------------------
// The pre-check: `yaml.NewDecoder(...).Decode(make(map[string]interface{}))`
// on the first document. Only errors matter, so values are not built.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// The top-level `map[string]interface{}`.
    StrMap,
    /// An `interface{}` slot.
    Iface,
    /// A `string` (key of a string map).
    Str,
}

impl Out {
    fn type_name(self) -> &'static str {
        match self {
            Out::StrMap => "map[string]interface {}",
            Out::Iface => "interface {}",
            Out::Str => "string",
        }
    }
}

struct Checker<'c, 'a> {
    c: &'c Composer<'a>,
    terrors: Vec<String>,
    aliases: HashSet<usize, FxBuild>,
    decode_count: u64,
    alias_count: u64,
    alias_depth: u64,
    depth: usize,
}

fn allowed_alias_ratio(decode_count: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decode_count <= LOW {
        0.99
    } else if decode_count >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decode_count - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

impl<'c, 'a> Checker<'c, 'a> {
    fn terror(&mut self, n: usize, tag: &Tag, out: Out, with_value: bool) {
        let node = &self.c.nodes[n];
        let tag = if node.tag != Tag::None { &node.tag } else { tag };
        let mut value = String::new();
        if with_value && *tag != Tag::Seq && *tag != Tag::Map {
            // go-yaml quotes the scalar here; only keys (not secrets) are
            // printed, otherwise the content is left out.
            if out == Out::Str {
                let v = &node.value;
                if v.len() > 10 {
                    value = format!(" `{}...`", String::from_utf8_lossy(&v.as_bytes()[..7]));
                } else {
                    value = format!(" `{v}`");
                }
            }
        }
        self.terrors.push(format!(
            "line {}: cannot unmarshal {}{} into {}",
            node.line,
            tag.name(),
            value,
            out.type_name()
        ));
    }

    fn unmarshal(&mut self, n: usize, out: Out) -> Result<bool, Fail> {
        if self.depth >= MAX_DEPTH {
            return Err(Fail(format!("yaml: exceeded max depth of {MAX_NESTING}")));
        }
        self.depth += 1;
        let r = self.unmarshal_inner(n, out);
        self.depth -= 1;
        r
    }

    fn unmarshal_inner(&mut self, n: usize, out: Out) -> Result<bool, Fail> {
        self.decode_count += 1;
        if self.alias_depth > 0 {
            self.alias_count += 1;
        }
        if self.alias_count > 100
            && self.decode_count > 1000
            && self.alias_count as f64 / self.decode_count as f64 > allowed_alias_ratio(self.decode_count)
        {
            return Err(Fail("yaml: document contains excessive aliasing".into()));
        }
        let node = &self.c.nodes[n];
        match node.kind {
            Kind::Document => {
                if node.content.len() == 1 {
                    self.unmarshal(node.content[0], out)?;
                    return Ok(true);
                }
                Ok(false)
            }
            Kind::Alias => {
                if self.aliases.contains(&n) {
                    return Err(Fail(format!("yaml: anchor '{}' value contains itself", node.value)));
                }
                self.aliases.insert(n);
                self.alias_depth += 1;
                let good = self.unmarshal(node.alias, out)?;
                self.alias_depth -= 1;
                self.aliases.remove(&n);
                Ok(good)
            }
            Kind::Scalar => self.scalar(n, out),
            Kind::Sequence => {
                if out != Out::Iface {
                    self.terror(n, &Tag::Seq, out, false);
                    return Ok(false);
                }
                for &c in &self.c.nodes[n].content {
                    self.unmarshal(c, Out::Iface)?;
                }
                Ok(true)
            }
            Kind::Mapping => self.mapping(n, out),
        }
    }

    fn scalar(&mut self, n: usize, out: Out) -> Result<bool, Fail> {
        let d = self.c.decode_scalar(n).map_err(|e| Fail(format!("yaml: {e}")))?;
        let (tag, is_null) = match &d {
            Decoded::Str => (Tag::Str, false),
            Decoded::Binary(_) => (Tag::Binary, false),
            Decoded::R(r) => (self.c.short_tag(n), *r == Resolved::Null),
        };
        if is_null {
            return Ok(out != Out::Str);
        }
        match out {
            Out::Iface | Out::Str => Ok(true),
            Out::StrMap => {
                self.terror(n, &tag, out, true);
                Ok(false)
            }
        }
    }

    fn mapping(&mut self, n: usize, out: Out) -> Result<bool, Fail> {
        let content = &self.c.nodes[n].content;
        // Unique keys: same kind and same raw value.
        let nerrs = self.terrors.len();
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        if content.len() > 2 {
            // First occurrence of each (kind, value); duplicates are rare, so
            // their full pair list is rebuilt only when one exists.
            let mut seen: HashMap<(u8, &str), usize, FxBuild> =
                HashMap::with_capacity_and_hasher(content.len() / 2, FxBuild::default());
            let mut dup = false;
            for (i, &k) in content.iter().step_by(2).enumerate() {
                let node = &self.c.nodes[k];
                if seen.insert((node.kind as u8, node.value.as_str()), i).is_some() {
                    dup = true;
                }
            }
            if dup {
                let mut groups: HashMap<(u8, &str), Vec<usize>, FxBuild> = HashMap::default();
                for (i, &k) in content.iter().step_by(2).enumerate() {
                    let node = &self.c.nodes[k];
                    let e = groups.entry((node.kind as u8, node.value.as_str())).or_default();
                    for &prev in e.iter() {
                        pairs.push((prev, i));
                    }
                    e.push(i);
                }
            }
        }
        if !pairs.is_empty() {
            pairs.sort_unstable();
            for (i, j) in pairs {
                let ni = &self.c.nodes[content[2 * i]];
                let nj = &self.c.nodes[content[2 * j]];
                self.terrors.push(format!(
                    "line {}: mapping key {} already defined at line {}",
                    nj.line,
                    go_quote(&nj.value),
                    ni.line
                ));
            }
        }
        if self.terrors.len() > nerrs {
            return Ok(false);
        }
        let key_out = match out {
            Out::Str => {
                self.terror(n, &Tag::Map, out, false);
                return Ok(false);
            }
            Out::StrMap => Out::Str,
            Out::Iface => {
                let string_map = content
                    .iter()
                    .step_by(2)
                    .all(|&k| matches!(self.c.short_tag(k), Tag::Str | Tag::Merge));
                if string_map {
                    Out::Str
                } else {
                    Out::Iface
                }
            }
        };
        let mut merge_node = None;
        let mut i = 0;
        while i + 1 < content.len() {
            let (k, v) = (content[i], content[i + 1]);
            i += 2;
            if self.c.is_merge(k) {
                merge_node = Some(v);
                continue;
            }
            if self.unmarshal(k, key_out)? {
                if key_out == Out::Iface {
                    let target = self.deref(k);
                    if matches!(self.c.nodes[target].kind, Kind::Mapping | Kind::Sequence) {
                        return Err(Fail("yaml: invalid map key".into()));
                    }
                }
                self.unmarshal(v, Out::Iface)?;
            }
        }
        if let Some(m) = merge_node {
            self.merge(m, out)?;
        }
        Ok(true)
    }

    fn deref(&self, mut n: usize) -> usize {
        let mut guard = 0;
        while self.c.nodes[n].kind == Kind::Alias && guard < 1000 {
            n = self.c.nodes[n].alias;
            guard += 1;
        }
        n
    }

    fn merge(&mut self, m: usize, out: Out) -> Result<(), Fail> {
        let want_map = || Fail("yaml: map merge requires map or sequence of maps as the value".into());
        let node = &self.c.nodes[m];
        match node.kind {
            Kind::Mapping => {
                self.unmarshal(m, out)?;
            }
            Kind::Alias => {
                if self.c.nodes[node.alias].kind != Kind::Mapping {
                    return Err(want_map());
                }
                self.unmarshal(m, out)?;
            }
            Kind::Sequence => {
                for &ni in node.content.iter().rev() {
                    let nn = &self.c.nodes[ni];
                    if nn.kind == Kind::Alias {
                        if self.c.nodes[nn.alias].kind != Kind::Mapping {
                            return Err(want_map());
                        }
                    } else if nn.kind != Kind::Mapping {
                        return Err(want_map());
                    }
                    self.unmarshal(ni, out)?;
                }
            }
            _ => return Err(want_map()),
        }
        Ok(())
    }
}

/// Go `strconv.Quote` (what `%#v` prints for a string).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximation of Go's `unicode.IsPrint` for the characters YAML allows.
fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..0xa0).contains(&u)
        || u == 0xad
        || (0x2028..=0x2029).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || u == 0xfffe
        || u == 0xffff)
}

// -------------------------------------------------------------------------
// Conversion to the sops tree.

pub struct Converter<'c> {
    nodes: &'c mut [Node],
    /// Set when a value only fits Go's uint64 (sops cannot walk it).
    pub saw_uint64: bool,
    depth: usize,
    visited: u64,
    via_alias: u64,
    alias_depth: u64,
    /// Non-zero inside a subtree that aliases may copy again: its strings
    /// must be cloned there; elsewhere they are moved out of the nodes.
    shared: usize,
}

const MAX_DEPTH: usize = 2 * MAX_NESTING;

fn push_comment_items(comment: &str, branch: &mut Vec<Item>) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split('\n') {
        if !line.is_empty() {
            // sops strips the first byte (the '#').
            branch.push(Item::comment(strip_first_char(line)));
        }
    }
}

fn push_comment_values(comment: &str, list: &mut Vec<Value>) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split('\n') {
        if !line.is_empty() {
            list.push(Value::Comment(strip_first_char(line)));
        }
    }
}

fn strip_first_char(line: &str) -> String {
    let mut it = line.chars();
    it.next();
    it.as_str().to_string()
}

fn deref(nodes: &[Node], mut n: usize) -> usize {
    let mut guard = 0;
    while nodes[n].kind == Kind::Alias && guard < MAX_DEPTH {
        n = nodes[n].alias;
        guard += 1;
    }
    n
}

impl<'c> Converter<'c> {
    pub fn new(nodes: &'c mut [Node]) -> Converter<'c> {
        Converter {
            nodes,
            saw_uint64: false,
            depth: 0,
            visited: 0,
            via_alias: 0,
            alias_depth: 0,
            shared: 0,
        }
    }

    fn enter(&mut self) -> Result<(), Fail> {
        // Alias expansion is a deep copy: refuse exponential blow-ups the
        // way go-yaml's decoder does.
        self.visited += 1;
        if self.alias_depth > 0 {
            self.via_alias += 1;
        }
        if self.via_alias > 100
            && self.visited > 1000
            && self.via_alias as f64 / self.visited as f64 > allowed_alias_ratio(self.visited)
        {
            return Err(Fail(
                "Error unmarshaling input YAML: yaml: document contains excessive aliasing".into(),
            ));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            // sops would recurse forever on a self-referencing alias.
            return Err(Fail(
                "Error unmarshaling input YAML: yaml: anchor value contains itself".into(),
            ));
        }
        Ok(())
    }

    pub fn document(&mut self, doc: usize) -> Result<Branch, Fail> {
        let mut items = Vec::new();
        self.append_branch(doc, &mut items, false)?;
        Ok(Branch(items))
    }

    /// The node's text, moved out when no alias can need it again.
    fn take_text(&mut self, n: usize) -> String {
        if self.shared == 0 {
            std::mem::take(&mut self.nodes[n].value)
        } else {
            self.nodes[n].value.clone()
        }
    }

    fn node_to_value(&mut self, n: usize, handled: bool) -> Result<Value, Fail> {
        self.enter()?;
        let anchored = self.nodes[n].anchored;
        if anchored {
            self.shared += 1;
        }
        let r = self.node_to_value_inner(n, handled);
        if anchored {
            self.shared -= 1;
        }
        self.depth -= 1;
        r
    }

    fn node_to_value_inner(&mut self, n: usize, handled: bool) -> Result<Value, Fail> {
        match self.nodes[n].kind {
            Kind::Document => Ok(Value::Null),
            Kind::Sequence => {
                let len = self.nodes[n].content.len();
                let mut list = Vec::with_capacity(len);
                if !handled {
                    push_comment_values(self.nodes[n].head(), &mut list);
                    push_comment_values(self.nodes[n].line_comment(), &mut list);
                }
                for idx in 0..len {
                    let item = self.nodes[n].content[idx];
                    push_comment_values(self.nodes[item].head(), &mut list);
                    push_comment_values(self.nodes[item].line_comment(), &mut list);
                    let v = self.node_to_value(item, true)?;
                    list.push(v);
                    push_comment_values(self.nodes[item].foot(), &mut list);
                }
                if !handled {
                    push_comment_values(self.nodes[n].foot(), &mut list);
                }
                Ok(Value::List(list))
            }
            Kind::Mapping => {
                let mut items = Vec::with_capacity(self.nodes[n].content.len() / 2);
                self.append_branch(n, &mut items, handled)?;
                Ok(Value::Map(Branch(items)))
            }
            Kind::Scalar => Ok(self.scalar_value(n)),
            Kind::Alias => {
                let target = self.nodes[n].alias;
                self.alias_depth += 1;
                self.shared += 1;
                let v = self.node_to_value(target, false);
                self.shared -= 1;
                self.alias_depth -= 1;
                v
            }
        }
    }

    fn scalar_value(&mut self, n: usize) -> Value {
        // sops ignores decode errors here: the value stays nil.
        match decode_scalar(self.nodes, n) {
            Err(_) => Value::Null,
            Ok(Decoded::Str) | Ok(Decoded::R(Resolved::Str)) => Value::Str(self.take_text(n)),
            Ok(Decoded::Binary(b)) => match String::from_utf8(b) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Bytes(e.into_bytes()),
            },
            Ok(Decoded::R(r)) => match r {
                Resolved::Null => Value::Null,
                Resolved::Bool(b) => Value::Bool(b),
                Resolved::Int(i) => Value::Int(i),
                Resolved::Uint(_) => {
                    self.saw_uint64 = true;
                    Value::Null
                }
                Resolved::Float(f) => Value::Float(f),
                Resolved::Str => Value::Str(self.take_text(n)),
                Resolved::Time(t) => Value::Time(t),
            },
        }
    }

    /// sops `key.Decode(&keyValue)`: a string key or a typed non-string one.
    fn key_of(&mut self, k: usize) -> Result<Key, Fail> {
        let target = deref(self.nodes, k);
        let via_alias = target != k;
        let text_of = |nodes: &[Node]| nodes[target].value.clone();
        match self.nodes[target].kind {
            Kind::Scalar => {
                let d = decode_scalar(self.nodes, target);
                Ok(match d {
                    Err(_) => Key::NonString {
                        type_name: "<nil>",
                        text: text_of(self.nodes),
                    },
                    Ok(Decoded::Str) | Ok(Decoded::R(Resolved::Str)) => {
                        if via_alias || self.nodes[target].anchored {
                            Key::Str(text_of(self.nodes))
                        } else {
                            Key::Str(self.take_text(target))
                        }
                    }
                    Ok(Decoded::Binary(b)) => match String::from_utf8(b) {
                        Ok(s) => Key::Str(s),
                        Err(e) => Key::NonString {
                            type_name: "string",
                            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                        },
                    },
                    Ok(Decoded::R(r)) => {
                        let type_name = match r {
                            Resolved::Null => "<nil>",
                            Resolved::Bool(_) => "bool",
                            Resolved::Int(_) => "int",
                            Resolved::Uint(_) => "uint64",
                            Resolved::Float(_) => "float64",
                            Resolved::Time(_) => "time.Time",
                            Resolved::Str => "string",
                        };
                        Key::NonString {
                            type_name,
                            text: text_of(self.nodes),
                        }
                    }
                })
            }
            Kind::Mapping => {
                let string_map = self.nodes[target]
                    .content
                    .iter()
                    .step_by(2)
                    .all(|&kk| matches!(short_tag(self.nodes, kk), Tag::Str | Tag::Merge));
                let type_name = if string_map {
                    "map[string]interface {}"
                } else {
                    "map[interface {}]interface {}"
                };
                Ok(Key::NonString {
                    type_name,
                    text: String::new(),
                })
            }
            Kind::Sequence => Ok(Key::NonString {
                type_name: "[]interface {}",
                text: String::new(),
            }),
            _ => Ok(Key::NonString {
                type_name: "<nil>",
                text: String::new(),
            }),
        }
    }

    fn append_branch(&mut self, n: usize, items: &mut Vec<Item>, handled: bool) -> Result<(), Fail> {
        self.enter()?;
        let anchored = self.nodes[n].anchored;
        if anchored {
            self.shared += 1;
        }
        let r = self.append_branch_inner(n, items, handled);
        if anchored {
            self.shared -= 1;
        }
        self.depth -= 1;
        r
    }

    fn append_branch_inner(&mut self, n: usize, items: &mut Vec<Item>, handled: bool) -> Result<(), Fail> {
        if !handled {
            push_comment_items(self.nodes[n].head(), items);
            push_comment_items(self.nodes[n].line_comment(), items);
        }
        match self.nodes[n].kind {
            Kind::Document => {
                for idx in 0..self.nodes[n].content.len() {
                    let c = self.nodes[n].content[idx];
                    self.append_branch(c, items, false)?;
                }
            }
            Kind::Sequence => {
                return Err(Fail(
                    "Error unmarshaling input YAML: YAML documents that are sequences are not supported".into(),
                ))
            }
            Kind::Mapping => {
                let len = self.nodes[n].content.len();
                let mut i = 0;
                while i + 1 < len {
                    let (k, v) = (self.nodes[n].content[i], self.nodes[n].content[i + 1]);
                    i += 2;
                    push_comment_items(self.nodes[k].head(), items);
                    push_comment_items(self.nodes[k].line_comment(), items);
                    let handle_value_comments = matches!(self.nodes[v].kind, Kind::Scalar | Kind::Alias);
                    if handle_value_comments {
                        push_comment_items(self.nodes[v].head(), items);
                        push_comment_items(self.nodes[v].line_comment(), items);
                    }
                    let key = self.key_of(k)?;
                    let value = self.node_to_value(v, handle_value_comments)?;
                    items.push(Item { key, value });
                    if handle_value_comments {
                        push_comment_items(self.nodes[v].foot(), items);
                    }
                    push_comment_items(self.nodes[k].foot(), items);
                }
            }
            Kind::Scalar => {
                // An empty document (`---` alone) is a null scalar.
                if short_tag(self.nodes, n) == Tag::Null {
                    return Ok(());
                }
                return Err(Fail(
                    "Error unmarshaling input YAML: YAML documents that are values are not supported".into(),
                ));
            }
            Kind::Alias => {
                let target = self.nodes[n].alias;
                self.alias_depth += 1;
                self.shared += 1;
                let r = self.append_branch(target, items, false);
                self.shared -= 1;
                self.alias_depth -= 1;
                r?;
            }
        }
        if !handled {
            push_comment_items(self.nodes[n].foot(), items);
        }
        Ok(())
    }
}

/// Runs sops' pre-check on the first document.
pub fn precheck(c: &Composer, doc: usize) -> Result<(), Fail> {
    let mut ck = Checker {
        c,
        terrors: Vec::new(),
        aliases: HashSet::default(),
        decode_count: 0,
        alias_count: 0,
        alias_depth: 0,
        depth: 0,
    };
    ck.unmarshal(doc, Out::StrMap)?;
    if !ck.terrors.is_empty() {
        return Err(Fail(format!("yaml: unmarshal errors:\n  {}", ck.terrors.join("\n  "))));
    }
    Ok(())
}
