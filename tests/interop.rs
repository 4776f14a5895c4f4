//! Side-by-side tests against the real sops 3.11, in both directions:
//! - rsops decrypts every file sops encrypts, byte-identical to `sops decrypt`;
//! - sops decrypts (MAC verified) every file rsops encrypts, to the same plaintext;
//! - both encrypt the same input to the same structure (keys, order, types,
//!   comments, plain values, metadata fields), differing only in random bytes.

mod common;

use common::gen;
use common::{normalize_encrypted, ok, text, Scratch};
use std::path::{Path, PathBuf};

fn corpus(ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/corpus exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Compare both tools on one plaintext input with extra encrypt flags.
/// Returns a description of every mismatch.
fn compare(s: &Scratch, name: &str, input: &[u8], enc_flags: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let plain = s.write(name, input);
    let plain = plain.to_str().expect("utf8 path");
    let mut args = vec!["encrypt", "--age", &s.recipient];
    args.extend_from_slice(enc_flags);
    args.push(plain);

    let sops_enc = s.sops(&args);
    if !sops_enc.status.success() {
        // Inputs sops rejects must be rejected by rsops with the same code.
        let ours = s.rsops(&args);
        if ours.status.code() != sops_enc.status.code() {
            problems.push(format!(
                "{name}: sops failed to encrypt (exit {:?}: {}), rsops exit {:?}",
                sops_enc.status.code(),
                text(&sops_enc.stderr).trim(),
                ours.status.code()
            ));
        }
        return problems;
    }
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("bin");
    let sops_file = s.write(&format!("sops-{name}.{ext}"), &sops_enc.stdout);
    let expected = ok(&s.sops(&["decrypt", sops_file.to_str().expect("utf8")]), "sops decrypt");

    // rsops reads what sops writes.
    let ours = s.rsops(&["decrypt", sops_file.to_str().expect("utf8")]);
    if !ours.status.success() {
        problems.push(format!(
            "{name}: rsops cannot decrypt sops's file: {}",
            text(&ours.stderr).trim()
        ));
    } else if ours.stdout != expected {
        problems.push(format!(
            "{name}: rsops decrypt differs from sops decrypt\n--- sops\n{}\n--- rsops\n{}",
            text(&expected),
            text(&ours.stdout)
        ));
    }

    // sops reads what rsops writes.
    let rs_enc = s.rsops(&args);
    if !rs_enc.status.success() {
        problems.push(format!("{name}: rsops cannot encrypt: {}", text(&rs_enc.stderr).trim()));
        return problems;
    }
    let rs_file = s.write(&format!("rsops-{name}.{ext}"), &rs_enc.stdout);
    let theirs = s.sops(&["decrypt", rs_file.to_str().expect("utf8")]);
    if !theirs.status.success() {
        problems.push(format!(
            "{name}: sops cannot decrypt rsops's file: {}",
            text(&theirs.stderr).trim()
        ));
    } else if theirs.stdout != expected
        // Comments sops leaves encrypted on decrypt (go-yaml moves some
        // comments where its walk does not see them) keep their random bytes.
        && normalize_encrypted(&text(&theirs.stdout)) != normalize_encrypted(&text(&expected))
    {
        problems.push(format!(
            "{name}: sops decrypt of rsops's file differs\n--- expected\n{}\n--- got\n{}",
            text(&expected),
            text(&theirs.stdout)
        ));
    }

    // Same structure once random bytes are masked. sops 3.11 writes the INI
    // metadata section in random order, so compare it as a set of lines.
    let canonical = |t: &str| {
        let t = normalize_encrypted(t);
        match (ext, t.find("[sops]\n")) {
            ("ini", Some(at)) => {
                let mut meta: Vec<&str> = t[at..].lines().collect();
                meta.sort();
                format!("{}{}", &t[..at], meta.join("\n"))
            }
            _ => t,
        }
    };
    let a = canonical(&text(&sops_enc.stdout));
    let b = canonical(&text(&rs_enc.stdout));
    if a != b {
        problems.push(format!(
            "{name}: encrypted structure differs\n--- sops\n{a}\n--- rsops\n{b}"
        ));
    }
    problems
}

fn assert_no_problems(problems: Vec<String>, total: usize) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in {total} cases:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Every corpus file with the given extension, both ways.
fn check_corpus(ext: &str) {
    let s = Scratch::new();
    let files = corpus(ext);
    assert!(!files.is_empty(), "no .{ext} corpus files");
    let mut problems = Vec::new();
    for f in &files {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        problems.extend(compare(&s, &name, &std::fs::read(f).expect("read corpus"), &[]));
    }
    assert_no_problems(problems, files.len());
}

/// 40 seeded generated documents, both ways.
fn check_generated(ext: &str, generate: fn(u64) -> String) {
    let s = Scratch::new();
    let n = 40;
    let mut problems = Vec::new();
    for seed in 0..n {
        problems.extend(compare(&s, &format!("gen{seed}.{ext}"), generate(seed).as_bytes(), &[]));
    }
    assert_no_problems(problems, n as usize);
}

#[test]
fn yaml_corpus_matches_sops_both_ways() {
    check_corpus("yaml");
}

#[test]
fn generated_yaml_matches_sops_both_ways() {
    check_generated("yaml", gen::yaml_document);
}

#[test]
fn json_corpus_matches_sops_both_ways() {
    check_corpus("json");
}

#[test]
fn generated_json_matches_sops_both_ways() {
    check_generated("json", gen::json_document);
}

#[test]
fn dotenv_and_ini_corpus_match_sops_both_ways() {
    let s = Scratch::new();
    let mut problems = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stores");
    let mut total = 0;
    for (dir, ext) in [("dotenv", "env"), ("ini", "ini")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .expect("corpus dir")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == ext)) {
            total += 1;
            let name = f.file_name().expect("name").to_string_lossy().into_owned();
            problems.extend(compare(&s, &name, &std::fs::read(f).expect("read corpus"), &[]));
        }
    }
    assert!(total >= 8, "too few dotenv/ini corpus files");
    assert_no_problems(problems, total);
}

#[test]
fn selector_flags_match_sops() {
    let s = Scratch::new();
    let input = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/selectors.yaml"))
        .expect("selectors corpus file");
    let mut problems = Vec::new();
    let cases: &[&[&str]] = &[
        &["--unencrypted-suffix", "_plain"],
        &["--encrypted-suffix", "_secret"],
        &["--unencrypted-regex", "^(name|port)"],
        &["--encrypted-regex", "^pass"],
        &["--encrypted-regex", "^nested$"],
        &["--unencrypted-regex", ".*"],
    ];
    for (i, flags) in cases.iter().enumerate() {
        problems.extend(compare(&s, &format!("sel{i}.yaml"), &input, flags));
    }
    assert_no_problems(problems, cases.len());
}

#[test]
fn config_selectors_and_mac_only_encrypted_match_sops() {
    let s = Scratch::new();
    let input = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/selectors.yaml"))
        .expect("selectors corpus file");
    let rules = [
        "encrypted_regex: ^pass\n    mac_only_encrypted: true",
        "unencrypted_comment_regex: public",
        "encrypted_comment_regex: sops:enc",
        "unencrypted_suffix: _plain\n    mac_only_encrypted: true",
    ];
    let mut problems = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let cfg = format!("creation_rules:\n  - path_regex: cfg{i}\\.yaml$\n    {rule}\n");
        s.write(".sops.yaml", cfg.as_bytes());
        problems.extend(compare(&s, &format!("cfg{i}.yaml"), &input, &[]));
    }
    std::fs::remove_file(s.path(".sops.yaml")).expect("remove config");
    assert_no_problems(problems, rules.len());
}

#[test]
fn output_type_conversion_matches_sops() {
    let s = Scratch::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus");
    let mut problems = Vec::new();
    for (file, out_type) in [("basic.yaml", "json"), ("types.json", "yaml"), ("nested.yaml", "json")] {
        let input = std::fs::read(dir.join(file)).expect("corpus file");
        let plain = s.write(file, &input);
        let enc = ok(
            &s.sops(&["encrypt", "--age", &s.recipient, plain.to_str().unwrap()]),
            "sops encrypt",
        );
        let enc_file = s.write(&format!("enc-{file}"), &enc);
        let enc_path = enc_file.to_str().unwrap();
        let expected = ok(
            &s.sops(&["decrypt", "--output-type", out_type, enc_path]),
            "sops decrypt",
        );
        let ours = s.rsops(&["decrypt", "--output-type", out_type, enc_path]);
        if ours.stdout != expected {
            problems.push(format!(
                "{file} -> {out_type}: differs (rsops exit {:?}: {})\n--- sops\n{}\n--- rsops\n{}",
                ours.status.code(),
                text(&ours.stderr),
                text(&expected),
                text(&ours.stdout)
            ));
        }
        // Encrypting with conversion too.
        let sops_conv = ok(
            &s.sops(&[
                "encrypt",
                "--age",
                &s.recipient,
                "--output-type",
                out_type,
                plain.to_str().unwrap(),
            ]),
            "sops encrypt --output-type",
        );
        let ours = s.rsops(&[
            "encrypt",
            "--age",
            &s.recipient,
            "--output-type",
            out_type,
            plain.to_str().unwrap(),
        ]);
        if normalize_encrypted(&text(&ours.stdout)) != normalize_encrypted(&text(&sops_conv)) {
            problems.push(format!(
                "encrypt {file} -> {out_type}: structure differs\n--- sops\n{}\n--- rsops\n{}{}",
                text(&sops_conv),
                text(&ours.stdout),
                text(&ours.stderr)
            ));
        }
    }
    assert_no_problems(problems, 3);
}

#[test]
fn extract_matches_sops() {
    let s = Scratch::new();
    let input =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/nested.yaml")).expect("corpus file");
    let plain = s.write("nested.yaml", &input);
    let enc = ok(
        &s.sops(&["encrypt", "--age", &s.recipient, plain.to_str().unwrap()]),
        "sops encrypt",
    );
    let enc_file = s.write("enc.yaml", &enc);
    let enc_path = enc_file.to_str().unwrap();
    let mut problems = Vec::new();
    for (path, out_type) in [
        (r#"["db"]"#, None),
        (r#"["db"]["password"]"#, None),
        (r#"["db"]["port"]"#, None),
        (r#"["db"]["port"]"#, Some("json")),
        (r#"["hosts"]"#, None),
        (r#"["hosts"]"#, Some("json")),
        (r#"["hosts"][1]"#, None),
        (r#"["db"]"#, Some("json")),
        (r#"["missing"]"#, None),
        (r#"["hosts"][9]"#, None),
        (r#"["db"][0]"#, None),
        (r#"["db"][1]"#, Some("json")),
        (r#"["db"#, None),
    ] {
        let mut args = vec!["decrypt", "--extract", path];
        if let Some(t) = out_type {
            args.extend(["--output-type", t]);
        }
        args.push(enc_path);
        let theirs = s.sops(&args);
        let ours = s.rsops(&args);
        if theirs.status.code() != ours.status.code() || theirs.stdout != ours.stdout {
            problems.push(format!(
                "--extract {path} {out_type:?}: sops exit {:?} {:?}, rsops exit {:?} {:?} ({})",
                theirs.status.code(),
                text(&theirs.stdout),
                ours.status.code(),
                text(&ours.stdout),
                text(&ours.stderr).trim()
            ));
        }
    }
    assert_no_problems(problems, 13);
}

#[test]
fn binary_files_round_trip_both_ways() {
    let s = Scratch::new();
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"\n\r\n\0 trailing");
    let mut problems = Vec::new();
    for (name, content) in [
        ("blob.bin", data.clone()),
        ("empty.bin", Vec::new()),
        ("text.txt", b"hello\n".to_vec()),
    ] {
        let p = s.write(name, &content);
        let p = p.to_str().unwrap();
        let sops_enc = s.write(
            &format!("{name}.sops"),
            &ok(&s.sops(&["encrypt", "--age", &s.recipient, p]), "sops encrypt"),
        );
        let ours = ok(
            &s.rsops(&["decrypt", "--input-type", "binary", sops_enc.to_str().unwrap()]),
            "rsops decrypt",
        );
        if ours != content {
            problems.push(format!("{name}: rsops decrypt of sops binary file differs"));
        }
        let rs_enc = ok(&s.rsops(&["encrypt", "--age", &s.recipient, p]), "rsops encrypt");
        let rs_file = s.write(&format!("{name}.rsops"), &rs_enc);
        let theirs = ok(
            &s.sops(&["decrypt", "--input-type", "binary", rs_file.to_str().unwrap()]),
            "sops decrypt",
        );
        if theirs != content {
            problems.push(format!("{name}: sops decrypt of rsops binary file differs"));
        }
        let sops_text = text(&std::fs::read(&sops_enc).unwrap());
        if normalize_encrypted(&sops_text) != normalize_encrypted(&text(&rs_enc)) {
            problems.push(format!("{name}: structure differs\n{sops_text}\n{}", text(&rs_enc)));
        }
    }
    assert_no_problems(problems, 3);
}

/// A file encrypted for several recipients and for Shamir key groups by sops
/// decrypts with rsops using any sufficient identity.
#[test]
fn multiple_recipients_and_key_groups_from_sops() {
    let s = Scratch::new();
    let k2 = s.path("k2.txt");
    let r2 = common::new_age_key(&k2);
    let k3 = s.path("k3.txt");
    let r3 = common::new_age_key(&k3);
    let plain = s.write("m.yaml", b"secret: value\nnum: 1\n");
    // Two recipients in one group: either identity works.
    let enc = ok(
        &s.sops(&[
            "encrypt",
            "--age",
            &format!("{},{r2}", s.recipient),
            plain.to_str().unwrap(),
        ]),
        "sops encrypt",
    );
    let enc_file = s.write("m.enc.yaml", &enc);
    for key in [s.key_file.clone(), k2.clone()] {
        let out = s
            .cmd(&common::rsops())
            .env("SOPS_AGE_KEY_FILE", &key)
            .args(["decrypt", enc_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(text(&ok(&out, "rsops decrypt")), "secret: value\nnum: 1\n");
    }
    // Three groups, threshold 2.
    let cfg = format!(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{r2}]\n      - age: [{r3}]\n",
        s.recipient
    );
    s.write(".sops.yaml", cfg.as_bytes());
    let enc = ok(
        &s.sops(&["encrypt", plain.to_str().unwrap()]),
        "sops encrypt with groups",
    );
    std::fs::remove_file(s.path(".sops.yaml")).unwrap();
    let enc_file = s.write("g.enc.yaml", &enc);
    let both = format!(
        "{}\n{}",
        std::fs::read_to_string(&s.key_file).unwrap(),
        std::fs::read_to_string(&k3).unwrap()
    );
    let out = s
        .cmd(&common::rsops())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env("SOPS_AGE_KEY", &both)
        .args(["decrypt", enc_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(text(&ok(&out, "rsops decrypt 2-of-3")), "secret: value\nnum: 1\n");
    // One group only is not enough: sops's failure report and exit code.
    let out = s
        .cmd(&common::rsops())
        .env("SOPS_AGE_KEY_FILE", &k2)
        .args(["decrypt", enc_file.to_str().unwrap()])
        .output()
        .unwrap();
    let theirs = s
        .cmd(&common::sops_ref())
        .env("SOPS_AGE_KEY_FILE", &k2)
        .args(["decrypt", enc_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128));
    assert_eq!(out.status.code(), theirs.status.code());
    assert!(text(&out.stderr).contains("Group 1: SUCCESS"), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("encrypted with a Shamir threshold of\n2, but only 1 part(s)"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

/// The complete file fixture of spec §13.2, written by sops, decrypts with
/// the documented test identity.
#[test]
fn spec_fixture_decrypts() {
    let s = Scratch::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors");
    let key = dir.join("spec-13-2.agekey");
    for (file, expected) in [
        (
            "spec-13-2.enc.yaml",
            "# hi\napp:\n    password: s3cr3t\n    port: 5432\n    ratio: 0.5\n    debug: false\n    hosts:\n        - h1\n",
        ),
        ("spec-13-2.enc.env", "# db\nDB_USER=admin\nDB_PASS=hunter2\nPORT_unencrypted=8080\n"),
    ] {
        let out = s.cmd(&common::rsops()).env("SOPS_AGE_KEY_FILE", &key).args(["decrypt", dir.join(file).to_str().unwrap()]).output().unwrap();
        assert_eq!(text(&ok(&out, file)), expected);
    }
}

/// Files with thousands of values take rsops's multi-threaded cipher path
/// (from 2048 leaves), and past 256 KiB its piecewise path (`pipeline`):
/// they must still match sops both ways, MAC included.
#[test]
fn large_files_match_sops_both_ways() {
    let s = Scratch::new();
    let mut yaml = String::new();
    let mut json = Vec::new();
    for seed in 0..400u64 {
        let doc = gen::yaml_document(seed);
        if !doc.contains("---") {
            yaml.push_str(&format!("s{seed}:\n"));
            for line in doc.lines() {
                yaml.push_str(&format!("  {line}\n"));
            }
        }
        json.push(format!("\"s{seed}\": {}", gen::json_document(seed).trim()));
    }
    // At least 2500 leaves whatever the generator gives.
    let filler: Vec<String> = (0..2500).map(|i| format!("\"k{i}\": [\"v{i}\", {i}]")).collect();
    json.push(format!("\"filler\": {{{}}}", filler.join(", ")));
    // Past 256 KiB the JSON goes through the piecewise path too.
    for i in 0..3000 {
        json.push(format!(
            "\"pad{i}\": {{\"text\": \"value, {{{i}}} \\\" [x]\", \"n\": [{i}, true, null]}}"
        ));
    }
    let json = format!("{{{}}}\n", json.join(",\n"));
    assert!(json.len() > 300 * 1024, "the JSON input must go piecewise");
    let mut env = String::new();
    for i in 0..12000 {
        if i % 7 == 0 {
            env.push_str(&format!("# comment {i}\n"));
        }
        match i % 5 {
            0 => env.push_str(&format!("KEY_{i}=multi\\nline = value\\n{i}\n")),
            1 => env.push_str(&format!("PORT_{i}_unencrypted={i}\n")),
            2 => env.push_str(&format!("export key_{i}=  spaced, \"quoted\" é {i}\n")),
            _ => env.push_str(&format!("KEY_{i}=value number {i}\n")),
        }
    }
    // Past 256 KiB the dotenv file goes piecewise too.
    assert!(env.len() > 300 * 1024, "the dotenv input must go piecewise");
    // Past 256 KiB the YAML goes through the piecewise path (`pipeline`).
    for i in 0..5000 {
        yaml.push_str(&format!(
            "# pad {i}\npad{i}:\n    text: \"value {i}\"\n    list:\n        - {i}\n        - x: true\n"
        ));
    }
    assert!(yaml.lines().count() > 3000, "the YAML input must be large");
    assert!(yaml.len() > 300 * 1024, "the YAML input must go piecewise");
    let mut problems = Vec::new();
    let selectors: &[&[&str]] = &[&[], &["--encrypted-regex", "^(k|key)", "--mac-only-encrypted"]];
    for (i, flags) in selectors.iter().enumerate() {
        problems.extend(compare(&s, &format!("large{i}.yaml"), yaml.as_bytes(), flags));
        problems.extend(compare(&s, &format!("large{i}.json"), json.as_bytes(), flags));
        problems.extend(compare(&s, &format!("large{i}.env"), env.as_bytes(), flags));
    }
    assert_no_problems(problems, selectors.len() * 3);
}

/// `encrypt` maps a file of 256 KiB to 4 MiB and reads a larger one piece
/// by piece (so that a large file's peak memory stays bounded): the read
/// path must match sops both ways too.
#[test]
fn files_over_4_mib_match_sops_both_ways() {
    let s = Scratch::new();
    let mut env = String::new();
    let mut i = 0;
    while env.len() <= 4 * 1024 * 1024 + 64 * 1024 {
        if i % 11 == 0 {
            env.push_str(&format!("# comment {i}\n"));
        }
        match i % 4 {
            0 => env.push_str(&format!("KEY_{i}=multi\\nline value {i} {}\n", "x".repeat(i % 90))),
            1 => env.push_str(&format!("PORT_{i}_unencrypted={i}\n")),
            _ => env.push_str(&format!("KEY_{i}=value number {i} {}\n", "y".repeat(i % 120))),
        }
        i += 1;
    }
    assert!(env.len() > 4 * 1024 * 1024, "the dotenv input must be read, not mapped");
    let problems = compare(&s, "over4mib.env", env.as_bytes(), &[]);
    assert_no_problems(problems, 1);
}

/// A piecewise encrypt wraps the data key inline for one or two age
/// recipients and on a thread of its own for more (`wrap_beside`): either
/// way sops must decrypt the file with each recipient's identity alone,
/// to what it decrypts from its own encryption of the same file.
#[test]
fn piecewise_encrypt_wraps_for_every_recipient() {
    let s = Scratch::new();
    let mut env = String::new();
    for i in 0..12000 {
        env.push_str(&format!("KEY_{i}=value number {i}\n"));
    }
    assert!(env.len() > 300 * 1024, "the dotenv input must go piecewise");
    let plain = s.write("many.env", env.as_bytes());
    let plain = plain.to_str().expect("utf8 path");
    let by_sops = ok(&s.sops(&["encrypt", "--age", &s.recipient, plain]), "sops encrypt");
    let by_sops = s.write("sops.env", &by_sops);
    let expected = ok(&s.sops(&["decrypt", by_sops.to_str().expect("utf8")]), "sops decrypt");
    for count in [2, 3] {
        let keys: Vec<(PathBuf, String)> = (0..count)
            .map(|k| {
                let file = s.path(&format!("key-{count}-{k}.txt"));
                let recipient = common::new_age_key(&file);
                (file, recipient)
            })
            .collect();
        let recipients = keys.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(",");
        let enc = ok(&s.rsops(&["encrypt", "--age", &recipients, plain]), "rsops encrypt");
        let enc = s.write(&format!("rsops-{count}.env"), &enc);
        for (file, recipient) in &keys {
            let out = s
                .cmd(&common::sops_ref())
                .env("SOPS_AGE_KEY_FILE", file)
                .args(["decrypt", enc.to_str().expect("utf8")])
                .output()
                .expect("run sops");
            let got = ok(&out, &format!("sops decrypt with {recipient} of {count}"));
            assert!(
                got == expected,
                "{count} recipients: sops decrypts the file with {recipient}'s identity differently"
            );
        }
    }
}
