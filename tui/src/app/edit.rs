//! The text's own commands (moving, selecting, deleting, clipboard), typing
//! and pasting into whatever has focus, and my edits and undo going into the
//! replica local-first.

use super::undo_group::EditKind;
use super::{App, Focus, NO_FILE_NOTICE, Order, PromptKind, READ_ONLY_NOTICE};
use crate::editor::{Change, Direction};
use crate::keymap::Command;

/// Which way through the undo history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum History {
    Undo,
    Redo,
}

impl App {
    pub(super) fn text_command(&mut self, c: Command) {
        use Command::*;
        // Moving or editing myself ends following; copying does not.
        if c != Copy {
            self.end_follow_quietly();
        }
        let page = self.text_height().saturating_sub(1).max(1);
        let page_i = isize::try_from(page).unwrap_or(isize::MAX);
        let e = &mut self.editor;
        let moved = match c {
            MoveLeft | SelectLeft => {
                e.move_left(c == SelectLeft);
                true
            }
            MoveRight | SelectRight => {
                e.move_right(c == SelectRight);
                true
            }
            MoveUp | SelectUp => {
                e.move_up(c == SelectUp);
                true
            }
            MoveDown | SelectDown => {
                e.move_down(c == SelectDown);
                true
            }
            WordLeft | SelectWordLeft => {
                e.move_word_left(c == SelectWordLeft);
                true
            }
            WordRight | SelectWordRight => {
                e.move_word_right(c == SelectWordRight);
                true
            }
            LineStart | SelectLineStart => {
                e.move_line_start(c == SelectLineStart);
                true
            }
            LineEnd | SelectLineEnd => {
                e.move_line_end(c == SelectLineEnd);
                true
            }
            PageUp | SelectPageUp => {
                e.move_vertical(-page_i, c == SelectPageUp);
                self.view.top = self.view.top.saturating_sub(page);
                true
            }
            PageDown | SelectPageDown => {
                e.move_vertical(page_i, c == SelectPageDown);
                let last = e.rope().len_lines().saturating_sub(1);
                self.view.top = (self.view.top + page).min(last);
                true
            }
            DocStart => {
                e.move_doc_start(false);
                true
            }
            DocEnd => {
                e.move_doc_end(false);
                true
            }
            SelectAll => {
                e.select_all();
                true
            }
            _ => false,
        };
        if moved {
            self.session.undo_checkpoint();
            self.undo_group.end();
            self.follow_cursor();
            return;
        }
        match c {
            Backspace => {
                let ch = self.editor.backspace();
                self.edit(ch);
            }
            Delete => {
                let ch = self.editor.delete_forward();
                self.edit(ch);
            }
            Newline => {
                let ch = self.editor.newline();
                self.edit(ch);
            }
            Tab => {
                let ch = self.editor.tab();
                self.edit(ch);
            }
            Dedent => {
                let ch = self.editor.dedent();
                self.edit(ch);
            }
            Copy => {
                let text = self.editor.copy_text();
                if !text.is_empty() {
                    self.notice(format!("Copied {}.", amount(&text)));
                }
                self.copy(text);
            }
            Cut => {
                let (text, ch) = self.editor.cut();
                if self.read_only() {
                    return self.warn("Read-only: you can copy but not cut.");
                }
                if !text.is_empty() {
                    self.notice(format!("Cut {}.", amount(&text)));
                }
                self.copy(text);
                self.edit(ch);
            }
            Paste => {
                let text = self.clipboard.clone();
                let ch = self.editor.paste(&text);
                self.edit(ch);
            }
            Undo => self.undo(History::Undo),
            Redo => self.undo(History::Redo),
            Find => self.open_prompt(PromptKind::Find),
            GotoLine => self.open_prompt(PromptKind::GotoLine),
            FindNext => self.find(Direction::Forward, None),
            FindPrev => self.find(Direction::Backward, None),
            _ => {}
        }
    }

    pub(super) fn copy(&mut self, text: String) {
        if text.is_empty() {
            return;
        }
        self.orders.push(Order::Clipboard(text.clone()));
        self.clipboard = text;
    }

    pub(super) fn type_char(&mut self, c: char) {
        match self.focus {
            Focus::Text => {
                self.end_follow_quietly();
                let ch = self.editor.insert_char(c);
                self.edit(ch);
            }
            Focus::Prompt => self.prompt_insert(c.encode_utf8(&mut [0; 4])),
            Focus::Chat => self.chat_insert(c.encode_utf8(&mut [0; 4])),
            Focus::Tree => {}
        }
    }

    pub(super) fn paste(&mut self, text: &str) {
        match self.focus {
            Focus::Text => {
                self.end_follow_quietly();
                let ch = self.editor.paste(text);
                self.edit(ch);
            }
            Focus::Prompt => self.prompt_insert(text),
            Focus::Chat => self.chat_insert(text),
            Focus::Tree => {}
        }
    }

    /// My edit: into the replica at once (local-first), then its delta into
    /// the rope; the update is sent with the next frame.
    pub(super) fn edit(&mut self, change: Option<Change>) {
        let Some(change) = change else { return };
        if !self.session.has_document() {
            return self.warn(NO_FILE_NOTICE);
        }
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        if self.undo_group.starts_step(EditKind::of(&change), self.now) {
            self.session.undo_step();
        }
        for e in &change.edits {
            if let Err(err) = self.session.edit_local(e.pos, e.del, &e.ins) {
                self.pull_changes(true);
                return self.warn(format!("Edit not applied: {err}."));
            }
        }
        self.saving.mark_edited();
        self.pull_changes(true);
        self.editor.set_selection(change.after);
        self.follow_cursor();
    }

    pub(super) fn undo(&mut self, way: History) {
        if self.read_only() {
            return self.warn(READ_ONLY_NOTICE);
        }
        self.undo_group.end();
        self.session.undo_checkpoint();
        let msg = match way {
            History::Undo => self.session.undo(),
            History::Redo => self.session.redo(),
        };
        if let Some(m) = msg {
            let m = self.session.doc_msg(m);
            self.send(m);
        }
        let changes = self.session.take_changes();
        if changes.is_empty() {
            let what = match way {
                History::Undo => "undo",
                History::Redo => "redo",
            };
            return self.notice(format!("Nothing to {what}."));
        }
        let mut caret = None;
        for delta in &changes {
            self.mirror_delta(delta, false);
            caret = delta_end(delta).or(caret);
        }
        if let Some(c) = caret {
            self.editor.set_cursor(c, false);
        }
        self.after_text_change();
        self.follow_cursor();
    }
}

/// How much text is, in words: `3 lines` or `12 characters`.
pub(super) fn amount(text: &str) -> String {
    let breaks = text.matches('\n').count();
    if breaks == 0 {
        let n = text.chars().count();
        return if n == 1 {
            "1 character".into()
        } else {
            format!("{n} characters")
        };
    }
    let lines = breaks + usize::from(!text.ends_with('\n'));
    if lines == 1 {
        "1 line".into()
    } else {
        format!("{lines} lines")
    }
}

/// Where the caret goes after an undo: after the last inserted text, or
/// at the last deletion.
fn delta_end(delta: &[collab_doc::TextChange]) -> Option<usize> {
    use collab_doc::TextChange::*;
    let mut at = 0;
    let mut end = None;
    for step in delta {
        match step {
            Retain(n) => at += n,
            Insert(s) => {
                at += s.chars().count();
                end = Some(at);
            }
            Delete(_) => end = Some(at),
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::amount;

    #[test]
    fn amounts_in_words() {
        assert_eq!(amount("a\nb\nc\n"), "3 lines");
        assert_eq!(amount("a\nb"), "2 lines");
        assert_eq!(amount("one\n"), "1 line");
        assert_eq!(amount("héllo"), "5 characters");
        assert_eq!(amount("x"), "1 character");
    }
}
