//! Encrypting and decrypting a whole tree, and the MAC over it (spec §3–§5).
//!
//! One walk does both the cipher work and the hashing, in document order,
//! with the AAD path built incrementally so the cost is linear in file size.

use crate::cipher::{plaintext_bytes, CipherError, ValueCipher};
use crate::policy::Selector;
use crate::tree::{wipe_string, wipe_vec};
use crate::tree::{Branch, Document, Key, Value};
use sha2::{Digest, Sha512};
use std::fmt;
use zeroize::Zeroizing;

/// SHA-256("sops"): the MAC prefix when `mac_only_encrypted` is set (§5.1).
pub const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b, 0x0b, 0x97, 0x5b,
    0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

#[derive(Debug, Clone, PartialEq)]
pub enum TreeError {
    /// A YAML key that is not a string (exit 23 on encrypt).
    NonStringKey { type_name: &'static str, text: String },
    /// A value that should be encrypted could not be decrypted (exit 25).
    Decrypt { path: String, error: CipherError },
    /// A value that should be encrypted is not a string at all (exit 25).
    NotAString { path: String },
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TreeError::NonStringKey { type_name, text } => write!(
                f,
                "Error walking tree: Tree contains a non-string key (type {type_name}): {text}. Only string keys are supported"
            ),
            TreeError::Decrypt { path, error } => {
                write!(f, "Error walking tree: Could not decrypt value at {}: {error}", display_path(path))
            }
            TreeError::NotAString { path } => write!(
                f,
                "Error walking tree: Could not decrypt value at {}: expected an encrypted string",
                display_path(path)
            ),
        }
    }
}

fn display_path(aad: &str) -> String {
    let trimmed = aad.strip_suffix(':').unwrap_or(aad);
    if trimmed.is_empty() {
        "the top level".to_string()
    } else {
        format!("'{trimmed}'")
    }
}

impl std::error::Error for TreeError {}

/// The result of a walk: the MAC (uppercase hex SHA-512) and warnings.
pub struct WalkOutcome {
    pub mac: String,
    pub warnings: Vec<String>,
}

enum Mode<'c> {
    Encrypt(&'c ValueCipher),
    Decrypt(&'c mut ValueCipher),
    /// Hash only: the tree is plaintext and stays as it is.
    Mac,
}

struct Walker<'c, 's> {
    mode: Mode<'c>,
    selector: &'s Selector,
    mac_only_encrypted: bool,
    hash: Sha512,
    /// AAD of the current position: `k1:k2:` (list indices are not part of it).
    path: String,
    /// Number of path components that match the key selector.
    matched: usize,
    comments: Vec<Vec<String>>,
    track_comments: bool,
    warnings: Vec<String>,
    /// Formatting buffer for numbers fed to the MAC and the cipher.
    scratch: Zeroizing<Vec<u8>>,
}

impl Walker<'_, '_> {
    fn hash_value(&mut self, value: &Value) {
        if let Some((bytes, _)) = plaintext_bytes(value, &mut self.scratch) {
            self.hash.update(bytes);
        }
    }

    fn walk_branch(&mut self, branch: &mut Branch) -> Result<(), TreeError> {
        if self.track_comments {
            self.comments.push(Vec::new());
        }
        for item in &mut branch.0 {
            match &mut item.key {
                Key::Comment(text) => {
                    if self.track_comments {
                        self.comments.last_mut().expect("pushed above").push(text.clone());
                    }
                    let mut as_value = Value::Comment(std::mem::take(text));
                    self.leaf(&mut as_value)?;
                    item.key = match as_value {
                        Value::Comment(c) | Value::Str(c) => Key::Comment(c),
                        _ => unreachable_comment(),
                    };
                    // A comment does not reset the comment run (§4.2).
                    continue;
                }
                Key::NonString { type_name, text } => {
                    return Err(TreeError::NonStringKey {
                        type_name,
                        text: text.clone(),
                    })
                }
                Key::Str(key) => {
                    let old_len = self.path.len();
                    self.path.push_str(key);
                    self.path.push(':');
                    let key_matched = self.selector.key_matches(key);
                    self.matched += usize::from(key_matched);
                    let result = self.walk_value(&mut item.value);
                    self.matched -= usize::from(key_matched);
                    self.path.truncate(old_len);
                    result?;
                }
            }
            if self.track_comments {
                self.comments.last_mut().expect("pushed above").clear();
            }
        }
        if self.track_comments {
            self.comments.pop();
        }
        Ok(())
    }

    fn walk_list(&mut self, list: &mut [Value]) -> Result<(), TreeError> {
        if self.track_comments {
            self.comments.push(Vec::new());
        }
        for element in list {
            let is_comment = matches!(element, Value::Comment(_));
            if self.track_comments {
                if let Value::Comment(c) = element {
                    self.comments.last_mut().expect("pushed above").push(c.clone());
                }
            }
            self.walk_value(element)?;
            if self.track_comments && !is_comment {
                self.comments.last_mut().expect("pushed above").clear();
            }
        }
        if self.track_comments {
            self.comments.pop();
        }
        Ok(())
    }

    fn walk_value(&mut self, value: &mut Value) -> Result<(), TreeError> {
        match value {
            Value::Map(b) => self.walk_branch(b),
            Value::List(l) => self.walk_list(l),
            Value::Null => Ok(()),
            _ => self.leaf(value),
        }
    }

    fn leaf(&mut self, value: &mut Value) -> Result<(), TreeError> {
        let is_comment = matches!(value, Value::Comment(_));
        let encrypted = self
            .selector
            .should_encrypt(self.matched > 0, &self.comments, is_comment);
        let hashed = !self.mac_only_encrypted || encrypted;
        if matches!(self.mode, Mode::Decrypt(_)) {
            if encrypted {
                self.decrypt_leaf(value, is_comment)?;
            }
            if hashed && !matches!(value, Value::Comment(_)) {
                self.hash_value(value);
            }
            return Ok(());
        }
        let Some((bytes, typ)) = plaintext_bytes(value, &mut self.scratch) else {
            return Ok(());
        };
        if hashed && !is_comment {
            self.hash.update(bytes);
        }
        if let Mode::Encrypt(cipher) = &self.mode {
            if encrypted && !is_empty(value) {
                let aad = if self.path.is_empty() {
                    b":" as &[u8]
                } else {
                    self.path.as_bytes()
                };
                // Encrypted comments become strings: a list keeps them as
                // string elements, a mapping turns them back into comment keys.
                let enc = Value::Str(cipher.encrypt_bytes(bytes, typ, aad));
                // The plaintext leaves the tree here: wipe it now, not at the end.
                match &mut std::mem::replace(value, enc) {
                    Value::Str(old) | Value::Comment(old) | Value::Time(old) => wipe_string(old),
                    Value::Bytes(old) => wipe_vec(old),
                    _ => {}
                }
            } else if encrypted && is_comment {
                // sops turns an empty comment into an empty string too.
                *value = Value::Str(String::new());
            }
        }
        Ok(())
    }

    fn decrypt_leaf(&mut self, value: &mut Value, is_comment: bool) -> Result<(), TreeError> {
        // Borrow the fields separately: no per-value copy of the path.
        let Walker {
            mode, path, warnings, ..
        } = self;
        let aad: &[u8] = if path.is_empty() { b":" } else { path.as_bytes() };
        let Mode::Decrypt(cipher) = mode else {
            return Ok(());
        };
        match value {
            Value::Comment(text) => {
                if text.is_empty() {
                    return Ok(());
                }
                match cipher.decrypt_value(text, aad) {
                    Ok(Value::Comment(c)) | Ok(Value::Str(c)) => *value = Value::Comment(c),
                    Ok(_) | Err(_) => warnings.push(
                        "Found possibly unencrypted comment in file. This is to be expected if the file being \
                         decrypted was created with an older version of SOPS."
                            .to_string(),
                    ),
                }
            }
            Value::Str(text) => {
                if text.is_empty() {
                    return Ok(());
                }
                *value = cipher.decrypt_value(text, aad).map_err(|error| TreeError::Decrypt {
                    path: String::from_utf8_lossy(aad).into_owned(),
                    error,
                })?;
            }
            _ => {
                debug_assert!(!is_comment);
                return Err(TreeError::NotAString {
                    path: String::from_utf8_lossy(aad).into_owned(),
                });
            }
        }
        Ok(())
    }

    fn finish(self) -> WalkOutcome {
        let digest = self.hash.finalize();
        let mut mac = String::with_capacity(128);
        for b in digest {
            mac.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            mac.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
        WalkOutcome {
            mac,
            warnings: self.warnings,
        }
    }
}

fn unreachable_comment() -> Key {
    // A comment leaf only ever becomes another comment or an encrypted string.
    Key::Comment(String::new())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Str(s) | Value::Comment(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        _ => false,
    }
}

fn run(
    doc: &mut Document,
    mode: Mode<'_>,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    let mut w = Walker {
        mode,
        selector,
        mac_only_encrypted,
        hash: Sha512::new(),
        path: String::new(),
        matched: 0,
        comments: Vec::new(),
        track_comments: selector.uses_comments(),
        warnings: Vec::new(),
        scratch: Zeroizing::new(Vec::with_capacity(32)),
    };
    if mac_only_encrypted {
        w.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for branch in &mut doc.branches {
        w.walk_branch(branch)?;
    }
    Ok(w.finish())
}

/// Encrypt every selected value in place; returns the MAC of the plaintext.
pub fn encrypt_document(
    doc: &mut Document,
    cipher: &ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    run(doc, Mode::Encrypt(cipher), selector, mac_only_encrypted)
}

/// Decrypt every selected value in place; returns the MAC of the plaintext.
pub fn decrypt_document(
    doc: &mut Document,
    cipher: &mut ValueCipher,
    selector: &Selector,
    mac_only_encrypted: bool,
) -> Result<WalkOutcome, TreeError> {
    run(doc, Mode::Decrypt(cipher), selector, mac_only_encrypted)
}

/// The MAC of a plaintext document, without changing it.
pub fn plaintext_mac(doc: &mut Document, selector: &Selector, mac_only_encrypted: bool) -> Result<String, TreeError> {
    run(doc, Mode::Mac, selector, mac_only_encrypted).map(|o| o.mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::DataKey;
    use crate::policy::SelectorSpec;
    use crate::tree::Item;

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn spec_13_1_doc() -> Document {
        let app = Branch(vec![
            Item::new("password", s("s3cr3t")),
            Item::new("port", Value::Int(5432)),
            Item::new("ratio", Value::Float(0.5)),
            Item::new("debug", Value::Bool(false)),
            Item::new("hosts", Value::List(vec![s("h1")])),
        ]);
        Document::new(vec![Branch(vec![
            Item::comment(" hi"),
            Item::new("app", Value::Map(app)),
        ])])
    }

    #[test]
    fn mac_matches_spec_vector() {
        let sel = SelectorSpec::default().compile().unwrap();
        let mac = plaintext_mac(&mut spec_13_1_doc(), &sel, false).unwrap();
        assert_eq!(mac, "EDF2AAC8AF7020081328B6E2D0F9D6787CFD2B81B30BFDF8BD3BB354C1C18629D0FAEDC721C3902E8CB55FF528E314528A3955CD36B1AFD516B27BF63813D69F");
    }

    #[test]
    fn mac_only_encrypted_matches_spec_vector() {
        // spec §13.3
        let doc = Branch(vec![
            Item::new("top", s("secret1")),
            Item::new("plain", s("visible")),
            Item::new(
                "nested",
                Value::Map(Branch(vec![
                    Item::new("password", s("p1")),
                    Item::new("other", s("o1")),
                    Item::new("deep", Value::Map(Branch(vec![Item::new("password_x", s("p2"))]))),
                ])),
            ),
            Item::new(
                "list",
                Value::List(vec![Value::Map(Branch(vec![
                    Item::new("password", s("lp")),
                    Item::new("name", s("ln")),
                ]))]),
            ),
        ]);
        let sel = SelectorSpec {
            encrypted_regex: "^pass".into(),
            ..Default::default()
        }
        .compile()
        .unwrap();
        let mac = plaintext_mac(&mut Document::new(vec![doc]), &sel, true).unwrap();
        assert_eq!(mac, "77C42825CB0380CA7A3068B3D34070E021B8EABE8174E9110E9FB8E4A1D471DD260934379A1599B63DCC8E0FE5FA2323D78C8AA391FBF1E03ED5E147F35A3333");
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_macs_agree() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = spec_13_1_doc();
        doc.branches[0].push("port_unencrypted", Value::Int(1));
        doc.branches[0].push("empty", s(""));
        let original = doc.clone();
        let enc = encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(doc.branches[0].get("port_unencrypted"), Some(&Value::Int(1)));
        assert_eq!(doc.branches[0].get("empty"), Some(&s("")));
        assert!(matches!(&doc.branches[0].0[0].key, Key::Comment(c) if c.starts_with("ENC[")));
        let dec = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(enc.mac, dec.mac);
        assert_eq!(doc, original);
    }

    #[test]
    fn list_comments_become_strings_and_are_skipped_by_the_mac() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = Document::new(vec![Branch(vec![Item::new(
            "l",
            Value::List(vec![Value::Comment(" c".into()), s("x")]),
        )])]);
        let enc = encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        // Like sops, the encrypted comment is now a plain string element.
        let Some(Value::List(l)) = doc.branches[0].get("l") else {
            panic!()
        };
        assert!(matches!(&l[0], Value::Str(c) if c.ends_with("type:comment]")));
        let dec = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false).unwrap();
        assert_eq!(enc.mac, dec.mac);
    }

    #[test]
    fn renamed_key_fails_authentication() {
        let key = DataKey::generate();
        let sel = SelectorSpec::default().compile().unwrap();
        let mut doc = Document::new(vec![Branch(vec![Item::new("a", s("x"))])]);
        encrypt_document(&mut doc, &ValueCipher::new(&key), &sel, false).unwrap();
        doc.branches[0].0[0].key = Key::Str("b".into());
        let err = decrypt_document(&mut doc, &mut ValueCipher::new(&key), &sel, false)
            .err()
            .unwrap();
        assert!(matches!(
            err,
            TreeError::Decrypt {
                error: CipherError::Authentication,
                ..
            }
        ));
        assert!(!err.to_string().contains('x'.to_string().as_str()) || err.to_string().contains("'b'"));
    }
}
