//! Creating, renaming and deleting files and folders from the tree panel
//! (`n`, `r`, Delete). Each is a tree operation of the workspace, shared at
//! once and offline alike; a delete asks first (Delete again). A renamed
//! open file stays open under its new name (its id is its node's), a
//! deleted one stays as an unsaved copy (`workspace::relist` says both).
//! Viewers (read-only) browse, open and follow, and change nothing. A name
//! that differs from a sibling's only in case is refused here: the two
//! would be one file on a case-insensitive disk.

use collab_doc::tree::{Kind, NodeId};

use super::{App, Armed, PromptKind, READ_ONLY_NOTICE};

impl App {
    /// The selected row's file or folder, and the folder a new entry goes
    /// in (the selected folder, or the selected file's).
    fn tree_target(&self) -> Option<(NodeId, Kind, Option<NodeId>)> {
        let e = self.entries().get(self.tree_selected())?;
        let parent = match e.kind {
            Kind::Dir => Some(e.id),
            Kind::File => e.parent,
        };
        Some((e.id, e.kind, parent))
    }

    /// `n` in the tree: asks for the new file's name (`name/` is a folder).
    pub(super) fn ask_new_entry(&mut self) {
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        self.ws_view.new_in = self.tree_target().and_then(|(_, _, parent)| parent);
        self.open_prompt(PromptKind::NewFile);
    }

    /// `r` in the tree: asks for the selected entry's new name.
    pub(super) fn ask_rename(&mut self) {
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        let Some((id, _, _)) = self.tree_target() else {
            return;
        };
        let name = self.entries()[self.tree_selected()].name.clone();
        self.ws_view.renaming = Some(id);
        self.open_prompt(PromptKind::Rename);
        self.set_prompt_text(&name);
    }

    /// The new entry's prompt: created, shared, and a file opened.
    pub(super) fn create_typed(&mut self, typed: &str) {
        let (name, kind) = match typed.strip_suffix('/') {
            Some(dir) => (dir, Kind::Dir),
            None => (typed, Kind::File),
        };
        let parent = self.ws_view.new_in;
        if let Some(clash) = self.case_clash(parent, name, None) {
            return self.warn(case_clash_notice("created", name, &clash));
        }
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        match f.ws.create(parent, name, kind) {
            Ok((id, sends)) => {
                self.close_prompt();
                self.send_all(sends);
                self.relist();
                if kind == Kind::File {
                    self.switch_to(id);
                }
            }
            Err(e) => self.warn(format!("Not created: {e}.")),
        }
    }

    /// The rename prompt's Enter.
    pub(super) fn rename_typed(&mut self, typed: &str) {
        let Some(id) = self.ws_view.renaming else {
            return self.close_prompt();
        };
        let parent = self
            .entries()
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.parent);
        if let Some(clash) = self.case_clash(parent, typed, Some(id)) {
            return self.warn(case_clash_notice("renamed", typed, &clash));
        }
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        match f.ws.rename(id, typed) {
            Ok(sends) => {
                self.ws_view.renaming = None;
                self.close_prompt();
                self.send_all(sends);
                self.relist();
            }
            Err(e) => self.warn(format!("Not renamed: {e}.")),
        }
    }

    /// Delete in the tree: asks, and a second Delete deletes for everyone.
    pub(super) fn delete_selected(&mut self) {
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        let Some((id, kind, _)) = self.tree_target() else {
            return;
        };
        let path = self.entry_path(id).unwrap_or_default();
        if self.asked != Some(Armed::Delete(id)) {
            self.armed = Some(Armed::Delete(id));
            let what = match kind {
                Kind::Dir => format!("the folder {path} and everything in it"),
                Kind::File => path,
            };
            return self.warn(format!(
                "Delete {what} for everyone? Delete again deletes it; any other key keeps it."
            ));
        }
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        match f.ws.delete(id) {
            Ok((_, sends)) => {
                self.send_all(sends);
                self.relist();
                self.notice("Deleted.");
            }
            Err(e) => self.warn(format!("Not deleted: {e}.")),
        }
    }

    /// A sibling in `parent` (other than `except`) whose name differs from
    /// `name` only in case: on a case-insensitive disk (macOS, Windows) the
    /// two would be one file, and one save would overwrite the other.
    fn case_clash(
        &self,
        parent: Option<NodeId>,
        name: &str,
        except: Option<NodeId>,
    ) -> Option<String> {
        let lower = name.to_lowercase();
        self.entries()
            .iter()
            .find(|e| {
                e.parent == parent
                    && Some(e.id) != except
                    && e.name != name
                    && e.name.to_lowercase() == lower
            })
            .map(|e| e.name.clone())
    }

    fn send_all(&mut self, sends: Vec<collab_protocol::workspace::ClientEvent>) {
        for m in sends {
            self.orders.push(super::Order::SendWs(m));
        }
    }
}

fn case_clash_notice(done: &str, name: &str, sibling: &str) -> String {
    format!(
        "Not {done}: {name} differs from {sibling} here only in case, and the two would be one file on a case-insensitive disk."
    )
}
