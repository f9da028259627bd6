//! Ctrl-P in a workspace: a prompt whose text picks a file of the room
//! by fuzzy name (`crate::picker`), Up/Down choose among the matches,
//! Enter opens the chosen one (or switches to it when it is open).

use collab_doc::tree::{Entry, Kind};

use super::{App, PromptKind};
use crate::keymap::Command;
use crate::picker::rank;

/// How many matches the picker lists.
pub const PICKER_ROWS: usize = 10;

impl App {
    /// Ctrl-P.
    pub(super) fn open_picker(&mut self) {
        if self.session.folder().is_none() {
            return self.notice("This room holds one file: nothing to pick.");
        }
        self.ws_view.picker_sel = 0;
        self.open_prompt(PromptKind::OpenFile);
    }

    /// The files matching the picker's text, best first, and the one
    /// chosen (an index into them).
    pub fn picker_matches(&self) -> (Vec<&Entry>, usize) {
        let Some(p) = self.prompt().filter(|p| p.kind == PromptKind::OpenFile) else {
            return (Vec::new(), 0);
        };
        let files: Vec<&Entry> = self
            .entries()
            .iter()
            .filter(|e| e.kind == Kind::File)
            .collect();
        let ranked: Vec<&Entry> = rank(&p.input.text, files.iter().map(|e| e.path.as_str()))
            .into_iter()
            .map(|i| files[i])
            .collect();
        let sel = self.ws_view.picker_sel.min(ranked.len().saturating_sub(1));
        (ranked, sel)
    }

    /// Up and Down in the picker.
    pub(super) fn picker_command(&mut self, c: Command) -> bool {
        let n = self.picker_matches().0.len().min(PICKER_ROWS);
        let sel = &mut self.ws_view.picker_sel;
        match c {
            Command::InputUp => *sel = sel.saturating_sub(1),
            Command::InputDown => *sel = (*sel + 1).min(n.saturating_sub(1)),
            _ => return false,
        }
        true
    }

    /// Enter in the picker.
    pub(super) fn pick(&mut self) {
        let (matches, sel) = self.picker_matches();
        let Some(id) = matches.get(sel).map(|e| e.id) else {
            return self.warn("No file matches: type less of its name.");
        };
        self.close_prompt();
        self.switch_to(id);
    }

    /// The picker's text changed: the first match is chosen again.
    pub(super) fn picker_typed(&mut self) {
        self.ws_view.picker_sel = 0;
    }
}
