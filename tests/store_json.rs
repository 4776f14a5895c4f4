//! The JSON store against the real sops 3.11 (`sops-ref`).

mod common;
mod oracle;

use oracle::*;
use rsops::stores::json::{validate_strict, JsonStore};
use rsops::stores::Store;
use rsops::tree::{Branch, Item, Value};

fn roundtrip(store: &JsonStore, input: &[u8]) -> Vec<u8> {
    let doc = store.load(input).expect("load");
    store.emit(&doc).expect("emit")
}

/// Every corpus file: our `emit(load(x))` is byte-identical to sops-ref's
/// decrypt output, sops' encrypted file round-trips through our store
/// unchanged, and every value carries the type tag our tree predicts.
#[test]
fn corpus_matches_sops_byte_for_byte() {
    let oracle = Oracle::new("json-corpus");
    let store = JsonStore::default();
    for path in corpus("json", "json") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(&path).unwrap();
        let enc = oracle
            .encrypt("plain.json", &input, &[])
            .unwrap_or_else(|e| panic!("{name}: sops-ref encrypt failed: {e}"));
        let dec = oracle
            .decrypt("enc.json", &enc, &[])
            .unwrap_or_else(|e| panic!("{name}: sops-ref decrypt failed: {e}"));
        let ours = roundtrip(&store, &input);
        assert_eq!(show(&ours), show(&dec), "{name}: emit(load(input))");
        assert_eq!(ours, dec, "{name}: bytes");
        assert_eq!(roundtrip(&store, &dec), dec, "{name}: sops output is a fixpoint");
        assert_eq!(show(&roundtrip(&store, &enc)), show(&enc), "{name}: encrypted file");

        let plain = store.load(&input).unwrap().remove(0);
        let enc_tree = load_encrypted_json(&enc);
        check_branch_types(&plain, &enc_tree, "");
        assert_eq!(store.load(&dec).unwrap().remove(0), plain, "{name}: tree");
    }
}

/// Parse errors: our message is sops' message (after the CLI's own prefix)
/// plus a position; literal values sops would echo are redacted.
#[test]
fn parse_errors_match_sops() {
    let oracle = Oracle::new("json-errors");
    let store = JsonStore::default();
    let cases: &[&[u8]] = &[
        b"",
        b"  \n ",
        b"[1, 2]",
        b"\"a string\"",
        b"12.5",
        b"null",
        b"true",
        b"}",
        b"]",
        b":",
        b",",
        b"x",
        b"{",
        br#"{"a":1"#,
        br#"{"x":{"a":"#,
        br#"{"a":1,}"#,
        b"{,}",
        br#"{"a" 1}"#,
        br#"{"a":1 "b":2}"#,
        br#"{"a":[1 2]}"#,
        br#"{"a":[1,]}"#,
        br#"{"a":01}"#,
        br#"{"a":1x}"#,
        br#"{"a":tru}"#,
        br#"{"a":tx}"#,
        br#"{"a":nul}"#,
        br#"{"a":fals]"#,
        br#"{"a":-}"#,
        br#"{"a":-a}"#,
        br#"{"a":1.}"#,
        br#"{"a":1e}"#,
        br#"{"a":1e+}"#,
        br#"{"a":1e400}"#,
        br#"{"a":-1e400}"#,
        br#"{"a":"abc"#,
        br#"{"a":"abc\"#,
        br#"{"a":"\u12"#,
        br#"{"a":"a\qb"}"#,
        br#"{"a":"\u12G4"}"#,
        b"{\"a\":\"x\x01y\"}",
        b"{\"a\":\"x\ny\"}",
        b"{\"a\":\"x\ty\"}",
        b"\x7f",
        b"\xef\xbb\xbf{}",
        b"\xff",
        b"\xc2\xa0{}",
        b"'x'",
        br#"{1:2}"#,
        br#"{"a":1:2}"#,
        br#"{"a"::1}"#,
        br#"{"a":{]}"#,
        br#"{"a":[}]}"#,
        br#"{"a":1.5"#,
        br#"{"a":"x","#,
        br#"{"a":[{"b":1]}"#,
        b"{\"a\":\n\n  @}",
    ];
    for &input in cases {
        let sops_err = match oracle.encrypt("bad.json", input, &[]) {
            Ok(_) => panic!("sops-ref accepted {:?}", show(input)),
            Err(e) => e,
        };
        let sops_msg = sops_err
            .strip_prefix("Error unmarshalling file: ")
            .unwrap_or_else(|| panic!("unexpected sops output {sops_err:?}"));
        let ours = store.load(input).expect_err("we must reject it too").message;
        assert!(ours.ends_with(')'), "position missing in {ours:?}");
        let ours = strip_position(&ours);
        match ours.split_once("<redacted>") {
            Some((before, after)) => assert!(
                sops_msg.starts_with(before) && sops_msg.ends_with(after),
                "{:?}: ours {ours:?} vs sops {sops_msg:?}",
                show(input)
            ),
            None if ours.contains("cannot unmarshal number into") => assert_eq!(
                ours,
                sops_msg.replacen(" 1e400", "", 1).replacen(" -1e400", "", 1),
                "{:?}",
                show(input)
            ),
            None => assert_eq!(ours, sops_msg, "{:?}", show(input)),
        }
    }
}

/// Inputs sops accepts although they are not (complete) JSON.
#[test]
fn lenient_inputs_match_sops() {
    let oracle = Oracle::new("json-lenient");
    let store = JsonStore::default();
    let cases: &[&[u8]] = &[
        br#"{"a":"#,
        br#"{"a""#,
        br#"{"x":1,"a":"#,
        br#"{"x":1,"a":[1,2"#,
        br#"{"x":[{"a":"#,
        br#"{"x":[[["#,
        br#"{"x":1,"y":[{"a":1},{"b":[2"#,
        br#"{"a":1}xyz"#,
        br#"{"a":1}}"#,
        br#"{"a":1}{"b":2}"#,
        b"{\"a\":1}\xff\xfe",
        b"  {}  ",
    ];
    for &input in cases {
        let enc = oracle
            .encrypt("ok.json", input, &[])
            .unwrap_or_else(|e| panic!("{:?}: {e}", show(input)));
        let dec = oracle.decrypt("enc.json", &enc, &[]).expect("decrypt");
        assert_eq!(show(&roundtrip(&store, input)), show(&dec), "{:?}", show(input));
    }
}

/// sops' decrypt first runs `json.Unmarshal` over the whole encrypted file;
/// `validate_strict` reproduces its verdict and message.
#[test]
fn strict_validation_matches_sops_decrypt() {
    let oracle = Oracle::new("json-strict");
    let enc = oracle
        .encrypt("p.json", br#"{"a": "x", "b": [1, 2]}"#, &[])
        .expect("encrypt");
    let text = String::from_utf8(enc.clone()).unwrap();
    let mut broken: Vec<Vec<u8>> = vec![
        [enc.as_slice(), b"garbage"].concat(),
        [enc.as_slice(), b"{}"].concat(),
        enc[..enc.len() - 2].to_vec(),
        enc[..enc.len() / 2].to_vec(),
        text.replacen("\"b\": [", "\"b\": [,", 1).into_bytes(),
        text.replacen("\"a\":", "\"a\" ", 1).into_bytes(),
        text.replacen(",\n", "\n", 1).into_bytes(),
        b"".to_vec(),
        b"[]x".to_vec(),
    ];
    broken.push(text.replacen("{", "{,", 1).into_bytes());
    for input in &broken {
        let sops_err = oracle.decrypt("broken.json", input, &[]).expect_err("sops must reject");
        let sops_msg = sops_err
            .strip_prefix("Error unmarshalling input json: ")
            .unwrap_or_else(|| panic!("unexpected sops output {sops_err:?}"));
        let ours = validate_strict(input).expect_err("we must reject").message;
        assert_eq!(strip_position(&ours), sops_msg);
    }
    // Trailing whitespace is fine for both.
    let ok = [enc.as_slice(), b" \n\t\r\n"].concat();
    oracle.decrypt("ok.json", &ok, &[]).expect("sops accepts");
    validate_strict(&ok).expect("we accept");
}

/// `stores.json.indent` from `.sops.yaml`.
#[test]
fn indent_setting_matches_sops() {
    let oracle = Oracle::new("json-indent");
    let input =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stores/json/arrays.json"))
            .unwrap();
    let enc = oracle.encrypt("p.json", &input, &[]).expect("encrypt");
    for indent in [0i64, 1, 2, 4, 8, -1] {
        oracle.write(
            ".sops.yaml",
            format!("stores:\n  json:\n    indent: {indent}\n").as_bytes(),
        );
        let dec = oracle.decrypt("enc.json", &enc, &[]).expect("decrypt");
        let store = JsonStore::new(indent).unwrap();
        assert_eq!(show(&roundtrip(&store, &input)), show(&dec), "indent {indent}");
    }
    oracle.write(".sops.yaml", b"stores:\n  json:\n    indent: -2\n");
    let err = oracle.decrypt("enc.json", &enc, &[]).expect_err("sops rejects -2");
    let ours = JsonStore::new(-2).unwrap_err().message;
    assert_eq!(err, format!("Error dumping file: Error marshaling to json: {ours}"));
}

/// `--extract` of non-string values uses the store's single-value encoding.
#[test]
fn emit_value_matches_extract() {
    let oracle = Oracle::new("json-extract");
    let input = br#"{"n": 3.14, "i": 42, "t": true, "l": [1, "x<", {"a": [null]}, [], {}], "e": [], "m": {"k": [1]}, "big": 1e21}"#;
    let enc = oracle.encrypt("p.json", input, &[]).expect("encrypt");
    let store = JsonStore::default();
    let tree = store.load(input).unwrap().remove(0);
    for key in ["n", "i", "t", "l", "e", "big"] {
        let path = format!("[\"{key}\"]");
        let sops = oracle
            .decrypt("enc.json", &enc, &["--extract", &path])
            .expect("extract");
        let ours = store.emit_value(tree.get(key).unwrap()).unwrap();
        assert_eq!(show(&ours), show(&sops), "extract {path}");
    }
    // A mapping is printed as a whole document.
    let sops = oracle
        .decrypt("enc.json", &enc, &["--extract", "[\"m\"]"])
        .expect("extract");
    let Some(Value::Map(m)) = tree.get("m") else {
        panic!("m is a map")
    };
    assert_eq!(show(&store.emit(std::slice::from_ref(m)).unwrap()), show(&sops));
}

/// Trees from YAML carry types JSON cannot produce (ints, timestamps, byte
/// strings, comments, NaN); their JSON output must match
/// `sops-ref decrypt --output-type json` of the equivalent YAML file.
#[test]
fn yaml_sourced_values_emit_like_sops() {
    let oracle = Oracle::new("json-from-yaml");
    let store = JsonStore::default();
    let yaml = b"# top comment\ni: 42\nneg: -7\nbig: 9223372036854775807\nt: 2024-01-01\nts: 2024-01-02T03:04:05.123456789+02:00\nb: !!binary /8CvZQ==\nl:\n  # list comment\n  - 1\n  - x\nf: 1.0\ns: \"<&>\"\n";
    let tree = Branch(vec![
        Item::comment(" top comment"),
        Item::new("i", Value::Int(42)),
        Item::new("neg", Value::Int(-7)),
        Item::new("big", Value::Int(i64::MAX)),
        Item::new("t", Value::Time("2024-01-01T00:00:00Z".into())),
        Item::new("ts", Value::Time("2024-01-02T03:04:05.123456789+02:00".into())),
        Item::new("b", Value::Bytes(vec![0xff, 0xc0, 0xaf, b'e'])),
        Item::new(
            "l",
            Value::List(vec![
                Value::Comment(" list comment".into()),
                Value::Int(1),
                Value::Str("x".into()),
            ]),
        ),
        Item::new("f", Value::Float(1.0)),
        Item::new("s", Value::Str("<&>".into())),
    ]);
    let enc = oracle.encrypt("p.yaml", yaml, &[]).expect("encrypt");
    let sops = oracle
        .decrypt("enc.yaml", &enc, &["--output-type", "json"])
        .expect("decrypt");
    assert_eq!(show(&store.emit(&[tree]).unwrap()), show(&sops));

    let map = |k: &str, v: Value| Value::Map(Branch(vec![Item::new(k, v)]));
    let cases = [
        (&b"a: .nan\n"[..], Branch(vec![Item::new("a", Value::Float(f64::NAN))])),
        (
            b"x:\n  a: [-.inf]\n",
            Branch(vec![Item::new(
                "x",
                map("a", Value::List(vec![Value::Float(f64::NEG_INFINITY)])),
            )]),
        ),
        (
            b"x:\n  y:\n    a: .inf\n",
            Branch(vec![Item::new("x", map("y", map("a", Value::Float(f64::INFINITY))))]),
        ),
    ];
    for (yaml, tree) in cases {
        let enc = oracle.encrypt("p.yaml", yaml, &[]).expect("encrypt");
        let err = oracle
            .decrypt("enc.yaml", &enc, &["--output-type", "json"])
            .expect_err("sops cannot print NaN/Inf as JSON");
        let ours = store.emit(&[tree]).unwrap_err().message;
        assert_eq!(err, format!("Error dumping file: {ours}"));
    }
}
