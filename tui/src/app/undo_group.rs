//! Where my undo steps begin. One undo takes back a word, not a letter
//! and not a sentence: a step ends when I start a new word (a space or
//! line break typed after a word), switch between typing and deleting,
//! paste, cut, indent or replace a selection (each its own step), move the
//! caret, or pause longer than [`UNDO_PAUSE`]. This is the rule vim's and
//! helix's insert sessions give, cut finer for a modeless editor; F1 says
//! it. The replica merges everything between two checkpoints, so the rule
//! is only where checkpoints go, decided on the app's clock (testable).

use std::time::{Duration, Instant};

use crate::editor::Change;

/// A pause longer than this ends an undo step.
pub const UNDO_PAUSE: Duration = Duration::from_secs(2);

/// What an edit does, for grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditKind {
    /// One character of a word typed.
    Word,
    /// White space typed (space, tab, a line break with its indentation).
    Space,
    /// Backspace or Delete.
    Deleting,
    /// Anything bigger: paste, cut, indent, typing over a selection.
    Block,
}

impl EditKind {
    pub fn of(change: &Change) -> Self {
        let Some(e) = change.single() else {
            return EditKind::Block;
        };
        if e.ins.is_empty() {
            return EditKind::Deleting;
        }
        if e.del > 0 {
            return EditKind::Block;
        }
        if e.ins.chars().all(char::is_whitespace) {
            // Enter inserts the break and the line's indentation.
            let breaks = e.ins.chars().filter(|c| *c == '\n').count();
            if breaks <= 1 && (breaks == 1 || e.ins.chars().count() <= 8) {
                return EditKind::Space;
            }
            return EditKind::Block;
        }
        if e.ins.chars().count() <= 2 {
            // A char, or a char with a combining mark / surrogate half.
            EditKind::Word
        } else {
            EditKind::Block
        }
    }
}

/// The step being typed: its kind and when its last edit was made.
#[derive(Debug, Clone, Copy, Default)]
pub struct UndoGroup(Option<(EditKind, Instant)>);

impl UndoGroup {
    /// The caret moved (or anything else that ends a step).
    pub fn end(&mut self) {
        self.0 = None;
    }

    /// Records an edit of `kind` at `now`; true when it starts a new step.
    pub fn starts_step(&mut self, kind: EditKind, now: Instant) -> bool {
        let new = match self.0 {
            None => true,
            Some((last, at)) => {
                now.saturating_duration_since(at) > UNDO_PAUSE
                    || kind == EditKind::Block
                    || last == EditKind::Block
                    || match (last, kind) {
                        (EditKind::Word, EditKind::Space) => true,
                        (EditKind::Space, EditKind::Word) => false,
                        (a, b) => a != b,
                    }
            }
        };
        self.0 = Some((kind, now));
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editor::Editor;

    fn kind(text: &str, ins: &str) -> EditKind {
        let e = Editor::with_text(text);
        EditKind::of(&e.insert_text(ins).unwrap())
    }

    #[test]
    fn a_word_and_the_space_before_it_are_one_step() {
        let t0 = Instant::now();
        let mut g = UndoGroup::default();
        let mut steps = Vec::new();
        // "abc def" typed slowly, 0.7 s a key.
        for (i, c) in "abc def".chars().enumerate() {
            let k = if c == ' ' {
                EditKind::Space
            } else {
                EditKind::Word
            };
            let at = t0 + Duration::from_millis(700) * u32::try_from(i).unwrap();
            if g.starts_step(k, at) {
                steps.push(i);
            }
        }
        assert_eq!(steps, vec![0, 3]);
        // A long pause ends a step; so does switching to deleting.
        let later = t0 + Duration::from_secs(10);
        assert!(g.starts_step(EditKind::Word, later));
        assert!(g.starts_step(EditKind::Deleting, later));
        assert!(!g.starts_step(EditKind::Deleting, later));
        assert!(g.starts_step(EditKind::Block, later));
        assert!(g.starts_step(EditKind::Word, later));
        g.end();
        assert!(g.starts_step(EditKind::Word, later));
    }

    #[test]
    fn edits_are_told_apart() {
        assert_eq!(kind("", "a"), EditKind::Word);
        assert_eq!(kind("", " "), EditKind::Space);
        assert_eq!(kind("", "\n    "), EditKind::Space);
        assert_eq!(kind("", "a\nb"), EditKind::Block);
        assert_eq!(kind("", "\n\n\n"), EditKind::Block);
    }
}
