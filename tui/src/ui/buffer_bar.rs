//! The buffer list of a workspace: the open files in the order they were
//! opened, on one line above the text; the one on screen stands out, `+`
//! marks a file that differs from disk. F8 and Shift-F8 go through it.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let current = app.current_file();
    let mut spans = Vec::new();
    for id in app.buffers() {
        let name = app
            .entries()
            .iter()
            .find(|e| e.id == *id)
            .map_or("(deleted)", |e| e.name.as_str());
        let plus = if app.buffer_modified(*id) { "+" } else { "" };
        let style = if Some(*id) == current {
            p.bar().add_modifier(Modifier::BOLD)
        } else {
            p.dim()
        };
        spans.push(Span::styled(format!(" {name}{plus} "), style));
        spans.push(Span::raw(" "));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
