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
    let items: Vec<_> = app.notices.iter().collect();
    let rows = usize::from(area.height);
    let max_w = usize::from(area.width);
    for (i, n) in items.iter().rev().take(rows).enumerate() {
        let text = format!(" {} ", truncate(&n.text, max_w.saturating_sub(2)));
        let w = text.width().min(max_w);
        let Ok(w16) = u16::try_from(w) else { continue };
        let Ok(i16) = u16::try_from(i) else { continue };
        let x = area.x + area.width - w16;
        let y = area.y + area.height - 1 - i16;
        let mut style = match n.level {
            Level::Info => p.bar(),
            Level::Warn => p.bar().patch(p.warn()),
        };
        if n.fading(app.now) {
            style = style.add_modifier(Modifier::DIM);
        }
        buf.set_stringn(x, y, &text, w, style);
    }
}
