//! `exec-env` and `exec-file` side by side with sops 3.11: what the child
//! sees, exit status pass-through, FIFO vs regular file, names, output
//! types, and that no plaintext is left behind.

mod cmd_util;
mod common;

use cmd_util::*;
use common::{ok, text, Scratch};
use std::path::PathBuf;

const YAML: &str = "\
STR: hello world
INT: 42
FLOAT: 1.5e6
BOOL: true
MULTI: |-
    line1
    line2
";

/// Run `args` with both tools (TMPDIR = a fresh scratch dir each) and
/// assert the same exit code, stdout and message; returns rsops's output.
fn same(s: &Scratch, args: &[&str], what: &str) -> std::process::Output {
    let mut outs = Vec::new();
    for tool in BOTH {
        let tmp = s.path(&format!("tmp-{}-{}", tool.name(), rand_suffix()));
        std::fs::create_dir(&tmp).expect("tmp dir");
        let out = run_with(s, tool, args, &[("TMPDIR", p(&tmp))], None);
        assert_eq!(
            entries(&tmp),
            Vec::<String>::new(),
            "{what}: {} left files in TMPDIR",
            tool.name()
        );
        outs.push(out);
    }
    let (theirs, ours) = (&outs[0], &outs[1]);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{what}: exit codes differ: {}",
        text(&ours.stderr)
    );
    assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{what}: stdout differs");
    assert_eq!(message(&ours.stderr), message(&theirs.stderr), "{what}: stderr differs");
    outs.pop().expect("rsops output")
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst).to_string()
}

fn fixtures(s: &Scratch) -> (PathBuf, PathBuf, PathBuf) {
    let yaml = sops_encrypt(s, "secrets.yaml", YAML.as_bytes());
    let env = sops_encrypt(
        s,
        "secrets.env",
        b"FOO=bar baz\nMULTI=a\\nb\n#comment\nEMPTY=\nQUOTED=\"q\"\n",
    );
    let nested = sops_encrypt(s, "nested.yaml", b"TOP: 1\nNESTED:\n    inner: x\n");
    (yaml, env, nested)
}

#[test]
fn exec_env_exposes_values() {
    require_sh();
    let s = Scratch::new();
    let (yaml, env, nested) = fixtures(&s);
    let show = r#"printf '[%s]' "$STR" "$INT" "$FLOAT" "$BOOL" "$MULTI" "$FOO" "$EMPTY" "$QUOTED"; echo"#;
    let out = same(&s, &["exec-env", p(&yaml), show], "exec-env yaml");
    assert_eq!(
        text(&out.stdout),
        "[hello world][42][1.5E+06][true][line1\nline2][][][]\n"
    );
    let out = same(&s, &["exec-env", p(&env), show], "exec-env dotenv");
    assert_eq!(text(&out.stdout), "[][][][][a\nb][bar baz][][\"q\"]\n");
    // The parent environment is inherited (PATH, HOME), and values override it.
    same(
        &s,
        &["exec-env", p(&env), r#"test -n "$PATH" && echo "$HOME" | wc -c"#],
        "inherit",
    );
    // Exit status pass-through.
    let out = same(&s, &["exec-env", p(&yaml), "exit 7"], "exit 7");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(message(&out.stderr), "exit status 7");
    // Nested values are refused.
    let out = same(&s, &["exec-env", p(&nested), "echo should not run"], "nested");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        message(&out.stderr),
        "cannot use complex value in environment; offending key NESTED"
    );
    // Arity.
    let out = same(&s, &["exec-env", p(&yaml)], "missing command");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn exec_env_pristine() {
    require_sh();
    let s = Scratch::new();
    let (yaml, _, _) = fixtures(&s);
    let out = same(&s, &["exec-env", "--pristine", p(&yaml), "env | sort"], "pristine");
    let vars: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.contains('='))
        .map(|l| l.split('=').next().unwrap_or("").to_string())
        .collect();
    assert!(vars.contains(&"STR".to_string()), "{vars:?}");
    assert!(!vars.contains(&"HOME".to_string()), "{vars:?}");
    assert!(!vars.contains(&"SOPS_AGE_KEY_FILE".to_string()), "{vars:?}");
}

#[test]
fn exec_file_fifo_by_default() {
    require_sh();
    let s = Scratch::new();
    let (yaml, _, _) = fixtures(&s);
    let cmd = "test -p {} && echo fifo; stat -c %a {}; stat -c %a \"$(dirname {})\"; basename {}; \
               basename \"$(dirname {})\" | cut -c1-5; cat {}; timeout 2 cat {}; echo second read: $?; exit 4";
    let out = same(&s, &["exec-file", p(&yaml), cmd], "exec-file fifo");
    assert_eq!(out.status.code(), Some(4));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("fifo\n600\n700\ntmp-file\n.sops\nSTR: hello world\n"),
        "{stdout}"
    );
    // Readable once: the second open blocks (no writer) until timeout.
    assert!(stdout.ends_with("    line2\nsecond read: 124\n"), "{stdout}");
}

#[test]
fn exec_file_regular_file_filename_and_output_type() {
    require_sh();
    let s = Scratch::new();
    let (yaml, env, nested) = fixtures(&s);
    // --no-fifo: a regular 0600 file named tmp-file<random>.
    let cmd = "test -f {} && echo regular; stat -c %a {}; basename {} | cut -c1-8; cat {}; cat {} | wc -c";
    let out = same(&s, &["exec-file", "--no-fifo", p(&yaml), cmd], "no-fifo");
    assert!(text(&out.stdout).starts_with("regular\n600\ntmp-file\nSTR: hello world\n"));
    // --filename, for both kinds.
    for fifo in [true, false] {
        let mut args = vec!["exec-file"];
        if !fifo {
            args.push("--no-fifo");
        }
        args.extend(["--filename", "app.conf", p(&yaml), "basename {}; cat {}"]);
        let out = same(&s, &args, "filename");
        assert!(text(&out.stdout).starts_with("app.conf\nSTR:"));
    }
    // --output-type.
    for ty in ["json", "dotenv", "yaml", "ini"] {
        same(&s, &["exec-file", "--output-type", ty, p(&yaml), "cat {}"], ty);
        same(
            &s,
            &["exec-file", "--no-fifo", "--output-type", ty, p(&env), "cat {}"],
            ty,
        );
        same(&s, &["exec-file", "--output-type", ty, p(&nested), "cat {}"], ty);
    }
    // --input-type with a misleading extension.
    let renamed = s.path("secrets.data");
    std::fs::copy(&env, &renamed).expect("copy");
    same(
        &s,
        &[
            "exec-file",
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
            p(&renamed),
            "cat {}",
        ],
        "input-type",
    );
    // Exit status pass-through and arity.
    let out = same(&s, &["exec-file", "--no-fifo", p(&yaml), "exit 9"], "exit 9");
    assert_eq!(out.status.code(), Some(9));
    same(&s, &["exec-file", p(&yaml)], "missing command");
}

/// Nothing with the plaintext survives the command: the private directory
/// is gone, and no file anywhere under TMPDIR or the working directory
/// contains a secret.
#[test]
fn exec_file_leaves_no_plaintext() {
    require_sh();
    let s = Scratch::new();
    let yaml = sops_encrypt(&s, "secrets.yaml", b"SECRET: s3cr3t-marker-value\n");
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    for args in [
        vec!["exec-file", p(&yaml), "cat {} > /dev/null; echo {} > path.txt"],
        vec![
            "exec-file",
            "--no-fifo",
            p(&yaml),
            "cat {} > /dev/null; echo {} > path.txt",
        ],
        vec!["exec-file", p(&yaml), "echo {} > path.txt; exit 5"],
    ] {
        let out = run_with(&s, Tool::Rsops, &args, &[("TMPDIR", p(&tmp))], None);
        assert!(out.status.code().is_some(), "{args:?}");
        let path = std::fs::read_to_string(s.path("path.txt")).expect("command ran");
        let path = std::path::Path::new(path.trim());
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(!path.parent().expect("parent").exists(), "temp dir left behind");
        assert_eq!(entries(&tmp), Vec::<String>::new());
        for entry in std::fs::read_dir(s.dir.path()).expect("scratch").flatten() {
            if entry.path().is_file() {
                let content = std::fs::read(entry.path()).expect("read");
                assert!(
                    !text(&content).contains("s3cr3t-marker-value")
                        || entry.file_name().to_string_lossy().starts_with("plain-"),
                    "plaintext in {}",
                    entry.path().display()
                );
            }
        }
    }
}

/// `--user` runs the command as another user with its HOME/USER/LOGNAME.
/// Only root may switch users: as root (CI) the switch must happen; otherwise
/// both tools must refuse the same way.
#[test]
fn exec_env_user() {
    require_sh();
    let s = Scratch::new();
    let (yaml, _, _) = fixtures(&s);
    let show = r#"echo "$(id -un) $USER $HOME $STR""#;
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| text(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let ours = s.rsops(&["exec-env", "--user", "nobody", p(&yaml), show]);
    if is_root {
        assert_eq!(
            text(&ok(&ours, "exec-env --user nobody")),
            "nobody nobody /nonexistent hello world\n"
        );
        let out = s.rsops(&["exec-env", "--user", "no-such-user-xyz", p(&yaml), show]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("unknown user"), "{}", text(&out.stderr));
    } else {
        let theirs = s.sops(&["exec-env", "--user", "nobody", p(&yaml), show]);
        assert_eq!(ours.status.code(), theirs.status.code());
    }
}
