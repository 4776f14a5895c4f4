//! AWS KMS master keys against a real moto server (KMS + STS), interoperating
//! with the real sops 3.11 both ways.

mod common;
mod keys_support;

use common::{ok, text, Scratch};
use keys_support::{rsops, sops, Moto, PLAIN_JSON};
use std::time::{Duration, Instant};

fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL_KMS", moto.endpoint()),
        ("AWS_ENDPOINT_URL_STS", moto.endpoint()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

fn env_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The `sops` metadata with everything random removed.
fn metadata_shape(file: &str) -> String {
    let re = regex::Regex::new(r#"("enc": |"created_at": |"lastmodified": |"mac": )"[^"]*""#).unwrap();
    let s = re.replace_all(file, "$1\"…\"");
    let enc = regex::Regex::new(r"ENC\[[^\]]*\]").unwrap();
    let s = enc.replace_all(&s, "ENC[…]").into_owned();
    s.replace("\"version\": \"3.11.0\"", "\"version\": \"…\"")
}

#[test]
fn both_directions_with_and_without_encryption_context() {
    let moto = Moto::start();
    let arn = moto.create_key();
    let envv = aws_env(&moto);
    let env = env_refs(&envv);
    let s = Scratch::new();
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    for ctx in [None, Some("Env:prod,App:web")] {
        let mut args = vec!["encrypt", "--kms", arn.as_str()];
        if let Some(c) = ctx {
            args.extend(["--encryption-context", c]);
        }
        args.push(p.to_str().unwrap());
        let theirs_enc = ok(&sops(&s, &env, &args), "sops encrypt");
        let e = s.write("from-sops.json", &theirs_enc);
        let theirs = ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt");
        let ours = ok(&rsops(&s, &env, &["decrypt", e.to_str().unwrap()]), "rsops decrypt");
        assert_eq!(ours, theirs);
        assert_eq!(text(&ours), PLAIN_JSON);

        let ours_enc = ok(&rsops(&s, &env, &args), "rsops encrypt");
        // Same metadata fields (arn, context sorted, aws_profile "") as sops.
        assert_eq!(metadata_shape(&text(&ours_enc)), metadata_shape(&text(&theirs_enc)));
        if ctx.is_some() {
            assert!(
                text(&ours_enc).contains("\"context\": {\n\t\t\t\t\t\"App\": \"web\",\n\t\t\t\t\t\"Env\": \"prod\"\n")
            );
        }
        let e = s.write("from-rsops.json", &ours_enc);
        assert_eq!(
            text(&ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt")),
            PLAIN_JSON
        );
    }

    // SOPS_KMS_ARN works like the flag.
    let mut env2 = env.clone();
    env2.push(("SOPS_KMS_ARN", arn.as_str()));
    let enc = ok(
        &rsops(&s, &env2, &["encrypt", p.to_str().unwrap()]),
        "rsops encrypt via SOPS_KMS_ARN",
    );
    let e = s.write("env.json", &enc);
    assert_eq!(
        text(&ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt")),
        PLAIN_JSON
    );
}

#[test]
fn role_arn_assumes_the_role_through_sts() {
    let moto = Moto::start();
    let arn = moto.create_key();
    let role = "arn:aws:iam::123456789012:role/sops-test-role";
    let envv = aws_env(&moto);
    let env = env_refs(&envv);
    let s = Scratch::new();
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let spec = format!("{arn}+{role}");
    let theirs_enc = ok(
        &sops(&s, &env, &["encrypt", "--kms", &spec, p.to_str().unwrap()]),
        "sops encrypt",
    );
    let ours_enc = ok(
        &rsops(&s, &env, &["encrypt", "--kms", &spec, p.to_str().unwrap()]),
        "rsops encrypt",
    );
    assert!(text(&ours_enc).contains(&format!("\"role\": \"{role}\"")));
    assert_eq!(metadata_shape(&text(&ours_enc)), metadata_shape(&text(&theirs_enc)));
    let a = s.write("sops.json", &theirs_enc);
    let b = s.write("rsops.json", &ours_enc);
    assert_eq!(
        text(&ok(
            &rsops(&s, &env, &["decrypt", a.to_str().unwrap()]),
            "rsops decrypt"
        )),
        PLAIN_JSON
    );
    assert_eq!(
        text(&ok(&sops(&s, &env, &["decrypt", b.to_str().unwrap()]), "sops decrypt")),
        PLAIN_JSON
    );

    // STS unreachable: the role cannot be assumed, and the report says so.
    let mut bad = env.clone();
    bad.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_STS");
    bad.push(("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"));
    let out = rsops(&s, &bad, &["decrypt", b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(128));
    let err = text(&out.stderr).replace("\n      | ", " ");
    assert!(err.contains(&format!("failed to assume role '{role}'")), "{err}");
}

#[test]
fn aws_profile_selects_shared_credentials() {
    let moto = Moto::start();
    let arn = moto.create_key();
    let s = Scratch::new();
    std::fs::create_dir_all(s.path(".aws")).unwrap();
    std::fs::write(
        s.path(".aws/credentials"),
        "[sopsprofile]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let ep = moto.endpoint();
    let env = [
        ("AWS_ENDPOINT_URL_KMS", ep.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let args = [
        "encrypt",
        "--kms",
        &arn,
        "--aws-profile",
        "sopsprofile",
        p.to_str().unwrap(),
    ];
    let theirs_enc = ok(&sops(&s, &env, &args), "sops encrypt");
    let ours_enc = ok(&rsops(&s, &env, &args), "rsops encrypt");
    assert!(text(&ours_enc).contains("\"aws_profile\": \"sopsprofile\""));
    assert_eq!(metadata_shape(&text(&ours_enc)), metadata_shape(&text(&theirs_enc)));
    let a = s.write("sops.json", &theirs_enc);
    let b = s.write("rsops.json", &ours_enc);
    assert_eq!(
        text(&ok(
            &rsops(&s, &env, &["decrypt", a.to_str().unwrap()]),
            "rsops decrypt"
        )),
        PLAIN_JSON
    );
    assert_eq!(
        text(&ok(&sops(&s, &env, &["decrypt", b.to_str().unwrap()]), "sops decrypt")),
        PLAIN_JSON
    );
}

#[test]
fn failures_exit_128_clearly_and_leave_input_alone() {
    let moto = Moto::start();
    let arn = moto.create_key();
    let envv = aws_env(&moto);
    let env = env_refs(&envv);
    let s = Scratch::new();
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &sops(
            &s,
            &env,
            &[
                "encrypt",
                "--kms",
                &arn,
                "--encryption-context",
                "Env:prod",
                p.to_str().unwrap(),
            ],
        ),
        "sops encrypt",
    );
    let enc_text = text(&enc);

    // A wrong encryption context.
    let wrong = s.write(
        "wrong-context.json",
        enc_text.replace("\"Env\": \"prod\"", "\"Env\": \"dev\"").as_bytes(),
    );
    let theirs = sops(&s, &env, &["decrypt", wrong.to_str().unwrap()]);
    let ours = rsops(&s, &env, &["decrypt", "-i", wrong.to_str().unwrap()]);
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(ours.status.code(), Some(128));
    let err = text(&ours.stderr);
    assert!(err.contains(&format!("  {arn}|Env:dev: FAILED")), "{err}");
    let flat = err.replace("\n      | ", " ");
    assert!(
        flat.contains("failed to decrypt sops data key with AWS KMS: operation error KMS: Decrypt, https response error StatusCode: 400"),
        "{err}"
    );
    assert!(flat.contains("InvalidCiphertextException"), "{err}");
    // Same report as sops apart from the request id.
    let rid = regex::Regex::new(r"RequestID:\s*(\|\s*)?[A-Za-z0-9-]+,").unwrap();
    assert_eq!(
        rid.replace_all(err.trim_end(), "RequestID: X,"),
        rid.replace_all(&format!("error: {}", text(&theirs.stderr).trim_end()), "RequestID: X,")
    );
    assert_eq!(
        std::fs::read_to_string(&wrong).unwrap(),
        enc_text.replace("\"Env\": \"prod\"", "\"Env\": \"dev\"")
    );

    // A tampered ciphertext blob.
    let blob = regex::Regex::new(r#""enc": "([^"]+)""#).unwrap();
    let orig_blob = blob.captures(&enc_text).unwrap()[1].to_string();
    let tampered = enc_text.replace(&orig_blob, "dGhpcyBpcyBub3QgYSBrbXMgYmxvYg==");
    let t = s.write("tampered.json", tampered.as_bytes());
    assert_eq!(
        sops(&s, &env, &["decrypt", t.to_str().unwrap()]).status.code(),
        Some(128)
    );
    let ours = rsops(&s, &env, &["decrypt", t.to_str().unwrap()]);
    assert_eq!(ours.status.code(), Some(128));
    assert!(text(&ours.stderr).contains("failed to decrypt sops data key with AWS KMS"));

    // A key that does not exist: encryption fails like sops, nothing written.
    let missing = arn.rsplit_once('/').unwrap().0.to_string() + "/00000000-0000-0000-0000-000000000000";
    let theirs = sops(&s, &env, &["encrypt", "--kms", &missing, p.to_str().unwrap()]);
    let ours = rsops(&s, &env, &["encrypt", "-i", "--kms", &missing, p.to_str().unwrap()]);
    assert_eq!(ours.status.code(), theirs.status.code());
    let err = text(&ours.stderr);
    assert!(
        err.contains("failed to encrypt sops data key with AWS KMS") && err.contains("NotFoundException"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), PLAIN_JSON);

    // A disabled key. moto 5 does not enforce the key state on Encrypt or
    // Decrypt, so the check is parity with sops against the same server.
    let key_id = arn.rsplit_once('/').unwrap().1.to_string();
    moto.boto(&format!("kms.disable_key(KeyId='{key_id}')"));
    let e = s.write("enc.json", &enc);
    let theirs = sops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    let ours = rsops(&s, &env, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "disabled key: {}",
        text(&ours.stderr)
    );
    moto.boto(&format!("kms.enable_key(KeyId='{key_id}')"));

    // An unreachable endpoint fails fast.
    let mut dead = env.clone();
    dead.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_KMS");
    dead.push(("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"));
    let start = Instant::now();
    let ours = rsops(&s, &dead, &["decrypt", "-i", e.to_str().unwrap()]);
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(ours.status.code(), Some(128));
    let err = text(&ours.stderr).replace("\n      | ", " ");
    assert!(err.contains("operation error KMS: Decrypt, dispatch failure"), "{err}");
    assert_eq!(std::fs::read(&e).unwrap(), enc, "input untouched");
}
