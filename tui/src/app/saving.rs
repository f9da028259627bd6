//! Saving (the write itself is an [`Effect::Save`] for the event loop, its
//! result comes back as `Action::Saved`) and quitting, which asks twice when
//! the text is modified.
//!
//! An editor must never write over a file with text it did not load from
//! it or edit from it. FILE's [`FileState`] says what the file on disk is to
//! this session; unless it is [`FileState::Ours`], the first Ctrl-S says
//! what it would replace and a second one does it (Alt-S saves elsewhere).

use std::path::{Path, PathBuf};

use collab_protocol::ClientMsg;
use ropey::Rope;

use super::{App, Armed, Effect, PromptKind};

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

impl App {
    /// Ctrl-S. `confirmed`: this is the second Ctrl-S, answering the
    /// question the first one asked.
    pub(super) fn save(&mut self, confirmed: bool) {
        let Some(path) = self.config.file.clone() else {
            return self.open_prompt(PromptKind::SaveAs);
        };
        if !confirmed && let Some(question) = self.overwrite_question() {
            self.armed = Some(Armed::Save);
            return self.warn(question);
        }
        let text = self.editor.rope().clone();
        self.pending_save = Some(text.clone());
        self.effects.push(Effect::Save { path, text });
    }

    pub(super) fn saved_file(&mut self, result: Result<PathBuf, String>) {
        match result {
            Ok(written) => {
                let size = self.pending_save.take().map(|text| {
                    let size = size_of(&text);
                    self.saved = text;
                    size
                });
                self.file_state = FileState::Ours;
                self.after_text_change();
                self.notice(saved_notice(self.config.file.as_deref(), &written, size));
            }
            Err(e) => {
                self.pending_save = None;
                self.warn(format!("Not saved: {e}"));
            }
        }
    }

    /// What a save would replace that the user may not mean to, as the
    /// question to ask; `None` when the file is the session's to write.
    fn overwrite_question(&self) -> Option<String> {
        let name = self.file_name().unwrap_or_default();
        let why = match self.file_state {
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
        self.seeding = false;
        self.file_state = FileState::NotLoaded;
        self.saved = self.editor.rope().clone();
        self.after_text_change();
    }

    /// `confirmed`: the second Ctrl-Q, answering the first one's warning.
    pub(super) fn quit(&mut self, confirmed: bool) {
        if self.modified && !confirmed {
            self.armed = Some(Armed::Quit);
            return self.warn("Unsaved changes: Ctrl-S saves, Ctrl-Q again quits without saving.");
        }
        self.quitting = true;
        // Edits typed in this same frame go out before the leave.
        if let Some(m) = self.replica.flush() {
            self.effects.push(Effect::Send(m));
        }
        self.effects.push(Effect::Send(ClientMsg::Leave));
        self.effects.push(Effect::Quit);
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
    fn sizes_count_lines_as_an_editor_does() {
        assert_eq!(size_of(&Rope::from_str("a\nb\n")), "2 lines, 4 bytes");
        assert_eq!(size_of(&Rope::from_str("a\nb")), "2 lines, 3 bytes");
        assert_eq!(size_of(&Rope::from_str("é\n")), "1 line, 3 bytes");
        assert_eq!(size_of(&Rope::from_str("")), "0 lines, 0 bytes");
    }
}
