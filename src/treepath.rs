//! Paths into a tree (`["key"][0]`, spec §11.5) and the operations on them:
//! extract (`--extract`), set and unset, with sops' semantics.

use crate::tree::{Branch, Document, Item, Value};

/// One component of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathComponent {
    Key(String),
    Index(usize),
}

/// Parse `["key"][0]['other']`. `Err` carries sops' message.
pub fn parse(s: &str) -> Result<Vec<PathComponent>, String> {
    let mut out = Vec::new();
    for piece in s.split('[').filter(|p| !p.is_empty()) {
        let inner = piece
            .strip_suffix(']')
            .ok_or_else(|| format!("component {piece} doesn't end with ]"))?;
        if inner.starts_with('"') || inner.starts_with('\'') {
            // sops drops the first and last character without checking them.
            let mut chars = inner.chars();
            chars.next();
            chars.next_back();
            out.push(PathComponent::Key(chars.as_str().to_string()));
        } else {
            let i = inner
                .parse::<usize>()
                .map_err(|_| format!("component [{inner}] is not a string key nor an integer index"))?;
            out.push(PathComponent::Index(i));
        }
    }
    Ok(out)
}

/// Walk the first document to `path` (sops' `Truncate`). An empty path is
/// the whole first document.
///
/// Quirk kept from sops: an index into a mapping picks its n-th entry (Go
/// treats a mapping as a slice of items) and yields a mapping of that
/// entry's key and value, named by `item_fields` (`key`/`value` in YAML,
/// `Key`/`Value` in JSON, as Go's encoders print the struct).
/// The second element of the result tells whether the value is such an entry
/// (sops prints it as a single value, not as a document).
pub fn get(doc: &Document, path: &[PathComponent], item_fields: (&str, &str)) -> Result<Option<(Value, bool)>, String> {
    let first = doc
        .branches
        .first()
        .ok_or_else(|| "the file has no document".to_string())?;
    let mut current: Value = Value::Map(first.clone());
    let mut entry = false;
    for c in path {
        entry = matches!((c, &current), (PathComponent::Index(_), Value::Map(_)));
        current = match (c, current) {
            (PathComponent::Key(k), Value::Map(b)) => {
                let pos = b.position(k).ok_or_else(|| format!("component ['{k}'] not found"))?;
                b.0.into_iter()
                    .nth(pos)
                    .map(|i| i.value)
                    .ok_or_else(|| format!("component ['{k}'] not found"))?
            }
            (PathComponent::Key(k), _) => return Err(format!("component ['{k}'] not found")),
            (PathComponent::Index(i), Value::List(l)) => l
                .into_iter()
                .nth(*i)
                .ok_or_else(|| format!("component [{i}] accesses out of bounds"))?,
            (PathComponent::Index(i), Value::Map(b)) => {
                let item =
                    b.0.into_iter()
                        .nth(*i)
                        .ok_or_else(|| format!("component [{i}] accesses out of bounds"))?;
                let key = match item.key {
                    crate::tree::Key::Str(k) => Value::Str(k),
                    crate::tree::Key::Comment(c) => Value::Comment(c),
                    crate::tree::Key::NonString { text, .. } => Value::Str(text),
                };
                Value::Map(Branch(vec![
                    Item::new(item_fields.0, key),
                    Item::new(item_fields.1, item.value),
                ]))
            }
            (PathComponent::Index(i), _) => {
                return Err(format!("component [{i}] is integer, but tree part is not a slice"))
            }
        };
    }
    Ok(if path.is_empty() { None } else { Some((current, entry)) })
}

/// A value holding `leaf` at `path` (sops' `valueFromPathAndLeaf`).
fn value_from_path(path: &[PathComponent], leaf: Value) -> Value {
    match path.split_first() {
        None => leaf,
        Some((PathComponent::Index(_), rest)) => Value::List(vec![value_from_path(rest, leaf)]),
        Some((PathComponent::Key(k), rest)) => {
            Value::Map(Branch(vec![Item::new(k.clone(), value_from_path(rest, leaf))]))
        }
    }
}

fn set_in_branch(branch: &mut Branch, path: &[PathComponent], leaf: Value) -> Result<(), String> {
    let Some((PathComponent::Key(k), rest)) = path.split_first() else {
        return Ok(());
    };
    match branch.get_mut(k) {
        Some(v) if rest.is_empty() => *v = leaf,
        Some(v) => return set_in_value(v, rest, leaf),
        None => branch.push(k.clone(), value_from_path(rest, leaf)),
    }
    Ok(())
}

fn set_in_value(value: &mut Value, path: &[PathComponent], leaf: Value) -> Result<(), String> {
    match (value, path.first()) {
        (Value::Map(b), Some(PathComponent::Key(_))) => return set_in_branch(b, path, leaf),
        // sops panics or silently does nothing here; replacing the container
        // would lose data, so refuse.
        (Value::Map(_), Some(PathComponent::Index(i))) => {
            return Err(format!(
                "cannot use index [{i}] on a mapping; use a [\"key\"] component"
            ))
        }
        (Value::List(_), Some(PathComponent::Key(k))) => {
            return Err(format!("cannot use key ['{k}'] on a list; use an [index] component"))
        }
        (Value::List(l), Some(PathComponent::Index(i))) => {
            let rest = &path[1..];
            if *i >= l.len() {
                l.push(value_from_path(rest, leaf));
            } else if rest.is_empty() {
                l[*i] = leaf;
            } else {
                return set_in_value(&mut l[*i], rest, leaf);
            }
        }
        // A scalar in the way is replaced by the new structure.
        (v, _) => *v = value_from_path(path, leaf),
    }
    Ok(())
}

/// Set `path` in the first document to `leaf` (sops' `Set`): existing
/// entries are replaced, missing keys appended, missing containers created.
/// Returns whether the tree changed (typed comparison, as `--idempotent`).
pub fn set(doc: &mut Document, path: &[PathComponent], leaf: Value) -> Result<bool, String> {
    let first = doc
        .branches
        .first_mut()
        .ok_or_else(|| "the file has no document".to_string())?;
    if !matches!(path.first(), Some(PathComponent::Key(_))) {
        return Err("the path must start with a key".into());
    }
    let before = first.clone();
    set_in_branch(first, path, leaf)?;
    Ok(*first != before)
}

/// Remove the entry at `path` from the first document (sops' `Unset`),
/// with sops's error texts: `Key not found: k`, `Index n out of bounds`,
/// and `Unsupported type: T for item 'c'` when a scalar is in the way
/// (Go's `%s` of an index prints as `%!s(int=n)`).
pub fn unset(doc: &mut Document, path: &[PathComponent]) -> Result<(), String> {
    let first = doc
        .branches
        .first_mut()
        .ok_or_else(|| "the file has no document".to_string())?;
    if path.is_empty() {
        return Err("the path must not be empty".into());
    }
    unset_in_branch(first, path)
}

/// A path component as Go's `fmt.Sprintf("%s", component)` prints it.
fn go_component(c: &PathComponent) -> String {
    match c {
        PathComponent::Key(k) => k.clone(),
        PathComponent::Index(i) => format!("%!s(int={i})"),
    }
}

fn unset_in_branch(b: &mut Branch, path: &[PathComponent]) -> Result<(), String> {
    let Some((c, rest)) = path.split_first() else {
        return Ok(());
    };
    let PathComponent::Key(k) = c else {
        return Err(format!("Key not found: {}", go_component(c)));
    };
    let pos = b.position(k).ok_or_else(|| format!("Key not found: {k}"))?;
    if rest.is_empty() {
        b.0.remove(pos);
        Ok(())
    } else {
        unset_in_value(&mut b.0[pos].value, rest)
    }
}

fn unset_in_value(v: &mut Value, path: &[PathComponent]) -> Result<(), String> {
    let Some((c, rest)) = path.split_first() else {
        return Ok(());
    };
    match v {
        Value::Map(b) => unset_in_branch(b, path),
        Value::List(l) => match c {
            // sops 3.11 panics here; report the key as missing instead.
            PathComponent::Key(k) => Err(format!("Key not found: {k}")),
            PathComponent::Index(i) if *i >= l.len() => Err(format!("Index {i} out of bounds")),
            PathComponent::Index(i) if rest.is_empty() => {
                l.remove(*i);
                Ok(())
            }
            PathComponent::Index(i) => unset_in_value(&mut l[*i], rest),
        },
        other => {
            let go_type = match other {
                Value::Null => "<nil>",
                Value::Time(_) => "time.Time",
                Value::Comment(_) => "sops.Comment",
                v => v.type_name(),
            };
            Err(format!("Unsupported type: {go_type} for item '{}'", go_component(c)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        Document::new(vec![Branch(vec![
            Item::new("a", Value::Int(1)),
            Item::new("l", Value::List(vec![Value::Int(1), Value::Int(2)])),
        ])])
    }

    #[test]
    fn parse_paths() {
        assert_eq!(
            parse(r#"["a"][0]['b']"#).unwrap(),
            vec![
                PathComponent::Key("a".into()),
                PathComponent::Index(0),
                PathComponent::Key("b".into())
            ]
        );
        assert!(parse(r#"["a""#).is_err());
        assert!(parse("[x]").is_err());
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn set_appends_creates_and_replaces() {
        let mut d = doc();
        assert!(set(&mut d, &parse(r#"["n"]["x"][0]"#).unwrap(), Value::Bool(true)).unwrap());
        assert!(set(&mut d, &parse(r#"["l"][5]["q"]"#).unwrap(), Value::Int(7)).unwrap());
        assert!(set(&mut d, &parse(r#"["a"]["deep"]"#).unwrap(), Value::Null).unwrap());
        assert!(!set(&mut d, &parse(r#"["a"]["deep"]"#).unwrap(), Value::Null).unwrap());
        let b = &d.branches[0];
        assert_eq!(b.0.len(), 3);
        let Some(Value::List(l)) = b.get("l") else { panic!() };
        assert_eq!(l.len(), 3);
        assert!(matches!(&l[2], Value::Map(m) if m.get("q") == Some(&Value::Int(7))));
        // A key on a list, or an index on a mapping, is refused rather than
        // replacing the container.
        assert!(set(&mut d, &parse(r#"["l"]["x"]"#).unwrap(), Value::Null).is_err());
        assert!(set(&mut d, &parse(r#"["n"][0]"#).unwrap(), Value::Null).is_err());
        // Typed comparison: float 1 over int 1 is a change.
        assert!(set(&mut d, &parse(r#"["l"][0]"#).unwrap(), Value::Float(1.0)).unwrap());
    }

    #[test]
    fn unset_removes_or_reports() {
        let mut d = doc();
        unset(&mut d, &parse(r#"["l"][0]"#).unwrap()).unwrap();
        assert_eq!(
            unset(&mut d, &parse(r#"["nope"]"#).unwrap()).err().unwrap(),
            "Key not found: nope"
        );
        assert_eq!(
            unset(&mut d, &parse(r#"["l"][9]"#).unwrap()).err().unwrap(),
            "Index 9 out of bounds"
        );
        assert_eq!(
            unset(&mut d, &parse(r#"["a"]["x"]"#).unwrap()).err().unwrap(),
            "Unsupported type: int for item 'x'"
        );
        assert_eq!(
            unset(&mut d, &parse(r#"["l"][0][1]"#).unwrap()).err().unwrap(),
            "Unsupported type: int for item '%!s(int=1)'"
        );
        assert_eq!(
            unset(&mut d, &parse(r#"[0]"#).unwrap()).err().unwrap(),
            "Key not found: %!s(int=0)"
        );
        unset(&mut d, &parse(r#"["a"]"#).unwrap()).unwrap();
        assert_eq!(d.branches[0].0.len(), 1);
    }
}
