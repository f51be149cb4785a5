//! Files the simulator writes (charts, traces, schedules): created without
//! following symlinks, so that a name chosen by an untrusted script stays
//! inside the output folder.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// Creates (or truncates) the file at `path`, refusing to follow a symlink
/// in its last component.
pub fn create(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symlink; output files are never written through one",
                    path.display()
                ),
            )
        } else {
            e
        }
    })
}

/// Writes `bytes` to the file at `path` with [`create`].
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create(path)?.write_all(bytes)
}

/// The path of `relative` inside `dir`, with its folders created: an error
/// when `relative` is absolute, has `..`, or passes through a symlink
/// inside `dir` (a symlink could lead outside it).
pub fn inside(dir: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut path = dir.to_path_buf();
    let parts: Vec<Component> = relative.components().collect();
    if parts.is_empty() || !parts.iter().all(|c| matches!(c, Component::Normal(_))) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} must be a relative path without `..`",
                relative.display()
            ),
        ));
    }
    std::fs::create_dir_all(dir)?;
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symlink; output files are never written through one",
                        path.display()
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && !last => {
                std::fs::create_dir(&path)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_never_followed() {
        let dir = std::env::temp_dir().join(format!("simcli-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, out.join("link")).unwrap();
            std::os::unix::fs::symlink(outside.join("f"), out.join("file")).unwrap();
            assert!(inside(&out, Path::new("link/x.png")).is_err());
            assert!(write(&out.join("file"), b"x").is_err());
            assert!(!outside.join("f").exists());
        }
        assert!(inside(&out, Path::new("../x.png")).is_err());
        let fine = inside(&out, Path::new("a/b/x.png")).unwrap();
        write(&fine, b"x").unwrap();
        assert_eq!(std::fs::read(&fine).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
