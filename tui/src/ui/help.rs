//! The help overlay (F1): every key, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use crate::keymap::help_lines;
use crate::layout::help_area;

/// The lines of the overlay: headings and `key  description` (as many as
/// [`crate::layout::help_rows`] counts).
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

pub fn draw(buf: &mut Buffer, screen: Rect, scroll: usize) {
    let area = help_area(screen);
    Clear.render(area, buf);
    let block = Block::bordered().title(" Keys · ↑↓ PgUp PgDn scroll · Esc closes ");
    let inner = block.inner(area);
    block.render(area, buf);
    let all = lines(16);
    let max_scroll = all.len().saturating_sub(usize::from(inner.height));
    let scroll = u16::try_from(scroll.min(max_scroll)).unwrap_or(0);
    Paragraph::new(all).scroll((scroll, 0)).render(inner, buf);
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_layout_counts_the_rows_drawn() {
        assert_eq!(super::lines(16).len(), crate::layout::help_rows());
    }
}
