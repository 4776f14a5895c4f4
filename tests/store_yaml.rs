//! Compares the YAML store with the reference sops binary (`sops-ref`):
//! byte-identical round trips, scalar types and comment positions (from the
//! encrypted file), and load error messages.
//!
//! Requires `sops-ref` and `age-keygen` on PATH; fails (never skips) if
//! either is missing.

mod common;

use rsops::stores::yaml::{YamlStore, UINT64_ERROR};
use rsops::stores::Store;
use rsops::tree::{Branch, Key, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

struct Env {
    dir: PathBuf,
    key_file: PathBuf,
    recipient: String,
}

fn require_tool(name: &str) {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "required tool `{name}` is missing (not on PATH or not runnable)");
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        common::sops_ref();
        require_tool("age-keygen");
        let dir = std::env::temp_dir().join(format!("rsops-yaml-vs-sops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let key_file = dir.join("age.key");
        let _ = std::fs::remove_file(&key_file);
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(&key_file)
            .output()
            .expect("run age-keygen");
        assert!(out.status.success(), "age-keygen failed");
        let out = Command::new("age-keygen")
            .arg("-y")
            .arg(&key_file)
            .output()
            .expect("run age-keygen -y");
        assert!(out.status.success(), "age-keygen -y failed");
        let recipient = String::from_utf8(out.stdout)
            .expect("utf8 recipient")
            .trim()
            .to_string();
        Env {
            dir,
            key_file,
            recipient,
        }
    })
}

fn sops(args: &[&str], file: &Path) -> Output {
    let e = env();
    Command::new(common::sops_ref())
        .args(args)
        .arg(file)
        .current_dir(&e.dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("SOPS_AGE_KEY_FILE", &e.key_file)
        .output()
        .expect("run sops-ref")
}

/// Encrypts `input` with sops-ref; `Ok((encrypted, decrypted))` or the
/// encrypt stderr.
fn sops_roundtrip(name: &str, input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let e = env();
    let plain = e.dir.join(format!("{name}.yaml"));
    std::fs::write(&plain, input).expect("write input");
    let enc = sops(&["encrypt", "--age", &e.recipient], &plain);
    if !enc.status.success() {
        return Err(String::from_utf8_lossy(&enc.stderr).into_owned());
    }
    let enc_path = e.dir.join(format!("{name}.enc.yaml"));
    std::fs::write(&enc_path, &enc.stdout).expect("write encrypted");
    let dec = sops(&["decrypt"], &enc_path);
    assert!(
        dec.status.success(),
        "sops-ref decrypt failed for {name}: {}",
        String::from_utf8_lossy(&dec.stderr)
    );
    Ok((enc.stdout, dec.stdout))
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stores/yaml");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus too small");
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("file stem").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read corpus file"))
        })
        .collect()
}

fn enc_type(v: &str) -> Option<&str> {
    let rest = v.strip_prefix("ENC[AES256_GCM,data:")?;
    let t = rest.rsplit_once(",type:")?.1;
    t.strip_suffix(']')
}

/// Leaves in document order: `(path, kind)`. Comments are recorded by
/// position only: re-parsing sops' encrypted output can move a comment
/// between a list and the mapping inside it, but never reorders it.
fn flatten(v: &Value, path: &str, encrypted: bool, out: &mut Vec<(String, String)>) {
    let comment = |c: &str, out: &mut Vec<(String, String)>| {
        let kind = if c.is_empty() {
            "empty comment"
        } else if !encrypted || enc_type(c) == Some("comment") {
            "comment"
        } else {
            "unencrypted comment"
        };
        out.push(("#".into(), kind.into()));
    };
    match v {
        Value::Map(b) => flatten_branch(b, path, encrypted, out),
        Value::List(l) => {
            let mut idx = 0;
            for e in l {
                match e {
                    Value::Comment(c) => comment(c, out),
                    Value::Str(s) if encrypted && enc_type(s) == Some("comment") => comment(s, out),
                    _ => {
                        flatten(e, &format!("{path}[{idx}]"), encrypted, out);
                        idx += 1;
                    }
                }
            }
        }
        Value::Comment(c) => comment(c, out),
        scalar => {
            let kind = if encrypted {
                match scalar {
                    Value::Null => "null".to_string(),
                    Value::Str(s) if s.is_empty() => "empty".to_string(),
                    Value::Str(s) => match enc_type(s) {
                        Some(t) => t.to_string(),
                        None => "not encrypted".to_string(),
                    },
                    other => format!("not encrypted {}", other.type_name()),
                }
            } else {
                match scalar {
                    Value::Null => "null",
                    Value::Str(s) if s.is_empty() => "empty",
                    Value::Str(_) | Value::Bytes(_) => "str",
                    Value::Int(_) => "int",
                    Value::Float(_) => "float",
                    Value::Bool(_) => "bool",
                    Value::Time(_) => "time",
                    _ => "?",
                }
                .to_string()
            };
            out.push((path.to_string(), kind));
        }
    }
}

fn flatten_branch(b: &Branch, path: &str, encrypted: bool, out: &mut Vec<(String, String)>) {
    for it in &b.0 {
        match &it.key {
            Key::Comment(c) => flatten(&Value::Comment(c.clone()), path, encrypted, out),
            Key::Str(k) => flatten(&it.value, &format!("{path}/{k}"), encrypted, out),
            Key::NonString { type_name, .. } => out.push((format!("{path}/<{type_name}>"), "bad key".into())),
        }
    }
}

#[test]
fn corpus_round_trips_like_sops() {
    let store = YamlStore::default();
    let mut failures = Vec::new();
    let mut passed = Vec::new();
    for (name, input) in corpus() {
        let (enc, dec) = match sops_roundtrip(&name, &input) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{name}: sops-ref could not encrypt: {e}"));
                continue;
            }
        };
        let branches = match store.load(&input) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: load failed: {e}"));
                continue;
            }
        };
        let ours = store.emit(&branches).expect("emit");
        if ours != dec {
            failures.push(format!(
                "{name}: output differs\n--- sops-ref\n{}\n--- ours\n{}",
                String::from_utf8_lossy(&dec),
                String::from_utf8_lossy(&ours)
            ));
            continue;
        }
        // Types and comment positions, from the encrypted file.
        let mut enc_branches = store.load(&enc).expect("our parser reads sops' encrypted output");
        let mut errs = Vec::new();
        if enc_branches.len() != branches.len() {
            errs.push(format!(
                "{} documents expected, encrypted has {}",
                branches.len(),
                enc_branches.len()
            ));
        }
        for (i, (p, e)) in branches.iter().zip(enc_branches.iter_mut()).enumerate() {
            match e.0.pop() {
                Some(last) if last.key.as_str() == Some("sops") => {}
                _ => errs.push("encrypted document lacks the trailing sops key".into()),
            }
            let (mut want, mut got) = (Vec::new(), Vec::new());
            flatten_branch(p, "", false, &mut want);
            flatten_branch(e, "", true, &mut got);
            if want != got {
                errs.push(format!(
                    "document {i}: leaves differ:\n  ours: {want:?}\n  sops: {got:?}"
                ));
            }
        }
        if errs.is_empty() {
            passed.push(name);
        } else {
            failures.push(format!("{name}: structure mismatch: {errs:?}"));
        }
    }
    eprintln!("byte-identical + structure-checked: {passed:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Load errors: sops prints `Error unmarshalling file: <store error>`.
#[test]
fn errors_match_sops() {
    let store = YamlStore::default();
    let cases: &[(&str, &[u8])] = &[
        ("dup", b"a: 1\nb: 2\na: 3\n"),
        ("dup_nested", b"a: 1\nc:\n  x: 1\n  x: 2\n  x: 3\n"),
        ("dup_quoted", b"a: 1\n\"a\": 2\n"),
        ("top_seq", b"- a\n- b\n"),
        ("bad_indent", b"a:\n  b: 1\n c: 2\n"),
        ("map_values", b"a: b: c\n"),
        ("map_values_l3", b"x: 1\ny: 2\na: b: c\n"),
        ("unterminated", b"a: \"abc\n"),
        ("unterminated_single", b"a: 'abc\nb: 1\n"),
        ("only_comment", b"# just a comment\n"),
        ("whitespace", b" \n\n"),
        ("control", b"a: \"\x01\"\n"),
        ("bad_utf8", b"a: \xff\n"),
        ("unknown_anchor", b"a: *x\n"),
        ("recursive_anchor", b"a: &a\n  b: *a\n"),
        ("tab_indent", b"a:\n\tb: 1\n"),
        ("doc2_seq", b"a: 1\n---\n- x\n"),
        ("doc2_scalar", b"a: 1\n---\nfoo\n"),
        ("bad_binary", b"a: !!binary \"###\"\n"),
        ("bad_merge", b"a: 1\n<<: 5\n"),
        ("flow_unclosed", b"a: [1, 2\n"),
        ("bad_escape", b"a: \"\\q\"\n"),
        ("block_seq_in_map", b"a: 1\n- b\n"),
        ("undefined_handle", b"a: !e!x 1\n"),
    ];
    let mut failures = Vec::new();
    for (name, input) in cases {
        let ours = match store.load(input) {
            Ok(_) => "<no error>".to_string(),
            Err(e) => e.message,
        };
        let theirs = match sops_roundtrip(&format!("err_{name}"), input) {
            Ok(_) => "<no error>".to_string(),
            Err(stderr) => stderr.trim_end().to_string(),
        };
        let expected = format!("Error unmarshalling file: {ours}");
        if theirs != expected {
            failures.push(format!("{name}:\n  sops-ref: {theirs:?}\n  ours:     {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Cases where sops' message would print a value: ours leaves it out.
#[test]
fn redacted_errors() {
    let store = YamlStore::default();
    let e = store.load(b"hello\n").expect_err("scalar document");
    assert_eq!(
        e.message,
        "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str into map[string]interface {}"
    );
    let theirs = sops_roundtrip("red_scalar", b"hello\n").expect_err("sops rejects it");
    assert!(theirs.contains("line 1: cannot unmarshal !!str `hello` into map[string]interface {}"));

    let e = store.load(b"a: !!int abc\n").expect_err("bad int");
    assert_eq!(e.message, "yaml: cannot decode !!str as a !!int");
    let theirs = sops_roundtrip("red_int", b"a: !!int abc\n").expect_err("sops rejects it");
    assert!(theirs.contains("yaml: cannot decode !!str `abc` as a !!int"));
}

#[test]
fn uint64_fails_like_sops_walk() {
    let store = YamlStore::default();
    let input = b"a: 18446744073709551615\n";
    let e = store.load(input).expect_err("uint64 value");
    assert_eq!(e.message, UINT64_ERROR);
    let theirs = sops_roundtrip("uint64", input).expect_err("sops fails at encryption");
    assert!(theirs.contains("Error encrypting tree: Error walking tree: Cannot walk value, unknown type: uint64"));
    // As a key it is a non-string key (also rejected by the walker).
    let b = store.load(b"18446744073709551615: x\n").expect("loads");
    assert!(matches!(
        &b[0].0[0].key,
        Key::NonString {
            type_name: "uint64",
            ..
        }
    ));
}

#[test]
fn empty_input_has_no_documents() {
    let store = YamlStore::default();
    assert!(store.load(b"").expect("empty loads").is_empty());
    let theirs = sops_roundtrip("empty", b"").expect_err("sops rejects empty files");
    assert!(theirs.contains("File cannot be completely empty"));
}

#[test]
fn extract_values_like_sops() {
    let e = env();
    let input = b"i: 42\nf: 1.5e-7\nb: true\nn: null\nt: 2024-01-01\nl:\n  - a\n  - x: 1\n    y:\n      - deep\ne: []\nem: {}\n";
    let plain = e.dir.join("extract.yaml");
    std::fs::write(&plain, input).expect("write");
    let enc = sops(&["encrypt", "--age", &e.recipient], &plain);
    assert!(enc.status.success());
    let enc_path = e.dir.join("extract.enc.yaml");
    std::fs::write(&enc_path, &enc.stdout).expect("write");
    let store = YamlStore::new(2).expect("indent 2");
    let tree = store.load(input).expect("loads");
    for key in ["i", "f", "b", "n", "t", "l", "e", "em"] {
        let out = sops(&["decrypt", "--extract", &format!("[\"{key}\"]")], &enc_path);
        assert!(out.status.success(), "extract {key}");
        let v = tree[0].get(key).expect("key present");
        let ours = store.emit_value(v).expect("emit_value");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&out.stdout),
            "--extract [\"{key}\"]"
        );
    }
}
