//! What this member has on disk of the room's files, and carrying the
//! room's renames and deletes there (issue 17). Each file the member
//! shared (DIR) or saved is remembered with its path and [`Stamp`]; when
//! they save (Ctrl-S of a renamed file, or save all), a file renamed in
//! the room since is moved to its new path and one deleted is removed,
//! each only if it is still what this member last loaded or saved there
//! (`crate::disk_moves`, run by the event loop like a save). Otherwise
//! the file stays and the member is told. A deleted file open here with
//! unsaved changes is not removed: its copy is the member's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use collab_doc::tree::NodeId;

use super::{App, Order};
use crate::disk_moves::{DiskMove, Outcome, Target};
use crate::save::Stamp;

/// A room's file as this member last loaded or saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DiskCopy {
    pub(super) path: PathBuf,
    pub(super) stamp: Stamp,
}

/// The room's files on this member's disk, by id.
#[derive(Debug, Default)]
pub(super) struct OnDisk {
    files: HashMap<NodeId, DiskCopy>,
}

impl OnDisk {
    /// The stamp of file `id` if it was last loaded or saved at `path`.
    pub(super) fn stamp_at(&self, id: NodeId, path: Option<&Path>) -> Option<Stamp> {
        let copy = self.files.get(&id)?;
        (Some(copy.path.as_path()) == path).then_some(copy.stamp)
    }

    pub(super) fn remember(&mut self, id: NodeId, path: PathBuf, stamp: Stamp) {
        self.files.insert(id, DiskCopy { path, stamp });
    }

    pub(super) fn forget(&mut self, id: NodeId) {
        self.files.remove(&id);
    }

    /// Every file on disk, by id.
    pub(super) fn files(&self) -> impl Iterator<Item = (NodeId, &DiskCopy)> {
        self.files.iter().map(|(id, c)| (*id, c))
    }
}

impl App {
    /// The save of the file on screen to `path` went through (or the
    /// file there was found to hold its text): it is this member's copy
    /// now, unless the file was deleted from the room (then the file on
    /// disk is the member's own, never removed for the room).
    pub(super) fn remember_on_disk(&mut self, path: &Path, stamp: Option<Stamp>) {
        let Some(id) = self.current_file() else {
            return;
        };
        match (self.entry_path(id), stamp) {
            (Some(_), Some(stamp)) => self.ws_view.on_disk.remember(id, path.to_path_buf(), stamp),
            _ => self.ws_view.on_disk.forget(id),
        }
    }

    /// The room's renames and deletes still to carry to disk: of file
    /// `only`, or of every file.
    pub(super) fn disk_moves(&self, only: Option<NodeId>) -> Vec<DiskMove> {
        let Some(f) = self.session.folder() else {
            return Vec::new();
        };
        let Some(dir) = &f.dir else {
            return Vec::new();
        };
        let mut moves: Vec<DiskMove> = self
            .ws_view
            .on_disk
            .files
            .iter()
            .filter(|(id, _)| only.is_none_or(|o| o == **id))
            .filter_map(|(id, copy)| {
                let to = match f.path_of(*id) {
                    Some(p) if dir.join(p) == copy.path => return None,
                    Some(p) => Target::Path(dir.join(p)),
                    // An unsaved copy is the member's: its file stays.
                    None if self.buffer_modified(*id) => return None,
                    None => Target::Gone,
                };
                Some(DiskMove {
                    id: *id,
                    from: copy.path.clone(),
                    stamp: copy.stamp,
                    to,
                })
            })
            .collect();
        moves.sort_by(|a, b| a.from.cmp(&b.from));
        moves
    }

    /// Queues `moves` for the event loop.
    pub(super) fn order_moves(&mut self, moves: Vec<DiskMove>) {
        let Some(root) = self.session.folder().and_then(|f| f.dir.clone()) else {
            return;
        };
        self.orders.push(Order::MoveOnDisk { moves, root });
    }

    /// The moves came back: remembered, and said (what was left, each).
    pub(super) fn moves_done(&mut self, done: Vec<(DiskMove, Outcome)>) {
        let root = self.session.folder().and_then(|f| f.dir.clone());
        let shown = |p: &Path| match &root {
            Some(r) => p.strip_prefix(r).unwrap_or(p).display().to_string(),
            None => p.display().to_string(),
        };
        let (mut moved, mut removed) = (0, 0);
        let mut left = Vec::new();
        for (m, outcome) in done {
            match (outcome, &m.to) {
                (Outcome::Moved(Some(stamp)), Target::Path(to)) => {
                    moved += 1;
                    self.ws_view.on_disk.remember(m.id, to.clone(), stamp);
                    self.set_disk_stamp(m.id, to, stamp);
                }
                (Outcome::Moved(_), _) => {
                    moved += 1;
                    self.ws_view.on_disk.forget(m.id);
                }
                (Outcome::Removed, _) => {
                    removed += 1;
                    self.ws_view.on_disk.forget(m.id);
                }
                (Outcome::Left(why), to) => {
                    // Said once: the file on disk is the member's now.
                    self.ws_view.on_disk.forget(m.id);
                    let what = match to {
                        Target::Path(p) => format!("renamed {} in the room", shown(p)),
                        Target::Gone => "deleted from the room".to_string(),
                    };
                    left.push(format!("{} ({what}) stays on disk: {why}", shown(&m.from)));
                }
            }
        }
        if moved + removed > 0 {
            let files = |n: usize| if n == 1 { "file" } else { "files" };
            let mut said = Vec::new();
            if moved > 0 {
                said.push(format!("moved {moved} {} renamed", files(moved)));
            }
            if removed > 0 {
                said.push(format!("removed {removed} {} deleted", files(removed)));
            }
            self.notice(format!("On disk as in the room: {}.", said.join(", ")));
        }
        for l in left {
            self.warn(format!("{l}."));
        }
    }
}
