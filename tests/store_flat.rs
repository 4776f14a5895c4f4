//! dotenv, INI and binary stores against the real sops 3.11 (`sops-ref`).

mod common;
mod oracle;

use oracle::*;
use rsops::stores::binary::BinaryStore;
use rsops::stores::dotenv::DotenvStore;
use rsops::stores::ini::IniStore;
use rsops::stores::json::JsonStore;
use rsops::stores::Store;
use rsops::tree::{Branch, Value};

fn roundtrip(store: &dyn Store, input: &[u8]) -> Vec<u8> {
    store.emit(&store.load(input).expect("load")).expect("emit")
}

/// The encrypted tree without sops' metadata, for type checks.
fn without_metadata(mut b: Branch, dotenv: bool) -> Branch {
    b.0.retain(|i| match i.key.as_str() {
        Some(k) if dotenv => !k.starts_with("sops_"),
        Some(k) => k != "sops",
        None => true,
    });
    b
}

fn check_corpus(store: &dyn Store, dir: &str, ext: &str) {
    let oracle = Oracle::new(dir);
    let json = JsonStore::default();
    for path in corpus(dir, ext) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let input = std::fs::read(&path).unwrap();
        let plain_name = format!("plain.{ext}");
        let enc_name = format!("enc.{ext}");
        let enc = oracle
            .encrypt(&plain_name, &input, &[])
            .unwrap_or_else(|e| panic!("{name}: encrypt: {e}"));
        let dec = oracle
            .decrypt(&enc_name, &enc, &[])
            .unwrap_or_else(|e| panic!("{name}: decrypt: {e}"));
        assert_eq!(show(&roundtrip(store, &input)), show(&dec), "{name}");
        assert_eq!(roundtrip(store, &input), dec, "{name}: bytes");
        assert_eq!(roundtrip(store, &dec), dec, "{name}: fixpoint");

        let plain = store.load(&input).unwrap().remove(0);
        let enc_tree = without_metadata(store.load(&enc).unwrap().remove(0), ext == "env");
        check_branch_types(&plain, &enc_tree, "");

        // Conversion to JSON goes through the same tree.
        let as_json = oracle
            .decrypt(&enc_name, &enc, &["--output-type", "json"])
            .unwrap_or_else(|e| panic!("{name}: decrypt to json: {e}"));
        assert_eq!(show(&json.emit(&[plain]).unwrap()), show(&as_json), "{name} as JSON");
    }
}

#[test]
fn dotenv_corpus_matches_sops() {
    check_corpus(&DotenvStore, "dotenv", "env");
}

#[test]
fn ini_corpus_matches_sops() {
    check_corpus(&IniStore, "ini", "ini");
}

#[test]
fn dotenv_errors_match_sops_without_echoing_lines() {
    let oracle = Oracle::new("dotenv-errors");
    for (input, line) in [
        (&b"A=1\nSECRETVALUE\n"[..], 2),
        (b"A=1\n\r\n", 2),
        (b"A=1\n\nB=2\n   \n", 4),
    ] {
        let sops = oracle.encrypt("bad.env", input, &[]).expect_err("sops rejects");
        assert!(sops.starts_with("Error unmarshalling file: invalid dotenv input line:"));
        let ours = DotenvStore.load(input).unwrap_err().message;
        assert_eq!(ours, format!("invalid dotenv input line: line {line} has no '='"));
    }
}

#[test]
fn ini_errors_match_sops_without_echoing_lines() {
    let oracle = Oracle::new("ini-errors");
    for (input, prefix) in [
        (&b"[a]\nSECRETVALUE\n"[..], "key-value delimiter not found: "),
        (b"=secret\n", "empty key name: "),
        (b"[unclosed\n", "unclosed section: "),
    ] {
        let sops = oracle.encrypt("bad.ini", input, &[]).expect_err("sops rejects");
        let want = format!("Error unmarshalling file: Could not unmarshal input data: {prefix}");
        assert!(sops.starts_with(&want), "{sops}");
        let ours = IniStore.load(input).unwrap_err().message;
        assert!(ours.starts_with(&want["Error unmarshalling file: ".len()..]), "{ours}");
        assert!(!ours.contains("SECRET") && !ours.contains("secret"), "{ours}");
    }
}

/// Trees from JSON (floats, bools, nulls) printed as dotenv and INI.
#[test]
fn json_trees_convert_like_sops() {
    let oracle = Oracle::new("flat-conv");
    let json = JsonStore::default();
    let flat = br#"{"s": "x\ny", "i": 42, "f": 1.5, "big": 1e21, "one": 1.0, "m": 1000000, "small": 0.00001, "neg0": -0, "t": true, "n": null, "e": "", "h": "<&>"}"#;
    let enc = oracle.encrypt("p.json", flat, &[]).expect("encrypt");
    let tree = json.load(flat).unwrap();
    let sops = oracle
        .decrypt("enc.json", &enc, &["--output-type", "dotenv"])
        .expect("to dotenv");
    assert_eq!(show(&DotenvStore.emit(&tree).unwrap()), show(&sops));

    let nested = br#"{"sec": {"s": "x\ny", "i": 42, "f": 1.5, "t": false, "n": null, "sp": " a ", "hash": "a#b", "bq": "a`b"}, "DEFAULT": {"k": "v"}}"#;
    let enc = oracle.encrypt("p.json", nested, &[]).expect("encrypt");
    let tree = json.load(nested).unwrap();
    let sops = oracle
        .decrypt("enc.json", &enc, &["--output-type", "ini"])
        .expect("to ini");
    assert_eq!(show(&IniStore.emit(&tree).unwrap()), show(&sops));

    // Complex values are refused by dotenv.
    let enc = oracle.encrypt("p.json", br#"{"a": [1, 2]}"#, &[]).expect("encrypt");
    let err = oracle
        .decrypt("enc.json", &enc, &["--output-type", "dotenv"])
        .expect_err("sops refuses");
    let tree = json.load(br#"{"a": [1, 2]}"#).unwrap();
    assert_eq!(
        err,
        format!("Error dumping file: {}", DotenvStore.emit(&tree).unwrap_err())
    );
}

#[test]
fn binary_matches_sops() {
    let oracle = Oracle::new("binary");
    let json = JsonStore::default();
    for input in [
        &b"plain text\n"[..],
        b"",
        b"\x00\x01\xff\xfe binary \r\n\xe2\x82",
        "ünïcødé 😀 <>&".as_bytes(),
    ] {
        let enc = oracle.encrypt("blob.bin", input, &[]).expect("encrypt");
        let dec = oracle.decrypt("blob.enc", &enc, &[]).expect("decrypt");
        assert_eq!(dec, input);
        assert_eq!(roundtrip(&BinaryStore, input), dec);
        // The encrypted form is JSON, byte-identical through our JSON store.
        assert_eq!(show(&roundtrip(&json, &enc)), show(&enc));
        let enc_tree = load_encrypted_json(&enc);
        let plain = BinaryStore.load(input).unwrap().remove(0);
        check_branch_types(&plain, &enc_tree, "");
        match enc_tree.get("data") {
            Some(Value::Str(_)) => {}
            other => panic!("data is {other:?}"),
        }
    }
}
