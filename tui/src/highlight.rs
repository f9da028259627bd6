//! Syntax highlighting by file extension, for the visible lines only.
//!
//! syntect parses a line from the state the previous line left, so the
//! colours of line N depend on every line before it, and parsing a line
//! costs tens of microseconds (hundreds for dense code). Two caches keep a
//! frame cheap on a 100k-line file:
//!
//! - the visible lines (and a few above): each with the state it started
//!   from, the state it left and its colours. A keystroke re-parses the
//!   edited line only; the lines below are reused as soon as the state
//!   flowing into one equals the state it was parsed from (typing inside a
//!   string or a comment usually stops right there);
//! - parse states at every [`CHECKPOINT`]th line start, to start a window
//!   that the line cache does not reach (a jump) from close by.
//!
//! An edit marks the edited lines of the line cache; the lines below keep
//! their colours until the state check says otherwise. Checkpoints below
//! an edit move with their lines, unverified: after an edit far above the
//! view (a peer typing elsewhere), the few lines from the checkpoint above
//! the edit to the next one below are parsed, and if the state there is
//! unchanged, the view's lines stand as they are. A jump far past the last
//! checkpoint starts from a fresh state a little above the view rather
//! than parsing megabytes: the colours may be wrong inside a long block
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
pub const CHECKPOINT: usize = 8;
/// Past this many lines below the last known state, start fresh instead
/// (dense code parses at a few thousand lines a second).
const MAX_CATCH_UP: usize = 300;
/// How far above the view a fresh start begins.
const FRESH_LEAD: usize = 40;
/// Lines above the view kept in the line cache (scrolling up is free).
const KEEP_ABOVE: usize = 64;
/// An edit above the cached lines is checked against the states below it
/// when the next known state is at most this far down.
const CONVERGE_WITHIN: usize = 3 * CHECKPOINT;
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

/// One highlighted line: valid while its text is unchanged and the state
/// flowing into it equals `start`.
#[derive(Clone)]
struct Line {
    start: State,
    end: State,
    runs: Vec<Run>,
}

/// The highlighter of one buffer and its caches.
pub struct Highlight {
    syntax: Option<&'static SyntaxReference>,
    /// States at line starts (multiples of [`CHECKPOINT`]); none below the
    /// first edited line since they were made.
    checkpoints: BTreeMap<usize, State>,
    /// The first line of `lines`.
    first: usize,
    /// Lines from `first` on; `None` where the text changed.
    lines: Vec<Option<Line>>,
    /// The first line edited since the last `prepare` (`usize::MAX`: none):
    /// the start states of cached lines past it are unverified.
    dirty_from: usize,
    /// Checkpoints below an edit, moved with the lines: valid again if
    /// the state after the edited lines turns out unchanged.
    unverified: BTreeMap<usize, State>,
    /// The last edited line (meaningful while `dirty_from` is set).
    dirty_to: usize,
    /// Lines parsed so far (for tests and measurements).
    parsed: u64,
}

impl std::fmt::Debug for Highlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highlight")
            .field("syntax", &self.syntax.map(|s| &s.name))
            .field("checkpoints", &self.checkpoints.len())
            .field("first", &self.first)
            .field("lines", &self.lines.len())
            .field("parsed", &self.parsed)
            .finish()
    }
}

impl Highlight {
    /// No highlighting (plain text).
    pub fn plain() -> Self {
        Self {
            syntax: None,
            checkpoints: BTreeMap::new(),
            first: 0,
            lines: Vec::new(),
            dirty_from: usize::MAX,
            unverified: BTreeMap::new(),
            dirty_to: 0,
            parsed: 0,
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

    /// How many lines have been parsed since this highlighter was made.
    pub fn lines_parsed(&self) -> u64 {
        self.parsed
    }

    /// Lines `first..=old_last` of the text were replaced by the lines
    /// `first..=new_last`; the lines below moved by the difference.
    pub fn edited(&mut self, first: usize, old_last: usize, new_last: usize) {
        let old_last = old_last.max(first);
        let new_last = new_last.max(first);
        // Checkpoints below the edit move with their lines, unverified.
        let below = self.checkpoints.split_off(&(first + 1));
        let unverified = std::mem::take(&mut self.unverified);
        let mut kept = BTreeMap::new();
        for (k, v) in unverified.into_iter().chain(below) {
            if k <= first {
                kept.insert(k, v);
            } else if k > old_last {
                kept.insert(k - old_last + new_last, v);
            }
        }
        self.unverified = kept;
        if self.dirty_from == usize::MAX {
            self.dirty_to = new_last;
        } else if self.dirty_to > old_last {
            self.dirty_to = self.dirty_to - old_last + new_last;
        }
        self.dirty_to = self.dirty_to.max(new_last);
        self.dirty_from = self.dirty_from.min(first);
        let end = self.first + self.lines.len();
        if first >= end {
            return;
        }
        if old_last < self.first {
            // Wholly above the cached lines: they only move.
            self.first = self.first - (old_last - first) + (new_last - first);
        } else if first < self.first {
            // Over the top of the cached lines: keep those below the edit.
            let keep = old_last + 1 - self.first;
            if keep >= self.lines.len() {
                self.lines.clear();
            } else {
                self.lines.drain(..keep);
            }
            self.first = new_last + 1;
        } else if old_last >= end {
            self.lines.truncate(first - self.first);
        } else {
            let a = first - self.first;
            let b = old_last + 1 - self.first;
            let fresh = std::iter::repeat_with(|| None).take(new_last - first + 1);
            self.lines.splice(a..b, fresh);
        }
    }

    /// The text changed at `line` and maybe anywhere below.
    pub fn invalidate_from(&mut self, line: usize) {
        let _ = self.checkpoints.split_off(&(line + 1));
        self.unverified.clear();
        self.dirty_from = self.dirty_from.min(line);
        if line < self.first {
            self.lines.clear();
            self.first = 0;
        } else {
            self.lines.truncate(line - self.first);
        }
    }

    /// Everything changed (a reload).
    pub fn invalidate_all(&mut self) {
        self.checkpoints.clear();
        self.unverified.clear();
        self.lines.clear();
        self.first = 0;
        self.dirty_from = 0;
    }

    /// The runs of `line` if it was prepared; `None` draws it plain.
    pub fn line(&self, line: usize) -> Option<&[Run]> {
        line.checked_sub(self.first)
            .and_then(|i| self.lines.get(i))
            .and_then(Option::as_ref)
            .map(|l| l.runs.as_slice())
    }

    /// The latest line at or above `limit` whose start state is known and
    /// trusted (no edit above it since it was computed), with that state.
    fn known_state(&self, limit: usize) -> Option<(usize, State)> {
        let limit = limit.min(self.dirty_from);
        let end = self.first + self.lines.len();
        let cached = if self.first <= limit && end > self.first {
            let j = limit.min(end - 1);
            let entry = |line: usize| {
                line.checked_sub(self.first)
                    .and_then(|i| self.lines.get(i))
                    .and_then(Option::as_ref)
            };
            if j < limit {
                // The last cached line ends above `limit`: its end state.
                entry(j).map(|l| (j + 1, l.end.clone()))
            } else if let Some(l) = entry(j) {
                Some((j, l.start.clone()))
            } else {
                j.checked_sub(1)
                    .filter(|&k| k >= self.first)
                    .and_then(entry)
                    .map(|l| (j, l.end.clone()))
            }
        } else {
            None
        };
        let checkpoint = self
            .checkpoints
            .range(..=limit)
            .next_back()
            .map(|(&l, s)| (l, s));
        match (cached, checkpoint) {
            (Some(c), Some((l, _))) if c.0 >= l => Some(c),
            (_, Some((l, s))) => Some((l, s.clone())),
            (c, None) => c,
        }
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
        let cached_end = self.first + self.lines.len();
        if self.dirty_from >= end && self.first <= top && cached_end >= end {
            return;
        }
        let highlighter = Highlighter::new(theme());
        if self.converge(rope, top, &highlighter) {
            let cached_end = self.first + self.lines.len();
            if self.first <= top && cached_end >= end {
                return;
            }
        }
        self.unverified.clear();
        let (mut line, mut state) = match self.known_state(top) {
            Some((l, s)) if top - l <= MAX_CATCH_UP => (l, s),
            _ if top <= MAX_CATCH_UP => (0, fresh(syntax, &highlighter)),
            _ => (top - FRESH_LEAD, fresh(syntax, &highlighter)),
        };
        let old_first = self.first;
        let mut old = std::mem::take(&mut self.lines);
        let want_from = top.saturating_sub(KEEP_ABOVE);
        // Cached lines above the start are still good (no edit above it):
        // keep them, up to `KEEP_ABOVE` above the view.
        let mut lines: Vec<Option<Line>> = Vec::with_capacity(end - want_from.min(line));
        if old_first <= line && line <= old_first + old.len() && want_from < line {
            let from = want_from.max(old_first);
            lines.extend(
                old[from - old_first..line - old_first]
                    .iter_mut()
                    .map(Option::take),
            );
            if let Some(gap) = lines.iter().rposition(Option::is_none) {
                lines.drain(..=gap);
            }
        }
        let keep_from = want_from.max(line - lines.len());
        let mut buf = String::new();
        while line < end {
            if line % CHECKPOINT == 0 {
                self.checkpoints.insert(line, state.clone());
            }
            let reuse = line
                .checked_sub(old_first)
                .and_then(|i| old.get_mut(i))
                .and_then(Option::take)
                .filter(|l| l.start == state);
            let entry = match reuse {
                Some(l) => l,
                None => {
                    let start = state.clone();
                    let runs = self.parse_line(rope, line, &mut buf, &mut state, &highlighter);
                    Line {
                        start,
                        end: state.clone(),
                        runs,
                    }
                }
            };
            state.clone_from(&entry.end);
            if line >= keep_from {
                lines.push(Some(entry));
            }
            line += 1;
        }
        self.first = keep_from;
        self.lines = lines;
        self.dirty_from = usize::MAX;
        self.unverified.clear();
    }

    /// After edits wholly above the cached lines (a peer typing far above
    /// the view): parses from the last state above the edits down to the
    /// next state kept from before them. If the two agree, the edits left
    /// everything below as it was: the cached lines and the moved
    /// checkpoints are good again, and nothing else needs parsing.
    fn converge(&mut self, rope: &Rope, top: usize, highlighter: &Highlighter<'_>) -> bool {
        if self.dirty_from == usize::MAX || self.unverified.is_empty() && self.lines.is_empty() {
            return false;
        }
        let above_cache = self.lines.is_empty() || self.dirty_to < self.first;
        if !above_cache || self.dirty_to >= top {
            return false;
        }
        let Some((mut line, mut state)) = self.known_state(self.dirty_from) else {
            return self.keep_unless_near(0, top);
        };
        let cached = self
            .lines
            .first()
            .and_then(Option::as_ref)
            .map(|l| (self.first, &l.start));
        let kept = self.unverified.range(self.dirty_to + 1..).next();
        let (target, expected) = match (kept, cached) {
            (Some((&k, s)), Some((c, _))) if k <= c => (k, s.clone()),
            (_, Some((c, s))) => (c, s.clone()),
            (Some((&k, s)), None) => (k, s.clone()),
            (None, None) => return self.keep_unless_near(line, top),
        };
        if target - line > CONVERGE_WITHIN + (self.dirty_to - self.dirty_from) {
            return self.keep_unless_near(line, top);
        }
        let mut buf = String::new();
        while line < target {
            if line % CHECKPOINT == 0 {
                self.checkpoints.insert(line, state.clone());
            }
            let _ = self.parse_line(rope, line, &mut buf, &mut state, highlighter);
            line += 1;
        }
        if state != expected {
            return false;
        }
        let good = self.unverified.split_off(&target);
        self.unverified.clear();
        self.checkpoints.extend(good);
        self.dirty_from = usize::MAX;
        true
    }

    /// No state near the edits to check against. When the view is too far
    /// below the last known state to catch up anyway (a frame would start
    /// from a guessed state), the cached lines are a better guess than a
    /// fresh one: keep them. Otherwise the frame catches up exactly.
    fn keep_unless_near(&mut self, known: usize, top: usize) -> bool {
        if top.saturating_sub(known) <= MAX_CATCH_UP {
            return false;
        }
        let kept = std::mem::take(&mut self.unverified);
        self.checkpoints.extend(kept);
        self.dirty_from = usize::MAX;
        true
    }

    fn parse_line(
        &mut self,
        rope: &Rope,
        line: usize,
        buf: &mut String,
        state: &mut State,
        highlighter: &Highlighter<'_>,
    ) -> Vec<Run> {
        let slice = rope.line(line);
        if slice.len_chars() > MAX_LINE_CHARS {
            return Vec::new();
        }
        self.parsed += 1;
        buf.clear();
        buf.extend(slice.chunks());
        if !buf.ends_with('\n') {
            buf.push('\n');
        }
        highlight_line(buf, state, highlighter, syntaxes())
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
        assert!(h.line(300 - KEEP_ABOVE - 1).is_none());
        assert!(h.line(300 - KEEP_ABOVE).is_some());
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

    fn runs_of(h: &Highlight, lines: std::ops::Range<usize>) -> Vec<Vec<Run>> {
        lines
            .map(|l| h.line(l).map(<[Run]>::to_vec).unwrap_or_default())
            .collect()
    }

    /// Applies `ins` at char `pos` to the rope and tells the highlighter,
    /// as the app does.
    fn edit(rope: &mut Rope, h: &mut Highlight, pos: usize, del: usize, ins: &str) {
        let first = rope.char_to_line(pos.saturating_sub(1));
        let old_last = rope.char_to_line(pos + del);
        rope.remove(pos..pos + del);
        rope.insert(pos, ins);
        let new_last = rope.char_to_line(pos + ins.chars().count());
        h.edited(first, old_last, new_last);
    }

    #[test]
    fn typing_reparses_the_edited_line_only() {
        let text = "fn main() {\n    let x = 1;\n}\n".repeat(5000);
        let mut rope = Rope::from_str(&text);
        let mut h = Highlight::for_file(Some(Path::new("x.rs")), "");
        h.prepare(&rope, 300, 40);
        let before = h.lines_parsed();
        let pos = rope.line_to_char(310) + 8;
        edit(&mut rope, &mut h, pos, 0, "y");
        h.prepare(&rope, 300, 40);
        assert_eq!(h.lines_parsed() - before, 1);
        // Scrolling down by one parses the new bottom line only.
        let before = h.lines_parsed();
        h.prepare(&rope, 301, 40);
        assert_eq!(h.lines_parsed() - before, 1);
        // Scrolling back up parses nothing.
        let before = h.lines_parsed();
        h.prepare(&rope, 280, 40);
        assert_eq!(h.lines_parsed() - before, 0);
    }

    #[test]
    fn edits_give_the_colours_of_a_fresh_parse() {
        let text = "fn main() {\n    let s = \"a\"; // c\n    x(1);\n}\n".repeat(100);
        let mut rope = Rope::from_str(&text);
        let mut h = Highlight::for_file(Some(Path::new("x.rs")), "");
        let (top, height) = (20, 30);
        h.prepare(&rope, top, height);
        // Opening a comment, a string, new lines, deletions across lines,
        // edits above, inside and below the view.
        let edits: [(usize, usize, usize, &str); 9] = [
            (25, 4, 0, "/*"),
            (30, 0, 0, "*/"),
            (22, 8, 0, "\"open"),
            (27, 2, 0, "\"\n\n"),
            (5, 0, 0, "let a = 1;\nlet b = 2;\n"),
            (24, 0, 40, ""),
            (60, 0, 0, "/* below */"),
            (21, 3, 0, "\t"),
            (0, 0, 5, ""),
        ];
        for (line, col, del, ins) in edits {
            let pos = rope.line_to_char(line) + col;
            let del = del.min(rope.len_chars() - pos);
            edit(&mut rope, &mut h, pos, del, ins);
            h.prepare(&rope, top, height);
            let mut fresh = Highlight::for_file(Some(Path::new("x.rs")), "");
            fresh.prepare(&rope, top, height);
            assert_eq!(
                runs_of(&h, top..top + height),
                runs_of(&fresh, top..top + height),
                "after {ins:?} at line {line}"
            );
        }
    }

    #[test]
    fn edits_far_above_the_view_are_checked_not_reparsed() {
        let text = "fn main() {\n    let s = \"a\"; // c\n    x(1);\n}\n".repeat(100);
        let mut rope = Rope::from_str(&text);
        let mut h = Highlight::for_file(Some(Path::new("x.rs")), "");
        // Seen the top once, now looking at lines 250..280.
        h.prepare(&rope, 0, 30);
        h.prepare(&rope, 250, 30);
        let fresh_runs = |rope: &Rope| {
            let mut f = Highlight::for_file(Some(Path::new("x.rs")), "");
            f.prepare(rope, 250, 30);
            runs_of(&f, 250..280)
        };
        // A peer types a harmless word at line 10: a few lines are parsed
        // to check, the view's lines are kept.
        let before = h.lines_parsed();
        let pos = rope.line_to_char(10) + 4;
        edit(&mut rope, &mut h, pos, 0, "word ");
        h.prepare(&rope, 250, 30);
        let parsed = h.lines_parsed() - before;
        assert!(
            parsed <= (CONVERGE_WITHIN + 1) as u64,
            "{parsed} lines parsed"
        );
        assert_eq!(runs_of(&h, 250..280), fresh_runs(&rope));
        // A new line above moves everything down by one.
        let pos = rope.line_to_char(12);
        edit(&mut rope, &mut h, pos, 0, "\n");
        h.prepare(&rope, 250, 30);
        assert_eq!(runs_of(&h, 250..280), fresh_runs(&rope));
        // An unclosed block comment above changes everything below.
        let pos = rope.line_to_char(14);
        edit(&mut rope, &mut h, pos, 0, "/*");
        h.prepare(&rope, 250, 30);
        assert_eq!(runs_of(&h, 250..280), fresh_runs(&rope));
        // And closing it again.
        let pos = rope.line_to_char(16);
        edit(&mut rope, &mut h, pos, 0, "*/");
        h.prepare(&rope, 250, 30);
        assert_eq!(runs_of(&h, 250..280), fresh_runs(&rope));
    }
}
