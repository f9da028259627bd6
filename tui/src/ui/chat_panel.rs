//! The chat panel: the latest messages, wrapped to the panel's width, and
//! the box I type in.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::app::{App, Focus};
use crate::highlight::Rgb;
use crate::ui::theme::parse_hex;

fn color_of(app: &App, name: &str) -> Rgb {
    app.peers
        .iter()
        .find(|p| p.name == name)
        .map_or_else(|| parse_hex(""), |p| p.color)
}

/// Splits `s` into pieces of at most `width` columns.
fn wrap(s: &str, first_width: usize, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut w = 0;
    let mut limit = first_width.max(1);
    for c in s.chars() {
        let c = if c == '\n' || c == '\t' { ' ' } else { c };
        let cw = c.width().unwrap_or(0);
        if w + cw > limit {
            out.push(String::new());
            w = 0;
            limit = width.max(1);
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
        w += cw;
    }
    out
}

/// Where the caret of the chat box is, when it has focus.
pub fn cursor(app: &App, area: Rect) -> Option<Position> {
    if app.focus != Focus::Chat {
        return None;
    }
    let inner = Block::bordered().inner(area);
    let input = &app.chat.input;
    let before: String = input.text.chars().take(input.cursor).collect();
    let x = inner.x + 2 + u16::try_from(before.width()).unwrap_or(0);
    Some(Position::new(
        x.min(inner.x + inner.width.saturating_sub(1)),
        inner.y + inner.height.saturating_sub(1),
    ))
}

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let focused = app.focus == Focus::Chat;
    let title = if focused {
        " Chat · Enter sends · /msg NAME text · Esc back to text "
    } else {
        " Chat · F2 to type "
    };
    let block = Block::bordered().title(title).border_style(if focused {
        Style::new().add_modifier(Modifier::BOLD)
    } else {
        p.dim()
    });
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width < 4 {
        return;
    }
    let w = usize::from(inner.width);
    let room = usize::from(inner.height - 1);
    let mut rows: Vec<Line<'_>> = Vec::new();
    for m in app.chat.lines.iter().rev() {
        if rows.len() >= room {
            break;
        }
        let head = match &m.to {
            Some(to) => format!("{} → {}: ", m.from, to),
            None => format!("{}: ", m.from),
        };
        let head_w = head.width();
        let pieces = if head_w < w {
            wrap(&m.text, w - head_w, w)
        } else {
            wrap(&m.text, w, w)
        };
        let text_style = if m.to.is_some() {
            Style::new().add_modifier(Modifier::ITALIC)
        } else {
            Style::new()
        };
        let mut lines: Vec<Line<'_>> = Vec::new();
        for (i, piece) in pieces.into_iter().enumerate() {
            if i == 0 {
                lines.push(Line::from(vec![
                    Span::styled(
                        head.clone(),
                        p.fg(color_of(app, &m.from)).add_modifier(Modifier::BOLD),
                    ),
                    Span::styled(piece, text_style),
                ]));
            } else {
                lines.push(Line::from(Span::styled(piece, text_style)));
            }
        }
        for l in lines.into_iter().rev() {
            if rows.len() < room {
                rows.push(l);
            }
        }
    }
    rows.reverse();
    let mut all = vec![Line::raw(""); room - rows.len()];
    all.extend(rows);
    let input = &app.chat.input.text;
    let shown: String = {
        // Keep the end of a long message in view.
        let max = w.saturating_sub(3);
        let mut s: Vec<char> = Vec::new();
        let mut width = 0;
        for c in input.chars().rev() {
            let cw = c.width().unwrap_or(0);
            if width + cw > max {
                break;
            }
            width += cw;
            s.push(c);
        }
        s.into_iter().rev().collect()
    };
    all.push(Line::from(vec![
        Span::styled("> ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(shown),
    ]));
    Paragraph::new(all).render(inner, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_by_width() {
        assert_eq!(wrap("abcdef", 2, 3), vec!["ab", "cde", "f"]);
        assert_eq!(wrap("中文字", 4, 4), vec!["中文", "字"]);
    }
}
