//! The text: line numbers, syntax colours, my selection, the others'
//! carets and selections in their colours. Only the visible lines are
//! read from the rope, and only as far as the visible columns need, so a
//! frame costs the same for a 10-line file and a 10 MB one.

use std::borrow::Cow;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use unicode_segmentation::UnicodeSegmentation;

use crate::app::{App, Peer};
use crate::editor::text::{grapheme_width, line_len_no_break};
use crate::highlight::Run;
use crate::theme::Palette;

/// Lines longer than this are drawn up to here (a caret beyond is still
/// reported in the status bar).
const MAX_DRAWN_CHARS: usize = 200_000;

/// Walks a line's highlight runs alongside its chars.
struct Runs<'a> {
    runs: &'a [Run],
    i: usize,
    left: usize,
}

impl<'a> Runs<'a> {
    fn new(runs: &'a [Run]) -> Self {
        Self {
            runs,
            i: 0,
            left: runs.first().map_or(0, |r| r.chars),
        }
    }

    /// The run of the next char, then steps over `n` chars.
    fn take(&mut self, n: usize) -> Option<Run> {
        let run = self.runs.get(self.i).copied();
        let mut n = n;
        while n > 0 && self.i < self.runs.len() {
            if n < self.left {
                self.left -= n;
                n = 0;
            } else {
                n -= self.left;
                self.i += 1;
                self.left = self.runs.get(self.i).map_or(0, |r| r.chars);
            }
        }
        run
    }
}

fn syntax_style(p: Palette, run: Option<Run>) -> Style {
    let Some(run) = run else {
        return Style::new();
    };
    let mut s = p.fg(run.fg);
    if run.bold {
        s = s.add_modifier(Modifier::BOLD);
    }
    if run.italic && p.has_color() {
        s = s.add_modifier(Modifier::ITALIC);
    }
    s
}

/// The style of the char at `pos` from the others' carets and selections
/// (the last member wins where several overlap) and from mine.
fn overlay(app: &App, others: &[&Peer], pos: usize, base: Style) -> Style {
    let p = app.palette;
    let mut style = base;
    for peer in others {
        if let (Some(h), Some(a)) = (peer.head, peer.anchor)
            && h.min(a) <= pos
            && pos < h.max(a)
        {
            style = style.patch(p.member_bg(peer.color).add_modifier(Modifier::DIM));
        }
    }
    if app.editor.selection().range().contains(&pos) {
        style = style.patch(p.selection());
    }
    for peer in others {
        if peer.head == Some(pos) {
            style = style.patch(p.member_bg(peer.color).remove_modifier(Modifier::DIM));
        }
    }
    style
}

pub fn draw(app: &App, buf: &mut Buffer) {
    // Never past the buffer, whatever the layout says.
    let text = app.areas().text.intersection(buf.area);
    let gutter = app.areas().gutter.intersection(buf.area);
    let rope = app.editor.rope();
    let p = app.palette;
    let tab = app.editor.tab_width;
    let left = app.view.left;
    let width = usize::from(text.width);
    let others: Vec<&Peer> = app.peers.iter().filter(|x| !x.me).collect();
    let my_line = rope.char_to_line(app.editor.head());
    let sel = app.editor.selection().range();

    for row in 0..text.height {
        let y = text.y + row;
        let line = app.view.top + usize::from(row);
        if line >= rope.len_lines() {
            continue;
        }
        draw_gutter(
            app,
            buf,
            Rect::new(gutter.x, y, gutter.width, 1),
            line,
            my_line,
            &others,
        );

        let start = rope.line_to_char(line);
        let len = line_len_no_break(rope, line).min(MAX_DRAWN_CHARS);
        let s: Cow<'_, str> = rope.slice(start..start + len).into();
        let mut runs = Runs::new(app.highlight.line(line).unwrap_or(&[]));
        let mut col = 0usize;
        let mut pos = start;
        for g in s.graphemes(true) {
            let n = g.chars().count();
            let w = grapheme_width(g, col, tab);
            let style = overlay(app, &others, pos, syntax_style(p, runs.take(n)));
            if col + w > left {
                if col >= left + width {
                    break;
                }
                let x0 = col.max(left) - left;
                let visible = (col + w).min(left + width) - col.max(left);
                let x = text.x + u16::try_from(x0).unwrap_or(u16::MAX);
                let whole = col >= left && visible == w;
                if g == "\t" || !whole {
                    buf.set_stringn(x, y, " ".repeat(visible), visible, style);
                } else if g.chars().all(char::is_control) {
                    buf.set_stringn(x, y, "\u{fffd}", 1, style.add_modifier(Modifier::DIM));
                } else if w > 0 {
                    buf.set_stringn(x, y, g, w, style);
                }
            }
            col += w;
            pos += n;
        }
        // Past the end of the line: a caret there, or a selected line break.
        if col >= left && col < left + width {
            let x = text.x + u16::try_from(col - left).unwrap_or(u16::MAX);
            let eol = start + line_len_no_break(rope, line);
            let mut style = Style::new();
            let has_break = line + 1 < rope.len_lines();
            if has_break && sel.contains(&eol) {
                style = style.patch(p.selection());
            }
            for peer in &others {
                if peer.head == Some(eol) {
                    style = style.patch(p.member_bg(peer.color));
                }
            }
            if style != Style::new() {
                buf.set_stringn(x, y, " ", 1, style);
            }
        }
    }
}

fn draw_gutter(
    app: &App,
    buf: &mut Buffer,
    area: Rect,
    line: usize,
    my_line: usize,
    others: &[&Peer],
) {
    if area.width == 0 {
        return;
    }
    let p = app.palette;
    let digits = usize::from(area.width - 1);
    let number = format!("{:>digits$}", line + 1);
    let style = if line == my_line {
        Style::new().add_modifier(Modifier::BOLD)
    } else {
        p.dim()
    };
    buf.set_stringn(area.x, area.y, &number, digits, style);
    // A mark in the colour of someone whose caret is on this line; without
    // colour, their initial (so two members are told apart).
    if let Some(peer) = others.iter().rev().find(|x| x.line == Some(line)) {
        let x = area.x + area.width - 1;
        let mark = if p.has_color() {
            "▌".to_owned()
        } else {
            initial(&peer.name)
        };
        buf.set_stringn(
            x,
            area.y,
            &mark,
            1,
            p.fg(peer.color).add_modifier(Modifier::BOLD),
        );
    }
}

/// A name's first letter, upper case, one column wide (`>` if none is).
fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .and_then(|c| c.to_uppercase().next())
        .filter(|c| unicode_width::UnicodeWidthChar::width(*c) == Some(1))
        .map_or_else(|| ">".to_owned(), String::from)
}
