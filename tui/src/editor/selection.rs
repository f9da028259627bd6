//! A selection is two char positions: the `anchor` stays where selecting
//! started, the `head` (the caret) moves. Empty when they are equal.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Selection {
    pub anchor: usize,
    pub head: usize,
}

impl Selection {
    /// A caret with nothing selected.
    pub fn cursor(pos: usize) -> Self {
        Self {
            anchor: pos,
            head: pos,
        }
    }

    pub fn new(anchor: usize, head: usize) -> Self {
        Self { anchor, head }
    }

    pub fn is_empty(&self) -> bool {
        self.anchor == self.head
    }

    /// The selected chars, start before end.
    pub fn range(&self) -> Range<usize> {
        self.anchor.min(self.head)..self.anchor.max(self.head)
    }

    /// Moves the head to `pos`; the anchor follows unless `extend`.
    pub fn moved_to(self, pos: usize, extend: bool) -> Self {
        if extend {
            Self::new(self.anchor, pos)
        } else {
            Self::cursor(pos)
        }
    }

    /// Keeps both ends within a text of `len` chars.
    pub fn clamped(self, len: usize) -> Self {
        Self::new(self.anchor.min(len), self.head.min(len))
    }
}
