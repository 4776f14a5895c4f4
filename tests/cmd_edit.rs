//! `edit` side by side with sops 3.11, driven by scripted editors
//! (`SOPS_EDITOR` / `EDITOR`): what is written back, exit codes, the
//! example documents of new files, `--show-master-keys`, and that the
//! plaintext temp file is private and always removed.

mod cmd_util;
mod common;

use cmd_util::*;
use common::{ok, text, Scratch};
use std::path::Path;

const PLAIN: &str = "\
name: service
password: hunter2
port: 5432
nested:
    token: abc
    list:
        - one
        - two
";

fn fixture(s: &Scratch) -> std::path::PathBuf {
    sops_encrypt(s, "orig.yaml", PLAIN.as_bytes())
}

/// Copy the fixture to `<tool>.yaml` and run `edit` on it with `editor`.
fn edit_copy(
    s: &Scratch,
    tool: Tool,
    orig: &Path,
    editor: &Path,
    extra_env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> (std::path::PathBuf, std::process::Output) {
    let target = s.path(&format!("{}.yaml", tool.name()));
    std::fs::copy(orig, &target).expect("copy fixture");
    let mut env = vec![("SOPS_EDITOR", p(editor))];
    env.extend_from_slice(extra_env);
    let out = run_with(s, tool, &["edit", p(&target)], &env, stdin);
    (target, out)
}

#[test]
fn modifying_one_value_changes_only_its_ciphertext() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = script(&s, "ed.sh", "sed -i 's/^port: 5432$/port: 6543/' \"$1\"\n");
    let before = enc_lines(&std::fs::read(&orig).expect("read"));
    let mut results = Vec::new();
    for tool in BOTH {
        let (target, out) = edit_copy(&s, tool, &orig, &editor, &[], None);
        ok(&out, &format!("{} edit", tool.name()));
        let after = enc_lines(&std::fs::read(&target).expect("read"));
        assert_eq!(before.len(), after.len(), "{}: value count changed", tool.name());
        for (b, a) in before.iter().zip(&after) {
            if b.starts_with("port:") {
                assert_ne!(b, a, "{}: edited value kept its ciphertext", tool.name());
                assert!(a.ends_with("type:int]"), "{}: type lost: {a}", tool.name());
            } else {
                assert_eq!(b, a, "{}: untouched value re-encrypted (IV reuse broken)", tool.name());
            }
        }
        results.push(decrypt_both(&s, &target, &[]));
    }
    assert_eq!(text(&results[0]), PLAIN.replace("5432", "6543"));
    assert_eq!(results[0], results[1]);
}

#[test]
fn unchanged_file_exits_200_and_is_not_written() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = script(&s, "noop.sh", "true\n");
    let mut outs = Vec::new();
    for tool in BOTH {
        let (target, out) = edit_copy(&s, tool, &orig, &editor, &[], None);
        assert_eq!(out.status.code(), Some(200), "{}: {}", tool.name(), text(&out.stderr));
        assert_eq!(
            std::fs::read(&target).expect("read"),
            std::fs::read(&orig).expect("read")
        );
        outs.push(out);
    }
    assert_eq!(message(&outs[0].stderr), "File has not changed, exiting.");
    assert_eq!(message(&outs[1].stderr), message(&outs[0].stderr));
}

#[test]
fn adding_a_key_appends_it() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = script(&s, "add.sh", "printf 'added: new value\\n' >> \"$1\"\n");
    let mut results = Vec::new();
    for tool in BOTH {
        let (target, out) = edit_copy(&s, tool, &orig, &editor, &[], None);
        ok(&out, &format!("{} edit", tool.name()));
        let file = text(&std::fs::read(&target).expect("read"));
        assert!(file.contains("\nadded: ENC[AES256_GCM,"), "{}: {file}", tool.name());
        results.push(decrypt_both(&s, &target, &[]));
    }
    assert_eq!(text(&results[1]), format!("{PLAIN}added: new value\n"));
    assert_eq!(results[0], results[1]);
}

#[test]
fn invalid_yaml_returns_to_the_editor_after_enter() {
    let s = Scratch::new();
    let orig = fixture(&s);
    for tool in BOTH {
        let counter = s.path(&format!("count-{}", tool.name()));
        let editor = script(
            &s,
            &format!("bad-{}.sh", tool.name()),
            &format!(
                "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
                 if [ $n = 1 ]; then printf 'a: [unclosed\\n' > \"$1\"; else printf 'a: fixed\\n' > \"$1\"; fi\n",
                c = p(&counter)
            ),
        );
        let (target, out) = edit_copy(&s, tool, &orig, &editor, &[], Some(b"\n"));
        ok(&out, &format!("{} edit", tool.name()));
        assert_eq!(std::fs::read_to_string(&counter).expect("counter").trim(), "2");
        let err = text(&out.stderr);
        assert!(
            err.contains("Could not load tree, probably due to invalid syntax"),
            "{err}"
        );
        assert!(err.contains("return to the editor, or Ctrl+C to exit."), "{err}");
        assert_eq!(text(&decrypt_both(&s, &target, &[])), "a: fixed\n");
    }
}

#[test]
fn invalid_yaml_without_input_gives_up_and_keeps_the_file() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = script(&s, "bad.sh", "printf 'a: [unclosed\\n' > \"$1\"\n");
    let (target, out) = edit_copy(&s, Tool::Rsops, &orig, &editor, &[], None);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read(&target).expect("read"),
        std::fs::read(&orig).expect("read")
    );
}

#[test]
fn failing_or_missing_editor_exits_201() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let target = s.path("t.yaml");
    let reset = || {
        std::fs::copy(&orig, &target).expect("copy");
    };
    for editor in ["false", "no-such-editor-xyz", "sh -c 'kill -TERM $$'"] {
        reset();
        let theirs = run_with(&s, Tool::Sops, &["edit", p(&target)], &[("SOPS_EDITOR", editor)], None);
        reset();
        let ours = run_with(&s, Tool::Rsops, &["edit", p(&target)], &[("SOPS_EDITOR", editor)], None);
        assert_eq!(theirs.status.code(), Some(201), "{editor}: {}", text(&theirs.stderr));
        assert_eq!(ours.status.code(), Some(201), "{editor}: {}", text(&ours.stderr));
        assert_eq!(message(&ours.stderr), message(&theirs.stderr), "{editor}");
        assert_eq!(
            std::fs::read(&target).expect("read"),
            std::fs::read(&orig).expect("read")
        );
    }
}

#[test]
fn editor_variable_with_arguments() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = r#"sh -c 'sed -i s/hunter2/swordfish/ "$1"' --"#;
    let mut results = Vec::new();
    for tool in BOTH {
        let target = s.path(&format!("{}.yaml", tool.name()));
        std::fs::copy(&orig, &target).expect("copy");
        ok(
            &run_with(&s, tool, &["edit", p(&target)], &[("EDITOR", editor)], None),
            &format!("{} edit with EDITOR", tool.name()),
        );
        results.push(decrypt_both(&s, &target, &[]));
    }
    assert_eq!(text(&results[1]), PLAIN.replace("hunter2", "swordfish"));
    assert_eq!(results[0], results[1]);
}

#[test]
fn sops_editor_wins_over_editor() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let good = script(&s, "good.sh", "sed -i s/service/daemon/ \"$1\"\n");
    for tool in BOTH {
        let target = s.path(&format!("{}.yaml", tool.name()));
        std::fs::copy(&orig, &target).expect("copy");
        ok(
            &run_with(
                &s,
                tool,
                &["edit", p(&target)],
                &[("SOPS_EDITOR", p(&good)), ("EDITOR", "false")],
                None,
            ),
            tool.name(),
        );
        assert!(text(&decrypt_both(&s, &target, &[])).starts_with("name: daemon\n"));
    }
}

/// New files: the example document shown in the editor is byte-identical
/// to sops's for every format, and the saved result decrypts with both.
#[test]
fn new_files_show_sops_example_documents() {
    let s = Scratch::new();
    let editor = script(
        &s,
        "capture.sh",
        "cp \"$1\" \"$CAP\"\n\
         if grep -q example_value \"$1\"; then sed -i s/example_value/changed_value/ \"$1\"; \
         else printf ' (edited)' >> \"$1\"; fi\n",
    );
    for ext in ["yaml", "json", "env", "ini", "bin"] {
        let mut shown = Vec::new();
        let mut plains = Vec::new();
        for tool in BOTH {
            let target = s.path(&format!("new-{}.{ext}", tool.name()));
            let cap = s.path(&format!("shown-{}.{ext}", tool.name()));
            let out = run_with(
                &s,
                tool,
                &["edit", "--age", &s.recipient, p(&target)],
                &[("SOPS_EDITOR", p(&editor)), ("CAP", p(&cap))],
                None,
            );
            ok(&out, &format!("{} edit new .{ext}", tool.name()));
            shown.push(std::fs::read(&cap).expect("captured example"));
            plains.push(decrypt_both(&s, &target, &[]));
        }
        assert_eq!(
            text(&shown[1]),
            text(&shown[0]),
            ".{ext}: rsops's example document differs from sops's"
        );
        assert_eq!(plains[0], plains[1], ".{ext}: saved new files decrypt differently");
        let plain = text(&plains[1]);
        assert!(
            plain.contains("changed_value") || plain.ends_with(" (edited)"),
            ".{ext}: edit lost: {plain}"
        );
    }
}

#[test]
fn new_file_left_unchanged_is_not_created() {
    let s = Scratch::new();
    let editor = script(&s, "noop.sh", "true\n");
    for tool in BOTH {
        let target = s.path(&format!("never-{}.yaml", tool.name()));
        let out = run_with(
            &s,
            tool,
            &["edit", "--age", &s.recipient, p(&target)],
            &[("SOPS_EDITOR", p(&editor))],
            None,
        );
        assert_eq!(out.status.code(), Some(200), "{}", tool.name());
        assert!(!target.exists(), "{}: created an unchanged new file", tool.name());
    }
}

#[test]
fn show_master_keys_shows_the_same_metadata() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let editor = script(
        &s,
        "capture.sh",
        "cp \"$1\" \"$CAP\"\nsed -i s/hunter2/letmein/ \"$1\"\n",
    );
    let mut shown = Vec::new();
    for tool in BOTH {
        let target = s.path(&format!("{}.yaml", tool.name()));
        std::fs::copy(&orig, &target).expect("copy");
        let cap = s.path(&format!("shown-{}", tool.name()));
        ok(
            &run_with(
                &s,
                tool,
                &["edit", "--show-master-keys", p(&target)],
                &[("SOPS_EDITOR", p(&editor)), ("CAP", p(&cap))],
                None,
            ),
            tool.name(),
        );
        shown.push(text(&std::fs::read(&cap).expect("captured")));
        let plain = text(&decrypt_both(&s, &target, &[]));
        // sops 3.11 silently drops edits made in --show-master-keys mode
        // (runEditorUntilOk replaces its local tree pointer only); rsops
        // keeps them, and sops reads the result.
        if tool == Tool::Rsops {
            assert_eq!(plain, PLAIN.replace("hunter2", "letmein"));
        }
    }
    assert!(shown[1].contains("\nsops:\n    age:\n"), "{}", shown[1]);
    assert_eq!(shown[1], shown[0]);
}

/// With `-s`, metadata broken in the editor is rejected and the editor
/// reopened after Enter; the fixed file is saved with the edit.
#[test]
fn show_master_keys_rejects_broken_metadata_until_fixed() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let counter = s.path("count");
    let editor = script(
        &s,
        "meta.sh",
        &format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
             if [ $n = 1 ]; then sed -i '/^sops:/,$d' \"$1\"; printf 'sops: 42\\n' >> \"$1\"; \
             else cp {o} \"$1\"; sed -i 's/^port: .*/port: 1/' \"$1\"; fi\n",
            c = p(&counter),
            o = p(&s.path("shown.yaml"))
        ),
    );
    let target = s.path("t.yaml");
    std::fs::copy(&orig, &target).expect("copy");
    // What the editor must restore on its second call: the -s view.
    let view = script(&s, "view.sh", &format!("cp \"$1\" {}\n", p(&s.path("shown.yaml"))));
    let out = run_with(
        &s,
        Tool::Rsops,
        &["edit", "-s", p(&target)],
        &[("SOPS_EDITOR", p(&view))],
        None,
    );
    assert_eq!(out.status.code(), Some(200));
    let out = run_with(
        &s,
        Tool::Rsops,
        &["edit", "-s", p(&target)],
        &[("SOPS_EDITOR", p(&editor))],
        Some(b"\n"),
    );
    ok(&out, "rsops edit -s");
    assert_eq!(std::fs::read_to_string(&counter).expect("counter").trim(), "2");
    assert_eq!(text(&decrypt_both(&s, &target, &[])), PLAIN.replace("5432", "1"));
}

/// The temp file is 0600 in a 0700 directory, named like the target, and
/// the directory is gone afterwards (on success and on failure).
#[test]
fn temp_file_is_private_and_removed() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).expect("tmp dir");
    for (editor_body, expect_ok) in [("sed -i s/abc/xyz/ \"$1\"\n", true), ("exit 3\n", false)] {
        for tool in BOTH {
            let info = s.path(&format!("info-{}", tool.name()));
            let editor = script(
                &s,
                &format!("modes-{}.sh", tool.name()),
                &format!(
                    "stat -c '%a' \"$(dirname \"$1\")\" > {i}\n\
                     stat -c '%a' \"$1\" >> {i}\necho \"$1\" >> {i}\n{editor_body}",
                    i = p(&info)
                ),
            );
            let (_, out) = edit_copy(&s, tool, &orig, &editor, &[("TMPDIR", p(&tmp))], None);
            assert_eq!(
                out.status.success(),
                expect_ok,
                "{}: {}",
                tool.name(),
                text(&out.stderr)
            );
            let info = std::fs::read_to_string(&info).expect("editor ran");
            let lines: Vec<&str> = info.lines().collect();
            assert_eq!(lines[0], "700", "{}: dir mode", tool.name());
            assert_eq!(lines[1], "600", "{}: file mode", tool.name());
            let path = Path::new(lines[2]);
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(format!("{}.yaml", tool.name()).as_str())
            );
            assert!(
                path.starts_with(&tmp),
                "{}: temp file outside TMPDIR: {}",
                tool.name(),
                path.display()
            );
            assert_eq!(entries(&tmp), Vec::<String>::new(), "{}: temp files left", tool.name());
        }
    }
}

/// SIGTERM to rsops while the editor runs removes the temp directory (sops
/// 3.12.2+ behaviour; 3.11 leaves it behind, so rsops only).
#[test]
fn sigterm_during_edit_removes_the_temp_dir() {
    let s = Scratch::new();
    let orig = fixture(&s);
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).expect("tmp dir");
    let info = s.path("editor-info");
    let editor = script(
        &s,
        "slow.sh",
        &format!(
            "echo $$ > {i}.pid\necho \"$1\" > {i}.tmp\nmv {i}.tmp {i}\nexec sleep 30 >/dev/null 2>&1\n",
            i = p(&info)
        ),
    );
    let target = s.path("t.yaml");
    std::fs::copy(&orig, &target).expect("copy");
    let child = command(
        &s,
        Tool::Rsops,
        &["edit", p(&target)],
        &[("SOPS_EDITOR", p(&editor)), ("TMPDIR", p(&tmp))],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn rsops");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !info.exists() {
        assert!(std::time::Instant::now() < deadline, "editor never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let temp_file = std::fs::read_to_string(&info).expect("info");
    let temp_dir = Path::new(temp_file.trim()).parent().expect("parent").to_path_buf();
    assert!(temp_dir.is_dir(), "temp dir should exist while editing");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait rsops");
    // Stop the orphaned editor (our own child's child, by its pid).
    if let Ok(pid) = std::fs::read_to_string(format!("{}.pid", p(&info))) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    assert!(!out.status.success());
    assert!(
        !temp_dir.exists(),
        "temp dir left after SIGTERM: {}",
        temp_dir.display()
    );
    assert_eq!(entries(&tmp), Vec::<String>::new());
    assert_eq!(
        std::fs::read(&target).expect("read"),
        std::fs::read(&orig).expect("read")
    );
}

/// The encrypted line of key `key` (any case, JSON quotes stripped).
fn enc_line_of<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find(|l| {
            let name = l.trim_start().split(['=', ':']).next().unwrap_or("");
            name.trim().trim_matches('"').eq_ignore_ascii_case(key)
        })
        .unwrap_or_else(|| panic!("no encrypted line for {key} in {lines:?}"))
}

/// Editing existing files of the other formats: one value changed, the
/// rest of the ciphertexts kept, and sops reads the result.
#[test]
fn edit_other_formats() {
    let s = Scratch::new();
    let cases: [(&str, &str, &str); 4] = [
        (
            "f.json",
            "{\n\t\"a\": \"keep\",\n\t\"b\": \"old\"\n}",
            "{\n\t\"a\": \"keep\",\n\t\"b\": \"new\"\n}",
        ),
        ("f.env", "A=keep\nB=old\n", "A=keep\nB=new\n"),
        ("f.ini", "[s]\na = keep\nb = old\n", "[s]\na = keep\nb = new\n"),
        ("f.bin", "old", "new"),
    ];
    let editor = script(&s, "ed.sh", "sed -i s/old/new/ \"$1\"\n");
    for (name, plain, expected) in cases {
        let orig = sops_encrypt(&s, name, plain.as_bytes());
        let before = enc_lines(&std::fs::read(&orig).expect("read"));
        for tool in BOTH {
            let target = s.path(&format!("{}-{name}", tool.name()));
            std::fs::copy(&orig, &target).expect("copy");
            ok(
                &run_with(&s, tool, &["edit", p(&target)], &[("SOPS_EDITOR", p(&editor))], None),
                &format!("{} edit {name}", tool.name()),
            );
            let after = enc_lines(&std::fs::read(&target).expect("read"));
            if name != "f.bin" {
                // By key, not by position: sops once wrote the INI keys in
                // another order after the edit (a CI run).
                let (kept, changed) = (enc_line_of(&before, "a"), enc_line_of(&before, "b"));
                assert_eq!(
                    kept,
                    enc_line_of(&after, "a"),
                    "{}: {name}: kept value re-encrypted",
                    tool.name()
                );
                assert_ne!(changed, enc_line_of(&after, "b"), "{}: {name}", tool.name());
            }
            let plain_out = decrypt_both(&s, &target, &[]);
            assert_eq!(
                text(&plain_out).trim_end(),
                expected.trim_end(),
                "{}: {name}",
                tool.name()
            );
        }
    }
}
