//! Stores turn bytes into a tree and back (spec §8). Each format implements
//! [`Store`]; [`Format`] picks one, in one place.

use crate::tree::{Branch, Value};
use std::fmt;

pub mod binary;
pub mod dotenv;
pub mod flatten;
pub mod ini;
pub mod json;
pub mod yaml;

/// A parse or emit failure. The message never contains a value from the file
/// (it may name keys, line numbers and the offending token type).
#[derive(Clone, PartialEq, Eq)]
pub struct StoreError {
    pub message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreError({:?})", self.message)
    }
}

impl std::error::Error for StoreError {}

/// Why streaming a file out stopped: the store refused the tree, or the
/// destination failed.
#[derive(Debug)]
pub enum EmitError {
    Store(StoreError),
    Write(std::io::Error),
}

impl From<StoreError> for EmitError {
    fn from(e: StoreError) -> EmitError {
        EmitError::Store(e)
    }
}

/// Bytes ⇄ tree for one file format. Metadata handling (the `sops` key) is
/// done by the caller on the returned branches, so a store only parses and
/// prints documents.
pub trait Store {
    /// Parse a whole file into its documents (only YAML may return several).
    /// The `sops` metadata key, if present, is returned like any other key.
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError>;
    /// Print documents as a whole file.
    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError>;
    /// Print a single value (for `--extract` of a non-string, non-map value).
    fn emit_value(&self, value: &Value) -> Result<Vec<u8>, StoreError>;
    /// Print documents into `out`. Stores that override this write as they
    /// go and must not fail after the first write; the default prints the
    /// whole file first, so a refused tree leaves `out` untouched.
    fn emit_to(&self, branches: &[Branch], out: &mut dyn std::io::Write) -> Result<(), EmitError> {
        let bytes = zeroize::Zeroizing::new(self.emit(branches)?);
        out.write_all(&bytes).map_err(EmitError::Write)
    }
}

/// The file formats sops knows (spec §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// `--input-type` / `--output-type` values; anything else is ignored by
    /// sops (the extension decides), so this returns `None` for it.
    pub fn from_type_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }

    /// The format sops infers from a file name's extension.
    pub fn from_path(path: &str) -> Format {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else if path.ends_with(".json") {
            Format::Json
        } else if path.ends_with(".env") {
            Format::Dotenv
        } else if path.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
            Format::Binary => "binary",
        }
    }
}
