//! Saving (the write itself is an [`Effect::Save`] for the event loop, its
//! result comes back as `Action::Saved`) and quitting, which asks twice when
//! the text is modified.

use std::path::PathBuf;

use collab_protocol::ClientMsg;

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
            Ok(path) => {
                if let Some(text) = self.pending_save.take() {
                    self.saved = text;
                }
                self.after_text_change();
                self.notice(format!("Saved {}", path.display()));
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
