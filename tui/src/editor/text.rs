//! Grapheme and display-width arithmetic over a rope.
//!
//! The buffer is indexed in `char`s (what ropey and the shared document
//! use), but a person sees graphemes (`e` + combining accent is one thing
//! to step over, a flag emoji is two chars and one thing) that take 0, 1 or
//! 2 terminal columns, and tabs that reach the next tab stop. Every
//! conversion between "char position" and "screen column" lives here, so
//! movement, mouse clicks and drawing agree on where a character is.

use ropey::{Rope, RopeSlice};
use unicode_segmentation::{GraphemeCursor, GraphemeIncomplete};
use unicode_width::UnicodeWidthStr;

/// Columns a grapheme takes when it starts at column `col`.
pub fn grapheme_width(g: &str, col: usize, tab_width: usize) -> usize {
    match g {
        "\t" => tab_width - (col % tab_width.max(1)),
        "\n" | "\r\n" | "\r" => 0,
        _ if g.chars().all(char::is_control) => 1, // drawn as a replacement mark
        _ => g.width(),
    }
}

/// The position after the grapheme that starts at or contains `pos`.
pub fn next_grapheme_boundary(text: RopeSlice<'_>, pos: usize) -> usize {
    let len = text.len_chars();
    if pos >= len {
        return len;
    }
    let byte = text.char_to_byte(pos);
    let (mut chunk, mut chunk_byte, mut chunk_char, _) = text.chunk_at_byte(byte);
    let mut gc = GraphemeCursor::new(byte, text.len_bytes(), true);
    loop {
        match gc.next_boundary(chunk, chunk_byte) {
            Ok(None) => return len,
            Ok(Some(n)) => return chunk_char + chunk[..n - chunk_byte].chars().count(),
            Err(GraphemeIncomplete::NextChunk) => {
                chunk_byte += chunk.len();
                let (c, _, ci, _) = text.chunk_at_byte(chunk_byte);
                chunk = c;
                chunk_char = ci;
            }
            Err(GraphemeIncomplete::PreContext(n)) => {
                let ctx = text.chunk_at_byte(n - 1).0;
                gc.provide_context(ctx, n - ctx.len());
            }
            Err(_) => return pos + 1,
        }
    }
}

/// The position of the grapheme boundary before `pos`.
pub fn prev_grapheme_boundary(text: RopeSlice<'_>, pos: usize) -> usize {
    if pos == 0 {
        return 0;
    }
    let pos = pos.min(text.len_chars());
    let byte = text.char_to_byte(pos);
    let (mut chunk, mut chunk_byte, mut chunk_char, _) = text.chunk_at_byte(byte);
    let mut gc = GraphemeCursor::new(byte, text.len_bytes(), true);
    loop {
        match gc.prev_boundary(chunk, chunk_byte) {
            Ok(None) => return 0,
            Ok(Some(n)) => return chunk_char + chunk[..n - chunk_byte].chars().count(),
            Err(GraphemeIncomplete::PrevChunk) => {
                let (c, cb, ci, _) = text.chunk_at_byte(chunk_byte - 1);
                chunk = c;
                chunk_byte = cb;
                chunk_char = ci;
            }
            Err(GraphemeIncomplete::PreContext(n)) => {
                let ctx = text.chunk_at_byte(n - 1).0;
                gc.provide_context(ctx, n - ctx.len());
            }
            Err(_) => return pos - 1,
        }
    }
}

/// Chars in line `line` without its line break.
pub fn line_len_no_break(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut n = slice.len_chars();
    if n > 0 && slice.char(n - 1) == '\n' {
        n -= 1;
        if n > 0 && slice.char(n - 1) == '\r' {
            n -= 1;
        }
    } else if n > 0 && slice.char(n - 1) == '\r' {
        n -= 1;
    }
    n
}

/// The char position where line `line`'s text ends (before its break).
pub fn line_end(rope: &Rope, line: usize) -> usize {
    rope.line_to_char(line) + line_len_no_break(rope, line)
}

/// The display column of `pos` within its line.
pub fn col_of(rope: &Rope, pos: usize, tab_width: usize) -> usize {
    let pos = pos.min(rope.len_chars());
    let line = rope.char_to_line(pos);
    let start = rope.line_to_char(line);
    let slice = rope.slice(start..pos);
    let mut col = 0;
    let mut at = 0;
    let len = slice.len_chars();
    while at < len {
        let next = next_grapheme_boundary(slice, at);
        let g = slice.slice(at..next);
        col += slice_width(g, col, tab_width);
        at = next;
    }
    col
}

fn slice_width(g: RopeSlice<'_>, col: usize, tab_width: usize) -> usize {
    match g.as_str() {
        Some(s) => grapheme_width(s, col, tab_width),
        None => grapheme_width(&g.to_string(), col, tab_width),
    }
}

/// The char position in `line` whose grapheme covers display column `col`
/// (or the line's end when the line is shorter).
pub fn pos_at_col(rope: &Rope, line: usize, col: usize, tab_width: usize) -> usize {
    let line = line.min(rope.len_lines().saturating_sub(1));
    let start = rope.line_to_char(line);
    let len = line_len_no_break(rope, line);
    let slice = rope.slice(start..start + len);
    let mut c = 0;
    let mut at = 0;
    while at < len {
        let next = next_grapheme_boundary(slice, at);
        let w = slice_width(slice.slice(at..next), c, tab_width);
        if c + w > col {
            return start + at;
        }
        c += w;
        at = next;
    }
    start + len
}

/// What kind of character a word motion treats alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharClass {
    Space,
    LineBreak,
    Word,
    Punct,
}

pub fn char_class(c: char) -> CharClass {
    if c == '\n' || c == '\r' {
        CharClass::LineBreak
    } else if c.is_whitespace() {
        CharClass::Space
    } else if c.is_alphanumeric() || c == '_' {
        CharClass::Word
    } else {
        CharClass::Punct
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn graphemes_step_over_combining_marks_and_emoji() {
        let r = Rope::from_str("e\u{301}x👍🏽y\r\nz");
        let s = r.slice(..);
        assert_eq!(next_grapheme_boundary(s, 0), 2);
        assert_eq!(next_grapheme_boundary(s, 2), 3);
        assert_eq!(next_grapheme_boundary(s, 3), 5);
        assert_eq!(next_grapheme_boundary(s, 6), 8); // \r\n is one
        assert_eq!(prev_grapheme_boundary(s, 5), 3);
        assert_eq!(prev_grapheme_boundary(s, 2), 0);
        assert_eq!(prev_grapheme_boundary(s, 8), 6);
    }

    #[test]
    fn boundaries_across_chunks() {
        // Long enough that ropey splits it into several chunks.
        let text = "a\u{301}".repeat(5000);
        let r = Rope::from_str(&text);
        let mut pos = 0;
        let mut n = 0;
        while pos < r.len_chars() {
            pos = next_grapheme_boundary(r.slice(..), pos);
            n += 1;
        }
        assert_eq!(n, 5000);
        while pos > 0 {
            pos = prev_grapheme_boundary(r.slice(..), pos);
            n -= 1;
        }
        assert_eq!(n, 0);
    }

    #[test]
    fn columns_count_wide_chars_and_tabs() {
        let r = Rope::from_str("a\t中b\n");
        assert_eq!(col_of(&r, 1, 4), 1);
        assert_eq!(col_of(&r, 2, 4), 4);
        assert_eq!(col_of(&r, 3, 4), 6);
        assert_eq!(pos_at_col(&r, 0, 5, 4), 2); // inside the wide char
        assert_eq!(pos_at_col(&r, 0, 6, 4), 3);
        assert_eq!(pos_at_col(&r, 0, 99, 4), 4);
        assert_eq!(line_end(&r, 0), 4);
    }
}
