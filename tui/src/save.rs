//! Saving: write a temporary file next to the target, flush it to disk,
//! give it the target's permissions (and owner, where allowed), then
//! rename it over the target. A crash or a full disk leaves either the old
//! file or the new one, never half of one. Symlinks are followed, so the
//! link stays a link.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ropey::Rope;

/// Writes `text` to `path` atomically; returns the path written.
pub fn save_atomic(path: &Path, text: &Rope) -> io::Result<PathBuf> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let old = fs::metadata(&target).ok();
    let tmp = dir.join(format!(
        ".{}.collab-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let written = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::new(file);
        for chunk in text.chunks() {
            w.write_all(chunk.as_bytes())?;
        }
        let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        if let Some(meta) = &old {
            file.set_permissions(meta.permissions())?;
            // Keep the owner when we may (root editing someone's file).
            let _ = std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()));
        }
        file.sync_all()?;
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("collab-save-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replaces_the_file_and_keeps_its_mode() {
        let dir = scratch("mode");
        let path = dir.join("run.sh");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
        save_atomic(&path, &Rope::from_str("#!/bin/sh\necho hi\n")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "#!/bin/sh\necho hi\n");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn creates_new_files_and_follows_symlinks() {
        let dir = scratch("link");
        let real = dir.join("real.txt");
        fs::write(&real, "x").unwrap();
        let link = dir.join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        save_atomic(&link, &Rope::from_str("through the link")).unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "through the link");
        let fresh = dir.join("new.txt");
        save_atomic(&fresh, &Rope::from_str("new")).unwrap();
        assert_eq!(fs::read_to_string(&fresh).unwrap(), "new");
        assert!(save_atomic(&dir.join("no/such/dir.txt"), &Rope::new()).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
