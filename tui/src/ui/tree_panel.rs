//! The file tree panel of a workspace room: every shown file and folder,
//! indented by depth, the selected row marked while the panel has the
//! keyboard, the file on screen in bold, and a dot in each member's colour
//! on the file they are in.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::members::truncate;
use crate::app::{App, Focus};
use collab_doc::tree::Kind;

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let focused = app.focus == Focus::Tree;
    let block =
        Block::bordered()
            .title(" Files ")
            .border_style(if focused { p.bar() } else { p.dim() });
    let inner = block.inner(area);
    block.render(area, buf);
    let entries = app.entries();
    if entries.is_empty() {
        Paragraph::new(Span::styled("(no files yet)", p.dim())).render(inner, buf);
        return;
    }
    let h = usize::from(inner.height.max(1));
    let sel = app.tree_selected();
    // Keep the selection in sight.
    let top = sel.saturating_sub(h - 1);
    let w = usize::from(inner.width);
    let current = app.current_file();
    let lines: Vec<Line<'_>> = entries
        .iter()
        .enumerate()
        .skip(top)
        .take(h)
        .map(|(i, e)| {
            let depth = e.path.matches('/').count();
            let dots: Vec<Span<'_>> = app
                .peers
                .iter()
                .filter(|peer| !peer.me && peer.file == Some(e.id))
                .map(|peer| Span::styled("●", p.fg(peer.color)))
                .collect();
            let slash = if e.kind == Kind::Dir { "/" } else { "" };
            let room = w.saturating_sub(2 * depth + dots.len() + 1);
            let name = truncate(&format!("{}{slash}", e.name), room);
            let pad = w.saturating_sub(2 * depth + name.width() + dots.len());
            let mut style = ratatui::style::Style::new();
            if Some(e.id) == current {
                style = style.add_modifier(Modifier::BOLD);
            }
            if e.kind == Kind::Dir {
                style = style.patch(p.dim());
            }
            if i == sel && focused {
                style = style.patch(p.selection());
            }
            let mut spans = vec![
                Span::raw("  ".repeat(depth)),
                Span::styled(name, style),
                Span::raw(" ".repeat(pad)),
            ];
            spans.extend(dots);
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines).render(inner, buf);
}
