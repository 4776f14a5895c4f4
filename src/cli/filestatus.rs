//! `filestatus`: `{"encrypted":true}` when the file carries sops metadata.
//!
//! Every failure is sops's logged fatal error: exit 1, message prefixed
//! with `cannot check file status: cannot load encrypted file: `.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use rsops::metadata::MetadataError;
use rsops::sopsfile::{self, LoadError};
use std::path::PathBuf;

fn fail(detail: String) -> CliError {
    CliError::new(
        codes::GENERIC,
        format!("cannot check file status: cannot load encrypted file: {detail}"),
    )
}

pub fn run(file: Option<PathBuf>, input_type: Option<String>, config_path: Option<PathBuf>) -> CliResult<()> {
    let file = file.ok_or_else(|| CliError::new(codes::NO_FILE_SPECIFIED, "no file specified"))?;
    let cwd = common::cwd()?;
    let config = common::load_config(config_path.as_deref(), &cwd)?;
    let settings = common::store_settings(config.as_ref(), None);
    let (format, _) = common::formats(&file.to_string_lossy(), input_type.as_deref(), None);
    let input = zeroize::Zeroizing::new(std::fs::read(&file).map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        fail(format!("Error reading file: open {}: {reason}", file.display()))
    })?);
    let encrypted = match sopsfile::load_encrypted(format, &settings, &input) {
        Ok(_) => true,
        Err(LoadError::Metadata(MetadataError::NotFound)) => false,
        Err(LoadError::Parse(e)) => {
            return Err(fail(format!(
                "Error unmarshalling input {}: {e}",
                sopsfile::encrypted_store_name(format)
            )))
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    common::write_output(
        Destination::Stdout,
        format!("{{\"encrypted\":{encrypted}}}\n").as_bytes(),
    )
}
