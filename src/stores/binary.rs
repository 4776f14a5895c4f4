//! Binary store (spec §8.6): the whole plaintext file is one value under
//! `data`. The encrypted form is a JSON document, which the caller reads and
//! writes with [`super::json::JsonStore`] (indent from `stores.json_binary`).

use super::{Store, StoreError};
use crate::tree::{Branch, Value};

/// The binary store (plaintext side).
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryStore;

impl BinaryStore {
    pub fn new() -> BinaryStore {
        BinaryStore
    }
}

impl Store for BinaryStore {
    /// One branch `{data: …}` holding the exact bytes: a string when they
    /// are UTF-8, raw bytes otherwise (both are type `str` when encrypted).
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError> {
        let value = match std::str::from_utf8(input) {
            Ok(s) => Value::Str(s.to_string()),
            Err(_) => Value::Bytes(input.to_vec()),
        };
        let mut branch = Branch::new();
        branch.push("data", value);
        Ok(vec![branch])
    }

    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError> {
        let err = |m: &str| StoreError::new(format!("error emitting binary store: {m}"));
        let [branch] = branches else {
            return Err(err("there must be exactly one tree branch"));
        };
        match branch.get("data") {
            Some(Value::Str(s)) => Ok(s.as_bytes().to_vec()),
            Some(Value::Bytes(b)) => Ok(b.clone()),
            Some(_) => Err(err("'data' key in tree does not have a string value")),
            None => Err(err("no binary data found in tree")),
        }
    }

    fn emit_value(&self, _value: &Value) -> Result<Vec<u8>, StoreError> {
        Err(StoreError::new(
            "Binary files are not structured and extracting a single value is not possible",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_exact_bytes() {
        for input in [&b""[..], b"text\n", b"\x00\xff\xfe\r\n", "ünï".as_bytes()] {
            let doc = BinaryStore.load(input).unwrap();
            assert_eq!(BinaryStore.emit(&doc).unwrap(), input);
        }
    }

    #[test]
    fn emit_errors_match_sops() {
        let e = |b: &[Branch]| BinaryStore.emit(b).unwrap_err().message;
        assert_eq!(
            e(&[Branch::new()]),
            "error emitting binary store: no binary data found in tree"
        );
        let mut b = Branch::new();
        b.push("data", Value::Int(1));
        assert_eq!(
            e(&[b.clone()]),
            "error emitting binary store: 'data' key in tree does not have a string value"
        );
        assert_eq!(
            e(&[b.clone(), b]),
            "error emitting binary store: there must be exactly one tree branch"
        );
    }
}
