//! Saving: write a temporary file next to the target, flush it to disk,
//! give it the target's permissions (and owner, where allowed), then
//! rename it over the target. A crash or a full disk leaves either the old
//! file or the new one, never half of one. Symlinks are followed, so the
//! link stays a link.
//!
//! Before writing, the file must still be what the editor last saw of it
//! ([`Expect`]): another program's change since, or a file where Save As
//! expected none, is reported rather than overwritten, and the editor asks.
//! A read-only file (no write bit) is refused: replacing it by rename would
//! succeed in a writable directory and silently drop the protection.
//!
//! A file with more than one hard link is written in place instead
//! (truncated and rewritten through the same inode), because a rename
//! would leave the other names holding the old text. That write is not
//! atomic: a crash in the middle leaves a partial file, the price of
//! keeping the link.

use std::fmt;
use std::fs::{self, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ropey::Rope;

/// What a file looked like on disk: enough to tell that another program
/// wrote it (in place or by rename) since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The stamp of the file at `path` (following symlinks); `None` when
    /// there is none.
    pub fn read(path: &Path) -> io::Result<Option<Stamp>> {
        match fs::metadata(path) {
            Ok(m) => Ok(Some(Stamp::of(&m))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What the file must be for the save to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// As when last loaded or saved (`None`: no file there).
    Unchanged(Option<Stamp>),
    /// Whatever is there: the user said to replace it.
    Anything,
}

/// A save that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where the bytes went (a symlink resolved).
    pub written: PathBuf,
    /// The file as written.
    pub stamp: Option<Stamp>,
    /// Written in place to keep its hard links.
    pub in_place: bool,
}

/// Why nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError {
    /// Another program changed (or removed) the file since it was loaded
    /// or last saved.
    Changed,
    /// A file exists where none was expected (Save As).
    Exists,
    /// The file has no write permission.
    ReadOnly { mode: u32 },
    /// The write failed (no such directory, no permission, disk full...).
    Io(String),
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::Changed => f.write_str("it changed on disk since you opened or saved it"),
            SaveError::Exists => f.write_str("it already exists"),
            SaveError::ReadOnly { mode } => write!(f, "it is read-only (mode {mode:o})"),
            SaveError::Io(e) => f.write_str(e),
        }
    }
}

impl From<io::Error> for SaveError {
    fn from(e: io::Error) -> Self {
        SaveError::Io(e.to_string())
    }
}

/// Writes `text` to `path` if the file there is as `expect`ed: atomically
/// by rename, or in place when it has other hard links.
pub fn save(path: &Path, text: &Rope, expect: Expect) -> Result<Saved, SaveError> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let old = match fs::metadata(&target) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    if let Expect::Unchanged(seen) = expect {
        let now = old.as_ref().map(Stamp::of);
        if now != seen {
            return Err(match seen {
                None => SaveError::Exists,
                Some(_) => SaveError::Changed,
            });
        }
    }
    if let Some(meta) = &old {
        if meta.permissions().readonly() {
            return Err(SaveError::ReadOnly {
                mode: meta.mode() & 0o7777,
            });
        }
        if meta.is_file() && meta.nlink() > 1 {
            write_in_place(&target, text)?;
            return Ok(Saved {
                stamp: Stamp::read(&target)?,
                written: target,
                in_place: true,
            });
        }
    }
    let written = save_atomic(&target, text)?;
    Ok(Saved {
        stamp: Stamp::read(&written)?,
        written,
        in_place: false,
    })
}

fn write_in_place(target: &Path, text: &Rope) -> io::Result<()> {
    let file = OpenOptions::new().write(true).truncate(true).open(target)?;
    let mut w = BufWriter::new(file);
    for chunk in text.chunks() {
        w.write_all(chunk.as_bytes())?;
    }
    let file = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.sync_all()
}

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

    fn stamp(path: &Path) -> Option<Stamp> {
        Stamp::read(path).unwrap()
    }

    #[test]
    fn a_file_changed_since_it_was_seen_is_not_overwritten() {
        let dir = scratch("changed");
        let path = dir.join("a.txt");
        fs::write(&path, "loaded").unwrap();
        let seen = stamp(&path);
        // Another program writes it, in place.
        fs::write(&path, "theirs, longer").unwrap();
        let text = Rope::from_str("mine");
        assert_eq!(
            save(&path, &text, Expect::Unchanged(seen)),
            Err(SaveError::Changed)
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "theirs, longer");
        // Or by rename, with the same length.
        let seen = stamp(&path);
        fs::write(dir.join("b.txt"), "theirs, LONGER").unwrap();
        fs::rename(dir.join("b.txt"), &path).unwrap();
        assert_eq!(
            save(&path, &text, Expect::Unchanged(seen)),
            Err(SaveError::Changed)
        );
        // Unchanged since: saved, and the new stamp is the file's.
        let seen = stamp(&path);
        let saved = save(&path, &text, Expect::Unchanged(seen)).unwrap();
        assert_eq!(saved.stamp, stamp(&path));
        assert_eq!(fs::read_to_string(&path).unwrap(), "mine");
        // A file where none was expected (Save As), then told to replace it.
        let other = dir.join("other.txt");
        fs::write(&other, "keep me").unwrap();
        assert_eq!(
            save(&other, &text, Expect::Unchanged(None)),
            Err(SaveError::Exists)
        );
        assert_eq!(fs::read_to_string(&other).unwrap(), "keep me");
        save(&other, &text, Expect::Anything).unwrap();
        assert_eq!(fs::read_to_string(&other).unwrap(), "mine");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_read_only_file_is_refused() {
        let dir = scratch("ro");
        let path = dir.join("ro.txt");
        fs::write(&path, "protected").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let seen = stamp(&path);
        for expect in [Expect::Unchanged(seen), Expect::Anything] {
            assert_eq!(
                save(&path, &Rope::from_str("x"), expect),
                Err(SaveError::ReadOnly { mode: 0o444 })
            );
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), "protected");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o444);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hard_linked_file_is_written_in_place() {
        let dir = scratch("hard");
        let path = dir.join("a.txt");
        let link = dir.join("also-a.txt");
        fs::write(&path, "old text").unwrap();
        fs::hard_link(&path, &link).unwrap();
        let ino = fs::metadata(&path).unwrap().ino();
        let saved = save(
            &path,
            &Rope::from_str("new"),
            Expect::Unchanged(stamp(&path)),
        )
        .unwrap();
        assert!(saved.in_place);
        assert_eq!(fs::metadata(&path).unwrap().ino(), ino);
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(saved.stamp, stamp(&path));
        fs::remove_dir_all(&dir).unwrap();
    }
}
