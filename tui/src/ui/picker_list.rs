//! The file picker's matches (Ctrl-P), listed above its prompt over the
//! text, the chosen one marked.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use super::members::truncate;
use crate::app::App;

/// How many matches are listed.
const ROWS: u16 = 10;

pub fn draw(app: &App, buf: &mut Buffer, prompt: Rect) {
    let (matches, sel) = app.picker_matches();
    let p = app.palette;
    let rows = u16::try_from(matches.len()).unwrap_or(ROWS).clamp(1, ROWS);
    let h = (rows + 2).min(prompt.y);
    if h < 3 {
        return;
    }
    let area = Rect::new(prompt.x, prompt.y - h, prompt.width.min(60), h);
    Clear.render(area, buf);
    let block = Block::bordered()
        .title(format!(" {} files ", matches.len()))
        .border_style(p.dim());
    let inner = block.inner(area);
    block.render(area, buf);
    let w = usize::from(inner.width);
    let lines: Vec<Line<'_>> = if matches.is_empty() {
        vec![Line::from(Span::styled("no file matches", p.dim()))]
    } else {
        matches
            .iter()
            .take(usize::from(inner.height))
            .enumerate()
            .map(|(i, e)| {
                let text = truncate(&e.path, w);
                if i == sel {
                    Line::from(Span::styled(format!("{text:w$}"), p.selection()))
                } else {
                    Line::from(text)
                }
            })
            .collect()
    };
    Paragraph::new(lines).render(inner, buf);
}
