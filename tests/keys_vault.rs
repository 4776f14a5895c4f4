//! Vault transit master keys against a real OpenBao dev server, interoperating
//! with the real sops 3.11 both ways.

mod common;
mod keys_support;

use common::{ok, text, Scratch};
use keys_support::{rsops, sops, Bao, BAO_TOKEN, PLAIN_JSON};
use std::time::{Duration, Instant};

const TOKEN: [(&str, &str); 1] = [("VAULT_TOKEN", BAO_TOKEN)];

#[test]
fn both_directions_with_simple_and_nested_engine_paths() {
    let bao = Bao::start();
    bao.transit_key("sops", "k1");
    bao.transit_key("a/b", "k");
    let s = Scratch::new();
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    for (engine, key) in [("sops", "k1"), ("a/b", "k")] {
        let uri = bao.uri(engine, key);
        // sops → rsops
        let enc = ok(
            &sops(
                &s,
                &TOKEN,
                &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
            ),
            "sops encrypt",
        );
        let e = s.write("from-sops.json", &enc);
        let theirs = ok(&sops(&s, &TOKEN, &["decrypt", e.to_str().unwrap()]), "sops decrypt");
        let ours = ok(&rsops(&s, &TOKEN, &["decrypt", e.to_str().unwrap()]), "rsops decrypt");
        assert_eq!(ours, theirs);
        assert_eq!(text(&ours), PLAIN_JSON);
        // rsops → sops, with the same metadata fields
        let enc = ok(
            &rsops(
                &s,
                &TOKEN,
                &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
            ),
            "rsops encrypt",
        );
        let t = text(&enc);
        assert!(t.contains(&format!("\"vault_address\": \"{}\"", bao.addr())), "{t}");
        assert!(t.contains(&format!("\"engine_path\": \"{engine}\"")), "{t}");
        assert!(t.contains(&format!("\"key_name\": \"{key}\"")), "{t}");
        assert!(t.contains("\"enc\": \"vault:v1:"), "{t}");
        let e = s.write("from-rsops.json", &enc);
        let theirs = ok(&sops(&s, &TOKEN, &["decrypt", e.to_str().unwrap()]), "sops decrypt");
        assert_eq!(text(&theirs), PLAIN_JSON);
    }

    // The token may come from ~/.vault-token (HOME is the scratch dir).
    let uri = bao.uri("sops", "k1");
    std::fs::write(s.path(".vault-token"), format!("  {BAO_TOKEN}\n")).unwrap();
    let enc = ok(
        &rsops(&s, &[], &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()]),
        "rsops encrypt",
    );
    let e = s.write("tokenfile.json", &enc);
    assert_eq!(
        text(&ok(&rsops(&s, &[], &["decrypt", e.to_str().unwrap()]), "rsops decrypt")),
        PLAIN_JSON
    );
    // SOPS_VAULT_URIS works like the flag.
    let env = [TOKEN[0], ("SOPS_VAULT_URIS", uri.as_str())];
    let enc = ok(
        &rsops(&s, &env, &["encrypt", p.to_str().unwrap()]),
        "rsops encrypt via SOPS_VAULT_URIS",
    );
    assert!(text(&enc).contains("\"key_name\": \"k1\""));
}

#[test]
fn server_side_rotation_keeps_old_ciphertexts_working() {
    let bao = Bao::start();
    bao.transit_key("transit", "rot");
    let s = Scratch::new();
    let uri = bao.uri("transit", "rot");
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let v1_sops = ok(
        &sops(
            &s,
            &TOKEN,
            &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
        ),
        "sops encrypt",
    );
    let v1_ours = ok(
        &rsops(
            &s,
            &TOKEN,
            &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
        ),
        "rsops encrypt",
    );
    assert!(text(&v1_ours).contains("\"enc\": \"vault:v1:"));
    bao.rotate("transit", "rot");
    let a = s.write("v1-sops.json", &v1_sops);
    let b = s.write("v1-rsops.json", &v1_ours);
    for f in [&a, &b] {
        assert_eq!(
            text(&ok(
                &rsops(&s, &TOKEN, &["decrypt", f.to_str().unwrap()]),
                "rsops decrypt v1"
            )),
            PLAIN_JSON
        );
        assert_eq!(
            text(&ok(
                &sops(&s, &TOKEN, &["decrypt", f.to_str().unwrap()]),
                "sops decrypt v1"
            )),
            PLAIN_JSON
        );
    }
    let v2 = ok(
        &rsops(
            &s,
            &TOKEN,
            &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
        ),
        "rsops encrypt",
    );
    assert!(text(&v2).contains("\"enc\": \"vault:v2:"), "{}", text(&v2));
    let c = s.write("v2.json", &v2);
    assert_eq!(
        text(&ok(
            &sops(&s, &TOKEN, &["decrypt", c.to_str().unwrap()]),
            "sops decrypt v2"
        )),
        PLAIN_JSON
    );
}

#[test]
fn wrong_token_fails_like_sops_quickly_and_leaves_input_alone() {
    let bao = Bao::start();
    bao.transit_key("sops", "k1");
    let s = Scratch::new();
    let uri = bao.uri("sops", "k1");
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &sops(
            &s,
            &TOKEN,
            &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
        ),
        "sops encrypt",
    );
    let e = s.write("enc.json", &enc);
    let bad = [("VAULT_TOKEN", "not-the-token")];

    let theirs = sops(&s, &bad, &["decrypt", e.to_str().unwrap()]);
    let start = Instant::now();
    let ours = rsops(&s, &bad, &["decrypt", "-i", e.to_str().unwrap()]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(theirs.status.code(), Some(128));
    assert_eq!(ours.status.code(), Some(128));
    let err = text(&ours.stderr);
    // Same report as sops, line for line.
    assert_eq!(err.trim_end(), format!("error: {}", text(&theirs.stderr).trim_end()));
    assert!(
        err.contains("Code: 403. Errors:") && err.contains("* permission denied"),
        "{err}"
    );
    assert!(
        !err.contains(BAO_TOKEN) && !err.contains("not-the-token"),
        "no token in errors: {err}"
    );
    assert_eq!(std::fs::read(&e).unwrap(), enc, "input untouched");

    // Encrypting with a wrong token: sops's exit code, nothing written.
    let theirs = sops(&s, &bad, &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()]);
    let ours = rsops(
        &s,
        &bad,
        &["encrypt", "-i", "--hc-vault-transit", &uri, p.to_str().unwrap()],
    );
    assert_eq!(ours.status.code(), theirs.status.code());
    let err = text(&ours.stderr);
    assert!(
        err.contains("failed to encrypt sops data key to Vault transit backend 'sops/encrypt/k1'"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&p).unwrap(), PLAIN_JSON, "input untouched");
}

#[test]
fn stopped_server_fails_quickly_with_exit_128() {
    let mut bao = Bao::start();
    bao.transit_key("sops", "k1");
    let s = Scratch::new();
    let uri = bao.uri("sops", "k1");
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let enc = ok(
        &rsops(
            &s,
            &TOKEN,
            &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()],
        ),
        "rsops encrypt",
    );
    let e = s.write("enc.json", &enc);
    bao.guard.stop();

    let start = Instant::now();
    let ours = rsops(&s, &TOKEN, &["decrypt", "-i", e.to_str().unwrap()]);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(ours.status.code(), Some(128));
    let theirs = sops(&s, &TOKEN, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(theirs.status.code(), Some(128));
    let err = text(&ours.stderr).replace("\n      | ", " ");
    assert!(
        err.contains(&format!(
            "failed to decrypt sops data key from Vault transit backend 'sops/decrypt/k1': Put \"{}/v1/sops/decrypt/k1\": connect: connection refused",
            bao.addr()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read(&e).unwrap(), enc, "input untouched");

    let start = Instant::now();
    let ours = rsops(
        &s,
        &TOKEN,
        &["encrypt", "-i", "--hc-vault-transit", &uri, p.to_str().unwrap()],
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(ours.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), PLAIN_JSON, "input untouched");
}

#[test]
fn namespace_header_is_sent() {
    let bao = Bao::start();
    let (st, b) = bao.api("POST", "/v1/sys/namespaces/team1", "{}");
    assert!(st == 200 || st == 204, "create namespace: {st} {b}");
    let ns = [("X-Vault-Token", BAO_TOKEN), ("X-Vault-Namespace", "team1")];
    let (st, b) = keys_support::http(bao.port, "POST", "/v1/sys/mounts/transit", &ns, r#"{"type":"transit"}"#).unwrap();
    assert!(st == 200 || st == 204, "mount in namespace: {st} {b}");
    let (st, b) = keys_support::http(bao.port, "POST", "/v1/transit/keys/nk", &ns, "{}").unwrap();
    assert!(st == 200 || st == 204, "key in namespace: {st} {b}");
    let s = Scratch::new();
    let uri = bao.uri("transit", "nk");
    let p = s.write("plain.json", PLAIN_JSON.as_bytes());
    let env = [TOKEN[0], ("VAULT_NAMESPACE", "team1")];
    let enc = ok(
        &rsops(&s, &env, &["encrypt", "--hc-vault-transit", &uri, p.to_str().unwrap()]),
        "rsops encrypt",
    );
    let e = s.write("enc.json", &enc);
    assert_eq!(
        text(&ok(&sops(&s, &env, &["decrypt", e.to_str().unwrap()]), "sops decrypt")),
        PLAIN_JSON
    );
    // Without the namespace the key is not found.
    let out = rsops(&s, &TOKEN, &["decrypt", e.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(128));
}
