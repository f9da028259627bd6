//! Notices in the bottom-right corner of the text, newest lowest; dim
//! while they fade.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use unicode_width::UnicodeWidthStr;

use crate::app::App;
use crate::notices::Level;
use crate::ui::members::truncate;

pub fn draw(app: &App, buf: &mut Buffer, area: Rect) {
    let p = app.palette;
    let max_w = usize::from(area.width);
    let mut rows_left = area.height;
    // Newest lowest; a notice too wide for the text wraps onto more rows
    // rather than losing its end.
    for n in app.notices.iter().rev() {
        let mut style = match n.level {
            Level::Info => p.bar(),
            Level::Warn => p.bar().patch(p.warn()),
        };
        if n.fading(app.now) {
            style = style.add_modifier(Modifier::DIM);
        }
        for piece in wrap(&n.text, max_w.saturating_sub(2)).iter().rev() {
            if rows_left == 0 {
                return;
            }
            rows_left -= 1;
            let text = format!(" {piece} ");
            let w = text.width().min(max_w);
            let Ok(w16) = u16::try_from(w) else { continue };
            let x = area.x + area.width - w16;
            buf.set_stringn(x, area.y + rows_left, &text, w, style);
        }
    }
}

/// `text` in rows of at most `width` columns, broken at spaces where it
/// can be (a word longer than a row is cut with an ellipsis).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    if width == 0 {
        return Vec::new();
    }
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let sep = usize::from(!row.is_empty());
        if row.width() + sep + word.width() <= width {
            if sep == 1 {
                row.push(' ');
            }
            row.push_str(word);
            continue;
        }
        if !row.is_empty() {
            rows.push(std::mem::take(&mut row));
        }
        row = truncate(word, width);
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notices_wrap_at_spaces() {
        assert_eq!(wrap("bob joined", 20), ["bob joined"]);
        assert_eq!(
            wrap("Unsaved changes: Ctrl-S saves, Ctrl-Q again quits", 20),
            ["Unsaved changes:", "Ctrl-S saves, Ctrl-Q", "again quits"]
        );
        assert_eq!(wrap("supercalifragilistic x", 8), ["superca…", "x"]);
        assert!(wrap("anything", 0).is_empty());
    }
}
