//! `decrypt` (and legacy `-d`): sops file in, plaintext out.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::mapped::Input;
use rsops::cipher::{DataKey, ValueCipher};
use rsops::crypt::decrypt_document;
use rsops::keys::{recover_data_key, Keyring};
use rsops::metadata::Metadata;
use rsops::pipeline;
use rsops::sopsfile::{self, LoadError, StoreSettings};
use rsops::stores::json::JsonStore;
use rsops::stores::yaml::YamlStore;
use rsops::stores::Format;
use rsops::timefmt::Timestamp;
use rsops::tree::{Document, Value};
use rsops::treepath;
use std::path::PathBuf;

pub struct DecryptRequest {
    pub file: Option<PathBuf>,
    pub filename_override: Option<String>,
    pub in_place: bool,
    pub output: Option<PathBuf>,
    pub extract: Option<String>,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub ignore_mac: bool,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
    pub indent: Option<i64>,
}

/// A decrypted file with what is needed to write it back.
pub struct Opened {
    pub doc: Document,
    pub metadata: Metadata,
    pub cipher: ValueCipher,
}

/// Load, recover the data key, decrypt and verify the MAC (unless ignored).
pub fn open_encrypted(
    input: &[u8],
    format: Format,
    settings: &StoreSettings,
    keyring: &Keyring,
    order: &[String],
    ignore_mac: bool,
    keep_ivs: bool,
) -> CliResult<Opened> {
    let keys = KeySource { keyring, order };
    open_with(input, format, settings, keys, None, ignore_mac, keep_ivs)
}

/// Where the data key comes from.
#[derive(Clone, Copy)]
struct KeySource<'a> {
    keyring: &'a Keyring,
    order: &'a [String],
}

impl KeySource<'_> {
    fn recover(&self, metadata: &Metadata) -> CliResult<DataKey> {
        recover_data_key(metadata, self.keyring, self.order)
            .map_err(|e| CliError::new(codes::COULD_NOT_RETRIEVE_KEY, e.to_string()))
    }
}

fn load_error(e: LoadError, format: Format) -> CliError {
    match e {
        LoadError::Parse(e) => CliError::new(
            codes::GENERIC,
            format!(
                "Error unmarshalling input {}: {e}",
                sopsfile::encrypted_store_name(format)
            ),
        ),
        LoadError::Metadata(e) => CliError::new(codes::GENERIC, e.to_string())
            .hint("this file does not look like a sops-encrypted file; check --input-type, or encrypt it first"),
    }
}

/// [`open_encrypted`], with the data key already recovered if `known_key`.
fn open_with(
    input: &[u8],
    format: Format,
    settings: &StoreSettings,
    keys: KeySource<'_>,
    known_key: Option<DataKey>,
    ignore_mac: bool,
    keep_ivs: bool,
) -> CliResult<Opened> {
    let (mut doc, metadata) = sopsfile::load_encrypted(format, settings, input).map_err(|e| load_error(e, format))?;
    let key = match known_key {
        Some(key) => key,
        None => keys.recover(&metadata)?,
    };
    let mut cipher = ValueCipher::new(&key);
    if keep_ivs {
        cipher = cipher.with_stash();
    }
    let selector = metadata
        .selectors
        .compile()
        .map_err(|e| CliError::new(codes::GENERIC, e.to_string()))?;
    let outcome = decrypt_document(&mut doc, &mut cipher, &selector, metadata.mac_only_encrypted)
        .map_err(|e| CliError::new(codes::ERROR_DECRYPTING_TREE, format!("Error decrypting tree: {e}")))?;
    for w in &outcome.warnings {
        common::warn(w);
    }
    if !ignore_mac {
        verify_mac(&metadata, &mut cipher, &outcome.mac)?;
    }
    Ok(Opened { doc, metadata, cipher })
}

/// Compare the stored MAC with the recomputed one (§5.4).
fn verify_mac(metadata: &Metadata, cipher: &mut ValueCipher, computed: &str) -> CliResult<()> {
    let hint = "the file was changed outside sops/rsops, or is corrupted; --ignore-mac skips this check";
    if metadata.mac.is_empty() {
        return Err(CliError::new(codes::MAC_MISMATCH, "MAC mismatch. File has no MAC").hint(hint));
    }
    let aad = Timestamp::parse_rfc3339(&metadata.last_modified)
        .map(|t| t.format_rfc3339())
        .unwrap_or_default();
    let stored = cipher
        .decrypt_raw(&metadata.mac, aad.as_bytes())
        .map_err(|e| CliError::new(codes::MAC_MISMATCH, format!("Cannot decrypt MAC: {e}")).hint(hint))?;
    let stored = String::from_utf8_lossy(&stored.0).into_owned();
    if stored != computed {
        return Err(CliError::new(
            codes::MAC_MISMATCH,
            format!("MAC mismatch. File has {stored}, computed {computed}"),
        )
        .hint(hint));
    }
    Ok(())
}

pub fn run(req: DecryptRequest) -> CliResult<()> {
    if req.in_place && req.output.is_some() {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot operate on both --output and --in-place",
        ));
    }
    if req.file.is_none() && req.in_place {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot use --in-place when reading from stdin",
        ));
    }
    let extract = match req.extract.as_deref() {
        Some(e) => treepath::parse(e).map_err(|m| CliError::new(codes::INVALID_TREE_PATH_FORMAT, m))?,
        None => Vec::new(),
    };
    if let Some(f) = &req.file {
        common::require_existing(f)?;
    }
    let order = common::decryption_order(&req.decryption_order)?;
    let name = req
        .filename_override
        .clone()
        .or_else(|| req.file.as_ref().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let cwd = common::cwd()?;
    let config = common::load_config(req.config_path.as_deref(), &cwd)?;
    let settings = common::store_settings(config.as_ref(), req.indent);
    let (in_format, out_format) = common::formats(&name, req.input_type.as_deref(), req.output_type.as_deref());
    // The encrypted file as it is on disk: nothing in it to wipe (the
    // plaintext this command makes is, wherever it goes). Large files are
    // mapped rather than read.
    let input = Input::open(req.file.as_deref())?;
    let keyring = common::keyring_from_env();
    let keys = KeySource {
        keyring: &keyring,
        order: &order,
    };
    let dest = match (&req.output, req.in_place, &req.file) {
        (Some(o), _, _) => Destination::File(o),
        (None, true, Some(f)) => Destination::File(f),
        _ => Destination::Stdout,
    };

    // Large YAML, JSON and dotenv files go piece by piece (whole files only).
    let mut known_key = None;
    let piecewise = extract.is_empty() && in_format == out_format && input.len() as u64 >= pipeline::MIN_BYTES;
    if let Some(file) = piecewise.then(|| open_piecewise(&input, in_format)).flatten() {
        match keys.recover(&file.metadata) {
            Ok(key) => {
                let mut cipher = ValueCipher::new(&key);
                if let Some(done) = decrypt_piecewise(&file, in_format, &settings, &cipher) {
                    // Nothing is reported from a file cut short while it was read.
                    input.check_unchanged(req.file.as_deref())?;
                    for w in &done.warnings {
                        common::warn(w);
                    }
                    if !req.ignore_mac {
                        verify_mac(&file.metadata, &mut cipher, &done.mac)?;
                    }
                    return common::write_streamed(
                        dest,
                        |out| done.output.write_to(out).map_err(rsops::stores::EmitError::Write),
                        |e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Error dumping file: {e}")),
                    );
                }
                // The whole-tree path takes over, with this key unless it
                // came from metadata that may lack a line.
                if !file.metadata_may_be_incomplete() {
                    known_key = Some(key);
                }
            }
            // The whole metadata may recover a key where its end did not.
            Err(_) if file.metadata_may_be_incomplete() => {}
            Err(e) => {
                // The whole-tree path loads the file first: its load error
                // comes before the key error.
                let owned = input.to_vec();
                input.check_unchanged(req.file.as_deref())?;
                sopsfile::load_encrypted(in_format, &settings, &owned).map_err(|e| load_error(e, in_format))?;
                return Err(e);
            }
        }
    }

    let input = input.into_owned(req.file.as_deref())?;
    let opened = open_with(&input, in_format, &settings, keys, known_key, req.ignore_mac, false)?;
    drop(input);

    let dump_err = |e: rsops::stores::StoreError| {
        let mut err = CliError::new(codes::ERROR_DUMPING_TREE, format!("Error dumping file: {e}"));
        if out_format == Format::Binary && req.output_type.is_none() {
            err =
                err.hint("the output format is taken from the file extension; pass --output-type yaml|json|dotenv|ini");
        }
        err
    };
    if extract.is_empty() {
        let result = common::write_streamed(
            dest,
            |out| sopsfile::emit_plain_to(out_format, &settings, &opened.doc, out),
            dump_err,
        );
        opened.doc.wipe_and_forget();
        return result;
    }
    let out = {
        let fields = if out_format == Format::Json {
            ("Key", "Value")
        } else {
            ("key", "value")
        };
        let (value, entry) = treepath::get(&opened.doc, &extract, fields)
            .map_err(|m| CliError::new(codes::GENERIC, format!("error truncating tree: {m}")))?
            .ok_or_else(|| CliError::new(codes::GENERIC, "error truncating tree: empty path"))?;
        match &value {
            Value::Str(s) => s.as_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            Value::Map(b) if !entry => {
                if out_format == Format::Binary {
                    return Err(CliError::new(
                        codes::GENERIC,
                        "Binary files are not structured and extracting a single value is not possible",
                    ));
                }
                let sub = Document::new(vec![b.clone()]);
                sopsfile::emit_plain(out_format, &settings, &sub).map_err(dump_err)?
            }
            other => {
                if out_format == Format::Binary {
                    return Err(CliError::new(
                        codes::GENERIC,
                        "Binary files are not structured and extracting a single value is not possible",
                    ));
                }
                sopsfile::emit_value(out_format, &settings, other).map_err(dump_err)?
            }
        }
    };
    let out = zeroize::Zeroizing::new(out);
    common::write_output(dest, &out)
}

/// A large encrypted YAML, JSON or dotenv file split for [`pipeline::decrypt`].
fn open_piecewise(input: &[u8], format: Format) -> Option<pipeline::EncryptedInput<'_>> {
    let kind = match format {
        Format::Yaml => pipeline::Kind::Yaml,
        Format::Json => pipeline::Kind::Json,
        Format::Dotenv => pipeline::Kind::Dotenv,
        _ => return None,
    };
    pipeline::open_encrypted(input, kind)
}

fn decrypt_piecewise(
    file: &pipeline::EncryptedInput<'_>,
    format: Format,
    settings: &StoreSettings,
    cipher: &ValueCipher,
) -> Option<pipeline::DecryptedPieces> {
    match format {
        Format::Yaml => {
            let indent = YamlStore::new(settings.yaml_indent).ok()?.indent;
            pipeline::decrypt(file, pipeline::PieceFormat::Yaml { indent }, cipher)
        }
        Format::Json => {
            let store = JsonStore::new(settings.json_indent).ok()?;
            pipeline::decrypt(file, pipeline::PieceFormat::Json(&store), cipher)
        }
        Format::Dotenv => pipeline::decrypt(file, pipeline::PieceFormat::Dotenv, cipher),
        _ => None,
    }
}
