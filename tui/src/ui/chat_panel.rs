//! The chat panel: the messages (the latest, or further back when
//! scrolled), each with its time and wrapped on words to the panel's width,
//! and the box I type in.

use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::app::{App, Focus};
use crate::chat::short_time;
use crate::highlight::Rgb;
use crate::theme::parse_hex;

fn color_of(app: &App, name: &str) -> Rgb {
    app.peers
        .iter()
        .find(|p| p.name == name)
        .map_or_else(|| parse_hex(""), |p| p.color)
}

/// Splits `s` into pieces of at most `width` columns (the first piece at
/// most `first_width`), breaking between words; a word wider than a whole
/// line is broken where it must be.
fn wrap(s: &str, first_width: usize, width: usize) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut w = 0;
    let mut limit = first_width.max(1);
    let text: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect();
    for word in text.split_inclusive(' ') {
        let ww = word.trim_end_matches(' ').width();
        if w > 0 && w + ww > limit {
            out.push(String::new());
            w = 0;
            limit = width.max(1);
        }
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if w + cw > limit && c != ' ' {
                out.push(String::new());
                w = 0;
                limit = width.max(1);
            }
            if let Some(last) = out.last_mut() {
                last.push(c);
            }
            w += cw;
        }
    }
    out
}

/// Where the caret of the chat box is, when it has focus.
pub fn cursor(app: &App, area: Rect) -> Option<Position> {
    if app.focus != Focus::Chat {
        return None;
    }
    let inner = Block::bordered().inner(area);
    let input = &app.chat().input;
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
    let title = match (focused, app.chat().scroll) {
        (_, n) if n > 0 => format!(" Chat · {n} newer below · PgDn "),
        (true, _) => " Chat · Enter sends · /msg NAME text · Esc closes ".to_owned(),
        (false, _) => " Chat · F2 to type ".to_owned(),
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
    for m in app.chat().lines.iter().rev().skip(app.chat().scroll) {
        if rows.len() >= room {
            break;
        }
        let time = short_time(m.time, app.config.utc_offset);
        let head = match &m.to {
            Some(to) => format!("{time} {} → {}: ", m.from, to),
            None => format!("{time} {}: ", m.from),
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
                let (stamp, name) = head.split_at(time.len() + 1);
                lines.push(Line::from(vec![
                    Span::styled(stamp.to_owned(), p.dim()),
                    Span::styled(
                        name.to_owned(),
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
    let input = &app.chat().input.text;
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

    #[test]
    fn wraps_on_words() {
        assert_eq!(
            wrap("shall we fix the parser first", 10, 12),
            vec!["shall we ", "fix the ", "parser first"]
        );
        // A word longer than a line is broken; spaces never start a line.
        assert_eq!(
            wrap("a verylongword b", 6, 6),
            vec!["a ", "verylo", "ngword ", "b"]
        );
    }
}
