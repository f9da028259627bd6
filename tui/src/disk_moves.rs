//! Carrying a workspace's renames and deletes to a member's folder (issue
//! 17): a file renamed in the room is moved on disk, one deleted is
//! removed, when the member saves. The rule is the save's: only a file
//! that is still what this member last loaded or saved there (its
//! [`Stamp`]) is moved or removed; another program's change since, a
//! file already at the new name, or a vanished file leaves everything as
//! it is, and the editor says so. Nothing here overwrites or deletes a
//! byte the member has not seen.
//!
//! Folders left empty by a move or removal are removed up to (not
//! including) the member's folder; a folder holding anything stays.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use collab_doc::tree::NodeId;

use crate::save::Stamp;

/// One change to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMove {
    /// The room's file.
    pub id: NodeId,
    /// Where it is on disk, as last loaded or saved.
    pub from: PathBuf,
    /// What the file there was then.
    pub stamp: Stamp,
    /// What to do with it.
    pub to: Target,
}

/// Where the file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Renamed in the room: moved to this path.
    Path(PathBuf),
    /// Deleted from the room: removed.
    Gone,
}

/// What became of one [`DiskMove`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Moved; the file's stamp at its new path.
    Moved(Option<Stamp>),
    Removed,
    /// Nothing was done, for this reason.
    Left(Why),
}

/// Why a file was left where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// It changed on disk since this member loaded or saved it.
    Changed,
    /// It is no longer there.
    Missing,
    /// Something already is at the new path.
    Taken,
    Io(String),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Why::Changed => f.write_str("it changed on disk since you loaded or saved it"),
            Why::Missing => f.write_str("it is no longer on disk"),
            Why::Taken => f.write_str("a file is already at the new name"),
            Why::Io(e) => f.write_str(e),
        }
    }
}

/// Carries out `m` under the member's folder `root` (folders are created
/// and removed only below it).
pub fn apply(m: &DiskMove, root: &Path) -> Outcome {
    match Stamp::read(&m.from) {
        Ok(Some(now)) if now == m.stamp => {}
        Ok(Some(_)) => return Outcome::Left(Why::Changed),
        Ok(None) => return Outcome::Left(Why::Missing),
        Err(e) => return Outcome::Left(Why::Io(e.to_string())),
    }
    let done = match &m.to {
        Target::Gone => fs::remove_file(&m.from).map(|()| Outcome::Removed),
        Target::Path(to) => move_to(&m.from, to, root),
    };
    match done {
        Ok(Outcome::Left(why)) => Outcome::Left(why),
        Ok(outcome) => {
            remove_empty_folders(&m.from, root);
            outcome
        }
        Err(e) => Outcome::Left(Why::Io(e.to_string())),
    }
}

/// Moves `from` to `to` unless something is there (checked just before:
/// another program creating `to` in between is not caught, as std has no
/// rename that refuses to replace).
fn move_to(from: &Path, to: &Path, root: &Path) -> io::Result<Outcome> {
    match fs::symlink_metadata(to) {
        Ok(_) => return Ok(Outcome::Left(Why::Taken)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = to.parent()
        && parent.starts_with(root)
    {
        fs::create_dir_all(parent)?;
    }
    fs::rename(from, to)?;
    if let Some(parent) = to.parent()
        && let Ok(d) = fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(Outcome::Moved(Stamp::read(to)?))
}

/// Removes the folders between `root` and `file` that are now empty,
/// deepest first (`remove_dir` refuses a folder holding anything).
fn remove_empty_folders(file: &Path, root: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(root: &Path, path: &str, to: Target) -> DiskMove {
        let from = root.join(path);
        DiskMove {
            id: NodeId {
                peer: 1,
                counter: 7,
            },
            stamp: Stamp::read(&from).unwrap().unwrap(),
            from,
            to,
        }
    }

    #[test]
    fn a_file_as_loaded_moves_and_its_emptied_folder_goes() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("sub/deep")).unwrap();
        fs::write(r.join("sub/deep/a.txt"), "a").unwrap();
        let m = at(r, "sub/deep/a.txt", Target::Path(r.join("new/b.txt")));
        let Outcome::Moved(Some(stamp)) = apply(&m, r) else {
            panic!("not moved");
        };
        assert_eq!(fs::read_to_string(r.join("new/b.txt")).unwrap(), "a");
        assert_eq!(Stamp::read(&r.join("new/b.txt")).unwrap(), Some(stamp));
        assert!(!r.join("sub").exists(), "the emptied folders are removed");
        assert!(r.exists());
    }

    #[test]
    fn a_changed_file_or_a_taken_name_leaves_everything() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::write(r.join("a.txt"), "a").unwrap();
        fs::write(r.join("b.txt"), "b").unwrap();
        let m = at(r, "a.txt", Target::Path(r.join("b.txt")));
        assert_eq!(apply(&m, r), Outcome::Left(Why::Taken));
        let m = at(r, "a.txt", Target::Path(r.join("c.txt")));
        fs::write(r.join("a.txt"), "changed by another program").unwrap();
        assert_eq!(apply(&m, r), Outcome::Left(Why::Changed));
        assert_eq!(apply(&at(r, "a.txt", Target::Gone), r), Outcome::Removed);
        assert_eq!(apply(&m, r), Outcome::Left(Why::Missing));
        assert_eq!(fs::read_to_string(r.join("b.txt")).unwrap(), "b");
        assert!(!r.join("c.txt").exists());
    }

    #[test]
    fn a_removal_keeps_a_folder_that_holds_other_files() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("sub")).unwrap();
        fs::write(r.join("sub/a.txt"), "a").unwrap();
        fs::write(r.join("sub/mine.txt"), "mine").unwrap();
        let m = at(r, "sub/a.txt", Target::Gone);
        fs::write(r.join("sub/a.txt"), "bb").unwrap();
        assert_eq!(apply(&m, r), Outcome::Left(Why::Changed));
        assert_eq!(
            apply(&at(r, "sub/a.txt", Target::Gone), r),
            Outcome::Removed
        );
        assert_eq!(fs::read_to_string(r.join("sub/mine.txt")).unwrap(), "mine");
        assert!(r.join("sub").exists());
    }
}
