//! A seeded, deterministic generator of varied YAML and JSON documents for
//! the side-by-side tests (nested maps, lists of maps, unicode and emoji,
//! empty strings, nulls, every number form, booleans of every spelling,
//! comments everywhere, multi-document YAML).

#![allow(dead_code)]

/// xorshift64*: tiny, deterministic, good enough to pick shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Plain YAML scalars of every kind sops distinguishes.
const YAML_SCALARS: &[&str] = &[
    "hello",
    "hello world",
    "\"quoted string\"",
    "'single quoted'",
    "\"\"",
    "''",
    "~",
    "null",
    "Null",
    "true",
    "False",
    "TRUE",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "0",
    "42",
    "-17",
    "+5",
    "017",
    "0x1F",
    "0o17",
    "1_000",
    "3.14",
    "-0.5",
    "1.0",
    "1e3",
    "1.5e-7",
    "1234567.0",
    ".inf",
    "-.inf",
    ".nan",
    "2024-01-02",
    "2024-01-02T03:04:05Z",
    "\"123\"",
    "\"true\"",
    "café au lait",
    "日本語のテキスト",
    "\"emoji 🚀 rocket\"",
    "\"tab\\tand\\nnewline\"",
    "'it''s'",
    "\"a: b quoted\"",
    "x #not a comment?",
    "\"#hash start\"",
    "\"- dash start\"",
    "value with trailing spaces   ",
    "pa$$w0rd!@%^&*()",
    "\"\\u00e9 escaped\"",
];

fn yaml_scalar(r: &mut Rng) -> String {
    let s = r.pick(YAML_SCALARS);
    // Plain scalars with trailing spaces are trimmed by YAML; keep them honest.
    s.trim_end().to_string()
}

fn comment(r: &mut Rng) -> String {
    r.pick(&[
        "# a comment",
        "#no space comment",
        "# comment with ünïcödé",
        "# TODO: rotate this",
        "#",
        "# key: value looking comment",
    ])
    .to_string()
}

fn key(r: &mut Rng, n: usize) -> String {
    let base = r.pick(&[
        "name",
        "password",
        "api_key",
        "port",
        "enabled",
        "user",
        "host",
        "token",
        "ratio",
        "list",
        "data",
        "secret_unencrypted",
        "clé",
        "日本",
        "with space",
        "dash-key",
        "dot.key",
        "UPPER",
    ]);
    if base.contains(' ') {
        format!("\"{base} {n}\"")
    } else {
        format!("{base}_{n}")
    }
}

fn yaml_block(r: &mut Rng, out: &mut String, indent: usize, depth: usize, counter: &mut usize) {
    let pad = " ".repeat(indent);
    let items = 1 + r.below(5);
    for _ in 0..items {
        *counter += 1;
        if r.chance(20) {
            out.push_str(&format!("{pad}{}\n", comment(r)));
        }
        let k = key(r, *counter);
        let kind = if depth >= 3 { 0 } else { r.below(6) };
        match kind {
            0..=2 => {
                let v = yaml_scalar(r);
                if r.chance(15) {
                    out.push_str(&format!("{pad}{k}: {v} {}\n", comment(r)));
                } else {
                    out.push_str(&format!("{pad}{k}: {v}\n"));
                }
            }
            3 => {
                out.push_str(&format!("{pad}{k}:\n"));
                yaml_block(r, out, indent + 2, depth + 1, counter);
            }
            4 => {
                out.push_str(&format!("{pad}{k}:\n"));
                let n = 1 + r.below(3);
                for _ in 0..n {
                    if r.chance(15) {
                        out.push_str(&format!("{pad}  {}\n", comment(r)));
                    }
                    if r.chance(40) && depth < 2 {
                        // a list of maps
                        *counter += 1;
                        let k1 = key(r, *counter);
                        out.push_str(&format!("{pad}  - {k1}: {}\n", yaml_scalar(r)));
                        *counter += 1;
                        let k2 = key(r, *counter);
                        out.push_str(&format!("{pad}    {k2}: {}\n", yaml_scalar(r)));
                    } else {
                        out.push_str(&format!("{pad}  - {}\n", yaml_scalar(r)));
                    }
                }
            }
            _ => {
                let v = r.pick(&[
                    "{}",
                    "[]",
                    "[a, 1, true]",
                    "{x: 1, y: two}",
                    "|\n  line one\n  line two",
                    ">-\n  folded\n  text",
                ]);
                let v = v.replace('\n', &format!("\n{pad}"));
                out.push_str(&format!("{pad}{k}: {v}\n"));
            }
        }
    }
}

/// A YAML file (possibly several documents).
pub fn yaml_document(seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut out = String::new();
    let docs = if r.chance(20) { 2 } else { 1 };
    let mut counter = 0;
    for d in 0..docs {
        if d > 0 {
            out.push_str("---\n");
        }
        if r.chance(30) {
            out.push_str(&format!("{}\n", comment(&mut r)));
        }
        yaml_block(&mut r, &mut out, 0, 0, &mut counter);
        if r.chance(20) {
            out.push_str(&format!("{}\n", comment(&mut r)));
        }
    }
    out
}

const JSON_SCALARS: &[&str] = &[
    "\"hello\"",
    "\"\"",
    "null",
    "true",
    "false",
    "0",
    "42",
    "-17",
    "3.14",
    "1.0",
    "1e21",
    "1.5e-7",
    "12345678901234567890",
    "9007199254740993",
    "-0",
    "\"café\"",
    "\"emoji 🚀\"",
    "\"<html> & more\"",
    "\"tab\\tnew\\nline \\\"quote\\\" back\\\\slash\"",
    "\"\\u0001 control\"",
    "\"\\u2028 separator\"",
    "\"日本語\"",
];

fn json_value(r: &mut Rng, depth: usize, counter: &mut usize) -> String {
    match if depth >= 3 { 0 } else { r.below(5) } {
        0..=2 => r.pick(JSON_SCALARS).to_string(),
        3 => {
            let n = r.below(4);
            let items: Vec<String> = (0..n).map(|_| json_value(r, depth + 1, counter)).collect();
            format!("[{}]", items.join(", "))
        }
        _ => json_object(r, depth + 1, counter),
    }
}

fn json_object(r: &mut Rng, depth: usize, counter: &mut usize) -> String {
    let n = r.below(5);
    let items: Vec<String> = (0..n)
        .map(|_| {
            *counter += 1;
            let k = key(r, *counter).trim_matches('"').to_string();
            format!("\"{k}\": {}", json_value(r, depth, counter))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A JSON object of every value type.
pub fn json_document(seed: u64) -> String {
    let mut r = Rng::new(seed);
    let mut counter = 0;
    let mut s = json_object(&mut r, 0, &mut counter);
    if s == "{}" {
        s = "{\"only\": \"value\"}".to_string();
    }
    s.push('\n');
    s
}
