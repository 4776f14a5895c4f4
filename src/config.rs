//! `.sops.yaml`: discovery and creation rules (spec §10).
//!
//! The file is parsed by the YAML store into a tree; this module turns the
//! tree into rules. It does no I/O besides reading the config file.

use crate::metadata::{KeyGroup, MasterKey};
use crate::policy::SelectorSpec;
use crate::stores::yaml::YamlStore;
use crate::stores::Store;
use crate::tree::{Branch, Value};
use regex::Regex;
use std::fmt;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE_NAME: &str = ".sops.yaml";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(message: impl Into<String>) -> ConfigError {
    ConfigError {
        message: message.into(),
    }
}

/// Per-format output settings from `stores:`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoresConfig {
    pub yaml_indent: Option<i64>,
    pub json_indent: Option<i64>,
    pub json_binary_indent: Option<i64>,
}

/// One creation rule, with its keys already built (without `enc`).
#[derive(Debug, Clone)]
pub struct CreationRule {
    pub path_regex: Option<Regex>,
    pub key_groups: Vec<KeyGroup>,
    /// Whether the groups came from `key_groups:` (KMS context then comes
    /// only from the group objects).
    pub explicit_groups: bool,
    pub shamir_threshold: usize,
    pub selectors: SelectorSpec,
    pub mac_only_encrypted: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// `None` when the file has no `creation_rules` key at all.
    pub creation_rules: Option<Vec<CreationRule>>,
    pub stores: StoresConfig,
}

/// Search the working directory and its parents for `.sops.yaml` (§10.1).
/// Returns the path found, and warnings for `.sops.yml` files passed on the way.
pub fn find_config(cwd: &Path) -> (Option<PathBuf>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut dir = Some(cwd);
    let mut depth = 0;
    while let Some(d) = dir {
        let candidate = d.join(CONFIG_FILE_NAME);
        if candidate.is_file() {
            return (Some(candidate), warnings);
        }
        let yml = d.join(".sops.yml");
        if yml.is_file() {
            warnings.push(format!(
                "ignoring \"{}\" when searching for config file; the config file must be called \".sops.yaml\". \
                 This behavior will change in a future version of SOPS",
                yml.display()
            ));
        }
        depth += 1;
        if depth >= 100 {
            break;
        }
        dir = d.parent();
    }
    (None, warnings)
}

fn str_or_list(v: Option<&Value>, field: &str) -> Result<Vec<String>, ConfigError> {
    let items: Vec<String> = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Str(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::List(l)) => l
            .iter()
            .filter(|x| !matches!(x, Value::Comment(_)))
            .map(|x| match x {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(err(format!(
                    "invalid value for '{field}': expected a string or a list of strings"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(err(format!(
                "invalid value for '{field}': expected a string or a list of strings"
            )))
        }
    };
    Ok(items
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn opt_str(b: &Branch, field: &str) -> Result<String, ConfigError> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        Some(Value::Bool(v)) => Ok(v.to_string()),
        Some(_) => Err(err(format!("invalid value for '{field}': expected a string"))),
    }
}

fn opt_int(b: &Branch, field: &str) -> Result<Option<i64>, ConfigError> {
    match b.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(i)) => Ok(Some(*i)),
        Some(_) => Err(err(format!("invalid value for '{field}': expected an integer"))),
    }
}

fn map_of<'a>(v: Option<&'a Value>, field: &str) -> Result<Option<&'a Branch>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Map(b)) => Ok(Some(b)),
        Some(_) => Err(err(format!("invalid value for '{field}': expected a mapping"))),
    }
}

fn list_of<'a>(v: Option<&'a Value>, field: &str) -> Result<Vec<&'a Value>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(l)) => Ok(l.iter().filter(|x| !matches!(x, Value::Comment(_))).collect()),
        Some(_) => Err(err(format!("invalid value for '{field}': expected a list"))),
    }
}

/// Key constructors shared by the CLI flags and the config.
pub mod keyspec {
    use super::*;

    pub fn age(recipient: &str) -> MasterKey {
        MasterKey::Age {
            recipient: recipient.trim().to_string(),
            enc: String::new(),
        }
    }

    pub fn pgp(fp: &str) -> MasterKey {
        MasterKey::Pgp {
            fp: fp.chars().filter(|c| *c != ' ').collect(),
            created_at: String::new(),
            enc: String::new(),
        }
    }

    /// `arn[+role_arn]`, with an optional encryption context and profile.
    pub fn kms(spec: &str, context: &[(String, String)], aws_profile: &str) -> MasterKey {
        let spec: String = spec.chars().filter(|c| *c != ' ').collect();
        let (arn, role) = match spec.find("+arn:") {
            Some(i) => (spec[..i].to_string(), spec[i + 1..].to_string()),
            None => (spec, String::new()),
        };
        MasterKey::Kms {
            arn,
            role,
            context: context.to_vec(),
            created_at: String::new(),
            enc: String::new(),
            aws_profile: aws_profile.to_string(),
        }
    }

    pub fn gcp_kms(resource_id: &str) -> MasterKey {
        MasterKey::GcpKms {
            resource_id: resource_id.chars().filter(|c| *c != ' ').collect(),
            created_at: String::new(),
            enc: String::new(),
        }
    }

    pub fn hckms(key_id: &str) -> MasterKey {
        MasterKey::Hckms {
            key_id: key_id.trim().to_string(),
            created_at: String::new(),
            enc: String::new(),
        }
    }

    pub fn azure_kv(url: &str) -> Result<MasterKey, String> {
        let re = Regex::new(r"^(https://[^/]+)/keys/([^/]+)(/[^/]*)?$").expect("static regex");
        let url = url.trim();
        let c = re
            .captures(url)
            .ok_or_else(|| format!("could not parse {url:?} as an Azure Key Vault key URL"))?;
        Ok(MasterKey::AzureKv {
            vault_url: c[1].to_string(),
            name: c[2].to_string(),
            version: c
                .get(3)
                .map(|m| m.as_str().trim_start_matches('/').to_string())
                .unwrap_or_default(),
            created_at: String::new(),
            enc: String::new(),
        })
    }

    pub fn hc_vault(uri: &str) -> Result<MasterKey, String> {
        let uri = uri.trim();
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| format!("Vault URI {uri:?} has no scheme (http:// or https://)"))?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let re = Regex::new(r"^v\d+/(.+)/keys/([^/]+)$").expect("static regex");
        if !path.starts_with('v') && path.contains("/v1/") {
            return Err(format!("Vault URI {uri:?}: prefixed URL is not supported"));
        }
        let c = re
            .captures(path)
            .ok_or_else(|| format!("Vault URI {uri:?} does not match <address>/v1/<engine path>/keys/<key name>"))?;
        Ok(MasterKey::HcVault {
            vault_address: format!("{scheme}://{host}"),
            engine_path: c[1].to_string(),
            key_name: c[2].to_string(),
            created_at: String::new(),
            enc: String::new(),
        })
    }
}

fn push_unique(group: &mut KeyGroup, key: MasterKey) {
    if !group
        .iter()
        .any(|k| k.type_id() == key.type_id() && k.identity() == key.identity())
    {
        group.push(key);
    }
}

fn kms_context(b: &Branch) -> Result<Vec<(String, String)>, ConfigError> {
    Ok(match map_of(b.get("context"), "context")? {
        None => Vec::new(),
        Some(m) => {
            m.0.iter()
                .filter_map(|i| Some((i.key.as_str()?.to_string(), scalar(&i.value))))
                .collect()
        }
    })
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => crate::gofmt::format_float_f(*f),
        _ => String::new(),
    }
}

fn parse_group(b: &Branch, group: &mut KeyGroup) -> Result<(), ConfigError> {
    for m in list_of(b.get("merge"), "merge")? {
        let Value::Map(mb) = m else {
            return Err(err("invalid value for 'merge': expected a list of key groups"));
        };
        parse_group(mb, group)?;
    }
    for r in str_or_list(b.get("age"), "age")? {
        push_unique(group, keyspec::age(&r));
    }
    for fp in str_or_list(b.get("pgp"), "pgp")? {
        push_unique(group, keyspec::pgp(&fp));
    }
    for k in list_of(b.get("kms"), "kms")? {
        let Value::Map(kb) = k else {
            return Err(err(
                "invalid value for 'kms' in a key group: expected a list of {arn, role, context}",
            ));
        };
        let mut spec = opt_str(kb, "arn")?;
        let role = opt_str(kb, "role")?;
        if !role.is_empty() {
            spec = format!("{spec}+{role}");
        }
        push_unique(
            group,
            keyspec::kms(&spec, &kms_context(kb)?, &opt_str(kb, "aws_profile")?),
        );
    }
    for k in list_of(b.get("gcp_kms"), "gcp_kms")? {
        let Value::Map(kb) = k else {
            return Err(err(
                "invalid value for 'gcp_kms' in a key group: expected a list of {resource_id}",
            ));
        };
        push_unique(group, keyspec::gcp_kms(&opt_str(kb, "resource_id")?));
    }
    for k in list_of(b.get("hckms"), "hckms")? {
        let Value::Map(kb) = k else {
            return Err(err(
                "invalid value for 'hckms' in a key group: expected a list of {key_id}",
            ));
        };
        push_unique(group, keyspec::hckms(&opt_str(kb, "key_id")?));
    }
    for k in list_of(b.get("azure_keyvault"), "azure_keyvault")? {
        let Value::Map(kb) = k else {
            return Err(err(
                "invalid value for 'azure_keyvault': expected a list of {vaultUrl, key, version}",
            ));
        };
        push_unique(
            group,
            MasterKey::AzureKv {
                vault_url: opt_str(kb, "vaultUrl")?,
                name: opt_str(kb, "key")?,
                version: opt_str(kb, "version")?,
                created_at: String::new(),
                enc: String::new(),
            },
        );
    }
    for uri in str_or_list(b.get("hc_vault"), "hc_vault")? {
        push_unique(group, keyspec::hc_vault(&uri).map_err(err)?);
    }
    Ok(())
}

fn parse_rule(b: &Branch) -> Result<CreationRule, ConfigError> {
    let path_regex = match opt_str(b, "path_regex")? {
        s if s.is_empty() => None,
        s => Some(Regex::new(&s).map_err(|e| err(format!("can not compile regexp: {}", first_line(&e.to_string()))))?),
    };
    let selectors = SelectorSpec {
        unencrypted_suffix: opt_str(b, "unencrypted_suffix")?,
        encrypted_suffix: opt_str(b, "encrypted_suffix")?,
        unencrypted_regex: opt_str(b, "unencrypted_regex")?,
        encrypted_regex: opt_str(b, "encrypted_regex")?,
        unencrypted_comment_regex: opt_str(b, "unencrypted_comment_regex")?,
        encrypted_comment_regex: opt_str(b, "encrypted_comment_regex")?,
    };
    if selectors.count_set() > 1 {
        return Err(err(crate::policy::PolicyError::MoreThanOne.to_string()));
    }
    let group_values = list_of(b.get("key_groups"), "key_groups")?;
    let mut key_groups = Vec::new();
    let explicit_groups = !group_values.is_empty();
    if explicit_groups {
        for g in group_values {
            let Value::Map(gb) = g else {
                return Err(err("invalid value for 'key_groups': expected a list of mappings"));
            };
            let mut group = Vec::new();
            parse_group(gb, &mut group)?;
            key_groups.push(group);
        }
    } else {
        let mut group = Vec::new();
        for r in str_or_list(b.get("age"), "age")? {
            push_unique(&mut group, keyspec::age(&r));
        }
        for fp in str_or_list(b.get("pgp"), "pgp")? {
            push_unique(&mut group, keyspec::pgp(&fp));
        }
        let profile = opt_str(b, "aws_profile")?;
        for arn in str_or_list(b.get("kms"), "kms")? {
            push_unique(&mut group, keyspec::kms(&arn, &[], &profile));
        }
        for id in str_or_list(b.get("gcp_kms"), "gcp_kms")? {
            push_unique(&mut group, keyspec::gcp_kms(&id));
        }
        for id in str_or_list(b.get("hckms"), "hckms")? {
            push_unique(&mut group, keyspec::hckms(&id));
        }
        for url in str_or_list(b.get("azure_keyvault"), "azure_keyvault")? {
            push_unique(&mut group, keyspec::azure_kv(&url).map_err(err)?);
        }
        for uri in str_or_list(b.get("hc_vault_transit_uri"), "hc_vault_transit_uri")? {
            push_unique(&mut group, keyspec::hc_vault(&uri).map_err(err)?);
        }
        if !group.is_empty() {
            key_groups.push(group);
        }
    }
    let shamir_threshold = match opt_int(b, "shamir_threshold")? {
        Some(t) if t < 0 => return Err(err("invalid value for 'shamir_threshold': must not be negative")),
        Some(t) => t as usize,
        None => 0,
    };
    let mac_only_encrypted = match b.get("mac_only_encrypted") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(v)) => *v,
        Some(_) => return Err(err("invalid value for 'mac_only_encrypted': expected a boolean")),
    };
    Ok(CreationRule {
        path_regex,
        key_groups,
        explicit_groups,
        shamir_threshold,
        selectors,
        mac_only_encrypted,
    })
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

impl Config {
    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes =
            std::fs::read(path).map_err(|e| err(format!("could not read config file {}: {e}", path.display())))?;
        Config::parse(&bytes, path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<Config, ConfigError> {
        let unmarshal = |m: String| err(format!("Could not unmarshal config file {}: {m}", path.display()));
        let docs = YamlStore::default().load(bytes).map_err(|e| unmarshal(e.message))?;
        let empty = Branch::new();
        let root = docs.first().unwrap_or(&empty);
        let creation_rules = match root.get("creation_rules") {
            None | Some(Value::Null) => None,
            Some(Value::List(rules)) => Some(
                rules
                    .iter()
                    .filter(|r| !matches!(r, Value::Comment(_)))
                    .enumerate()
                    .map(|(i, r)| match r {
                        Value::Map(b) => parse_rule(b).map_err(|e| unmarshal(format!("creation rule {}: {e}", i + 1))),
                        _ => Err(unmarshal(format!("creation rule {} is not a mapping", i + 1))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(unmarshal("'creation_rules' must be a list".into())),
        };
        let mut stores = StoresConfig::default();
        if let Some(s) = map_of(root.get("stores"), "stores").map_err(|e| unmarshal(e.message))? {
            let indent = |name: &str| -> Result<Option<i64>, ConfigError> {
                match map_of(s.get(name), name)? {
                    Some(b) => opt_int(b, "indent"),
                    None => Ok(None),
                }
            };
            stores.yaml_indent = indent("yaml").map_err(|e| unmarshal(e.message))?;
            stores.json_indent = indent("json").map_err(|e| unmarshal(e.message))?;
            stores.json_binary_indent = indent("json_binary").map_err(|e| unmarshal(e.message))?;
        }
        Ok(Config {
            path: path.to_path_buf(),
            creation_rules,
            stores,
        })
    }

    /// The first rule matching `file` (§10.3). `Ok(None)` when the config has
    /// no `creation_rules` at all; an error when it has rules but none match.
    pub fn rule_for(&self, file: &Path, cwd: &Path) -> Result<Option<&CreationRule>, ConfigError> {
        let Some(rules) = &self.creation_rules else {
            return Ok(None);
        };
        let abs = if file.is_absolute() {
            file.to_path_buf()
        } else {
            cwd.join(file)
        };
        let abs = abs.to_string_lossy().into_owned();
        let config_dir = self
            .path
            .parent()
            .map(|d| if d.is_absolute() { d.to_path_buf() } else { cwd.join(d) });
        let mut target = abs.as_str();
        if let Some(dir) = &config_dir {
            let prefix = format!("{}/", dir.to_string_lossy().trim_end_matches('/'));
            if let Some(rest) = target.strip_prefix(prefix.as_str()) {
                target = rest;
            }
        }
        rules
            .iter()
            .find(|r| r.path_regex.as_ref().is_none_or(|re| re.is_match(target)))
            .map(Some)
            .ok_or_else(|| err("error loading config: no matching creation rules found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "age1fw787p9n9yytt2mt2vkdxkl4flu6zwqsve4wy4kkakxdxmfvne8qay73zy";

    #[test]
    fn rules_match_relative_to_the_config_dir() {
        let yaml = format!(
            "creation_rules:\n  - path_regex: ^sub/.*\\.yaml$\n    age: {R1}\n    encrypted_regex: ^pass\n  - age: {R1},{R1}\n"
        );
        let c = Config::parse(yaml.as_bytes(), Path::new("/work/proj/.sops.yaml")).unwrap();
        let r = c
            .rule_for(Path::new("x.yaml"), Path::new("/work/proj/sub"))
            .unwrap()
            .unwrap();
        assert_eq!(r.selectors.encrypted_regex, "^pass");
        let r = c
            .rule_for(Path::new("/elsewhere/sub/x.yaml"), Path::new("/"))
            .unwrap()
            .unwrap();
        assert!(r.selectors.encrypted_regex.is_empty());
        assert_eq!(r.key_groups[0].len(), 1, "duplicates are removed");
    }

    #[test]
    fn no_match_is_an_error_but_no_rules_is_not() {
        let c = Config::parse(b"creation_rules: []\n", Path::new("/p/.sops.yaml")).unwrap();
        assert!(c.rule_for(Path::new("a.yaml"), Path::new("/p")).is_err());
        let c = Config::parse(b"stores:\n  yaml:\n    indent: 2\n", Path::new("/p/.sops.yaml")).unwrap();
        assert!(c.rule_for(Path::new("a.yaml"), Path::new("/p")).unwrap().is_none());
        assert_eq!(c.stores.yaml_indent, Some(2));
    }

    #[test]
    fn key_groups_and_vault_uris() {
        let yaml = format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{R1}]\n        hc_vault: [http://127.0.0.1:8200/v1/a/b/keys/k]\n      - kms:\n          - arn: arn:aws:kms:us-east-1:1:key/x\n            context: {{Env: prod}}\n"
        );
        let c = Config::parse(yaml.as_bytes(), Path::new("/p/.sops.yaml")).unwrap();
        let r = &c.creation_rules.as_ref().unwrap()[0];
        assert_eq!(r.shamir_threshold, 2);
        assert_eq!(r.key_groups.len(), 2);
        assert_eq!(r.key_groups[0][1].identity(), "http://127.0.0.1:8200/v1/a/b/keys/k");
        assert_eq!(r.key_groups[1][0].identity(), "arn:aws:kms:us-east-1:1:key/x|Env:prod");
    }

    #[test]
    fn bad_regex_and_two_selectors_are_errors() {
        assert!(Config::parse(b"creation_rules:\n  - path_regex: '('\n", Path::new("/p/.sops.yaml")).is_err());
        let two = b"creation_rules:\n  - encrypted_regex: a\n    unencrypted_suffix: b\n";
        assert!(Config::parse(two, Path::new("/p/.sops.yaml")).is_err());
    }
}
