//! Saving (the write itself is an [`Effect::Save`] for the event loop, its
//! result comes back as `Action::Saved`) and quitting, which asks twice when
//! the text is modified.

use std::path::{Path, PathBuf};

use collab_protocol::ClientMsg;
use ropey::Rope;

use super::{App, Effect, PromptKind};

impl App {
    pub(super) fn save(&mut self) {
        let Some(path) = self.config.file.clone() else {
            return self.open_prompt(PromptKind::SaveAs);
        };
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
                self.after_text_change();
                self.notice(saved_notice(self.config.file.as_deref(), &written, size));
            }
            Err(e) => {
                self.pending_save = None;
                self.warn(format!("Not saved: {e}"));
            }
        }
    }

    pub(super) fn quit(&mut self) {
        if self.modified && !self.quit_armed {
            self.quit_armed = true;
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
