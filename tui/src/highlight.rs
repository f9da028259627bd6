//! Syntax highlighting by file extension, for the visible lines only.
//!
//! syntect parses a line from the state the previous line left, so the
//! colours of line N depend on every line before it. Re-parsing from the
//! top on every frame would make a 100k-line file crawl, so parse states
//! are kept at every [`CHECKPOINT`]th line start and the visible window is
//! highlighted from the nearest checkpoint above it. An edit drops the
//! checkpoints below the edited line. A jump far past the last checkpoint
//! starts from a fresh state a little above the view rather than parsing
//! megabytes: the colours may be briefly wrong inside a long block
//! comment, but the frame stays fast.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use ropey::Rope;
use syntect::highlighting::{
    FontStyle, HighlightIterator, HighlightState, Highlighter, Theme, ThemeSet,
};
use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};

/// Parse states are kept at line starts that are multiples of this.
pub const CHECKPOINT: usize = 32;
/// Past this many lines below the last checkpoint, start fresh instead.
const MAX_CATCH_UP: usize = 2000;
/// How far above the view a fresh start begins.
const FRESH_LEAD: usize = 100;
/// Lines longer than this (minified files) are not highlighted.
const MAX_LINE_CHARS: usize = 4000;

/// A foreground colour as the theme gives it.
pub type Rgb = (u8, u8, u8);

/// A run of chars in one colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub chars: usize,
    pub fg: Rgb,
    pub bold: bool,
    pub italic: bool,
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
}

fn theme() -> &'static Theme {
    static THEME: OnceLock<Theme> = OnceLock::new();
    THEME.get_or_init(|| {
        ThemeSet::load_defaults()
            .themes
            .remove("base16-eighties.dark")
            .unwrap_or_default()
    })
}

type State = (ParseState, HighlightState);

/// The highlighter of one buffer and its caches.
pub struct Highlight {
    syntax: Option<&'static SyntaxReference>,
    checkpoints: BTreeMap<usize, State>,
    /// The first line of `window`.
    window_start: usize,
    /// Runs of the lines from `window_start` on that are still valid.
    window: Vec<Vec<Run>>,
}

impl std::fmt::Debug for Highlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highlight")
            .field("syntax", &self.syntax.map(|s| &s.name))
            .field("checkpoints", &self.checkpoints.len())
            .finish()
    }
}

impl Highlight {
    /// No highlighting (plain text).
    pub fn plain() -> Self {
        Self {
            syntax: None,
            checkpoints: BTreeMap::new(),
            window_start: 0,
            window: Vec::new(),
        }
    }

    /// The syntax for `path`'s extension (or its name, like `Makefile`), or
    /// the first line (`#!/bin/sh`); plain text when none matches.
    pub fn for_file(path: Option<&Path>, first_line: &str) -> Self {
        let set = syntaxes();
        let by_path = path.and_then(|p| {
            let ext = p.extension().and_then(|e| e.to_str());
            let name = p.file_name().and_then(|n| n.to_str());
            ext.and_then(|e| set.find_syntax_by_extension(e))
                .or_else(|| name.and_then(|n| set.find_syntax_by_extension(n)))
        });
        let syntax = by_path.or_else(|| set.find_syntax_by_first_line(first_line));
        let syntax = syntax.filter(|s| s.name != "Plain Text");
        Self {
            syntax,
            ..Self::plain()
        }
    }

    /// The syntax's name, if any.
    pub fn syntax_name(&self) -> Option<&str> {
        self.syntax.map(|s| s.name.as_str())
    }

    /// The text changed at `line` (and maybe below): drop what depended on it.
    pub fn invalidate_from(&mut self, line: usize) {
        let _ = self.checkpoints.split_off(&(line + 1));
        if line < self.window_start {
            self.window.clear();
        } else {
            self.window.truncate(line - self.window_start);
        }
    }

    /// Everything changed (a reload).
    pub fn invalidate_all(&mut self) {
        self.checkpoints.clear();
        self.window.clear();
    }

    /// The runs of `line` if it was prepared; `None` draws it plain.
    pub fn line(&self, line: usize) -> Option<&[Run]> {
        line.checked_sub(self.window_start)
            .and_then(|i| self.window.get(i))
            .map(Vec::as_slice)
    }

    /// Makes sure lines `top..top + height` are highlighted.
    pub fn prepare(&mut self, rope: &Rope, top: usize, height: usize) {
        let Some(syntax) = self.syntax else {
            return;
        };
        let end = (top + height).min(rope.len_lines());
        if top >= end {
            return;
        }
        if self.window_start == top && self.window.len() >= end - top {
            return;
        }
        let highlighter = Highlighter::new(theme());
        let (mut line, mut state) = match self.checkpoints.range(..=top).next_back() {
            Some((&l, s)) if top - l <= MAX_CATCH_UP => (l, s.clone()),
            _ if top <= MAX_CATCH_UP => (0, fresh(syntax, &highlighter)),
            _ => (top - FRESH_LEAD, fresh(syntax, &highlighter)),
        };
        let mut window = Vec::with_capacity(end - top);
        let mut buf = String::new();
        while line < end {
            if line % CHECKPOINT == 0 {
                self.checkpoints
                    .entry(line)
                    .or_insert_with(|| state.clone());
            }
            let slice = rope.line(line);
            let runs = if slice.len_chars() > MAX_LINE_CHARS {
                Vec::new()
            } else {
                buf.clear();
                buf.extend(slice.chunks());
                if !buf.ends_with('\n') {
                    buf.push('\n');
                }
                highlight_line(&buf, &mut state, &highlighter, syntaxes())
            };
            if line >= top {
                window.push(runs);
            }
            line += 1;
        }
        self.window_start = top;
        self.window = window;
    }
}

fn fresh(syntax: &SyntaxReference, highlighter: &Highlighter<'_>) -> State {
    (
        ParseState::new(syntax),
        HighlightState::new(highlighter, ScopeStack::new()),
    )
}

fn highlight_line(
    text: &str,
    state: &mut State,
    highlighter: &Highlighter<'_>,
    set: &SyntaxSet,
) -> Vec<Run> {
    let Ok(ops) = state.0.parse_line(text, set) else {
        return Vec::new();
    };
    HighlightIterator::new(&mut state.1, &ops, text, highlighter)
        .map(|(style, piece)| Run {
            chars: piece.chars().count(),
            fg: (style.foreground.r, style.foreground.g, style.foreground.b),
            bold: style.font_style.contains(FontStyle::BOLD),
            italic: style.font_style.contains(FontStyle::ITALIC),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_syntax_by_extension_or_first_line() {
        let h = Highlight::for_file(Some(Path::new("x.rs")), "");
        assert_eq!(h.syntax_name(), Some("Rust"));
        let h = Highlight::for_file(None, "#!/bin/bash");
        assert_eq!(h.syntax_name(), Some("Bourne Again Shell (bash)"));
        let h = Highlight::for_file(Some(Path::new("notes.unknownext")), "hello");
        assert_eq!(h.syntax_name(), None);
    }

    #[test]
    fn highlights_only_the_window_and_keeps_checkpoints() {
        let text = "fn main() {\n    let x = 1;\n}\n".repeat(1000);
        let rope = Rope::from_str(&text);
        let mut h = Highlight::for_file(Some(Path::new("x.rs")), "");
        h.prepare(&rope, 300, 20);
        assert!(h.line(299).is_none());
        let runs = h.line(300).map(<[Run]>::to_vec).unwrap_or_default();
        assert!(runs.len() > 1, "{runs:?}");
        let total: usize = runs.iter().map(|r| r.chars).sum();
        assert_eq!(total, rope.line(300).len_chars());
        assert!(h.checkpoints.contains_key(&288));
        h.invalidate_from(305);
        assert!(h.line(304).is_some());
        assert!(h.line(305).is_none());
        assert!(!h.checkpoints.contains_key(&320));
    }
}
