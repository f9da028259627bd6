//! Find: the next or previous occurrence of a string, wrapping around the
//! end. Searches line by line on the rope (no copy of the whole text), so
//! a match cannot span a line break.

use std::borrow::Cow;
use std::ops::Range;

use ropey::Rope;

fn line_text(rope: &Rope, line: usize) -> Cow<'_, str> {
    rope.line(line).into()
}

fn byte_to_char(s: &str, byte: usize) -> usize {
    s[..byte].chars().count()
}

/// The first match starting at or after `from`, wrapping to the top.
pub fn find_next(rope: &Rope, needle: &str, from: usize) -> Option<Range<usize>> {
    if needle.is_empty() || needle.contains('\n') {
        return None;
    }
    let n = needle.chars().count();
    let lines = rope.len_lines();
    let from = from.min(rope.len_chars());
    let first = rope.char_to_line(from);
    for i in 0..=lines {
        let line = (first + i) % lines;
        let text = line_text(rope, line);
        let start = rope.line_to_char(line);
        let skip = if i == 0 { from - start } else { 0 };
        let skip_bytes = text.char_indices().nth(skip).map_or(text.len(), |(b, _)| b);
        let hit = if i == lines {
            // Back on the first line after wrapping: only before `from`.
            text[..skip_bytes_of(&text, from - start)].find(needle)
        } else {
            text[skip_bytes..].find(needle).map(|b| b + skip_bytes)
        };
        if let Some(b) = hit {
            let c = start + byte_to_char(&text, b);
            return Some(c..c + n);
        }
    }
    None
}

fn skip_bytes_of(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

/// The last match ending at or before `before`, wrapping to the bottom.
pub fn find_prev(rope: &Rope, needle: &str, before: usize) -> Option<Range<usize>> {
    if needle.is_empty() || needle.contains('\n') {
        return None;
    }
    let n = needle.chars().count();
    let lines = rope.len_lines();
    let before = before.min(rope.len_chars());
    let first = rope.char_to_line(before);
    for i in 0..=lines {
        let line = (first + lines - (i % lines)) % lines;
        let text = line_text(rope, line);
        let start = rope.line_to_char(line);
        let hit = if i == 0 {
            text[..skip_bytes_of(&text, before - start)].rfind(needle)
        } else {
            text.rfind(needle)
        };
        if let Some(b) = hit {
            let c = start + byte_to_char(&text, b);
            return Some(c..c + n);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_forward_and_wraps() {
        let r = Rope::from_str("foo bar\nbaz foo\nqux");
        assert_eq!(find_next(&r, "foo", 0), Some(0..3));
        assert_eq!(find_next(&r, "foo", 1), Some(12..15));
        assert_eq!(find_next(&r, "foo", 13), Some(0..3));
        assert_eq!(find_next(&r, "nope", 0), None);
        assert_eq!(find_next(&r, "", 0), None);
    }

    #[test]
    fn finds_backward_and_wraps() {
        let r = Rope::from_str("foo bar\nbaz foo\nqux");
        assert_eq!(find_prev(&r, "foo", 19), Some(12..15));
        assert_eq!(find_prev(&r, "foo", 12), Some(0..3));
        assert_eq!(find_prev(&r, "foo", 2), Some(12..15));
    }

    #[test]
    fn finds_wide_chars_by_char_position() {
        let r = Rope::from_str("中文 and 中文");
        assert_eq!(find_next(&r, "中文", 1), Some(7..9));
    }
}
