//! Caret movement. Each command moves the head; with `extend` the anchor
//! stays (Shift+movement selects). Horizontal moves step whole graphemes;
//! vertical moves aim for the display column the caret had before the
//! first vertical move, so passing a short line does not lose the column.

use super::text::{
    CharClass, char_class, col_of, line_end, next_grapheme_boundary, pos_at_col,
    prev_grapheme_boundary,
};
use super::{Editor, Selection};

impl Editor {
    fn go(&mut self, pos: usize, extend: bool) {
        self.sel = self.sel.moved_to(pos, extend);
        self.goal_col = None;
    }

    /// Places the caret (mouse click, find, go to line).
    pub fn set_cursor(&mut self, pos: usize, extend: bool) {
        let pos = pos.min(self.rope.len_chars());
        self.go(pos, extend);
    }

    pub fn move_left(&mut self, extend: bool) {
        if !extend && !self.sel.is_empty() {
            let start = self.sel.range().start;
            return self.go(start, false);
        }
        let pos = prev_grapheme_boundary(self.rope.slice(..), self.sel.head);
        self.go(pos, extend);
    }

    pub fn move_right(&mut self, extend: bool) {
        if !extend && !self.sel.is_empty() {
            let end = self.sel.range().end;
            return self.go(end, false);
        }
        let pos = next_grapheme_boundary(self.rope.slice(..), self.sel.head);
        self.go(pos, extend);
    }

    /// Moves `lines` up (negative) or down, keeping the goal column.
    pub fn move_vertical(&mut self, lines: isize, extend: bool) {
        let line = self.rope.char_to_line(self.sel.head);
        let goal = self
            .goal_col
            .unwrap_or_else(|| col_of(&self.rope, self.sel.head, self.tab_width));
        let last = self.rope.len_lines().saturating_sub(1);
        let target = line.saturating_add_signed(lines).min(last);
        let pos = if target == line && lines < 0 {
            0
        } else if target == line && lines > 0 {
            self.rope.len_chars()
        } else {
            pos_at_col(&self.rope, target, goal, self.tab_width)
        };
        self.sel = self.sel.moved_to(pos, extend);
        self.goal_col = Some(goal);
    }

    pub fn move_up(&mut self, extend: bool) {
        self.move_vertical(-1, extend);
    }

    pub fn move_down(&mut self, extend: bool) {
        self.move_vertical(1, extend);
    }

    /// Home: to the first non-blank of the line, or to column 0 when
    /// already there.
    pub fn move_line_start(&mut self, extend: bool) {
        let line = self.rope.char_to_line(self.sel.head);
        let start = self.rope.line_to_char(line);
        let end = line_end(&self.rope, line);
        let mut first = start;
        while first < end && matches!(self.rope.char(first), ' ' | '\t') {
            first += 1;
        }
        let pos = if self.sel.head == first { start } else { first };
        self.go(pos, extend);
    }

    pub fn move_line_end(&mut self, extend: bool) {
        let line = self.rope.char_to_line(self.sel.head);
        let pos = line_end(&self.rope, line);
        self.go(pos, extend);
    }

    pub fn move_doc_start(&mut self, extend: bool) {
        self.go(0, extend);
    }

    pub fn move_doc_end(&mut self, extend: bool) {
        let len = self.rope.len_chars();
        self.go(len, extend);
    }

    /// Ctrl-Left: to the start of this or the previous word.
    pub fn move_word_left(&mut self, extend: bool) {
        let mut pos = self.sel.head;
        // Skip spaces, then a run of one class.
        while pos > 0 && char_class(self.rope.char(pos - 1)) == CharClass::Space {
            pos -= 1;
        }
        if pos > 0 {
            let class = char_class(self.rope.char(pos - 1));
            if class == CharClass::LineBreak {
                pos = prev_grapheme_boundary(self.rope.slice(..), pos);
            } else {
                while pos > 0 && char_class(self.rope.char(pos - 1)) == class {
                    pos -= 1;
                }
            }
        }
        self.go(pos, extend);
    }

    /// Ctrl-Right: to the end of this or the next word.
    pub fn move_word_right(&mut self, extend: bool) {
        let len = self.rope.len_chars();
        let mut pos = self.sel.head;
        while pos < len && char_class(self.rope.char(pos)) == CharClass::Space {
            pos += 1;
        }
        if pos < len {
            let class = char_class(self.rope.char(pos));
            if class == CharClass::LineBreak {
                pos = next_grapheme_boundary(self.rope.slice(..), pos);
            } else {
                while pos < len && char_class(self.rope.char(pos)) == class {
                    pos += 1;
                }
            }
        }
        self.go(pos, extend);
    }

    pub fn select_all(&mut self) {
        self.sel = Selection::new(0, self.rope.len_chars());
        self.goal_col = None;
    }

    /// Puts the caret at the start of line `line` (from 0, clamped).
    pub fn goto_line(&mut self, line: usize) {
        let line = line.min(self.rope.len_lines().saturating_sub(1));
        let pos = self.rope.line_to_char(line);
        self.go(pos, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(text: &str, pos: usize) -> Editor {
        let mut e = Editor::with_text(text);
        e.set_cursor(pos, false);
        e
    }

    #[test]
    fn left_right_step_graphemes() {
        let mut e = ed("ae\u{301}🇫🇷b", 1);
        e.move_right(false);
        assert_eq!(e.head(), 3);
        e.move_right(false);
        assert_eq!(e.head(), 5);
        e.move_left(false);
        assert_eq!(e.head(), 3);
        e.move_left(true);
        assert_eq!(e.selection(), Selection::new(3, 1));
        e.move_right(false); // collapses to the selection's end
        assert_eq!(e.head(), 3);
    }

    #[test]
    fn vertical_moves_keep_the_column() {
        let mut e = ed("hello world\nhi\nsomething long\n", 8);
        e.move_down(false);
        assert_eq!(e.head(), 14); // end of "hi"
        e.move_down(false);
        assert_eq!(e.line_col(), (2, 8));
        e.move_up(false);
        e.move_up(false);
        assert_eq!(e.head(), 8);
        e.move_up(false);
        assert_eq!(e.head(), 0);
    }

    #[test]
    fn vertical_moves_respect_wide_chars() {
        // "中文" takes 4 columns; column 2 of line 1 is inside "中文" line's 2nd char.
        let mut e = ed("abcd\n中文x\n", 2);
        e.move_down(false);
        assert_eq!(e.head(), 6);
        assert_eq!(e.line_col(), (1, 2));
    }

    #[test]
    fn home_toggles_between_indent_and_column_zero() {
        let mut e = ed("    code();\n", 8);
        e.move_line_start(false);
        assert_eq!(e.head(), 4);
        e.move_line_start(false);
        assert_eq!(e.head(), 0);
        e.move_line_end(false);
        assert_eq!(e.head(), 11);
    }

    #[test]
    fn word_moves() {
        let mut e = ed("foo_bar  (baz)\nnext", 0);
        e.move_word_right(false);
        assert_eq!(e.head(), 7);
        e.move_word_right(false);
        assert_eq!(e.head(), 10);
        e.move_word_right(false);
        assert_eq!(e.head(), 13);
        e.move_word_right(false);
        e.move_word_right(false);
        assert_eq!(e.head(), 15);
        e.move_word_left(false);
        assert_eq!(e.head(), 14);
        e.move_word_left(true);
        assert_eq!(e.selection(), Selection::new(14, 13));
    }

    #[test]
    fn select_all_and_goto() {
        let mut e = ed("a\nb\nc", 0);
        e.select_all();
        assert_eq!(e.selected_text(), "a\nb\nc");
        e.goto_line(2);
        assert_eq!(e.head(), 4);
        e.goto_line(99);
        assert_eq!(e.head(), 4);
    }
}
