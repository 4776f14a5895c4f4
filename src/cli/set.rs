//! `set` and `unset` (spec §11.8): change one value of an encrypted file in
//! place, keeping the ciphertext of every other value.

use crate::cli::common::{codes, CliError, CliResult, Destination};
use crate::cli::rewrite::FileContext;
use rsops::stores::json::JsonStore;
use rsops::stores::Store;
use rsops::tree::Value;
use rsops::treepath;
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub struct SetRequest {
    pub positionals: Vec<String>,
    pub value_file: bool,
    pub value_stdin: bool,
    pub idempotent: bool,
    pub ignore_mac: bool,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
}

/// Parse a `set` value: JSON, where every number is a float and objects
/// become mappings (arrays are refused, as in sops).
pub fn parse_json_value(text: &[u8]) -> CliResult<Value> {
    let invalid = || CliError::new(codes::INVALID_SET_FORMAT, "Value for --set is not valid JSON");
    rsops::stores::json::validate_strict(text).map_err(|_| invalid())?;
    let trimmed = trim_json_ws(text);
    match trimmed.first() {
        Some(b'[') => Err(CliError::new(codes::INVALID_SET_FORMAT, "Invalid --set value format")
            .hint("a list cannot be set as a whole; set its elements with [\"key\"][0], [\"key\"][1], ...")),
        Some(b'{') => {
            let mut branches = JsonStore::new(-1)
                .and_then(|s| s.load(trimmed))
                .map_err(|_| CliError::new(codes::INVALID_SET_FORMAT, "Invalid --set value format"))?;
            Ok(Value::Map(branches.pop().unwrap_or_default()))
        }
        _ => {
            // Wrap the scalar in an object to reuse the JSON store's decoding.
            let mut wrapped = Zeroizing::new(Vec::with_capacity(trimmed.len() + 8));
            wrapped.extend_from_slice(b"{\"v\":");
            wrapped.extend_from_slice(trimmed);
            wrapped.push(b'}');
            let mut branches = JsonStore::new(-1)
                .and_then(|s| s.load(&wrapped))
                .map_err(|_| invalid())?;
            let mut branch = branches.pop().ok_or_else(invalid)?;
            branch.0.pop().map(|i| i.value).ok_or_else(invalid)
        }
    }
}

/// An I/O error worded like Go's `syscall.Errno` text.
fn go_io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// `set` and `unset` fail on a missing file like sops: reading it fails
/// (exit 2), there is no "non-existent file" check (exit 100) here.
fn require_readable(file: &Path) -> CliResult<()> {
    if file.exists() {
        return Ok(());
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    Err(CliError::new(
        codes::COULD_NOT_READ_INPUT_FILE,
        format!("Error reading file: open {}: no such file or directory", abs.display()),
    ))
}

fn trim_json_ws(b: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

pub fn run_set(req: SetRequest) -> CliResult<()> {
    if req.value_file && req.value_stdin {
        return Err(CliError::new(
            codes::GENERIC,
            "cannot use both --value-file and --value-stdin",
        ));
    }
    let needed = if req.value_stdin { 2 } else { 3 };
    if req.positionals.len() != needed {
        let msg = if req.value_stdin {
            // sops 3.11's wording, typo included.
            "Error: file specified, or index and value are missing. Need precisely 2 positional arguments since --value-stdin is used."
        } else {
            "Error: no file specified, or index and value are missing. Need precisely 3 positional arguments."
        };
        return Err(CliError::new(
            codes::NO_FILE_SPECIFIED,
            msg.trim_start_matches("Error: "),
        ));
    }
    let file = Path::new(&req.positionals[0]);
    let path = treepath::parse(&req.positionals[1])
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CliError::new(codes::INVALID_SET_FORMAT, "Invalid set index format"))?;
    let raw: Zeroizing<Vec<u8>> = if req.value_stdin {
        let mut buf = Zeroizing::new(Vec::new());
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::new(codes::GENERIC, format!("Error reading from stdin: {e}")))?;
        buf
    } else if req.value_file {
        Zeroizing::new(std::fs::read(&req.positionals[2]).map_err(|e| {
            CliError::new(
                codes::GENERIC,
                format!("open {}: {}", req.positionals[2], go_io_reason(&e)),
            )
        })?)
    } else {
        Zeroizing::new(req.positionals[2].as_bytes().to_vec())
    };
    let value = parse_json_value(&raw)?;
    drop(raw);

    let ctx = FileContext::new(
        file,
        req.input_type.as_deref(),
        req.output_type.as_deref(),
        req.config_path.as_deref(),
        &req.decryption_order,
    )?;
    require_readable(file)?;
    let mut opened = ctx.open(file, req.ignore_mac)?;
    let changed =
        treepath::set(&mut opened.doc, &path, value).map_err(|e| CliError::new(codes::INVALID_SET_FORMAT, e))?;
    if req.idempotent && !changed {
        // sops 3.11 says nothing here either.
        return Ok(());
    }
    if opened.doc.branches.first().is_some_and(|b| b.get("sops").is_some()) {
        return Err(CliError::new(
            codes::GENERIC,
            "the file would contain a top-level entry called 'sops'",
        ));
    }
    ctx.save(opened, Destination::File(file))
}

pub struct UnsetRequest {
    pub positionals: Vec<String>,
    pub idempotent: bool,
    pub ignore_mac: bool,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
}

pub fn run_unset(req: UnsetRequest) -> CliResult<()> {
    if req.positionals.len() != 2 {
        return Err(CliError::new(
            codes::NO_FILE_SPECIFIED,
            "no file specified, or index is missing",
        ));
    }
    let file = Path::new(&req.positionals[0]);
    let path = treepath::parse(&req.positionals[1])
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| CliError::new(codes::INVALID_SET_FORMAT, "Invalid unset index format"))?;
    let ctx = FileContext::new(
        file,
        req.input_type.as_deref(),
        req.output_type.as_deref(),
        req.config_path.as_deref(),
        &req.decryption_order,
    )?;
    require_readable(file)?;
    let mut opened = ctx.open(file, req.ignore_mac)?;
    if let Err(e) = treepath::unset(&mut opened.doc, &path) {
        if req.idempotent {
            eprintln!("File not written due to no change");
            return Ok(());
        }
        return Err(CliError::new(codes::GENERIC, e));
    }
    ctx.save(opened, Destination::File(file))
}
