//! The members panel: everyone in the room in their colour, with the line
//! their caret is on (in a workspace, the name of the file they are in
//! when it is not the one on screen).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::App;

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let block = Block::bordered()
        .title(format!(" Members {} ", app.peers.len()))
        .border_style(p.dim());
    let inner = block.inner(area);
    block.render(area, buf);
    let w = usize::from(inner.width);
    let lines: Vec<Line<'_>> = app
        .peers
        .iter()
        .map(|peer| {
            // In a workspace, a member in another file shows its name.
            let elsewhere = peer
                .file
                .filter(|f| !peer.me && Some(*f) != app.current_file())
                .and_then(|f| app.entries().iter().find(|e| e.id == f))
                .map(|e| format!(" {}", truncate(&e.name, w / 2)));
            let where_ = elsewhere
                .or_else(|| peer.line.map(|l| format!(" {}", l + 1)))
                .unwrap_or_default();
            let mut tags = String::new();
            if peer.me {
                tags.push_str(" (you)");
            }
            if peer.read_only {
                tags.push_str(" ro");
            }
            let name_room = w.saturating_sub(2 + where_.width() + tags.width());
            let name: String = truncate(&peer.name, name_room);
            let pad = w.saturating_sub(2 + name.width() + tags.width() + where_.width());
            let style = p.fg(peer.color).add_modifier(Modifier::BOLD);
            Line::from(vec![
                Span::styled("● ", p.fg(peer.color)),
                Span::styled(name, style),
                Span::styled(tags, p.dim()),
                Span::raw(" ".repeat(pad)),
                Span::styled(where_, Style::new()),
            ])
        })
        .collect();
    Paragraph::new(lines).render(inner, buf);
}

/// At most `width` columns of `s`, with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}
