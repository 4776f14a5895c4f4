//! Command-line arguments, mirroring sops 3.11's flags and environment
//! variables (spec §11).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rsops",
    about = "rsops - encrypted file editor with AWS KMS, GCP KMS, Azure Key Vault, age, and GPG support (sops-compatible)",
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub legacy: LegacyArgs,

    /// The file to operate on (legacy flag mode: `rsops -d file`).
    pub file: Option<PathBuf>,

    /// Further positional arguments are ignored, as sops does (with a warning).
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

/// Key selection flags shared by `encrypt` and legacy mode.
#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct KeyArgs {
    /// comma separated list of KMS ARNs
    #[arg(short = 'k', long = "kms", env = "SOPS_KMS_ARN", value_name = "value")]
    pub kms: Option<String>,
    /// The AWS profile to use for requests to AWS
    #[arg(long = "aws-profile", value_name = "value")]
    pub aws_profile: Option<String>,
    /// comma separated list of GCP KMS resource IDs
    #[arg(long = "gcp-kms", env = "SOPS_GCP_KMS_IDS", value_name = "value")]
    pub gcp_kms: Option<String>,
    /// comma separated list of HuaweiCloud KMS key IDs (format: region:key-uuid)
    #[arg(long = "hckms", env = "SOPS_HUAWEICLOUD_KMS_IDS", value_name = "value")]
    pub hckms: Option<String>,
    /// comma separated list of Azure Key Vault URLs
    #[arg(long = "azure-kv", env = "SOPS_AZURE_KEYVAULT_URLS", value_name = "value")]
    pub azure_kv: Option<String>,
    /// comma separated list of vault's key URI (e.g. 'https://vault.example.org:8200/v1/transit/keys/dev')
    #[arg(long = "hc-vault-transit", env = "SOPS_VAULT_URIS", value_name = "value")]
    pub hc_vault_transit: Option<String>,
    /// comma separated list of PGP fingerprints
    #[arg(short = 'p', long = "pgp", env = "SOPS_PGP_FP", value_name = "value")]
    pub pgp: Option<String>,
    /// comma separated list of age recipients
    #[arg(short = 'a', long = "age", env = "SOPS_AGE_RECIPIENTS", value_name = "value")]
    pub age: Option<String>,
}

/// The four key selectors both `encrypt` and legacy mode have.
#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct SelectorArgs {
    /// override the unencrypted key suffix.
    #[arg(long = "unencrypted-suffix", value_name = "value")]
    pub unencrypted_suffix: Option<String>,
    /// override the encrypted key suffix. When empty, all keys will be encrypted, unless otherwise marked with unencrypted-suffix.
    #[arg(long = "encrypted-suffix", value_name = "value")]
    pub encrypted_suffix: Option<String>,
    /// set the unencrypted key regex. When specified, only keys matching the regex will be left unencrypted.
    #[arg(long = "unencrypted-regex", value_name = "value")]
    pub unencrypted_regex: Option<String>,
    /// set the encrypted key regex. When specified, only keys matching the regex will be encrypted.
    #[arg(long = "encrypted-regex", value_name = "value")]
    pub encrypted_regex: Option<String>,
}

#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct TypeArgs {
    /// currently json, yaml, dotenv and binary are supported. If not set, the file's extension determines the type
    #[arg(long = "input-type", value_name = "value")]
    pub input_type: Option<String>,
    /// currently json, yaml, dotenv and binary are supported. If not set, the input file's extension determines the output format
    #[arg(long = "output-type", value_name = "value")]
    pub output_type: Option<String>,
}

#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct KeyServiceArgs {
    /// use local key service
    #[arg(long = "enable-local-keyservice", env = "SOPS_ENABLE_LOCAL_KEYSERVICE", value_parser = clap::builder::FalseyValueParser::new(), num_args = 0, default_missing_value = "true")]
    pub enable_local_keyservice: bool,
    /// Specify the key services to use in addition to the local one (not supported by rsops yet)
    #[arg(long = "keyservice", env = "SOPS_KEYSERVICE", value_name = "value")]
    pub keyservice: Vec<String>,
}

#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct EncryptArgs {
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// Save the output after encryption to the file specified
    #[arg(long = "output", value_name = "value")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub types: TypeArgs,
    #[command(flatten)]
    pub selectors: SelectorArgs,
    /// comma separated list of KMS encryption context key:value pairs
    #[arg(long = "encryption-context", value_name = "value")]
    pub encryption_context: Option<String>,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// Use this filename instead of the provided argument for loading configuration, and for determining input type and output type. Required when reading from stdin.
    #[arg(long = "filename-override", value_name = "value")]
    pub filename_override: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// The file to encrypt (stdin if absent)
    pub file: Option<PathBuf>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Args, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Debug))]
pub struct DecryptArgs {
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// extract a specific key or branch from the input document. Example: --extract '["somekey"][0]'
    #[arg(long = "extract", value_name = "value")]
    pub extract: Option<String>,
    /// Save the output after decryption to the file specified
    #[arg(long = "output", value_name = "value")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub types: TypeArgs,
    /// ignore Message Authentication Code during decryption
    #[arg(long = "ignore-mac")]
    pub ignore_mac: bool,
    /// Use this filename instead of the provided argument for loading configuration, and for determining input type and output type. Should be provided when reading from stdin.
    #[arg(long = "filename-override", value_name = "value")]
    pub filename_override: Option<String>,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// The file to decrypt (stdin if absent)
    pub file: Option<PathBuf>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

/// `--add-*` / `--rm-*` flags of `rotate` and legacy mode.
#[derive(Args, Clone, Default)]
pub struct RotateKeyArgs {
    /// add the provided comma-separated list of GCP KMS key resource IDs to the list of master keys on the given file
    #[arg(long = "add-gcp-kms", value_name = "value")]
    pub add_gcp_kms: Option<String>,
    /// remove the provided comma-separated list of GCP KMS key resource IDs from the list of master keys on the given file
    #[arg(long = "rm-gcp-kms", value_name = "value")]
    pub rm_gcp_kms: Option<String>,
    /// add the provided comma-separated list of HuaweiCloud KMS key IDs (format: region:key-uuid)
    #[arg(long = "add-hckms", value_name = "value")]
    pub add_hckms: Option<String>,
    /// remove the provided comma-separated list of HuaweiCloud KMS key IDs (format: region:key-uuid)
    #[arg(long = "rm-hckms", value_name = "value")]
    pub rm_hckms: Option<String>,
    /// add the provided comma-separated list of Azure Key Vault key URLs to the list of master keys on the given file
    #[arg(long = "add-azure-kv", value_name = "value")]
    pub add_azure_kv: Option<String>,
    /// remove the provided comma-separated list of Azure Key Vault key URLs from the list of master keys on the given file
    #[arg(long = "rm-azure-kv", value_name = "value")]
    pub rm_azure_kv: Option<String>,
    /// add the provided comma-separated list of KMS ARNs to the list of master keys on the given file
    #[arg(long = "add-kms", value_name = "value")]
    pub add_kms: Option<String>,
    /// remove the provided comma-separated list of KMS ARNs from the list of master keys on the given file
    #[arg(long = "rm-kms", value_name = "value")]
    pub rm_kms: Option<String>,
    /// add the provided comma-separated list of Vault's URI key to the list of master keys on the given file
    #[arg(long = "add-hc-vault-transit", value_name = "value")]
    pub add_hc_vault_transit: Option<String>,
    /// remove the provided comma-separated list of Vault's URI key from the list of master keys on the given file
    #[arg(long = "rm-hc-vault-transit", value_name = "value")]
    pub rm_hc_vault_transit: Option<String>,
    /// add the provided comma-separated list of age recipients to the list of master keys on the given file
    #[arg(long = "add-age", value_name = "value")]
    pub add_age: Option<String>,
    /// remove the provided comma-separated list of age recipients from the list of master keys on the given file
    #[arg(long = "rm-age", value_name = "value")]
    pub rm_age: Option<String>,
    /// add the provided comma-separated list of PGP fingerprints to the list of master keys on the given file
    #[arg(long = "add-pgp", value_name = "value")]
    pub add_pgp: Option<String>,
    /// remove the provided comma-separated list of PGP fingerprints from the list of master keys on the given file
    #[arg(long = "rm-pgp", value_name = "value")]
    pub rm_pgp: Option<String>,
}

impl RotateKeyArgs {
    pub fn any(&self) -> bool {
        [
            &self.add_gcp_kms,
            &self.rm_gcp_kms,
            &self.add_hckms,
            &self.rm_hckms,
            &self.add_azure_kv,
            &self.rm_azure_kv,
            &self.add_kms,
            &self.rm_kms,
            &self.add_hc_vault_transit,
            &self.rm_hc_vault_transit,
            &self.add_age,
            &self.rm_age,
            &self.add_pgp,
            &self.rm_pgp,
        ]
        .iter()
        .any(|o| o.as_deref().is_some_and(|s| !s.is_empty()))
    }
}

#[derive(Args, Clone, Default)]
pub struct SetArgs {
    #[command(flatten)]
    pub types: TypeArgs,
    /// treat 'value' as a file to read the actual value from (avoids leaking secrets in process listings). Mutually exclusive with --value-stdin
    #[arg(long = "value-file")]
    pub value_file: bool,
    /// read the value from standard input (avoids leaking secrets in process listings). Mutually exclusive with --value-file
    #[arg(long = "value-stdin")]
    pub value_stdin: bool,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// ignore Message Authentication Code during decryption
    #[arg(long = "ignore-mac")]
    pub ignore_mac: bool,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    /// do nothing if the given index already has the given value
    #[arg(long = "idempotent")]
    pub idempotent: bool,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// file index [value]
    pub positionals: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct UnsetArgs {
    #[command(flatten)]
    pub types: TypeArgs,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// ignore Message Authentication Code during decryption
    #[arg(long = "ignore-mac")]
    pub ignore_mac: bool,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    /// do nothing if the given index does not exist
    #[arg(long = "idempotent")]
    pub idempotent: bool,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// file index
    pub positionals: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct EditArgs {
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub types: TypeArgs,
    #[command(flatten)]
    pub selectors: SelectorArgs,
    /// comma separated list of KMS encryption context key:value pairs
    #[arg(long = "encryption-context", value_name = "value")]
    pub encryption_context: Option<String>,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// display master encryption keys in the file during editing
    #[arg(short = 's', long = "show-master-keys")]
    pub show_master_keys: bool,
    /// ignore Message Authentication Code during decryption
    #[arg(long = "ignore-mac")]
    pub ignore_mac: bool,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// The file to edit (created if it does not exist)
    pub file: Option<PathBuf>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct RotateArgs {
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// Save the output after rotation to the file specified
    #[arg(long = "output", value_name = "value")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub types: TypeArgs,
    /// comma separated list of KMS encryption context key:value pairs
    #[arg(long = "encryption-context", value_name = "value")]
    pub encryption_context: Option<String>,
    #[command(flatten)]
    pub keys: RotateKeyArgs,
    /// Use this filename instead of the provided argument for determining input type and output type
    #[arg(long = "filename-override", value_name = "value")]
    pub filename_override: Option<String>,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    pub file: Option<PathBuf>,
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct UpdateKeysArgs {
    /// pre-approve all changes and run non-interactively
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// currently ini, json, yaml, dotenv and binary are supported. If not set, the file's extension determines the type
    #[arg(long = "input-type", value_name = "value")]
    pub input_type: Option<String>,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    pub files: Vec<PathBuf>,
}

#[derive(Args, Clone, Default)]
pub struct GroupsAddArgs {
    /// the file to add the group to
    #[arg(short = 'f', long = "file", value_name = "value")]
    pub file: Option<PathBuf>,
    /// the PGP fingerprints the new group should contain. Can be specified more than once
    #[arg(long = "pgp", value_name = "value")]
    pub pgp: Vec<String>,
    /// the KMS ARNs the new group should contain. Can be specified more than once
    #[arg(long = "kms", value_name = "value")]
    pub kms: Vec<String>,
    /// The AWS profile to use for requests to AWS
    #[arg(long = "aws-profile", value_name = "value")]
    pub aws_profile: Option<String>,
    /// the GCP KMS Resource ID the new group should contain. Can be specified more than once
    #[arg(long = "gcp-kms", value_name = "value")]
    pub gcp_kms: Vec<String>,
    /// accepted for compatibility with sops 3.12+, which also ignores it
    #[arg(long = "hckms", value_name = "value")]
    pub hckms: Vec<String>,
    /// the Azure Key Vault key URL the new group should contain. Can be specified more than once
    #[arg(long = "azure-kv", value_name = "value")]
    pub azure_kv: Vec<String>,
    /// the full vault path to the key used to encrypt/decrypt (e.g. 'https://vault.example.org:8200/v1/transit/keys/dev'). Can be specified more than once
    #[arg(long = "hc-vault-transit", value_name = "value")]
    pub hc_vault_transit: Vec<String>,
    /// the age recipient the new group should contain. Can be specified more than once
    #[arg(long = "age", value_name = "value")]
    pub age: Vec<String>,
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// comma separated list of KMS encryption context key:value pairs
    #[arg(long = "encryption-context", value_name = "value")]
    pub encryption_context: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
}

#[derive(Args, Clone, Default)]
pub struct GroupsDeleteArgs {
    /// the file to delete the group from
    #[arg(short = 'f', long = "file", value_name = "value")]
    pub file: Option<PathBuf>,
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// the index of the group to delete (0-based)
    pub index: Option<String>,
}

#[derive(Subcommand)]
pub enum GroupsCommand {
    /// add a new group to a SOPS file
    Add(GroupsAddArgs),
    /// delete a key group from a SOPS file
    Delete(GroupsDeleteArgs),
}

#[derive(Args, Clone, Default)]
pub struct FilestatusArgs {
    /// currently ini, json, yaml, dotenv and binary are supported. If not set, the file's extension determines the type
    #[arg(long = "input-type", value_name = "value")]
    pub input_type: Option<String>,
    pub file: Option<PathBuf>,
}

#[derive(Args, Clone, Default)]
pub struct ExecCommonArgs {
    /// background the process and don't wait for it to complete (DEPRECATED)
    #[arg(long = "background")]
    pub background: bool,
    /// the user to run the command as
    #[arg(long = "user", value_name = "value")]
    pub user: Option<String>,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// [file to decrypt] [command to run]
    pub positionals: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct ExecEnvArgs {
    /// insert only the decrypted values into the environment without forwarding existing environment variables
    #[arg(long = "pristine")]
    pub pristine: bool,
    /// run command in the current process instead of in a child process
    #[arg(long = "same-process")]
    pub same_process: bool,
    #[command(flatten)]
    pub common: ExecCommonArgs,
}

#[derive(Args, Clone, Default)]
pub struct ExecFileArgs {
    /// use a regular file instead of a fifo to temporarily hold the decrypted contents
    #[arg(long = "no-fifo")]
    pub no_fifo: bool,
    #[command(flatten)]
    pub types: TypeArgs,
    /// filename for the temporarily file (default: tmp-file)
    #[arg(long = "filename", value_name = "value")]
    pub filename: Option<String>,
    #[command(flatten)]
    pub common: ExecCommonArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Each subcommand's arguments are built only when it runs (clap's
/// `defer`): building all of them took a quarter of a megabyte of heap and
/// about 60 page faults at every start.
#[derive(Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// generate a new data encryption key and reencrypt all values with the new key
    Rotate(RotateArgs),
    /// update the keys of SOPS files using the config file
    Updatekeys(UpdateKeysArgs),
    /// modify the groups on a SOPS file
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// check the status of the file, returning encryption status
    Filestatus(FilestatusArgs),
    /// execute a command with decrypted values inserted into the environment
    #[command(name = "exec-env")]
    ExecEnv(ExecEnvArgs),
    /// execute a command with the decrypted contents as a temporary file
    #[command(name = "exec-file")]
    ExecFile(ExecFileArgs),
    /// generate shell completion scripts
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// edit an encrypted file, or create a new one
    Edit(EditArgs),
    /// set a specific key or branch in the input document. value must be a JSON encoded string, for example '"somevalue"' or '{"key": "value"}'
    Set(SetArgs),
    /// unset a specific key or branch in the input document.
    Unset(UnsetArgs),
    /// encrypt a file, and output the results to stdout. If no filename is provided, stdin will be used.
    Encrypt(EncryptArgs),
    /// decrypt a file, and output the results to stdout. If no filename is provided, stdin will be used.
    Decrypt(DecryptArgs),
}

/// Global flags of sops' legacy mode (`sops -e file`, `sops -d file`).
/// Subcommands do not see them, except `--config` (spec §11.1).
#[derive(Args, Clone, Default)]
pub struct LegacyArgs {
    /// decrypt a file and output the result to stdout
    #[arg(short = 'd', long = "decrypt")]
    pub decrypt: bool,
    /// encrypt a file and output the result to stdout
    #[arg(short = 'e', long = "encrypt")]
    pub encrypt: bool,
    /// do not check whether the current version is latest during --version
    #[arg(long = "disable-version-check", env = "SOPS_DISABLE_VERSION_CHECK", value_parser = clap::builder::FalseyValueParser::new(), num_args = 0, default_missing_value = "true")]
    pub disable_version_check: bool,
    /// accepted for compatibility; rsops never checks for updates over the network
    #[arg(long = "check-for-updates")]
    pub check_for_updates: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// write output back to the same file instead of stdout
    #[arg(short = 'i', long = "in-place")]
    pub in_place: bool,
    /// extract a specific key or branch from the input document. Decrypt mode only. Example: --extract '["somekey"][0]'
    #[arg(long = "extract", value_name = "value")]
    pub extract: Option<String>,
    #[command(flatten)]
    pub types: TypeArgs,
    /// display master encryption keys in the file during editing
    #[arg(short = 's', long = "show-master-keys")]
    pub show_master_keys: bool,
    /// ignore Message Authentication Code during decryption
    #[arg(long = "ignore-mac")]
    pub ignore_mac: bool,
    /// compute MAC only over values which end up encrypted
    #[arg(long = "mac-only-encrypted")]
    pub mac_only_encrypted: bool,
    #[command(flatten)]
    pub selectors: SelectorArgs,
    /// set the unencrypted comment suffix. When specified, only keys that have comment matching the regex will be left unencrypted.
    #[arg(long = "unencrypted-comment-regex", value_name = "value")]
    pub unencrypted_comment_regex: Option<String>,
    /// set the encrypted comment suffix. When specified, only keys that have comment matching the regex will be encrypted.
    #[arg(long = "encrypted-comment-regex", value_name = "value")]
    pub encrypted_comment_regex: Option<String>,
    /// path to sops' config file. If set, the config file is not searched for.
    #[arg(long = "config", env = "SOPS_CONFIG", value_name = "value", global = true)]
    pub config: Option<PathBuf>,
    /// comma separated list of KMS encryption context key:value pairs
    #[arg(long = "encryption-context", value_name = "value")]
    pub encryption_context: Option<String>,
    /// the number of master keys required to retrieve the data key with shamir
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "value", default_value_t = 0)]
    pub shamir_threshold: usize,
    /// the number of spaces to indent YAML or JSON encoded file
    #[arg(long = "indent", value_name = "value", allow_negative_numbers = true)]
    pub indent: Option<i64>,
    /// Enable verbose logging output
    #[arg(long = "verbose")]
    pub verbose: bool,
    /// Save the output after encryption or decryption to the file specified
    #[arg(long = "output", value_name = "value")]
    pub output: Option<PathBuf>,
    /// generate a new data encryption key and reencrypt all values with the new key
    #[arg(short = 'r', long = "rotate")]
    pub rotate: bool,
    #[command(flatten)]
    pub rotate_keys: RotateKeyArgs,
    /// set a specific key or branch in the input document. value must be a json encoded string. eg. --set '["somekey"][0] {"somevalue":true}'
    #[arg(long = "set", value_name = "value")]
    pub set: Option<String>,
    /// Use this filename instead of the provided argument for loading configuration, and for determining input type and output type
    #[arg(long = "filename-override", value_name = "value")]
    pub filename_override: Option<String>,
    /// comma separated list of decryption key types
    #[arg(long = "decryption-order", env = "SOPS_DECRYPTION_ORDER", value_name = "value")]
    pub decryption_order: Option<String>,
    #[command(flatten)]
    pub keyservice: KeyServiceArgs,
    /// print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}
