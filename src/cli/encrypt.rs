//! `encrypt` (and legacy `-e`): plaintext file in, sops file out.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::heap;
use crate::cli::mapped::MappedFile;
use rsops::cipher::{DataKey, ValueCipher};
use rsops::config::Config;
use rsops::crypt::encrypt_document;
use rsops::keys::{wrap_data_key, Keyring};
use rsops::metadata::{KeyGroup, MasterKey, Metadata, EMULATED_SOPS_VERSION};
use rsops::pipeline;
use rsops::policy::{Selector, SelectorSpec};
use rsops::sopsfile;
use rsops::stores::json::JsonStore;
use rsops::stores::yaml::YamlStore;
use rsops::stores::{EmitError, Format};
use rsops::timefmt::Timestamp;
use rsops::tree::Document;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Key and selector choices for a new file, from flags; merged with the
/// creation rule by [`build_metadata`].
#[derive(Clone, Default)]
pub struct NewFileOptions {
    pub keys: KeyGroup,
    pub selectors: SelectorSpec,
    pub threshold: usize,
    pub mac_only_encrypted: bool,
}

/// Everything `encrypt` needs, resolved from flags by the caller.
pub struct EncryptRequest {
    pub file: Option<PathBuf>,
    pub filename_override: Option<String>,
    pub in_place: bool,
    pub output: Option<PathBuf>,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub options: NewFileOptions,
    pub config_path: Option<PathBuf>,
    pub indent: Option<i64>,
}

const ALREADY_ENCRYPTED: &str = "The file you have provided contains a top-level entry called 'sops', or for flat file formats \
like INI and dotenv, contains keys starting with 'sops_'. This is generally due to the file already being encrypted. \
SOPS uses a top-level entry called 'sops' to store the metadata required to decrypt the file. For this reason, SOPS can \
not encrypt files that already contain such an entry.";

pub fn run(req: EncryptRequest) -> CliResult<()> {
    if req.in_place && req.output.is_some() {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot operate on both --output and --in-place",
        ));
    }
    let name = match (&req.filename_override, &req.file) {
        (Some(o), _) => o.clone(),
        (None, Some(f)) => f.to_string_lossy().into_owned(),
        (None, None) => {
            return Err(CliError::new(
                codes::CONFLICTING_PARAMETERS,
                "must specify --filename-override when reading from stdin",
            )
            .hint("pass --filename-override secrets.yaml so rsops knows the format and the creation rule"))
        }
    };
    if req.file.is_none() && req.in_place {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot use --in-place when reading from stdin",
        ));
    }
    if let Some(f) = &req.file {
        common::require_existing(f)?;
        if std::fs::metadata(f).map_or(true, |m| m.len() >= heap::LARGE_INPUT) {
            heap::default_steps_for_large_input();
        }
    }
    let cwd = common::cwd()?;
    let config = common::load_config(req.config_path.as_deref(), &cwd)?;
    let (in_format, out_format) = common::formats(&name, req.input_type.as_deref(), req.output_type.as_deref());
    let settings = common::store_settings(config.as_ref(), req.indent);
    let mut metadata = build_metadata(&req.options, config.as_ref(), Path::new(&name), &cwd, in_format)?;
    let mut keyring = common::keyring_from_env();
    let dest = match (&req.output, req.in_place, &req.file) {
        (Some(o), _, _) => Destination::File(o),
        (None, true, Some(f)) => Destination::File(f),
        _ => Destination::Stdout,
    };

    // Large YAML, JSON and dotenv files go piece by piece, while the data
    // key is wrapped for the master keys beside them. If the wrapping
    // fails, the error waits until the file has loaded, as below.
    let mut prepared = None;
    if let Some(file) = piecewise_candidate(&req, in_format, out_format) {
        let keys = new_data_key(&metadata, in_format);
        if let Ok((key, selector)) = &keys {
            let cipher = ValueCipher::new(key);
            let mac_only = metadata.mac_only_encrypted;
            let keys = pipeline::Keys {
                cipher: &cipher,
                selector,
                mac_only_encrypted: mac_only,
            };
            let (wrapped, done) = wrap_beside(&mut metadata, key, &mut keyring, |beside| {
                encrypt_piecewise(file, in_format, &settings, keys, beside)
            });
            if let (Ok(()), Some(done)) = (&wrapped, done) {
                for w in &done.warnings {
                    common::warn(w);
                }
                set_mac(&mut metadata, &cipher, &done.mac);
                let bytes = done.finish(&metadata);
                return common::write_streamed(
                    dest,
                    |out| bytes.write_to(out).map_err(EmitError::Write),
                    |e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Could not marshal tree: {e}")),
                );
            }
            if let Err(errs) = wrapped {
                prepared = Some(Err(wrap_error(&errs)));
            }
        }
        prepared = prepared.or(Some(keys));
    }

    let input = common::read_input(req.file.as_deref())?;
    let mut doc = sopsfile::load_plain(in_format, &settings, &input).map_err(|e| {
        if e.message == rsops::stores::yaml::UINT64_ERROR {
            // sops parses these and fails when walking the tree (exit 23).
            return CliError::new(
                codes::ERROR_ENCRYPTING_TREE,
                format!("Error encrypting tree: Error walking tree: {e}"),
            )
            .hint("integers above 9223372036854775807 cannot be encrypted; quote the value to keep it as a string");
        }
        CliError::new(
            codes::COULD_NOT_READ_INPUT_FILE,
            format!("Error unmarshalling file: {e}"),
        )
    })?;
    drop(input);
    if doc.branches.is_empty() {
        return Err(CliError::new(
            codes::NEED_AT_LEAST_ONE_DOCUMENT,
            "File cannot be completely empty, it must contain at least one document",
        ));
    }
    if sopsfile::has_metadata(in_format, &doc) {
        return Err(CliError::new(codes::FILE_ALREADY_ENCRYPTED, ALREADY_ENCRYPTED)
            .hint(format!("to edit an encrypted file, run: rsops edit {name}")));
    }

    let (key, selector) = match prepared {
        Some(keys) => keys?,
        None => prepare_cipher(&mut metadata, &keyring, in_format)?,
    };
    seal(&mut doc, &mut metadata, &ValueCipher::new(&key), &selector)?;
    let result = common::write_streamed(
        dest,
        |out| sopsfile::emit_encrypted_to(out_format, &settings, &mut doc, &metadata, out),
        |e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Could not marshal tree: {e}")),
    );
    // No plaintext is left in the tree (each value was wiped as it was
    // encrypted): skip freeing it piece by piece.
    doc.forget_without_wiping();
    result
}

/// Key groups, selectors, threshold and MAC mode from flags and the
/// matching creation rule (flags win field by field, §4.3, §10.3).
pub fn build_metadata(
    opts: &NewFileOptions,
    config: Option<&Config>,
    name: &Path,
    cwd: &Path,
    format: Format,
) -> CliResult<Metadata> {
    let rule = common::creation_rule(config, name, cwd)?;
    let key_groups = if !opts.keys.is_empty() {
        vec![opts.keys.clone()]
    } else if let Some(r) = rule.filter(|r| !r.key_groups.is_empty()) {
        r.key_groups.clone()
    } else {
        return Err(CliError::new(
            codes::GENERIC,
            "config file not found, or has no creation rules, and no keys provided through command line options",
        )
        .hint("pass recipients with --age (or SOPS_AGE_RECIPIENTS), or add a creation rule to .sops.yaml"));
    };
    let mut selectors = opts.selectors.clone();
    let mut threshold = opts.threshold;
    let mut mac_only = opts.mac_only_encrypted;
    if let Some(r) = rule {
        selectors = selectors.or(&r.selectors);
        if threshold == 0 {
            threshold = r.shamir_threshold;
        }
        mac_only |= r.mac_only_encrypted;
    }
    if format == Format::Binary {
        if selectors.count_set() > 0 {
            common::warn("selectors (encrypted/unencrypted suffix and regex) are ignored for binary files");
        }
        selectors = SelectorSpec::default();
        mac_only = false;
    } else {
        if selectors.count_set() > 1 {
            return Err(CliError::new(
                codes::CONFLICTING_PARAMETERS,
                rsops::policy::PolicyError::MoreThanOne.to_string(),
            ));
        }
        if selectors.count_set() == 0 {
            selectors.unencrypted_suffix = rsops::policy::DEFAULT_UNENCRYPTED_SUFFIX.to_string();
        }
    }
    Ok(Metadata {
        key_groups,
        shamir_threshold: threshold,
        last_modified: String::new(),
        mac: String::new(),
        selectors,
        mac_only_encrypted: mac_only,
        version: EMULATED_SOPS_VERSION.to_string(),
    })
}

/// A file `encrypt` may take through [`rsops::pipeline`]: a large YAML,
/// JSON or dotenv file read from disk and printed in its own format.
fn piecewise_candidate(req: &EncryptRequest, in_format: Format, out_format: Format) -> Option<&Path> {
    let file = req.file.as_deref()?;
    let large = std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() >= pipeline::MIN_BYTES);
    let format = matches!(in_format, Format::Yaml | Format::Json | Format::Dotenv) && in_format == out_format;
    (format && large).then_some(file)
}

/// `beside` runs on this thread while the others start on the pieces
/// (run here if the file does not go piecewise after all).
fn encrypt_piecewise(
    file: &Path,
    format: Format,
    settings: &sopsfile::StoreSettings,
    keys: pipeline::Keys<'_>,
    beside: &mut dyn FnMut(),
) -> Option<pipeline::EncryptedPieces> {
    let reader = std::fs::File::open(file).ok()?;
    let len = reader.metadata().map_or(0, |m| m.len());
    let json_store;
    let format = match format {
        Format::Yaml => {
            let indent = YamlStore::new(settings.yaml_indent).ok()?.indent;
            pipeline::PieceFormat::Yaml { indent }
        }
        Format::Json => {
            json_store = JsonStore::new(settings.json_indent).ok()?;
            pipeline::PieceFormat::Json(&json_store)
        }
        Format::Dotenv => pipeline::PieceFormat::Dotenv,
        _ => return None,
    };
    // A file of moderate size: dotenv is read by the threads piece by
    // piece (see `pipeline::encrypt_file`), YAML and JSON are mapped (no
    // copy out of the page cache into buffers of our own, as `decrypt`
    // maps its input). A large file is read piece by piece, whose buffers
    // are freed as it goes: a mapping's pages count towards the memory
    // the run takes (peak under 4× the file).
    if len < heap::LARGE_INPUT {
        let n = usize::try_from(len).ok()?;
        if matches!(format, pipeline::PieceFormat::Dotenv) {
            return pipeline::encrypt_file(&reader, n, format, keys, beside);
        }
        if let Some(mapped) = MappedFile::map(&reader, n) {
            let done = pipeline::encrypt_mapped(&mapped, format, keys, beside);
            // A file cut short while it was mapped is read again by the
            // whole-tree path.
            return done.filter(|_| !mapped.changed());
        }
    }
    pipeline::encrypt(reader, len, format, keys, beside)
}

/// The selector for `format` and a new data key, wrapped for every master
/// key of `metadata`.
fn prepare_cipher(metadata: &mut Metadata, keyring: &Keyring, format: Format) -> CliResult<(DataKey, Selector)> {
    let (key, selector) = new_data_key(metadata, format)?;
    wrap_data_key(metadata, &key, keyring).map_err(|errs| wrap_error(&errs))?;
    Ok((key, selector))
}

/// The selector for `format` and a new data key, not wrapped yet.
fn new_data_key(metadata: &Metadata, format: Format) -> CliResult<(DataKey, Selector)> {
    let selector = if format == Format::Binary {
        Selector::All
    } else {
        metadata
            .selectors
            .compile()
            .map_err(|e| CliError::new(codes::CONFLICTING_PARAMETERS, e.to_string()))?
    };
    Ok((DataKey::generate(), selector))
}

fn wrap_error(errs: &[String]) -> CliError {
    CliError::new(
        codes::GENERIC,
        format!("Could not generate data key: [{}]", errs.join(" ")),
    )
}

/// Wrap `key` for the master keys of `metadata` while `work` runs: on a
/// thread of its own where a master key waits on another process (gpg)
/// or a key service, whose round trip the pieces need not wait for.
/// For one or two age recipients and nothing else, each about 0.2 ms of
/// computation (two X25519 scalar multiplications), a thread of its own
/// cost more than it saved (medium dotenv encrypt × 0.94 without it, tiny
/// YAML × 0.89). Wrapping first held the worker threads back by that
/// long, so `work` is handed the wrapping as a closure to run on this
/// thread once its workers have started on the pieces; if it does not
/// run it, it runs here after `work`.
fn wrap_beside<T>(
    metadata: &mut Metadata,
    key: &DataKey,
    keyring: &mut Keyring,
    work: impl FnOnce(&mut dyn FnMut()) -> T,
) -> (Result<(), Vec<String>>, T) {
    if wraps_quickly_inline(&metadata.key_groups) {
        let mut wrapped = None;
        let mut wrap = || {
            if wrapped.is_none() {
                wrapped = Some(wrap_data_key(metadata, key, keyring));
            }
        };
        let done = work(&mut wrap);
        wrap();
        let wrapped = wrapped.expect("the wrapping ran, in `work` or just above");
        return (wrapped, done);
    }
    // The keyring is lent to one thread at a time (its key-service
    // clients, made on first use, are not to be shared between threads).
    let lent = Mutex::new((metadata, keyring));
    let wrap = || {
        let mut lent = lent.lock().unwrap_or_else(PoisonError::into_inner);
        let (metadata, keyring) = &mut *lent;
        wrap_data_key(metadata, key, keyring)
    };
    std::thread::scope(|s| match std::thread::Builder::new().spawn_scoped(s, wrap) {
        Ok(wrapping) => {
            let done = work(&mut || {});
            let wrapped = wrapping.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (wrapped, done)
        }
        Err(_) => (wrap(), work(&mut || {})),
    })
}

/// Whether wrapping for `groups` is quicker here than on a thread: at
/// most two master keys, both age recipients (computation in this
/// process, with no other process or key service to wait on).
fn wraps_quickly_inline(groups: &[KeyGroup]) -> bool {
    let mut keys = groups.iter().flatten();
    keys.clone().count() <= 2 && keys.all(|k| matches!(k, MasterKey::Age { .. }))
}

/// Encrypt the tree with an existing cipher and store the MAC.
pub fn seal(doc: &mut Document, metadata: &mut Metadata, cipher: &ValueCipher, selector: &Selector) -> CliResult<()> {
    let outcome = encrypt_document(doc, cipher, selector, metadata.mac_only_encrypted)
        .map_err(|e| CliError::new(codes::ERROR_ENCRYPTING_TREE, format!("Error encrypting tree: {e}")))?;
    for w in outcome.warnings {
        common::warn(&w);
    }
    set_mac(metadata, cipher, &outcome.mac);
    Ok(())
}

/// Stamp `lastmodified` and store the MAC, encrypted with it as AAD.
fn set_mac(metadata: &mut Metadata, cipher: &ValueCipher, mac: &str) {
    metadata.last_modified = Timestamp::now_utc().format_rfc3339();
    metadata.mac = cipher.encrypt_bytes(mac.as_bytes(), "str", metadata.last_modified.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsops::keys::KeyConfig;

    fn age_metadata() -> Metadata {
        let recipient = age::x25519::Identity::generate().to_public().to_string();
        Metadata {
            key_groups: vec![vec![MasterKey::Age {
                recipient,
                enc: String::new(),
            }]],
            ..Metadata::default()
        }
    }

    fn wrapped_for_age(metadata: &Metadata) -> bool {
        metadata.key_groups[0]
            .iter()
            .all(|k| matches!(k, MasterKey::Age { enc, .. } if enc.contains("BEGIN AGE ENCRYPTED FILE")))
    }

    /// An age recipient is wrapped for by `work` when it runs the closure
    /// it is given (as often as it likes), and after `work` when it does
    /// not.
    #[test]
    fn age_wrapping_runs_once_in_work_or_after_it() {
        let key = DataKey::generate();
        let mut keyring = Keyring::new(KeyConfig::default());
        let caller = std::thread::current().id();

        let mut metadata = age_metadata();
        let (wrapped, ran_on) = wrap_beside(&mut metadata, &key, &mut keyring, |beside| {
            beside();
            beside();
            std::thread::current().id()
        });
        assert!(wrapped.is_ok());
        assert_eq!(ran_on, caller);
        assert!(wrapped_for_age(&metadata));
        let first = metadata.clone();

        let mut metadata = age_metadata();
        let (wrapped, ()) = wrap_beside(&mut metadata, &key, &mut keyring, |_beside| {});
        assert!(wrapped.is_ok());
        assert!(wrapped_for_age(&metadata));
        assert_ne!(metadata, first, "a new recipient, a new wrapping");
    }
}
