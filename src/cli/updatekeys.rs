//! `updatekeys`: re-wrap the data key for the recipients `.sops.yaml` names
//! now (spec §11.10). Values, MAC and `lastmodified` are left untouched.

use crate::cli::common::{self, codes, CliError, CliResult, Destination};
use crate::cli::rewrite::FileContext;
use rsops::metadata::{KeyGroup, MasterKey};
use rsops::timefmt::Timestamp;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub struct UpdateKeysRequest {
    pub files: Vec<PathBuf>,
    pub yes: bool,
    pub input_type: Option<String>,
    pub shamir_threshold: usize,
    pub config_path: Option<PathBuf>,
}

/// Go's standard logger prefix: `2006/01/02 15:04:05 ` in local time (UTC here).
fn log(message: &str) {
    let t = Timestamp::now_utc();
    eprintln!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02} {message}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    );
}

struct GroupDiff {
    common: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

fn diff_groups(old: &[KeyGroup], new: &[KeyGroup]) -> Vec<GroupDiff> {
    let ids = |g: Option<&KeyGroup>| -> Vec<String> {
        g.map(|g| g.iter().map(MasterKey::identity).collect())
            .unwrap_or_default()
    };
    (0..old.len().max(new.len()))
        .map(|i| {
            let o = ids(old.get(i));
            let n = ids(new.get(i));
            GroupDiff {
                common: o.iter().filter(|k| n.contains(k)).cloned().collect(),
                added: n.iter().filter(|k| !o.contains(k)).cloned().collect(),
                removed: o.iter().filter(|k| !n.contains(k)).cloned().collect(),
            }
        })
        .collect()
}

/// Ask until the answer is `y` or `n`, like sops's `fmt.Scanln` loop: end of
/// input, an empty line or several words are errors (exit 1).
fn confirm() -> CliResult<bool> {
    let stdin = std::io::stdin();
    loop {
        print!("Is this okay? (y/n):");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let n = stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::new(codes::GENERIC, e.to_string()))?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (None, _) if n == 0 || !line.ends_with('\n') => return Err(CliError::new(codes::GENERIC, "EOF")),
            (None, _) => return Err(CliError::new(codes::GENERIC, "unexpected newline")),
            (Some(_), Some(_)) => return Err(CliError::new(codes::GENERIC, "expected newline")),
            (Some("y"), None) => return Ok(true),
            (Some("n"), None) => return Ok(false),
            (Some(_), None) => continue,
        }
    }
}

fn update_file(file: &Path, req: &UpdateKeysRequest, cwd: &Path) -> CliResult<()> {
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    log(&format!("Syncing keys for file {}", abs.display()));
    let config = common::load_config(req.config_path.as_deref(), cwd)?.ok_or_else(|| {
        CliError::new(codes::GENERIC, "config file not found").hint("updatekeys needs a .sops.yaml with creation rules")
    })?;
    let rule = common::creation_rule(Some(&config), file, cwd)?.ok_or_else(|| {
        CliError::new(
            codes::GENERIC,
            format!(
                "The config file {} does not contain any creation rule",
                config.path.display()
            ),
        )
    })?;
    let ctx = FileContext::new(file, req.input_type.as_deref(), None, req.config_path.as_deref(), &None)?;
    let mut sealed = ctx.load_sealed(file)?;
    let diffs = diff_groups(&sealed.metadata.key_groups, &rule.key_groups);
    let keys_change = diffs.iter().any(|d| !d.added.is_empty() || !d.removed.is_empty());
    let old_threshold = sealed.metadata.shamir_threshold;
    let mut threshold = if req.shamir_threshold != 0 {
        req.shamir_threshold
    } else {
        old_threshold
    };
    threshold = threshold.min(rule.key_groups.len());
    if !keys_change && threshold == old_threshold {
        log(&format!("File {} already up to date", abs.display()));
        return Ok(());
    }
    let mut out = String::from("The following changes will be made to the file's groups:\n");
    if threshold != old_threshold {
        out.push_str(&format!(
            "+++ shamir_threshold: {threshold}\n--- shamir_threshold: {old_threshold}\n"
        ));
    } else if threshold != 0 {
        out.push_str(&format!("shamir_threshold: {threshold}\n"));
    }
    for (i, d) in diffs.iter().enumerate() {
        out.push_str(&format!("Group {}\n", i + 1));
        for k in &d.common {
            out.push_str(&format!("    {k}\n"));
        }
        for k in &d.added {
            out.push_str(&format!("+++ {k}\n"));
        }
        for k in &d.removed {
            out.push_str(&format!("--- {k}\n"));
        }
    }
    print!("{out}");
    if !req.yes && !confirm()? {
        log(&format!("File {} left unchanged", abs.display()));
        return Ok(());
    }
    let key = ctx.data_key(&sealed)?;
    sealed.metadata.key_groups = rule.key_groups.clone();
    sealed.metadata.shamir_threshold = threshold;
    ctx.save_sealed(sealed, &key, Destination::File(file))?;
    log(&format!("File {} synced with new keys", abs.display()));
    Ok(())
}

pub fn run(req: UpdateKeysRequest) -> CliResult<()> {
    if req.files.is_empty() {
        return Err(CliError::new(codes::NO_FILE_SPECIFIED, "no file specified"));
    }
    let cwd = common::cwd()?;
    // Like sops, a missing config is reported once, before any file is synced.
    if common::load_config(req.config_path.as_deref(), &cwd)?.is_none() {
        return Err(CliError::new(codes::GENERIC, "config file not found")
            .hint("updatekeys needs a .sops.yaml with creation rules"));
    }
    if req.files.len() == 1 {
        return update_file(&req.files[0], &req, &cwd);
    }
    let mut failed = 0;
    for f in &req.files {
        if let Err(e) = update_file(f, &req, &cwd) {
            eprintln!("error: {}: {}", f.display(), e.message);
            failed += 1;
        }
    }
    if failed > 0 {
        return Err(CliError::new(
            codes::GENERIC,
            format!("failed updating {failed} key(s)"),
        ));
    }
    Ok(())
}
