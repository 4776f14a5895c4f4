//! `rotate` (and legacy `-r`): a new data key, every value re-encrypted,
//! optionally adding and removing master keys.

use crate::cli::args::RotateKeyArgs;
use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::rewrite::FileContext;
use rsops::cipher::{DataKey, ValueCipher};
use rsops::config::keyspec;
use rsops::metadata::MasterKey;
use std::path::PathBuf;

pub struct RotateRequest {
    pub file: PathBuf,
    pub in_place: bool,
    pub output: Option<PathBuf>,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub encryption_context: Option<String>,
    pub keys: RotateKeyArgs,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
}

fn list(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The keys named by `--add-*` (or `--rm-*` with `add = false`).
pub fn keys_from_flags(k: &RotateKeyArgs, add: bool, context: &[(String, String)]) -> CliResult<Vec<MasterKey>> {
    let pick = |a: &Option<String>, r: &Option<String>| list(if add { a } else { r });
    let mut keys = Vec::new();
    for arn in pick(&k.add_kms, &k.rm_kms) {
        keys.push(keyspec::kms(&arn, context, ""));
    }
    for id in pick(&k.add_gcp_kms, &k.rm_gcp_kms) {
        keys.push(keyspec::gcp_kms(&id));
    }
    for id in pick(&k.add_hckms, &k.rm_hckms) {
        keys.push(keyspec::hckms(&id));
    }
    for url in pick(&k.add_azure_kv, &k.rm_azure_kv) {
        keys.push(keyspec::azure_kv(&url).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for fp in pick(&k.add_pgp, &k.rm_pgp) {
        keys.push(keyspec::pgp(&fp));
    }
    for uri in pick(&k.add_hc_vault_transit, &k.rm_hc_vault_transit) {
        keys.push(keyspec::hc_vault(&uri).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for r in pick(&k.add_age, &k.rm_age) {
        if add {
            rsops::keys::age::AgeRecipient::parse(&r).map_err(|e| CliError::new(codes::GENERIC, e))?;
        }
        keys.push(keyspec::age(&r));
    }
    Ok(keys)
}

pub fn run(req: RotateRequest) -> CliResult<()> {
    if req.in_place && req.output.is_some() {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot operate on both --output and --in-place",
        ));
    }
    if !req.file.exists() && req.keys.any() {
        let abs = std::path::absolute(&req.file).unwrap_or_else(|_| req.file.clone());
        return Err(CliError::new(
            codes::CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE,
            format!(
                "cannot add or remove keys on non-existent file {:?}, use the `edit` subcommand instead.",
                abs.display().to_string()
            ),
        ));
    }
    if !req.file.exists() {
        // The `rotate` subcommand has no "non-existent file" check: reading fails (exit 2).
        let abs = std::path::absolute(&req.file).unwrap_or_else(|_| req.file.clone());
        return Err(CliError::new(
            codes::COULD_NOT_READ_INPUT_FILE,
            format!("Error reading file: open {}: no such file or directory", abs.display()),
        ));
    }
    let context = common::parse_encryption_context(&req.encryption_context)?;
    let add = keys_from_flags(&req.keys, true, &context)?;
    let remove = keys_from_flags(&req.keys, false, &context)?;
    let ctx = FileContext::new(
        &req.file,
        req.input_type.as_deref(),
        req.output_type.as_deref(),
        req.config_path.as_deref(),
        &req.decryption_order,
    )?;
    let mut opened = ctx.open(&req.file, false)?;
    if let Some(first) = opened.metadata.key_groups.first_mut() {
        first.extend(add);
    }
    let removed: Vec<String> = remove.iter().map(MasterKey::identity).collect();
    for group in &mut opened.metadata.key_groups {
        group.retain(|k| !removed.contains(&k.identity()));
    }
    let key = DataKey::generate();
    let keyring = common::keyring_from_env();
    rsops::keys::wrap_data_key(&mut opened.metadata, &key, &keyring).map_err(|errs| {
        CliError::new(
            codes::GENERIC,
            format!("Could not generate data key: [{}]", errs.join(" ")),
        )
    })?;
    // Keep the IVs of the old values, as sops does, under the new key.
    let mut cipher = ValueCipher::new(&key);
    cipher.take_stash_from(&mut opened.cipher);
    opened.cipher = cipher;
    let dest = match (&req.output, req.in_place) {
        (Some(o), _) => Destination::File(o),
        (None, true) => Destination::File(&req.file),
        _ => Destination::Stdout,
    };
    ctx.save(opened, dest)
}
