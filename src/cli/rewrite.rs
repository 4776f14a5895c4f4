//! Decrypt a file, change its tree, encrypt it again with the same data key
//! (IVs of unchanged values kept, §2.5): shared by `set`, `unset` and `edit`.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::decrypt::{open_encrypted, Opened};
use crate::cli::encrypt::seal;
use rsops::sopsfile::{self, StoreSettings};
use rsops::stores::Format;
use std::path::Path;

/// Outside encrypt/decrypt sops has no "non-existent file" check: reading
/// the file fails with exit 2 and Go's error text (path as given).
fn require_readable(file: &Path) -> CliResult<()> {
    if file.exists() {
        return Ok(());
    }
    Err(CliError::new(
        codes::COULD_NOT_READ_INPUT_FILE,
        format!("Error reading file: open {}: no such file or directory", file.display()),
    ))
}

/// Where a file is read from and how it is parsed and printed.
pub struct FileContext {
    pub settings: StoreSettings,
    pub in_format: Format,
    pub out_format: Format,
    pub order: Vec<String>,
}

impl FileContext {
    pub fn new(
        file: &Path,
        input_type: Option<&str>,
        output_type: Option<&str>,
        config_path: Option<&Path>,
        decryption_order: &Option<String>,
    ) -> CliResult<FileContext> {
        let cwd = common::cwd()?;
        let config = common::load_config(config_path, &cwd)?;
        let (in_format, out_format) = common::formats(&file.to_string_lossy(), input_type, output_type);
        Ok(FileContext {
            settings: common::store_settings(config.as_ref(), None),
            in_format,
            out_format,
            order: common::decryption_order(decryption_order)?,
        })
    }

    /// Read and decrypt `file`, remembering IVs for re-encryption.
    pub fn open(&self, file: &Path, ignore_mac: bool) -> CliResult<Opened> {
        require_readable(file)?;
        let input = common::read_input(Some(file))?;
        let keyring = common::keyring_from_env();
        open_encrypted(
            &input,
            self.in_format,
            &self.settings,
            &keyring,
            &self.order,
            ignore_mac,
            true,
        )
    }

    /// Encrypt the (changed) tree again and write it to `dest`.
    pub fn save(&self, mut opened: Opened, dest: Destination<'_>) -> CliResult<()> {
        let selector = if self.in_format == Format::Binary {
            rsops::policy::Selector::All
        } else {
            opened
                .metadata
                .selectors
                .compile()
                .map_err(|e| CliError::new(codes::GENERIC, e.to_string()))?
        };
        seal(&mut opened.doc, &mut opened.metadata, &opened.cipher, &selector)?;
        let out = sopsfile::emit_encrypted(self.out_format, &self.settings, &mut opened.doc, &opened.metadata)
            .map_err(|e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Could not marshal tree: {e}")))?;
        common::write_output(dest, &out)
    }
}

/// A file loaded without decrypting its values, for commands that only
/// re-wrap the data key (`updatekeys`, `groups`): tree, MAC and
/// `lastmodified` stay exactly as they are.
pub struct Sealed {
    pub doc: rsops::tree::Document,
    pub metadata: rsops::metadata::Metadata,
}

impl FileContext {
    pub fn load_sealed(&self, file: &Path) -> CliResult<Sealed> {
        require_readable(file)?;
        let input = common::read_input(Some(file))?;
        let (doc, metadata) =
            sopsfile::load_encrypted(self.in_format, &self.settings, &input).map_err(|e| match e {
                sopsfile::LoadError::Parse(e) => CliError::new(
                    codes::GENERIC,
                    format!(
                        "Error unmarshalling input {}: {e}",
                        sopsfile::encrypted_store_name(self.in_format)
                    ),
                ),
                sopsfile::LoadError::Metadata(e) => CliError::new(codes::GENERIC, e.to_string()),
            })?;
        Ok(Sealed { doc, metadata })
    }

    /// Recover the data key of a sealed file.
    pub fn data_key(&self, sealed: &Sealed) -> CliResult<rsops::cipher::DataKey> {
        let keyring = common::keyring_from_env();
        rsops::keys::recover_data_key(&sealed.metadata, &keyring, &self.order)
            .map_err(|e| CliError::new(codes::COULD_NOT_RETRIEVE_KEY, e.to_string()))
    }

    /// Wrap `key` for the (changed) key groups and print the file unchanged otherwise.
    pub fn save_sealed(
        &self,
        mut sealed: Sealed,
        key: &rsops::cipher::DataKey,
        dest: Destination<'_>,
    ) -> CliResult<()> {
        let keyring = common::keyring_from_env();
        rsops::keys::wrap_data_key(&mut sealed.metadata, key, &keyring).map_err(|errs| {
            CliError::new(
                codes::GENERIC,
                format!("Could not generate data key: [{}]", errs.join(" ")),
            )
        })?;
        let out = sopsfile::emit_encrypted(self.out_format, &self.settings, &mut sealed.doc, &sealed.metadata)
            .map_err(|e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Could not marshal tree: {e}")))?;
        common::write_output(dest, &out)
    }
}
