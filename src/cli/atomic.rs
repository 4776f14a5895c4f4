//! Atomic file replacement: the target is either the old or the new content,
//! never a truncated mix, whatever fails when.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Removes the temp file unless the write completed.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// Write `bytes` to `path` atomically. Special files (a FIFO, `/dev/stdout`)
/// are written directly; symlinks are followed so the link stays a link.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_file_with::<std::convert::Infallible>(path, |f| f.write_all(bytes).map_err(WriteError::Io)).map_err(|e| {
        match e {
            WriteError::Io(e) => e,
            WriteError::Content(never) => match never {},
        }
    })
}

/// Why [`write_file_with`] failed: the content producer's own error, or I/O.
pub enum WriteError<E> {
    Content(E),
    Io(io::Error),
}

impl<E> From<io::Error> for WriteError<E> {
    fn from(e: io::Error) -> WriteError<E> {
        WriteError::Io(e)
    }
}

/// [`write_file`] with the content streamed by `fill`. If `fill` fails the
/// temp file is removed and `path` keeps its old content.
pub fn write_file_with<E>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), WriteError<E>>,
) -> Result<(), WriteError<E>> {
    let meta = fs::metadata(path).ok();
    if let Some(m) = &meta {
        if !m.is_file() {
            let mut f = OpenOptions::new().write(true).truncate(true).open(path)?;
            return fill(&mut f);
        }
    }
    let target = if meta.is_some() {
        fs::canonicalize(path)?
    } else {
        path.to_path_buf()
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    let tmp = dir.join(format!(".{name}.rsops-{}.tmp", random_suffix()));
    // create_new: never follow or reuse an existing path. New files get
    // 0666 minus the umask, like sops' os.Create.
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    if let Some(m) = &meta {
        fs::set_permissions(&tmp, m.permissions())?;
    }
    fill(&mut file)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, &target)?;
    guard.0 = None;
    // Make the rename durable too.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn failed_stream_keeps_the_old_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        fs::write(&p, b"old").unwrap();
        let r = write_file_with(&p, |f| {
            f.write_all(b"partial new content")?;
            Err(WriteError::Content("refused"))
        });
        assert!(matches!(r, Err(WriteError::Content("refused"))));
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn keeps_mode_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.yaml");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_file(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&real, b"old").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }
}
