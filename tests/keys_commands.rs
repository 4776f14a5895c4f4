//! `rotate --add-*/--rm-*`, `updatekeys` and `.sops.yaml` key groups with
//! PGP, Vault transit and AWS KMS keys, against real servers, each result
//! checked by the real sops 3.11.

mod common;
mod keys_support;

use common::{ok, text, Scratch};
use keys_support::{rsops, sops, AllKinds, PLAIN_JSON};

#[test]
fn rotate_updatekeys_and_groups_with_every_kind() {
    let s = Scratch::new();
    let kinds = AllKinds::start();
    let (g, arn, uri) = (&kinds.gpg, kinds.arn.clone(), kinds.uri.clone());
    let env = kinds.env();
    // Only one key kind usable at a time: the others point nowhere.
    let only = |kind: &str| -> Vec<(&str, String)> {
        let mut e: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let other_home = "/nonexistent-gnupg-home".to_string();
        if kind != "pgp" {
            e.push(("GNUPGHOME", other_home));
        }
        if kind != "vault" {
            e.push(("VAULT_TOKEN", "wrong".into()));
        }
        if kind != "kms" {
            e.push(("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9".into()));
        }
        e
    };
    let check_with = |file: &std::path::Path, kind: &str| {
        let e = only(kind);
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut c = s.cmd(&common::sops_ref());
        c.env_remove("SOPS_AGE_KEY_FILE");
        for (k, v) in &e {
            c.env(k, v);
        }
        let out = c.args(["decrypt", file.to_str().unwrap()]).output().unwrap();
        assert_eq!(text(&ok(&out, &format!("sops decrypt with only {kind}"))), PLAIN_JSON);
    };

    // rotate --add-*: age file gains a key of every kind.
    let p = s.write("p.json", PLAIN_JSON.as_bytes());
    let enc = s.write(
        "e.json",
        &ok(
            &rsops(&s, &env, &["encrypt", "--age", &s.recipient, p.to_str().unwrap()]),
            "encrypt",
        ),
    );
    let args = [
        "rotate",
        "-i",
        "--add-pgp",
        g.fp.as_str(),
        "--add-hc-vault-transit",
        uri.as_str(),
        "--add-kms",
        arn.as_str(),
        enc.to_str().unwrap(),
    ];
    ok(&rsops(&s, &env, &args), "rotate --add-*");
    for kind in ["pgp", "vault", "kms"] {
        check_with(&enc, kind);
    }
    // rotate --rm-*: the removed kinds no longer open the file.
    let args = [
        "rotate",
        "-i",
        "--rm-pgp",
        g.fp.as_str(),
        "--rm-kms",
        arn.as_str(),
        enc.to_str().unwrap(),
    ];
    ok(&rsops(&s, &env, &args), "rotate --rm-*");
    let enc_text = std::fs::read_to_string(&enc).unwrap();
    assert!(!enc_text.contains(&g.fp) && !enc_text.contains(&arn), "{enc_text}");
    check_with(&enc, "vault");

    // updatekeys: .sops.yaml now names pgp + kms (with context) + vault.
    s.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - key_groups:\n      - pgp: [{fp}]\n        hc_vault: [{uri}]\n        kms:\n          - arn: {arn}\n            context: {{Env: prod}}\n",
            fp = g.fp
        )
        .as_bytes(),
    );
    ok(
        &rsops(&s, &env, &["updatekeys", "-y", enc.to_str().unwrap()]),
        "updatekeys",
    );
    let enc_text = std::fs::read_to_string(&enc).unwrap();
    assert!(
        enc_text.contains("\"Env\": \"prod\"") && !enc_text.contains("\"age\": ["),
        "{enc_text}"
    );
    for kind in ["pgp", "vault", "kms"] {
        check_with(&enc, kind);
    }

    // .sops.yaml key groups mixing kinds, threshold 2, written by rsops.
    s.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - pgp: [{fp}]\n      - hc_vault: [{uri}]\n      - kms:\n          - arn: {arn}\n",
            fp = g.fp
        )
        .as_bytes(),
    );
    let grouped = s.write(
        "g.json",
        &ok(
            &rsops(&s, &env, &["encrypt", p.to_str().unwrap()]),
            "encrypt with groups",
        ),
    );
    let out = sops(&s, &env, &["decrypt", grouped.to_str().unwrap()]);
    assert_eq!(text(&ok(&out, "sops decrypt of rsops's key groups")), PLAIN_JSON);
    // One group alone is not enough, for either tool.
    let e = only("vault");
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ours = rsops(&s, &e, &["decrypt", grouped.to_str().unwrap()]);
    let theirs = sops(&s, &e, &["decrypt", grouped.to_str().unwrap()]);
    assert_eq!(ours.status.code(), Some(128));
    assert_eq!(ours.status.code(), theirs.status.code());
}
