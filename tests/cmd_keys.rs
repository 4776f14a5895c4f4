//! Commands that change keys, side by side with sops 3.11: `rotate` (and
//! legacy `-r`), `updatekeys`, `groups add/delete`, and key groups with
//! Shamir secret sharing in both directions (spec §6).

mod cmd_util;
mod common;

use cmd_util::*;
use common::{normalize_encrypted, ok, text, Scratch};
use std::path::{Path, PathBuf};

const PLAIN: &str = "\
user: admin
password: hunter2
port: 5432
items:
    - one
    - 2.5
";

/// The wrapped data key entries (`enc` blocks) of a YAML file.
fn wrapped_keys(file: &str) -> Vec<String> {
    let re = regex::Regex::new(r"-----BEGIN AGE ENCRYPTED FILE-----[^-]*-----END AGE ENCRYPTED FILE-----")
        .expect("static regex");
    re.find_iter(file).map(|m| m.as_str().to_string()).collect()
}

fn mac(file: &str) -> String {
    file.lines()
        .find(|l| l.trim_start().starts_with("mac: "))
        .expect("mac line")
        .to_string()
}

/// The part of a YAML file before `sops:`.
fn values(file: &str) -> &str {
    &file[..file.find("\nsops:").expect("sops block")]
}

/// Remove the metadata and wrapped keys so structures can be compared.
fn structure(file: &str) -> String {
    normalize_encrypted(file)
}

#[test]
fn rotate_creates_a_new_data_key() {
    let s = Scratch::new();
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let orig_text = text(&std::fs::read(&orig).expect("read"));
    let mut outs = Vec::new();
    for tool in BOTH {
        let rotated = ok(
            &run(&s, tool, &["rotate", p(&orig)]),
            &format!("{} rotate", tool.name()),
        );
        let rotated_text = text(&rotated);
        assert_ne!(
            wrapped_keys(&rotated_text),
            wrapped_keys(&orig_text),
            "{}: same data key",
            tool.name()
        );
        let orig_lines = enc_lines(orig_text.as_bytes());
        let new_lines = enc_lines(rotated.as_slice());
        assert_eq!(orig_lines.len(), new_lines.len());
        for (a, b) in orig_lines.iter().zip(&new_lines) {
            assert_ne!(a, b, "{}: value not re-encrypted", tool.name());
        }
        let f = s.write(&format!("rotated-{}.yaml", tool.name()), &rotated);
        assert_eq!(text(&decrypt_both(&s, &f, &[])), PLAIN);
        outs.push(rotated_text);
    }
    assert_eq!(structure(&outs[1]), structure(&outs[0]));
    // Legacy -r: the same.
    let legacy = ok(&run(&s, Tool::Rsops, &["-r", p(&orig)]), "rsops -r");
    let f = s.write("legacy.yaml", &legacy);
    assert_ne!(wrapped_keys(&text(&legacy)), wrapped_keys(&orig_text));
    assert_eq!(text(&decrypt_both(&s, &f, &[])), PLAIN);
    assert_eq!(structure(&text(&legacy)), structure(&outs[0]));
}

#[test]
fn rotate_adds_and_removes_age_keys() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2", "k3"]);
    let (r2, f2) = (&keys[0].0, &keys[0].1);
    let (r3, f3) = (&keys[1].0, &keys[1].1);
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    for tool in BOTH {
        let name = tool.name();
        let t = s.path(&format!("{name}.yaml"));
        std::fs::copy(&orig, &t).expect("copy");
        // -i with --add-age: now readable with k2 alone.
        ok(
            &run(&s, tool, &["rotate", "-i", "--add-age", &format!("{r2},{r3}"), p(&t)]),
            name,
        );
        let k2 = [("SOPS_AGE_KEY_FILE", p(f2))];
        assert_eq!(text(&decrypt_both(&s, &t, &k2)), PLAIN);
        // --rm-age of the original key and k3, reading with k2, to --output.
        let out = s.path(&format!("{name}-out.yaml"));
        ok(
            &run_with(
                &s,
                tool,
                &[
                    "rotate",
                    "--rm-age",
                    &format!("{},{r3}", s.recipient),
                    "--output",
                    p(&out),
                    p(&t),
                ],
                &k2,
                None,
            ),
            name,
        );
        let out_text = text(&std::fs::read(&out).expect("output written"));
        assert_eq!(out_text.matches("recipient: ").count(), 1, "{name}: {out_text}");
        assert!(out_text.contains(&format!("recipient: {r2}")), "{name}");
        assert_eq!(text(&decrypt_both(&s, &out, &k2)), PLAIN);
        for k in [s.key_file.as_path(), f3.as_path()] {
            let o = run_with(&s, tool, &["decrypt", p(&out)], &[("SOPS_AGE_KEY_FILE", p(k))], None);
            assert_eq!(o.status.code(), Some(128), "{name}: removed key still decrypts");
        }
    }
    // Conflicting and impossible requests.
    let t = s.path("t.yaml");
    std::fs::copy(&orig, &t).expect("copy");
    same_failure(
        &s,
        &["rotate", "-i", "--output", "x.yaml", p(&t)],
        &|| {},
        "-i and --output",
    );
    same_failure(
        &s,
        &["rotate", "--add-age", r2, "missing.yaml"],
        &|| {},
        "add on missing file",
    );
    same_failure(&s, &["rotate", "missing.yaml"], &|| {}, "missing file");
    same_failure(&s, &["-r", "missing.yaml"], &|| {}, "legacy missing file");
}

/// A data-key failure report without the per-key error details (the age
/// library's wording differs with several identities, see the report).
fn report_structure(msg: &str) -> String {
    msg.lines()
        .filter(|l| !l.starts_with("    - |") && !l.starts_with("      |"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_config(s: &Scratch, name: &str, body: &str) -> PathBuf {
    s.write(name, body.as_bytes())
}

#[test]
fn updatekeys_output_and_effect_match_sops() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2"]);
    let r2 = &keys[0].0;
    let config = write_config(
        &s,
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: .*\n    age: {},{r2}\n", s.recipient),
    );
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let orig_text = text(&std::fs::read(&orig).expect("read"));
    let mut outs = Vec::new();
    for tool in BOTH {
        let t = s.path(&format!("{}.yaml", tool.name()));
        std::fs::copy(&orig, &t).expect("copy");
        let out = run(&s, tool, &["updatekeys", "-y", p(&t)]);
        ok(&out, tool.name());
        let t_text = text(&std::fs::read(&t).expect("read"));
        // Values, MAC and lastmodified untouched; the old key's entry is
        // re-wrapped, the new one added; the data key is the same (k2 alone
        // decrypts, and the MAC still verifies).
        assert_eq!(values(&t_text), values(&orig_text), "{}: values changed", tool.name());
        assert_eq!(mac(&t_text), mac(&orig_text), "{}: MAC changed", tool.name());
        assert_eq!(wrapped_keys(&t_text).len(), 2);
        assert_eq!(
            text(&decrypt_both(&s, &t, &[("SOPS_AGE_KEY_FILE", p(&keys[0].1))])),
            PLAIN
        );
        outs.push((text(&out.stdout), mask_log_time(&text(&out.stderr)), structure(&t_text)));
    }
    assert_eq!(outs[1].0, outs[0].0, "stdout differs");
    assert_eq!(
        outs[1].1.replace("rsops.yaml", "X"),
        outs[0].1.replace("sops.yaml", "X"),
        "stderr differs"
    );
    assert_eq!(outs[1].2, outs[0].2, "file structure differs");
    assert!(outs[0].0.contains(&format!("+++ {r2}")));

    // Already up to date.
    for tool in BOTH {
        let t = s.path(&format!("{}.yaml", tool.name()));
        let before = std::fs::read(&t).expect("read");
        let out = run(&s, tool, &["updatekeys", "-y", p(&t)]);
        ok(&out, tool.name());
        assert!(out.stdout.is_empty());
        assert!(
            text(&out.stderr).contains("already up to date"),
            "{}",
            text(&out.stderr)
        );
        assert!(std::fs::read(&t).expect("read") == before);
    }
    drop(config);
}

#[test]
fn updatekeys_prompt_answers() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2"]);
    write_config(
        &s,
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: .*\n    age: {},{}\n",
            s.recipient, keys[0].0
        ),
    );
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    // (stdin, file changed?)
    let cases: [(&[u8], bool); 6] = [
        (b"n\n", false),
        (b"y\n", true),
        (b"maybe\ny\n", true),
        (b"", false),
        (b"\n", false),
        (b"y n\n", false),
    ];
    for (input, changes) in cases {
        let mut results = Vec::new();
        for tool in BOTH {
            let t = s.path(&format!("{}.yaml", tool.name()));
            std::fs::copy(&orig, &t).expect("copy");
            let out = run_with(&s, tool, &["updatekeys", p(&t)], &[], Some(input));
            let changed = std::fs::read(&t).expect("read") != std::fs::read(&orig).expect("read");
            assert_eq!(changed, changes, "{} with {:?}", tool.name(), text(input));
            let err = mask_log_time(&text(&out.stderr)).replace(&format!("{}.yaml", tool.name()), "X");
            results.push((out.status.code(), text(&out.stdout), message(err.as_bytes())));
        }
        assert_eq!(results[1], results[0], "answer {:?}", text(input));
    }
}

#[test]
fn updatekeys_several_files_and_shamir_threshold() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2", "k3"]);
    let (r1, r2, r3) = (&s.recipient, &keys[0].0, &keys[1].0);
    let all = key_file(&s, "all.agekey", &[&s.key_file, &keys[0].1, &keys[1].1]);
    let env = [("SOPS_AGE_KEY_FILE", p(&all))];
    let three = write_config(
        &s,
        "three.yaml",
        &format!(
            "creation_rules:\n  - path_regex: .*\n    shamir_threshold: 3\n    key_groups:\n      - age: [{r1}]\n      - age: [{r2}]\n      - age: [{r3}]\n"
        ),
    );
    let two = write_config(
        &s,
        "two.yaml",
        &format!(
            "creation_rules:\n  - path_regex: .*\n    key_groups:\n      - age: [{r1}]\n      - age: [{r2}, {r3}]\n"
        ),
    );
    let plain = s.write("plain.yaml", PLAIN.as_bytes());
    let enc = ok(
        &run_with(
            &s,
            Tool::Sops,
            &["--config", p(&three), "encrypt", p(&plain)],
            &env,
            None,
        ),
        "sops encrypt 3 groups",
    );
    let orig = s.write("orig.yaml", &enc);
    let orig_text = text(&enc);
    let mut outs = Vec::new();
    for tool in BOTH {
        let a = s.path(&format!("a-{}.yaml", tool.name()));
        let b = s.path(&format!("b-{}.yaml", tool.name()));
        std::fs::copy(&orig, &a).expect("copy");
        std::fs::copy(&orig, &b).expect("copy");
        let out = run_with(
            &s,
            tool,
            &["--config", p(&two), "updatekeys", "-y", p(&a), p(&b), "missing.yaml"],
            &env,
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{}: {}", tool.name(), text(&out.stderr));
        assert!(text(&out.stderr).contains("failed updating 1 key(s)"));
        for f in [&a, &b] {
            let t = text(&std::fs::read(f).expect("read"));
            assert!(t.contains("shamir_threshold: 2\n"), "{}: {t}", tool.name());
            assert_eq!(values(&t), values(&orig_text));
            assert_eq!(mac(&t), mac(&orig_text));
            // 2 of 2 groups: k1 + (k2 or k3).
            let k13 = key_file(&s, "k13.agekey", &[&s.key_file, &keys[1].1]);
            assert_eq!(text(&decrypt_both(&s, f, &[("SOPS_AGE_KEY_FILE", p(&k13))])), PLAIN);
        }
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("+++ shamir_threshold: 2\n--- shamir_threshold: 3\n"),
            "{stdout}"
        );
        outs.push((stdout, structure(&text(&std::fs::read(&a).expect("read")))));
    }
    assert_eq!(outs[1].0.replace("rsops", "X"), outs[0].0.replace("sops", "X"));
    assert_eq!(outs[1].1, outs[0].1);
}

#[test]
fn groups_add_and_delete() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2", "k3"]);
    let (r2, r3) = (&keys[0].0, &keys[1].0);
    let all = key_file(&s, "all.agekey", &[&s.key_file, &keys[0].1, &keys[1].1]);
    let env = [("SOPS_AGE_KEY_FILE", p(&all))];
    let orig = sops_encrypt(&s, "orig.yaml", PLAIN.as_bytes());
    let orig_text = text(&std::fs::read(&orig).expect("read"));
    let mut added = Vec::new();
    for tool in BOTH {
        let out = run_with(
            &s,
            tool,
            &["groups", "add", "-f", p(&orig), "--age", r2, "--age", r3],
            &env,
            None,
        );
        let t = text(&ok(&out, tool.name()));
        assert!(t.contains("shamir_threshold: 2\n    key_groups:\n"), "{t}");
        assert_eq!(values(&t), values(&orig_text));
        assert_eq!(mac(&t), mac(&orig_text));
        let f = s.write(&format!("added-{}.yaml", tool.name()), t.as_bytes());
        // k1 alone no longer suffices; k1 + k3 does.
        let k1 = run(&s, tool, &["decrypt", p(&f)]);
        assert_eq!(k1.status.code(), Some(128));
        let k13 = key_file(&s, "k13.agekey", &[&s.key_file, &keys[1].1]);
        assert_eq!(text(&decrypt_both(&s, &f, &[("SOPS_AGE_KEY_FILE", p(&k13))])), PLAIN);
        // Delete group 0 in place: impossible with threshold 2 and 1 group left.
        let d = s.path(&format!("del-{}.yaml", tool.name()));
        std::fs::copy(&f, &d).expect("copy");
        added.push((structure(&t), f, d));
    }
    assert_eq!(added[1].0, added[0].0);
    let (_, f, d) = &added[1];
    let reset = || {
        std::fs::copy(f, d).expect("copy");
    };
    same_failure(
        &s,
        &["groups", "delete", "-f", p(d), "-i", "0"],
        &reset,
        "delete below threshold",
    );
    // A third group, then deleting group 1 (k2) keeps 2 groups for threshold 2.
    for tool in BOTH {
        let three = ok(
            &run_with(&s, tool, &["groups", "add", "-f", p(f), "--age", r3], &env, None),
            tool.name(),
        );
        let g3 = s.write(&format!("g3-{}.yaml", tool.name()), &three);
        ok(
            &run_with(&s, tool, &["groups", "delete", "-f", p(&g3), "-i", "1"], &env, None),
            tool.name(),
        );
        let t = text(&std::fs::read(&g3).expect("read"));
        assert!(
            !t.contains(&format!("recipient: {r2}")),
            "{}: group 1 still there",
            tool.name()
        );
        assert_eq!(text(&decrypt_both(&s, &g3, &env)), PLAIN);
    }
}

/// Key groups from `.sops.yaml`: 2-of-3 and 3-of-3, rsops encrypts and
/// sops decrypts with every subset of identities (and the reverse); an
/// insufficient subset fails with exit 128 and the same report.
#[test]
fn shamir_key_groups_both_directions() {
    let s = Scratch::new();
    let keys = extra_keys(&s, &["k2", "k3"]);
    let ids: [(&str, &Path); 3] = [("a", &s.key_file), ("b", &keys[0].1), ("c", &keys[1].1)];
    let recipients = [s.recipient.as_str(), keys[0].0.as_str(), keys[1].0.as_str()];
    let plain = s.write("plain.yaml", PLAIN.as_bytes());
    for threshold in [2usize, 3] {
        let config = write_config(
            &s,
            &format!("kg{threshold}.yaml"),
            &format!(
                "creation_rules:\n  - path_regex: .*\n    shamir_threshold: {threshold}\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
                recipients[0], recipients[1], recipients[2]
            ),
        );
        let mut files = Vec::new();
        for tool in BOTH {
            let enc = ok(
                &run(&s, tool, &["--config", p(&config), "encrypt", p(&plain)]),
                &format!("{} encrypt with key groups", tool.name()),
            );
            let t = text(&enc);
            assert!(t.contains(&format!("shamir_threshold: {threshold}\n")), "{t}");
            files.push((tool, s.write(&format!("kg{threshold}-{}.yaml", tool.name()), &enc), t));
        }
        assert_eq!(structure(&files[1].2), structure(&files[0].2));
        // Every subset of identities.
        for mask in 1u32..8 {
            let chosen: Vec<&Path> = (0..3).filter(|i| mask & (1 << i) != 0).map(|i| ids[i].1).collect();
            let name: String = (0..3).filter(|i| mask & (1 << i) != 0).map(|i| ids[i].0).collect();
            let kf = key_file(&s, &format!("subset-{name}.agekey"), &chosen);
            let env = [("SOPS_AGE_KEY_FILE", p(&kf))];
            for (writer, file, _) in &files {
                if chosen.len() >= threshold {
                    assert_eq!(
                        text(&decrypt_both(&s, file, &env)),
                        PLAIN,
                        "written by {}, keys {name}",
                        writer.name()
                    );
                } else {
                    let theirs = run_with(&s, Tool::Sops, &["decrypt", p(file)], &env, None);
                    let ours = run_with(&s, Tool::Rsops, &["decrypt", p(file)], &env, None);
                    assert_eq!(theirs.status.code(), Some(128));
                    assert_eq!(ours.status.code(), Some(128));
                    assert_eq!(
                        report_structure(&message(&ours.stderr)),
                        report_structure(&message(&theirs.stderr)),
                        "failure report differs (written by {}, keys {name})",
                        writer.name()
                    );
                }
            }
        }
    }
}
