//! INI store (spec §8.5): go-ini (`gopkg.in/ini.v1`) as sops 3.11 drives it.
//!
//! Loading follows go-ini's parser with sops' options (non-unique sections,
//! inline comments, continuation lines, `"""`/backquote values). The tree is
//! one branch of sections; the implicit `DEFAULT` section comes first.
//! Comments preceding a section become its first item; comments preceding a
//! key (and its inline comment) become an item right after the key, which is
//! where sops puts them. Emitting follows go-ini's pretty writer.

use super::dotenv::value_to_string;
use super::json::write_compact;
use super::{Store, StoreError};
use crate::tree::{Branch, Item, Key, Value};

/// The INI store.
#[derive(Clone, Copy, Debug, Default)]
pub struct IniStore;

impl IniStore {
    pub fn new() -> IniStore {
        IniStore
    }
}

const LOAD_PREFIX: &str = "Could not unmarshal input data: ";

impl Store for IniStore {
    fn load(&self, input: &[u8]) -> Result<Vec<Branch>, StoreError> {
        let sections = parse(input).map_err(|e| StoreError::new(format!("{LOAD_PREFIX}{e}")))?;
        let mut branch = Branch::new();
        for s in sections {
            let mut items = Vec::with_capacity(s.keys.len() + 1);
            if !s.comment.is_empty() {
                items.push(Item::comment(strip_comment_char(&s.comment)));
            }
            for k in s.keys {
                items.push(Item::new(k.name, Value::Str(k.value)));
                if !k.comment.is_empty() {
                    items.push(Item::comment(strip_comment_char(&k.comment)));
                }
            }
            branch.push(s.name, Value::Map(Branch(items)));
        }
        Ok(vec![branch])
    }

    fn emit(&self, branches: &[Branch]) -> Result<Vec<u8>, StoreError> {
        let err = |m: String| StoreError::new(format!("Error marshaling to ini: {m}"));
        let mut sections: Vec<Section> = Vec::new();
        for branch in branches {
            for item in &branch.0 {
                let name = match &item.key {
                    Key::Comment(_) => continue,
                    Key::Str(k) => k.clone(),
                    Key::NonString { text, .. } => text.clone(),
                };
                let Value::Map(tree) = &item.value else {
                    return Err(err(
                        "Error encoding section: Section values should always be TreeBranches".to_string(),
                    ));
                };
                let mut section = Section {
                    name,
                    comment: String::new(),
                    keys: Vec::new(),
                };
                let mut rest = &tree.0[..];
                if let Some(Item {
                    key: Key::Comment(c), ..
                }) = rest.first()
                {
                    section.comment = c.clone();
                    rest = &rest[1..];
                }
                let mut last: Option<usize> = None;
                for kv in rest {
                    match &kv.key {
                        Key::Comment(c) => {
                            if let Some(i) = last {
                                section.keys[i].comment = c.clone();
                            }
                        }
                        Key::Str(_) | Key::NonString { .. } => {
                            let kname = match &kv.key {
                                Key::Str(k) => k.as_str(),
                                Key::NonString { text, .. } => text.as_str(),
                                Key::Comment(_) => "",
                            };
                            if kname.is_empty() {
                                return Err(err(
                                    "Error encoding key: error creating new key: empty key name".to_string()
                                ));
                            }
                            let value = value_to_string(&kv.value).ok_or_else(|| {
                                err(format!("Error encoding key: cannot use complex value for key {kname}"))
                            })?;
                            last = Some(section.set_key(kname, value));
                        }
                    }
                }
                sections.push(section);
            }
        }
        Ok(write(&sections))
    }

    /// sops' INI `EmitValue` is `json.Marshal`: compact JSON, no newline.
    fn emit_value(&self, value: &Value) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        write_compact(&mut out, value).map_err(StoreError::new)?;
        Ok(out)
    }
}

/// A section while parsing or writing. Values are bytes on output because
/// trees may hold non-UTF-8 strings.
struct Section<V = Vec<u8>> {
    name: String,
    comment: String,
    keys: Vec<KeyEntry<V>>,
}

struct KeyEntry<V> {
    name: String,
    value: V,
    comment: String,
}

impl<V> Section<V> {
    /// go-ini's `NewKey` without shadows: a repeated name updates the value
    /// in place (keeping the first position). Returns the key's index.
    fn set_key(&mut self, name: &str, value: V) -> usize {
        if let Some(i) = self.keys.iter().position(|k| k.name == name) {
            self.keys[i].value = value;
            return i;
        }
        self.keys.push(KeyEntry {
            name: name.to_string(),
            value,
            comment: String::new(),
        });
        self.keys.len() - 1
    }
}

/// sops' `stripCommentChar`.
fn strip_comment_char(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// go-ini's line reader: each line keeps its `\n`; `eof` is set once the
/// input is exhausted (the last, unterminated line included).
struct Lines<'a> {
    rest: &'a str,
    eof: bool,
    line_no: usize,
}

impl<'a> Lines<'a> {
    fn read(&mut self) -> &'a str {
        self.line_no += 1;
        match self.rest.find('\n') {
            Some(i) => {
                let (line, rest) = self.rest.split_at(i + 1);
                self.rest = rest;
                line
            }
            None => {
                self.eof = true;
                std::mem::take(&mut self.rest)
            }
        }
    }
}

fn parse(input: &[u8]) -> Result<Vec<Section<String>>, String> {
    // Go strings carry invalid UTF-8 through; our tree cannot, so invalid
    // bytes become U+FFFD (documented divergence).
    let input = match input {
        [0xEF, 0xBB, 0xBF, rest @ ..] => rest,
        [0xFE, 0xFF, rest @ ..] | [0xFF, 0xFE, rest @ ..] => rest,
        other => other,
    };
    let text = String::from_utf8_lossy(input);
    let mut lines = Lines {
        rest: &text,
        eof: false,
        line_no: 0,
    };
    let mut sections = vec![Section {
        name: "DEFAULT".to_string(),
        comment: String::new(),
        keys: Vec::new(),
    }];
    let mut comment = String::new();
    let mut count = 1;
    while !lines.eof {
        let line = lines.read().trim_start();
        let n = lines.line_no;
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') || line.starts_with(';') {
            comment.push_str(line);
            continue;
        }
        if line.starts_with('[') {
            let Some(close) = line.rfind(']') else {
                // A header line holds a section name, not a value.
                return Err(format!("unclosed section: {}", line.trim_end()));
            };
            let name = line[1..close].to_string();
            if let Some(i) = line[close + 1..].find(['#', ';']) {
                comment.push_str(&line[close + 1 + i..]);
            }
            sections.push(Section {
                name,
                comment: comment.trim().to_string(),
                keys: Vec::new(),
            });
            comment.clear();
            count = 1;
            continue;
        }
        // go-ini echoes the whole line in these errors; it may hold a secret.
        let (mut kname, offset) = read_key_name(line).map_err(|e| format!("{e}: line {n}"))?;
        if kname.is_empty() {
            return Err(format!("empty key name: line {n}"));
        }
        if kname == "-" {
            kname = format!("#{count}");
            count += 1;
        }
        let value = read_value(&line[offset..], &mut lines, &mut comment).map_err(|e| format!("{e}: line {n}"))?;
        let section = sections.last_mut().ok_or("no section")?;
        let i = section.set_key(&kname, value);
        section.keys[i].comment = comment.trim().to_string();
        comment.clear();
    }
    Ok(sections)
}

/// go-ini's `readKeyName` with delimiters `=:`: the key and the offset of
/// its value.
fn read_key_name(line: &str) -> Result<(String, usize), &'static str> {
    let quote = if line.starts_with('"') {
        if line.len() > 6 && line.starts_with("\"\"\"") {
            "\"\"\""
        } else {
            "\""
        }
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let start = quote.len();
        let pos = line[start..].find(quote).ok_or("missing closing key quote")? + start;
        let i = line[pos + start..]
            .find(['=', ':'])
            .ok_or("key-value delimiter not found")?;
        return Ok((line[start..pos].trim().to_string(), pos + i + start + 1));
    }
    let end = line.find(['=', ':']).ok_or("key-value delimiter not found")?;
    Ok((line[..end].trim().to_string(), end + 1))
}

fn read_value(input: &str, lines: &mut Lines<'_>, comment: &mut String) -> Result<String, String> {
    let line = input.trim_start();
    if line.is_empty() {
        return Ok(String::new());
    }
    let quote = if line.len() > 3 && line.starts_with("\"\"\"") {
        "\"\"\""
    } else if line.starts_with('`') {
        "`"
    } else {
        ""
    };
    if !quote.is_empty() {
        let start = quote.len();
        return match line[start..].rfind(quote) {
            Some(pos) => Ok(line[start..start + pos].to_string()),
            None => read_multilines(line[start..].to_string(), quote, lines, comment),
        };
    }
    let line = line.trim();
    if let Some(head) = line.strip_suffix('\\') {
        return Ok(read_continuation_lines(head.to_string(), lines));
    }
    let mut line = line;
    if let Some(i) = line.find(['#', ';']) {
        comment.push_str(&line[i..]);
        line = line[..i].trim();
    }
    if has_surrounded_quote(line, '\'') || has_surrounded_quote(line, '"') {
        line = &line[1..line.len() - 1];
    }
    Ok(line.to_string())
}

fn read_multilines(
    mut val: String,
    quote: &str,
    lines: &mut Lines<'_>,
    comment: &mut String,
) -> Result<String, String> {
    loop {
        let next = lines.read();
        if let Some(pos) = next.rfind(quote) {
            val.push_str(&next[..pos]);
            if let Some(i) = next[pos..].find(['#', ';']) {
                comment.push_str(next[pos + i..].trim());
            }
            return Ok(val);
        }
        val.push_str(next);
        if lines.eof {
            return Err("missing closing key quote".to_string());
        }
    }
}

fn read_continuation_lines(mut val: String, lines: &mut Lines<'_>) -> String {
    loop {
        let next = lines.read().trim();
        if next.is_empty() {
            return val;
        }
        val.push_str(next);
        if !val.ends_with('\\') {
            return val;
        }
        val.pop();
    }
}

/// True when `s` is wrapped in `q` and has no other `q` inside.
fn has_surrounded_quote(s: &str, q: char) -> bool {
    s.len() >= 2 && s.starts_with(q) && s.ends_with(q) && s[1..].find(q) == Some(s.len() - 2)
}

// ---------------------------------------------------------------------------
// Writing: go-ini's `writeToBuffer` with PrettyFormat and PrettySection.

fn write_comment_lines(out: &mut Vec<u8>, comment: &str, trim_plain: bool) {
    for line in comment.split('\n') {
        match line.as_bytes().first() {
            Some(b'#' | b';') => {
                out.extend_from_slice(&line.as_bytes()[..1]);
                out.push(b' ');
                out.extend_from_slice(line[1..].trim().as_bytes());
            }
            _ => {
                out.extend_from_slice(b"; ");
                let l = if trim_plain { line.trim() } else { line };
                out.extend_from_slice(l.as_bytes());
            }
        }
        out.push(b'\n');
    }
}

fn write(sections: &[Section]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, sec) in sections.iter().enumerate() {
        if !sec.comment.is_empty() {
            write_comment_lines(&mut out, &sec.comment, false);
        }
        if i > 0 || sec.name.to_uppercase() != "DEFAULT" {
            out.push(b'[');
            out.extend_from_slice(sec.name.as_bytes());
            out.extend_from_slice(b"]\n");
        } else if sec.keys.is_empty() {
            continue;
        }
        let quoted = |k: &str| -> String {
            if k.contains('"') || k.contains(['=', ':']) {
                format!("`{k}`")
            } else if k.contains('`') {
                format!("\"\"\"{k}\"\"\"")
            } else {
                k.to_string()
            }
        };
        let names: Vec<String> = sec.keys.iter().map(|k| quoted(&k.name)).collect();
        let align = names.iter().map(String::len).max().unwrap_or(0);
        for (key, name) in sec.keys.iter().zip(&names) {
            if !key.comment.is_empty() {
                write_comment_lines(&mut out, &key.comment, true);
            }
            out.extend_from_slice(name.as_bytes());
            out.resize(out.len() + align.saturating_sub(name.len()), b' ');
            out.extend_from_slice(b" = ");
            let val = &key.value;
            let lossy = String::from_utf8_lossy(val);
            if val.contains(&b'\n') || val.contains(&b'`') {
                out.extend_from_slice(b"\"\"\"");
                out.extend_from_slice(val);
                out.extend_from_slice(b"\"\"\"");
            } else if val.contains(&b'#') || val.contains(&b';') {
                out.push(b'`');
                out.extend_from_slice(val);
                out.push(b'`');
            } else if lossy.trim().len() != lossy.len() {
                out.push(b'"');
                out.extend_from_slice(val);
                out.push(b'"');
            } else {
                out.extend_from_slice(val);
            }
            out.push(b'\n');
        }
        // A blank line after every section but the last.
        if i + 1 < sections.len() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        let doc = IniStore.load(input.as_bytes()).unwrap();
        String::from_utf8(IniStore.emit(&doc).unwrap()).unwrap()
    }

    #[test]
    fn observed_sops_outputs() {
        assert_eq!(
            roundtrip("top=1\n; c0\n[s1]\nk=v\nlonger_key = x ; inline\n# c1\n; c2\nk2 = \"quoted\"\n[s2]\na:b\n[s1]\nz=1\nk=dup\n"),
            "top = 1\n\n; c0\n[s1]\nk          = v\n; inline\nlonger_key = x\n; c1\n; c2\nk2         = quoted\n\n[s2]\na = b\n\n[s1]\nz = 1\nk = dup\n"
        );
        assert_eq!(
            roundtrip("[a]\nx = a#b\ny = `a;b`\nz = \"\"\"multi\nline\"\"\"\nw = \"  sp  \"\nq = 'single'\nc = cont \\\\\n  inued\n"),
            "[a]\n; b\nx = a\ny = `a;b`\nz = \"\"\"multi\nline\"\"\"\nw = \"  sp  \"\nq = single\nc = cont \\inued\n"
        );
        assert_eq!(roundtrip(""), "");
        assert_eq!(roundtrip("[a]\n[b]\nx=1\n[c]\n"), "[a]\n\n[b]\nx = 1\n\n[c]\n");
        assert_eq!(roundtrip("[a]\nk=1\nk=2\n; after\n"), "[a]\nk = 2\n");
        assert_eq!(
            roundtrip("[DEFAULT]\nx=1\n[DEFAULT]\ny=2\n"),
            "[DEFAULT]\nx = 1\n\n[DEFAULT]\ny = 2\n"
        );
    }

    #[test]
    fn errors_do_not_echo_values() {
        let e = |s: &str| IniStore.load(s.as_bytes()).unwrap_err().message;
        assert_eq!(
            e("[a]\nsecret\n"),
            "Could not unmarshal input data: key-value delimiter not found: line 2"
        );
        assert_eq!(e("=v\n"), "Could not unmarshal input data: empty key name: line 1");
        assert_eq!(
            e("[unclosed\n"),
            "Could not unmarshal input data: unclosed section: [unclosed"
        );
    }

    #[test]
    fn emit_value_is_compact_json() {
        let v = Value::List(vec![Value::Int(1), Value::Str("<x>".into())]);
        assert_eq!(IniStore.emit_value(&v).unwrap(), br#"[1,"\u003cx\u003e"]"#);
    }
}
