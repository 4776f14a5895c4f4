//! Failure paths, side by side with the real sops: the same exit code, one
//! `error:` line from rsops, no plaintext in any output, and the input file
//! left byte-identical.

mod common;

use common::{ok, text, Scratch};
use std::process::Output;

const SECRET: &str = "TOPSECRETVALUE";

fn encrypted_fixture(s: &Scratch) -> (String, Vec<u8>) {
    let plain = s.write(
        "f.yaml",
        format!("password: {SECRET}\nport: 5432\nname_unencrypted: visible\nlist:\n    - {SECRET}2\n").as_bytes(),
    );
    let enc = ok(
        &s.sops(&["encrypt", "--age", &s.recipient, plain.to_str().unwrap()]),
        "sops encrypt",
    );
    (text(&enc), enc)
}

fn assert_clean_failure(out: &Output, what: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{what}: expected failure");
    assert!(
        err.starts_with("error: ") || err.starts_with("warning: "),
        "{what}: stderr should start with 'error: ': {err}"
    );
    assert!(!text(&out.stdout).contains(SECRET), "{what}: plaintext on stdout");
    assert!(!err.contains(SECRET), "{what}: plaintext on stderr: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: panic: {err}"
    );
}

/// Run both tools with the same args; assert the same exit code and a clean
/// rsops failure. Returns rsops's output.
fn both_fail_alike(s: &Scratch, args: &[&str], what: &str) -> Output {
    let theirs = s.sops(args);
    let ours = s.rsops(args);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{what}: exit codes differ (sops stderr: {}; rsops stderr: {})",
        text(&theirs.stderr).trim(),
        text(&ours.stderr).trim()
    );
    assert_clean_failure(&ours, what);
    ours
}

/// Replace one base64 character inside the first `field:` of the first
/// `ENC[` on the line starting with `line_prefix`.
fn tamper(file: &str, line_prefix: &str, field: &str) -> String {
    let mut out = Vec::new();
    let mut done = false;
    for line in file.split_inclusive('\n') {
        if !done && line.trim_start().starts_with(line_prefix) {
            let at = line.find(field).expect("field present") + field.len();
            let mut bytes = line.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            out.push(String::from_utf8(bytes).unwrap());
            done = true;
        } else {
            out.push(line.to_string());
        }
    }
    assert!(done, "no line starting with {line_prefix}");
    out.concat()
}

#[test]
fn tampered_files_are_rejected_like_sops() {
    let s = Scratch::new();
    let (enc, _) = encrypted_fixture(&s);
    let cases: Vec<(&str, String)> = vec![
        ("value data", tamper(&enc, "password:", "data:")),
        ("value iv", tamper(&enc, "password:", "iv:")),
        ("value tag", tamper(&enc, "password:", "tag:")),
        ("list element", tamper(&enc, "- ENC", "data:")),
        ("mac", tamper(&enc, "mac:", "data:")),
        ("renamed key", enc.replacen("password:", "passwort:", 1)),
        ("changed plain value", enc.replacen("visible", "visiblX", 1)),
        ("lastmodified", {
            let re = regex::Regex::new(r#"lastmodified: "(\d{4})"#).unwrap();
            re.replace(&enc, r#"lastmodified: "1999"#).into_owned()
        }),
        ("reordered keys", {
            let lines: Vec<&str> = enc.split_inclusive('\n').collect();
            let mut v = lines.clone();
            v.swap(0, 1);
            v.concat()
        }),
        ("metadata removed", enc[..enc.find("sops:").unwrap()].to_string()),
        (
            "not a sops value",
            enc.replacen("ENC[AES256_GCM,data:", "ENC[AES256_GCM,dta:", 1),
        ),
    ];
    for (what, content) in cases {
        assert_ne!(content, enc, "{what}: tamper changed nothing");
        let p = s.write("t.yaml", content.as_bytes());
        let out = both_fail_alike(&s, &["decrypt", p.to_str().unwrap()], what);
        assert_eq!(std::fs::read(&p).unwrap(), content.as_bytes(), "{what}: input changed");
        // In-place decryption must leave the file untouched on failure.
        let out_i = s.rsops(&["decrypt", "-i", p.to_str().unwrap()]);
        assert_eq!(out_i.status.code(), out.status.code(), "{what}: -i exit code");
        assert_eq!(
            std::fs::read(&p).unwrap(),
            content.as_bytes(),
            "{what}: input changed by -i"
        );
    }
    // --ignore-mac accepts a wrong MAC, as sops does.
    let p = s.write("t.yaml", tamper(&enc, "mac:", "data:").as_bytes());
    let theirs = ok(
        &s.sops(&["decrypt", "--ignore-mac", p.to_str().unwrap()]),
        "sops --ignore-mac",
    );
    let ours = ok(
        &s.rsops(&["decrypt", "--ignore-mac", p.to_str().unwrap()]),
        "rsops --ignore-mac",
    );
    assert_eq!(ours, theirs);
}

#[test]
fn wrong_key_reports_every_key_tried() {
    let s = Scratch::new();
    let (_, enc) = encrypted_fixture(&s);
    let p = s.write("w.yaml", &enc);
    let other = s.path("other.txt");
    common::new_age_key(&other);
    let ours = s
        .cmd(&common::rsops())
        .env("SOPS_AGE_KEY_FILE", &other)
        .args(["decrypt", p.to_str().unwrap()])
        .output()
        .unwrap();
    let theirs = s
        .cmd(&common::sops_ref())
        .env("SOPS_AGE_KEY_FILE", &other)
        .args(["decrypt", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), Some(128));
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_clean_failure(&ours, "wrong key");
    let err = text(&ours.stderr);
    assert!(err.contains("Group 0: FAILED"), "{err}");
    assert!(err.contains(&format!("{}: FAILED", s.recipient)), "{err}");
    assert!(err.contains("no master key was able to decrypt the file"), "{err}");
    // No identities at all: the report names the locations searched.
    let ours = s
        .cmd(&common::rsops())
        .env_remove("SOPS_AGE_KEY_FILE")
        .args(["decrypt", p.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), Some(128));
    assert!(
        text(&ours.stderr).contains("failed to load age identities"),
        "{}",
        text(&ours.stderr)
    );
}

#[test]
fn encrypt_errors_match_sops_exit_codes() {
    let s = Scratch::new();
    let r = s.recipient.clone();
    let (_, enc) = encrypted_fixture(&s);
    let already = s.write("already.yaml", &enc);
    let empty = s.write("empty.yaml", b"");
    let int_key = s.write("intkey.yaml", format!("1: {SECRET}\n").as_bytes());
    let bad_yaml = s.write("bad.yaml", format!("a: [{SECRET}\n").as_bytes());
    let bad_json = s.write("bad.json", format!("{{\"a\": \"{SECRET}\"").as_bytes());
    let top_list = s.write("list.yaml", format!("- {SECRET}\n").as_bytes());
    let dup = s.write("dup.yaml", format!("a: {SECRET}\na: 2\n").as_bytes());
    let good = s.write("good.yaml", format!("a: {SECRET}\n").as_bytes());
    let p = |x: &std::path::PathBuf| x.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "already encrypted",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&already)],
        ),
        (
            "empty file",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&empty)],
        ),
        (
            "non-string key",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&int_key)],
        ),
        (
            "invalid yaml",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&bad_yaml)],
        ),
        (
            "invalid json",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&bad_json)],
        ),
        (
            "top-level list",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&top_list)],
        ),
        (
            "duplicate keys",
            vec!["encrypt".into(), "--age".into(), r.clone(), p(&dup)],
        ),
        (
            "missing file",
            vec![
                "encrypt".into(),
                "--age".into(),
                r.clone(),
                s.path("nope.yaml").to_str().unwrap().into(),
            ],
        ),
        (
            "in-place and output",
            vec![
                "encrypt".into(),
                "-i".into(),
                "--output".into(),
                "x".into(),
                "--age".into(),
                r.clone(),
                p(&good),
            ],
        ),
        (
            "two selectors",
            vec![
                "encrypt".into(),
                "--age".into(),
                r.clone(),
                "--encrypted-regex".into(),
                "a".into(),
                "--unencrypted-suffix".into(),
                "_u".into(),
                p(&good),
            ],
        ),
        (
            "bad encryption context",
            vec![
                "encrypt".into(),
                "--age".into(),
                r.clone(),
                "--encryption-context".into(),
                "nocolon".into(),
                p(&good),
            ],
        ),
        ("no keys", vec!["encrypt".into(), p(&good)]),
        (
            "unknown recipient type",
            vec!["encrypt".into(), "--age".into(), "notakey".into(), p(&good)],
        ),
        (
            "unknown flag",
            vec!["encrypt".into(), "--no-such-flag".into(), p(&good)],
        ),
    ];
    for (what, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before: Vec<(std::path::PathBuf, Vec<u8>)> = [&already, &empty, &int_key, &bad_yaml, &good]
            .iter()
            .map(|f| ((*f).clone(), std::fs::read(f).unwrap()))
            .collect();
        both_fail_alike(&s, &args, what);
        for (f, content) in before {
            assert_eq!(std::fs::read(&f).unwrap(), content, "{what}: {} changed", f.display());
        }
    }
}

/// `encrypt` of `content` fails as with sops, to stdout with no output at
/// all and in place with the file left as it was.
fn encrypt_fails_alike(s: &Scratch, ext: &str, what: &str, content: &str) {
    let f = s.write(&format!("{}.{ext}", what.replace(' ', "-")), content.as_bytes());
    let fp = f.to_str().unwrap();
    let out = both_fail_alike(s, &["encrypt", "--age", &s.recipient, fp], what);
    assert!(out.stdout.is_empty(), "{what}: output written before the error");
    both_fail_alike(s, &["encrypt", "-i", "--age", &s.recipient, fp], what);
    assert_eq!(std::fs::read(&f).unwrap(), content.as_bytes(), "{what}: file changed");
}

/// Large YAML files are encrypted piece by piece; a problem late in the
/// file, or a key that cannot be wrapped, must give the error sops gives
/// and no output, exactly as for a small file.
#[test]
fn large_yaml_encrypt_errors_match_sops() {
    let s = Scratch::new();
    let r = s.recipient.clone();
    let mut body = String::new();
    for i in 0..6000 {
        body.push_str(&format!(
            "# entry {i}\nentry{i}:\n    user: u{i}\n    password: {SECRET}{i}\n"
        ));
    }
    assert!(body.len() > 300 * 1024, "large enough to go piecewise");
    let cases = [
        ("late sops key", format!("{body}sops:\n    version: 3.11.0\n")),
        ("late duplicate key", format!("{body}entry7: again\n")),
        ("late syntax error", format!("{body}broken: [{SECRET}\n")),
        ("late non-string key", format!("{body}1: {SECRET}\n")),
        ("late second document", format!("{body}---\n1: {SECRET}\n")),
    ];
    for (what, content) in &cases {
        encrypt_fails_alike(&s, "yaml", what, content);
    }
    // Valid YAML the piecewise loader leaves to the whole-tree path late in
    // the file (anchors): the output is sops's.
    let anchors = format!("{body}x: &a {SECRET}\ny: *a\n");
    let f = s.write("late-anchors.yaml", anchors.as_bytes());
    let enc = ok(
        &s.rsops(&["encrypt", "--age", &r, f.to_str().unwrap()]),
        "encrypt with anchors",
    );
    let encrypted = s.write("late-anchors.enc.yaml", &enc);
    let theirs = ok(&s.sops(&["decrypt", encrypted.to_str().unwrap()]), "sops decrypt");
    let sops_enc = ok(&s.sops(&["encrypt", "--age", &r, f.to_str().unwrap()]), "sops encrypt");
    let sops_encrypted = s.write("late-anchors.sops.yaml", &sops_enc);
    let reference = ok(&s.sops(&["decrypt", sops_encrypted.to_str().unwrap()]), "sops decrypt");
    assert_eq!(text(&theirs), text(&reference));
    // A key that cannot be wrapped: on a bad file the parse error still comes
    // first, on a good one the key error.
    let bad_pgp = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
    let bad = s.write("bad-and-unwrappable.yaml", cases[2].1.as_bytes());
    let good = s.write("good-but-unwrappable.yaml", body.as_bytes());
    for (what, f) in [("bad file, bad key", &bad), ("good file, bad key", &good)] {
        let out = both_fail_alike(&s, &["encrypt", "--pgp", bad_pgp, f.to_str().unwrap()], what);
        let err = text(&out.stderr);
        let parse_error = err.contains("Error unmarshalling file");
        assert_eq!(parse_error, f == &bad, "{what}: {err}");
    }
}

/// The same for large JSON files, which are cut at top-level commas.
#[test]
fn large_json_encrypt_errors_match_sops() {
    let s = Scratch::new();
    let members: Vec<String> = (0..6000)
        .map(|i| format!("\"entry{i}\": {{\"user\": \"u{i}\", \"password\": \"{SECRET}{i}\"}}"))
        .collect();
    let body = members.join(",\n");
    assert!(body.len() > 300 * 1024, "large enough to go piecewise");
    let cases = [
        (
            "late sops key",
            format!("{{{body},\n\"sops\": {{\"version\": \"3.11.0\"}}}}"),
        ),
        ("late trailing comma", format!("{{{body},\n}}")),
        ("late syntax error", format!("{{{body},\n\"broken\": [\"{SECRET}\"}}")),
        ("late bad escape", format!("{{{body},\n\"esc\": \"\\q{SECRET}\"}}")),
        ("top-level array", format!("[{body}]")),
    ];
    for (what, content) in &cases {
        encrypt_fails_alike(&s, "json", what, content);
    }
}

/// The same for large dotenv files, which are cut after any line.
#[test]
fn large_dotenv_encrypt_errors_match_sops() {
    let s = Scratch::new();
    let body: String = (0..12000)
        .map(|i| format!("# entry {i}\nPASSWORD_{i}={SECRET}{i}\n"))
        .collect();
    assert!(body.len() > 300 * 1024, "large enough to go piecewise");
    let cases = [
        ("late sops key", format!("{body}sops_version=3.11.0\n")),
        ("late line without equals", format!("{body}{SECRET}\n")),
        ("late blank-looking line", format!("{body} \n")),
    ];
    for (what, content) in &cases {
        encrypt_fails_alike(&s, "env", what, content);
    }
    // A key that cannot be wrapped (wrapped beside the pieces): the parse
    // error still comes first on a bad file, the key error on a good one.
    let bad_pgp = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF";
    let bad = s.write("bad-and-unwrappable.env", cases[1].1.as_bytes());
    let good = s.write("good-but-unwrappable.env", body.as_bytes());
    for (what, f) in [("bad file, bad key", &bad), ("good file, bad key", &good)] {
        let args = ["encrypt", "--age", &s.recipient, "--pgp", bad_pgp, f.to_str().unwrap()];
        let out = both_fail_alike(&s, &args, what);
        assert!(out.stdout.is_empty(), "{what}: output written before the error");
        let err = text(&out.stderr);
        assert_eq!(err.contains("Error unmarshalling file"), f == &bad, "{what}: {err}");
        assert_eq!(err.contains("Could not generate data key"), f == &good, "{what}: {err}");
    }
}

/// Flip one base64 character of the `data:` field of the last `ENC[` that
/// follows `marker`.
fn tamper_last(file: &str, marker: &str) -> String {
    let at = file.rfind(marker).expect("marker present") + marker.len();
    let data = at + file[at..].find("data:").expect("an ENC value follows") + "data:".len();
    let mut bytes = file.as_bytes().to_vec();
    bytes[data] = if bytes[data] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Large encrypted files are decrypted piece by piece; damage late in the
/// file must give the error sops gives and no plaintext, and --ignore-mac
/// must behave the same.
#[test]
fn large_file_decrypt_errors_match_sops() {
    let s = Scratch::new();
    let r = s.recipient.clone();
    let yaml: String = (0..6000)
        .map(|i| format!("entry{i}:\n    user: u{i}\n    password: {SECRET}{i}\n"))
        .collect();
    let json = format!(
        "{{{}}}",
        (0..6000)
            .map(|i| format!("\"entry{i}\": {{\"user\": \"u{i}\", \"password\": \"{SECRET}{i}\"}}"))
            .collect::<Vec<_>>()
            .join(",\n")
    );
    for (ext, plain) in [("yaml", yaml), ("json", json)] {
        let f = s.write(&format!("big.{ext}"), plain.as_bytes());
        let enc = text(&ok(
            &s.sops(&["encrypt", "--age", &r, f.to_str().unwrap()]),
            "sops encrypt",
        ));
        assert!(enc.len() > 300 * 1024, "large enough to go piecewise");
        // Markers with a character base64 never holds, so that they are not
        // found inside an encrypted value (`mac` alone was, once in a while).
        let (last_user, sops_key, password_key, mac_key) = if ext == "yaml" {
            ("user:", "\nsops:", "password: ", "mac: ")
        } else {
            ("\"user\":", "\n\t\"sops\":", "\"password\":", "\"mac\":")
        };
        // Remove the last user entry: every value still decrypts, the MAC differs.
        let user_at = enc.rfind(last_user).unwrap();
        let value_end = user_at + enc[user_at..].find(']').unwrap() + 1;
        let removed = if ext == "yaml" {
            let line_start = enc[..user_at].rfind('\n').unwrap();
            format!("{}{}", &enc[..line_start], &enc[value_end..])
        } else {
            let value_end = value_end + enc[value_end..].find(',').unwrap() + 1;
            format!("{}{}", &enc[..user_at], &enc[value_end..].trim_start())
        };
        let sops_at = enc.rfind(sops_key).unwrap() + 1;
        let broken = if ext == "yaml" {
            format!("{}broken: [x\n{}", &enc[..sops_at], &enc[sops_at..])
        } else {
            format!("{}\"broken\": [,\n{}", &enc[..sops_at], &enc[sops_at..])
        };
        let cases = [
            ("late tampered value", tamper_last(&enc, password_key)),
            ("tampered MAC", tamper_last(&enc, mac_key)),
            ("late entry removed", removed.clone()),
            ("late syntax error", broken),
            ("trailing garbage", format!("{enc}x")),
        ];
        for (what, content) in &cases {
            let what = format!("{ext}: {what}");
            let f = s.write(&format!("bad.{ext}"), content.as_bytes());
            let out = both_fail_alike(&s, &["decrypt", f.to_str().unwrap()], &what);
            assert!(out.stdout.is_empty(), "{what}: output before the error");
            if what.ends_with("tampered value") {
                // rsops names the value (sops does not).
                let err = text(&out.stderr);
                assert!(err.contains("entry5999") && err.contains("password"), "{what}: {err}");
            }
        }
        // --ignore-mac: both print the same plaintext of the altered file.
        let f = s.write(&format!("removed.{ext}"), removed.as_bytes());
        let args = ["decrypt", "--ignore-mac", f.to_str().unwrap()];
        assert_eq!(text(&ok(&s.rsops(&args), "rsops")), text(&ok(&s.sops(&args), "sops")));
        // And the intact file decrypts to what sops prints, to stdout, to
        // --output and in place (mode kept, no temp file left).
        let f = s.write(&format!("good.{ext}"), enc.as_bytes());
        let args = ["decrypt", f.to_str().unwrap()];
        let theirs = text(&ok(&s.sops(&args), "sops"));
        assert_eq!(text(&ok(&s.rsops(&args), "rsops")), theirs);
        let out = s.path(&format!("out.{ext}"));
        ok(
            &s.rsops(&["decrypt", "--output", out.to_str().unwrap(), f.to_str().unwrap()]),
            "rsops --output",
        );
        assert_eq!(text(&std::fs::read(&out).unwrap()), theirs);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
            ok(&s.rsops(&["decrypt", "-i", f.to_str().unwrap()]), "rsops -i");
            assert_eq!(text(&std::fs::read(&f).unwrap()), theirs);
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o640);
            // Encrypt it back in place (piecewise too): sops reads it.
            ok(
                &s.rsops(&["encrypt", "-i", "--age", &r, f.to_str().unwrap()]),
                "rsops encrypt -i",
            );
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o640);
            assert_eq!(text(&ok(&s.sops(&args), "sops decrypt")), theirs);
        }
        let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }
}

/// Large encrypted dotenv files are decrypted piece by piece: damage late
/// in the file, or metadata lines out of place, give sops's error and no
/// plaintext; the intact file decrypts to sops's bytes everywhere.
#[test]
fn large_dotenv_decrypt_errors_match_sops() {
    let s = Scratch::new();
    let r = s.recipient.clone();
    let plain: String = (0..6000)
        .map(|i| format!("USER_{i}=u{i}\nPASSWORD_{i}={SECRET}{i}\n"))
        .collect();
    let f = s.write("big.env", plain.as_bytes());
    let enc = text(&ok(
        &s.sops(&["encrypt", "--age", &r, f.to_str().unwrap()]),
        "sops encrypt",
    ));
    assert!(enc.len() > 300 * 1024, "large enough to go piecewise");
    let meta_at = enc.find("\nsops_").expect("metadata lines") + 1;
    let (data, meta) = enc.split_at(meta_at);
    // Remove the last user line: every value still decrypts, the MAC differs.
    let user_at = data.rfind("\nUSER_").expect("a user line") + 1;
    let user_end = user_at + data[user_at..].find('\n').expect("line end") + 1;
    let removed = format!("{}{}{meta}", &data[..user_at], &data[user_end..]);
    let (first_meta, other_meta) = meta.split_at(meta.find('\n').expect("lines") + 1);
    // The MAC line in the middle of the data: the metadata read from the end
    // lacks it (the first metadata line moved up lacks the age key).
    let mac_at = meta.find("sops_mac=").expect("a MAC line");
    let mac_end = mac_at + meta[mac_at..].find('\n').expect("line end") + 1;
    let middle = data[..data.len() / 2].rfind('\n').expect("lines") + 1;
    let mac_inside = format!(
        "{}{}{}{}{}",
        &data[..middle],
        &meta[mac_at..mac_end],
        &data[middle..],
        &meta[..mac_at],
        &meta[mac_end..]
    );
    let cases = [
        ("late tampered value", tamper_last(&enc, "PASSWORD_5999")),
        ("MAC line inside the data", mac_inside),
        ("tampered MAC", tamper_last(&enc, "sops_mac")),
        ("late entry removed", removed.clone()),
        ("late broken line", format!("{data}broken\n{meta}")),
        ("metadata line moved up", format!("{first_meta}{data}{other_meta}")),
        ("data after the metadata", format!("{enc}LATE=1\n")),
    ];
    for (what, content) in &cases {
        let what = format!("env: {what}");
        let f = s.write("bad.env", content.as_bytes());
        let out = s.rsops(&["decrypt", f.to_str().unwrap()]);
        let theirs = s.sops(&["decrypt", f.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            theirs.status.code(),
            "{what}: exit codes differ ({})",
            text(&theirs.stderr)
        );
        if theirs.status.success() {
            // sops takes `sops_` lines anywhere and data after them: same bytes.
            assert_eq!(text(&out.stdout), text(&theirs.stdout), "{what}");
        } else {
            assert_clean_failure(&out, &what);
            assert!(out.stdout.is_empty(), "{what}: output before the error");
        }
    }
    // --ignore-mac: both print the same plaintext of the altered file.
    let f = s.write("removed.env", removed.as_bytes());
    let args = ["decrypt", "--ignore-mac", f.to_str().unwrap()];
    assert_eq!(text(&ok(&s.rsops(&args), "rsops")), text(&ok(&s.sops(&args), "sops")));
    // The intact file: sops's bytes to stdout and in place; encrypted back
    // in place (piecewise too), sops reads it.
    let f = s.write("good.env", enc.as_bytes());
    let args = ["decrypt", f.to_str().unwrap()];
    let theirs = text(&ok(&s.sops(&args), "sops"));
    assert_eq!(theirs, plain);
    assert_eq!(text(&ok(&s.rsops(&args), "rsops")), theirs);
    ok(&s.rsops(&["decrypt", "-i", f.to_str().unwrap()]), "rsops -i");
    assert_eq!(text(&std::fs::read(&f).unwrap()), theirs);
    ok(
        &s.rsops(&["encrypt", "-i", "--age", &r, f.to_str().unwrap()]),
        "rsops encrypt -i",
    );
    assert_eq!(text(&ok(&s.sops(&args), "sops decrypt")), theirs);
}

#[test]
fn decrypt_errors_match_sops_exit_codes() {
    let s = Scratch::new();
    let (_, enc) = encrypted_fixture(&s);
    let f = s.write("e.yaml", &enc);
    let plain = s.write("plain.yaml", b"a: 1\n");
    let f = f.to_str().unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("bad extract path", vec!["decrypt", "--extract", "[\"a\"", f]),
        ("missing file", vec!["decrypt", "/nonexistent/x.yaml"]),
        ("not encrypted", vec!["decrypt", plain.to_str().unwrap()]),
        (
            "duplicate decryption order",
            vec!["decrypt", "--decryption-order", "age,age", f],
        ),
        ("in-place and output", vec!["decrypt", "-i", "--output", "x", f]),
        ("extract missing key", vec!["decrypt", "--extract", "[\"nope\"]", f]),
        ("legacy: no file", vec!["-d"]),
    ];
    for (what, args) in cases {
        both_fail_alike(&s, &args, what);
    }
    assert_eq!(std::fs::read(f).unwrap(), enc);
}

#[test]
fn in_place_writes_are_atomic_and_keep_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let p = s.write("m.yaml", format!("password: {SECRET}\n").as_bytes());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    ok(
        &s.rsops(&["encrypt", "-i", "--age", &s.recipient, p.to_str().unwrap()]),
        "encrypt -i",
    );
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    let enc = std::fs::read(&p).unwrap();
    assert!(!text(&enc).contains(SECRET));
    // sops can read the in-place result.
    let dec = ok(&s.sops(&["decrypt", p.to_str().unwrap()]), "sops decrypt");
    assert_eq!(text(&dec), format!("password: {SECRET}\n"));
    ok(&s.rsops(&["decrypt", "-i", p.to_str().unwrap()]), "decrypt -i");
    assert_eq!(text(&std::fs::read(&p).unwrap()), format!("password: {SECRET}\n"));
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

#[test]
fn legacy_flags_work_like_subcommands() {
    let s = Scratch::new();
    let p = s.write("l.yaml", b"a: b\n");
    let enc = ok(
        &s.rsops(&["-e", "--age", &s.recipient, p.to_str().unwrap()]),
        "rsops -e",
    );
    let e = s.write("l.enc.yaml", &enc);
    assert_eq!(text(&ok(&s.sops(&["-d", e.to_str().unwrap()]), "sops -d")), "a: b\n");
    assert_eq!(text(&ok(&s.rsops(&["-d", e.to_str().unwrap()]), "rsops -d")), "a: b\n");
    // Legacy mode honours --indent; subcommands ignore it in sops 3.11.
    let nested = s.write("n.yaml", b"a:\n    b: c\n");
    let enc = ok(
        &s.sops(&["-e", "--age", &s.recipient, nested.to_str().unwrap()]),
        "sops -e",
    );
    let e = s.write("n.enc.yaml", &enc);
    for args in [vec!["-d", "--indent", "2"], vec!["--indent", "2", "decrypt"]] {
        let mut a = args.clone();
        a.push(e.to_str().unwrap());
        assert_eq!(ok(&s.rsops(&a), "rsops"), ok(&s.sops(&a), "sops"), "{args:?}");
    }
}
