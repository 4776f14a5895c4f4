//! Master key sources: wrapping the data key for every recipient and
//! recovering it on decrypt (spec §6, §9).

pub mod age;
pub mod kms;
pub mod pgp;
pub mod vault;

use crate::cipher::DataKey;
use crate::metadata::{MasterKey, Metadata};
use crate::shamir;
use crate::timefmt::Timestamp;
use std::cell::OnceCell;
use std::fmt;
use zeroize::Zeroizing;

/// Everything key sources need from the outside world, gathered by the CLI.
#[derive(Clone, Default)]
pub struct KeyConfig {
    pub age: age::AgeSources,
    pub pgp: pgp::PgpConfig,
    pub vault: vault::VaultConfig,
    pub kms: kms::KmsConfig,
}

/// Key sources for one process. Identities, HTTP clients and the AWS
/// runtime are set up on first use only, so encrypting never touches private
/// keys and a run without KMS keys never starts an async runtime.
pub struct Keyring {
    config: KeyConfig,
    age_identities: OnceCell<age::AgeIdentities>,
    vault: OnceCell<Result<vault::VaultClient, String>>,
    kms: OnceCell<Result<kms::KmsClient, String>>,
}

impl Keyring {
    pub fn new(config: KeyConfig) -> Keyring {
        Keyring {
            config,
            age_identities: OnceCell::new(),
            vault: OnceCell::new(),
            kms: OnceCell::new(),
        }
    }

    fn vault(&self) -> Result<&vault::VaultClient, String> {
        self.vault
            .get_or_init(|| vault::VaultClient::new(&self.config.vault))
            .as_ref()
            .map_err(|e| format!("failed to create Vault client: {e}"))
    }

    fn kms(&self) -> Result<&kms::KmsClient, String> {
        self.kms
            .get_or_init(|| kms::KmsClient::new(&self.config.kms))
            .as_ref()
            .map_err(|e| e.clone())
    }

    /// Wrap `secret` (the data key or a Shamir share) for one master key.
    pub fn wrap(&self, key: &mut MasterKey, secret: &[u8]) -> Result<(), String> {
        let enc = match key {
            MasterKey::Age { recipient, .. } => age::AgeRecipient::parse(recipient)?.encrypt(secret)?,
            MasterKey::Pgp { fp, .. } => self.config.pgp.encrypt(fp, secret)?,
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                ..
            } => self.vault()?.encrypt(vault_address, engine_path, key_name, secret)?,
            MasterKey::Kms {
                arn,
                role,
                context,
                aws_profile,
                ..
            } => self.kms()?.encrypt(
                &kms::KmsKey {
                    arn,
                    role,
                    context,
                    aws_profile,
                },
                secret,
            )?,
            other => return Err(unsupported(other)),
        };
        key.set_enc(enc);
        key.set_created_at(Timestamp::now_utc().format_rfc3339());
        Ok(())
    }

    /// Unwrap the secret stored in one master key entry.
    pub fn unwrap(&self, key: &MasterKey) -> Result<Zeroizing<Vec<u8>>, String> {
        match key {
            MasterKey::Age { enc, .. } => self
                .age_identities
                .get_or_init(|| age::AgeIdentities::load(&self.config.age))
                .decrypt(enc),
            MasterKey::Pgp { enc, .. } => self.config.pgp.decrypt(enc),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                enc,
                ..
            } => self.vault()?.decrypt(vault_address, engine_path, key_name, enc),
            MasterKey::Kms {
                arn,
                role,
                context,
                aws_profile,
                enc,
                ..
            } => self.kms()?.decrypt(
                &kms::KmsKey {
                    arn,
                    role,
                    context,
                    aws_profile,
                },
                enc,
            ),
            other => Err(unsupported(other)),
        }
    }
}

fn unsupported(key: &MasterKey) -> String {
    format!("rsops does not support {} master keys yet", key.type_id())
}

/// Why the data key could not be recovered: the per-group, per-key report
/// sops prints (exit 128). Holds no secrets: only key identities and errors
/// (its `Debug` shows the shape only, like every type near key material).
#[derive(Clone)]
pub struct RecoveryError {
    /// The Shamir threshold, or 0 for a single group.
    pub threshold: usize,
    /// One entry per group: `None` on success, else each key's failure.
    pub groups: Vec<Option<Vec<(String, String)>>>,
    /// Set when shares were recovered but could not be combined.
    pub combine_error: Option<String>,
}

impl fmt::Debug for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryError")
            .field("threshold", &self.threshold)
            .field("groups", &self.groups.len())
            .field("failed_groups", &self.groups.iter().filter(|g| g.is_some()).count())
            .field("combine_error", &self.combine_error.is_some())
            .finish()
    }
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(e) = &self.combine_error {
            return write!(f, "could not get data key: could not combine Shamir shares: {e}");
        }
        let mut groups = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            match g {
                None => groups.push(format!("Group {i}: SUCCESS")),
                Some(keys) => {
                    let keys: Vec<String> = keys
                        .iter()
                        .map(|(id, err)| {
                            let wrapped = word_wrap(err, 60);
                            let body = prefix_lines(&wrapped, "  | ");
                            format!("{id}: FAILED\n{}", prefix_lines(&format!("-{}", &body[1..]), "  "))
                        })
                        .collect();
                    groups.push(format!("Group {i}: FAILED\n{}", prefix_lines(&keys.join("\n\n"), "  ")));
                }
            }
        }
        let ok = self.groups.iter().filter(|g| g.is_none()).count();
        let trailer = if self.threshold == 0 {
            "Recovery failed because no master key was able to decrypt the file. In order for SOPS to recover \
             the file, at least one key has to be successful, but none were."
                .to_string()
        } else {
            format!(
                "Recovery failed because the file was encrypted with a Shamir threshold of {t}, but only {ok} \
                 part(s) were successfully recovered, one for each successful key group. In order for SOPS to \
                 recover the file, at least {t} groups have to be successful. In order for a group to be \
                 successful, decryption has to succeed with any of the keys in that key group.",
                t = self.threshold
            )
        };
        write!(
            f,
            "Failed to get the data key required to decrypt the SOPS file.\n\n{}\n\n{}",
            groups.join("\n\n"),
            word_wrap(&trailer, 75)
        )
    }
}

impl std::error::Error for RecoveryError {}

fn prefix_lines(s: &str, prefix: &str) -> String {
    s.split('\n')
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// go-wordwrap's `WrapString`: break at whitespace so lines stay within
/// `limit` characters where possible; existing newlines are kept.
pub fn word_wrap(s: &str, limit: usize) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut word = String::new();
    let mut space = String::new();
    let (mut current, mut word_len, mut space_len) = (0usize, 0usize, 0usize);
    for ch in s.chars() {
        if ch == '\n' {
            out.push_str(&space);
            out.push_str(&word);
            out.push('\n');
            space.clear();
            word.clear();
            (current, word_len, space_len) = (0, 0, 0);
        } else if ch.is_whitespace() && ch != '\u{a0}' {
            if space.is_empty() || !word.is_empty() {
                current += space_len + word_len;
                out.push_str(&space);
                out.push_str(&word);
                space.clear();
                word.clear();
                (word_len, space_len) = (0, 0);
            }
            space.push(ch);
            space_len += 1;
        } else {
            word.push(ch);
            word_len += 1;
            if current + space_len + word_len > limit && word_len < limit {
                out.push('\n');
                current = 0;
                space.clear();
                space_len = 0;
            }
        }
    }
    if word.is_empty() {
        if current + space_len <= limit {
            out.push_str(&space);
        }
    } else {
        out.push_str(&space);
        out.push_str(&word);
    }
    out
}

/// The default decryption order (§9.9).
pub const DEFAULT_DECRYPTION_ORDER: &[&str] = &["age", "pgp"];

/// Order a group's keys: listed types first in the given order, the rest
/// after, stable within a type.
fn ordered<'a>(group: &'a [MasterKey], order: &[String]) -> Vec<&'a MasterKey> {
    let mut keys: Vec<&MasterKey> = group.iter().collect();
    keys.sort_by_key(|k| order.iter().position(|t| t == k.type_id()).unwrap_or(order.len()));
    keys
}

/// Recover the data key from the metadata's key groups (§6.2).
pub fn recover_data_key(meta: &Metadata, keyring: &Keyring, order: &[String]) -> Result<DataKey, RecoveryError> {
    let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut report = Vec::new();
    for group in &meta.key_groups {
        let mut failures = Vec::new();
        let mut part = None;
        for key in ordered(group, order) {
            match keyring.unwrap(key) {
                Ok(p) => {
                    part = Some(p);
                    break;
                }
                Err(e) => failures.push((key.identity(), e)),
            }
        }
        match part {
            Some(p) => {
                parts.push(p);
                report.push(None);
                // A single group needs only its own key.
                if meta.key_groups.len() == 1 {
                    break;
                }
            }
            None => report.push(Some(failures)),
        }
    }
    // The report states the stored threshold, as sops does.
    let fail = |combine_error| RecoveryError {
        threshold: meta.shamir_threshold,
        groups: report.clone(),
        combine_error,
    };
    if meta.key_groups.len() <= 1 {
        let p = parts.pop().ok_or_else(|| fail(None))?;
        return DataKey::from_slice(&p).ok_or_else(|| fail(Some("the data key is not 32 bytes long".into())));
    }
    let needed = if meta.shamir_threshold == 0 {
        meta.key_groups.len()
    } else {
        meta.shamir_threshold
    };
    if parts.len() < needed.max(2) {
        return Err(fail(None));
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    let key = shamir::combine(&refs).map_err(|e| fail(Some(e.to_string())))?;
    DataKey::from_slice(&key).ok_or_else(|| fail(Some("the combined data key is not 32 bytes long".into())))
}

/// Wrap the data key for every master key; with several groups, split it
/// with Shamir first (one share per group). Returns every failure.
pub fn wrap_data_key(meta: &mut Metadata, key: &DataKey, keyring: &Keyring) -> Result<(), Vec<String>> {
    if meta.key_groups.is_empty() {
        return Err(vec!["no key groups provided".into()]);
    }
    if meta.key_groups.iter().any(|g| g.is_empty()) {
        return Err(vec!["Could not generate data key: [empty key group provided]".into()]);
    }
    let parts: Vec<Zeroizing<Vec<u8>>> = if meta.key_groups.len() == 1 {
        vec![Zeroizing::new(key.as_bytes().to_vec())]
    } else {
        if meta.shamir_threshold == 0 {
            meta.shamir_threshold = meta.key_groups.len();
        }
        shamir::split(key.as_bytes(), meta.key_groups.len(), meta.shamir_threshold)
            .map_err(|e| vec![format!("could not split data key into parts for Shamir: {e}")])?
    };
    let mut errors = Vec::new();
    for (group, part) in meta.key_groups.iter_mut().zip(&parts) {
        for k in group.iter_mut() {
            if let Err(e) = keyring.wrap(k, part) {
                errors.push(format!(
                    "failed to encrypt new data key with master key {:?}: {e}",
                    k.identity()
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_wrap_matches_go_wordwrap() {
        let s = "failed to create reader for decrypting sops data key with age: identity did not match";
        assert_eq!(
            word_wrap(s, 60),
            "failed to create reader for decrypting sops data key with\nage: identity did not match"
        );
        assert_eq!(word_wrap("a\nb c", 3), "a\nb c");
    }

    #[test]
    fn report_layout_matches_sops() {
        let e = RecoveryError {
            threshold: 0,
            groups: vec![Some(vec![
                ("age1x".into(), "boom".into()),
                ("FP".into(), "bang".into()),
            ])],
            combine_error: None,
        };
        assert_eq!(
            e.to_string(),
            "Failed to get the data key required to decrypt the SOPS file.\n\nGroup 0: FAILED\n  age1x: FAILED\n    - | boom\n  \n  FP: FAILED\n    - | bang\n\nRecovery failed because no master key was able to decrypt the file. In\norder for SOPS to recover the file, at least one key has to be successful,\nbut none were."
        );
    }
}
