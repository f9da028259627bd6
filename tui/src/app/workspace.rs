//! The editor in a workspace room (issue 17, `docs/workspace.md`): the
//! folder shared at start (DIR) or none (a bare join), the workspace's
//! transport events and what they show, the tree panel's keys, and
//! opening a file of the tree onto the screen.
//!
//! The session is a [`collab_client::Workspace`] (see `room`); this module
//! is what the editor does with it. A one-file room (FILE) never comes
//! here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use collab_client::workspace::{WorkspaceTransportEvent, WsEffect, WsEvent};
use collab_client::{ClientEvent, JoinAs, Link, RoomKind, TransportEvent, Workspace};
use collab_doc::tree::{Entry, Kind, NodeId};
use ropey::Rope;

use super::room::{Current, Folder, Out, RoomSession};
use super::{App, Focus, Order, Startup};
use crate::keymap::Command;
use crate::save::Stamp;
use crate::share::{Share, ShareLimits};

/// How a workspace session starts: the folder shared (DIR), or none.
#[derive(Debug, Default)]
pub struct FolderStart {
    /// Where files are saved; DIR when one was named.
    pub dir: Option<PathBuf>,
    /// DIR's files, to share into an empty room.
    pub share: Option<Share>,
    /// Each shared file's stamp on disk (by path) as it was read, so that
    /// the sharer's Ctrl-S replaces it without asking while nobody else
    /// changed it (see [`FolderStart::stamp_share`]).
    pub stamps: HashMap<String, Stamp>,
}

impl FolderStart {
    /// Stamps the shared files under `dir` as they are now (just after
    /// the scan read them).
    pub fn stamp_share(&mut self) {
        let (Some(dir), Some(share)) = (&self.dir, &self.share) else {
            return;
        };
        for f in &share.files {
            if let Ok(meta) = std::fs::symlink_metadata(dir.join(&f.path)) {
                self.stamps.insert(f.path.clone(), Stamp::of(&meta));
            }
        }
    }
}

/// The workspace's part of the screen and keys: this module's state.
#[derive(Debug, Default)]
pub(super) struct WsView {
    /// The tree panel is shown.
    pub(super) tree_open: bool,
    /// The row selected in the tree panel.
    pub(super) tree_sel: usize,
    /// The picker's chosen match.
    pub(super) picker_sel: usize,
    /// The folder a new entry goes in (`None`: the top).
    pub(super) new_in: Option<NodeId>,
    /// The entry being renamed.
    pub(super) renaming: Option<NodeId>,
    /// What sharing DIR left out, said once the share is applied.
    skipped: Option<String>,
    /// Files shared from DIR.
    shared_files: usize,
    /// The shared files' stamps, until the share is applied...
    share_stamps: HashMap<String, Stamp>,
    /// The room's files on this member's disk (shared or saved).
    pub(super) on_disk: super::on_disk::OnDisk,
    /// Paths differing only in case, said once.
    pub(super) case: super::case_clash::CaseClashes,
}

impl App {
    /// An editor in a workspace session: `start.share` is shared into the
    /// room if it is empty; without it, the room is joined as it is.
    pub fn new_folder(config: Startup, start: FolderStart, now: Instant) -> Self {
        let join = JoinAs {
            room: config.room.clone(),
            user: config.user.clone(),
            token: config.token.clone(),
        };
        let mut app = App::new(config, now);
        let mut ws = Workspace::new(join).text_first();
        if let Some(share) = &start.share {
            app.ws_view.skipped = share.skipped.notice(&ShareLimits::default());
            app.ws_view.shared_files = share.files.len();
            app.ws_view.share_stamps = start.stamps.clone();
            let built = ws.seed_tree(|tree| {
                Ok(share
                    .to_tree(tree)?
                    .into_iter()
                    .map(|(id, f)| (id, f.text.clone()))
                    .collect())
            });
            if let Err(e) = built {
                app.warn(format!("The folder cannot be shared: {e}."));
            }
        }
        app.session = RoomSession::Folder(Box::new(Folder {
            ws,
            current: Current::Nothing,
            dir: start.dir,
            entries: Vec::new(),
        }));
        app
    }

    /// The workspace's files and folders as listed, for the tree panel and
    /// the picker (empty in a one-file room).
    pub fn entries(&self) -> &[Entry] {
        self.session.folder().map_or(&[], |f| f.entries.as_slice())
    }

    /// The file on screen, in a workspace.
    pub fn current_file(&self) -> Option<NodeId> {
        match self.session.folder()?.current {
            Current::File(id) => Some(id),
            _ => None,
        }
    }

    /// Whether the tree panel is shown.
    pub fn tree_open(&self) -> bool {
        self.ws_view.tree_open
    }

    /// The row selected in the tree panel.
    pub fn tree_selected(&self) -> usize {
        self.ws_view.tree_sel
    }

    /// Queues a message for the server on the session's wire.
    pub(super) fn send(&mut self, out: Out) {
        self.orders.push(match out {
            Out::V1(m) => Order::Send(m),
            Out::V2(m) => Order::SendWs(m),
        });
    }

    /// A workspace connection's event.
    pub(super) fn ws_transport(&mut self, ev: WorkspaceTransportEvent) {
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let was_live = *f.ws.link() == Link::Live;
        if matches!(ev, TransportEvent::Disconnected { .. }) && was_live {
            self.note_connection_lost();
        }
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let effects = f.ws.handle(ev, self.now);
        self.ws_effects(effects);
        self.pull_changes(false);
    }

    pub(super) fn ws_effects(&mut self, effects: Vec<WsEffect>) {
        for e in effects {
            match e {
                WsEffect::Send(m) => self.orders.push(Order::SendWs(m)),
                WsEffect::Event(ev) => self.ws_event(ev),
            }
        }
    }

    fn ws_event(&mut self, ev: WsEvent) {
        match ev {
            WsEvent::Room(e) => {
                // The text shown first is a one-file room's: shown as such.
                if matches!(e, ClientEvent::TextFirst { .. }) {
                    self.after_room_welcome();
                }
                let welcome = matches!(e, ClientEvent::Welcome { .. });
                self.client_event(e);
                if welcome {
                    self.after_room_welcome();
                }
            }
            WsEvent::File { id, event } => self.file_event(id, event),
            WsEvent::BecameWorkspace => {
                self.relist();
                if let Some(f) = self.session.folder_mut()
                    && f.current == Current::Main
                {
                    f.current = Current::Nothing;
                    self.notice("A folder was shared into this room: pick a file in the tree.");
                    self.show_tree();
                }
            }
            WsEvent::TreeChanged => self.relist(),
            WsEvent::TreeSeeded { applied } => self.tree_seeded(applied),
            WsEvent::TreeError { message, .. } => self.warn(message),
            WsEvent::Presence { .. } => self.refresh_peers(),
        }
    }

    /// After a welcome into the room: a one-file room shows its text; a
    /// workspace shows the tree until a file is opened.
    fn after_room_welcome(&mut self) {
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let kind = f.ws.kind();
        let seeding = f.ws.seeding_tree();
        if f.current == Current::Nothing && kind == RoomKind::OneFile && !seeding {
            f.current = Current::Main;
            self.notice("This room holds one file's text (no folder): editing it.");
        }
        if kind == RoomKind::Workspace {
            self.relist();
            if self.current_file().is_none() {
                self.show_tree();
            }
        }
    }

    fn file_event(&mut self, id: NodeId, event: ClientEvent) {
        let on_screen = self.current_file() == Some(id);
        match event {
            ClientEvent::Welcome { first, .. } if on_screen => {
                // Typed before the file's first welcome: what was typed is
                // not in any file, so it stays modified. (Not `modified()`:
                // the room's text may have come in before its welcome.)
                let typed = self.saving.is_edited();
                self.pull_changes(false);
                if first && !typed {
                    // The room's text is the baseline of `[+]`.
                    self.saving.rebase(self.editor.rope().clone());
                    self.check_modified();
                }
            }
            ClientEvent::Welcome { first: true, .. } => self.parked_welcomed(id),
            ClientEvent::DocChanged if on_screen => self.pull_changes(false),
            ClientEvent::Error { message, .. } | ClientEvent::BadServerData { message } => {
                let name = self.entry_path(id).unwrap_or_else(|| "a file".into());
                self.warn(format!("{name}: {message}"));
            }
            _ => {}
        }
    }

    fn tree_seeded(&mut self, applied: bool) {
        self.relist();
        if !applied {
            self.warn("The room already holds text or files: the folder was not shared; you see the room's.");
            self.after_room_welcome();
            return;
        }
        let stamps = std::mem::take(&mut self.ws_view.share_stamps);
        if let Some(dir) = self.session.folder().and_then(|f| f.dir.clone()) {
            let files: Vec<(NodeId, String)> = self
                .entries()
                .iter()
                .filter(|e| e.kind == Kind::File)
                .map(|e| (e.id, e.path.clone()))
                .collect();
            for (id, path) in files {
                if let Some(stamp) = stamps.get(&path) {
                    self.ws_view.on_disk.remember(id, dir.join(&path), *stamp);
                }
            }
        }
        let n = self.ws_view.shared_files;
        let files = if n == 1 { "file" } else { "files" };
        self.notice(format!("Shared the folder: {n} {files}."));
        if let Some(skipped) = self.ws_view.skipped.take() {
            self.warn(skipped);
        }
        let first = self
            .entries()
            .iter()
            .find(|e| e.kind == Kind::File)
            .map(|e| e.id);
        match first {
            Some(id) => self.switch_to(id),
            None => self.show_tree(),
        }
    }

    /// Lists the tree again, keeping the panel's selection in range and
    /// saying what happened to the open files (a rename moves where each
    /// saves; a delete leaves an unsaved copy).
    pub(super) fn relist(&mut self) {
        let open: Vec<NodeId> = self.buffers().to_vec();
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let before: Vec<(NodeId, Option<String>)> = open
            .iter()
            .map(|id| (*id, f.path_of(*id).map(str::to_owned)))
            .collect();
        f.list();
        sort_entries(&mut f.entries);
        let len = f.entries.len();
        let dir = f.dir.clone();
        let after: Vec<Option<String>> = open
            .iter()
            .map(|id| f.path_of(*id).map(str::to_owned))
            .collect();
        for ((id, old), new) in before.into_iter().zip(after) {
            let Some(old) = old else { continue };
            match new {
                Some(new) if new != old => {
                    self.notice(format!("{old} was renamed {new}."));
                    let file = dir.as_ref().map(|d| d.join(&new));
                    if self.current_file() == Some(id) {
                        self.config.file = file;
                        self.saving.moved();
                    } else {
                        self.repath_parked(id, file);
                    }
                }
                Some(_) => {}
                None => self.warn(format!(
                    "{old} was deleted from the room: what you have open is an unsaved copy."
                )),
            }
        }
        self.ws_view.tree_sel = self.ws_view.tree_sel.min(len.saturating_sub(1));
        self.say_case_clashes();
        self.relayout();
    }

    /// The shown path of file or folder `id`.
    pub(super) fn entry_path(&self, id: NodeId) -> Option<String> {
        self.session.folder()?.path_of(id).map(str::to_owned)
    }

    /// Puts file `id`, not open or parked, on screen, opening it (its
    /// text arrives with `opened`); see `buffers::switch_to`.
    pub(super) fn open_file(&mut self, id: NodeId) {
        let Some(f) = self.session.folder_mut() else {
            return;
        };
        let sends = f.ws.open(id);
        let Some(replica) = f.ws.file_mut(id) else {
            return;
        };
        // Undo steps are where `undo_group` starts them, not by time.
        replica.set_undo_merge_interval(0);
        f.current = Current::File(id);
        let text = replica.text();
        // What was pending is in `text` already.
        let _ = replica.take_changes();
        let loaded = replica.welcomes() > 0 || !text.is_empty();
        let path = f.path_of(id).map(str::to_owned).unwrap_or_default();
        let file = f.dir.as_ref().map(|d| d.join(&path));
        for m in sends {
            self.orders.push(Order::SendWs(m));
        }
        let stamp = self.ws_view.on_disk.stamp_at(id, file.as_deref());
        self.show_text(&path, file, &text, stamp);
        if loaded {
            self.set_saved_baseline();
        }
        self.focus = Focus::Text;
        self.in_room_presence_again();
        self.refresh_peers();
    }

    /// The tree panel's keys.
    pub(super) fn tree_command(&mut self, c: Command) {
        use Command::*;
        let len = self.entries().len();
        let page = self.text_height().max(1);
        let sel = &mut self.ws_view.tree_sel;
        match c {
            MoveUp | InputUp => *sel = sel.saturating_sub(1),
            MoveDown | InputDown => *sel = (*sel + 1).min(len.saturating_sub(1)),
            PageUp => *sel = sel.saturating_sub(page),
            PageDown => *sel = (*sel + page).min(len.saturating_sub(1)),
            DocStart | LineStart => *sel = 0,
            DocEnd | LineEnd => *sel = len.saturating_sub(1),
            NewEntry => self.ask_new_entry(),
            RenameEntry => self.ask_rename(),
            DeleteEntry => self.delete_selected(),
            Submit | Newline => {
                let picked = self.entries().get(self.ws_view.tree_sel).cloned();
                match picked {
                    Some(e) if e.kind == Kind::File => self.switch_to(e.id),
                    Some(_) => self.notice("A folder: pick a file in it."),
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// The tree panel's key (F7): shows it with the keyboard, or hides it.
    pub(super) fn toggle_tree(&mut self) {
        if self.session.folder().is_none() {
            return self.notice("This room holds one file: no tree (share a folder with collab-tui --room ROOM DIR).");
        }
        if self.ws_view.tree_open && self.focus == Focus::Tree {
            self.ws_view.tree_open = false;
            self.focus = Focus::Text;
            self.relayout();
        } else {
            self.show_tree();
        }
    }

    /// Shows the tree panel with the keyboard, on the file on screen.
    pub(super) fn show_tree(&mut self) {
        self.ws_view.tree_open = true;
        if let Some(id) = self.current_file()
            && let Some(i) = self.entries().iter().position(|e| e.id == id)
        {
            self.ws_view.tree_sel = i;
        }
        if self.focus == Focus::Text {
            self.focus = Focus::Tree;
        }
        self.relayout();
    }
}

/// The tree's order: by path, a folder's contents right after it.
fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
}

impl App {
    /// A new document on screen: its text, a fresh view, highlight, save
    /// state and undo grouping; `file` is where Ctrl-S writes it.
    pub(super) fn show_text(
        &mut self,
        path: &str,
        file: Option<PathBuf>,
        text: &str,
        stamp: Option<Stamp>,
    ) {
        self.editor = crate::editor::Editor::with_text(text);
        self.view = super::View::default();
        let first_line = text.lines().next().unwrap_or_default();
        self.highlight =
            crate::highlight::Highlight::for_file(Some(std::path::Path::new(path)), first_line);
        self.saving = super::saving::Saving::new(Rope::new(), stamp);
        self.config.file = file;
        self.config.file_on_disk = super::OnDisk::Writable;
        self.indent_known = false;
        self.undo_group = super::undo_group::UndoGroup::default();
        self.after_text_change();
    }

    /// The text on screen is the baseline of `[+]`: what the room held
    /// when the file loaded (a file on disk that differs is found by the
    /// save's stamp check, and asked about).
    pub(super) fn set_saved_baseline(&mut self) {
        let stamp = self.disk_stamp();
        self.saving = super::saving::Saving::new(self.editor.rope().clone(), stamp);
        self.check_modified();
    }
}
