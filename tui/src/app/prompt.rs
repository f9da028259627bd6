//! The one-line prompts (find, go to line, save as): opening, closing, their
//! keys and submitting; and finding, incremental as the find prompt's text
//! changes.

use super::{App, Focus, Prompt, PromptKind};
use crate::editor::{Direction, Selection, find_next, find_prev};
use crate::input::LineInput;
use crate::keymap::Command;

/// The prompt that is open, if any, and the last query found: this
/// module's state, changed only here.
#[derive(Debug, Default)]
pub(super) struct Prompts {
    open: Option<Prompt>,
    last_search: String,
}

impl App {
    /// The prompt that is open.
    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompts.open.as_ref()
    }

    /// Text typed or pasted into the open prompt (a find follows it).
    pub(super) fn prompt_insert(&mut self, text: &str) {
        if let Some(p) = &mut self.prompts.open {
            p.input.insert(text);
        }
        self.prompt_changed();
    }

    /// The prompt's text changed: a find follows it, the picker's first
    /// match is chosen again.
    fn prompt_changed(&mut self) {
        self.picker_typed();
        self.incremental_find();
    }

    /// Puts `text` in the open prompt, in place of what it holds.
    pub(super) fn set_prompt_text(&mut self, text: &str) {
        if let Some(p) = &mut self.prompts.open {
            p.input = LineInput::with_text(text);
        }
    }

    /// Drops the open prompt, and nothing else (the caller gives the focus
    /// back and lays out).
    pub(super) fn drop_prompt(&mut self) {
        self.prompts.open = None;
    }

    pub(super) fn open_prompt(&mut self, kind: PromptKind) {
        // Find opens on the previous query, selected: Enter finds it
        // again, typing replaces it.
        let input = match kind {
            PromptKind::Find => LineInput::with_selected(&self.prompts.last_search),
            _ => LineInput::default(),
        };
        self.prompts.open = Some(Prompt {
            kind,
            input,
            origin: self.editor.selection().range().start,
            no_match: false,
        });
        self.focus = Focus::Prompt;
        self.relayout();
        self.hide_undrawn_inputs();
        self.follow_cursor();
    }

    pub(super) fn close_prompt(&mut self) {
        self.prompts.open = None;
        self.focus = Focus::Text;
        self.relayout();
        self.follow_cursor();
    }

    pub(super) fn prompt_command(&mut self, c: Command) {
        use Command::*;
        let Some(p) = &mut self.prompts.open else {
            self.focus = Focus::Text;
            return;
        };
        let kind = p.kind;
        if kind == PromptKind::OpenFile && self.picker_command(c) {
            return;
        }
        let Some(p) = &mut self.prompts.open else {
            return;
        };
        let input = &mut p.input;
        match c {
            MoveLeft => input.left(),
            MoveRight => input.right(),
            LineStart => input.home(),
            LineEnd => input.end(),
            WordLeft => input.word_left(),
            WordRight => input.word_right(),
            Backspace => {
                input.backspace();
                self.prompt_changed();
            }
            DeleteWordBefore => {
                input.delete_word();
                self.prompt_changed();
            }
            DeleteToStart => {
                input.delete_to_start();
                self.prompt_changed();
            }
            Delete => {
                input.delete();
                self.prompt_changed();
            }
            Paste => {
                let clip = self.clipboard.clone();
                input.insert(&clip);
                self.prompt_changed();
            }
            FindNext | FindPrev | InputDown | InputUp if kind == PromptKind::Find => {
                let needle = input.text.clone();
                let direction = match c {
                    FindNext | InputDown => Direction::Forward,
                    _ => Direction::Backward,
                };
                self.find(direction, Some(needle));
            }
            Submit => self.submit_prompt(),
            _ => {}
        }
    }

    pub(super) fn submit_prompt(&mut self) {
        let Some(p) = self.prompts.open.clone() else {
            return;
        };
        let text = p.input.text.trim().to_owned();
        match p.kind {
            PromptKind::Find => self.find(Direction::Forward, Some(p.input.text)),
            PromptKind::GotoLine => {
                let line = text
                    .split(':')
                    .next()
                    .and_then(|n| n.trim().parse::<usize>().ok());
                match line {
                    Some(n) if n > 0 => {
                        self.close_prompt();
                        let lines = self.editor.rope().len_lines();
                        if n > lines {
                            self.notice(format!("The file has {lines} lines: at the last one."));
                        }
                        self.editor.goto_line(n - 1);
                        self.session.undo_checkpoint();
                        self.undo_group.end();
                        self.center_cursor();
                    }
                    _ => self.warn("Type a line number, from 1."),
                }
            }
            PromptKind::SaveAs => self.save_as(&text),
            PromptKind::OpenFile => self.pick(),
            PromptKind::SaveDir => self.save_dir_typed(&text),
            PromptKind::NewFile => self.create_typed(&text),
            PromptKind::Rename => self.rename_typed(&text),
        }
    }

    /// As the find prompt's text changes, select the first match from where
    /// the search started.
    pub(super) fn incremental_find(&mut self) {
        let Some(p) = &mut self.prompts.open else {
            return;
        };
        if p.kind != PromptKind::Find {
            return;
        }
        p.no_match = false;
        let needle = p.input.text.clone();
        let origin = p.origin;
        if needle.is_empty() {
            return;
        }
        match find_next(self.editor.rope(), &needle, origin) {
            Some(r) => {
                self.editor.set_selection(Selection::new(r.start, r.end));
                self.follow_cursor();
            }
            None => p.no_match = true,
        }
        self.prompts.last_search = needle;
    }

    pub(super) fn find(&mut self, direction: Direction, needle: Option<String>) {
        let needle = needle.unwrap_or_else(|| self.prompts.last_search.clone());
        if needle.is_empty() {
            return self.open_prompt(PromptKind::Find);
        }
        let sel = self.editor.selection().range();
        let rope = self.editor.rope();
        let found = match direction {
            Direction::Forward => find_next(rope, &needle, sel.end),
            Direction::Backward => find_prev(rope, &needle, sel.start),
        };
        match found {
            Some(r) => {
                self.editor.set_selection(Selection::new(r.start, r.end));
                self.session.undo_checkpoint();
                self.undo_group.end();
                self.follow_cursor();
            }
            None => self.warn(format!("Not found: {needle}")),
        }
        self.prompts.last_search = needle;
    }
}
