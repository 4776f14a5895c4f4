//! `exec-env` and `exec-file` (spec §11.9): hand decrypted secrets to a
//! command without writing them to disk (a FIFO by default for exec-file).

use crate::cli::common::{self, codes, CliError, CliResult};
use crate::cli::rewrite::FileContext;
use rsops::sopsfile;
use rsops::stores::dotenv::value_to_string;
use rsops::tree::Key;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct ExecOptions {
    pub positionals: Vec<String>,
    pub background: bool,
    pub user: Option<String>,
    pub decryption_order: Option<String>,
    pub config_path: Option<PathBuf>,
}

/// A user's ids and home from `/etc/passwd`.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn lookup_user(name: &str) -> CliResult<PasswdEntry> {
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| CliError::new(codes::GENERIC, format!("cannot look up user {name}: {e}")))?;
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7 && (f[0] == name || f[2] == name)).then(|| {
                Some(PasswdEntry {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_string(),
                })
            })?
        })
        .next()
        .ok_or_else(|| CliError::new(codes::GENERIC, format!("user: unknown user {name}")))
}

fn shell(command: &str, user: Option<&PasswdEntry>) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    if let Some(u) = user {
        cmd.uid(u.uid)
            .gid(u.gid)
            .env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name);
    }
    cmd
}

/// Run the command; the child's exit status becomes ours.
fn run_child(mut cmd: Command, background: bool) -> CliResult<()> {
    if background {
        cmd.spawn()
            .map_err(|e| CliError::new(codes::GENERIC, format!("could not start command: {e}")))?;
        return Ok(());
    }
    let status = cmd
        .status()
        .map_err(|e| CliError::new(codes::GENERIC, format!("could not start command: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(CliError::new(code, format!("exit status {code}"))),
        None => {
            use std::os::unix::process::ExitStatusExt;
            let sig = status.signal().unwrap_or(0);
            Err(CliError::new(128 + sig, format!("command killed by signal {sig}")))
        }
    }
}

fn two_positionals(p: &[String]) -> CliResult<(&str, &str)> {
    match p {
        [file, command] => Ok((file, command)),
        _ => {
            Err(CliError::new(codes::GENERIC, "missing file to decrypt")
                .hint("usage: rsops exec-env <file> '<command>'"))
        }
    }
}

pub fn exec_env(opts: ExecOptions, pristine: bool, same_process: bool) -> CliResult<()> {
    if same_process && opts.background {
        return Err(CliError::new(
            codes::CONFLICTING_PARAMETERS,
            "background is not allowed with same-process",
        ));
    }
    let (file, command) = two_positionals(&opts.positionals)?;
    let file = Path::new(file);
    let ctx = FileContext::new(file, None, None, opts.config_path.as_deref(), &opts.decryption_order)?;
    let opened = ctx.open(file, false)?;
    let mut vars: Vec<(String, OsString)> = Vec::new();
    if let Some(first) = opened.doc.branches.first() {
        for item in &first.0 {
            let Key::Str(k) = &item.key else { continue };
            if k.contains('=') {
                return Err(CliError::new(
                    codes::GENERIC,
                    format!("cannot use key containing '=' in environment: {k}"),
                ));
            }
            let value = value_to_string(&item.value).ok_or_else(|| {
                CliError::new(
                    codes::GENERIC,
                    format!("cannot use complex value in environment; offending key {k}"),
                )
            })?;
            vars.push((k.clone(), OsString::from_vec(value)));
        }
    }
    let user = opts.user.as_deref().map(lookup_user).transpose()?;
    let mut cmd = shell(command, user.as_ref());
    if pristine {
        cmd.env_clear();
        if let Some(u) = &user {
            cmd.env("HOME", &u.home).env("USER", &u.name).env("LOGNAME", &u.name);
        }
    }
    cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    if same_process {
        let err = cmd.exec();
        return Err(CliError::new(codes::GENERIC, format!("could not exec command: {err}")));
    }
    run_child(cmd, opts.background)
}

/// Removes the private directory (and the plaintext in it) when dropped.
struct PrivateDir(PathBuf);

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub struct ExecFileOptions {
    pub no_fifo: bool,
    pub input_type: Option<String>,
    pub output_type: Option<String>,
    pub filename: Option<String>,
}

pub fn exec_file(opts: ExecOptions, file_opts: ExecFileOptions) -> CliResult<()> {
    let (file, command) = two_positionals(&opts.positionals)?;
    let file = Path::new(file);
    // Like sops: `tmp-file` for the FIFO, a random `tmp-file<digits>` name
    // (Go's `os.CreateTemp` pattern) for the regular file.
    let filename = file_opts.filename.clone().unwrap_or_else(|| {
        if file_opts.no_fifo {
            format!("tmp-file{}", rand::random::<u32>())
        } else {
            "tmp-file".to_string()
        }
    });
    if filename.is_empty() || filename.contains('/') || filename == "." || filename == ".." {
        return Err(CliError::new(
            codes::GENERIC,
            format!("--filename must be a plain file name, got {filename:?}"),
        ));
    }
    let ctx = FileContext::new(
        file,
        file_opts.input_type.as_deref(),
        file_opts.output_type.as_deref(),
        opts.config_path.as_deref(),
        &opts.decryption_order,
    )?;
    let opened = ctx.open(file, false)?;
    let plaintext = zeroize::Zeroizing::new(
        sopsfile::emit_plain(ctx.out_format, &ctx.settings, &opened.doc)
            .map_err(|e| CliError::new(codes::ERROR_DUMPING_TREE, format!("Error dumping file: {e}")))?,
    );
    drop(opened);
    let dir = std::env::temp_dir().join(format!(".sops{:016x}", rand::random::<u64>()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| {
        CliError::new(
            codes::COULD_NOT_WRITE_OUTPUT_FILE,
            format!("Could not create temporary directory: {e}"),
        )
    })?;
    let dir = PrivateDir(dir);
    let path = dir.0.join(&filename);
    let write_err = |e: std::io::Error| {
        CliError::new(
            codes::COULD_NOT_WRITE_OUTPUT_FILE,
            format!("Could not write temporary file: {e}"),
        )
    };
    if file_opts.no_fifo {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&plaintext))
            .map_err(write_err)?;
    } else {
        mkfifo(&path).map_err(write_err)?;
        let fifo = path.clone();
        let data = plaintext.clone();
        // Opening a FIFO for writing blocks until the command opens it for
        // reading; if it never does, this thread ends with the process.
        std::thread::spawn(move || {
            use std::io::Write;
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                let _ = f.write_all(&data);
            }
        });
    }
    drop(plaintext);
    let command = command.replace("{}", &path.to_string_lossy());
    let user = opts.user.as_deref().map(lookup_user).transpose()?;
    let result = run_child(shell(&command, user.as_ref()), false);
    drop(dir);
    result
}

pub fn warn_background() {
    common::warn("--background is deprecated and will be removed in a future version");
}
