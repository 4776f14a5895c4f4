//! `groups add` / `groups delete`: change the key groups of a file and
//! re-split the data key; values, MAC and `lastmodified` stay as they are.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::rewrite::FileContext;
use rsops::config::keyspec;
use rsops::metadata::KeyGroup;
use std::path::PathBuf;

pub struct GroupKeys {
    pub pgp: Vec<String>,
    pub kms: Vec<String>,
    pub aws_profile: Option<String>,
    pub gcp_kms: Vec<String>,
    pub azure_kv: Vec<String>,
    pub hc_vault_transit: Vec<String>,
    pub age: Vec<String>,
    pub encryption_context: Option<String>,
}

pub struct GroupsRequest {
    pub file: Option<PathBuf>,
    pub in_place: bool,
    pub shamir_threshold: usize,
    pub config_path: Option<PathBuf>,
}

fn group_from(k: &GroupKeys) -> CliResult<KeyGroup> {
    let context = common::parse_encryption_context(&k.encryption_context)?;
    let profile = k.aws_profile.clone().unwrap_or_default();
    let mut g = Vec::new();
    for fp in &k.pgp {
        g.push(keyspec::pgp(fp));
    }
    for arn in &k.kms {
        g.push(keyspec::kms(arn, &context, &profile));
    }
    for id in &k.gcp_kms {
        g.push(keyspec::gcp_kms(id));
    }
    for url in &k.azure_kv {
        g.push(keyspec::azure_kv(url).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for uri in &k.hc_vault_transit {
        g.push(keyspec::hc_vault(uri).map_err(|e| CliError::new(codes::GENERIC, e))?);
    }
    for r in &k.age {
        rsops::keys::age::AgeRecipient::parse(r).map_err(|e| CliError::new(codes::GENERIC, e))?;
        g.push(keyspec::age(r));
    }
    Ok(g)
}

fn file_of(req: &GroupsRequest) -> CliResult<&PathBuf> {
    req.file.as_ref().ok_or_else(|| {
        CliError::new(codes::NO_FILE_SPECIFIED, "no file specified").hint("pass the file with --file / -f")
    })
}

/// The data key, failing like sops's `groups` commands: the bare
/// `getDataKeyError` text with exit 1 (no per-group report, no exit 128).
fn data_key(ctx: &FileContext, sealed: &crate::cli::rewrite::Sealed) -> CliResult<rsops::cipher::DataKey> {
    let keyring = common::keyring_from_env();
    rsops::keys::recover_data_key(&sealed.metadata, &keyring, &ctx.order).map_err(|e| {
        if e.combine_error.is_some() {
            return CliError::new(codes::GENERIC, e.to_string());
        }
        let successful = e.groups.iter().filter(|g| g.is_none()).count();
        CliError::new(
            codes::GENERIC,
            format!(
                "Error getting data key: {} successful groups required, got {successful}",
                e.threshold
            ),
        )
    })
}

fn finish(
    req: &GroupsRequest,
    ctx: &FileContext,
    sealed: crate::cli::rewrite::Sealed,
    key: &rsops::cipher::DataKey,
) -> CliResult<()> {
    let file = file_of(req)?;
    let dest = if req.in_place {
        Destination::File(file)
    } else {
        Destination::Stdout
    };
    ctx.save_sealed(sealed, key, dest)
}

pub fn add(req: GroupsRequest, keys: GroupKeys) -> CliResult<()> {
    let file = file_of(&req)?.clone();
    let group = group_from(&keys)?;
    if group.is_empty() {
        return Err(CliError::new(codes::GENERIC, "no keys given for the new group")
            .hint("pass at least one --age, --pgp, --kms, ... key"));
    }
    let ctx = FileContext::new(&file, None, None, req.config_path.as_deref(), &None)?;
    let mut sealed = ctx.load_sealed(&file)?;
    let key = data_key(&ctx, &sealed)?;
    sealed.metadata.key_groups.push(group);
    if req.shamir_threshold != 0 {
        sealed.metadata.shamir_threshold = req.shamir_threshold;
    }
    finish(&req, &ctx, sealed, &key)
}

pub fn delete(req: GroupsRequest, index: Option<String>) -> CliResult<()> {
    let file = file_of(&req)?.clone();
    let index: usize = index.as_deref().and_then(|i| i.parse().ok()).ok_or_else(|| {
        CliError::new(
            codes::GENERIC,
            "the index of the group to delete is missing or not a number",
        )
    })?;
    let ctx = FileContext::new(&file, None, None, req.config_path.as_deref(), &None)?;
    let mut sealed = ctx.load_sealed(&file)?;
    if index >= sealed.metadata.key_groups.len() {
        return Err(CliError::new(
            codes::GENERIC,
            format!(
                "the file has {} key group(s); there is no group {index}",
                sealed.metadata.key_groups.len()
            ),
        ));
    }
    let key = data_key(&ctx, &sealed)?;
    sealed.metadata.key_groups.remove(index);
    if req.shamir_threshold != 0 {
        sealed.metadata.shamir_threshold = req.shamir_threshold;
    }
    let groups = sealed.metadata.key_groups.len();
    if groups < sealed.metadata.shamir_threshold {
        return Err(CliError::new(
            codes::GENERIC,
            format!(
                "removing this key group will make the Shamir threshold impossible to satisfy: Shamir threshold is {}, but we only have {groups} key groups",
                sealed.metadata.shamir_threshold
            ),
        ));
    }
    finish(&req, &ctx, sealed, &key)
}
