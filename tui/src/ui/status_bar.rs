//! The status bar: room, me, the connection, the file, where the caret is.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use collab_client::Link;

use crate::app::{App, OnDisk};

/// The connection, in words.
pub fn connection_text(app: &App) -> String {
    let unsent = app.session.unsent_edits();
    let edits = |n: usize| {
        if n == 1 {
            "1 unsent edit".to_owned()
        } else {
            format!("{n} unsent edits")
        }
    };
    match app.session.link() {
        Link::Connecting => "connecting".into(),
        Link::Joining => "joining".into(),
        Link::Live if unsent > 0 => format!("connected, sending {}", edits(unsent)),
        Link::Live => "connected".into(),
        Link::Reconnecting { retry_in, .. } => match retry_in {
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
        Link::Closed { .. } if unsent > 0 => format!("offline with {}", edits(unsent)),
        Link::Closed { .. } => "offline".into(),
    }
}

/// One part of the bar; when the bar is too narrow, parts go whole, the
/// least important first (a higher `drop` goes sooner), never cut.
struct Part {
    text: String,
    style: Style,
    drop: u8,
    right: bool,
}

fn part(text: String, style: Style, drop: u8, right: bool) -> Part {
    Part {
        text,
        style,
        drop,
        right,
    }
}

/// The parts that fit in `width` columns, most important kept. Left parts
/// are joined by a `│`.
fn fit(mut parts: Vec<Part>, width: usize) -> Vec<Part> {
    let total = |parts: &[Part]| -> usize {
        let left = parts.iter().filter(|p| !p.right).count();
        parts.iter().map(|p| p.text.width()).sum::<usize>() + left.saturating_sub(1)
    };
    while total(&parts) > width {
        let Some(i) = (0..parts.len()).max_by_key(|&i| (parts[i].drop, i)) else {
            break;
        };
        parts.remove(i);
    }
    parts
}

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let bar = p.bar();
    buf.set_style(area, bar);
    let (line, col) = app.editor.line_col();
    let conn = connection_text(app);
    let conn_style = match app.session.link() {
        Link::Live => bar,
        _ => bar.patch(p.warn()),
    };
    let file = match app.file_name() {
        Some(f) => f,
        None => "[no file]".into(),
    };
    let modified = if app.modified() { " [+]" } else { "" };
    let on_disk = match app.config.file_on_disk {
        _ if app.config.file.is_none() => "",
        OnDisk::Writable => "",
        OnDisk::New => " [new]",
        OnDisk::ReadOnly => " [read-only]",
    };
    let user = app
        .session
        .you()
        .map_or(app.config.user.as_str(), |m| m.name.as_str());

    let mut parts = vec![
        part(
            format!(" {} ", app.config.room),
            bar.add_modifier(Modifier::BOLD),
            4,
            false,
        ),
        part(format!(" {user} "), bar, 5, false),
        part(format!(" {conn} "), conn_style, 1, false),
        part(format!(" {file}{on_disk}{modified} "), bar, 3, false),
    ];
    if let Some(name) = app.following() {
        parts.push(part(
            format!(" following {name} "),
            bar.patch(p.warn()),
            2,
            true,
        ));
    }
    if app.read_only() {
        parts.push(part(" read-only ".into(), bar.patch(p.warn()), 2, true));
    }
    if !app.chat().open && app.chat().unread > 0 {
        parts.push(part(
            format!(" chat {} ", app.chat().unread),
            bar.add_modifier(Modifier::BOLD),
            3,
            true,
        ));
    }
    parts.push(part(format!(" {}:{} ", line + 1, col + 1), bar, 2, true));
    parts.push(part(
        " F1 help ".into(),
        bar.add_modifier(Modifier::DIM),
        6,
        true,
    ));
    let parts = fit(parts, usize::from(area.width));

    let mut left: Vec<Span<'_>> = Vec::new();
    let mut right: Vec<Span<'_>> = Vec::new();
    for pt in parts {
        if pt.right {
            right.push(Span::styled(pt.text, pt.style));
        } else {
            if !left.is_empty() {
                left.push(Span::styled("│", bar));
            }
            left.push(Span::styled(pt.text, pt.style));
        }
    }
    let right_width: usize = right.iter().map(|s| s.content.width()).sum();
    let right_w = u16::try_from(right_width)
        .unwrap_or(area.width)
        .min(area.width);
    let left_area = Rect::new(area.x, area.y, area.width - right_w, 1);
    let right_area = Rect::new(area.x + area.width - right_w, area.y, right_w, 1);
    Paragraph::new(Line::from(left)).render(left_area, buf);
    Paragraph::new(Line::from(right)).render(right_area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_bars_drop_whole_parts_least_important_first() {
        let s = Style::new();
        let parts = || {
            vec![
                part(" room ".into(), s, 4, false),
                part(" connected ".into(), s, 1, false),
                part(" 1:1 ".into(), s, 2, true),
                part(" F1 help ".into(), s, 6, true),
            ]
        };
        let kept = |w| -> Vec<String> { fit(parts(), w).into_iter().map(|p| p.text).collect() };
        assert_eq!(kept(40).len(), 4);
        assert_eq!(kept(24), [" room ", " connected ", " 1:1 "]);
        assert_eq!(kept(17), [" connected ", " 1:1 "]);
        assert_eq!(kept(5), Vec::<String>::new());
    }
}
