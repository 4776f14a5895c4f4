//! What every command shares: errors and exit codes, the environment,
//! config loading, key groups from flags, reading input and writing output.

use crate::cli::args::{KeyArgs, SelectorArgs};
use rsops::config::{keyspec, Config, CreationRule};
use rsops::keys::age::AgeSources;
use rsops::keys::kms::KmsConfig;
use rsops::keys::pgp::PgpConfig;
use rsops::keys::vault::VaultConfig;
use rsops::keys::{KeyConfig, Keyring};
use rsops::metadata::KeyGroup;
use rsops::policy::SelectorSpec;
use rsops::sopsfile::StoreSettings;
use rsops::stores::Format;
use rsops::tree::WipedBytes;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// sops' exit codes (`cmd/sops/codes`, spec §11.11).
pub mod codes {
    pub const GENERIC: i32 = 1;
    pub const COULD_NOT_READ_INPUT_FILE: i32 = 2;
    pub const COULD_NOT_WRITE_OUTPUT_FILE: i32 = 3;
    pub const ERROR_DUMPING_TREE: i32 = 4;
    pub const INVALID_KMS_ENCRYPTION_CONTEXT: i32 = 6;
    pub const INVALID_SET_FORMAT: i32 = 7;
    pub const CONFLICTING_PARAMETERS: i32 = 8;
    pub const ERROR_ENCRYPTING_TREE: i32 = 23;
    pub const ERROR_DECRYPTING_TREE: i32 = 25;
    pub const MAC_MISMATCH: i32 = 51;
    pub const INVALID_TREE_PATH_FORMAT: i32 = 91;
    pub const NEED_AT_LEAST_ONE_DOCUMENT: i32 = 92;
    pub const NO_FILE_SPECIFIED: i32 = 100;
    pub const CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE: i32 = 49;
    pub const FILE_HAS_NOT_BEEN_MODIFIED: i32 = 200;
    pub const NO_EDITOR_FOUND: i32 = 201;
    pub const DUPLICATE_DECRYPTION_KEY_TYPE: i32 = 112;
    pub const COULD_NOT_RETRIEVE_KEY: i32 = 128;
    pub const FILE_ALREADY_ENCRYPTED: i32 = 203;
}

/// A failure: sops' exit code, one message, and an optional hint.
/// Messages never contain plaintext or key material.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> CliError {
        CliError {
            code,
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// Print a warning the way every command does.
pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home_dir() -> Option<PathBuf> {
    env_nonempty("HOME").map(PathBuf::from)
}

/// The user config dir (Go `os.UserConfigDir`).
fn user_config_dir() -> Option<PathBuf> {
    if let Some(x) = env_nonempty("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x));
    }
    let home = home_dir()?;
    if cfg!(target_os = "macos") {
        Some(home.join("Library/Application Support"))
    } else {
        Some(home.join(".config"))
    }
}

/// Key sources configured from the environment (the only place that reads it).
pub fn keyring_from_env() -> Keyring {
    let home = home_dir();
    let age = AgeSources {
        ssh_key_file: env_nonempty("SOPS_AGE_SSH_PRIVATE_KEY_FILE").map(PathBuf::from),
        default_ssh_keys: home
            .iter()
            .flat_map(|h| [h.join(".ssh/id_ed25519"), h.join(".ssh/id_rsa")])
            .collect(),
        key: env_nonempty("SOPS_AGE_KEY").map(Zeroizing::new),
        key_file: env_nonempty("SOPS_AGE_KEY_FILE").map(PathBuf::from),
        key_cmd: env_nonempty("SOPS_AGE_KEY_CMD"),
        default_key_file: user_config_dir().map(|d| d.join("sops/age/keys.txt")),
    };
    let pgp = PgpConfig {
        gpg_exec: std::env::var_os("SOPS_GPG_EXEC").filter(|v| !v.is_empty()),
        gnupg_home: std::env::var_os("GNUPGHOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        gpg_tty: if std::env::var_os("GPG_TTY").is_some() {
            None
        } else {
            stdin_tty()
        },
    };
    let vault = VaultConfig {
        token: env_nonempty("VAULT_TOKEN").map(Zeroizing::new),
        token_file: home.as_ref().map(|h| h.join(".vault-token")),
        namespace: env_nonempty("VAULT_NAMESPACE"),
        ca_cert: env_nonempty("VAULT_CACERT").map(PathBuf::from),
        ca_path: env_nonempty("VAULT_CAPATH").map(PathBuf::from),
        skip_verify: env_nonempty("VAULT_SKIP_VERIFY").is_some_and(|v| parse_go_bool(&v)),
        timeout: env_nonempty("VAULT_CLIENT_TIMEOUT").and_then(|v| parse_seconds(&v)),
    };
    let kms = KmsConfig {
        hostname: Some(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| env_nonempty("HOSTNAME"))
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        }),
    };
    Keyring::new(KeyConfig { age, pgp, vault, kms })
}

/// Go's `strconv.ParseBool` truth values.
fn parse_go_bool(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// `VAULT_CLIENT_TIMEOUT`: seconds, optionally with an `s` suffix.
fn parse_seconds(v: &str) -> Option<std::time::Duration> {
    let n: u64 = v.trim().trim_end_matches('s').parse().ok()?;
    (n > 0).then(|| std::time::Duration::from_secs(n))
}

/// The terminal on stdin, if any, for gpg's pinentry (`GPG_TTY`).
fn stdin_tty() -> Option<std::ffi::OsString> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    std::fs::read_link("/proc/self/fd/0").ok().map(|p| p.into_os_string())
}

pub fn cwd() -> CliResult<PathBuf> {
    std::env::current_dir()
        .map_err(|e| CliError::new(codes::GENERIC, format!("cannot determine the working directory: {e}")))
}

/// Find and load `.sops.yaml` (or the explicit `--config`). A broken file is
/// an error for every command, as in sops (§10.1).
pub fn load_config(explicit: Option<&Path>, cwd: &Path) -> CliResult<Option<Config>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let (found, warnings) = rsops::config::find_config(cwd);
            for w in warnings {
                warn(&w);
            }
            match found {
                Some(p) => p,
                None => return Ok(None),
            }
        }
    };
    Config::load(&path).map(Some).map_err(|e| {
        CliError::new(codes::GENERIC, format!("error loading config: {e}"))
            .hint("fix the YAML syntax of the config file, or point --config / SOPS_CONFIG at another one")
    })
}

/// Store settings from the config, with `--indent` applied to every store.
pub fn store_settings(config: Option<&Config>, indent: Option<i64>) -> StoreSettings {
    let mut s = StoreSettings::default();
    if let Some(c) = config {
        s.yaml_indent = c.stores.yaml_indent.unwrap_or(s.yaml_indent);
        s.json_indent = c.stores.json_indent.unwrap_or(s.json_indent);
        s.json_binary_indent = c.stores.json_binary_indent.unwrap_or(s.json_binary_indent);
    }
    if let Some(i) = indent {
        s = StoreSettings {
            yaml_indent: i,
            json_indent: i,
            json_binary_indent: i,
        };
    }
    s
}

/// Input and output formats: explicit types win, else the extension of the
/// file name (or `--filename-override`). The output defaults to the input
/// *file's* extension, not to the input type (§8.1).
pub fn formats(name: &str, input_type: Option<&str>, output_type: Option<&str>) -> (Format, Format) {
    let by_name = Format::from_path(name);
    let input = input_type.and_then(Format::from_type_name).unwrap_or(by_name);
    let output = output_type.and_then(Format::from_type_name).unwrap_or(by_name);
    (input, output)
}

fn split_list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parse `--encryption-context k1:v1,k2:v2` (exit 6 on a malformed pair).
pub fn parse_encryption_context(s: &Option<String>) -> CliResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in s.as_deref().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let parts: Vec<&str> = pair.split(':').collect();
        if parts.len() != 2 {
            return Err(CliError::new(
                codes::INVALID_KMS_ENCRYPTION_CONTEXT,
                "Invalid KMS encryption context format",
            )
            .hint("use --encryption-context key1:value1,key2:value2"));
        }
        out.push((parts[0].to_string(), parts[1].to_string()));
    }
    Ok(out)
}

/// The key group given by flags and their env vars, in the order the sops CLI
/// builds it (kms, gcp_kms, hckms, azure, pgp, vault, age). Empty when none.
pub fn key_group_from_flags(k: &KeyArgs, context: &[(String, String)]) -> CliResult<KeyGroup> {
    let mut g = Vec::new();
    let profile = k.aws_profile.clone().unwrap_or_default();
    for arn in split_list(&k.kms) {
        g.push(keyspec::kms(&arn, context, &profile));
    }
    for id in split_list(&k.gcp_kms) {
        g.push(keyspec::gcp_kms(&id));
    }
    for id in split_list(&k.hckms) {
        g.push(keyspec::hckms(&id));
    }
    for url in split_list(&k.azure_kv) {
        g.push(keyspec::azure_kv(&url).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for fp in split_list(&k.pgp) {
        g.push(keyspec::pgp(&fp));
    }
    for uri in split_list(&k.hc_vault_transit) {
        g.push(keyspec::hc_vault(&uri).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for r in split_list(&k.age) {
        rsops::keys::age::AgeRecipient::parse(&r).map_err(|e| CliError::new(codes::GENERIC, e))?;
        g.push(keyspec::age(&r));
    }
    Ok(g)
}

pub fn selector_spec(s: &SelectorArgs) -> SelectorSpec {
    SelectorSpec {
        unencrypted_suffix: s.unencrypted_suffix.clone().unwrap_or_default(),
        encrypted_suffix: s.encrypted_suffix.clone().unwrap_or_default(),
        unencrypted_regex: s.unencrypted_regex.clone().unwrap_or_default(),
        encrypted_regex: s.encrypted_regex.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// The creation rule for `file`, if the config has rules (§10.3).
pub fn creation_rule<'c>(config: Option<&'c Config>, file: &Path, cwd: &Path) -> CliResult<Option<&'c CreationRule>> {
    match config {
        None => Ok(None),
        Some(c) => c.rule_for(file, cwd).map_err(|e| {
            CliError::new(codes::GENERIC, e.message).hint(format!(
                "add a creation rule whose path_regex matches this file to {}",
                c.path.display()
            ))
        }),
    }
}

/// Parse `--decryption-order` (exit 112 on a duplicate).
pub fn decryption_order(s: &Option<String>) -> CliResult<Vec<String>> {
    let Some(s) = s.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(rsops::keys::DEFAULT_DECRYPTION_ORDER
            .iter()
            .map(|s| s.to_string())
            .collect());
    };
    let mut out: Vec<String> = Vec::new();
    for t in s.split(',').map(str::trim) {
        if out.iter().any(|o| o == t) {
            return Err(CliError::new(
                codes::DUPLICATE_DECRYPTION_KEY_TYPE,
                format!("Duplicate decryption key type: {t}"),
            ));
        }
        out.push(t.to_string());
    }
    Ok(out)
}

/// Read the input file, or stdin when `file` is `None`.
pub fn read_input(file: Option<&Path>) -> CliResult<WipedBytes> {
    let mut buf = WipedBytes::default();
    match file {
        Some(p) => {
            // As `std::fs::read`, with the buffer sized by `bigbuf`.
            let read = |p: &Path, buf: &mut Vec<u8>| {
                let mut file = std::fs::File::open(p)?;
                let size = file.metadata().map_or(0, |m| usize::try_from(m.len()).unwrap_or(0));
                rsops::bigbuf::read_to_end(&mut file, buf, size)
            };
            read(p, &mut buf).map_err(|e| {
                CliError::new(
                    codes::COULD_NOT_READ_INPUT_FILE,
                    format!("Error reading file {}: {}", p.display(), e),
                )
            })?;
        }
        None => {
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                CliError::new(
                    codes::COULD_NOT_READ_INPUT_FILE,
                    format!("Error reading from stdin: {e}"),
                )
            })?;
        }
    }
    Ok(buf)
}

/// Check that a named input file exists (sops: exit 100 otherwise).
pub fn require_existing(file: &Path) -> CliResult<()> {
    if file.exists() {
        return Ok(());
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    Err(CliError::new(
        codes::NO_FILE_SPECIFIED,
        format!("cannot operate on non-existent file \"{}\"", abs.display()),
    ))
}

/// Stream the result into `dest` as `emit` produces it (no whole-file
/// buffer for YAML and JSON). Files are replaced atomically as with
/// [`write_output`]; a store error is mapped by `store_error`.
pub fn write_streamed(
    dest: Destination<'_>,
    emit: impl FnOnce(&mut dyn Write) -> Result<(), rsops::stores::EmitError>,
    store_error: impl FnOnce(rsops::stores::StoreError) -> CliError,
) -> CliResult<()> {
    use crate::cli::atomic::WriteError;
    use rsops::stores::EmitError;
    match dest {
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            let result = emit(&mut out).and_then(|()| out.flush().map_err(EmitError::Write));
            match result {
                Ok(()) => Ok(()),
                Err(EmitError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                Err(EmitError::Write(e)) => Err(CliError::new(
                    codes::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("Could not write to stdout: {e}"),
                )),
                Err(EmitError::Store(e)) => Err(store_error(e)),
            }
        }
        Destination::File(path) => {
            let result = crate::cli::atomic::write_file_with(path, |f| {
                emit(f).map_err(|e| match e {
                    EmitError::Store(e) => WriteError::Content(e),
                    EmitError::Write(e) => WriteError::Io(e),
                })
            });
            match result {
                Ok(()) => Ok(()),
                Err(WriteError::Content(e)) => Err(store_error(e)),
                Err(WriteError::Io(e)) => Err(CliError::new(
                    codes::COULD_NOT_WRITE_OUTPUT_FILE,
                    format!("Could not write output file {}: {e}", path.display()),
                )),
            }
        }
    }
}

/// Where output goes.
pub enum Destination<'a> {
    Stdout,
    File(&'a Path),
}

/// Write the result. Files are replaced atomically: a temp file in the same
/// directory, fsync, rename; an existing file keeps its mode. Nothing is
/// written when an earlier step failed, so the input stays untouched.
pub fn write_output(dest: Destination<'_>, bytes: &[u8]) -> CliResult<()> {
    match dest {
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|_| out.flush())
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| {
                    CliError::new(
                        codes::COULD_NOT_WRITE_OUTPUT_FILE,
                        format!("Could not write to stdout: {e}"),
                    )
                })
        }
        Destination::File(path) => crate::cli::atomic::write_file(path, bytes).map_err(|e| {
            CliError::new(
                codes::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("Could not write output file {}: {e}", path.display()),
            )
        }),
    }
}
