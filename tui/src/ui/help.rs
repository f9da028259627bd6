//! The help overlay (F1): every key, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use crate::keymap::help_lines;

/// The lines of the overlay: headings and `key  description`.
fn lines(key_width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (key, what) in help_lines() {
        if what.is_empty() {
            if !out.is_empty() {
                out.push(Line::raw(""));
            }
            out.push(Line::from(Span::styled(
                key,
                Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )));
        } else {
            out.push(Line::from(vec![
                Span::styled(
                    format!("  {key:<key_width$} "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(what),
            ]));
        }
    }
    out
}

/// Where the overlay goes on a screen.
fn area(screen: Rect) -> Rect {
    let w = screen.width.min(76);
    let h = screen.height.saturating_sub(2).max(3).min(screen.height);
    Rect::new(
        screen.x + (screen.width - w) / 2,
        screen.y + (screen.height - h) / 2,
        w,
        h,
    )
}

/// Rows of help text the overlay shows at once on `screen` (a page).
pub fn page(screen: Rect) -> usize {
    usize::from(Block::bordered().inner(area(screen)).height).max(1)
}

/// The furthest the help scrolls on `screen`.
pub fn max_scroll(screen: Rect) -> usize {
    lines(16).len().saturating_sub(page(screen))
}

pub fn draw(buf: &mut Buffer, screen: Rect, scroll: usize) {
    let area = area(screen);
    Clear.render(area, buf);
    let block = Block::bordered().title(" Keys · ↑↓ PgUp PgDn scroll · Esc closes ");
    let inner = block.inner(area);
    block.render(area, buf);
    let all = lines(16);
    let max_scroll = all.len().saturating_sub(usize::from(inner.height));
    let scroll = u16::try_from(scroll.min(max_scroll)).unwrap_or(0);
    Paragraph::new(all).scroll((scroll, 0)).render(inner, buf);
}
