//! The editor core: a rope, my selection and the commands on them. No IO,
//! no async, no terminal: every function here is a plain computation, so
//! it is tested directly and the same code serves keys, mouse and paste.
//!
//! The core never changes the text itself. Editing commands return a
//! [`Change`] (an [`Edit`] in char positions plus where my selection goes
//! afterwards); the app sends the edit to the shared document, and the
//! document's delta comes back through [`Editor::apply_delta`], the one
//! road by which text enters the rope (mine, undo, and everyone else's).

mod commands;
mod edit;
mod movement;
mod search;
mod selection;
pub mod text;

pub use commands::Change;
pub use edit::{Assoc, Edit, apply_to_rope, changed_span, map_pos};
pub use search::{Direction, find_next, find_prev};
pub use selection::Selection;

use collab_doc::TextChange;
use ropey::Rope;

/// Columns a tab advances to (the next multiple of this).
pub const DEFAULT_TAB_WIDTH: usize = 4;

/// The buffer and my place in it.
#[derive(Debug, Clone)]
pub struct Editor {
    rope: Rope,
    sel: Selection,
    /// The display column vertical moves aim for, kept across short lines.
    goal_col: Option<usize>,
    pub tab_width: usize,
    /// What Tab inserts and Enter's indentation is made of: a tab or spaces.
    pub indent_with_tabs: bool,
    /// What Enter and a paste put between lines: the file's own ending.
    pub line_ending: LineEnding,
}

/// How lines end in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    #[default]
    Lf,
    CrLf,
}

impl LineEnding {
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
        }
    }

    /// The ending of the text's first line break (a file keeps one
    /// style; a mixed one follows its first line).
    pub fn detect(rope: &Rope) -> Self {
        let first = rope.lines().next().filter(|_| rope.len_lines() > 1);
        match first {
            Some(l) if l.len_chars() >= 2 && l.char(l.len_chars() - 2) == '\r' => LineEnding::CrLf,
            _ => LineEnding::Lf,
        }
    }
}

impl Default for Editor {
    fn default() -> Self {
        Self::new(Rope::new())
    }
}

impl Editor {
    pub fn new(rope: Rope) -> Self {
        let indent_with_tabs = detect_tabs(&rope);
        let line_ending = LineEnding::detect(&rope);
        Self {
            rope,
            sel: Selection::default(),
            goal_col: None,
            tab_width: DEFAULT_TAB_WIDTH,
            indent_with_tabs,
            line_ending,
        }
    }

    /// Decides tabs or spaces, and the line ending, from the text (when
    /// the text arrived after the editor was made).
    pub fn detect_indent(&mut self) {
        self.indent_with_tabs = detect_tabs(&self.rope);
        self.line_ending = LineEnding::detect(&self.rope);
    }

    pub fn with_text(text: &str) -> Self {
        Self::new(Rope::from_str(text))
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    pub fn selection(&self) -> Selection {
        self.sel
    }

    /// The caret position.
    pub fn head(&self) -> usize {
        self.sel.head
    }

    pub fn set_selection(&mut self, sel: Selection) {
        self.sel = sel.clamped(self.rope.len_chars());
        self.goal_col = None;
    }

    /// The caret's line and display column, both from 0.
    pub fn line_col(&self) -> (usize, usize) {
        let line = self.rope.char_to_line(self.sel.head);
        (
            line,
            text::col_of(&self.rope, self.sel.head, self.tab_width),
        )
    }

    /// The selected text (empty when nothing is selected).
    pub fn selected_text(&self) -> String {
        self.rope.slice(self.sel.range()).to_string()
    }

    /// Mirrors a document delta into the rope and carries my selection
    /// through it, to the `assoc` side of text inserted at it (`After` for
    /// the echo of my own edit, whose caller then places the caret itself).
    pub fn apply_delta(&mut self, delta: &[TextChange], assoc: Assoc) {
        let anchor = map_pos(delta, self.sel.anchor, assoc);
        let head = map_pos(delta, self.sel.head, assoc);
        apply_to_rope(&mut self.rope, delta);
        self.sel = Selection::new(anchor, head).clamped(self.rope.len_chars());
    }
}

/// True when more indented lines (of the first thousand) start with a tab
/// than with spaces.
fn detect_tabs(rope: &Rope) -> bool {
    let (mut tabs, mut spaces) = (0, 0);
    for line in rope.lines().take(1000) {
        match line.chars().next() {
            Some('\t') => tabs += 1,
            Some(' ') => spaces += 1,
            _ => {}
        }
    }
    tabs > spaces
}
