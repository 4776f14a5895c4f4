//! Stores turn bytes into a tree and back (spec §8). Each format implements
//! [`Store`]; [`Format`] picks one, in one place.

use crate::tree::{Branch, Value};
use std::fmt;

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
}
