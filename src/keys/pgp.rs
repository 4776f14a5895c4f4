//! PGP master keys (spec §9.2) through the GnuPG binary, run exactly as
//! sops runs it, so gpg-agent, pinentry, smartcards and modern keyrings
//! (`pubring.kbx`, `private-keys-v1.d`) all work.
//!
//! sops 3.11 first tries an in-process OpenPGP library on the legacy
//! `pubring.gpg`/`secring.gpg` files, which GnuPG ≥ 2.1 no longer writes, and
//! then falls back to the binary. rsops goes to the binary directly.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use zeroize::Zeroizing;

/// Where and how to run gpg. The CLI fills this from the environment; this
/// module never reads environment variables itself.
#[derive(Clone, Default)]
pub struct PgpConfig {
    /// `SOPS_GPG_EXEC`: the gpg program (a path, or a name looked up in PATH).
    pub gpg_exec: Option<OsString>,
    /// `GNUPGHOME`: passed on as `--homedir`.
    pub gnupg_home: Option<PathBuf>,
    /// The terminal to hand to gpg as `GPG_TTY` when the environment has
    /// none, so pinentry-curses can prompt even though gpg's stdin is a pipe.
    pub gpg_tty: Option<OsString>,
}

impl PgpConfig {
    fn program(&self) -> OsString {
        self.gpg_exec.clone().unwrap_or_else(|| OsString::from("gpg"))
    }

    fn command(&self) -> Command {
        let mut c = Command::new(self.program());
        if let Some(home) = &self.gnupg_home {
            c.arg("--homedir").arg(home);
        }
        if let Some(tty) = &self.gpg_tty {
            c.env("GPG_TTY", tty);
        }
        c
    }

    /// Run gpg with `input` on stdin; stdout and stderr are captured (the
    /// terminal stays available to pinentry through `GPG_TTY`).
    fn run(&self, args: &[&str], input: &[u8]) -> Result<(Zeroizing<Vec<u8>>, String), String> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("could not run {:?}: {e}", self.program().to_string_lossy()))?;
        let mut stdin = child.stdin.take().expect("stdin was configured as a pipe");
        // Feed stdin from a thread so a chatty gpg cannot deadlock us.
        let output = std::thread::scope(|s| {
            s.spawn(move || {
                // gpg may exit before reading everything (e.g. on a bad key):
                // that shows up in its exit status and stderr instead.
                let _ = stdin.write_all(input);
            });
            child.wait_with_output()
        })
        .map_err(|e| format!("could not run {:?}: {e}", self.program().to_string_lossy()))?;
        let stdout = Zeroizing::new(output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if output.status.success() {
            Ok((stdout, stderr))
        } else if stderr.is_empty() {
            Err(format!("gpg exited with {}", output.status))
        } else {
            Err(stderr)
        }
    }

    /// Encrypt `secret` to the key `fp`: the armored message, trimmed.
    pub fn encrypt(&self, fp: &str, secret: &[u8]) -> Result<String, String> {
        let short = short_fingerprint(fp);
        let args = [
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            fp,
            "--trusted-key",
            short,
            "--no-encrypt-to",
        ];
        let wrap = |e: String| {
            format!("could not encrypt data key with PGP key: GnuPG binary error: failed to encrypt sops data key with pgp: {e}")
        };
        let (stdout, _) = self.run(&args, secret).map_err(wrap)?;
        let text = std::str::from_utf8(&stdout).map_err(|_| wrap("gpg printed a non-UTF-8 armored message".into()))?;
        let text = text.trim();
        if text.is_empty() {
            return Err(wrap("gpg printed no armored message".into()));
        }
        Ok(text.to_string())
    }

    /// Decrypt an armored message (gpg's own form, or the go-crypto form
    /// with no newline after the END line).
    pub fn decrypt(&self, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let wrap = |e: String| {
            format!("could not decrypt data key with PGP key: GnuPG binary error: failed to decrypt sops data key with pgp: {e}")
        };
        if enc.trim().is_empty() {
            return Err(wrap("the key entry has no encrypted data key".into()));
        }
        let mut input = Zeroizing::new(enc.trim_end().as_bytes().to_vec());
        input.push(b'\n');
        let (stdout, _) = self.run(&["-d"], &input).map_err(wrap)?;
        if stdout.is_empty() {
            return Err(wrap("gpg decrypted to an empty data key".into()));
        }
        Ok(stdout)
    }
}

/// The last 16 characters of a fingerprint (its long key ID), ignoring a
/// trailing `!` (gpg's "exactly this subkey" marker).
pub fn short_fingerprint(fp: &str) -> &str {
    let fp = fp.strip_suffix('!').unwrap_or(fp);
    match fp.char_indices().rev().nth(15) {
        Some((i, _)) => &fp[i..],
        None => fp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_fingerprint_takes_the_long_key_id() {
        assert_eq!(
            short_fingerprint("75348C458913B326A40FFBA2E8C7DF7EA7FEE088"),
            "E8C7DF7EA7FEE088"
        );
        assert_eq!(
            short_fingerprint("75348C458913B326A40FFBA2E8C7DF7EA7FEE088!"),
            "E8C7DF7EA7FEE088"
        );
        assert_eq!(short_fingerprint("ABCD"), "ABCD");
        assert_eq!(short_fingerprint("E8C7DF7EA7FEE088"), "E8C7DF7EA7FEE088");
    }

    #[test]
    fn missing_gpg_is_a_clear_error() {
        let c = PgpConfig {
            gpg_exec: Some("/nonexistent/rsops-test-gpg".into()),
            ..Default::default()
        };
        let e = c.encrypt("ABCD", &[1; 32]).unwrap_err();
        assert!(e.starts_with("could not encrypt data key with PGP key:"), "{e}");
        assert!(e.contains("/nonexistent/rsops-test-gpg"), "{e}");
        let e = c
            .decrypt("-----BEGIN PGP MESSAGE-----\n\nx\n-----END PGP MESSAGE-----")
            .unwrap_err();
        assert!(e.contains("could not run"), "{e}");
    }
}
