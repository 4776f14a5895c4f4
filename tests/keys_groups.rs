//! Every key kind inside Shamir key groups, across both tools: sops 3.11
//! writes a three-group file (PGP | Vault | KMS + age, threshold 2), rsops
//! reads it with any two groups; rsops re-wraps the same data key for every
//! key (new shares, as `updatekeys` would) through the library and sops reads
//! the result. One test per binary: it sets the AWS variables for the
//! in-process SDK.

mod common;
mod keys_support;

use common::{ok, text, Scratch};
use keys_support::{rsops, sops, AllKinds, GpgHome, BAO_TOKEN, PLAIN_JSON};
use rsops::keys::{recover_data_key, wrap_data_key, KeyConfig, Keyring};
use rsops::metadata::MasterKey;
use rsops::sopsfile::{emit_encrypted, load_encrypted, StoreSettings};
use rsops::stores::Format;
use zeroize::Zeroizing;

#[test]
fn shamir_groups_with_pgp_vault_kms_and_age() {
    let s = Scratch::new();
    let kinds = AllKinds::start();
    let (g, bao, arn) = (&kinds.gpg, &kinds.bao, kinds.arn.clone());
    let env = kinds.env();
    // Not named .sops.yaml: only sops reads it (rsops's YAML store is not in
    // this tree yet), through --config.
    let rules = s.write(
        "rules.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - pgp:\n          - {fp}\n      - hc_vault:\n          - {uri}\n      - kms:\n          - arn: {arn}\n            context:\n              Env: prod\n        age:\n          - {age}\n",
            fp = g.fp,
            uri = bao.uri("sops", "k1"),
            age = s.recipient
        )
        .as_bytes(),
    );
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &sops(
            &s,
            &env,
            &["--config", rules.to_str().unwrap(), "encrypt", p.to_str().unwrap()],
        ),
        "sops encrypt with key groups",
    );
    let enc_text = text(&enc);
    assert!(
        enc_text.contains("\"key_groups\"") && enc_text.contains("\"shamir_threshold\": 2"),
        "{enc_text}"
    );
    let e = s.write("groups.json", &enc);

    // All groups available.
    assert_eq!(
        text(&ok(
            &rsops(&s, &env, &["decrypt", e.to_str().unwrap()]),
            "rsops decrypt"
        )),
        PLAIN_JSON
    );
    // Any one group down: still two parts.
    let other_gpg = GpgHome::new("Other <o@example.com>");
    let down: [(&str, &str); 3] = [
        ("GNUPGHOME", other_gpg.path().to_str().unwrap()),
        ("VAULT_TOKEN", "wrong"),
        ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"),
    ];
    for broken in down {
        let mut env2: Vec<(&str, &str)> = env.iter().filter(|(k, _)| *k != broken.0).copied().collect();
        env2.push(broken);
        // The age key of group 3 must fail as well when KMS is down: use the
        // decryption order kms-first and remove the age key file.
        let out = if broken.0 == "AWS_ENDPOINT_URL_KMS" {
            let mut c = s.cmd(&common::rsops());
            c.env_remove("SOPS_AGE_KEY_FILE");
            for (k, v) in &env2 {
                c.env(k, v);
            }
            c.args(["decrypt", e.to_str().unwrap()]).output().unwrap()
        } else {
            rsops(&s, &env2, &["decrypt", e.to_str().unwrap()])
        };
        assert_eq!(
            text(&ok(&out, &format!("rsops decrypt with {} broken", broken.0))),
            PLAIN_JSON
        );
    }
    // Two groups down: sops's Shamir report, exit 128.
    let mut env2: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != "GNUPGHOME" && *k != "VAULT_TOKEN")
        .copied()
        .collect();
    env2.extend([down[0], down[1]]);
    let theirs = sops(&s, &env2, &["decrypt", e.to_str().unwrap()]);
    let ours = rsops(&s, &env2, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(ours.status.code(), Some(128));
    let err = text(&ours.stderr);
    let shape = |r: &str| -> Vec<String> {
        r.lines()
            .filter(|l| l.starts_with("Group ") || l.ends_with(": FAILED") || l.starts_with("Recovery failed"))
            .map(|l| l.trim_start_matches("error: ").to_string())
            .collect()
    };
    assert_eq!(shape(&err), shape(&text(&theirs.stderr)), "{err}");
    assert!(
        err.contains("Group 2: SUCCESS") && err.replace('\n', " ").contains("threshold of 2, but only 1 part(s)"),
        "{err}"
    );

    // rsops wraps the same data key again for every key, through the library.
    for (k, v) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
        std::env::set_var(k, v);
    }
    std::env::set_var("AWS_CONFIG_FILE", s.path("no-aws-config"));
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", s.path("no-aws-credentials"));
    let mut config = KeyConfig::default();
    config.pgp.gnupg_home = Some(g.path().to_path_buf());
    config.vault.token = Some(Zeroizing::new(BAO_TOKEN.to_string()));
    config.kms.hostname = Some(|| Some("rsops-test".into()));
    config.age.key_file = Some(s.key_file.clone());
    let keyring = Keyring::new(config);
    let settings = StoreSettings::default();
    let (mut doc, meta) = load_encrypted(Format::Json, &settings, &enc).expect("load sops's file");
    let order: Vec<String> = vec!["age".into(), "pgp".into()];
    let key = recover_data_key(&meta, &keyring, &order).expect("recover the data key in-process");
    let mut rewrapped = meta.clone();
    for group in &mut rewrapped.key_groups {
        for k in group.iter_mut() {
            k.set_enc(String::new());
        }
    }
    wrap_data_key(&mut rewrapped, &key, &keyring).expect("wrap for every key kind");
    for (old, new) in meta
        .key_groups
        .iter()
        .flatten()
        .zip(rewrapped.key_groups.iter().flatten())
    {
        assert_ne!(old.enc(), new.enc(), "{} was re-wrapped", old.identity());
        match new {
            MasterKey::HcVault { enc, .. } => assert!(enc.starts_with("vault:v1:")),
            MasterKey::Pgp { enc, .. } => assert!(enc.starts_with("-----BEGIN PGP MESSAGE-----")),
            MasterKey::Kms { context, .. } => assert_eq!(context, &vec![("Env".to_string(), "prod".to_string())]),
            _ => {}
        }
    }
    let out = emit_encrypted(Format::Json, &settings, &mut doc, &rewrapped).expect("emit");
    let r = s.write("rewrapped.json", &out);
    assert_eq!(
        text(&ok(
            &sops(&s, &env, &["decrypt", r.to_str().unwrap()]),
            "sops decrypt of rsops's shares"
        )),
        PLAIN_JSON
    );
    // sops with only the Vault and KMS groups reaches the threshold too.
    let mut env3: Vec<(&str, &str)> = env.iter().filter(|(k, _)| *k != "GNUPGHOME").copied().collect();
    env3.push(down[0]);
    assert_eq!(
        text(&ok(
            &sops(&s, &env3, &["decrypt", r.to_str().unwrap()]),
            "sops decrypt, 2 groups"
        )),
        PLAIN_JSON
    );
}
