//! Editing commands. Each one looks at the buffer and my selection and
//! returns a [`Change`]: the edit to make and where my selection goes when
//! it has been made. None of them touches the rope (see the module doc of
//! `editor`); `None` means the command has nothing to do here.

use super::text::{line_end, next_grapheme_boundary, prev_grapheme_boundary};
use super::{Edit, Editor, LineEnding, Selection};

/// The edits of one command and my selection after them. Most commands
/// make one edit; indenting lines makes one per line (so a member typing
/// inside those lines keeps their place, which replacing the whole block
/// would not give them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// In the order to make them: from the end of the text backwards, so
    /// that each edit's position is still valid when it is made.
    pub edits: Vec<Edit>,
    pub after: Selection,
}

impl Change {
    fn new(edit: Edit) -> Self {
        let end = edit.pos + edit.ins.chars().count();
        Self {
            edits: vec![edit],
            after: Selection::cursor(end),
        }
    }

    /// The one edit of a single-edit change.
    pub fn single(&self) -> Option<&Edit> {
        match self.edits.as_slice() {
            [e] => Some(e),
            _ => None,
        }
    }
}

/// Where `pos` goes when `edits` (made from the end backwards) are made:
/// a position at an edit's start stays before what it inserts, one inside
/// what it deletes goes to its start.
fn shift(pos: usize, edits: &[Edit]) -> usize {
    let mut p = pos;
    for e in edits {
        if e.pos + e.del <= p && e.pos < p {
            p = p - e.del + e.ins.chars().count();
        } else if e.pos < p {
            p = e.pos;
        }
    }
    p
}

/// Terminals send line breaks in pastes as `\r`; the buffer keeps the
/// file's own line ending (`\n` unless the file uses `\r\n`).
pub fn normalize_newlines(text: &str, ending: LineEnding) -> String {
    let lf = if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    };
    match ending {
        LineEnding::Lf => lf,
        LineEnding::CrLf => lf.replace('\n', "\r\n"),
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
        self.insert_text(&normalize_newlines(text, self.line_ending))
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
        self.insert_text(&format!("{}{indent}", self.line_ending.as_str()))
    }

    /// Tab: with a selection, indents its lines; otherwise a tab
    /// character, or spaces to the next tab stop.
    pub fn tab(&self) -> Option<Change> {
        if !self.sel.is_empty() {
            return self.indent();
        }
        if self.indent_with_tabs {
            return self.insert_text("\t");
        }
        let start = self.sel.range().start;
        let col = super::text::col_of(&self.rope, start, self.tab_width);
        let n = self.tab_width - col % self.tab_width.max(1);
        self.insert_text(&" ".repeat(n))
    }

    /// The lines a selection covers, first to last (a selection ending at
    /// the start of a line does not take that line).
    fn selected_lines(&self) -> std::ops::RangeInclusive<usize> {
        let r = self.sel.range();
        let first = self.rope.char_to_line(r.start);
        let mut last = self.rope.char_to_line(r.end);
        if last > first && self.rope.line_to_char(last) == r.end {
            last -= 1;
        }
        first..=last
    }

    /// One indentation step: a tab or `tab_width` spaces.
    fn indent_unit(&self) -> String {
        if self.indent_with_tabs {
            "\t".into()
        } else {
            " ".repeat(self.tab_width.max(1))
        }
    }

    fn change_lines(&self, edits: Vec<Edit>) -> Option<Change> {
        if edits.is_empty() {
            return None;
        }
        let after = Selection::new(shift(self.sel.anchor, &edits), shift(self.sel.head, &edits));
        Some(Change { edits, after })
    }

    /// Tab with a selection: one indentation step more on every selected
    /// line that has text.
    pub fn indent(&self) -> Option<Change> {
        let unit = self.indent_unit();
        let edits = self
            .selected_lines()
            .rev()
            .filter(|&l| super::text::line_len_no_break(&self.rope, l) > 0)
            .map(|l| Edit::insert(self.rope.line_to_char(l), unit.clone()))
            .collect();
        self.change_lines(edits)
    }

    /// Shift-Tab: one indentation step less on the caret's line or every
    /// selected line (a tab, or up to `tab_width` spaces).
    pub fn dedent(&self) -> Option<Change> {
        let edits = self
            .selected_lines()
            .rev()
            .filter_map(|l| {
                let start = self.rope.line_to_char(l);
                let line = self.rope.line(l);
                let n = match line.chars().next() {
                    Some('\t') => 1,
                    _ => line
                        .chars()
                        .take(self.tab_width.max(1))
                        .take_while(|c| *c == ' ')
                        .count(),
                };
                (n > 0).then(|| Edit::delete(start, start + n))
            })
            .collect();
        self.change_lines(edits)
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
        // Applied straight to the rope, as the document would echo it.
        if let Some(c) = c {
            for edit in &c.edits {
                e.apply_delta(&edit.to_delta(), crate::editor::Assoc::After);
            }
            e.set_selection(c.after);
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
    fn a_crlf_file_keeps_crlf() {
        let mut e = ed("  a\r\nb\r\n", 3, 3);
        assert_eq!(e.line_ending, LineEnding::CrLf);
        let c = e.newline();
        assert_eq!(run(&mut e, c), "  a\r\n  \r\nb\r\n");
        let c = e.paste("x\ny\rz");
        assert_eq!(run(&mut e, c), "  a\r\n  x\r\ny\r\nz\r\nb\r\n");
        assert_eq!(LineEnding::detect(&"a\nb\r\n".into()), LineEnding::Lf);
        assert_eq!(LineEnding::detect(&"a\r".into()), LineEnding::Lf);
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
    fn tab_and_shift_tab_indent_the_selected_lines() {
        // Select all, Tab: every line with text gains a step, nothing is
        // replaced.
        let text = "fn a() {\n  x;\n\n}\n";
        let mut e = ed(text, 0, text.chars().count());
        let c = e.tab();
        assert_eq!(run(&mut e, c), "    fn a() {\n      x;\n\n    }\n");
        assert_eq!(e.selection(), Selection::new(0, 29));
        // Shift-Tab takes it back, and once more takes what is left of
        // the 2-space line and nothing from the others.
        let c = e.dedent();
        assert_eq!(run(&mut e, c), text);
        let c = e.dedent();
        assert_eq!(run(&mut e, c), "fn a() {\nx;\n\n}\n");
        // A selection ending at a line's start does not take that line.
        let mut e = ed("a\nb\nc", 0, 2);
        let c = e.tab();
        assert_eq!(run(&mut e, c), "    a\nb\nc");
        // Without a selection Shift-Tab dedents the caret's line; the
        // caret stays on its character.
        let mut e = ed("x\n\t\tyz", 5, 5);
        let c = e.dedent();
        assert_eq!(run(&mut e, c), "x\n\tyz");
        assert_eq!(e.head(), 4);
        assert!(ed("abc", 1, 1).dedent().is_none());
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
        e.apply_delta(
            &Edit::insert(0, ">> ").to_delta(),
            crate::editor::Assoc::Before,
        );
        assert_eq!(e.selected_text(), "world");
        e.apply_delta(
            &Edit::insert(14, "!").to_delta(),
            crate::editor::Assoc::Before,
        );
        assert_eq!(e.selection(), Selection::new(9, 14));
        assert_eq!(e.rope().to_string(), ">> hello world!");
    }
}
