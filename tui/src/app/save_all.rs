//! Saving in a workspace: Ctrl-S writes the file on screen at its tree
//! path under the member's folder (DIR, or the folder asked for at the
//! first save of a member who joined without one), and save all (Alt-A)
//! writes every modified open file, one after the other, each through the
//! same save as Ctrl-S: atomic, its folders created, and the rules that
//! never overwrite a file that changed or differs without asking (a file
//! that needs the question stops the run there, on screen, with the
//! question asked). Before either writes, the room's renames and deletes
//! are carried to the member's folder (`on_disk`): of the file on screen
//! for Ctrl-S, of every file for save all.

use std::path::PathBuf;

use collab_doc::tree::NodeId;

use super::{App, PromptKind};

/// What waits for the folder to save under, or for the moves on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterDir {
    Save,
    SaveAll,
}

/// A save all under way: the files left, the one on screen before.
#[derive(Debug, Default)]
pub(super) struct SaveAllRun {
    left: Vec<NodeId>,
    back_to: Option<NodeId>,
    saved: usize,
    /// Files not saved: their path differs only in case from another's
    /// on disk.
    refused: usize,
    /// Waiting for the folder (joined without DIR).
    after_dir: Option<AfterDir>,
    /// Waiting for the room's renames and deletes to reach the disk.
    after_moves: Option<AfterDir>,
    running: bool,
}

impl App {
    /// Ctrl-S: a one-file room's save; in a workspace the same, once there
    /// is a folder to save under.
    pub(super) fn save_in_folder(&mut self) {
        if self.needs_folder(AfterDir::Save) || self.still_moving() {
            return;
        }
        if let Some(id) = self.current_file() {
            if let Some(why) = self.case_refusal(id) {
                return self.warn(why);
            }
            if self.move_first(Some(id), AfterDir::Save) {
                return;
            }
        }
        self.save();
    }

    /// Alt-A.
    pub(super) fn save_all(&mut self) {
        if self.session.folder().is_none() {
            return self.save();
        }
        if self.needs_folder(AfterDir::SaveAll) || self.still_moving() {
            return;
        }
        if self.move_first(None, AfterDir::SaveAll) {
            return;
        }
        let left: Vec<NodeId> = self
            .buffers()
            .iter()
            .rev()
            .copied()
            .filter(|id| self.buffer_modified(*id))
            .collect();
        if left.is_empty() {
            return self.notice("Every open file is saved.");
        }
        self.save_all_run = SaveAllRun {
            left,
            back_to: self.current_file(),
            saved: 0,
            refused: 0,
            after_dir: None,
            after_moves: None,
            running: true,
        };
        self.save_all_next();
    }

    /// Moves on disk are under way (one batch at a time): said.
    fn still_moving(&mut self) -> bool {
        let moving = self.save_all_run.after_moves.is_some();
        if moving {
            self.warn("Still moving files on disk: save again in a moment.");
        }
        moving
    }

    /// Carries the room's renames and deletes (of `only`, or all) to disk
    /// before `then`: true when there were some (`then` runs once they
    /// are done).
    fn move_first(&mut self, only: Option<NodeId>, then: AfterDir) -> bool {
        let moves = self.disk_moves(only);
        if moves.is_empty() {
            return false;
        }
        self.save_all_run.after_moves = Some(then);
        self.order_moves(moves);
        true
    }

    /// The moves on disk came back: said, then the save goes on.
    pub(super) fn moved_on_disk(
        &mut self,
        done: Vec<(crate::disk_moves::DiskMove, crate::disk_moves::Outcome)>,
    ) {
        self.moves_done(done);
        match self.save_all_run.after_moves.take() {
            Some(AfterDir::Save) => self.save(),
            Some(AfterDir::SaveAll) => self.save_all(),
            None => {}
        }
    }

    /// A workspace without a folder yet asks for one (and `then` goes on
    /// after it is typed): true when it asked.
    fn needs_folder(&mut self, then: AfterDir) -> bool {
        let Some(f) = self.session.folder() else {
            return false;
        };
        if f.dir.is_some() || self.current_file().is_none() && then == AfterDir::Save {
            return false;
        }
        self.save_all_run.after_dir = Some(then);
        self.open_prompt(PromptKind::SaveDir);
        true
    }

    /// The folder prompt's Enter: every open file saves under it from now.
    pub(super) fn save_dir_typed(&mut self, typed: &str) {
        if typed.is_empty() {
            return self.warn("Type a folder to save the room's files under.");
        }
        let dir = super::saving::expand_home(typed, std::env::var_os("HOME").map(PathBuf::from));
        self.close_prompt();
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        f.dir = Some(dir.clone());
        let paths: Vec<(NodeId, Option<PathBuf>)> = self
            .buffers()
            .iter()
            .map(|id| (*id, self.entry_path(*id).map(|p| dir.join(p))))
            .collect();
        for (id, file) in paths {
            if self.current_file() == Some(id) {
                self.config.file = file;
            } else {
                self.repath_parked(id, file);
            }
        }
        self.notice(format!("The room's files save under {}.", dir.display()));
        match self.save_all_run.after_dir.take() {
            Some(AfterDir::Save) => self.save(),
            Some(AfterDir::SaveAll) => self.save_all(),
            None => {}
        }
    }

    /// The next file of a save all, or its end.
    fn save_all_next(&mut self) {
        let Some(id) = self.save_all_run.left.pop() else {
            let run = std::mem::take(&mut self.save_all_run);
            if let Some(back) = run.back_to {
                self.switch_to(back);
            }
            let files = if run.saved == 1 { "file" } else { "files" };
            if run.refused > 0 {
                return self.warn(format!(
                    "Saved all: {} {files}, {} not saved (names differing only in case).",
                    run.saved, run.refused
                ));
            }
            return self.notice(format!("Saved all: {} {files}.", run.saved));
        };
        self.switch_to(id);
        if let Some(why) = self.case_refusal(id) {
            self.warn(why);
            self.save_all_run.refused += 1;
            return self.save_all_next();
        }
        self.save();
        if !self.save_pending() {
            // A question was asked (or the save refused): the run stops
            // here, on this file.
            let name = self.entry_path(id).unwrap_or_default();
            self.save_all_run = SaveAllRun::default();
            self.warn(format!(
                "Save all stopped at {name}: answer it (Ctrl-S), then Alt-A again."
            ));
        }
    }

    /// A save's result came back: a save all goes on, or stops at a failure.
    pub(super) fn save_all_went_on(&mut self, ok: bool) {
        if !self.save_all_run.running {
            return;
        }
        if ok {
            self.save_all_run.saved += 1;
            self.save_all_next();
        } else {
            self.save_all_run = SaveAllRun::default();
        }
    }
}
