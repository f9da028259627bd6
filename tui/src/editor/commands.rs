//! Editing commands. Each one looks at the buffer and my selection and
//! returns a [`Change`]: the edit to make and where my selection goes when
//! it has been made. None of them touches the rope (see the module doc of
//! `editor`); `None` means the command has nothing to do here.

use super::text::{line_end, next_grapheme_boundary, prev_grapheme_boundary};
use super::{Edit, Editor, Selection};

/// An edit and my selection after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub edit: Edit,
    pub after: Selection,
}

impl Change {
    fn new(edit: Edit) -> Self {
        let end = edit.pos + edit.ins.chars().count();
        Self {
            edit,
            after: Selection::cursor(end),
        }
    }
}

/// Terminals send line breaks in pastes as `\r`; the buffer keeps `\n`.
pub fn normalize_newlines(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    }
}

impl Editor {
    /// Replaces the selection (or inserts at the caret) with `text`.
    pub fn insert_text(&self, text: &str) -> Option<Change> {
        let r = self.sel.range();
        let edit = Edit::replace(r.start, r.end, text);
        (!edit.is_noop()).then(|| Change::new(edit))
    }

    pub fn insert_char(&self, c: char) -> Option<Change> {
        self.insert_text(c.encode_utf8(&mut [0; 4]))
    }

    /// A pasted block: one edit, whatever its size.
    pub fn paste(&self, text: &str) -> Option<Change> {
        self.insert_text(&normalize_newlines(text))
    }

    /// Enter: a line break, then the current line's leading white space
    /// (up to the caret) so the new line starts at the same indentation.
    pub fn newline(&self) -> Option<Change> {
        let r = self.sel.range();
        let line = self.rope.char_to_line(r.start);
        let start = self.rope.line_to_char(line);
        let indent: String = self
            .rope
            .slice(start..r.start)
            .chars()
            .take_while(|c| matches!(c, ' ' | '\t'))
            .collect();
        self.insert_text(&format!("\n{indent}"))
    }

    /// Tab: a tab character, or spaces to the next tab stop.
    pub fn tab(&self) -> Option<Change> {
        if self.indent_with_tabs {
            return self.insert_text("\t");
        }
        let start = self.sel.range().start;
        let col = super::text::col_of(&self.rope, start, self.tab_width);
        let n = self.tab_width - col % self.tab_width.max(1);
        self.insert_text(&" ".repeat(n))
    }

    /// Backspace: the selection, or the grapheme before the caret.
    pub fn backspace(&self) -> Option<Change> {
        if !self.sel.is_empty() {
            return self.delete_selection();
        }
        let head = self.sel.head;
        let from = prev_grapheme_boundary(self.rope.slice(..), head);
        (from < head).then(|| Change::new(Edit::delete(from, head)))
    }

    /// Delete: the selection, or the grapheme after the caret.
    pub fn delete_forward(&self) -> Option<Change> {
        if !self.sel.is_empty() {
            return self.delete_selection();
        }
        let head = self.sel.head;
        let to = next_grapheme_boundary(self.rope.slice(..), head);
        (to > head).then(|| Change::new(Edit::delete(head, to)))
    }

    fn delete_selection(&self) -> Option<Change> {
        let r = self.sel.range();
        (!r.is_empty()).then(|| Change::new(Edit::delete(r.start, r.end)))
    }

    /// What Copy takes: the selection, or the caret's whole line (with its
    /// break) when nothing is selected, as most editors do.
    pub fn copy_text(&self) -> String {
        if self.sel.is_empty() {
            let line = self.rope.char_to_line(self.sel.head);
            self.rope.line(line).to_string()
        } else {
            self.selected_text()
        }
    }

    /// Cut: the copied text and the edit that removes it.
    pub fn cut(&self) -> (String, Option<Change>) {
        let text = self.copy_text();
        if !self.sel.is_empty() {
            return (text, self.delete_selection());
        }
        let line = self.rope.char_to_line(self.sel.head);
        let start = self.rope.line_to_char(line);
        let end = if line + 1 < self.rope.len_lines() {
            self.rope.line_to_char(line + 1)
        } else {
            line_end(&self.rope, line)
        };
        let change = (end > start).then(|| Change::new(Edit::delete(start, end)));
        (text, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(text: &str, anchor: usize, head: usize) -> Editor {
        let mut e = Editor::with_text(text);
        e.set_selection(Selection::new(anchor, head));
        e
    }

    fn run(e: &mut Editor, c: Option<Change>) -> String {
        if let Some(c) = c {
            e.apply_change(&c);
        }
        e.rope().to_string()
    }

    #[test]
    fn typing_replaces_the_selection() {
        let mut e = ed("hello world", 6, 11);
        let c = e.insert_text("there");
        assert_eq!(run(&mut e, c), "hello there");
        assert_eq!(e.selection(), Selection::cursor(11));
        let c = e.insert_char('!');
        assert_eq!(run(&mut e, c), "hello there!");
    }

    #[test]
    fn enter_keeps_indentation() {
        let mut e = ed("    if x {\n", 10, 10);
        let c = e.newline();
        assert_eq!(run(&mut e, c), "    if x {\n    \n");
        assert_eq!(e.head(), 15);
        let mut e = ed("\tfoo", 1, 1);
        let c = e.newline();
        assert_eq!(run(&mut e, c), "\t\n\tfoo");
    }

    #[test]
    fn tab_reaches_the_next_stop() {
        let mut e = ed("ab", 2, 2);
        let c = e.tab();
        assert_eq!(run(&mut e, c), "ab  ");
        let mut e = ed("\tx\n", 0, 0);
        assert!(e.indent_with_tabs);
        let c = e.tab();
        assert_eq!(run(&mut e, c), "\t\tx\n");
    }

    #[test]
    fn backspace_and_delete_take_whole_graphemes() {
        let mut e = ed("ae\u{301}b", 3, 3);
        let c = e.backspace();
        assert_eq!(run(&mut e, c), "ab");
        assert_eq!(e.head(), 1);
        let c = e.delete_forward();
        assert_eq!(run(&mut e, c), "a");
        assert!(e.delete_forward().is_none());
        let e = ed("x", 0, 0);
        assert!(e.backspace().is_none());
        let mut e = ed("a\r\nb", 3, 3);
        let c = e.backspace();
        assert_eq!(run(&mut e, c), "ab");
    }

    #[test]
    fn cut_copy_paste() {
        let mut e = ed("one\ntwo\nthree", 4, 4);
        assert_eq!(e.copy_text(), "two\n");
        let (text, c) = e.cut();
        assert_eq!(text, "two\n");
        assert_eq!(run(&mut e, c), "one\nthree");
        let c = e.paste("x\r\ny\rz");
        assert_eq!(run(&mut e, c), "one\nx\ny\nzthree");
        let mut e = ed("abc", 1, 3);
        let (text, c) = e.cut();
        assert_eq!(text, "bc");
        assert_eq!(run(&mut e, c), "a");
    }

    #[test]
    fn remote_edits_carry_my_selection() {
        let mut e = ed("hello world", 6, 11);
        e.apply_delta(&Edit::insert(0, ">> ").to_delta(), false);
        assert_eq!(e.selected_text(), "world");
        e.apply_delta(&Edit::insert(14, "!").to_delta(), false);
        assert_eq!(e.selection(), Selection::new(9, 14));
        assert_eq!(e.rope().to_string(), ">> hello world!");
    }
}
