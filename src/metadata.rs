//! The `sops` metadata block: its domain model and its wire form (spec §7).
//!
//! Reading accepts every order and shape sops 3.x writes (struct order,
//! sorted order, absent / null / empty lists, weakly typed scalars);
//! writing produces what sops 3.11 writes.

use crate::policy::SelectorSpec;
use crate::timefmt::Timestamp;
use crate::tree::{Branch, Item, Key, Value};
use std::fmt;

/// The sops version whose file format rsops writes.
pub const EMULATED_SOPS_VERSION: &str = "3.11.0";

/// One master key entry: the recipient identity plus the wrapped data key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MasterKey {
    Age {
        recipient: String,
        enc: String,
    },
    Pgp {
        fp: String,
        created_at: String,
        enc: String,
    },
    Kms {
        arn: String,
        role: String,
        /// Sorted by key on output, as Go prints maps.
        context: Vec<(String, String)>,
        created_at: String,
        enc: String,
        aws_profile: String,
    },
    GcpKms {
        resource_id: String,
        created_at: String,
        enc: String,
    },
    Hckms {
        key_id: String,
        created_at: String,
        enc: String,
    },
    AzureKv {
        vault_url: String,
        name: String,
        version: String,
        created_at: String,
        enc: String,
    },
    HcVault {
        vault_address: String,
        engine_path: String,
        key_name: String,
        created_at: String,
        enc: String,
    },
}

impl MasterKey {
    /// The type identifier used by `--decryption-order` and messages.
    pub fn type_id(&self) -> &'static str {
        match self {
            MasterKey::Age { .. } => "age",
            MasterKey::Pgp { .. } => "pgp",
            MasterKey::Kms { .. } => "kms",
            MasterKey::GcpKms { .. } => "gcp_kms",
            MasterKey::Hckms { .. } => "hckms",
            MasterKey::AzureKv { .. } => "azure_kv",
            MasterKey::HcVault { .. } => "hc_vault",
        }
    }

    /// The identity string sops prints and compares (`ToString`, §9.3, §11.10).
    pub fn identity(&self) -> String {
        match self {
            MasterKey::Age { recipient, .. } => recipient.clone(),
            MasterKey::Pgp { fp, .. } => fp.clone(),
            MasterKey::Kms {
                arn,
                role,
                context,
                aws_profile,
                ..
            } => {
                let mut s = arn.clone();
                if !role.is_empty() {
                    s.push('+');
                    s.push_str(role);
                }
                if !context.is_empty() {
                    let mut ctx = context.clone();
                    ctx.sort();
                    let pairs: Vec<String> = ctx.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    s.push('|');
                    s.push_str(&pairs.join(","));
                }
                if !aws_profile.is_empty() {
                    s.push('|');
                    s.push_str(aws_profile);
                }
                s
            }
            MasterKey::GcpKms { resource_id, .. } => resource_id.clone(),
            MasterKey::Hckms { key_id, .. } => key_id.clone(),
            MasterKey::AzureKv {
                vault_url,
                name,
                version,
                ..
            } => format!("{vault_url}/keys/{name}/{version}"),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                ..
            } => format!("{vault_address}/v1/{engine_path}/keys/{key_name}"),
        }
    }

    pub fn enc(&self) -> &str {
        match self {
            MasterKey::Age { enc, .. }
            | MasterKey::Pgp { enc, .. }
            | MasterKey::Kms { enc, .. }
            | MasterKey::GcpKms { enc, .. }
            | MasterKey::Hckms { enc, .. }
            | MasterKey::AzureKv { enc, .. }
            | MasterKey::HcVault { enc, .. } => enc,
        }
    }

    pub fn set_enc(&mut self, value: String) {
        match self {
            MasterKey::Age { enc, .. }
            | MasterKey::Pgp { enc, .. }
            | MasterKey::Kms { enc, .. }
            | MasterKey::GcpKms { enc, .. }
            | MasterKey::Hckms { enc, .. }
            | MasterKey::AzureKv { enc, .. }
            | MasterKey::HcVault { enc, .. } => *enc = value,
        }
    }

    pub fn set_created_at(&mut self, value: String) {
        match self {
            MasterKey::Age { .. } => {}
            MasterKey::Pgp { created_at, .. }
            | MasterKey::Kms { created_at, .. }
            | MasterKey::GcpKms { created_at, .. }
            | MasterKey::Hckms { created_at, .. }
            | MasterKey::AzureKv { created_at, .. }
            | MasterKey::HcVault { created_at, .. } => *created_at = value,
        }
    }
}

pub type KeyGroup = Vec<MasterKey>;

/// The metadata of an encrypted file.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Metadata {
    pub key_groups: Vec<KeyGroup>,
    pub shamir_threshold: usize,
    /// RFC 3339 text as stored; the MAC's AAD is derived from it (§5.4).
    pub last_modified: String,
    /// The encrypted MAC (`ENC[...]`), or empty.
    pub mac: String,
    pub selectors: SelectorSpec,
    pub mac_only_encrypted: bool,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    NotFound,
    NotAMap,
    Invalid(String),
    NoKeys,
    VersionEmpty,
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NotFound => f.write_str("sops metadata not found"),
            MetadataError::NotAMap => f.write_str("Error unmarshalling metadata: the sops entry is not a mapping"),
            MetadataError::Invalid(m) => write!(f, "Error unmarshalling metadata: {m}"),
            MetadataError::NoKeys => f.write_str("No keys found in file"),
            MetadataError::VersionEmpty => f.write_str("Version string empty"),
        }
    }
}

impl std::error::Error for MetadataError {}

/// How an empty key list inside `key_groups` is written: go-yaml prints a nil
/// slice as `[]`, encoding/json as `null`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NilList {
    EmptyList,
    Null,
}

fn scalar_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) | Value::Time(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::gofmt::format_float_f(*f),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => return None,
    })
}

fn field_str(b: &Branch, key: &str) -> Result<String, MetadataError> {
    match b.get(key) {
        None => Ok(String::new()),
        Some(v) => scalar_text(v).ok_or_else(|| MetadataError::Invalid(format!("field '{key}' is not a scalar"))),
    }
}

fn entries<'a>(b: &'a Branch, key: &str) -> Result<Vec<&'a Branch>, MetadataError> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::List(l)) => l
            .iter()
            .filter(|v| !matches!(v, Value::Comment(_)))
            .map(|v| match v {
                Value::Map(m) => Ok(m),
                _ => Err(MetadataError::Invalid(format!("an entry of '{key}' is not a mapping"))),
            })
            .collect(),
        Some(_) => Err(MetadataError::Invalid(format!("field '{key}' is not a list"))),
    }
}

fn created_at(b: &Branch, what: &str) -> Result<String, MetadataError> {
    let text = field_str(b, "created_at")?;
    let ts = Timestamp::parse_rfc3339(&text)
        .ok_or_else(|| MetadataError::Invalid(format!("could not parse created_at time {text:?} of a {what} key")))?;
    Ok(ts.to_utc().format_rfc3339())
}

/// Read the keys of one group (or of the flat top level), in sops' load order:
/// kms, gcp_kms, hckms, azure_kv, hc_vault, pgp, age (§9.9).
fn read_group(b: &Branch) -> Result<KeyGroup, MetadataError> {
    let mut g = Vec::new();
    for e in entries(b, "kms")? {
        let context = match e.get("context") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Map(m)) => {
                m.0.iter()
                    .filter_map(|i| Some((i.key.as_str()?.to_string(), scalar_text(&i.value).unwrap_or_default())))
                    .collect()
            }
            Some(_) => return Err(MetadataError::Invalid("kms context is not a mapping".into())),
        };
        g.push(MasterKey::Kms {
            arn: field_str(e, "arn")?,
            role: field_str(e, "role")?,
            context,
            created_at: created_at(e, "kms")?,
            enc: field_str(e, "enc")?,
            aws_profile: field_str(e, "aws_profile")?,
        });
    }
    for e in entries(b, "gcp_kms")? {
        g.push(MasterKey::GcpKms {
            resource_id: field_str(e, "resource_id")?,
            created_at: created_at(e, "gcp_kms")?,
            enc: field_str(e, "enc")?,
        });
    }
    for e in entries(b, "hckms")? {
        g.push(MasterKey::Hckms {
            key_id: field_str(e, "key_id")?,
            created_at: created_at(e, "hckms")?,
            enc: field_str(e, "enc")?,
        });
    }
    for e in entries(b, "azure_kv")? {
        g.push(MasterKey::AzureKv {
            vault_url: field_str(e, "vault_url")?,
            name: field_str(e, "name")?,
            version: field_str(e, "version")?,
            created_at: created_at(e, "azure_kv")?,
            enc: field_str(e, "enc")?,
        });
    }
    for e in entries(b, "hc_vault")? {
        g.push(MasterKey::HcVault {
            vault_address: field_str(e, "vault_address")?,
            engine_path: field_str(e, "engine_path")?,
            key_name: field_str(e, "key_name")?,
            created_at: created_at(e, "hc_vault")?,
            enc: field_str(e, "enc")?,
        });
    }
    for e in entries(b, "pgp")? {
        g.push(MasterKey::Pgp {
            fp: field_str(e, "fp")?,
            created_at: created_at(e, "pgp")?,
            enc: field_str(e, "enc")?,
        });
    }
    for e in entries(b, "age")? {
        g.push(MasterKey::Age {
            recipient: field_str(e, "recipient")?,
            enc: field_str(e, "enc")?,
        });
    }
    Ok(g)
}

fn weak_bool(v: Option<&Value>) -> Result<bool, MetadataError> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Str(s)) => crate::cipher::parse_go_bool(s)
            .ok_or_else(|| MetadataError::Invalid("mac_only_encrypted is not a boolean".into())),
        Some(_) => Err(MetadataError::Invalid("mac_only_encrypted is not a boolean".into())),
    }
}

fn weak_uint(v: Option<&Value>, what: &str) -> Result<usize, MetadataError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Int(i)) if *i >= 0 => Ok(*i as usize),
        Some(Value::Float(f)) if *f >= 0.0 && f.fract() == 0.0 && *f < 1e9 => Ok(*f as usize),
        Some(Value::Str(s)) => s
            .trim()
            .parse()
            .map_err(|_| MetadataError::Invalid(format!("{what} is not a number"))),
        Some(_) => Err(MetadataError::Invalid(format!("{what} is not a number"))),
    }
}

impl Metadata {
    /// Read the metadata from the value of the `sops` key, validating it
    /// as sops does on load (§7.7).
    pub fn from_value(value: &Value) -> Result<Metadata, MetadataError> {
        let Value::Map(b) = value else {
            return Err(MetadataError::NotAMap);
        };
        let last_modified = field_str(b, "lastmodified")?;
        if Timestamp::parse_rfc3339(&last_modified).is_none() {
            return Err(MetadataError::Invalid(format!(
                "parsing time {last_modified:?} as \"2006-01-02T15:04:05Z07:00\": not an RFC 3339 time"
            )));
        }
        let flat = read_group(b)?;
        let key_groups = if !flat.is_empty() {
            vec![flat]
        } else {
            let groups: Vec<KeyGroup> = entries(b, "key_groups")?
                .into_iter()
                .map(read_group)
                .collect::<Result<_, _>>()?;
            if groups.is_empty() {
                return Err(MetadataError::NoKeys);
            }
            groups
        };
        let selectors = SelectorSpec {
            unencrypted_suffix: field_str(b, "unencrypted_suffix")?,
            encrypted_suffix: field_str(b, "encrypted_suffix")?,
            unencrypted_regex: field_str(b, "unencrypted_regex")?,
            encrypted_regex: field_str(b, "encrypted_regex")?,
            unencrypted_comment_regex: field_str(b, "unencrypted_comment_regex")?,
            encrypted_comment_regex: field_str(b, "encrypted_comment_regex")?,
        };
        if selectors.count_set() > 1 {
            return Err(MetadataError::Invalid(
                crate::policy::PolicyError::MoreThanOne.to_string(),
            ));
        }
        let version = field_str(b, "version")?;
        if version.is_empty() {
            return Err(MetadataError::VersionEmpty);
        }
        Ok(Metadata {
            key_groups,
            shamir_threshold: weak_uint(b.get("shamir_threshold"), "shamir_threshold")?,
            last_modified,
            mac: field_str(b, "mac")?,
            selectors,
            mac_only_encrypted: weak_bool(b.get("mac_only_encrypted"))?,
            version,
        })
    }

    /// The metadata as a tree value, in sops 3.11's struct order (§7.3).
    pub fn to_value(&self, nil_list: NilList) -> Value {
        let mut b = Branch::new();
        if self.shamir_threshold != 0 {
            b.push("shamir_threshold", Value::Int(self.shamir_threshold as i64));
        }
        if self.key_groups.len() > 1 {
            let groups = self
                .key_groups
                .iter()
                .map(|g| Value::Map(write_group(g, true, nil_list)))
                .collect();
            b.push("key_groups", Value::List(groups));
        } else if let Some(g) = self.key_groups.first() {
            b.0.extend(
                write_group(g, false, nil_list)
                    .0
                    .into_iter()
                    .filter(|i| i.key.as_str() != Some("pgp")),
            );
        }
        b.push("lastmodified", Value::Str(self.last_modified.clone()));
        b.push("mac", Value::Str(self.mac.clone()));
        if self.key_groups.len() == 1 {
            let pgp = write_group(&self.key_groups[0], false, nil_list);
            if let Some(v) = pgp.get("pgp") {
                b.push("pgp", v.clone());
            }
        }
        let sel = &self.selectors;
        for (name, v) in [
            ("unencrypted_suffix", &sel.unencrypted_suffix),
            ("encrypted_suffix", &sel.encrypted_suffix),
            ("unencrypted_regex", &sel.unencrypted_regex),
            ("encrypted_regex", &sel.encrypted_regex),
            ("unencrypted_comment_regex", &sel.unencrypted_comment_regex),
            ("encrypted_comment_regex", &sel.encrypted_comment_regex),
        ] {
            if !v.is_empty() {
                b.push(name, Value::Str(v.clone()));
            }
        }
        if self.mac_only_encrypted {
            b.push("mac_only_encrypted", Value::Bool(true));
        }
        b.push("version", Value::Str(self.version.clone()));
        Value::Map(b)
    }
}

/// One group's key lists in struct order: pgp, kms, gcp_kms, hckms, azure_kv,
/// hc_vault, age. Inside `key_groups`, `hc_vault` and `age` are always
/// written (sops' group struct lacks `omitempty` on them).
fn write_group(g: &KeyGroup, in_key_groups: bool, nil_list: NilList) -> Branch {
    let mut lists: [(&str, Vec<Value>); 7] = [
        ("pgp", vec![]),
        ("kms", vec![]),
        ("gcp_kms", vec![]),
        ("hckms", vec![]),
        ("azure_kv", vec![]),
        ("hc_vault", vec![]),
        ("age", vec![]),
    ];
    let s = |v: &str| Value::Str(v.to_string());
    for k in g {
        let (slot, entry) = match k {
            MasterKey::Pgp { fp, created_at, enc } => (
                0,
                vec![
                    Item::new("created_at", s(created_at)),
                    Item::new("enc", s(enc)),
                    Item::new("fp", s(fp)),
                ],
            ),
            MasterKey::Kms {
                arn,
                role,
                context,
                created_at,
                enc,
                aws_profile,
            } => {
                let mut e = vec![Item::new("arn", s(arn))];
                if !role.is_empty() {
                    e.push(Item::new("role", s(role)));
                }
                if !context.is_empty() {
                    let mut ctx = context.clone();
                    ctx.sort();
                    let m = Branch(ctx.into_iter().map(|(k, v)| Item::new(k, Value::Str(v))).collect());
                    e.push(Item::new("context", Value::Map(m)));
                }
                e.push(Item::new("created_at", s(created_at)));
                e.push(Item::new("enc", s(enc)));
                e.push(Item::new("aws_profile", s(aws_profile)));
                (1, e)
            }
            MasterKey::GcpKms {
                resource_id,
                created_at,
                enc,
            } => (
                2,
                vec![
                    Item::new("resource_id", s(resource_id)),
                    Item::new("created_at", s(created_at)),
                    Item::new("enc", s(enc)),
                ],
            ),
            MasterKey::Hckms {
                key_id,
                created_at,
                enc,
            } => (
                3,
                vec![
                    Item::new("key_id", s(key_id)),
                    Item::new("created_at", s(created_at)),
                    Item::new("enc", s(enc)),
                ],
            ),
            MasterKey::AzureKv {
                vault_url,
                name,
                version,
                created_at,
                enc,
            } => (
                4,
                vec![
                    Item::new("vault_url", s(vault_url)),
                    Item::new("name", s(name)),
                    Item::new("version", s(version)),
                    Item::new("created_at", s(created_at)),
                    Item::new("enc", s(enc)),
                ],
            ),
            MasterKey::HcVault {
                vault_address,
                engine_path,
                key_name,
                created_at,
                enc,
            } => (
                5,
                vec![
                    Item::new("vault_address", s(vault_address)),
                    Item::new("engine_path", s(engine_path)),
                    Item::new("key_name", s(key_name)),
                    Item::new("created_at", s(created_at)),
                    Item::new("enc", s(enc)),
                ],
            ),
            MasterKey::Age { recipient, enc } => {
                (6, vec![Item::new("recipient", s(recipient)), Item::new("enc", s(enc))])
            }
        };
        lists[slot].1.push(Value::Map(Branch(entry)));
    }
    let mut b = Branch::new();
    for (name, list) in lists {
        let always = in_key_groups && (name == "hc_vault" || name == "age");
        if !list.is_empty() {
            b.push(name, Value::List(list));
        } else if always {
            b.push(
                name,
                match nil_list {
                    NilList::EmptyList => Value::List(vec![]),
                    NilList::Null => Value::Null,
                },
            );
        }
    }
    b
}

/// Remove the `sops` key from a document, returning its value (§7.4).
pub fn take_sops_key(branch: &mut Branch) -> Option<Value> {
    let pos = branch
        .0
        .iter()
        .position(|i| matches!(&i.key, Key::Str(k) if k == "sops"))?;
    Some(branch.0.remove(pos).value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        Metadata {
            key_groups: vec![vec![
                MasterKey::Age {
                    recipient: "age1xyz".into(),
                    enc: "-----BEGIN AGE ENCRYPTED FILE-----\nabc\n-----END AGE ENCRYPTED FILE-----\n".into(),
                },
                MasterKey::Pgp {
                    fp: "ABCD".into(),
                    created_at: "2026-11-28T19:05:09Z".into(),
                    enc: "x".into(),
                },
            ]],
            shamir_threshold: 0,
            last_modified: "2026-11-28T19:05:09Z".into(),
            mac: "ENC[...]".into(),
            selectors: SelectorSpec {
                unencrypted_suffix: "_unencrypted".into(),
                ..Default::default()
            },
            mac_only_encrypted: false,
            version: EMULATED_SOPS_VERSION.into(),
        }
    }

    #[test]
    fn struct_order_puts_pgp_after_mac() {
        let Value::Map(b) = sample().to_value(NilList::EmptyList) else {
            panic!()
        };
        let keys: Vec<&str> = b.0.iter().filter_map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            ["age", "lastmodified", "mac", "pgp", "unencrypted_suffix", "version"]
        );
    }

    #[test]
    fn round_trip_keeps_every_key_kind() {
        let mut m = sample();
        m.key_groups[0].push(MasterKey::Kms {
            arn: "arn:aws:kms:us-east-1:1:key/a".into(),
            role: "".into(),
            context: vec![("z".into(), "1".into()), ("a".into(), "b".into())],
            created_at: "2026-11-28T19:05:09Z".into(),
            enc: "QUJD".into(),
            aws_profile: "".into(),
        });
        m.key_groups[0].push(MasterKey::HcVault {
            vault_address: "http://127.0.0.1:8200".into(),
            engine_path: "sops".into(),
            key_name: "k".into(),
            created_at: "2026-11-28T19:05:09Z".into(),
            enc: "vault:v1:x".into(),
        });
        let back = Metadata::from_value(&m.to_value(NilList::Null)).unwrap();
        let ids = |m: &Metadata| {
            let mut v: Vec<String> = m.key_groups[0].iter().map(MasterKey::identity).collect();
            v.sort();
            v
        };
        assert_eq!(ids(&back), ids(&m));
        assert_eq!(back.key_groups[0].len(), 4);
    }

    #[test]
    fn groups_write_empty_age_and_vault_lists() {
        let mut m = sample();
        m.key_groups = vec![vec![m.key_groups[0][0].clone()], vec![m.key_groups[0][1].clone()]];
        m.shamir_threshold = 2;
        let Value::Map(b) = m.to_value(NilList::EmptyList) else {
            panic!()
        };
        let Some(Value::List(groups)) = b.get("key_groups") else {
            panic!()
        };
        let Value::Map(g1) = &groups[1] else { panic!() };
        let keys: Vec<&str> = g1.0.iter().filter_map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["pgp", "hc_vault", "age"]);
        assert_eq!(g1.get("age"), Some(&Value::List(vec![])));
    }

    /// sops 3.13 writes every map level sorted by key (spec §7.3); reading
    /// must not depend on order.
    #[test]
    fn reads_sops_3_13_sorted_order() {
        let s = |v: &str| Value::Str(v.to_string());
        let entry =
            |items: Vec<(&str, Value)>| Value::Map(Branch(items.into_iter().map(|(k, v)| Item::new(k, v)).collect()));
        let sorted = entry(vec![
            (
                "key_groups",
                Value::List(vec![
                    entry(vec![
                        (
                            "age",
                            Value::List(vec![entry(vec![("enc", s("E1")), ("recipient", s("age1a"))])]),
                        ),
                        ("hc_vault", Value::List(vec![])),
                    ]),
                    entry(vec![
                        ("age", Value::List(vec![])),
                        ("hc_vault", Value::List(vec![])),
                        (
                            "kms",
                            Value::List(vec![entry(vec![
                                ("arn", s("arn:aws:kms:us-east-1:1:key/k")),
                                ("aws_profile", s("")),
                                ("context", entry(vec![("Env", s("prod"))])),
                                ("created_at", s("2026-01-02T03:04:05Z")),
                                ("enc", s("QUJD")),
                                ("role", s("arn:aws:iam::1:role/r")),
                            ])]),
                        ),
                    ]),
                ]),
            ),
            ("lastmodified", s("2026-01-02T03:04:05Z")),
            ("mac", s("ENC[...]")),
            ("mac_only_encrypted", Value::Bool(true)),
            ("shamir_threshold", Value::Int(2)),
            ("unencrypted_suffix", s("_unencrypted")),
            ("version", s("3.13.2")),
        ]);
        let m = Metadata::from_value(&sorted).unwrap();
        assert_eq!(m.key_groups.len(), 2);
        assert_eq!(m.key_groups[0][0].identity(), "age1a");
        assert_eq!(
            m.key_groups[1][0].identity(),
            "arn:aws:kms:us-east-1:1:key/k+arn:aws:iam::1:role/r|Env:prod"
        );
        assert_eq!(m.shamir_threshold, 2);
        assert!(m.mac_only_encrypted);
    }

    #[test]
    fn load_errors() {
        let mut m = sample();
        m.version = String::new();
        assert_eq!(
            Metadata::from_value(&m.to_value(NilList::Null)),
            Err(MetadataError::VersionEmpty)
        );
        let mut m = sample();
        m.key_groups = vec![vec![]];
        assert_eq!(
            Metadata::from_value(&m.to_value(NilList::Null)),
            Err(MetadataError::NoKeys)
        );
        assert_eq!(
            Metadata::from_value(&Value::Str("x".into())),
            Err(MetadataError::NotAMap)
        );
    }
}
