//! Whole sops files: a store plus where each format keeps the metadata
//! (spec §7.4–§7.6, §8.6). Pure functions over bytes.

use crate::metadata::{take_sops_key, Metadata, MetadataError, NilList};
use crate::stores::dotenv::DotenvStore;
use crate::stores::flatten::{flatten, unflatten};
use crate::stores::ini::IniStore;
use crate::stores::json::JsonStore;
use crate::stores::yaml::YamlStore;
use crate::stores::{EmitError, Format, Store, StoreError};
use crate::tree::{Branch, Document, Item, Value};
use std::fmt;

/// Output settings: `stores:` from `.sops.yaml`, overridden by `--indent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    pub yaml_indent: i64,
    pub json_indent: i64,
    pub json_binary_indent: i64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            yaml_indent: 4,
            json_indent: -1,
            json_binary_indent: -1,
        }
    }
}

/// Why an encrypted file could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// The bytes do not parse in this format.
    Parse(StoreError),
    /// Parsed, but the metadata is missing or invalid.
    Metadata(MetadataError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Parse(e) => write!(f, "Error unmarshalling input {}", e),
            LoadError::Metadata(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LoadError {}

fn store(format: Format, s: &StoreSettings) -> Result<Box<dyn Store>, StoreError> {
    Ok(match format {
        Format::Yaml => Box::new(YamlStore::new(s.yaml_indent)?),
        Format::Json => Box::new(JsonStore::new(s.json_indent)?),
        Format::Binary => Box::new(JsonStore::new(s.json_binary_indent)?),
        Format::Dotenv => Box::new(DotenvStore::new()),
        Format::Ini => Box::new(IniStore::new()),
    })
}

/// Parse a plaintext file. The binary format wraps the bytes as `data`.
pub fn load_plain(format: Format, s: &StoreSettings, input: &[u8]) -> Result<Document, StoreError> {
    if format == Format::Binary {
        let value = match std::str::from_utf8(input) {
            Ok(text) => Value::Str(text.to_string()),
            Err(_) => Value::Bytes(input.to_vec()),
        };
        return Ok(Document::new(vec![Branch(vec![Item::new("data", value)])]));
    }
    Ok(Document::new(store(format, s)?.load(input)?))
}

/// Whether the first document has a top-level `sops` key (already encrypted).
pub fn has_metadata(format: Format, doc: &Document) -> bool {
    let Some(first) = doc.branches.first() else {
        return false;
    };
    match format {
        Format::Dotenv => first
            .0
            .iter()
            .any(|i| i.key.as_str().is_some_and(|k| k.starts_with("sops_"))),
        _ => first.get("sops").is_some(),
    }
}

/// Parse an encrypted file into its (still encrypted) tree and metadata.
/// The store name sops prints in `Error unmarshalling input <name>: …` for
/// an encrypted file: the binary store reads its encrypted form as JSON.
pub fn encrypted_store_name(format: Format) -> &'static str {
    match format {
        Format::Binary => "json",
        other => other.name(),
    }
}

/// From this size the strict JSON check runs beside the load.
const PARALLEL_VALIDATE_MIN: usize = 1 << 20;

pub fn load_encrypted(format: Format, s: &StoreSettings, input: &[u8]) -> Result<(Document, Metadata), LoadError> {
    let store = store(format, s).map_err(LoadError::Parse)?;
    let loaded = if matches!(format, Format::Json | Format::Binary) {
        // sops validates encrypted JSON strictly before reading it (trailing
        // bytes are an error here, unlike on encrypt): its error comes first.
        // Large inputs are validated on another thread while they load.
        let (valid, loaded) = if input.len() >= PARALLEL_VALIDATE_MIN {
            std::thread::scope(|scope| {
                let validation =
                    std::thread::Builder::new().spawn_scoped(scope, || crate::stores::json::validate_strict(input));
                let loaded = store.load(input);
                let valid = match validation {
                    Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    // No thread available: check here, after the load.
                    Err(_) => crate::stores::json::validate_strict(input),
                };
                (valid, loaded)
            })
        } else {
            match crate::stores::json::validate_strict(input) {
                Ok(()) => (Ok(()), store.load(input)),
                Err(e) => (Err(e), Ok(Vec::new())),
            }
        };
        valid.and(loaded)
    } else {
        store.load(input)
    };
    let mut branches = loaded.map_err(LoadError::Parse)?;
    if let Some(first) = branches.first_mut() {
        match format {
            Format::Dotenv => return finish_flat(branches_take_prefixed(first), branches),
            Format::Ini => {
                let section = take_sops_key(first);
                let pairs = match section {
                    Some(Value::Map(b)) => {
                        b.0.into_iter()
                            .filter_map(|i| {
                                let k = i.key.as_str()?.to_string();
                                // INI metadata carries newlines as the two characters `\n`.
                                let v = match i.value {
                                    Value::Str(s) => Value::Str(s.replace("\\n", "\n")),
                                    other => other,
                                };
                                Some((k, v))
                            })
                            .collect()
                    }
                    _ => Vec::new(),
                };
                return finish_flat(pairs, branches);
            }
            _ => {}
        }
    }
    let mut metadata_value = None;
    for (i, b) in branches.iter_mut().enumerate() {
        let v = take_sops_key(b);
        if i == 0 {
            metadata_value = v;
        }
    }
    let value = metadata_value.ok_or(LoadError::Metadata(MetadataError::NotFound))?;
    let metadata = Metadata::from_value(&value).map_err(LoadError::Metadata)?;
    Ok((Document::new(branches), metadata))
}

/// Remove the `sops_`-prefixed dotenv keys, returning them without the prefix.
fn branches_take_prefixed(branch: &mut Branch) -> Vec<(String, Value)> {
    let mut pairs = Vec::new();
    branch
        .0
        .retain_mut(|i| match i.key.as_str().and_then(|k| k.strip_prefix("sops_")) {
            Some(k) => {
                pairs.push((k.to_string(), std::mem::replace(&mut i.value, Value::Null)));
                false
            }
            None => true,
        });
    pairs
}

fn finish_flat(pairs: Vec<(String, Value)>, branches: Vec<Branch>) -> Result<(Document, Metadata), LoadError> {
    if pairs.is_empty() {
        return Err(LoadError::Metadata(MetadataError::NotFound));
    }
    let value = unflatten(pairs).map_err(|e| LoadError::Metadata(MetadataError::Invalid(e)))?;
    let metadata = Metadata::from_value(&value).map_err(LoadError::Metadata)?;
    Ok((Document::new(branches), metadata))
}

/// Print an encrypted file: the tree plus the metadata in every document.
pub fn emit_encrypted(
    format: Format,
    s: &StoreSettings,
    doc: &mut Document,
    metadata: &Metadata,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    emit_encrypted_to(format, s, doc, metadata, &mut out).map_err(|e| match e {
        EmitError::Store(e) => e,
        EmitError::Write(e) => StoreError::new(e.to_string()),
    })?;
    Ok(out)
}

/// [`emit_encrypted`] into a writer (streamed for YAML and JSON).
pub fn emit_encrypted_to(
    format: Format,
    s: &StoreSettings,
    doc: &mut Document,
    metadata: &Metadata,
    out: &mut dyn std::io::Write,
) -> Result<(), EmitError> {
    let nil = if format == Format::Yaml {
        NilList::EmptyList
    } else {
        NilList::Null
    };
    let meta = metadata.to_value(nil);
    if matches!(format, Format::Dotenv | Format::Ini) {
        let bytes = emit_flat(format, doc, &meta)?;
        return out.write_all(&bytes).map_err(EmitError::Write);
    }
    // Append the block to every document for printing, then take it off again.
    for b in &mut doc.branches {
        b.0.push(Item::new("sops", meta.clone()));
    }
    let result = store(format, s)
        .map_err(EmitError::Store)
        .and_then(|st| st.emit_to(&doc.branches, out));
    for b in &mut doc.branches {
        b.0.pop();
    }
    result
}

fn emit_flat(format: Format, doc: &mut Document, meta: &Value) -> Result<Vec<u8>, StoreError> {
    let flat = flatten(meta);
    let Some(first) = doc.branches.first_mut() else {
        return Err(StoreError::new("there must be exactly one tree branch"));
    };
    let original_len = first.0.len();
    if format == Format::Dotenv {
        first
            .0
            .extend(flat.into_iter().map(|(k, v)| Item::new(format!("sops_{k}"), v)));
    } else {
        let section = flat
            .into_iter()
            .map(|(k, v)| match v {
                Value::Str(s) => Item::new(k, Value::Str(s.replace('\n', "\\n"))),
                other => Item::new(k, other),
            })
            .collect();
        first.0.push(Item::new("sops", Value::Map(Branch(section))));
    }
    let out = store(format, &StoreSettings::default()).and_then(|st| st.emit(&doc.branches));
    if let Some(first) = doc.branches.first_mut() {
        first.0.truncate(original_len);
    }
    out
}

/// Print a plaintext file.
pub fn emit_plain(format: Format, s: &StoreSettings, doc: &Document) -> Result<Vec<u8>, StoreError> {
    if format == Format::Binary {
        return binary_data(doc).map(<[u8]>::to_vec);
    }
    store(format, s)?.emit(&doc.branches)
}

/// [`emit_plain`] into a writer (streamed for YAML and JSON).
pub fn emit_plain_to(
    format: Format,
    s: &StoreSettings,
    doc: &Document,
    out: &mut dyn std::io::Write,
) -> Result<(), EmitError> {
    if format == Format::Binary {
        return out.write_all(binary_data(doc)?).map_err(EmitError::Write);
    }
    store(format, s)?.emit_to(&doc.branches, out)
}

fn binary_data(doc: &Document) -> Result<&[u8], StoreError> {
    match doc.branches.first().and_then(|b| b.get("data")) {
        Some(Value::Str(s)) => Ok(s.as_bytes()),
        Some(Value::Bytes(b)) => Ok(b),
        _ => Err(StoreError::new(
            "error emitting binary store: no binary data found in tree",
        )),
    }
}

/// Print one value (`--extract` of a non-string scalar or a list).
pub fn emit_value(format: Format, s: &StoreSettings, value: &Value) -> Result<Vec<u8>, StoreError> {
    store(format, s)?.emit_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_error(input: &[u8]) -> String {
        match load_encrypted(Format::Json, &StoreSettings::default(), input) {
            Err(LoadError::Parse(e)) => e.message,
            Err(LoadError::Metadata(e)) => format!("metadata: {e}"),
            Ok(_) => "loaded".to_string(),
        }
    }

    /// The strict check's error wins over the load's, whether the check
    /// runs before the load (small input) or beside it (large input).
    #[test]
    fn strict_json_check_error_comes_first_at_every_size() {
        for n in [10, 60_000] {
            let body: Vec<String> = (0..n).map(|i| format!("\"k{i}\": \"value {i}\"")).collect();
            let json = format!("{{{}}}", body.join(", "));
            assert_eq!(json.len() >= PARALLEL_VALIDATE_MIN, n > 10);
            // Trailing bytes: only the strict check refuses them.
            let trailing = format!("{json} x");
            let expected = crate::stores::json::validate_strict(trailing.as_bytes())
                .unwrap_err()
                .message;
            assert_eq!(load_error(trailing.as_bytes()), expected);
            // Broken inside: both refuse it; the strict check's text is reported.
            let broken = json.replacen("\"k1\":", "\"k1\" ", 1);
            let expected = crate::stores::json::validate_strict(broken.as_bytes())
                .unwrap_err()
                .message;
            assert_eq!(load_error(broken.as_bytes()), expected);
            // Valid but without metadata.
            assert_eq!(
                load_error(json.as_bytes()),
                format!("metadata: {}", MetadataError::NotFound)
            );
        }
    }
}
