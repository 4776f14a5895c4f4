//! `filestatus`: `{"encrypted":true}` when the file carries sops metadata.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use rsops::metadata::MetadataError;
use rsops::sopsfile::{self, LoadError};
use std::path::PathBuf;

pub fn run(file: Option<PathBuf>, input_type: Option<String>, config_path: Option<PathBuf>) -> CliResult<()> {
    let file = file.ok_or_else(|| CliError::new(codes::NO_FILE_SPECIFIED, "no file specified"))?;
    common::require_existing(&file)?;
    let cwd = common::cwd()?;
    let config = common::load_config(config_path.as_deref(), &cwd)?;
    let settings = common::store_settings(config.as_ref(), None);
    let (format, _) = common::formats(&file.to_string_lossy(), input_type.as_deref(), None);
    let input = common::read_input(Some(&file))?;
    let encrypted = match sopsfile::load_encrypted(format, &settings, &input) {
        Ok(_) => true,
        Err(LoadError::Metadata(MetadataError::NotFound)) => false,
        Err(e) => {
            return Err(CliError::new(
                codes::GENERIC,
                format!("cannot read the file's status: {e}"),
            ))
        }
    };
    common::write_output(
        Destination::Stdout,
        format!("{{\"encrypted\":{encrypted}}}\n").as_bytes(),
    )
}
