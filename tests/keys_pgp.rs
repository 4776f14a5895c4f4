//! PGP master keys through a real GnuPG, interoperating with the real sops
//! 3.11 both ways.

mod common;
mod keys_support;

use common::{ok, text, Scratch};
use keys_support::{rsops, sops, GpgHome, PLAIN_JSON};

fn json_field<'a>(file: &'a str, field: &str) -> &'a str {
    let at = file.find(&format!("\"{field}\": \"")).expect("field present") + field.len() + 5;
    let end = at
        + file[at..]
            .find("\",")
            .or_else(|| file[at..].find("\"\n"))
            .expect("field end");
    &file[at..end]
}

#[test]
fn sops_encrypts_rsops_decrypts() {
    let s = Scratch::new();
    let g = GpgHome::new("Test <t@example.com>");
    let home = g.path().to_str().unwrap();
    let env = [("GNUPGHOME", home)];
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &sops(&s, &env, &["encrypt", "--pgp", &g.fp, p.to_str().unwrap()]),
        "sops encrypt",
    );
    let e = s.write("enc.json", &enc);
    let theirs = ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt");
    let ours = ok(&rsops(&s, &env, &["decrypt", e.to_str().unwrap()]), "rsops decrypt");
    assert_eq!(text(&ours), text(&theirs));
    assert_eq!(text(&ours), PLAIN_JSON);

    // The go-crypto armor form (and a trailing newline) are read as well.
    let enc_text = text(&enc);
    let armored = json_field(&enc_text, "enc");
    let with_newline = enc_text.replace(armored, &format!("{armored}\\n"));
    let e2 = s.write("enc2.json", with_newline.as_bytes());
    let ours = ok(
        &rsops(&s, &env, &["decrypt", e2.to_str().unwrap()]),
        "rsops decrypt, trailing newline",
    );
    assert_eq!(text(&ours), PLAIN_JSON);
}

#[test]
fn rsops_encrypts_sops_decrypts() {
    let s = Scratch::new();
    let g = GpgHome::new("Test <t@example.com>");
    let home = g.path().to_str().unwrap();
    let env = [("GNUPGHOME", home)];
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &rsops(&s, &env, &["encrypt", "--pgp", &g.fp, p.to_str().unwrap()]),
        "rsops encrypt",
    );
    let enc_text = text(&enc);
    assert!(enc_text.contains(&format!("\"fp\": \"{}\"", g.fp)), "{enc_text}");
    let armored = json_field(&enc_text, "enc");
    assert!(armored.starts_with("-----BEGIN PGP MESSAGE-----\\n\\n"), "{armored}");
    assert!(
        armored.ends_with("\\n-----END PGP MESSAGE-----"),
        "stdout must be trimmed: {armored}"
    );
    let e = s.write("enc.json", &enc);
    let theirs = ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt");
    assert_eq!(text(&theirs), PLAIN_JSON);

    // The same key given through SOPS_PGP_FP, on a binary file.
    let bin: Vec<u8> = (0u8..=255).chain(0u8..10).collect();
    let b = s.write("blob.bin", &bin);
    let env2 = [("GNUPGHOME", home), ("SOPS_PGP_FP", g.fp.as_str())];
    let enc = ok(
        &rsops(&s, &env2, &["encrypt", b.to_str().unwrap()]),
        "rsops encrypt binary",
    );
    let e = s.write("blob.enc", &enc);
    let theirs = ok(
        &sops(&s, &env, &["decrypt", "--input-type", "binary", e.to_str().unwrap()]),
        "sops decrypt",
    );
    assert_eq!(theirs, bin);
}

#[test]
fn sops_gpg_exec_is_honoured_with_sops_arguments() {
    let s = Scratch::new();
    let g = GpgHome::new("Test <t@example.com>");
    let home = g.path().to_str().unwrap();
    let log = s.path("gpg-args.log");
    let gpg = common::require_tool("gpg");
    let wrapper = s.write(
        "mygpg",
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            gpg.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = [("SOPS_GPG_EXEC", wrapper.to_str().unwrap())];
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    // GNUPGHOME is set, so rsops passes it on as --homedir.
    let envh = [env[0], ("GNUPGHOME", home)];
    let enc = ok(
        &rsops(&s, &envh, &["encrypt", "--pgp", &g.fp, p.to_str().unwrap()]),
        "rsops encrypt",
    );
    let e = s.write("enc.json", &enc);
    ok(&rsops(&s, &envh, &["decrypt", e.to_str().unwrap()]), "rsops decrypt");
    let calls = std::fs::read_to_string(&log).expect("wrapper was called");
    let lines: Vec<&str> = calls.lines().collect();
    let short = &g.fp[g.fp.len() - 16..];
    assert_eq!(
        lines,
        vec![
            format!(
                "--homedir {home} --no-default-recipient --yes --encrypt -a -r {} --trusted-key {short} --no-encrypt-to",
                g.fp
            ),
            format!("--homedir {home} -d"),
        ]
    );

    // A missing gpg program: a clear error naming it, exit 128, like sops.
    let env = [("SOPS_GPG_EXEC", "/nonexistent/gpg"), ("GNUPGHOME", home)];
    let theirs = sops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    let ours = rsops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(ours.status.code(), Some(128));
    assert_eq!(ours.status.code(), theirs.status.code());
    let err = text(&ours.stderr);
    assert!(err.contains("/nonexistent/gpg"), "{err}");
    assert!(err.contains("could not decrypt data key with PGP key"), "{err}");
}

#[test]
fn missing_secret_key_reports_like_sops() {
    let s = Scratch::new();
    let g = GpgHome::new("Test <t@example.com>");
    let other = GpgHome::new("Other <o@example.com>");
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &sops(
            &s,
            &[("GNUPGHOME", g.path().to_str().unwrap())],
            &["encrypt", "--pgp", &g.fp, p.to_str().unwrap()],
        ),
        "sops encrypt",
    );
    let e = s.write("enc.json", &enc);
    let env = [("GNUPGHOME", other.path().to_str().unwrap())];
    let theirs = sops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    let ours = rsops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(ours.status.code(), Some(128));
    let err = text(&ours.stderr);
    assert!(err.contains(&format!("  {}: FAILED", g.fp)), "{err}");
    assert!(err.contains("No secret key"), "gpg's reason is shown: {err}");
    assert!(text(&theirs.stderr).contains("No secret key"));
    assert_eq!(std::fs::read(&e).unwrap(), enc, "input untouched");

    // Encrypting to an unknown fingerprint fails before anything is written.
    let out = rsops(&s, &env, &["encrypt", "-i", "--pgp", &g.fp, p.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        sops(&s, &env, &["encrypt", "--pgp", &g.fp, p.to_str().unwrap()])
            .status
            .code()
    );
    let err = text(&out.stderr);
    assert!(err.contains("could not encrypt data key with PGP key"), "{err}");
    assert!(err.contains(&g.fp), "{err}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), PLAIN_JSON, "input untouched");
}
