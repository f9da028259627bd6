//! Find: the next or previous occurrence of a string, wrapping around the
//! end. Searches line by line on the rope (no copy of the whole text), so
//! a match cannot span a line break.

use std::ops::Range;

use ropey::Rope;

/// Smart case: a query without a capital letter matches any case; one
/// with a capital matches exactly (as in vim's `smartcase` and helix).
fn fold_case(needle: &str) -> bool {
    !needle.chars().any(char::is_uppercase)
}

/// A char compared case-blind when it lowercases to one char (the rest,
/// rare, are compared as they are, so positions stay char positions).
fn fold(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// A query ready to match: its chars, folded when smart case says so.
struct Needle {
    chars: Vec<char>,
    fold: bool,
}

impl Needle {
    fn new(needle: &str) -> Option<Self> {
        if needle.is_empty() || needle.contains('\n') {
            return None;
        }
        let folded = fold_case(needle);
        let chars = needle
            .chars()
            .map(|c| if folded { fold(c) } else { c })
            .collect();
        Some(Self {
            chars,
            fold: folded,
        })
    }

    fn len(&self) -> usize {
        self.chars.len()
    }

    /// The line's chars as the needle compares them.
    fn line(&self, rope: &Rope, line: usize) -> Vec<char> {
        rope.line(line)
            .chars()
            .map(|c| if self.fold { fold(c) } else { c })
            .collect()
    }

    /// Where the needle starts in `hay`, first to last.
    fn starts<'a>(&'a self, hay: &'a [char]) -> impl DoubleEndedIterator<Item = usize> + 'a {
        let last = hay.len().checked_sub(self.len());
        (0..last.map_or(0, |l| l + 1)).filter(move |&i| hay[i..i + self.len()] == self.chars[..])
    }
}

/// Which way a find goes from the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The first match after the selection (F3, Enter, Down).
    Forward,
    /// The last match before it (Shift-F3, Up).
    Backward,
}

/// The first match starting at or after `from`, wrapping to the top.
pub fn find_next(rope: &Rope, needle: &str, from: usize) -> Option<Range<usize>> {
    let needle = Needle::new(needle)?;
    let n = needle.len();
    let lines = rope.len_lines();
    let from = from.min(rope.len_chars());
    let first = rope.char_to_line(from);
    for i in 0..=lines {
        let line = (first + i) % lines;
        let hay = needle.line(rope, line);
        let start = rope.line_to_char(line);
        let hit = if i == 0 {
            needle.starts(&hay).find(|&m| m >= from - start)
        } else if i == lines {
            // Back on the first line after wrapping: only before `from`.
            needle.starts(&hay).find(|&m| m < from - start)
        } else {
            needle.starts(&hay).next()
        };
        if let Some(m) = hit {
            return Some(start + m..start + m + n);
        }
    }
    None
}

/// The last match ending at or before `before`, wrapping to the bottom.
pub fn find_prev(rope: &Rope, needle: &str, before: usize) -> Option<Range<usize>> {
    let needle = Needle::new(needle)?;
    let n = needle.len();
    let lines = rope.len_lines();
    let before = before.min(rope.len_chars());
    let first = rope.char_to_line(before);
    for i in 0..=lines {
        let line = (first + lines - (i % lines)) % lines;
        let hay = needle.line(rope, line);
        let start = rope.line_to_char(line);
        let hit = if i == 0 {
            needle.starts(&hay).rev().find(|&m| m + n <= before - start)
        } else {
            needle.starts(&hay).next_back()
        };
        if let Some(m) = hit {
            return Some(start + m..start + m + n);
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
    fn smart_case() {
        let r = Rope::from_str("Foo FOO foo\nİx");
        // No capital in the query: any case.
        assert_eq!(find_next(&r, "foo", 0), Some(0..3));
        assert_eq!(find_prev(&r, "foo", 11), Some(8..11));
        // A capital: exactly.
        assert_eq!(find_next(&r, "FOO", 0), Some(4..7));
        assert_eq!(find_next(&r, "Foo", 1), Some(0..3));
        // A char whose lowercase is two chars keeps positions in chars.
        assert_eq!(find_next(&r, "x", 0), Some(13..14));
    }

    #[test]
    fn finds_wide_chars_by_char_position() {
        let r = Rope::from_str("中文 and 中文");
        assert_eq!(find_next(&r, "中文", 1), Some(7..9));
    }
}
