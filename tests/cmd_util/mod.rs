//! Helpers for the `cmd_*` command-surface tests: run sops and rsops side by
//! side with extra environment and stdin, scripted editors, error-message
//! normalisation and ciphertext-line comparisons.
//!
//! Missing tools (sops, age-keygen, sh) make tests fail, never skip.

#![allow(dead_code)]

use crate::common::{new_age_key, ok, rsops, sops_ref, text, Scratch};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Which implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Sops,
    Rsops,
}

pub const BOTH: [Tool; 2] = [Tool::Sops, Tool::Rsops];

impl Tool {
    pub fn path(self) -> PathBuf {
        match self {
            Tool::Sops => sops_ref(),
            Tool::Rsops => rsops(),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Tool::Sops => "sops",
            Tool::Rsops => "rsops",
        }
    }
}

/// One invocation: arguments, extra environment, optional stdin.
pub struct Run<'a> {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<&'a [u8]>,
}

pub fn run(s: &Scratch, tool: Tool, args: &[&str]) -> Output {
    run_with(s, tool, args, &[], None)
}

pub fn run_with(s: &Scratch, tool: Tool, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
    let mut c = command(s, tool, args, env);
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.name()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        // The tool may exit before reading everything; ignore EPIPE.
        let _ = pipe.write_all(input);
    }
    child.wait_with_output().expect("wait for tool")
}

/// The command with the scratch environment plus `env`.
pub fn command(s: &Scratch, tool: Tool, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = s.cmd(&tool.path());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// The error message without the presentation each tool adds: rsops's
/// `error: ` prefix and `hint:` lines, sops's `Error: ` prefix, or the
/// `msg="…"` of a logrus line.
pub fn message(stderr: &[u8]) -> String {
    let logrus = regex::Regex::new(r#"level=\w+ msg="((?:[^"\\]|\\.)*)""#).expect("static regex");
    let mut lines = Vec::new();
    for line in text(stderr).lines() {
        if line.starts_with("hint: ") {
            continue;
        }
        if let Some(c) = logrus.captures(line) {
            lines.push(c[1].replace("\\\"", "\""));
            continue;
        }
        let line = line
            .strip_prefix("error: ")
            .or_else(|| line.strip_prefix("Error: "))
            .unwrap_or(line);
        lines.push(line.to_string());
    }
    lines.join("\n").trim().to_string()
}

/// Run the same arguments with both tools; assert the same exit code and
/// the same error message (see [`message`]). Returns (sops, rsops) outputs.
#[track_caller]
pub fn same_failure(s: &Scratch, args: &[&str], setup: &dyn Fn(), what: &str) -> (Output, Output) {
    setup();
    let theirs = run(s, Tool::Sops, args);
    setup();
    let ours = run(s, Tool::Rsops, args);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "{what}: exit codes differ\nsops: {}\nrsops: {}",
        text(&theirs.stderr),
        text(&ours.stderr)
    );
    assert_eq!(
        message(&ours.stderr),
        message(&theirs.stderr),
        "{what}: messages differ"
    );
    (theirs, ours)
}

/// Write an executable `/bin/sh` script into the scratch dir.
pub fn script(s: &Scratch, name: &str, body: &str) -> PathBuf {
    let p = s.write(name, format!("#!/bin/sh\n{body}").as_bytes());
    let mut perm = std::fs::metadata(&p).expect("script metadata").permissions();
    perm.set_mode(0o755);
    std::fs::set_permissions(&p, perm).expect("chmod script");
    p
}

/// Lines holding a value's ciphertext (`ENC[...]`), without `sops:` metadata.
pub fn enc_lines(file: &[u8]) -> Vec<String> {
    text(file)
        .lines()
        .filter(|l| l.contains("ENC[") && !l.contains("mac") && !l.starts_with("sops_mac"))
        .map(str::to_string)
        .collect()
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

/// Decrypt `file` with both tools; assert both succeed with the same bytes and return them.
#[track_caller]
pub fn decrypt_both(s: &Scratch, file: &Path, env: &[(&str, &str)]) -> Vec<u8> {
    let theirs = ok(
        &run_with(s, Tool::Sops, &["decrypt", p(file)], env, None),
        "sops decrypt",
    );
    let ours = ok(
        &run_with(s, Tool::Rsops, &["decrypt", p(file)], env, None),
        "rsops decrypt",
    );
    assert_eq!(
        text(&ours),
        text(&theirs),
        "rsops and sops decrypt {} differently",
        file.display()
    );
    theirs
}

/// Encrypt `plain` (content) as `name` with sops for the scratch recipient.
pub fn sops_encrypt(s: &Scratch, name: &str, plain: &[u8]) -> PathBuf {
    let src = s.write(&format!("plain-{name}"), plain);
    let out = ok(
        &run(
            s,
            Tool::Sops,
            &["encrypt", "--filename-override", name, "--age", &s.recipient, p(&src)],
        ),
        "sops encrypt",
    );
    s.write(name, &out)
}

/// Extra age identities: returns (recipient, key file path) for each.
pub fn extra_keys(s: &Scratch, names: &[&str]) -> Vec<(String, PathBuf)> {
    names
        .iter()
        .map(|n| {
            let f = s.path(&format!("{n}.agekey"));
            let r = new_age_key(&f);
            (r, f)
        })
        .collect()
}

/// Concatenate identity files into one key file.
pub fn key_file(s: &Scratch, name: &str, files: &[&Path]) -> PathBuf {
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(f).expect("read key file"));
    }
    s.write(name, &all)
}

/// Replace timestamps of Go's standard logger (`2006/01/02 15:04:05 `).
pub fn mask_log_time(s: &str) -> String {
    regex::Regex::new(r"(?m)^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} ")
        .expect("static regex")
        .replace_all(s, "TIME ")
        .into_owned()
}

/// Entries of a directory (names), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn require_sh() {
    assert!(Path::new("/bin/sh").is_file(), "/bin/sh is required by this test");
}
