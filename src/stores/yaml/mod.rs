//! The YAML store (spec §8.2): go-yaml v3 behaviour as sops 3.11 uses it.
//!
//! `load` = go-yaml scanner/parser/composer ports + sops' first-document
//! pre-check + sops' node → tree conversion (the reference); `fast` does the
//! same in one streaming pass for common documents and `direct` reads the
//! plainest ones line by line, each giving up to the next for anything it
//! does not cover. `emit` = sops' tree → node conversion + a port of
//! go-yaml's emitter.

mod compose;
mod direct;
mod emit;
mod fast;
mod parser;
mod resolve;
mod scanner;
mod split;

pub use emit::DocumentStream;

use super::{Store, StoreError};
use crate::swar;
use crate::tree::{Branch, Value};
use compose::{precheck, Composer, Converter};

/// YAML store with sops' `indent` setting (default 4).
#[derive(Clone, Debug)]
pub struct YamlStore {
    pub indent: usize,
}

impl Default for YamlStore {
    fn default() -> Self {
        YamlStore { indent: 4 }
    }
}

impl YamlStore {
    /// sops' rule: negative is an error, 0 means the default 4, anything
    /// outside 2..=9 is silently turned into 2 by the emitter.
    pub fn new(indent: i64) -> Result<YamlStore, StoreError> {
        if indent < 0 {
            return Err(StoreError::new("YAML Negative indentation not accepted"));
        }
        let indent = if indent == 0 {
            4
        } else if !(2..=9).contains(&indent) {
            2
        } else {
            indent as usize
        };
        Ok(YamlStore { indent })
    }
}

/// The message sops prints when a value only fits Go's uint64; sops fails
/// when walking the tree (encrypt/decrypt), exit code 23.
pub const UINT64_ERROR: &str = "Cannot walk value, unknown type: uint64";

/// go-yaml's reader: BOM handling, UTF-8 validation and the printable-
/// character check, done up front.
fn prepare_input(input: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, StoreError> {
    use std::borrow::Cow;
    let data: Cow<[u8]> = if let Some(rest) = input.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Cow::Borrowed(rest)
    } else if input.starts_with(&[0xFF, 0xFE]) || input.starts_with(&[0xFE, 0xFF]) {
        let le = input[0] == 0xFF;
        let units: Vec<u16> = input[2..]
            .chunks(2)
            .map(|c| {
                let (a, b) = (c[0], *c.get(1).unwrap_or(&0));
                if le {
                    u16::from_le_bytes([a, b])
                } else {
                    u16::from_be_bytes([a, b])
                }
            })
            .collect();
        if !(input.len() - 2).is_multiple_of(2) {
            return Err(StoreError::new("yaml: incomplete UTF-16 character"));
        }
        let mut s = String::with_capacity(units.len());
        for r in char::decode_utf16(units) {
            match r {
                Ok(c) => s.push(c),
                Err(_) => return Err(StoreError::new("yaml: invalid UTF-16 surrogate pair")),
            }
        }
        Cow::Owned(s.into_bytes())
    } else {
        Cow::Borrowed(input)
    };
    validate(&data)?;
    Ok(data)
}

fn validate(b: &[u8]) -> Result<(), StoreError> {
    let err = |m: &str| Err(StoreError::new(format!("yaml: {m}")));
    let mut i = 0;
    while i < b.len() {
        // Skip printable ASCII many bytes at a time.
        i = swar::scan_for(
            b,
            i,
            swar::Stops {
                eq: [0x7F],
                below: 0x20,
                high: true,
            },
        );
        let Some(&c) = b.get(i) else { break };
        // Fast path for printable ASCII and common whitespace.
        if (0x20..0x7F).contains(&c) || c == b'\n' || c == b'\t' || c == b'\r' {
            i += 1;
            continue;
        }
        let w = if c & 0x80 == 0 {
            1
        } else if c & 0xE0 == 0xC0 {
            2
        } else if c & 0xF0 == 0xE0 {
            3
        } else if c & 0xF8 == 0xF0 {
            4
        } else {
            return err("invalid leading UTF-8 octet");
        };
        if i + w > b.len() {
            return err("incomplete UTF-8 octet sequence");
        }
        let mut v: u32 = match w {
            1 => (c & 0x7F) as u32,
            2 => (c & 0x1F) as u32,
            3 => (c & 0x0F) as u32,
            _ => (c & 0x07) as u32,
        };
        for k in 1..w {
            let o = b[i + k];
            if o & 0xC0 != 0x80 {
                return err("invalid trailing UTF-8 octet");
            }
            v = (v << 6) + (o & 0x3F) as u32;
        }
        let ok_len = (w == 1) || (w == 2 && v >= 0x80) || (w == 3 && v >= 0x800) || (w == 4 && v >= 0x10000);
        if !ok_len {
            return err("invalid length of a UTF-8 sequence");
        }
        if (0xD800..=0xDFFF).contains(&v) || v > 0x10FFFF {
            return err("invalid Unicode character");
        }
        let allowed = v == 0x09
            || v == 0x0A
            || v == 0x0D
            || (0x20..=0x7E).contains(&v)
            || v == 0x85
            || (0xA0..=0xD7FF).contains(&v)
            || (0xE000..=0xFFFD).contains(&v)
            || (0x10000..=0x10FFFF).contains(&v);
        if !allowed {
            return err("control characters are not allowed");
        }
        i += w;
    }
    Ok(())
}

impl Store for YamlStore {
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError> {
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let data = prepare_input(input)?;
        if let Some(branches) = split::load(&data) {
            return Ok(branches);
        }
        if let Some(branch) = direct::load(&data) {
            return Ok(vec![branch]);
        }
        if let Ok(branches) = fast::Fast::new(&data).load() {
            return Ok(branches);
        }
        load_reference(&data)
    }

    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError> {
        Ok(emit::emit_documents(branches, self.indent))
    }

    fn emit_value(&self, value: &Value) -> Result<Vec<u8>, StoreError> {
        // sops' EmitValue uses yaml.Marshal, i.e. go-yaml's default indent.
        Ok(emit::emit_single_value(value, 4))
    }

    fn emit_to(&self, branches: &[Branch], out: &mut dyn std::io::Write) -> Result<(), super::EmitError> {
        // YAML emission cannot fail, so streaming never leaves half a file
        // behind a store error.
        emit::emit_documents_to(branches, self.indent, out).map_err(super::EmitError::Write)
    }
}

/// Whether a large file may be cut before the line starting at `start`
/// (see `split`); `data` may end early (then fewer cuts are found).
pub fn is_piece_start(data: &[u8], start: usize) -> bool {
    split::is_cut_line(data, start)
}

/// One piece of a large file (cut where [`is_piece_start`] allows, the
/// first piece starting the input) as the top-level items it holds. `None`:
/// anything the piecewise path does not take (byte-order mark, characters
/// YAML forbids, syntax errors, more than one document, what the streaming
/// loader leaves to the reference load); the caller then loads the whole
/// input, which gives the exact result or error.
pub fn load_piece(piece: &[u8]) -> Option<Branch> {
    if piece.starts_with(&[0xEF, 0xBB, 0xBF]) || piece.starts_with(&[0xFF, 0xFE]) || piece.starts_with(&[0xFE, 0xFF]) {
        return None;
    }
    // The direct loader accepts printable ASCII only, which `validate` passes.
    if let Some(branch) = direct::load(piece) {
        return Some(branch);
    }
    validate(piece).ok()?;
    split::load_streaming(piece)
}

/// The reference load: composer → node tree, sops' pre-check of the first
/// document, node → tree conversion. Handles every input; the streaming
/// path (`fast`) defers to it for whatever it does not cover.
fn load_reference(data: &[u8]) -> Result<Vec<Branch>, StoreError> {
    let mut composer = Composer::new(data);
    // sops first decodes the first document into a map to check keys;
    // errors up to the end of that document are reported unwrapped.
    let first = match composer.next_document() {
        Ok(Some(d)) => d,
        Ok(None) => return Err(StoreError::new("EOF")),
        Err(f) => return Err(StoreError::new(f.0)),
    };
    precheck(&composer, first).map_err(|f| StoreError::new(f.0))?;
    let mut docs = vec![first];
    loop {
        match composer.next_document() {
            Ok(Some(d)) => docs.push(d),
            Ok(None) => break,
            Err(f) => return Err(StoreError::new(format!("Error unmarshaling input YAML: {}", f.0))),
        }
    }
    let mut conv = Converter::new(&mut composer.nodes);
    let mut branches = Vec::with_capacity(docs.len());
    for d in docs {
        branches.push(conv.document(d).map_err(|f| StoreError::new(f.0))?);
    }
    if conv.saw_uint64 {
        return Err(StoreError::new(UINT64_ERROR));
    }
    Ok(branches)
}

/// A small, fast hasher for internal maps keyed by integers and short
/// strings (FxHash); inputs are not attacker-chosen beyond file content and
/// every map is bounded by the input size.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.hash = (self.hash.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.hash = (self.hash.rotate_left(5) ^ b as u64).wrapping_mul(K);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(K);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(crate) type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Load phase timings in milliseconds, for the `yperf` example: scan only,
/// scan+parse, scan+parse+compose, pre-check, conversion, dropping nodes,
/// dropping the tree.
#[doc(hidden)]
pub fn bench_phases(input: &[u8]) -> [f64; 7] {
    use std::time::Instant;
    let t0 = Instant::now();
    let mut sc = scanner::Scanner::new(input);
    while sc.fetch_more_tokens().is_ok() {
        match sc.pop_token() {
            Some(t) if t.typ != scanner::TokType::StreamEnd => {}
            _ => break,
        }
    }
    let t1 = Instant::now();
    let mut p = parser::Parser::new(input);
    while let Ok(Some(ev)) = p.parse() {
        if ev.typ == parser::EvType::StreamEnd {
            break;
        }
    }
    let t2 = Instant::now();
    let mut c = Composer::new(input);
    let mut docs = Vec::new();
    while let Ok(Some(d)) = c.next_document() {
        docs.push(d);
    }
    let t3 = Instant::now();
    if let Some(&d) = docs.first() {
        let _ = precheck(&c, d);
    }
    let t4 = Instant::now();
    let mut conv = Converter::new(&mut c.nodes);
    let branches: Vec<Branch> = docs.into_iter().filter_map(|d| conv.document(d).ok()).collect();
    let t5 = Instant::now();
    drop(c);
    let t6 = Instant::now();
    drop(branches);
    let t7 = Instant::now();
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
    [
        ms(t0, t1),
        ms(t1, t2),
        ms(t2, t3),
        ms(t3, t4),
        ms(t4, t5),
        ms(t5, t6),
        ms(t6, t7),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Key;

    fn load(s: &str) -> Result<Vec<Branch>, String> {
        YamlStore::default().load(s.as_bytes()).map_err(|e| e.message)
    }

    fn rt(s: &str) -> String {
        let st = YamlStore::default();
        let b = st.load(s.as_bytes()).expect("loads");
        String::from_utf8(st.emit(&b).expect("emits")).expect("utf8")
    }

    /// The characters YAML allows, checked with std's UTF-8 decoder: an
    /// independent statement of what `validate` accepts.
    fn allowed_by_yaml(b: &[u8]) -> bool {
        std::str::from_utf8(b).is_ok_and(|s| {
            s.chars().all(|c| {
                matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
                    || c >= '\u{10000}'
            })
        })
    }

    #[test]
    fn validation_accepts_exactly_the_yaml_characters() {
        let mut rng = crate::testutil::Rng(3);
        let pool: &[&[u8]] = &[
            b"a",
            b"key: value ",
            b"\n",
            b"\t",
            b"\r",
            b"\x7f",
            b"\x1f",
            b"\x00",
            b"\xc2\x85",
            b"\xc2\x80",
            b"\xc3\xa9",
            b"\xe2\x82\xac",
            b"\xed\xa0\x80",
            b"\xef\xbf\xbe",
            b"\xf0\x9f\x98\x80",
            b"\xc0\xaf",
            b"\xff",
            b"\x80",
            b"\xe2\x82",
        ];
        for round in 0..20_000 {
            let mut doc = Vec::new();
            for _ in 0..rng.below(40) {
                // Mostly long printable runs, so the word-at-a-time skip runs.
                if rng.below(3) > 0 {
                    doc.extend_from_slice(b"0123456789abcdef ~!"[..rng.below(19)].as_ref());
                } else {
                    doc.extend_from_slice(pool[rng.below(pool.len())]);
                }
            }
            assert_eq!(validate(&doc).is_ok(), allowed_by_yaml(&doc), "round {round}: {doc:?}");
        }
    }

    #[test]
    fn indent_rules() {
        assert_eq!(
            YamlStore::new(-1).expect_err("negative").message,
            "YAML Negative indentation not accepted"
        );
        assert_eq!(YamlStore::new(0).expect("default").indent, 4);
        assert_eq!(YamlStore::new(1).expect("one").indent, 2);
        assert_eq!(YamlStore::new(10).expect("ten").indent, 2);
        assert_eq!(YamlStore::new(7).expect("seven").indent, 7);
    }

    #[test]
    fn error_messages() {
        // Texts as sops-ref 3.11 prints them after "Error unmarshalling file: ".
        let cases = [
            (
                "a: 1\nb: 2\na: 3\n",
                "yaml: unmarshal errors:\n  line 3: mapping key \"a\" already defined at line 1",
            ),
            (
                "- a\n",
                "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into map[string]interface {}",
            ),
            ("a:\n  b: 1\n c: 2\n", "yaml: line 2: did not find expected key"),
            ("a: b: c\n", "yaml: mapping values are not allowed in this context"),
            ("a: \"abc\n", "yaml: line 2: found unexpected end of stream"),
            ("# only\n", "EOF"),
            (" \n", "EOF"),
            ("a: \"\x01\"\n", "yaml: control characters are not allowed"),
            ("a: *x\n", "yaml: unknown anchor 'x' referenced"),
            (
                "a:\n\tb: 1\n",
                "yaml: line 2: found character that cannot start any token",
            ),
            (
                "a: 1\n---\n- x\n",
                "Error unmarshaling input YAML: YAML documents that are sequences are not supported",
            ),
            (
                "a: 1\n---\nfoo\n",
                "Error unmarshaling input YAML: YAML documents that are values are not supported",
            ),
            (
                "a: !!binary \"###\"\n",
                "yaml: !!binary value contains invalid base64 data",
            ),
            (
                "a: 1\n<<: 5\n",
                "yaml: map merge requires map or sequence of maps as the value",
            ),
            ("a: &a\n  b: *a\n", "yaml: anchor 'a' value contains itself"),
            ("a: 18446744073709551615\n", UINT64_ERROR),
        ];
        for (input, want) in cases {
            assert_eq!(load(input).expect_err(input), want, "input {input:?}");
        }
        assert_eq!(
            YamlStore::default().load(b"a: \xff\n").expect_err("bad utf8").message,
            "yaml: invalid leading UTF-8 octet"
        );
    }

    #[test]
    fn comments_become_items() {
        let b = load("# h\na: 1 # l\nb:\n  - x # y\n# f\n").expect("loads");
        let items = &b[0].0;
        assert_eq!(items[0].key, Key::Comment(" h".into()));
        assert_eq!(items[1].key, Key::Comment(" l".into()));
        assert_eq!(items[2].key, Key::Str("a".into()));
        match &items[3].value {
            Value::List(l) => {
                assert!(matches!(&l[0], Value::Comment(c) if c == " y"));
                assert!(matches!(&l[1], Value::Str(s) if s == "x"));
            }
            other => panic!("list expected, got {other:?}"),
        }
        assert_eq!(items[4].key, Key::Comment(" f".into()));
    }

    #[test]
    fn scalar_types() {
        let b = load("i: 0x1F\nf: 1e3\nb: True\nn: ~\nt: 2024-01-01\ns: yes\nbin: !!binary aGk=\nraw: !!binary /w==\n")
            .expect("loads");
        let g = |k: &str| b[0].get(k).expect("key").clone();
        assert_eq!(g("i"), Value::Int(31));
        assert_eq!(g("f"), Value::Float(1000.0));
        assert_eq!(g("b"), Value::Bool(true));
        assert_eq!(g("n"), Value::Null);
        assert_eq!(g("t"), Value::Time("2024-01-01T00:00:00Z".into()));
        assert_eq!(g("s"), Value::Str("yes".into()));
        assert_eq!(g("bin"), Value::Str("hi".into()));
        assert_eq!(g("raw"), Value::Bytes(vec![0xff]));
    }

    #[test]
    fn emission_rules() {
        assert_eq!(rt("a: yes\n\"n\": 1\n"), "a: \"yes\"\n\"n\": 1\n");
        assert_eq!(rt("e: \"\"\nm: {}\nl: []\n"), "e: \"\"\nm: {}\nl: []\n");
        assert_eq!(rt("x: \"😀\"\n"), "x: \"\\U0001F600\"\n");
        assert_eq!(
            rt("x: 1.0\nw: 1e20\nz: 1234567.0\n"),
            "x: 1\nw: 1e+20\nz: 1.234567e+06\n"
        );
        assert_eq!(rt("x: \"a\\nb\"\n"), "x: |-\n    a\n    b\n");
        assert_eq!(
            rt("a: &x {b: 1}\nc:\n  <<: *x\n"),
            "a:\n    b: 1\nc:\n    !!merge <<:\n        b: 1\n"
        );
        assert_eq!(rt("---\n"), "{}\n");
        assert_eq!(rt("a: 1\n---\nb: 2\n"), "a: 1\n---\nb: 2\n");
        let long = "k".repeat(129);
        assert_eq!(rt(&format!("{long}: v\n")), format!("? {long}\n: v\n"));
    }

    #[test]
    fn emit_value_forms() {
        let st = YamlStore::default();
        let ev = |v: Value| String::from_utf8(st.emit_value(&v).expect("emits")).expect("utf8");
        assert_eq!(ev(Value::Int(42)), "42\n");
        assert_eq!(ev(Value::Str("hello".into())), "hello\n");
        assert_eq!(
            ev(Value::List(vec![Value::Str("a".into()), Value::Int(1)])),
            "- a\n- 1\n"
        );
        assert_eq!(ev(Value::List(vec![])), "[]\n");
    }

    use crate::testutil::{corpus_files, generated_document, Rng};

    const SEEDS: &[&str] = &[
        include_str!("../../../testdata/stores/yaml/comments.yaml"),
        include_str!("../../../testdata/stores/yaml/comments2.yaml"),
        include_str!("../../../testdata/stores/yaml/lists.yaml"),
        include_str!("../../../testdata/stores/yaml/flow.yaml"),
        include_str!("../../../testdata/stores/yaml/blocks.yaml"),
        include_str!("../../../testdata/stores/yaml/anchors.yaml"),
        include_str!("../../../testdata/stores/yaml/multidoc.yaml"),
        include_str!("../../../testdata/stores/yaml/quoting.yaml"),
        include_str!("../../../testdata/stores/yaml/unicode.yaml"),
        include_str!("../../../testdata/stores/yaml/tags.yaml"),
    ];

    const PIECES: &[&[u8]] = &[
        b" ",
        b"  ",
        b"\n",
        b"\r\n",
        b"\t",
        b"-",
        b"- ",
        b":",
        b": ",
        b"?",
        b"? ",
        b"#",
        b" #c",
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b"'",
        b"\"",
        b"\\",
        b"|",
        b"|-",
        b">+",
        b"&a",
        b"*a",
        b"!",
        b"!!str",
        b"!!binary",
        b"%YAML 1.1",
        b"---",
        b"...",
        b"<<",
        b"a",
        b"key",
        b"1",
        b"0x",
        b"2024-01-01",
        b"\xc3\xa9",
        b"\xf0\x9f\x98\x80",
        b"\xef\xbb\xbf",
        b"\xc2\x85",
        b"\xe2\x80\xa8",
        b"~",
        b"null",
        b"true",
        b"\x00",
        b"\xff",
        b"@",
        b"`",
        b"%",
    ];

    /// Tree equality that treats NaN floats as equal to each other.
    pub(super) fn same_value(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            (Value::Map(x), Value::Map(y)) => same_branch(x, y),
            (Value::List(x), Value::List(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q)),
            _ => a == b,
        }
    }

    pub(super) fn same_branch(a: &Branch, b: &Branch) -> bool {
        a.0.len() == b.0.len()
            && a.0
                .iter()
                .zip(&b.0)
                .all(|(p, q)| p.key == q.key && same_value(&p.value, &q.value))
    }

    /// The streaming path must give exactly the reference result whenever
    /// it does not defer to it. Returns whether it handled the input.
    fn check_fast_matches(input: &[u8]) -> bool {
        let Ok(data) = prepare_input(input) else {
            return false;
        };
        let Ok(fast) = fast::Fast::new(&data).load() else {
            return false;
        };
        match load_reference(&data) {
            Ok(r) => assert!(
                r.len() == fast.len() && r.iter().zip(&fast).all(|(x, y)| same_branch(x, y)),
                "streaming load differs from the reference for {:?}",
                String::from_utf8_lossy(input)
            ),
            Err(e) => panic!(
                "streaming load accepted what the reference rejects ({}): {:?}",
                e.message,
                String::from_utf8_lossy(input)
            ),
        }
        true
    }

    #[test]
    fn streaming_load_matches_reference_on_corpus() {
        let mut handled = 0;
        let mut total = 0;
        for (_, data) in corpus_files("yaml") {
            total += 1;
            if check_fast_matches(&data) {
                handled += 1;
            }
        }
        assert!(total > 30 && handled > total / 2, "handled {handled} of {total}");
    }

    #[test]
    fn streaming_load_matches_reference_on_generated() {
        let scale: usize = std::env::var("RSOPS_FUZZ_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let mut rng = Rng(0x5EED_1234_ABCD_0001);
        let mut handled = 0;
        let n = 3000 * scale;
        for i in 0..n {
            let s = generated_document(&mut rng, i, 5);
            if check_fast_matches(s.as_bytes()) {
                handled += 1;
            }
        }
        assert!(handled > n / 4, "handled {handled} of {n}");
    }

    /// Every cut the parallel loader may choose, alone and all together:
    /// whenever it does not defer, it gives exactly the reference result.
    /// Returns whether some cut was accepted.
    fn check_split_matches(input: &[u8]) -> bool {
        let Ok(data) = prepare_input(input) else {
            return false;
        };
        let candidates: Vec<usize> = (1..data.len())
            .filter(|&i| data[i - 1] == b'\n' && split::is_cut_line(&data, i))
            .collect();
        let reference = load_reference(&data);
        let mut accepted = false;
        let mut attempts: Vec<Vec<usize>> = candidates.iter().map(|&c| vec![c]).collect();
        attempts.push(candidates.clone());
        for cuts in attempts {
            let Some(got) = split::load_pieces(&data, &cuts) else {
                continue;
            };
            accepted = true;
            match &reference {
                Ok(r) => assert!(
                    r.len() == got.len() && r.iter().zip(&got).all(|(x, y)| same_branch(x, y)),
                    "split load at {cuts:?} differs from the reference for {:?}",
                    String::from_utf8_lossy(input)
                ),
                Err(e) => panic!(
                    "split load at {cuts:?} accepted what the reference rejects ({}): {:?}",
                    e.message,
                    String::from_utf8_lossy(input)
                ),
            }
        }
        accepted
    }

    #[test]
    fn long_comment_runs_load_like_the_reference() {
        // 100k comment lines between keys: cut search stays linear and the
        // result is the reference one.
        let mut s = String::from("a: 1\n");
        for i in 0..100_000 {
            s.push_str(&format!("# c{i}\n"));
        }
        s.push_str("b: 2\n");
        for i in 0..20_000 {
            s.push_str(&format!("k{i}: v{i}\n"));
        }
        let data = s.as_bytes();
        assert!(data.len() >= split::PARALLEL_MIN_BYTES);
        let got = YamlStore::default().load(data).unwrap();
        let reference = load_reference(data).unwrap();
        assert!(got.len() == reference.len() && got.iter().zip(&reference).all(|(x, y)| same_branch(x, y)));
        let mut out = Vec::new();
        YamlStore::default().emit_to(&got, &mut out).unwrap();
        assert_eq!(out, YamlStore::default().emit(&got).unwrap());
    }

    #[test]
    fn split_load_matches_reference() {
        let tricky = [
            "a: \"x\nb: y\"\nc: 1\n",
            "a: [1,\nb: 2]\nc: 1\n",
            "a: {x: 1,\nb: 2}\nc: 1\n",
            "a: 'it\nb: c'\nd: 1\n",
            "a: |\n  t\nb: 1\n",
            "a: >\n  t\n\nb: 1\n",
            "a: &x 1\nb: *x\n",
            "a: 1\nb: 2\na: 3\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\n...\nb: 2\n",
            "a:\n  x: 1\n  # foot\nb: 2\n",
            "a:\n  x: 1\n\n  # foot\n\nb: 2\n",
            "a: plain\n  continued\nb: 2\n",
            "a:\n- 1\n- 2\nb: 3 # line\nc: 4\n",
            "# head\n\na: 1\nb: 2\n# tail\n",
            "a: 1\nb: 18446744073709551615\n",
            "a: 1\nb: !!str 2\n",
            "a: 1\r\nb: 2\r\n",
        ];
        let mut accepted = 0;
        for t in tricky {
            accepted += usize::from(check_split_matches(t.as_bytes()));
        }
        assert!(accepted >= 5, "only {accepted} tricky inputs were split");
        let mut corpus_accepted = 0;
        for (_, data) in corpus_files("yaml") {
            corpus_accepted += usize::from(check_split_matches(&data));
        }
        assert!(corpus_accepted > 10, "only {corpus_accepted} corpus files were split");
        let mut rng = Rng(0x5EED_1234_ABCD_0002);
        let mut generated_accepted = 0;
        for i in 0..1500 {
            let s = generated_document(&mut rng, i, 8);
            generated_accepted += usize::from(check_split_matches(s.as_bytes()));
        }
        assert!(
            generated_accepted > 100,
            "only {generated_accepted} generated documents were split"
        );
    }

    fn check_no_panic(input: &[u8]) {
        check_fast_matches(input);
        let st = YamlStore::default();
        if let Ok(b) = st.load(input) {
            let out = st.emit(&b).expect("emit never fails");
            // What we emit must load again and be stable.
            match st.load(&out) {
                // go-yaml's comment association is not idempotent (a foot
                // comment can move into the preceding block), so stability
                // is only checked for comment-free output.
                Ok(b2) if !out.contains(&b'#') => {
                    let out2 = st.emit(&b2).expect("emit never fails");
                    assert_eq!(
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&out2),
                        "emit not stable for input {:?}",
                        String::from_utf8_lossy(input)
                    );
                }
                Ok(_) => {}
                Err(e) if e.message == UINT64_ERROR => {}
                // Distinct null/typed keys can print the same (`null`), so
                // the output may hold duplicate keys, as with go-yaml.
                Err(e) if e.message.starts_with("yaml: unmarshal errors:") => {}
                // A string key `<<` is written as `!!merge <<` (as sops does),
                // which no longer loads when its value is not a mapping.
                Err(e) if e.message.contains("map merge requires") => {}
                Err(e) => panic!(
                    "emitted YAML does not reload ({e}) for input {:?}:\n{}",
                    String::from_utf8_lossy(input),
                    String::from_utf8_lossy(&out)
                ),
            }
            for v in b.iter().flat_map(|br| br.0.iter().map(|i| &i.value)) {
                let _ = st.emit_value(v);
            }
        }
    }

    #[test]
    fn fuzz_no_panics() {
        // RSOPS_FUZZ_SCALE=N multiplies the iteration counts for longer runs.
        let scale: usize = std::env::var("RSOPS_FUZZ_SCALE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let seed: u64 = std::env::var("RSOPS_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng(seed);
        // Random concatenations of YAML-ish pieces.
        for _ in 0..3000 * scale {
            let n = rng.below(40);
            let mut v = Vec::new();
            for _ in 0..n {
                v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
            check_no_panic(&v);
        }
        // Raw random bytes.
        for _ in 0..1000 * scale {
            let n = rng.below(64);
            let v: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            check_no_panic(&v);
        }
        // Mutations of real files: byte flips, deletions, insertions, splices.
        for i in 0..3000 * scale {
            let mut v = SEEDS[i % SEEDS.len()].as_bytes().to_vec();
            for _ in 0..1 + rng.below(4) {
                if v.is_empty() {
                    break;
                }
                let p = rng.below(v.len());
                match rng.below(4) {
                    0 => v[p] = rng.next() as u8,
                    1 => {
                        let e = (p + rng.below(8)).min(v.len());
                        v.drain(p..e);
                    }
                    2 => {
                        let piece = PIECES[rng.below(PIECES.len())];
                        v.splice(p..p, piece.iter().copied());
                    }
                    _ => {
                        let q = rng.below(v.len());
                        let e = (q + rng.below(32)).min(v.len());
                        let chunk = v[q..e].to_vec();
                        v.splice(p..p, chunk);
                    }
                }
            }
            check_no_panic(&v);
        }
        // Deep nesting must be rejected, not overflow the stack.
        let deep = "[".repeat(20_000);
        assert!(YamlStore::default().load(deep.as_bytes()).is_err());
        let deep_block: String = (0..3000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        let _ = YamlStore::default().load(deep_block.as_bytes());
    }

    #[test]
    fn deep_but_allowed_nesting_round_trips() {
        // Just under the nesting limit, on a default 2 MB test thread.
        let n = compose::MAX_NESTING - 10;
        let block: String = (0..n).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect();
        check_no_panic(block.as_bytes());
        let flow = format!("a: {}1{}\n", "[".repeat(n), "]".repeat(n));
        check_no_panic(flow.as_bytes());
        let seqs: String = (0..n).map(|i| format!("{}-\n", " ".repeat(2 * i))).collect();
        check_no_panic(format!("a:\n{seqs}").as_bytes());
        // A chain of aliases, each nesting the previous anchor.
        let mut chain = String::from("a0: &a0 [x]\n");
        for i in 1..n {
            chain.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let _ = YamlStore::default().load(chain.as_bytes());
    }
}
