//! The command line: the only place that reads the environment and prints.

mod args;
pub mod atomic;
mod common;
mod decrypt;
mod edit;
mod encrypt;
mod exec;
mod filestatus;
mod groups;
pub mod heap;
mod mapped;
mod quick_args;
mod rewrite;
mod rotate;
mod set;
mod updatekeys;

use args::{Cli, Command, GroupsCommand, LegacyArgs, Shell};
use clap::Parser;
pub use common::warn;
use common::{codes, CliError, CliResult};
use std::path::PathBuf;

/// Run the program; returns the process exit code.
pub fn main() -> i32 {
    // A bug must still end in one readable line, never a backtrace that
    // could show internal state.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error{location}; this is a bug in rsops");
        eprintln!("hint: please report it with the command you ran (never include secrets)");
    }));
    let args = crate::args_os();
    let quick = quick_args::parse(&args, |name| std::env::var_os(name).is_some());
    let cli = match quick.map_or_else(|| Cli::try_parse_from(args), Ok) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    0
                }
                _ => {
                    // sops (urfave/cli) exits 1 on usage errors.
                    let _ = e.print();
                    codes::GENERIC
                }
            };
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            report(&e);
            e.code
        }
    }
}

fn report(e: &CliError) {
    eprintln!("error: {}", e.message);
    if let Some(h) = &e.hint {
        eprintln!("hint: {h}");
    }
}

fn warn_extra(extra: &[String]) {
    if !extra.is_empty() {
        warn("More than one positional argument provided. Only the first one will be used!");
        if extra.iter().any(|a| a.starts_with('-')) {
            eprintln!("hint: flags must come before the file name");
        }
    }
}

fn run(cli: Cli) -> CliResult<()> {
    let config_path = cli.legacy.config.clone();
    match cli.command {
        Some(Command::Encrypt(a)) => {
            warn_extra(&a.extra);
            let context = common::parse_encryption_context(&a.encryption_context)?;
            encrypt::run(encrypt::EncryptRequest {
                options: encrypt::NewFileOptions {
                    keys: common::key_group_from_flags(&a.keys, &context)?,
                    selectors: common::selector_spec(&a.selectors),
                    threshold: a.shamir_threshold,
                    mac_only_encrypted: false,
                },
                file: a.file,
                filename_override: a.filename_override,
                in_place: a.in_place,
                output: a.output,
                input_type: a.types.input_type,
                output_type: a.types.output_type,
                config_path,
                // sops 3.11 ignores --indent for subcommands (§10.5).
                indent: None,
            })
        }
        Some(Command::Decrypt(a)) => {
            warn_extra(&a.extra);
            decrypt::run(decrypt::DecryptRequest {
                file: a.file,
                filename_override: a.filename_override,
                in_place: a.in_place,
                output: a.output,
                extract: a.extract,
                input_type: a.types.input_type,
                output_type: a.types.output_type,
                ignore_mac: a.ignore_mac,
                decryption_order: a.decryption_order,
                config_path,
                indent: None,
            })
        }
        Some(Command::Edit(a)) => {
            warn_extra(&a.extra);
            let Some(file) = a.file else {
                return Err(CliError::new(codes::NO_FILE_SPECIFIED, "no file specified"));
            };
            let context = common::parse_encryption_context(&a.encryption_context)?;
            edit::run(edit::EditRequest {
                file,
                options: encrypt::NewFileOptions {
                    keys: common::key_group_from_flags(&a.keys, &context)?,
                    selectors: common::selector_spec(&a.selectors),
                    threshold: a.shamir_threshold,
                    mac_only_encrypted: false,
                },
                show_master_keys: a.show_master_keys,
                ignore_mac: a.ignore_mac,
                input_type: a.types.input_type,
                output_type: a.types.output_type,
                decryption_order: a.decryption_order,
                config_path,
            })
        }
        Some(Command::Set(a)) => set::run_set(set::SetRequest {
            positionals: a.positionals,
            value_file: a.value_file,
            value_stdin: a.value_stdin,
            idempotent: a.idempotent,
            ignore_mac: a.ignore_mac,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            decryption_order: a.decryption_order,
            config_path,
        }),
        Some(Command::Unset(a)) => set::run_unset(set::UnsetRequest {
            positionals: a.positionals,
            idempotent: a.idempotent,
            ignore_mac: a.ignore_mac,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            decryption_order: a.decryption_order,
            config_path,
        }),
        Some(Command::Rotate(a)) => {
            warn_extra(&a.extra);
            let file = a
                .file
                .ok_or_else(|| CliError::new(codes::NO_FILE_SPECIFIED, "no file specified"))?;
            rotate::run(rotate::RotateRequest {
                file,
                in_place: a.in_place,
                output: a.output,
                input_type: a
                    .types
                    .input_type
                    .or_else(|| a.filename_override.clone().map(|f| type_of(&f))),
                output_type: a.types.output_type.or_else(|| a.filename_override.map(|f| type_of(&f))),
                encryption_context: a.encryption_context,
                keys: a.keys,
                decryption_order: a.decryption_order,
                config_path,
            })
        }
        Some(Command::Updatekeys(a)) => updatekeys::run(updatekeys::UpdateKeysRequest {
            files: a.files,
            yes: a.yes,
            input_type: a.input_type,
            shamir_threshold: a.shamir_threshold,
            config_path,
        }),
        Some(Command::Groups { command }) => match command {
            GroupsCommand::Add(a) => groups::add(
                groups::GroupsRequest {
                    file: a.file,
                    in_place: a.in_place,
                    shamir_threshold: a.shamir_threshold,
                    config_path,
                },
                groups::GroupKeys {
                    pgp: a.pgp,
                    kms: a.kms,
                    aws_profile: a.aws_profile,
                    gcp_kms: a.gcp_kms,
                    azure_kv: a.azure_kv,
                    hc_vault_transit: a.hc_vault_transit,
                    age: a.age,
                    encryption_context: a.encryption_context,
                },
            ),
            GroupsCommand::Delete(a) => groups::delete(
                groups::GroupsRequest {
                    file: a.file,
                    in_place: a.in_place,
                    shamir_threshold: a.shamir_threshold,
                    config_path,
                },
                a.index,
            ),
        },
        Some(Command::Filestatus(a)) => filestatus::run(a.file, a.input_type, config_path),
        Some(Command::ExecEnv(a)) => {
            if a.common.background {
                exec::warn_background();
            }
            exec::exec_env(exec_options(a.common, config_path), a.pristine, a.same_process)
        }
        Some(Command::ExecFile(a)) => {
            if a.common.background {
                exec::warn_background();
            }
            exec::exec_file(
                exec_options(a.common, config_path),
                exec::ExecFileOptions {
                    no_fifo: a.no_fifo,
                    input_type: a.types.input_type,
                    output_type: a.types.output_type,
                    filename: a.filename,
                },
            )
        }
        Some(Command::Completion { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            let mut script = Vec::new();
            // Complete under the name we were invoked as, so `sops` (an alias
            // or symlink to rsops) gets its completions too.
            let name = crate::args_os()
                .into_iter()
                .next()
                .and_then(|a| PathBuf::from(a).file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "rsops".to_string());
            clap_complete::generate(shell, &mut cmd, name, &mut script);
            common::write_output(common::Destination::Stdout, &script)
        }
        None => legacy(cli.legacy, cli.file, &cli.extra),
    }
}

/// The type name matching a file name's extension.
fn type_of(name: &str) -> String {
    rsops::stores::Format::from_path(name).name().to_string()
}

fn exec_options(a: args::ExecCommonArgs, config_path: Option<PathBuf>) -> exec::ExecOptions {
    exec::ExecOptions {
        positionals: a.positionals,
        background: a.background,
        user: a.user,
        decryption_order: a.decryption_order,
        config_path,
    }
}

/// sops' original interface: `sops [flags] file`, mode chosen by `-e`/`-d`.
fn legacy(a: LegacyArgs, file: Option<PathBuf>, extra: &[String]) -> CliResult<()> {
    if a.version {
        println!(
            "sops {} (rsops {})",
            rsops::metadata::EMULATED_SOPS_VERSION,
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    let Some(file) = file else {
        return Err(CliError::new(codes::NO_FILE_SPECIFIED, "no file specified")
            .hint("run `rsops --help` for the commands and flags"));
    };
    warn_extra(extra);
    if a.in_place && a.output.is_some() {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "cannot operate on both --output and --in-place",
        ));
    }
    // sops's legacy checks for a missing file, in its order (spec §11.2).
    if !file.exists() {
        if a.rotate_keys.any() {
            let abs = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
            return Err(CliError::new(
                codes::CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE,
                format!(
                    "cannot add or remove keys on non-existent file {:?}, use `--kms` and `--pgp` instead.",
                    abs.display().to_string()
                ),
            ));
        }
        if a.encrypt || a.decrypt || a.rotate {
            common::require_existing(&file)?;
        }
    }
    if a.encrypt && a.decrypt {
        warn("more than one mode flag given; the last one's output wins (deprecated)");
    }
    if a.decrypt {
        return decrypt::run(decrypt::DecryptRequest {
            file: Some(file),
            filename_override: a.filename_override,
            in_place: a.in_place,
            output: a.output,
            extract: a.extract,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            ignore_mac: a.ignore_mac,
            decryption_order: a.decryption_order,
            config_path: a.config,
            indent: a.indent,
        });
    }
    if a.encrypt {
        let context = common::parse_encryption_context(&a.encryption_context)?;
        let mut selectors = common::selector_spec(&a.selectors);
        selectors.unencrypted_comment_regex = a.unencrypted_comment_regex.unwrap_or_default();
        selectors.encrypted_comment_regex = a.encrypted_comment_regex.unwrap_or_default();
        return encrypt::run(encrypt::EncryptRequest {
            options: encrypt::NewFileOptions {
                keys: common::key_group_from_flags(&a.keys, &context)?,
                selectors,
                threshold: a.shamir_threshold,
                mac_only_encrypted: a.mac_only_encrypted,
            },
            file: Some(file),
            filename_override: a.filename_override,
            in_place: a.in_place,
            output: a.output,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            config_path: a.config,
            indent: a.indent,
        });
    }
    if a.rotate || a.rotate_keys.any() {
        return rotate::run(rotate::RotateRequest {
            file,
            in_place: a.in_place,
            output: a.output,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            encryption_context: a.encryption_context,
            keys: a.rotate_keys,
            decryption_order: a.decryption_order,
            config_path: a.config,
        });
    }
    if let Some(spec) = a.set {
        // `--set '<path> <json>'`: the path ends at the first `] `.
        let (path, value) = match spec.find("] ") {
            Some(i) => (spec[..=i].to_string(), spec[i + 2..].to_string()),
            None => return Err(CliError::new(codes::INVALID_SET_FORMAT, "Invalid set index format")),
        };
        return set::run_set(set::SetRequest {
            positionals: vec![file.to_string_lossy().into_owned(), path, value],
            value_file: false,
            value_stdin: false,
            idempotent: false,
            ignore_mac: a.ignore_mac,
            input_type: a.types.input_type,
            output_type: a.types.output_type,
            decryption_order: a.decryption_order,
            config_path: a.config,
        });
    }
    let context = common::parse_encryption_context(&a.encryption_context)?;
    let mut selectors = common::selector_spec(&a.selectors);
    selectors.unencrypted_comment_regex = a.unencrypted_comment_regex.unwrap_or_default();
    selectors.encrypted_comment_regex = a.encrypted_comment_regex.unwrap_or_default();
    edit::run(edit::EditRequest {
        file,
        options: encrypt::NewFileOptions {
            keys: common::key_group_from_flags(&a.keys, &context)?,
            selectors,
            threshold: a.shamir_threshold,
            mac_only_encrypted: a.mac_only_encrypted,
        },
        show_master_keys: a.show_master_keys,
        ignore_mac: a.ignore_mac,
        input_type: a.types.input_type,
        output_type: a.types.output_type,
        decryption_order: a.decryption_order,
        config_path: a.config,
    })
}
