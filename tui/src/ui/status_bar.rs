//! The status bar: room, me, the connection, the file, where the caret is.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::{App, Conn};

/// The connection, in words.
pub fn connection_text(app: &App) -> String {
    let unsent = app.replica.unsent_edits();
    let edits = |n: usize| {
        if n == 1 {
            "1 unsent edit".to_owned()
        } else {
            format!("{n} unsent edits")
        }
    };
    match &app.conn {
        Conn::Connecting => "connecting".into(),
        Conn::Joining => "joining".into(),
        Conn::Live if unsent > 0 => format!("connected, sending {}", edits(unsent)),
        Conn::Live => "connected".into(),
        Conn::Reconnecting { retry_in, .. } => match retry_in {
            Some(d) if unsent > 0 => {
                format!(
                    "offline, {}; reconnecting in {}s",
                    edits(unsent),
                    d.as_secs().max(1)
                )
            }
            _ if unsent > 0 => format!("offline, {}; reconnecting", edits(unsent)),
            _ => "offline; reconnecting".into(),
        },
        Conn::Closed { .. } if unsent > 0 => format!("offline with {}", edits(unsent)),
        Conn::Closed { .. } => "offline".into(),
    }
}

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let bar = p.bar();
    buf.set_style(area, bar);
    let (line, col) = app.editor.line_col();
    let conn = connection_text(app);
    let conn_style = match app.conn {
        Conn::Live => bar,
        _ => bar.patch(p.warn()),
    };
    let file = match app.file_name() {
        Some(f) => f,
        None => "[no file]".into(),
    };
    let modified = if app.modified { " [+]" } else { "" };
    let user = app
        .me
        .as_ref()
        .map_or(app.config.user.as_str(), |m| m.name.as_str());

    let mut right: Vec<Span<'_>> = Vec::new();
    if app.read_only() {
        right.push(Span::styled(" read-only ", bar.patch(p.warn())));
    }
    if !app.chat.open && app.chat.unread > 0 {
        right.push(Span::styled(
            format!(" chat {} ", app.chat.unread),
            bar.add_modifier(Modifier::BOLD),
        ));
    }
    right.push(Span::styled(format!(" {}:{} ", line + 1, col + 1), bar));
    right.push(Span::styled(" F1 help ", bar.add_modifier(Modifier::DIM)));
    let right_width: usize = right.iter().map(|s| s.content.width()).sum();

    let left = vec![
        Span::styled(
            format!(" {} ", app.config.room),
            bar.add_modifier(Modifier::BOLD),
        ),
        Span::styled("│", bar),
        Span::styled(format!(" {user} "), bar),
        Span::styled("│", bar),
        Span::styled(format!(" {conn} "), conn_style),
        Span::styled("│", bar),
        Span::styled(format!(" {file}{modified} "), bar),
    ];
    let right_w = u16::try_from(right_width)
        .unwrap_or(area.width)
        .min(area.width);
    let left_area = Rect::new(area.x, area.y, area.width - right_w, 1);
    let right_area = Rect::new(area.x + area.width - right_w, area.y, right_w, 1);
    Paragraph::new(Line::from(left)).render(left_area, buf);
    Paragraph::new(Line::from(right)).render(right_area, buf);
}
