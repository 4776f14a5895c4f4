//! The command lines most runs use, `encrypt` or `decrypt` of one file
//! with long options, parsed without clap. Building clap's command (the
//! legacy flags and every subcommand's arguments) and parsing with it took
//! about 0.2 ms of every run here, a fifth of a small decrypt.
//!
//! Only a strict subset is taken: the subcommand first, then options of
//! that subcommand written `--name value` or `--name=value`, its flags
//! (`--in-place` also as `-i`), the global `--config`, and at most one
//! argument that does not start with `-` (the file), each at most once,
//! with none of the environment variables these arguments read from set.
//! Anything else (help, a short option, an unknown, repeated or
//! mistyped argument, a value that is not UTF-8 or starts with `-`, `--`)
//! gives `None`, and clap parses the whole command line as before, with its
//! results and messages. A test holds this parser to clap's results.

use super::args::{Cli, Command, DecryptArgs, EncryptArgs, LegacyArgs};
use std::ffi::OsString;
use std::path::PathBuf;

/// What one named argument sets.
enum Slot<'a> {
    Flag(&'a mut bool),
    Text(&'a mut Option<String>),
    Path(&'a mut Option<PathBuf>),
}

/// The environment variables `encrypt`'s arguments read (clap's `env`).
const ENCRYPT_ENV: &[&str] = &[
    "SOPS_KMS_ARN",
    "SOPS_GCP_KMS_IDS",
    "SOPS_HUAWEICLOUD_KMS_IDS",
    "SOPS_AZURE_KEYVAULT_URLS",
    "SOPS_VAULT_URIS",
    "SOPS_PGP_FP",
    "SOPS_AGE_RECIPIENTS",
    "SOPS_ENABLE_LOCAL_KEYSERVICE",
    "SOPS_KEYSERVICE",
    "SOPS_CONFIG",
];

/// The environment variables `decrypt`'s arguments read.
const DECRYPT_ENV: &[&str] = &[
    "SOPS_DECRYPTION_ORDER",
    "SOPS_ENABLE_LOCAL_KEYSERVICE",
    "SOPS_KEYSERVICE",
    "SOPS_CONFIG",
];

fn encrypt_slot<'a>(a: &'a mut EncryptArgs, name: &str) -> Option<Slot<'a>> {
    Some(match name {
        "in-place" => Slot::Flag(&mut a.in_place),
        "output" => Slot::Path(&mut a.output),
        "kms" => Slot::Text(&mut a.keys.kms),
        "aws-profile" => Slot::Text(&mut a.keys.aws_profile),
        "gcp-kms" => Slot::Text(&mut a.keys.gcp_kms),
        "hckms" => Slot::Text(&mut a.keys.hckms),
        "azure-kv" => Slot::Text(&mut a.keys.azure_kv),
        "hc-vault-transit" => Slot::Text(&mut a.keys.hc_vault_transit),
        "pgp" => Slot::Text(&mut a.keys.pgp),
        "age" => Slot::Text(&mut a.keys.age),
        "input-type" => Slot::Text(&mut a.types.input_type),
        "output-type" => Slot::Text(&mut a.types.output_type),
        "unencrypted-suffix" => Slot::Text(&mut a.selectors.unencrypted_suffix),
        "encrypted-suffix" => Slot::Text(&mut a.selectors.encrypted_suffix),
        "unencrypted-regex" => Slot::Text(&mut a.selectors.unencrypted_regex),
        "encrypted-regex" => Slot::Text(&mut a.selectors.encrypted_regex),
        "encryption-context" => Slot::Text(&mut a.encryption_context),
        "filename-override" => Slot::Text(&mut a.filename_override),
        _ => return None,
    })
}

fn decrypt_slot<'a>(a: &'a mut DecryptArgs, name: &str) -> Option<Slot<'a>> {
    Some(match name {
        "in-place" => Slot::Flag(&mut a.in_place),
        "extract" => Slot::Text(&mut a.extract),
        "output" => Slot::Path(&mut a.output),
        "input-type" => Slot::Text(&mut a.types.input_type),
        "output-type" => Slot::Text(&mut a.types.output_type),
        "ignore-mac" => Slot::Flag(&mut a.ignore_mac),
        "filename-override" => Slot::Text(&mut a.filename_override),
        "decryption-order" => Slot::Text(&mut a.decryption_order),
        _ => return None,
    })
}

/// `args` (program name first) as clap would parse them, or `None` when
/// they are not of the subset above; `env_set` says whether an
/// environment variable is set.
pub fn parse(args: &[OsString], env_set: impl Fn(&str) -> bool) -> Option<Cli> {
    let mut words = Vec::with_capacity(args.len());
    for arg in args.get(1..)? {
        words.push(arg.to_str()?);
    }
    let (&subcommand, rest) = words.split_first()?;
    let mut config = None;
    let command = match subcommand {
        "encrypt" => {
            let file: fn(&mut EncryptArgs) -> &mut Option<PathBuf> = |a| &mut a.file;
            let a = parse_rest(rest, ENCRYPT_ENV, &env_set, &mut config, encrypt_slot, file)?;
            Command::Encrypt(a)
        }
        "decrypt" => {
            let file: fn(&mut DecryptArgs) -> &mut Option<PathBuf> = |a| &mut a.file;
            let a = parse_rest(rest, DECRYPT_ENV, &env_set, &mut config, decrypt_slot, file)?;
            Command::Decrypt(a)
        }
        _ => return None,
    };
    Some(Cli {
        command: Some(command),
        legacy: LegacyArgs {
            config,
            ..LegacyArgs::default()
        },
        file: None,
        extra: Vec::new(),
    })
}

/// The words after the subcommand: the options `slot` finds in a
/// subcommand's arguments, `--config` and the one file (`file`); `None`
/// if one of the arguments' environment variables `env` is set.
fn parse_rest<A: Default>(
    words: &[&str],
    env: &[&str],
    env_set: impl Fn(&str) -> bool,
    config: &mut Option<PathBuf>,
    slot: for<'s> fn(&'s mut A, &str) -> Option<Slot<'s>>,
    file: fn(&mut A) -> &mut Option<PathBuf>,
) -> Option<A> {
    if env.iter().any(|v| env_set(v)) {
        return None;
    }
    let mut args = A::default();
    let a = &mut args;
    let mut words = words.iter();
    while let Some(&word) = words.next() {
        let Some(option) = word.strip_prefix("--") else {
            if word == "-i" {
                set_flag(slot(a, "in-place")?)?;
                continue;
            }
            // The file: not an option, and only one of them.
            let file = file(a);
            if word.starts_with('-') || file.is_some() {
                return None;
            }
            *file = Some(path(word.to_owned())?);
            continue;
        };
        let (name, inline) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        let value = |words: &mut std::slice::Iter<'_, &str>| -> Option<String> {
            match inline {
                Some(v) => Some(v.to_owned()),
                // A following word that looks like an option is clap's to
                // judge.
                None => words.next().filter(|w| !w.starts_with('-')).map(|w| (*w).to_owned()),
            }
        };
        if name == "config" {
            if config.is_some() {
                return None;
            }
            *config = Some(path(value(&mut words)?)?);
            continue;
        }
        match slot(a, name)? {
            Slot::Flag(flag) if inline.is_none() => set_flag(Slot::Flag(flag))?,
            Slot::Flag(_) => return None,
            Slot::Text(text) if text.is_none() => *text = Some(value(&mut words)?),
            Slot::Path(p) if p.is_none() => *p = Some(path(value(&mut words)?)?),
            Slot::Text(_) | Slot::Path(_) => return None,
        }
    }
    Some(args)
}

/// A path argument: clap refuses an empty one.
fn path(word: String) -> Option<PathBuf> {
    (!word.is_empty()).then(|| PathBuf::from(word))
}

fn set_flag(slot: Slot<'_>) -> Option<()> {
    match slot {
        Slot::Flag(flag) if !*flag => {
            *flag = true;
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(words: &[&str]) -> Vec<OsString> {
        std::iter::once("rsops")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// The subcommand and `--config` of a parsed command line, what `run`
    /// reads when there is a subcommand.
    fn essence(cli: Cli) -> (Option<EncryptArgs>, Option<DecryptArgs>, Option<PathBuf>) {
        match cli.command {
            Some(Command::Encrypt(a)) => (Some(a), None, cli.legacy.config),
            Some(Command::Decrypt(a)) => (None, Some(a), cli.legacy.config),
            _ => panic!("the quick parser gave another command"),
        }
    }

    fn clean_environment() {
        let set: Vec<_> = ENCRYPT_ENV
            .iter()
            .chain(DECRYPT_ENV)
            .filter(|v| std::env::var_os(v).is_some())
            .collect();
        assert!(set.is_empty(), "unset {set:?} to run this test (clap reads them)");
    }

    #[test]
    fn common_command_lines_are_taken_as_clap_takes_them() {
        clean_environment();
        let taken: &[&[&str]] = &[
            &["encrypt", "--age", "age1x", "secrets.env"],
            &["encrypt", "--age=age1x,age1y", "-i", "secrets.yaml"],
            &["encrypt", "secrets.yaml", "--in-place", "--pgp", "ABC"],
            &[
                "encrypt",
                "--kms",
                "arn:aws:kms:x",
                "--encrypted-regex",
                "^(data|stringData)$",
                "f.yaml",
            ],
            &[
                "encrypt",
                "--output",
                "out.json",
                "--input-type",
                "json",
                "--output-type=yaml",
                "f",
            ],
            &["encrypt", "--age=", "--filename-override", "x.yaml"],
            &[
                "encrypt",
                "--config",
                "c.yaml",
                "--hc-vault-transit",
                "http://v/transit/keys/k",
                "f",
            ],
            &[
                "encrypt",
                "--unencrypted-suffix",
                "_plain",
                "--encryption-context",
                "a:b",
                "f",
            ],
            &["encrypt"],
            &["decrypt", "secrets.env"],
            &["decrypt", "-i", "--ignore-mac", "f.yaml"],
            &["decrypt", "--extract", "[\"a\"][0]", "--output=o", "f.json"],
            &["decrypt", "--decryption-order", "age,pgp", "--config=c", "f"],
            &["decrypt", "--output-type", "dotenv", "--filename-override", "x.env"],
        ];
        for words in taken {
            let args = os(words);
            let quick = parse(&args, |_| false).unwrap_or_else(|| panic!("not taken: {words:?}"));
            let clap = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("clap refused {words:?}: {e}"));
            assert_eq!(essence(quick), essence(clap), "{words:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        let left: &[&[&str]] = &[
            &[],
            &["--age", "x", "encrypt", "f"],
            &["edit", "f"],
            &["encrypt", "--help"],
            &["encrypt", "-h"],
            &["encrypt", "-a", "age1x", "f"],
            &["encrypt", "-ia", "age1x", "f"],
            &["encrypt", "--age"],
            &["encrypt", "--age", "-i", "f"],
            &["encrypt", "--age", "a", "--age", "b", "f"],
            &["encrypt", "-i", "--in-place", "f"],
            &["encrypt", "--in-place=true", "f"],
            &["encrypt", "f", "g"],
            &["encrypt", "--", "f"],
            &["encrypt", "-"],
            &["encrypt", "--extract", "x", "f"],
            &["encrypt", "--shamir-secret-sharing-threshold", "2", "f"],
            &["encrypt", "--keyservice", "tcp://x", "f"],
            &["encrypt", "--enable-local-keyservice", "f"],
            &["encrypt", "--config", "a", "--config", "b", "f"],
            &["encrypt", "--agee", "x", "f"],
            &["decrypt", "--age", "x", "f"],
            &["decrypt", "--ignore-mac=yes", "f"],
            &["decrypt", "--output=", "f"],
            &["decrypt", "--config=", "f"],
            &["decrypt", ""],
        ];
        for words in left {
            assert!(parse(&os(words), |_| false).is_none(), "taken: {words:?}");
        }
        // An environment variable an argument reads from.
        let args = os(&["encrypt", "--age", "x", "f"]);
        assert!(parse(&args, |v| v == "SOPS_PGP_FP").is_none());
        assert!(parse(&os(&["decrypt", "f"]), |v| v == "SOPS_DECRYPTION_ORDER").is_none());
        // A word that is not UTF-8.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt;
            let mut args = os(&["decrypt"]);
            args.push(OsString::from_vec(vec![0x66, 0xff]));
            assert!(parse(&args, |_| false).is_none());
        }
    }

    /// Random command lines from a vocabulary of words clap treats in
    /// different ways: whatever the quick parser takes, clap takes the
    /// same way.
    #[test]
    fn random_command_lines_taken_quickly_match_clap() {
        clean_environment();
        let vocabulary = [
            "encrypt",
            "decrypt",
            "f.yaml",
            "g.env",
            "-i",
            "--in-place",
            "--age",
            "age1x",
            "--age=a",
            "--age=",
            "--pgp",
            "--output",
            "o",
            "--output=",
            "--config",
            "--config=c",
            "--extract",
            "--ignore-mac",
            "--decryption-order",
            "age",
            "--input-type=json",
            "--output-type",
            "-",
            "--",
            "-x",
            "--unknown",
            "--filename-override",
            "--encrypted-regex",
            "^a$",
            "=",
            "--in-place=1",
            "--kms",
            "",
            "--age=a=b",
            "--age=-x",
            "--output=-o",
            "-io",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut taken = 0;
        for _ in 0..20_000 {
            let mut words = vec![["encrypt", "decrypt"][next(2)]];
            for _ in 0..next(7) {
                words.push(vocabulary[next(vocabulary.len())]);
            }
            let args = os(&words);
            if let Some(quick) = parse(&args, |_| false) {
                taken += 1;
                let clap = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("clap refused {words:?}: {e}"));
                assert_eq!(essence(quick), essence(clap), "{words:?}");
            }
        }
        assert!(taken > 1000, "only {taken} command lines taken");
    }
}
