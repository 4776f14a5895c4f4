//! Flattening of the metadata tree for the flat formats (spec §7.5, §7.6):
//! nested map keys become `__map_<key>`, list indices `__list_<i>`.

use crate::tree::{Branch, Item, Value};
use std::collections::BTreeMap;

const MAP: &str = "__map_";
const LIST: &str = "__list_";

/// Flatten a metadata map into `(key, leaf)` pairs, sorted by key as sops
/// 3.11 writes them. Nulls and empty lists produce nothing.
pub fn flatten(value: &Value) -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        match value {
            Value::Map(b) => {
                for item in &b.0 {
                    if let Some(k) = item.key.as_str() {
                        let key = if prefix.is_empty() {
                            k.to_string()
                        } else {
                            format!("{prefix}{MAP}{k}")
                        };
                        walk(&key, &item.value, out);
                    }
                }
            }
            Value::List(l) => {
                for (i, v) in l.iter().enumerate() {
                    walk(&format!("{prefix}{LIST}{i}"), v, out);
                }
            }
            Value::Null | Value::Comment(_) => {}
            leaf => out.push((prefix.to_string(), leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A tree being rebuilt from flattened keys; lists are kept by index until
/// the end so entries may arrive in any order.
enum Node {
    Leaf(Value),
    Map(Vec<(String, Node)>),
    List(BTreeMap<usize, Node>),
}

enum Token {
    Key(String),
    Index(usize),
}

fn tokenize(flat: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let next_marker = |s: &str| -> Option<usize> {
        match (s.find(MAP), s.find(LIST)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    let first_end = next_marker(flat).unwrap_or(flat.len());
    tokens.push(Token::Key(flat[..first_end].to_string()));
    let mut rest = &flat[first_end..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(MAP) {
            let end = next_marker(r).unwrap_or(r.len());
            tokens.push(Token::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix(LIST) {
            let end = next_marker(r).unwrap_or(r.len());
            let i = r[..end]
                .parse::<usize>()
                .map_err(|_| format!("invalid list index in metadata key {flat:?}"))?;
            tokens.push(Token::Index(i));
            rest = &r[end..];
        } else {
            return Err(format!("invalid metadata key {flat:?}"));
        }
    }
    Ok(tokens)
}

fn insert(node: &mut Node, tokens: &[Token], leaf: Value, flat: &str) -> Result<(), String> {
    let Some((first, rest)) = tokens.split_first() else {
        *node = Node::Leaf(leaf);
        return Ok(());
    };
    let conflict = || format!("conflicting metadata keys at {flat:?}");
    let child = match first {
        Token::Key(k) => {
            if !matches!(node, Node::Map(_)) {
                if matches!(node, Node::Leaf(Value::Null)) {
                    *node = Node::Map(Vec::new());
                } else {
                    return Err(conflict());
                }
            }
            let Node::Map(entries) = node else {
                return Err(conflict());
            };
            let pos = match entries.iter().position(|(name, _)| name == k) {
                Some(p) => p,
                None => {
                    entries.push((k.clone(), Node::Leaf(Value::Null)));
                    entries.len() - 1
                }
            };
            &mut entries[pos].1
        }
        Token::Index(i) => {
            if matches!(node, Node::Leaf(Value::Null)) {
                *node = Node::List(BTreeMap::new());
            }
            let Node::List(items) = node else {
                return Err(conflict());
            };
            items.entry(*i).or_insert(Node::Leaf(Value::Null))
        }
    };
    insert(child, rest, leaf, flat)
}

fn finish(node: Node) -> Result<Value, String> {
    Ok(match node {
        Node::Leaf(v) => v,
        Node::Map(entries) => Value::Map(Branch(
            entries
                .into_iter()
                .map(|(k, n)| Ok(Item::new(k, finish(n)?)))
                .collect::<Result<_, String>>()?,
        )),
        Node::List(items) => {
            if items.keys().enumerate().any(|(expected, i)| expected != *i) {
                return Err("metadata list indices are not contiguous".into());
            }
            Value::List(items.into_values().map(finish).collect::<Result<_, _>>()?)
        }
    })
}

/// Rebuild the metadata map from flattened `(key, value)` pairs.
pub fn unflatten(pairs: Vec<(String, Value)>) -> Result<Value, String> {
    let mut root = Node::Map(Vec::new());
    for (flat, value) in pairs {
        let tokens = tokenize(&flat)?;
        insert(&mut root, &tokens, value, &flat)?;
    }
    finish(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = Value::Map(Branch(vec![
            Item::new(
                "key_groups",
                Value::List(vec![Value::Map(Branch(vec![
                    Item::new("hc_vault", Value::List(vec![])),
                    Item::new(
                        "age",
                        Value::List(vec![Value::Map(Branch(vec![
                            Item::new("recipient", Value::Str("age1x".into())),
                            Item::new("enc", Value::Str("E".into())),
                        ]))]),
                    ),
                ]))]),
            ),
            Item::new("shamir_threshold", Value::Int(2)),
        ]));
        let flat = flatten(&v);
        let keys: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "key_groups__list_0__map_age__list_0__map_enc",
                "key_groups__list_0__map_age__list_0__map_recipient",
                "shamir_threshold"
            ]
        );
        let back = unflatten(flat).unwrap();
        let Value::Map(b) = back else { panic!() };
        assert_eq!(b.get("shamir_threshold"), Some(&Value::Int(2)));
        assert!(matches!(b.get("key_groups"), Some(Value::List(l)) if l.len() == 1));
    }

    #[test]
    fn gaps_in_lists_are_errors() {
        let pairs = vec![("age__list_1__map_enc".to_string(), Value::Str("x".into()))];
        assert!(unflatten(pairs).is_err());
    }
}
