//! age identity sources, SSH recipients, stdin handling and `.sops.yaml`
//! discovery and rules, side by side with the real sops 3.11.

mod common;

use common::{ok, text, Scratch};
use std::path::Path;
use std::process::Command;

fn ssh_keygen(path: &Path, kind: &str) -> String {
    let keygen = common::require_tool("ssh-keygen");
    let mut args = vec![
        "-q",
        "-t",
        kind,
        "-N",
        "",
        "-C",
        "user@host",
        "-f",
        path.to_str().unwrap(),
    ];
    if kind == "rsa" {
        args.extend(["-b", "2048"]);
    }
    let out = Command::new(keygen).args(&args).output().expect("run ssh-keygen");
    assert!(out.status.success(), "ssh-keygen failed: {}", text(&out.stderr));
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_string()
}

#[test]
fn ssh_recipients_and_identities_both_ways() {
    let s = Scratch::new();
    let plain = s.write("s.yaml", b"token: abc\n");
    for kind in ["ed25519", "rsa"] {
        let key = s.path(&format!("id_{kind}"));
        let public = ssh_keygen(&key, kind);
        let sops_enc = s.write(
            &format!("sops-{kind}.yaml"),
            &ok(
                &s.sops(&["encrypt", "--age", &public, plain.to_str().unwrap()]),
                "sops encrypt ssh",
            ),
        );
        let rs_enc_bytes = ok(
            &s.rsops(&["encrypt", "--age", &public, plain.to_str().unwrap()]),
            "rsops encrypt ssh",
        );
        // The recipient (with its comment) is stored verbatim, like sops.
        assert!(
            text(&rs_enc_bytes).contains(&format!("recipient: {public}")),
            "{}",
            text(&rs_enc_bytes)
        );
        let rs_enc = s.write(&format!("rsops-{kind}.yaml"), &rs_enc_bytes);
        for (tool, file) in [("rsops", &sops_enc), ("sops", &rs_enc)] {
            let program = if tool == "rsops" {
                common::rsops()
            } else {
                common::sops_ref()
            };
            let out = s
                .cmd(&program)
                .env_remove("SOPS_AGE_KEY_FILE")
                .env("SOPS_AGE_SSH_PRIVATE_KEY_FILE", &key)
                .args(["decrypt", file.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(text(&ok(&out, &format!("{tool} decrypt {kind}"))), "token: abc\n");
        }
        // ~/.ssh/id_<kind> is tried without any variable.
        let ssh_dir = s.path(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(&key, ssh_dir.join(format!("id_{kind}"))).unwrap();
        let out = s
            .cmd(&common::rsops())
            .env_remove("SOPS_AGE_KEY_FILE")
            .args(["decrypt", sops_enc.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(text(&ok(&out, "rsops decrypt with ~/.ssh key")), "token: abc\n");
        std::fs::remove_dir_all(&ssh_dir).unwrap();
    }
}

#[test]
fn every_age_identity_source_works() {
    let s = Scratch::new();
    let plain = s.write("a.yaml", b"k: v\n");
    let enc = s.write(
        "a.enc.yaml",
        &ok(
            &s.sops(&["encrypt", "--age", &s.recipient, plain.to_str().unwrap()]),
            "encrypt",
        ),
    );
    let enc = enc.to_str().unwrap();
    let key_text = std::fs::read_to_string(&s.key_file).unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut c = s.cmd(&common::rsops());
        c.env_remove("SOPS_AGE_KEY_FILE");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.args(["decrypt", enc]).output().unwrap()
    };
    assert_eq!(
        text(&ok(&run(&[("SOPS_AGE_KEY", &key_text)]), "SOPS_AGE_KEY")),
        "k: v\n"
    );
    let cmd = format!("cat {}", s.key_file.display());
    assert_eq!(
        text(&ok(&run(&[("SOPS_AGE_KEY_CMD", &cmd)]), "SOPS_AGE_KEY_CMD")),
        "k: v\n"
    );
    // The default key file under the user config dir.
    let cfg = s.path("xdg");
    std::fs::create_dir_all(cfg.join("sops/age")).unwrap();
    std::fs::write(cfg.join("sops/age/keys.txt"), &key_text).unwrap();
    assert_eq!(
        text(&ok(
            &run(&[("XDG_CONFIG_HOME", cfg.to_str().unwrap())]),
            "default keys.txt"
        )),
        "k: v\n"
    );
    // A broken SOPS_AGE_KEY is reported by source, without echoing it.
    let out = run(&[("SOPS_AGE_KEY", "AGE-SECRET-KEY-NOTREALLYAKEY")]);
    assert_eq!(out.status.code(), Some(128));
    let err = text(&out.stderr);
    assert!(err.contains("'SOPS_AGE_KEY'") && !err.contains("NOTREALLY"), "{err}");
    // Recipients from SOPS_AGE_RECIPIENTS.
    let out = s
        .cmd(&common::rsops())
        .env("SOPS_AGE_RECIPIENTS", &s.recipient)
        .args(["encrypt", plain.to_str().unwrap()])
        .output()
        .unwrap();
    let e = s.write("env.enc.yaml", &ok(&out, "encrypt with SOPS_AGE_RECIPIENTS"));
    assert_eq!(
        text(&ok(&s.sops(&["decrypt", e.to_str().unwrap()]), "sops decrypt")),
        "k: v\n"
    );
}

#[test]
fn stdin_and_filename_override() {
    let s = Scratch::new();
    let mut child = s
        .cmd(&common::rsops())
        .args(["encrypt", "--age", &s.recipient, "--filename-override", "x.json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"{\"a\": \"b\"}").unwrap();
    let out = child.wait_with_output().unwrap();
    let enc = s.write("from-stdin.json", &ok(&out, "encrypt from stdin"));
    assert_eq!(
        text(&ok(&s.sops(&["decrypt", enc.to_str().unwrap()]), "sops decrypt")),
        "{\n\t\"a\": \"b\"\n}\n"
    );
    // Without an override, stdin has no format: sops and rsops both refuse.
    let ours = s.rsops(&["encrypt", "--age", &s.recipient]);
    let theirs = s.sops(&["encrypt", "--age", &s.recipient]);
    assert_eq!(ours.status.code(), theirs.status.code());
}

#[test]
fn config_discovery_and_rules_match_sops() {
    let s = Scratch::new();
    let other = s.path("k2.txt");
    let r2 = common::new_age_key(&other);
    std::fs::create_dir_all(s.path("sub/deeper")).unwrap();
    let cfg = format!(
        "creation_rules:\n  - path_regex: ^sub/.*secret\\.yaml$\n    encrypted_regex: ^pass\n    age: {}\n  - path_regex: \\.yaml$\n    age: {r2}\n",
        s.recipient
    );
    s.write(".sops.yaml", cfg.as_bytes());
    s.write("sub/deeper/secret.yaml", b"password: p\nuser: u\n");
    s.write("sub/deeper/plain.yaml", b"password: p\nuser: u\n");
    let deeper = s.path("sub/deeper");
    for file in ["secret.yaml", "plain.yaml"] {
        // Run from the subdirectory: the config is found upwards, and the
        // regex is matched relative to the config's directory.
        let ours = s
            .cmd(&common::rsops())
            .current_dir(&deeper)
            .args(["encrypt", file])
            .output()
            .unwrap();
        let theirs = s
            .cmd(&common::sops_ref())
            .current_dir(&deeper)
            .args(["encrypt", file])
            .output()
            .unwrap();
        let (ours, theirs) = (text(&ok(&ours, "rsops encrypt")), text(&ok(&theirs, "sops encrypt")));
        assert_eq!(
            common::normalize_encrypted(&ours),
            common::normalize_encrypted(&theirs),
            "{file}"
        );
    }
    // Rules but no match: fatal even with --age, as in sops.
    s.write("sub/deeper/x.txt", b"data");
    let args = ["encrypt", "--age", s.recipient.as_str(), "x.txt"];
    let ours = s
        .cmd(&common::rsops())
        .current_dir(&deeper)
        .args(args)
        .output()
        .unwrap();
    let theirs = s
        .cmd(&common::sops_ref())
        .current_dir(&deeper)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(ours.status.code(), theirs.status.code());
    assert!(
        text(&ours.stderr).contains("no matching creation rules found"),
        "{}",
        text(&ours.stderr)
    );
    // A key env var overrides the rule's keys (sops §11.6).
    let out = s
        .cmd(&common::rsops())
        .current_dir(&deeper)
        .env("SOPS_AGE_RECIPIENTS", &r2)
        .args(["encrypt", "secret.yaml"])
        .output()
        .unwrap();
    assert!(text(&ok(&out, "env override")).contains(&r2));
}

#[test]
fn explicit_config_and_broken_config() {
    let s = Scratch::new();
    let plain = s.write("a.yaml", b"a:\n    b: c\n");
    s.write(
        "my.yaml",
        format!(
            "creation_rules:\n  - age: {}\nstores:\n  yaml:\n    indent: 2\n",
            s.recipient
        )
        .as_bytes(),
    );
    // --config (before the subcommand, as sops requires) and SOPS_CONFIG.
    let ours = ok(
        &s.rsops(&["--config", "my.yaml", "encrypt", plain.to_str().unwrap()]),
        "rsops --config",
    );
    let theirs = ok(
        &s.sops(&["--config", "my.yaml", "encrypt", plain.to_str().unwrap()]),
        "sops --config",
    );
    assert_eq!(
        common::normalize_encrypted(&text(&ours)),
        common::normalize_encrypted(&text(&theirs))
    );
    assert!(
        text(&ours).contains("\n  b: ENC["),
        "stores.yaml.indent applied: {}",
        text(&ours)
    );
    let out = s
        .cmd(&common::rsops())
        .env("SOPS_CONFIG", "my.yaml")
        .args(["encrypt", plain.to_str().unwrap()])
        .output()
        .unwrap();
    let via_env = text(&ok(&out, "SOPS_CONFIG"));
    assert_eq!(
        common::normalize_encrypted(&via_env),
        common::normalize_encrypted(&text(&ours))
    );
    // A broken config breaks every command and names the file and line.
    s.write(".sops.yaml", b"creation_rules:\n  - path_regex: [\n");
    let enc = s.write("e.yaml", &ours);
    let args = ["decrypt", enc.to_str().unwrap()];
    let (o, t) = (s.rsops(&args), s.sops(&args));
    assert_eq!(o.status.code(), t.status.code());
    let err = text(&o.stderr);
    assert!(
        err.starts_with("error: ") && err.contains(".sops.yaml") && err.contains("line 2"),
        "{err}"
    );
    // `.sops.yml` is ignored with a warning.
    std::fs::remove_file(s.path(".sops.yaml")).unwrap();
    s.write(".sops.yml", b"creation_rules: []\n");
    let out = s.rsops(&["decrypt", enc.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains(".sops.yml"), "{}", text(&out.stderr));
}
