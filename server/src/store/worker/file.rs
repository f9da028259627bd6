//! The file at its path. redb keeps its file open, so a data directory
//! deleted (or a file replaced) while the server runs would otherwise go
//! unnoticed until the restart, with every write since lost: the store
//! checks, at least every [`FILE_CHECK_EVERY`] and before each commit,
//! that its open file is still the one at its path, recreates it from the
//! open copy when the path is empty, and stops writing when the path holds
//! another file.

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::time::Duration;

use collab_protocol::ErrorCode;
use tracing::{error, info};

use super::Worker;
use crate::store::schema::{OpenError, copy_all, guarded, live, open_db};

/// How often the store checks that its file is still the one at its path
/// (a deleted data directory must not go unnoticed while nobody edits).
pub(super) const FILE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Which file a path names: device and inode (on Unix; elsewhere the
/// check is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    pub(super) fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| FileId(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    pub(super) fn of(_: &Path) -> Option<FileId> {
        None
    }
}

impl Worker {
    /// True when the open file is still the one at its path. When the
    /// path is empty (the data directory or the file was deleted: the open
    /// file lives on, unlinked, and every write to it would be lost at
    /// exit), the store recreates the file at its path from the open copy,
    /// every room included, and carries on there. When the path holds
    /// another file (a restored backup?), nothing more is written until an
    /// operator decides. Either way members and the log are told.
    pub(super) fn check_file(&mut self) -> bool {
        let Some(expected) = self.file else {
            return true;
        };
        match FileId::of(&self.opts.path) {
            Some(now) if now == expected => true,
            None => {
                let first = !self.deleted;
                self.deleted = true;
                if first {
                    error!(
                        path = %self.opts.path.display(),
                        "the room store file was deleted while the server ran: recreating it from the copy still open, every room included"
                    );
                    self.tell_every_room(
                        "The server's room store was deleted while it ran: the server is recreating it from what it still holds.",
                    );
                }
                match self.recreate() {
                    Ok(rooms) => {
                        self.deleted = false;
                        info!(path = %self.opts.path.display(), rooms, "room store recreated: nothing was lost");
                        true
                    }
                    Err(e) => {
                        if first {
                            error!(
                                path = %self.opts.path.display(),
                                error = %e,
                                "cannot recreate the room store: edits stay in memory and in the deleted file only while the server runs; make the directory writable again (the server retries every second)"
                            );
                        }
                        false
                    }
                }
            }
            Some(_) => {
                if !self.replaced {
                    self.replaced = true;
                    error!(
                        path = %self.opts.path.display(),
                        "the room store file was replaced by another file while the server ran: nothing more is written to either; edits stay in memory. Stop the server (changes since are lost) and start it on the file you want"
                    );
                    self.tell_every_room(
                        "The server's room store was replaced while it ran: edits are shared but no longer stored. Tell the server's operator.",
                    );
                }
                false
            }
        }
    }

    /// A new file at the path with every record of the open one; the store
    /// continues on it. Returns how many rooms it holds.
    fn recreate(&mut self) -> Result<usize, String> {
        let old = live(&self.db).map_err(|e| e.to_string())?;
        if let Some(dir) = self.opts.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let new = match open_db(&self.opts.path) {
            Ok(db) => db,
            Err(OpenError::Damaged(e) | OpenError::Other(e)) => return Err(e),
        };
        let rooms = guarded(|| copy_all(old, &new))?;
        self.file = FileId::of(&self.opts.path);
        self.db = Some(new);
        self.next_seq.clear();
        Ok(rooms)
    }

    /// `storage_failed` (non-fatal) to every member of every live room.
    fn tell_every_room(&self, message: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let msg = collab_protocol::ServerMsg::Error {
            code: ErrorCode::StorageFailed,
            message: message.into(),
            seq: None,
        };
        for room in shared.registry.rooms() {
            room.tell_all(&msg);
        }
    }
}
