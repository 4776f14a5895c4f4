//! Streaming load: parser events → sops tree in one pass, without the
//! intermediate node tree, the separate pre-check walk and the conversion
//! walk of `compose.rs`.
//!
//! It covers the documents sops files are made of (block/flow mappings and
//! sequences of untagged scalars with comments) and reproduces exactly what
//! the composer + pre-check + converter produce for them, including go-yaml's
//! foot-comment moves. Anything else (anchors, aliases, tags, merge keys,
//! collection keys, duplicate keys in the first document, non-mapping
//! documents, uint64 values, any syntax error) makes it give up with
//! [`Bail`]; the caller then runs the reference path, which produces the
//! identical result or error.

use super::parser::{EvType, Event, Parser};
use super::resolve::{resolve_plain, Resolved};
use super::scanner::ScalarStyle;
use super::FxBuild;
use crate::tree::{Branch, Item, Key, Value};
use std::collections::HashSet;

/// The input is outside what the streaming path handles.
pub struct Bail;

type R<T> = Result<T, Bail>;

/// Nesting beyond which the streaming path defers to the reference one.
const MAX_FAST_DEPTH: usize = 100;

enum Kind {
    /// A scalar, with its text kept for key use and its decoded value.
    Scalar(String, Resolved),
    Map(Vec<Item>),
    List(Vec<Value>),
}

/// One composed node: its content plus its own comments as the composer
/// leaves them (the parent may still move foot comments around).
struct Built {
    kind: Kind,
    head: Vec<u8>,
    line: Vec<u8>,
    foot: Vec<u8>,
}

fn push_comment_items(comment: &[u8], items: &mut Vec<Item>) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split(|&b| b == b'\n') {
        if !line.is_empty() {
            items.push(Item {
                key: Key::Comment(strip_first_char(line)),
                value: Value::Null,
            });
        }
    }
}

fn push_comment_values(comment: &[u8], list: &mut Vec<Value>) {
    if comment.is_empty() {
        return;
    }
    for line in comment.split(|&b| b == b'\n') {
        if !line.is_empty() {
            list.push(Value::Comment(strip_first_char(line)));
        }
    }
}

/// sops strips the first character (the `#`) of each comment line.
fn strip_first_char(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    let mut it = s.chars();
    it.next();
    it.as_str().to_string()
}

fn to_string(v: Vec<u8>) -> String {
    match String::from_utf8(v) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

pub(super) fn scalar_value(text: String, r: Resolved) -> Value {
    match r {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Int(i),
        Resolved::Float(f) => Value::Float(f),
        Resolved::Time(t) => Value::Time(t),
        // Uint never gets here (it bails).
        Resolved::Str | Resolved::Uint(_) => Value::Str(text),
    }
}

/// A key text as the duplicate check sees it (node value).
fn key_text(k: &Key) -> Option<&str> {
    match k {
        Key::Str(s) => Some(s),
        Key::NonString { text, .. } => Some(text),
        Key::Comment(_) => None,
    }
}

pub(super) fn has_duplicate_keys(items: &[Item]) -> bool {
    let n = items.iter().filter(|i| !i.key.is_comment()).count();
    if n < 2 {
        return false;
    }
    if n <= 8 {
        let keys: Vec<&str> = items.iter().filter_map(|i| key_text(&i.key)).collect();
        for (a, ka) in keys.iter().enumerate() {
            if keys[a + 1..].contains(ka) {
                return true;
            }
        }
        return false;
    }
    let mut seen: HashSet<&str, FxBuild> = HashSet::with_capacity_and_hasher(n, FxBuild::default());
    items.iter().filter_map(|i| key_text(&i.key)).any(|k| !seen.insert(k))
}

impl Built {
    /// The value with the node's own comments placed inside it, as the
    /// converter does for a mapping value (`handled == false`).
    fn into_value(self, handled: bool) -> Value {
        match self.kind {
            Kind::Scalar(text, r) => scalar_value(text, r),
            Kind::Map(mut inner) => {
                if !handled {
                    if !self.head.is_empty() || !self.line.is_empty() {
                        let mut pre = Vec::new();
                        push_comment_items(&self.head, &mut pre);
                        push_comment_items(&self.line, &mut pre);
                        inner.splice(0..0, pre);
                    }
                    push_comment_items(&self.foot, &mut inner);
                }
                Value::Map(Branch(inner))
            }
            Kind::List(mut inner) => {
                if !handled {
                    if !self.head.is_empty() || !self.line.is_empty() {
                        let mut pre = Vec::new();
                        push_comment_values(&self.head, &mut pre);
                        push_comment_values(&self.line, &mut pre);
                        inner.splice(0..0, pre);
                    }
                    push_comment_values(&self.foot, &mut inner);
                }
                Value::List(inner)
            }
        }
    }
}

struct Pair {
    k: Built,
    v: Built,
}

pub struct Fast<'a> {
    parser: Parser<'a>,
    event: Option<Event>,
    depth: usize,
    /// Inside the first document: the pre-check's duplicate-key rule applies.
    first_doc: bool,
}

impl<'a> Fast<'a> {
    pub fn new(input: &'a [u8]) -> Fast<'a> {
        Fast {
            parser: Parser::new(input),
            event: None,
            depth: 0,
            first_doc: true,
        }
    }

    fn peek(&mut self) -> R<EvType> {
        if self.event.is_none() {
            match self.parser.parse() {
                Ok(Some(ev)) => self.event = Some(ev),
                _ => return Err(Bail),
            }
        }
        self.event.as_ref().map(|e| e.typ).ok_or(Bail)
    }

    fn expect(&mut self, t: EvType) -> R<Event> {
        if self.peek()? != t {
            return Err(Bail);
        }
        self.event.take().ok_or(Bail)
    }

    /// All documents, or `Bail`.
    pub fn load(mut self) -> R<Vec<Branch>> {
        self.expect(EvType::StreamStart)?;
        let mut docs = Vec::new();
        loop {
            match self.peek()? {
                EvType::StreamEnd => break,
                EvType::DocumentStart => {
                    docs.push(self.document()?);
                    self.first_doc = false;
                }
                _ => return Err(Bail),
            }
        }
        if docs.is_empty() {
            // "EOF": the reference path reports it.
            return Err(Bail);
        }
        Ok(docs)
    }

    fn document(&mut self) -> R<Branch> {
        let ev = self.expect(EvType::DocumentStart)?;
        if self.peek()? != EvType::MappingStart {
            return Err(Bail);
        }
        let root = self.node()?;
        let end = self.expect(EvType::DocumentEnd)?;
        let mut items = Vec::new();
        push_comment_items(&ev.head_comment, &mut items);
        push_comment_items(&ev.line_comment, &mut items);
        let root = root.into_value(false);
        match root {
            Value::Map(Branch(inner)) => {
                if items.is_empty() {
                    items = inner;
                } else {
                    items.extend(inner);
                }
            }
            _ => return Err(Bail),
        }
        push_comment_items(&end.foot_comment, &mut items);
        Ok(Branch(items))
    }

    fn node(&mut self) -> R<Built> {
        // Deeper documents (rare) go to the reference path, whose frames are
        // smaller; this keeps stack use low even in debug builds.
        if self.depth >= MAX_FAST_DEPTH {
            return Err(Bail);
        }
        self.depth += 1;
        let r = match self.peek()? {
            EvType::Scalar => self.scalar(),
            EvType::MappingStart => self.mapping(),
            EvType::SequenceStart => self.sequence(),
            _ => Err(Bail),
        };
        self.depth -= 1;
        r
    }

    fn scalar(&mut self) -> R<Built> {
        let ev = self.expect(EvType::Scalar)?;
        if !ev.anchor.is_empty() || !ev.tag.is_empty() {
            return Err(Bail);
        }
        let text = to_string(ev.value);
        let r = if ev.style == ScalarStyle::Plain {
            if text == "<<" {
                return Err(Bail);
            }
            let (_, r) = resolve_plain(&text);
            if matches!(r, Resolved::Uint(_)) {
                return Err(Bail);
            }
            r
        } else {
            Resolved::Str
        };
        Ok(Built {
            kind: Kind::Scalar(text, r),
            head: ev.head_comment,
            line: ev.line_comment,
            foot: ev.foot_comment,
        })
    }

    fn sequence(&mut self) -> R<Built> {
        let ev = self.expect(EvType::SequenceStart)?;
        if !ev.anchor.is_empty() || !ev.tag.is_empty() {
            return Err(Bail);
        }
        let mut list = Vec::new();
        while self.peek()? != EvType::SequenceEnd {
            let mut c = self.node()?;
            push_comment_values(&c.head, &mut list);
            push_comment_values(&c.line, &mut list);
            let foot = std::mem::take(&mut c.foot);
            list.push(c.into_value(true));
            push_comment_values(&foot, &mut list);
        }
        let end = self.expect(EvType::SequenceEnd)?;
        Ok(Built {
            kind: Kind::List(list),
            head: ev.head_comment,
            line: end.line_comment,
            foot: end.foot_comment,
        })
    }

    fn finish_pair(p: Pair, items: &mut Vec<Item>) {
        let Pair { k, mut v } = p;
        push_comment_items(&k.head, items);
        push_comment_items(&k.line, items);
        let scalar = matches!(v.kind, Kind::Scalar(..));
        let key = match k.kind {
            Kind::Scalar(text, r) => match r {
                Resolved::Str => Key::Str(text),
                other => {
                    let type_name = match other {
                        Resolved::Null => "<nil>",
                        Resolved::Bool(_) => "bool",
                        Resolved::Int(_) => "int",
                        Resolved::Uint(_) => "uint64",
                        Resolved::Float(_) => "float64",
                        Resolved::Time(_) => "time.Time",
                        Resolved::Str => "string",
                    };
                    Key::NonString { type_name, text }
                }
            },
            // Collection keys bail before getting here.
            _ => Key::NonString {
                type_name: "<nil>",
                text: String::new(),
            },
        };
        if scalar {
            push_comment_items(&v.head, items);
            push_comment_items(&v.line, items);
            let foot = std::mem::take(&mut v.foot);
            items.push(Item {
                key,
                value: v.into_value(true),
            });
            push_comment_items(&foot, items);
        } else {
            items.push(Item {
                key,
                value: v.into_value(false),
            });
        }
        push_comment_items(&k.foot, items);
    }

    fn mapping(&mut self) -> R<Built> {
        let ev = self.expect(EvType::MappingStart)?;
        if !ev.anchor.is_empty() || !ev.tag.is_empty() {
            return Err(Bail);
        }
        let block = !ev.flow;
        let mut items: Vec<Item> = Vec::new();
        let mut pending: Option<Pair> = None;
        while self.peek()? != EvType::MappingEnd {
            let mut k = self.node()?;
            if !matches!(k.kind, Kind::Scalar(..)) {
                return Err(Bail);
            }
            if block && !k.foot.is_empty() {
                // A foot comment for the prior key when being dedented
                // (go-yaml: `n.Content[len(n.Content)-3]`).
                if let Some(p) = pending.as_mut() {
                    p.k.foot = std::mem::take(&mut k.foot);
                }
            }
            if let Some(p) = pending.take() {
                Self::finish_pair(p, &mut items);
            }
            let mut v = self.node()?;
            if k.foot.is_empty() && !v.foot.is_empty() {
                k.foot = std::mem::take(&mut v.foot);
            }
            pending = Some(Pair { k, v });
        }
        let end = self.expect(EvType::MappingEnd)?;
        let mut foot = end.foot_comment;
        if block && !foot.is_empty() {
            if let Some(p) = pending.as_mut() {
                p.k.foot = std::mem::take(&mut foot);
            }
        }
        if let Some(p) = pending.take() {
            Self::finish_pair(p, &mut items);
        }
        if self.first_doc && has_duplicate_keys(&items) {
            return Err(Bail);
        }
        Ok(Built {
            kind: Kind::Map(items),
            head: ev.head_comment,
            line: end.line_comment,
            foot,
        })
    }
}
