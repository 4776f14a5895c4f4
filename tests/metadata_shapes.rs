//! Metadata shapes rsops must read: files written by sops 3.13.1 (upstream
//! fixtures, PGP), and entries of key kinds rsops cannot use, which must
//! survive a rewrite unchanged.

mod common;

use common::{ok, text, Scratch};
use std::path::Path;
use std::process::Command;

#[test]
fn sops_3_13_fixtures_decrypt_like_sops() {
    let s = Scratch::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/upstream");
    let home = s.path("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = Command::new(common::require_tool("gpg"))
        .env("GNUPGHOME", &home)
        .args(["--batch", "--import"])
        .arg(dir.join("sops_functional_tests_key.asc"))
        .output()
        .expect("run gpg --import");
    assert!(out.status.success(), "gpg --import failed: {}", text(&out.stderr));
    for file in ["format.enc.yaml", "format.enc.json", "format-2.enc.ini"] {
        let path = dir.join(file);
        let run = |program: &Path| {
            s.cmd(program)
                .env("GNUPGHOME", &home)
                .args(["decrypt", path.to_str().unwrap()])
                .output()
                .unwrap()
        };
        let theirs = ok(&run(&common::sops_ref()), &format!("sops decrypt {file}"));
        let ours = ok(&run(&common::rsops()), &format!("rsops decrypt {file}"));
        assert_eq!(text(&ours), text(&theirs), "{file}");
        assert!(text(&ours).contains("bar"), "{file}: {}", text(&ours));
    }
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .status();
}

#[test]
fn unusable_key_kinds_survive_a_rewrite() {
    let s = Scratch::new();
    let plain = s.write("k.yaml", b"a: 1\nb: two\n");
    let enc = text(&ok(
        &s.sops(&["encrypt", "--age", &s.recipient, plain.to_str().unwrap()]),
        "sops encrypt",
    ));
    // Add entries of kinds rsops has no client for; the metadata is not
    // covered by the MAC, so the file stays valid for sops.
    let extra = "    gcp_kms:\n        - resource_id: projects/p/locations/l/keyRings/r/cryptoKeys/k\n          created_at: \"2026-01-02T03:04:05Z\"\n          enc: Q0lQSEVSVEVYVA==\n    azure_kv:\n        - vault_url: https://v.vault.azure.net\n          name: key\n          version: abc123\n          created_at: \"2026-01-02T03:04:05Z\"\n          enc: Y2lwaGVy\n";
    let with_extra = enc.replacen("sops:\n", &format!("sops:\n{extra}"), 1);
    let f = s.write("k.enc.yaml", with_extra.as_bytes());
    ok(
        &s.rsops(&["set", f.to_str().unwrap(), r#"["b"]"#, r#""three""#]),
        "rsops set",
    );
    let after = std::fs::read_to_string(&f).unwrap();
    for line in extra.lines() {
        assert!(after.contains(line), "lost {line:?} in:\n{after}");
    }
    assert_eq!(
        text(&ok(&s.sops(&["decrypt", f.to_str().unwrap()]), "sops decrypt")),
        "a: 1\nb: three\n"
    );
}
