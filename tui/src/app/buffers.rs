//! Several open files in a workspace: the file on screen lives in the
//! app's own fields (its `Editor`, view, highlight, save state, undo
//! grouping), as a one-file room's text does, and each other open file is
//! *parked* here with those fields. Switching parks the one on screen and
//! brings the other back; the deltas its replica received meanwhile are
//! mirrored into its rope then (the replica keeps them until asked), so a
//! parked file costs nothing per remote keystroke. Undo is per file (each
//! file has its own replica and undo history) and per user (Loro's undo
//! undoes only mine).

use std::collections::BTreeMap;
use std::path::PathBuf;

use collab_doc::tree::NodeId;

use super::room::Current;
use super::saving::Saving;
use super::undo_group::UndoGroup;
use super::{App, View};
use crate::editor::Editor;
use crate::highlight::Highlight;

/// A file open but not on screen.
struct Parked {
    editor: Editor,
    view: View,
    highlight: Highlight,
    saving: Saving,
    file: Option<PathBuf>,
    indent_known: bool,
    undo_group: UndoGroup,
}

/// The open files: their order in the buffer list, and the parked ones.
#[derive(Default)]
pub(super) struct Buffers {
    /// Open files in the order they were opened (the buffer list).
    order: Vec<NodeId>,
    parked: BTreeMap<NodeId, Parked>,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffers")
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The open files in the buffer list's order.
    pub fn buffers(&self) -> &[NodeId] {
        &self.buffers.order
    }

    /// Whether parked file `id` differs from its file on disk (`[+]`); the
    /// file on screen is [`App::modified`].
    pub fn buffer_modified(&self, id: NodeId) -> bool {
        if self.current_file() == Some(id) {
            return self.modified();
        }
        self.buffers
            .parked
            .get(&id)
            .is_some_and(|p| p.saving.is_modified())
    }

    /// File `id`'s first welcome while it is not on screen: if it is
    /// parked, the room's text is its baseline of `[+]`, as for the file
    /// on screen, unless it was edited here before (what was typed is in
    /// no file). The buffer's rope catches up with the room when it comes
    /// back. (The text is copied only for a parked, unedited buffer.)
    pub(super) fn parked_welcomed(&mut self, id: NodeId) {
        let Some(p) = self.buffers.parked.get_mut(&id) else {
            return;
        };
        if p.saving.is_edited() {
            return;
        }
        if let Some(r) = self.session.folder().and_then(|f| f.ws.file(id)) {
            p.saving.rebase(ropey::Rope::from_str(&r.text()));
        }
    }

    /// Puts file `id` on screen: parks the one there, and brings `id`
    /// back if it was parked (else opens it).
    pub(super) fn switch_to(&mut self, id: NodeId) {
        let Some(current) = self.session.folder().map(|f| f.current) else {
            return;
        };
        if current == Current::File(id) {
            self.focus = super::Focus::Text;
            return;
        }
        if self.save_pending() {
            return self.warn("Still saving: switch files in a moment.");
        }
        if let Current::File(on_screen) = current {
            self.park(on_screen);
        }
        if !self.buffers.order.contains(&id) {
            self.buffers.order.push(id);
        }
        match self.buffers.parked.remove(&id) {
            Some(p) => self.unpark(id, p),
            None => self.open_file(id),
        }
    }

    /// F8 and Shift-F8: the next or previous open file.
    pub(super) fn cycle_buffers(&mut self, forward: bool) {
        let order = &self.buffers.order;
        if order.len() < 2 {
            return self.notice("One file is open: open another from the tree (F7) or Ctrl-P.");
        }
        let at = self
            .current_file()
            .and_then(|c| order.iter().position(|id| *id == c))
            .unwrap_or(0);
        let n = order.len();
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        let id = order[next];
        self.switch_to(id);
    }

    /// Ctrl-W: closes the file on screen. Unsaved changes are asked about
    /// (Ctrl-W again drops them); edits the server has not acked refuse,
    /// since closing the file's replica would drop them. The previous
    /// open file comes on screen, or the tree when none is left.
    pub(super) fn close_buffer(&mut self) {
        let Some(id) = self.current_file() else {
            return self.notice("No file is open to close.");
        };
        if self.save_pending() {
            return self.warn("Still saving: close the file in a moment.");
        }
        let unsent = self
            .session
            .folder()
            .and_then(|f| f.ws.file(id))
            .map_or(0, |r| r.unsent_edits());
        if unsent > 0 {
            return self.warn(format!(
                "{unsent} edits of this file are not acked yet: close it once they are sent."
            ));
        }
        if self.modified() && self.asked != Some(super::Armed::Close(id)) {
            self.armed = Some(super::Armed::Close(id));
            return self.warn(
                "This file has unsaved changes: Ctrl-W again closes it without saving; any other key keeps it.",
            );
        }
        let at = self.buffers.order.iter().position(|b| *b == id);
        if let Some(at) = at {
            self.buffers.order.remove(at);
        }
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let sends = f.ws.close(id);
        f.current = Current::Nothing;
        for m in sends {
            self.orders.push(super::Order::SendWs(m));
        }
        let next = at
            .and_then(|at| self.buffers.order.get(at.saturating_sub(1)))
            .or(self.buffers.order.first())
            .copied();
        match next {
            Some(next) => match self.buffers.parked.remove(&next) {
                Some(p) => self.unpark(next, p),
                None => self.open_file(next),
            },
            None => {
                self.show_text("", None, "", None);
                self.set_saved_baseline();
                self.show_tree();
            }
        }
        self.notice("Closed.");
    }

    fn park(&mut self, id: NodeId) {
        let parked = Parked {
            editor: std::mem::take(&mut self.editor),
            view: std::mem::take(&mut self.view),
            highlight: std::mem::replace(&mut self.highlight, Highlight::for_file(None, "")),
            saving: std::mem::replace(&mut self.saving, Saving::new(ropey::Rope::new(), None)),
            file: self.config.file.take(),
            indent_known: self.indent_known,
            undo_group: std::mem::take(&mut self.undo_group),
        };
        self.buffers.parked.insert(id, parked);
    }

    fn unpark(&mut self, id: NodeId, p: Parked) {
        self.editor = p.editor;
        self.view = p.view;
        self.highlight = p.highlight;
        self.saving = p.saving;
        self.config.file = p.file;
        self.indent_known = p.indent_known;
        self.undo_group = p.undo_group;
        if let Some(f) = self.session.folder_mut() {
            f.current = Current::File(id);
        }
        // What arrived while parked (and the baseline its welcome may
        // have set meanwhile).
        self.pull_changes(false);
        self.check_modified();
        self.after_text_change();
        self.focus = super::Focus::Text;
        self.in_room_presence_again();
        self.follow_cursor();
    }

    /// File `id`, saving to `path`, is on disk as `stamp` (moved there
    /// after a rename in the room): its next save replaces it unasked.
    pub(super) fn set_disk_stamp(
        &mut self,
        id: NodeId,
        path: &std::path::Path,
        stamp: crate::save::Stamp,
    ) {
        if self.current_file() == Some(id) {
            if self.config.file.as_deref() == Some(path) {
                self.saving.found_at(stamp);
            }
        } else if let Some(p) = self.buffers.parked.get_mut(&id)
            && p.file.as_deref() == Some(path)
        {
            p.saving.found_at(stamp);
        }
    }

    /// A parked file's save path, after a rename.
    pub(super) fn repath_parked(&mut self, id: NodeId, file: Option<PathBuf>) {
        if let Some(p) = self.buffers.parked.get_mut(&id) {
            p.file = file;
            p.saving.moved();
        }
    }
}
