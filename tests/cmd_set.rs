//! `set` / `unset` side by side with sops 3.11: path syntax, JSON typing,
//! value sources, `--idempotent`, error codes and messages; results are
//! compared by decrypting with both tools, and untouched values keep their
//! ciphertext byte for byte.

mod cmd_util;
mod common;

use cmd_util::*;
use common::{ok, text, Scratch};
use std::path::{Path, PathBuf};

const PLAIN: &str = "\
name: service
port: 5432
flag: true
nested:
    token: abc
    list:
        - one
        - two
";

/// Copy the fixture for `tool`, apply every `set`/`unset` step with it and
/// return the file.
fn apply(s: &Scratch, tool: Tool, orig: &Path, steps: &[(&[&str], Option<&[u8]>)]) -> PathBuf {
    let target = s.path(&format!("{}.yaml", tool.name()));
    std::fs::copy(orig, &target).expect("copy");
    for (args, stdin) in steps {
        let args: Vec<&str> = args.iter().map(|a| if *a == "FILE" { p(&target) } else { a }).collect();
        ok(
            &run_with(s, tool, &args, &[], *stdin),
            &format!("{} {}", tool.name(), args.join(" ")),
        );
    }
    target
}

/// Apply the steps with both tools and compare the decrypted results;
/// returns sops's plaintext and rsops's file.
fn compare(s: &Scratch, orig: &Path, steps: &[(&[&str], Option<&[u8]>)]) -> (String, PathBuf) {
    let theirs = apply(s, Tool::Sops, orig, steps);
    let ours = apply(s, Tool::Rsops, orig, steps);
    let a = decrypt_both(s, &theirs, &[]);
    let b = decrypt_both(s, &ours, &[]);
    assert_eq!(text(&b), text(&a), "results differ");
    // Same structure and types as sops's file.
    let norm = |f: &Path| {
        let t = text(&std::fs::read(f).expect("read"));
        let cut = t.find("\nsops:").unwrap_or(t.len());
        common::normalize_encrypted(&t[..cut])
    };
    assert_eq!(norm(&ours), norm(&theirs), "encrypted structure differs");
    (text(&a), ours)
}

#[test]
fn set_paths_and_json_typing() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let steps: Vec<(&[&str], Option<&[u8]>)> = vec![
        (&["set", "FILE", r#"["name"]"#, r#""renamed""#], None),
        (&["set", "FILE", r#"["port"]"#, "5433"], None),
        (&["set", "FILE", r#"["flag"]"#, "false"], None),
        (&["set", "FILE", r#"['nested']['token']"#, "null"], None),
        (&["set", "FILE", r#"["nested"]["list"][1]"#, r#""TWO""#], None),
        (&["set", "FILE", r#"["nested"]["list"][7]"#, r#""appended""#], None),
        (&["set", "FILE", r#"["new"]["deep"][0]"#, r#""created""#], None),
        (
            &["set", "FILE", r#"["obj"]"#, r#"{"b": 1, "a": {"x": "y"}, "c": 2.5}"#],
            None,
        ),
        (&["set", "FILE", r#"["port"]["over"]"#, r#""scalar replaced""#], None),
        (&["set", "FILE", r#"["big"]"#, "12345678901"], None),
    ];
    let (plain, ours) = compare(&s, &orig, &steps);
    assert!(plain.contains("name: renamed\n"), "{plain}");
    assert!(
        plain.contains("obj:\n    b: 1\n    a:\n        x: \"y\"\n    c: 2.5\n"),
        "{plain}"
    );
    let file = text(&std::fs::read(&ours).expect("read"));
    // JSON numbers are floats, even integral ones.
    assert!(file.contains("\nbig: ENC[") && file.contains("type:float]\n"), "{file}");
    for line in file
        .lines()
        .filter(|l| l.trim_start().starts_with("b: ") || l.starts_with("big: "))
    {
        assert!(line.ends_with("type:float]"), "{line}");
    }
}

#[test]
fn unchanged_values_keep_their_ciphertext() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let before = enc_lines(&std::fs::read(&orig).expect("read"));
    for tool in BOTH {
        let f = apply(&s, tool, &orig, &[(&["set", "FILE", r#"["port"]"#, "1"], None)]);
        let after = enc_lines(&std::fs::read(&f).expect("read"));
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            if b.starts_with("port:") {
                assert_ne!(b, a);
            } else {
                assert_eq!(b, a, "{}: untouched value re-encrypted", tool.name());
            }
        }
        let f = apply(
            &s,
            tool,
            &orig,
            &[(&["unset", "FILE", r#"["nested"]["list"][0]"#], None)],
        );
        let after = enc_lines(&std::fs::read(&f).expect("read"));
        let mut expected = before.clone();
        let first_item = expected
            .iter()
            .position(|l| l.trim_start().starts_with("- ENC["))
            .expect("list item");
        expected.remove(first_item);
        assert_eq!(after, expected, "{}: unset re-encrypted other values", tool.name());
    }
}

#[test]
fn set_value_file_and_stdin() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let vf = s.write("value.json", b"{\"k\": [true, \"x\"],\n \"n\": 7}\n");
    let from_file = ["set", "--value-file", "FILE", r#"["fromfile"]"#, p(&vf)];
    let steps: Vec<(&[&str], Option<&[u8]>)> = vec![
        (&from_file, None),
        (
            &["set", "--value-stdin", "FILE", r#"["fromstdin"]"#],
            Some(b"\"line1\\nline2\""),
        ),
        (
            &["set", "--value-stdin", "FILE", r#"["nested"]["token"]"#],
            Some(b"  42.5  \n"),
        ),
    ];
    let (plain, _) = compare(&s, &orig, &steps);
    assert!(
        plain.contains("fromfile:\n    k:\n        - true\n        - x\n    \"n\": 7\n"),
        "{plain}"
    );
    assert!(plain.contains("fromstdin: |-\n    line1\n    line2\n"), "{plain}");
    assert!(plain.contains("token: 42.5\n"), "{plain}");
}

#[test]
fn set_idempotent_compares_typed_values() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    for tool in BOTH {
        let target = s.path(&format!("{}.yaml", tool.name()));
        std::fs::copy(&orig, &target).expect("copy");
        let before = std::fs::read(&target).expect("read");
        // Same string: no write at all.
        ok(
            &run(
                &s,
                tool,
                &["set", "--idempotent", p(&target), r#"["name"]"#, r#""service""#],
            ),
            tool.name(),
        );
        ok(
            &run(&s, tool, &["unset", "--idempotent", p(&target), r#"["missing"]"#]),
            tool.name(),
        );
        ok(
            &run(
                &s,
                tool,
                &["unset", "--idempotent", p(&target), r#"["nested"]["list"][9]"#],
            ),
            tool.name(),
        );
        assert!(
            std::fs::read(&target).expect("read") == before,
            "{}: file written",
            tool.name()
        );
        // 5432 (JSON float) over the int 5432 is a change: the type becomes float.
        std::fs::copy(&orig, &target).expect("copy");
        ok(
            &run(&s, tool, &["set", "--idempotent", p(&target), r#"["port"]"#, "5432"]),
            tool.name(),
        );
        let file = text(&std::fs::read(&target).expect("read"));
        let port = file.lines().find(|l| l.starts_with("port:")).expect("port line");
        assert!(port.ends_with("type:float]"), "{}: {port}", tool.name());
    }
}

#[test]
fn unset_keys_and_indices() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let steps: Vec<(&[&str], Option<&[u8]>)> = vec![
        (&["unset", "FILE", r#"["flag"]"#], None),
        (&["unset", "FILE", r#"["nested"]["list"][0]"#], None),
        (&["unset", "FILE", r#"['nested']['token']"#], None),
    ];
    let (plain, _) = compare(&s, &orig, &steps);
    assert_eq!(plain, "name: service\nport: 5432\nnested:\n    list:\n        - two\n");
}

#[test]
fn set_and_unset_errors_match_sops() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let t = s.path("t.yaml");
    let tp = p(&t);
    let reset = || {
        std::fs::copy(&orig, &t).expect("copy");
    };
    let vf = s.write("v.json", b"1");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        // Arity.
        (vec!["set", tp, r#"["a"]"#], 100),
        (vec!["set", tp], 100),
        (vec!["set", tp, r#"["a"]"#, "1", "extra"], 100),
        (vec!["set", "--value-stdin", tp, r#"["a"]"#, "1"], 100),
        (vec!["unset", tp], 100),
        (vec!["unset", tp, r#"["a"]"#, "x"], 100),
        (vec!["set", "--value-file", "--value-stdin", tp, r#"["a"]"#, p(&vf)], 1),
        // Bad paths and values.
        (vec!["set", tp, r#"["a""#, "1"], 7),
        (vec!["set", tp, "[x]", "1"], 7),
        (vec!["set", tp, r#"["a"]"#, "[1, 2]"], 7),
        (vec!["set", tp, r#"["a"]"#, "{bad"], 7),
        (vec!["set", tp, r#"["a"]"#, "bare"], 7),
        (vec!["unset", tp, r#"["a""#], 7),
        // Missing keys and indices.
        (vec!["unset", tp, r#"["missing"]"#], 1),
        (vec!["unset", tp, r#"["nested"]["list"][5]"#], 1),
        (vec!["unset", tp, r#"["nested"]["nope"]["x"]"#], 1),
        (vec!["unset", tp, r#"["port"]["x"]"#], 1),
        (vec!["unset", tp, r#"["name"][0]"#], 1),
        (vec!["unset", tp, r#"["nested"][0]"#], 1),
        // Missing files.
        (vec!["set", "missing.yaml", r#"["a"]"#, "1"], 2),
        (vec!["unset", "missing.yaml", r#"["a"]"#], 2),
        (vec!["set", "--value-file", tp, r#"["a"]"#, "missing.json"], 1),
    ];
    for (args, code) in cases {
        let what = args.join(" ");
        let (theirs, _) = same_failure(&s, &args, &reset, &what);
        assert_eq!(theirs.status.code(), Some(code), "{what}: sops's exit code changed");
        assert_eq!(
            std::fs::read(&t).expect("read"),
            std::fs::read(&orig).expect("read"),
            "{what}"
        );
    }
}
