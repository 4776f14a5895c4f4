//! `edit` (spec §11.7): decrypt into a private temp file, run the editor,
//! re-encrypt what comes back with the same data key.
//!
//! The plaintext lives in a 0600 file inside a 0700 directory that is
//! removed on every exit path: normal return, error, panic (drop guard) and
//! SIGTERM/SIGHUP (signal thread). SIGINT is left to the editor while it
//! runs, as a Ctrl+C inside vim must not destroy the file being edited.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::decrypt::Opened;
use crate::cli::encrypt::{build_metadata, NewFileOptions};
use crate::cli::rewrite::FileContext;
use rsops::cipher::{DataKey, ValueCipher};
use rsops::metadata::EMULATED_SOPS_VERSION;
use rsops::sopsfile;
use rsops::stores::Format;
use rsops::tree::{Branch, Document, Item, Key, Value};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

pub struct EditRequest {
    pub file: PathBuf,
    pub options: NewFileOptions,
    pub show_master_keys: bool,
    pub ignore_mac: bool,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
}

/// The temp directory currently holding plaintext, for the signal thread.
static TEMP_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
static EDITOR_RUNNING: AtomicBool = AtomicBool::new(false);
static SIGNALS: Once = Once::new();

fn remove_temp_dir() {
    if let Ok(mut guard) = TEMP_DIR.lock() {
        if let Some(dir) = guard.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn install_signal_cleanup() {
    SIGNALS.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            common::warn("could not install signal handlers; an interrupted edit may leave its temp file behind");
            return;
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                if sig == SIGINT && EDITOR_RUNNING.load(Ordering::SeqCst) {
                    continue;
                }
                remove_temp_dir();
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Owns the private temp directory; removes it when dropped.
struct TempDir {
    dir: PathBuf,
}

impl TempDir {
    fn create() -> CliResult<TempDir> {
        install_signal_cleanup();
        let base = std::env::temp_dir();
        let err = |e: std::io::Error| {
            CliError::new(
                codes::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("Could not create temporary directory: {e}"),
            )
        };
        for _ in 0..16 {
            let dir = base.join(format!("rsops-edit-{:016x}", rand::random::<u64>()));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    if let Ok(mut g) = TEMP_DIR.lock() {
                        *g = Some(dir.clone());
                    }
                    return Ok(TempDir { dir });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Err(err(std::io::Error::other("too many name collisions")))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut g) = TEMP_DIR.lock() {
            *g = None;
        }
    }
}

fn hash_file(path: &Path) -> CliResult<[u8; 32]> {
    let bytes = zeroize::Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| CliError::new(codes::GENERIC, format!("Could not read temporary file: {e}")))?,
    );
    Ok(Sha256::digest(&bytes[..]).into())
}

/// The editor command: `SOPS_EDITOR`, `EDITOR` (shell-split), else the first
/// of vim, nano, vi on PATH.
fn editor_command(path: &Path) -> CliResult<std::process::Command> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Some(v) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            let parts = shlex::split(&v)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| CliError::new(codes::NO_EDITOR_FOUND, format!("invalid ${var}: {v}")))?;
            let mut cmd = std::process::Command::new(&parts[0]);
            cmd.args(&parts[1..]).arg(path);
            return Ok(cmd);
        }
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for name in ["vim", "nano", "vi"] {
        if let Some(p) = std::env::split_paths(&path_var)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
        {
            let mut cmd = std::process::Command::new(p);
            cmd.arg(path);
            return Ok(cmd);
        }
    }
    Err(CliError::new(
        codes::NO_EDITOR_FOUND,
        "no editor available: sops attempts to use the editor defined in the SOPS_EDITOR or EDITOR environment \
         variables, and if that's not set defaults to any of vim, nano, or vi, but none of them could be found",
    ))
}

/// An editor failure worded like Go's `exec.Cmd.Run` error, as sops prints it.
fn go_exec_error(program: &std::ffi::OsStr, result: std::io::Result<std::process::ExitStatus>) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    match result {
        Ok(s) if s.success() => None,
        Ok(s) => Some(match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit status {code}"),
            (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
            (None, None) => s.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !program.to_string_lossy().contains('/') => {
            Some(format!(
                "exec: {:?}: executable file not found in $PATH",
                program.to_string_lossy()
            ))
        }
        Err(e) => Some(e.to_string()),
    }
}

/// Go's names for the signals an editor typically dies of.
fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "hangup".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGQUIT => "quit".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGKILL => "killed".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGPIPE => "broken pipe".into(),
        libc::SIGTERM => "terminated".into(),
        other => format!("signal {other}"),
    }
}

fn run_editor(path: &Path) -> CliResult<()> {
    let mut cmd = editor_command(path)?;
    EDITOR_RUNNING.store(true, Ordering::SeqCst);
    let status = cmd.status();
    EDITOR_RUNNING.store(false, Ordering::SeqCst);
    match go_exec_error(cmd.get_program(), status) {
        None => Ok(()),
        Some(e) => Err(CliError::new(
            codes::NO_EDITOR_FOUND,
            format!("Could not run editor: {e}"),
        )),
    }
}

/// Tell the user what is wrong and wait for Enter before reopening the editor.
fn wait_for_user(message: &str) -> CliResult<()> {
    eprintln!("error: {message}");
    eprintln!("Press enter to return to the editor, or Ctrl+C to exit.");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        // End of input: nobody can fix the file, so give up cleanly.
        Ok(0) | Err(_) => Err(CliError::new(
            codes::GENERIC,
            format!("{message} (no input to continue)"),
        )),
        Ok(_) => Ok(()),
    }
}

/// The document sops shows for a new file of each format.
fn example_document(format: Format) -> Document {
    let s = |v: &str| Value::Str(v.to_string());
    let welcome = "Welcome to SOPS! Edit this file as you please!";
    let branch = match format {
        Format::Yaml | Format::Json => {
            let mut items = vec![
                Item::new("hello", s(welcome)),
                Item::new("example_key", s("example_value")),
            ];
            if format == Format::Yaml {
                items.push(Item::comment(" Example comment"));
            }
            items.push(Item::new(
                "example_array",
                Value::List(vec![s("example_value1"), s("example_value2")]),
            ));
            items.push(Item::new("example_number", Value::Float(1234.56789)));
            items.push(Item::new(
                "example_booleans",
                Value::List(vec![Value::Bool(true), Value::Bool(false)]),
            ));
            Branch(items)
        }
        Format::Dotenv => Branch(vec![
            Item::comment(" This is an example file."),
            Item::new("hello", s(welcome)),
            Item::new("example_key", s("example_value")),
            Item::new("example_multiline", s("foo\nbar\nbaz")),
        ]),
        // go-ini writes comments as `; <text>`: no leading space here.
        Format::Ini => Branch(vec![Item::new(
            "Welcome!",
            Value::Map(Branch(vec![
                Item::comment("This is an example file."),
                Item::new("hello", s(welcome)),
                Item::new("example_key", s("example_value")),
            ])),
        )]),
        Format::Binary => Branch(vec![Item::new("data", s(welcome))]),
    };
    Document::new(vec![branch])
}

/// Is `a` a newer semver than `b`? `None` when `b` does not parse.
fn version_newer(a: &str, b: &str) -> Option<bool> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.trim_start_matches('v').split(['-', '+']).next()?;
        let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((
            it.next()??,
            it.next().flatten().unwrap_or(0),
            it.next().flatten().unwrap_or(0),
        ))
    };
    Some(parse(a)? > parse(b)?)
}

pub fn run(req: EditRequest) -> CliResult<()> {
    let file = req.file.as_path();
    let ctx = FileContext::new(
        file,
        req.input_type.as_deref(),
        req.output_type.as_deref(),
        req.config_path.as_deref(),
        &req.decryption_order,
    )?;
    let mut opened = if file.exists() {
        ctx.open(file, req.ignore_mac)?
    } else {
        let cwd = common::cwd()?;
        let config = common::load_config(req.config_path.as_deref(), &cwd)?;
        let mut metadata = build_metadata(&req.options, config.as_ref(), file, &cwd, ctx.in_format)?;
        let key = DataKey::generate();
        let keyring = common::keyring_from_env();
        rsops::keys::wrap_data_key(&mut metadata, &key, &keyring).map_err(|errs| {
            CliError::new(
                codes::GENERIC,
                format!("Could not generate data key: [{}]", errs.join(" ")),
            )
        })?;
        Opened {
            doc: example_document(ctx.in_format),
            metadata,
            cipher: ValueCipher::new(&key),
        }
    };

    let tmp = TempDir::create()?;
    let name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "file".into());
    let tmp_file = tmp.dir.join(name);
    let plaintext = zeroize::Zeroizing::new(
        if req.show_master_keys {
            sopsfile::emit_encrypted(ctx.out_format, &ctx.settings, &mut opened.doc, &opened.metadata)
        } else {
            sopsfile::emit_plain(ctx.out_format, &ctx.settings, &opened.doc)
        }
        .map_err(|e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Error dumping file: {e}")))?,
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp_file)
        .and_then(|mut f| f.write_all(&plaintext).and_then(|_| f.sync_all()))
        .map_err(|e| {
            CliError::new(
                codes::COULD_NOT_WRITE_OUTPUT_FILE,
                format!("Could not write temporary file: {e}"),
            )
        })?;
    drop(plaintext);
    let original_hash = hash_file(&tmp_file)?;

    loop {
        run_editor(&tmp_file)?;
        if hash_file(&tmp_file)? == original_hash {
            return Err(CliError::new(
                codes::FILE_HAS_NOT_BEEN_MODIFIED,
                "File has not changed, exiting.",
            ));
        }
        let edited = zeroize::Zeroizing::new(
            std::fs::read(&tmp_file)
                .map_err(|e| CliError::new(codes::GENERIC, format!("Could not read temporary file: {e}")))?,
        );
        let branches = match sopsfile::load_plain(ctx.in_format, &ctx.settings, &edited) {
            Ok(doc) => doc,
            Err(e) => {
                wait_for_user(&format!("Could not load tree, probably due to invalid syntax: {e}"))?;
                continue;
            }
        };
        let mut doc = branches;
        if req.show_master_keys {
            match sopsfile::load_encrypted(ctx.in_format, &ctx.settings, &edited) {
                Ok((d, m)) => {
                    doc = d;
                    opened.metadata = m;
                }
                Err(e) => {
                    wait_for_user(&format!("SOPS metadata is invalid: {e}"))?;
                    continue;
                }
            }
        } else if sopsfile::has_metadata(ctx.in_format, &doc) {
            wait_for_user("The file contains a top-level entry called 'sops', which is reserved for the metadata")?;
            continue;
        }
        if doc.branches.is_empty() {
            wait_for_user("File cannot be completely empty, it must contain at least one document")?;
            continue;
        }
        if let Some(key) = first_non_string_key(&doc) {
            wait_for_user(&format!("Only string keys are supported, found a key of type {key}"))?;
            continue;
        }
        if opened.metadata.key_groups.iter().all(|g| g.is_empty()) {
            wait_for_user("No master keys were provided, so sops can't encrypt the file")?;
            continue;
        }
        match version_newer(EMULATED_SOPS_VERSION, &opened.metadata.version) {
            Some(true) => opened.metadata.version = EMULATED_SOPS_VERSION.to_string(),
            Some(false) => {}
            None => {
                return Err(CliError::new(
                    202,
                    format!(
                        "Failed to compare document version {:?} with program version {:?}",
                        opened.metadata.version, EMULATED_SOPS_VERSION
                    ),
                ))
            }
        }
        opened.doc = doc;
        break;
    }
    drop(tmp);
    ctx.save(opened, Destination::File(file))
}

fn first_non_string_key(doc: &Document) -> Option<&'static str> {
    fn walk(v: &Value) -> Option<&'static str> {
        match v {
            Value::Map(b) => branch(b),
            Value::List(l) => l.iter().find_map(walk),
            _ => None,
        }
    }
    fn branch(b: &Branch) -> Option<&'static str> {
        b.0.iter().find_map(|i| match &i.key {
            Key::NonString { type_name, .. } => Some(*type_name),
            _ => walk(&i.value),
        })
    }
    doc.branches.iter().find_map(branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_comparison() {
        assert_eq!(version_newer("3.11.0", "3.9.1"), Some(true));
        assert_eq!(version_newer("3.11.0", "3.13.2"), Some(false));
        assert_eq!(version_newer("3.11.0", "3.11.0"), Some(false));
        assert_eq!(version_newer("3.11.0", "garbage"), None);
    }
}
