//! Watching FILE on disk, so "modified" means "differs from the file", not
//! "edited in this session": when another editor on the same machine saves
//! the same file (the room's text, which this buffer also holds), this
//! editor's `[+]` goes and its Ctrl-Q quits without asking.
//!
//! The event loop calls [`FileWatch::check`] about once a second: one
//! `stat`; the file is read only when its stamp changed since the last
//! look, and only up to [`MAX_READ`] bytes. What was read goes to the app
//! as `Action::FileOnDisk`, which compares it with the buffer (the app
//! itself does no IO).

use std::io::BufReader;
use std::path::Path;

use ropey::Rope;

use crate::save::Stamp;

/// Files larger than this are not read back (the stat still is).
pub const MAX_READ: u64 = 64 << 20;

/// The last stamp looked at.
#[derive(Debug, Default)]
pub struct FileWatch {
    last: Option<Stamp>,
}

/// FILE as found on disk after a change.
#[derive(Debug, Clone)]
pub struct Found {
    pub stamp: Stamp,
    pub text: Rope,
}

impl FileWatch {
    /// FILE's stamp now, and its text when it changed since the last
    /// check and is not what the app already knows (`known`).
    pub fn check(&mut self, path: &Path, known: Option<Stamp>) -> Option<Found> {
        let stamp = Stamp::read(path).ok()??;
        if Some(stamp) == self.last || Some(stamp) == known {
            self.last = Some(stamp);
            return None;
        }
        self.last = Some(stamp);
        if stamp.size() > MAX_READ {
            return None;
        }
        let file = std::fs::File::open(path).ok()?;
        let text = Rope::from_reader(BufReader::new(file)).ok()?;
        Some(Found { stamp, text })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_file_once_per_change() {
        let dir = std::env::temp_dir().join(format!("collab-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("w.txt");
        let mut watch = FileWatch::default();
        assert!(watch.check(&path, None).is_none(), "no file, nothing");
        std::fs::write(&path, "one").unwrap();
        let seen = watch.check(&path, None).unwrap();
        assert_eq!(seen.text, "one");
        assert!(watch.check(&path, None).is_none(), "read once");
        std::fs::write(&path, "two!").unwrap();
        let known = Stamp::read(&path).unwrap();
        assert!(
            watch.check(&path, known).is_none(),
            "what the app saved itself is not read back"
        );
        std::fs::write(&path, "three").unwrap();
        assert_eq!(watch.check(&path, known).unwrap().text, "three");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
