//! age master keys (spec §9.1): X25519 and SSH recipients, armored stanzas,
//! identities collected from every source sops reads.

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::str::FromStr;
use zeroize::Zeroizing;

type BoxedIdentity = Box<dyn age::Identity + Send + Sync>;

/// Where identities may come from. The CLI fills this from the environment;
/// this module never reads environment variables itself.
#[derive(Clone, Default)]
pub struct AgeSources {
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`
    pub ssh_key_file: Option<PathBuf>,
    /// `~/.ssh/id_ed25519`, `~/.ssh/id_rsa` (tried when they exist)
    pub default_ssh_keys: Vec<PathBuf>,
    /// `SOPS_AGE_KEY` (identity file contents)
    pub key: Option<Zeroizing<String>>,
    /// `SOPS_AGE_KEY_FILE`
    pub key_file: Option<PathBuf>,
    /// `SOPS_AGE_KEY_CMD`
    pub key_cmd: Option<String>,
    /// `<user config dir>/sops/age/keys.txt`
    pub default_key_file: Option<PathBuf>,
}

/// Identities loaded once per process, with the report sops gives when a
/// source is missing or broken.
pub struct AgeIdentities {
    identities: Vec<BoxedIdentity>,
    errors: Vec<String>,
    missing: Vec<String>,
}

fn parse_identity_text(text: &str, source: &str) -> Result<Vec<BoxedIdentity>, String> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with("-----BEGIN AGE") || text.trim_start().starts_with("age-encryption.org") {
        return Err(format!(
            "failed to parse '{source}' age identities: passphrase-protected identity files are not supported yet"
        ));
    }
    let file = age::IdentityFile::from_buffer(text.as_bytes())
        .map_err(|_| format!("failed to parse '{source}' age identities: unknown identity type"))?;
    file.into_identities()
        .map_err(|e| format!("failed to parse '{source}' age identities: {e}"))
}

fn parse_ssh_identity(bytes: &[u8], path: &str) -> Result<BoxedIdentity, String> {
    let id = age::ssh::Identity::from_buffer(bytes, Some(path.to_string()))
        .map_err(|e| format!("failed to parse SSH key from '{path}': {e}"))?;
    if let age::ssh::Identity::Encrypted(_) = id {
        return Err(format!(
            "failed to parse SSH key from '{path}': passphrase-protected SSH keys are not supported yet"
        ));
    }
    Ok(Box::new(id))
}

fn run_key_cmd(cmd: &str) -> Result<Zeroizing<String>, String> {
    let argv = shlex::split(cmd).ok_or_else(|| "failed to parse SOPS_AGE_KEY_CMD: invalid quoting".to_string())?;
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| "SOPS_AGE_KEY_CMD is empty".to_string())?;
    let out = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("failed to execute SOPS_AGE_KEY_CMD: {e}"))?;
    if !out.status.success() {
        return Err(format!("failed to execute SOPS_AGE_KEY_CMD: {}", out.status));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| "SOPS_AGE_KEY_CMD printed invalid UTF-8".to_string())?;
    Ok(Zeroizing::new(text))
}

impl AgeIdentities {
    pub fn load(src: &AgeSources) -> AgeIdentities {
        let mut ids = AgeIdentities {
            identities: Vec::new(),
            errors: Vec::new(),
            missing: Vec::new(),
        };
        match &src.ssh_key_file {
            Some(p) => ids.add_ssh_file(p),
            None => ids.missing.push("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into()),
        }
        for p in &src.default_ssh_keys {
            if p.exists() {
                ids.add_ssh_file(p);
            } else {
                ids.missing.push(p.display().to_string());
            }
        }
        match &src.key {
            Some(text) => ids.add_text(text, "SOPS_AGE_KEY"),
            None => ids.missing.push("SOPS_AGE_KEY".into()),
        }
        match &src.key_file {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => ids.add_text(&Zeroizing::new(text), "SOPS_AGE_KEY_FILE"),
                Err(e) => ids
                    .errors
                    .push(format!("failed to open file: open {}: {}", p.display(), io_msg(&e))),
            },
            None => ids.missing.push("SOPS_AGE_KEY_FILE".into()),
        }
        match &src.key_cmd {
            Some(cmd) => match run_key_cmd(cmd) {
                Ok(text) => ids.add_text(&text, "SOPS_AGE_KEY_CMD"),
                Err(e) => ids.errors.push(e),
            },
            None => ids.missing.push("SOPS_AGE_KEY_CMD".into()),
        }
        // The default key file is only consulted without SOPS_AGE_KEY_FILE.
        if src.key_file.is_none() {
            if let Some(p) = &src.default_key_file {
                match std::fs::read_to_string(p) {
                    Ok(text) => ids.add_text(&Zeroizing::new(text), &p.display().to_string()),
                    Err(_) => ids.missing.push(p.display().to_string()),
                }
            }
        }
        ids
    }

    fn add_ssh_file(&mut self, p: &std::path::Path) {
        match std::fs::read(p) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                match parse_ssh_identity(&bytes, &p.display().to_string()) {
                    Ok(id) => self.identities.push(id),
                    Err(e) => self.errors.push(e),
                }
            }
            Err(e) => self
                .errors
                .push(format!("failed to open file: open {}: {}", p.display(), io_msg(&e))),
        }
    }

    fn add_text(&mut self, text: &str, source: &str) {
        match parse_identity_text(text, source) {
            Ok(mut v) => self.identities.append(&mut v),
            Err(e) => self.errors.push(e),
        }
    }

    /// The suffix sops appends to every age failure.
    fn locations_suffix(&self) -> String {
        if self.missing.is_empty() {
            return String::new();
        }
        let quoted: Vec<String> = self.missing.iter().map(|m| format!("'{m}'")).collect();
        let list = match quoted.len() {
            1 => quoted[0].clone(),
            n => format!("{}, and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
        };
        format!(" Did not find keys in locations {list}.")
    }

    fn load_failure(&self) -> Option<String> {
        if !self.identities.is_empty() {
            return None;
        }
        let mut msg = String::from("failed to load age identities.");
        if !self.errors.is_empty() {
            msg.push_str(" Errors while loading age identities: ");
            msg.push_str(&self.errors.join("; "));
        }
        msg.push_str(&self.locations_suffix());
        Some(msg)
    }

    /// Decrypt an armored age stanza produced for one recipient.
    pub fn decrypt(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        if let Some(e) = self.load_failure() {
            return Err(e);
        }
        let reader = ArmoredReader::new(enc.as_bytes());
        let decryptor = age::Decryptor::new(reader)
            .map_err(|e| format!("failed to create reader for decrypting sops data key with age: {e}"))?;
        let mut out = Zeroizing::new(Vec::new());
        let mut r = decryptor
            .decrypt(self.identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| {
                let detail = match e {
                    // Go age words this differently for one identity and for several.
                    age::DecryptError::NoMatchingKeys if self.identities.len() == 1 => {
                        "identity did not match any of the recipients: incorrect identity for recipient block"
                            .to_string()
                    }
                    age::DecryptError::NoMatchingKeys => "no identity matched any of the recipients".to_string(),
                    other => other.to_string(),
                };
                format!(
                    "failed to create reader for decrypting sops data key with age: {detail}.{}",
                    self.locations_suffix()
                )
            })?;
        r.read_to_end(&mut out)
            .map_err(|e| format!("failed to read data key decrypted with age: {e}"))?;
        Ok(out)
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// A parsed recipient: the text is kept verbatim for the metadata.
pub enum AgeRecipient {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl AgeRecipient {
    pub fn parse(text: &str) -> Result<AgeRecipient, String> {
        let t = text.trim();
        if t.starts_with("age1pq1") {
            return Err(format!("post-quantum age recipients are not supported yet: {t:?}"));
        }
        if let Some(rest) = t.strip_prefix("age1") {
            if rest.contains('1') && age::x25519::Recipient::from_str(t).is_err() {
                return Err(format!("age plugin recipients are not supported yet: {t:?}"));
            }
            return age::x25519::Recipient::from_str(t)
                .map(AgeRecipient::X25519)
                .map_err(|e| format!("failed to parse input as Bech32-encoded age public key: {e}"));
        }
        if t.starts_with("ssh-") {
            return age::ssh::Recipient::from_str(t)
                .map(AgeRecipient::Ssh)
                .map_err(|e| format!("failed to parse input as SSH public key: {e:?}"));
        }
        Err(format!("failed to parse input, unknown recipient type: {t:?}"))
    }

    fn as_dyn(&self) -> &dyn age::Recipient {
        match self {
            AgeRecipient::X25519(r) => r,
            AgeRecipient::Ssh(r) => r,
        }
    }

    /// Encrypt `secret` to this recipient as an armored age file.
    pub fn encrypt(&self, secret: &[u8]) -> Result<String, String> {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(self.as_dyn()))
            .map_err(|e| format!("failed to create age encryptor: {e}"))?;
        let mut out = Vec::new();
        let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| e.to_string())?;
        let mut w = encryptor.wrap_output(armored).map_err(|e| e.to_string())?;
        w.write_all(secret).map_err(|e| e.to_string())?;
        w.finish().and_then(|a| a.finish()).map_err(|e| e.to_string())?;
        String::from_utf8(out).map_err(|_| "age armor is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn armored_round_trip() {
        let id = age::x25519::Identity::generate();
        let r = AgeRecipient::parse(&id.to_public().to_string()).unwrap();
        let enc = r.encrypt(&[9u8; 32]).unwrap();
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(enc.ends_with("-----END AGE ENCRYPTED FILE-----\n"));
        let src = AgeSources {
            key: Some(Zeroizing::new(id.to_string().expose_secret().to_string())),
            ..Default::default()
        };
        let ids = AgeIdentities::load(&src);
        assert_eq!(&ids.decrypt(&enc).unwrap()[..], &[9u8; 32]);
    }

    #[test]
    fn missing_identities_name_every_location() {
        let r = AgeRecipient::parse(&age::x25519::Identity::generate().to_public().to_string()).unwrap();
        let enc = r.encrypt(&[1; 32]).unwrap();
        let ids = AgeIdentities::load(&AgeSources::default());
        let e = ids.decrypt(&enc).unwrap_err();
        assert!(e.starts_with("failed to load age identities."), "{e}");
        assert!(e.contains("'SOPS_AGE_KEY_FILE'"), "{e}");
    }

    #[test]
    fn unknown_recipient_type() {
        assert!(AgeRecipient::parse("foo")
            .err()
            .unwrap()
            .contains("unknown recipient type"));
    }
}
