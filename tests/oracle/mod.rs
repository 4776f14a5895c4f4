//! Shared helpers for the oracle tests: run the real sops 3.11 (`sops-ref`)
//! with a throw-away age key, and compare trees with their encrypted forms.
//!
//! The tools are required: a missing tool fails the test with its name,
//! so a machine without them can never report a green run.
#![allow(dead_code)]

use rsops::stores::json::JsonStore;
use rsops::stores::Store;
use rsops::tree::{Branch, Key, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const AGE_KEYGEN: &str = "age-keygen";

/// Panics with the tool's name when it is not on `PATH`.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("required tool `{name}` was not found on PATH"))
}

/// A scratch directory with an age key; every sops-ref call runs inside it
/// (so no `.sops.yaml` from elsewhere is picked up unless a test writes one).
pub struct Oracle {
    pub dir: PathBuf,
    key_file: PathBuf,
    recipient: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Oracle {
    pub fn new(label: &str) -> Oracle {
        crate::common::sops_ref();
        require_tool(AGE_KEYGEN);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rsops-oracle-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        let key_file = dir.join("key.txt");
        let out = Command::new(AGE_KEYGEN)
            .arg("-o")
            .arg(&key_file)
            .stderr(Stdio::null())
            .status()
            .expect("run age-keygen");
        assert!(out.success(), "age-keygen failed");
        let out = Command::new(AGE_KEYGEN)
            .arg("-y")
            .arg(&key_file)
            .output()
            .expect("run age-keygen -y");
        let recipient = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
        Oracle {
            dir,
            key_file,
            recipient,
        }
    }

    fn sops(&self, args: &[&str]) -> Output {
        Command::new(crate::common::sops_ref())
            .args(args)
            .current_dir(&self.dir)
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .env_remove("SOPS_AGE_RECIPIENTS")
            .env_remove("SOPS_AGE_KEY")
            .output()
            .expect("run sops-ref")
    }

    fn result(out: Output) -> Result<Vec<u8>, String> {
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
        }
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, data).expect("write scratch file");
        p
    }

    /// `sops-ref encrypt --age R [extra] name` with `input` written to `name`.
    pub fn encrypt(&self, name: &str, input: &[u8], extra: &[&str]) -> Result<Vec<u8>, String> {
        self.write(name, input);
        let mut args = vec!["encrypt", "--age", self.recipient.as_str()];
        args.extend_from_slice(extra);
        args.push(name);
        Self::result(self.sops(&args))
    }

    /// `sops-ref decrypt [extra] name` with `enc` written to `name`.
    pub fn decrypt(&self, name: &str, enc: &[u8], extra: &[&str]) -> Result<Vec<u8>, String> {
        self.write(name, enc);
        let mut args = vec!["decrypt"];
        args.extend_from_slice(extra);
        args.push(name);
        Self::result(self.sops(&args))
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn corpus(dir: &str, ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stores").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("read {}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", root.display());
    files
}

/// The `type:` tag of an `ENC[...]` string.
pub fn enc_type(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("ENC[AES256_GCM,")?;
    let t = rest.rsplit_once(",type:")?.1;
    t.strip_suffix(']')
}

/// The type sops must have recorded for a plaintext scalar.
pub fn expected_type(v: &Value) -> Option<&'static str> {
    match v {
        Value::Str(s) if s.is_empty() => None,
        Value::Bytes(b) if b.is_empty() => None,
        Value::Str(_) | Value::Bytes(_) => Some("str"),
        Value::Float(_) => Some("float"),
        Value::Int(_) => Some("int"),
        Value::Bool(_) => Some("bool"),
        Value::Time(_) => Some("time"),
        Value::Comment(c) if c.is_empty() => None,
        Value::Comment(_) => Some("comment"),
        _ => None,
    }
}

/// Walks a plaintext tree and the same tree as sops encrypted it (both
/// loaded by our stores), checking shape and every value's `type:` tag.
pub fn check_types(plain: &Value, enc: &Value, path: &str) {
    match (plain, enc) {
        (Value::Map(p), Value::Map(e)) => check_branch_types(p, e, path),
        (Value::List(p), Value::List(e)) => {
            assert_eq!(p.len(), e.len(), "list length at {path}");
            for (i, (a, b)) in p.iter().zip(e).enumerate() {
                check_types(a, b, &format!("{path}[{i}]"));
            }
        }
        (Value::Null, Value::Null) => {}
        (p, Value::Str(e)) => match expected_type(p) {
            Some(t) => assert_eq!(enc_type(e), Some(t), "type tag at {path}"),
            None => assert_eq!(e, "", "unencrypted empty value at {path}"),
        },
        (p, e) => panic!("shape differs at {path}: {p:?} vs {e:?}"),
    }
}

pub fn check_branch_types(plain: &Branch, enc: &Branch, path: &str) {
    let enc_items: Vec<_> = enc
        .0
        .iter()
        .filter(|i| !(path.is_empty() && i.key.as_str() == Some("sops")))
        .collect();
    assert_eq!(plain.0.len(), enc_items.len(), "item count at {path}");
    for (p, e) in plain.0.iter().zip(enc_items) {
        match (&p.key, &e.key) {
            // Comments are encrypted in key position.
            (Key::Comment(pc), Key::Comment(ec)) if !pc.is_empty() => {
                assert_eq!(enc_type(ec.trim()), Some("comment"), "comment at {path}")
            }
            _ => assert_eq!(p.key, e.key, "key at {path}"),
        }
        let name = match &p.key {
            Key::Str(k) => k.clone(),
            _ => "#".to_string(),
        };
        check_types(&p.value, &e.value, &format!("{path}/{name}"));
    }
}

/// Loads a sops-ref encrypted JSON file (the binary store's format too).
pub fn load_encrypted_json(enc: &[u8]) -> Branch {
    JsonStore::default()
        .load(enc)
        .expect("our JSON store reads sops' encrypted output")
        .remove(0)
}

/// Strips the CLI's prefix and our position suffix for message comparison.
pub fn strip_position(msg: &str) -> &str {
    match msg.rfind(" (line ") {
        Some(p) if msg.ends_with(')') => &msg[..p],
        _ => msg,
    }
}

/// Shows bytes readably in assertion failures.
pub fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
