//! `filestatus`, `completion`, and dotenv / INI / binary specifics through
//! the CLI, side by side with sops 3.11.

mod cmd_util;
mod common;

use cmd_util::*;
use common::{ok, text, Scratch};

const PLAINS: [(&str, &[u8]); 5] = [
    ("f.yaml", b"a: 1\nb:\n    c: x\n"),
    ("f.json", b"{\"a\": 1, \"b\": {\"c\": \"x\"}}"),
    ("f.env", b"A=1\n#c\nB=two\n"),
    ("f.ini", b"[s]\nk = v\n"),
    ("f.bin", b"raw\x00bytes\xff"),
];

/// rsops's JSON errors add ` (line N, column M)` (a deliberate difference:
/// sops's JSON errors give no position).
fn without_position(msg: &str) -> String {
    regex::Regex::new(r" \(line \d+, column \d+\)$")
        .expect("static regex")
        .replace(msg, "")
        .into_owned()
}

#[test]
fn filestatus_every_format() {
    let s = Scratch::new();
    for (name, plain) in PLAINS {
        let plain_file = s.write(&format!("plain-{name}"), plain);
        let enc = sops_encrypt(&s, name, plain);
        for (file, expected) in [
            (&enc, "{\"encrypted\":true}\n"),
            (&plain_file, "{\"encrypted\":false}\n"),
        ] {
            let mut outs = Vec::new();
            for tool in BOTH {
                let mut args = vec!["filestatus"];
                // A plain binary file has no extension-derived format to probe.
                if file == &plain_file {
                    let ext = name.rsplit('.').next().unwrap_or("");
                    let ty = match ext {
                        "yaml" => "yaml",
                        "json" => "json",
                        "env" => "dotenv",
                        "ini" => "ini",
                        _ => "binary",
                    };
                    args.extend(["--input-type", ty]);
                }
                args.push(p(file));
                outs.push(run(&s, tool, &args));
            }
            assert_eq!(
                outs[1].status.code(),
                outs[0].status.code(),
                "{name}: {}",
                text(&outs[1].stderr)
            );
            assert_eq!(text(&outs[1].stdout), text(&outs[0].stdout), "{name}");
            if outs[0].status.success() {
                assert_eq!(text(&outs[1].stdout), expected, "{name}");
            } else {
                assert_eq!(
                    without_position(&message(&outs[1].stderr)),
                    message(&outs[0].stderr),
                    "{name}"
                );
            }
        }
    }
    // A plain binary file named .bin is probed as JSON by both: an error.
    let bin = s.write("raw.bin", b"not json");
    let theirs = run(&s, Tool::Sops, &["filestatus", p(&bin)]);
    let ours = run(&s, Tool::Rsops, &["filestatus", p(&bin)]);
    assert_eq!(theirs.status.code(), Some(1));
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(without_position(&message(&ours.stderr)), message(&theirs.stderr));
    same_failure(&s, &["filestatus", "missing.yaml"], &|| {}, "missing file");
    let broken = s.write("broken.yaml", b"a: [");
    same_failure(&s, &["filestatus", p(&broken)], &|| {}, "broken yaml");
}

#[test]
fn completion_scripts() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(&run(&s, Tool::Rsops, &["completion", shell]), shell);
        let script = text(&out);
        assert!(script.len() > 200, "{shell}: script too short");
        for cmd in [
            "encrypt",
            "decrypt",
            "edit",
            "rotate",
            "set",
            "unset",
            "updatekeys",
            "groups",
            "exec-env",
            "exec-file",
            "filestatus",
        ] {
            assert!(script.contains(cmd), "{shell}: {cmd} missing");
        }
    }
    let bash = s.write("c.bash", &ok(&run(&s, Tool::Rsops, &["completion", "bash"]), "bash"));
    let check = std::process::Command::new(common::require_tool("bash"))
        .arg("-n")
        .arg(&bash)
        .output()
        .expect("bash -n");
    assert!(
        check.status.success(),
        "bash completion does not parse: {}",
        text(&check.stderr)
    );
    // sops itself has bash and zsh.
    for shell in ["bash", "zsh"] {
        ok(&run(&s, Tool::Sops, &["completion", shell]), shell);
    }
}

#[test]
fn dotenv_output_from_yaml() {
    let s = Scratch::new();
    let flat = sops_encrypt(
        &s,
        "flat.yaml",
        b"A: 1\nB: 1.5e6\nC: true\nS: \"x y\"\nM: |-\n    l1\n    l2\n#c\n",
    );
    let nested = sops_encrypt(&s, "nested.yaml", b"A: 1\nN:\n    d: 1\n");
    let list = sops_encrypt(&s, "list.yaml", b"A: 1\nL:\n    - 1\n");
    let mut outs = Vec::new();
    for tool in BOTH {
        outs.push(ok(
            &run(&s, tool, &["decrypt", "--output-type", "dotenv", p(&flat)]),
            tool.name(),
        ));
    }
    assert_eq!(text(&outs[1]), text(&outs[0]));
    assert_eq!(text(&outs[1]), "A=1\nB=1.5E+06\nC=true\nS=x y\nM=l1\\nl2\n#c\n");
    for f in [&nested, &list] {
        let (theirs, _) = same_failure(
            &s,
            &["decrypt", "--output-type", "dotenv", p(f)],
            &|| {},
            "nested dotenv",
        );
        assert_eq!(theirs.status.code(), Some(4));
    }
    let (theirs, ours) = same_failure(&s, &["decrypt", "--output-type", "ini", p(&flat)], &|| {}, "flat ini");
    assert_eq!(theirs.status.code(), Some(4));
    assert!(ours.stdout.is_empty());
    // YAML made of mappings converts to INI sections.
    let sections = sops_encrypt(
        &s,
        "sections.yaml",
        b"S1:\n    a: 1\n    long_key: 2.5\nS2:\n    b: x y\n",
    );
    let mut outs = Vec::new();
    for tool in BOTH {
        outs.push(ok(
            &run(&s, tool, &["decrypt", "--output-type", "ini", p(&sections)]),
            tool.name(),
        ));
    }
    assert_eq!(text(&outs[1]), text(&outs[0]));
    assert_eq!(text(&outs[1]), "[S1]\na        = 1\nlong_key = 2.5\n\n[S2]\nb = x y\n");
}

/// INI and dotenv files with flattened metadata, one group and Shamir key
/// groups: each tool reads what the other writes, and `set` keeps working.
#[test]
fn flat_formats_round_trip_both_ways() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2"]);
    let all = key_file(&s, "all.agekey", &[&s.key_file, &keys[0].1]);
    let env = [("SOPS_AGE_KEY_FILE", p(&all))];
    let config = s.write(
        "groups.yaml",
        format!(
            "creation_rules:\n  - path_regex: .*\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n",
            s.recipient, keys[0].0
        )
        .as_bytes(),
    );
    let inputs: [(&str, &[u8]); 2] = [
        (
            "f.ini",
            b"; top\nglobal = g\n[sec one]\nkey = value with spaces\n; c2\nnum = 42\n\n[other]\nx = \"quoted\"\n",
        ),
        ("f.env", b"FOO=bar baz\nMULTI=a\\nb\n#comment\nNUM=1\n"),
    ];
    for (name, plain) in inputs {
        let plain_file = s.write(&format!("plain-{name}"), plain);
        for groups in [false, true] {
            let mut files = Vec::new();
            for tool in BOTH {
                let args: Vec<&str> = if groups {
                    vec!["--config", p(&config), "encrypt", p(&plain_file)]
                } else {
                    vec!["encrypt", "--age", &s.recipient, p(&plain_file)]
                };
                let enc = ok(&run_with(&s, tool, &args, &env, None), tool.name());
                let t = text(&enc);
                if name.ends_with("ini") {
                    assert!(t.contains("\n[sops]\n"), "{t}");
                } else {
                    assert!(t.contains("\nsops_version="), "{t}");
                }
                if groups {
                    assert!(t.contains("key_groups__list_1__map_age__list_0__map_recipient"), "{t}");
                }
                let f = s.write(&format!("{}-{groups}-{name}", tool.name()), &enc);
                files.push(f);
            }
            let a = decrypt_both(&s, &files[0], &env);
            let b = decrypt_both(&s, &files[1], &env);
            assert_eq!(text(&a), text(&b), "{name} groups={groups}");
            // set through the CLI on a file written by the other tool.
            let path = if name.ends_with("ini") {
                r#"["other"]["x"]"#
            } else {
                r#"["FOO"]"#
            };
            for (tool, f) in [(Tool::Rsops, &files[0]), (Tool::Sops, &files[1])] {
                ok(
                    &run_with(&s, tool, &["set", p(f), path, r#""changed""#], &env, None),
                    tool.name(),
                );
                assert!(text(&decrypt_both(&s, f, &env)).contains("changed"), "{name}");
            }
        }
    }
}

#[test]
fn binary_files() {
    let s = Scratch::new();
    let data: &[u8] = b"\x00\x01binary\xffdata\n\n";
    let plain = s.write("blob.bin", data);
    let mut files = Vec::new();
    for tool in BOTH {
        let enc = ok(
            &run(&s, tool, &["encrypt", "--age", &s.recipient, p(&plain)]),
            tool.name(),
        );
        let t = text(&enc);
        assert!(!t.contains("unencrypted_suffix"), "{t}");
        files.push(s.write(&format!("{}.bin", tool.name()), &enc));
    }
    for f in &files {
        assert_eq!(decrypt_both(&s, f, &[]), data);
        for tool in BOTH {
            let out = ok(
                &run(&s, tool, &["decrypt", "--extract", r#"["data"]"#, p(f)]),
                tool.name(),
            );
            assert_eq!(out, data);
        }
        same_failure(
            &s,
            &["decrypt", "--extract", r#"["data"][0]"#, p(f)],
            &|| {},
            "extract index",
        );
    }
    // Empty binary input.
    let empty = s.write("empty.bin", b"");
    let mut outs = Vec::new();
    for tool in BOTH {
        let enc = ok(
            &run(&s, tool, &["encrypt", "--age", &s.recipient, p(&empty)]),
            tool.name(),
        );
        assert!(text(&enc).contains("\"data\": \"\""), "{}", text(&enc));
        let f = s.write(&format!("empty-{}.bin", tool.name()), &enc);
        outs.push(decrypt_both(&s, &f, &[]));
    }
    assert!(outs.iter().all(|o| o.is_empty()));
}
