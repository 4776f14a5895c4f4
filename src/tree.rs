//! The document model shared by every store: an ordered tree of branches,
//! typed scalars and comment items (spec §1).
//!
//! Plaintext lives in these types, so they never print their content through
//! `Debug` and a [`Document`] wipes every string it holds when dropped.

use std::fmt;
use zeroize::Zeroize;

/// A mapping key: a real string key, a comment stored in key position, or a
/// key of another YAML type (`1:`, `true:`), which sops refuses to encrypt.
#[derive(Clone, PartialEq)]
pub enum Key {
    Str(String),
    /// Comment text without the leading `#` (usually starts with a space).
    Comment(String),
    /// A key that resolved to a non-string scalar; `type_name` is the Go type
    /// sops reports (`int`, `bool`, `float64`, `<nil>`, ...), `text` its source.
    NonString {
        type_name: &'static str,
        text: String,
    },
}

impl Key {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Key::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_comment(&self) -> bool {
        matches!(self, Key::Comment(_))
    }
}

/// One entry of a mapping. Comment entries have `Key::Comment` and a `Null` value.
#[derive(Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub value: Value,
}

impl Item {
    pub fn new(key: impl Into<String>, value: Value) -> Item {
        Item {
            key: Key::Str(key.into()),
            value,
        }
    }
    pub fn comment(text: impl Into<String>) -> Item {
        Item {
            key: Key::Comment(text.into()),
            value: Value::Null,
        }
    }
}

/// An ordered mapping (sops' `TreeBranch`). Duplicate keys are representable
/// (JSON keeps them) and order is significant: it drives the MAC.
#[derive(Clone, PartialEq, Default)]
pub struct Branch(pub Vec<Item>);

impl Branch {
    pub fn new() -> Branch {
        Branch(Vec::new())
    }
    /// The first item whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|i| i.key.as_str() == Some(key)).map(|i| &i.value)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.0
            .iter_mut()
            .find(|i| i.key.as_str() == Some(key))
            .map(|i| &mut i.value)
    }
    pub fn position(&self, key: &str) -> Option<usize> {
        self.0.iter().position(|i| i.key.as_str() == Some(key))
    }
    pub fn push(&mut self, key: impl Into<String>, value: Value) {
        self.0.push(Item::new(key, value));
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A value in the tree (spec §1, §2.3).
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Str(String),
    /// A string that is not valid UTF-8 (binary store, YAML `!!binary`).
    /// Encrypted with type `str`, like Go's byte strings.
    Bytes(Vec<u8>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A YAML timestamp, held in its canonical RFC 3339 (Go `RFC3339Nano`) text.
    Time(String),
    Map(Branch),
    List(Vec<Value>),
    /// A comment inside a list (comments in mappings are [`Key::Comment`] items).
    Comment(String),
}

impl Value {
    /// The name used in error messages about unsupported types.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Str(_) | Value::Bytes(_) => "string",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time.Time",
            Value::Map(_) => "map",
            Value::List(_) => "list",
            Value::Comment(_) => "comment",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Map(_) | Value::List(_))
    }
}

impl fmt::Debug for Value {
    // Never print plaintext: only the shape.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Str(s) => write!(f, "Str(<{} bytes>)", s.len()),
            Value::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Value::Int(_) => f.write_str("Int(<redacted>)"),
            Value::Float(_) => f.write_str("Float(<redacted>)"),
            Value::Bool(_) => f.write_str("Bool(<redacted>)"),
            Value::Time(_) => f.write_str("Time(<redacted>)"),
            Value::Map(b) => f.debug_tuple("Map").field(b).finish(),
            Value::List(l) => f.debug_tuple("List").field(l).finish(),
            Value::Comment(c) => write!(f, "Comment(<{} bytes>)", c.len()),
        }
    }
}

impl fmt::Debug for Key {
    // Keys are not secret (they stay in cleartext in the file); comments may be.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => write!(f, "{s:?}"),
            Key::Comment(c) => write!(f, "Comment(<{} bytes>)", c.len()),
            Key::NonString { type_name, .. } => write!(f, "NonString({type_name})"),
        }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:?}", self.key, self.value)
    }
}

impl fmt::Debug for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// Overwrite a buffer's whole allocation with zeros and empty it. A plain
/// memset kept alive with `black_box`: the zeroize crate's byte-by-byte
/// volatile loop was a measurable share of decrypting large files.
pub fn wipe_vec(v: &mut Vec<u8>) {
    v.fill(0);
    for b in v.spare_capacity_mut() {
        b.write(0);
    }
    std::hint::black_box(v.as_ptr());
    v.clear();
}

/// Overwrite a buffer's bytes (not its spare capacity) with zeros and
/// empty it: for a buffer only ever appended to, or cut back with its cut
/// part wiped first, whose spare capacity never held plaintext. Wiping
/// that too would touch pages never used, each a page fault.
pub fn wipe_written(v: &mut Vec<u8>) {
    v.fill(0);
    std::hint::black_box(v.as_ptr());
    v.clear();
}

/// Make room for `additional` more bytes in a buffer that may hold
/// plaintext: a plain reallocation would free the old buffer unwiped.
pub fn reserve_wiped(v: &mut Vec<u8>, additional: usize) {
    if v.capacity() - v.len() >= additional {
        return;
    }
    let mut grown = Vec::with_capacity(v.len().saturating_add(additional).max(v.capacity().saturating_mul(2)));
    grown.extend_from_slice(v);
    wipe_vec(v);
    *v = grown;
}

/// A byte buffer that may hold plaintext, wiped with [`wipe_vec`] (one
/// memset over the whole allocation) when dropped.
#[derive(Default)]
pub struct WipedBytes(pub Vec<u8>);

impl WipedBytes {
    pub fn with_capacity(n: usize) -> WipedBytes {
        WipedBytes(Vec::with_capacity(n))
    }

    /// The bytes, no longer wiped when dropped: for what turned out to be
    /// no secret (an encrypted file as it is on disk).
    pub fn into_unwiped(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for WipedBytes {
    fn drop(&mut self) {
        wipe_vec(&mut self.0);
    }
}

impl std::ops::Deref for WipedBytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for WipedBytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

/// [`wipe_vec`] for a string (zero bytes are valid UTF-8).
pub fn wipe_string(s: &mut String) {
    let mut bytes = std::mem::take(s).into_bytes();
    wipe_vec(&mut bytes);
}

/// [`wipe_string`] that keeps the (now zeroed and empty) allocation, so a
/// whole tree can be wiped without freeing it piece by piece.
fn wipe_string_in_place(s: &mut String) {
    let mut bytes = std::mem::take(s).into_bytes();
    wipe_vec(&mut bytes);
    *s = String::from_utf8(bytes).expect("an empty buffer is valid UTF-8");
}

impl Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => wipe_string_in_place(s),
            Value::Bytes(b) => wipe_vec(b),
            Value::Int(i) => i.zeroize(),
            Value::Float(x) => x.zeroize(),
            Value::Bool(b) => *b = false,
            Value::Map(b) => b.zeroize(),
            Value::List(l) => l.iter_mut().for_each(Zeroize::zeroize),
            Value::Null => {}
        }
    }
}

impl Zeroize for Branch {
    fn zeroize(&mut self) {
        for item in &mut self.0 {
            if let Key::Comment(c) = &mut item.key {
                wipe_string_in_place(c);
            }
            item.value.zeroize();
        }
    }
}

/// A whole file: one branch per document (only YAML has more than one).
/// Wipes all plaintext it holds when dropped.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct Document {
    pub branches: Vec<Branch>,
}

impl Document {
    pub fn new(branches: Vec<Branch>) -> Document {
        Document { branches }
    }

    /// For the end of a command, when the process exits next: wipe every
    /// string, then leave the memory to the exit instead of freeing 100k
    /// allocations one by one.
    pub fn wipe_and_forget(mut self) {
        self.branches.iter_mut().for_each(Zeroize::zeroize);
        std::mem::forget(self);
    }

    /// [`Self::wipe_and_forget`] without the wipe, for a tree that holds no
    /// secret (an encrypted tree: each plaintext was wiped as it was
    /// replaced; what is left is printed in the output anyway).
    pub fn forget_without_wiping(self) {
        std::mem::forget(self);
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        self.branches.iter_mut().for_each(Zeroize::zeroize);
    }
}
