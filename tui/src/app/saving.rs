//! Saving (the write itself is an [`Order::Save`] for the event loop,
//! which runs it on a blocking thread; its result comes back as
//! `Action::Saved`, and until then no other save starts) and quitting, which asks twice when
//! the text is modified.
//!
//! An editor must never write over a file with text it did not load from
//! it or edit from it. FILE's [`FileState`] says what the file on disk is to
//! this session; unless it is [`FileState::Ours`], the first Ctrl-S says
//! what it would replace and a second one does it (Alt-S saves elsewhere).

use std::path::{Path, PathBuf};

use collab_protocol::ClientMsg;
use ropey::Rope;

use collab_client::Link;

use super::{App, Armed, OnDisk, Order, PromptKind};
use crate::file_watch::Found;
use crate::save::{Expect, SaveError, Saved, Stamp};

/// What FILE on disk is to this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// It holds what was loaded from it or last saved to it (or it does
    /// not exist yet): saving replaces it without asking.
    Ours,
    /// The room already had other text when I joined: the screen shows the
    /// room's, and the file holds something else.
    Differs,
    /// The room never held the file (the server refused it as too large):
    /// the buffer is the room's text, not the file's.
    NotLoaded,
}

/// Saving's own state, changed only here.
#[derive(Debug)]
pub(super) struct Saving {
    /// The save under way (one at a time).
    pending: Option<PendingSave>,
    /// FILE as loaded or last saved, to tell another program's change.
    disk_stamp: Option<Stamp>,
    /// The text as last loaded or saved, to tell whether it is modified.
    saved: Rope,
    /// The text differs from `saved` (`[+]`).
    modified: bool,
    /// What FILE on disk is to this session (may a save replace it?).
    file_state: FileState,
    /// Quitting: the leave is queued.
    quitting: bool,
    /// Edited here since the buffer was shown (before its first welcome,
    /// this is text no file holds).
    edited: bool,
}

impl Saving {
    /// FILE as read at start (its text and stamp), if there was one.
    pub(super) fn new(saved: Rope, disk_stamp: Option<Stamp>) -> Self {
        Self {
            pending: None,
            disk_stamp,
            saved,
            modified: false,
            file_state: FileState::Ours,
            quitting: false,
            edited: false,
        }
    }
}

impl Saving {
    /// The text differs from the file as loaded or last saved.
    pub(super) fn is_modified(&self) -> bool {
        self.modified
    }

    /// A local edit went into the buffer.
    pub(super) fn mark_edited(&mut self) {
        self.edited = true;
    }

    /// Whether the buffer was edited here since it was shown.
    pub(super) fn is_edited(&self) -> bool {
        self.edited
    }

    /// `text` is the baseline of `[+]` from now on (the room's text at a
    /// file's first welcome); a save under way, the stamp and what the
    /// file is to this session stay as they are.
    pub(super) fn rebase(&mut self, text: Rope) {
        self.saved = text;
    }

    /// The file now saves to another path (a rename in the workspace): no
    /// file there is known, so a save there asks before replacing one.
    pub(super) fn moved(&mut self) {
        self.disk_stamp = None;
    }

    /// The file is on disk as `stamp` (moved to its new path).
    pub(super) fn found_at(&mut self, stamp: Stamp) {
        self.disk_stamp = Some(stamp);
    }
}

/// A save on its way to the event loop and back.
#[derive(Debug, Clone)]
pub(super) struct PendingSave {
    path: PathBuf,
    text: Rope,
    kind: SaveKind,
}

/// To FILE (Ctrl-S), or to a new name (Save As), which becomes FILE only
/// once the save went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveKind {
    File,
    As,
}

impl App {
    /// Ctrl-S: to FILE, asking first when FILE holds what this session did
    /// not load; a second Ctrl-S answers yes.
    pub(super) fn save(&mut self) {
        let Some(path) = self.config.file.clone() else {
            return self.open_prompt(PromptKind::SaveAs);
        };
        let confirmed = self.asked == Some(Armed::Save);
        if !confirmed && let Some(question) = self.overwrite_question() {
            self.armed = Some(Armed::Save);
            return self.warn(question);
        }
        let expect = if confirmed {
            Expect::Anything
        } else {
            Expect::Unchanged(self.saving.disk_stamp)
        };
        self.start_save(path, expect, SaveKind::File);
    }

    /// The Save As prompt's Enter: `~/` is the home directory; an existing
    /// file is replaced only on a second Enter with the same name.
    pub(super) fn save_as(&mut self, typed: &str) {
        if typed.is_empty() {
            return self.warn("Type a file name to save to.");
        }
        let path = expand_home(typed, std::env::var_os("HOME").map(PathBuf::from));
        let expect = if self.asked == Some(Armed::SaveAs(path.clone())) {
            Expect::Anything
        } else {
            Expect::Unchanged(None)
        };
        self.close_prompt();
        self.start_save(path, expect, SaveKind::As);
    }

    fn start_save(&mut self, path: PathBuf, expect: Expect, kind: SaveKind) {
        // One save at a time: each result belongs to its save, and two
        // writes of one file never race.
        if let Some(running) = &self.saving.pending {
            let shown = running.path.display().to_string();
            return self.warn(format!("Still saving {shown}: try again in a moment."));
        }
        let text = self.editor.rope().clone();
        self.saving.pending = Some(PendingSave {
            path: path.clone(),
            text: text.clone(),
            kind,
        });
        let folders_under = self.session.folder().and_then(|f| f.dir.clone());
        self.orders.push(Order::Save {
            path,
            text,
            expect,
            folders_under,
        });
    }

    /// FILE's stamp as this session last loaded or saved it.
    pub fn disk_stamp(&self) -> Option<Stamp> {
        self.saving.disk_stamp
    }

    /// A save was started and its result has not come back.
    pub fn save_pending(&self) -> bool {
        self.saving.pending.is_some()
    }

    /// The text differs from FILE as loaded or last saved (`[+]`).
    pub fn modified(&self) -> bool {
        self.saving.modified
    }

    /// What FILE on disk is to this session.
    pub fn file_state(&self) -> FileState {
        self.saving.file_state
    }

    /// Quitting: the leave is queued.
    pub(super) fn quitting(&self) -> bool {
        self.saving.quitting
    }

    /// After a text change: whether the text still is FILE's.
    pub(super) fn check_modified(&mut self) {
        let (rope, saved) = (self.editor.rope(), &self.saving.saved);
        self.saving.modified = rope.len_chars() != saved.len_chars() || rope != saved;
    }

    /// At the first welcome: without FILE the room's text is the baseline
    /// (nothing is modified); with one, FILE on disk is, and a room that
    /// already had other text says so.
    pub(super) fn first_welcome_with_file(&mut self) {
        if self.config.file.is_none() {
            self.saving.saved = Rope::from_str(&self.session.text());
        } else {
            self.compare_with_file();
        }
    }

    /// With FILE, once the room's text is known (the first welcome, or a
    /// seed answered as not applied): a room that already has text shows
    /// the room's, and FILE is said to differ when it does.
    pub(super) fn compare_with_file(&mut self) {
        let Some(file) = &self.config.file_text else {
            return;
        };
        let room = self.session.doc();
        if room.is_empty() {
            return;
        }
        let text = room.text();
        if file.len_bytes() == text.len() && *file == text.as_str() {
            return;
        }
        self.saving.file_state = FileState::Differs;
        let name = self.file_name().unwrap_or_default();
        self.warn(format!(
            "{name} differs from the room's text; you see the room's. Ctrl-S asks before replacing {name}; Alt-S saves elsewhere."
        ));
    }

    /// A new or read-only FILE is said when it opens.
    pub(super) fn say_file_state(&mut self) {
        let Some(name) = self.file_name() else { return };
        match self.config.file_on_disk {
            OnDisk::Writable => {}
            OnDisk::New => self.notice(format!("{name} is a new file: Ctrl-S creates it.")),
            OnDisk::ReadOnly => self.warn(format!(
                "{name} is read-only on disk: you can edit here, but saving to it will fail."
            )),
        }
    }

    pub(super) fn saved_file(&mut self, result: Result<Saved, SaveError>) {
        let Some(pending) = self.saving.pending.take() else {
            return;
        };
        let shown = pending.path.display().to_string();
        match result {
            Ok(saved) => {
                let size = size_of(&pending.text);
                self.saving.saved = pending.text;
                self.saving.disk_stamp = saved.stamp;
                self.remember_on_disk(&pending.path, saved.stamp);
                self.saving.file_state = FileState::Ours;
                if pending.kind == SaveKind::As {
                    self.config.file = Some(pending.path.clone());
                }
                self.after_text_change();
                let mut notice = saved_notice(Some(&pending.path), &saved.written, Some(size));
                if saved.in_place {
                    notice.push_str(" (in place: it has other hard links)");
                }
                self.notice(notice);
            }
            Err(e) => {
                let why = match &e {
                    SaveError::Changed | SaveError::Exists => {
                        // Ask: the same key again replaces it.
                        self.armed = Some(match pending.kind {
                            SaveKind::File => Armed::Save,
                            SaveKind::As => Armed::SaveAs(pending.path.clone()),
                        });
                        match pending.kind {
                            SaveKind::File => "Ctrl-S again replaces it; Alt-S saves elsewhere.",
                            SaveKind::As => "Enter again replaces it, or type another name.",
                        }
                    }
                    SaveError::ReadOnly { .. } => {
                        "Alt-S saves elsewhere (or make it writable: chmod u+w)."
                    }
                    SaveError::Io(_) => match pending.kind {
                        SaveKind::File => "Alt-S saves elsewhere.",
                        SaveKind::As => "Type another name.",
                    },
                };
                self.warn(format!("Not saved to {shown}: {e}. {why}"));
                // Save As keeps its prompt, with the name, to change it.
                if pending.kind == SaveKind::As {
                    self.open_prompt(PromptKind::SaveAs);
                    self.set_prompt_text(&shown);
                }
            }
        }
    }

    /// FILE changed on disk. When it now holds what the buffer holds
    /// (another editor saved the room's text to it), it is the baseline:
    /// nothing is modified and saving asks nothing. When it holds what it
    /// held before (touched), only the stamp moves on. Otherwise the
    /// stamp stays old, so the next save finds the change and asks.
    pub(super) fn file_on_disk(&mut self, found: Found) {
        let rope = self.editor.rope();
        let same = |a: &Rope, b: &Rope| a.len_bytes() == b.len_bytes() && a == b;
        if same(&found.text, rope) {
            self.saving.saved = found.text;
            self.saving.disk_stamp = Some(found.stamp);
            self.saving.file_state = FileState::Ours;
            if let Some(path) = self.config.file.clone() {
                self.remember_on_disk(&path, Some(found.stamp));
            }
            self.after_text_change();
        } else if self.saving.file_state == FileState::Ours && same(&found.text, &self.saving.saved)
        {
            self.saving.disk_stamp = Some(found.stamp);
            if let Some(path) = self.config.file.clone() {
                self.remember_on_disk(&path, Some(found.stamp));
            }
        }
    }

    /// What a save would replace that the user may not mean to, as the
    /// question to ask; `None` when the file is the session's to write.
    fn overwrite_question(&self) -> Option<String> {
        let name = self.file_name().unwrap_or_default();
        let why = match self.saving.file_state {
            FileState::Ours => return None,
            FileState::Differs => format!("{name} on disk is not the room's text"),
            FileState::NotLoaded => format!("{name} was never loaded (too large for the room)"),
        };
        Some(format!(
            "{why}: Ctrl-S again replaces it with what you see; Alt-S saves elsewhere."
        ))
    }

    /// FILE was not seeded into the room (refused): the buffer holds the
    /// room's text, which is all it has to lose; the file is left alone.
    pub(super) fn seed_refused(&mut self) {
        self.saving.file_state = FileState::NotLoaded;
        self.saving.saved = self.editor.rope().clone();
        self.after_text_change();
    }

    /// Ctrl-Q: asks first when there are unsaved changes, or edits that
    /// have not reached the server while offline; a second Ctrl-Q quits.
    pub(super) fn quit(&mut self) {
        let unsent = match self.session.link() {
            Link::Live => 0,
            _ => self.session.unsent_edits(),
        };
        let modified = self.saving.modified;
        if (modified || unsent > 0) && self.asked != Some(Armed::Quit) {
            self.armed = Some(Armed::Quit);
            return self.warn(quit_question(modified, unsent));
        }
        self.quit_now();
    }

    /// Leaves the room and quits, asking nothing.
    pub(super) fn quit_now(&mut self) {
        if self.saving.quitting {
            return;
        }
        self.saving.quitting = true;
        // Edits typed in this same frame go out before the leave.
        for m in self.session.flush_all() {
            self.send(m);
        }
        let leave = self.session.room_msg(ClientMsg::Leave);
        self.send(leave);
        self.orders.push(Order::Quit);
    }
}

/// The warning of a first Ctrl-Q.
fn quit_question(modified: bool, unsent: usize) -> String {
    let edits = if unsent == 1 {
        "edit has"
    } else {
        "edits have"
    };
    match (modified, unsent) {
        (_, 0) => "Unsaved changes: Ctrl-S saves, Ctrl-Q again quits without saving.".into(),
        (false, n) => format!(
            "Offline: {n} {edits} not reached the server, and the room loses them if you quit. Ctrl-Q again quits."
        ),
        (true, n) => format!(
            "Unsaved changes, and offline: {n} {edits} not reached the server. Ctrl-S saves, Ctrl-Q again quits."
        ),
    }
}

/// `~/notes.txt` with `home`: the file in the home directory (as a shell
/// would; `~user` is left as typed).
pub(super) fn expand_home(typed: &str, home: Option<PathBuf>) -> PathBuf {
    match (typed.strip_prefix('~'), home) {
        (Some(""), Some(home)) => home,
        (Some(rest), Some(home)) if rest.starts_with('/') => home.join(&rest[1..]),
        _ => PathBuf::from(typed),
    }
}

/// "3 lines, 45 bytes": a last newline ends a line rather than starting one.
fn size_of(text: &Rope) -> String {
    let chars = text.len_chars();
    let lines = match chars {
        0 => 0,
        _ => text.len_lines() - usize::from(text.char(chars - 1) == '\n'),
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let bytes = text.len_bytes();
    format!(
        "{lines} line{}, {bytes} byte{}",
        plural(lines),
        plural(bytes)
    )
}

/// "Saved notes.txt: 3 lines, 45 bytes", naming the file as it was given
/// (short, and what the user typed; a narrow terminal would cut an absolute
/// path before its file name), and where the write went when a symlink led
/// elsewhere.
fn saved_notice(given: Option<&Path>, written: &Path, size: Option<String>) -> String {
    let mut name = match given {
        Some(g) => g.display().to_string(),
        None => written.display().to_string(),
    };
    if let Some(g) = given
        && g.file_name() != written.file_name()
    {
        name = format!("{name} (→ {})", written.display());
    }
    match size {
        Some(size) => format!("Saved {name}: {size}"),
        None => format!("Saved {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_names_the_file_as_given() {
        let size = || Some("2 lines, 6 bytes".to_string());
        assert_eq!(
            saved_notice(
                Some(Path::new("a.txt")),
                Path::new("/home/me/a.txt"),
                size()
            ),
            "Saved a.txt: 2 lines, 6 bytes"
        );
        assert_eq!(
            saved_notice(Some(Path::new("link")), Path::new("/srv/real.txt"), size()),
            "Saved link (→ /srv/real.txt): 2 lines, 6 bytes"
        );
        assert_eq!(
            saved_notice(None, Path::new("/tmp/b.txt"), None),
            "Saved /tmp/b.txt"
        );
    }

    #[test]
    fn a_tilde_is_the_home_directory() {
        let home = || Some(PathBuf::from("/home/me"));
        assert_eq!(expand_home("~/a.txt", home()), Path::new("/home/me/a.txt"));
        assert_eq!(expand_home("~", home()), Path::new("/home/me"));
        assert_eq!(expand_home("~bob/a", home()), Path::new("~bob/a"));
        assert_eq!(expand_home("a/~/b", home()), Path::new("a/~/b"));
        assert_eq!(expand_home("~/a", None), Path::new("~/a"));
    }

    #[test]
    fn quitting_offline_counts_the_unsent_edits() {
        assert!(quit_question(true, 0).starts_with("Unsaved changes:"));
        assert!(quit_question(false, 1).contains("1 edit has not reached the server"));
        assert!(quit_question(true, 3).contains("3 edits have not reached the server"));
    }

    #[test]
    fn sizes_count_lines_as_an_editor_does() {
        assert_eq!(size_of(&Rope::from_str("a\nb\n")), "2 lines, 4 bytes");
        assert_eq!(size_of(&Rope::from_str("a\nb")), "2 lines, 3 bytes");
        assert_eq!(size_of(&Rope::from_str("é\n")), "1 line, 3 bytes");
        assert_eq!(size_of(&Rope::from_str("")), "0 lines, 0 bytes");
    }
}
