//! Edits and deltas: the only two ways text changes.
//!
//! A command produces an [`Edit`] (replace `del` chars at `pos` with `ins`)
//! and hands it to the document. What comes back from the document (for my
//! edits, for undo and for everyone else's edits alike) is a delta, a list
//! of [`TextChange`] steps, that is mirrored into the rope here. Positions
//! held elsewhere (my selection, the scroll anchor) are carried through
//! the same delta with [`map_pos`], so they stay on their characters while
//! other people type above them.

use collab_doc::TextChange;
use ropey::Rope;

/// Replace `del` chars at `pos` with `ins`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Edit {
    pub pos: usize,
    pub del: usize,
    pub ins: String,
}

impl Edit {
    pub fn insert(pos: usize, ins: impl Into<String>) -> Self {
        Self {
            pos,
            del: 0,
            ins: ins.into(),
        }
    }

    pub fn delete(from: usize, to: usize) -> Self {
        Self {
            pos: from.min(to),
            del: from.abs_diff(to),
            ins: String::new(),
        }
    }

    pub fn replace(from: usize, to: usize, ins: impl Into<String>) -> Self {
        Self {
            pos: from.min(to),
            del: from.abs_diff(to),
            ins: ins.into(),
        }
    }

    pub fn is_noop(&self) -> bool {
        self.del == 0 && self.ins.is_empty()
    }

    /// The same change as a delta (what the document would report).
    pub fn to_delta(&self) -> Vec<TextChange> {
        let mut d = Vec::with_capacity(3);
        if self.pos > 0 {
            d.push(TextChange::Retain(self.pos));
        }
        if self.del > 0 {
            d.push(TextChange::Delete(self.del));
        }
        if !self.ins.is_empty() {
            d.push(TextChange::Insert(self.ins.clone()));
        }
        d
    }
}

/// Mirrors a delta into the rope. Steps that reach past the end (which a
/// consistent document never sends) are clamped rather than trusted.
pub fn apply_to_rope(rope: &mut Rope, delta: &[TextChange]) {
    let mut at = 0usize;
    for step in delta {
        match step {
            TextChange::Retain(n) => at = (at + n).min(rope.len_chars()),
            TextChange::Insert(s) => {
                rope.insert(at, s);
                at += s.chars().count();
            }
            TextChange::Delete(n) => {
                let end = (at + n).min(rope.len_chars());
                rope.remove(at..end);
            }
        }
    }
}

/// Which side of text inserted exactly at a position the position ends up
/// on (as helix's `Assoc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assoc {
    /// It stays before the insertion: someone else typing at my caret does
    /// not move it.
    Before,
    /// It moves past the insertion: my own typing moves my caret.
    After,
}

/// Where `pos` (before the delta) is after it; an insertion exactly at
/// `pos` leaves it on the `assoc` side.
pub fn map_pos(delta: &[TextChange], pos: usize, assoc: Assoc) -> usize {
    let (mut old, mut new) = (0usize, 0usize);
    for step in delta {
        match step {
            TextChange::Retain(n) => {
                if pos < old + n {
                    return new + (pos - old);
                }
                old += n;
                new += n;
            }
            TextChange::Insert(s) => {
                if old == pos && assoc == Assoc::Before {
                    return new;
                }
                new += s.chars().count();
            }
            TextChange::Delete(n) => {
                if pos < old + n {
                    return new;
                }
                old += n;
            }
        }
    }
    new + (pos - old)
}

/// The stretch of text a delta changes, in chars: `old` is the changed
/// range of the text before it, `new` what replaced it. A delta with
/// several steps (a remote update) counts as one stretch from its first
/// change to its last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    pub start: usize,
    pub old_end: usize,
    pub new_end: usize,
}

/// The stretch of text `delta` changes, `None` when it changes nothing.
pub fn changed_span(delta: &[TextChange]) -> Option<Changed> {
    let (mut old, mut new) = (0usize, 0usize);
    let mut span: Option<Changed> = None;
    for step in delta {
        match step {
            TextChange::Retain(n) => {
                old += n;
                new += n;
            }
            TextChange::Insert(s) if s.is_empty() => {}
            TextChange::Delete(0) => {}
            TextChange::Insert(s) => {
                let start = span.map_or(old, |c| c.start);
                new += s.chars().count();
                span = Some(Changed {
                    start,
                    old_end: old,
                    new_end: new,
                });
            }
            TextChange::Delete(n) => {
                let start = span.map_or(old, |c| c.start);
                old += n;
                span = Some(Changed {
                    start,
                    old_end: old,
                    new_end: new,
                });
            }
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_as_deltas() {
        let mut r = Rope::from_str("hello world");
        apply_to_rope(&mut r, &Edit::replace(0, 5, "goodbye").to_delta());
        assert_eq!(r.to_string(), "goodbye world");
        apply_to_rope(&mut r, &Edit::insert(13, "!").to_delta());
        assert_eq!(r.to_string(), "goodbye world!");
        apply_to_rope(&mut r, &[TextChange::Retain(100), TextChange::Delete(5)]);
        assert_eq!(r.to_string(), "goodbye world!");
    }

    #[test]
    fn positions_follow_the_text() {
        let ins = Edit::insert(2, "abc").to_delta();
        assert_eq!(map_pos(&ins, 1, Assoc::Before), 1);
        assert_eq!(map_pos(&ins, 2, Assoc::Before), 2);
        assert_eq!(map_pos(&ins, 2, Assoc::After), 5);
        assert_eq!(map_pos(&ins, 4, Assoc::Before), 7);
        let del = Edit::delete(2, 5).to_delta();
        assert_eq!(map_pos(&del, 1, Assoc::Before), 1);
        assert_eq!(map_pos(&del, 3, Assoc::Before), 2);
        assert_eq!(map_pos(&del, 5, Assoc::Before), 2);
        assert_eq!(map_pos(&del, 9, Assoc::Before), 6);
    }

    #[test]
    fn changed_span_covers_every_step() {
        let span = |d: &[TextChange]| changed_span(d);
        assert_eq!(span(&[TextChange::Retain(3)]), None);
        assert_eq!(
            span(&Edit::replace(2, 5, "abcd").to_delta()),
            Some(Changed {
                start: 2,
                old_end: 5,
                new_end: 6
            })
        );
        let two = [
            TextChange::Retain(1),
            TextChange::Insert("xy".into()),
            TextChange::Retain(4),
            TextChange::Delete(2),
            TextChange::Retain(9),
        ];
        assert_eq!(
            span(&two),
            Some(Changed {
                start: 1,
                old_end: 7,
                new_end: 7
            })
        );
    }
}
