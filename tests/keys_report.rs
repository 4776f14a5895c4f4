//! The failure report (§9.9) for a file with age, PGP, Vault and KMS keys
//! where every key fails: the same groups, key identities, order and exit
//! code as sops 3.11, a reason for every key, and no secret in it.

mod common;
mod keys_support;

use common::{new_age_key, ok, text, Scratch};
use keys_support::{rsops, sops, AllKinds, GpgHome, BAO_TOKEN, PLAIN_JSON};

#[test]
fn every_kind_failing_is_reported_like_sops() {
    let s = Scratch::new();
    let kinds = AllKinds::start();
    let (g, arn, uri) = (&kinds.gpg, kinds.arn.clone(), kinds.uri.clone());
    let env = kinds.env();
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let args = [
        "encrypt",
        "--age",
        &s.recipient,
        "--pgp",
        &g.fp,
        "--hc-vault-transit",
        &uri,
        "--kms",
        &arn,
        "--encryption-context",
        "Env:prod",
        p.to_str().unwrap(),
    ];
    let enc = ok(&rsops(&s, &env, &args), "rsops encrypt with four kinds");
    let e = s.write("all.json", &enc);
    assert_eq!(
        text(&ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt")),
        PLAIN_JSON
    );

    // Now every key fails: another age identity, a GnuPG home without the
    // secret key, a wrong Vault token, and an unreachable KMS endpoint.
    let other_age = s.path("other-age.txt");
    new_age_key(&other_age);
    let other_gpg = GpgHome::new("Other <o@example.com>");
    let failing = [
        ("SOPS_AGE_KEY_FILE", other_age.to_str().unwrap()),
        ("GNUPGHOME", other_gpg.path().to_str().unwrap()),
        ("VAULT_TOKEN", "wrong-token"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let theirs = sops(&s, &failing, &["decrypt", e.to_str().unwrap()]);
    let ours = rsops(&s, &failing, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(ours.status.code(), Some(128));
    let (t, o) = (text(&theirs.stderr), text(&ours.stderr));

    // Same skeleton: header, group, the keys in decryption order (age, pgp,
    // then kms, hc_vault in load order), and the closing paragraph.
    let skeleton = |r: &str| -> Vec<String> {
        r.trim_start_matches("error: ")
            .lines()
            .filter(|l| !l.starts_with("    "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(skeleton(&o), skeleton(&t), "rsops:\n{o}\nsops:\n{t}");
    let ids: Vec<&str> = o
        .lines()
        .filter(|l| l.ends_with(": FAILED") && l.starts_with("  "))
        .collect();
    assert_eq!(
        ids,
        vec![
            format!("  {}: FAILED", s.recipient),
            format!("  {}: FAILED", g.fp),
            format!("  {arn}|Env:prod: FAILED"),
            format!("  {uri}: FAILED"),
        ]
    );
    // A reason under every key; the Vault and KMS reasons start like sops's.
    let reasons: Vec<String> = o
        .split("FAILED\n")
        .skip(2)
        .map(|r| {
            r.lines()
                .take_while(|l| l.starts_with("    "))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert_eq!(reasons.len(), 4, "{o}");
    for r in &reasons {
        assert!(
            r.trim_start().starts_with("- | ") && r.len() > 20,
            "empty reason in:\n{o}"
        );
    }
    let flat = |r: &str| r.replace("\n      | ", " ");
    for needle in [
        "failed to create reader for decrypting sops data key with age",
        "could not decrypt data key with PGP key",
        "No secret key",
        "failed to decrypt sops data key with AWS KMS: operation error KMS: Decrypt,",
        "failed to decrypt sops data key from Vault transit backend 'sops/decrypt/k1': Error making API request.",
        "* permission denied",
    ] {
        assert!(flat(&o).contains(needle), "rsops report lacks {needle:?}:\n{o}");
        assert!(
            flat(&t).contains(needle) || needle == "No secret key",
            "sops report lacks {needle:?}:\n{t}"
        );
    }
    // Nothing secret: no token, no plaintext, no data key material.
    assert!(
        !o.contains(BAO_TOKEN) && !o.contains("wrong-token") && !o.contains("TOPSECRETVALUE"),
        "{o}"
    );
}
