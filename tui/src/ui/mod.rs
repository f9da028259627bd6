//! Drawing: [`draw`] is a pure function of the app's state. Nothing here
//! changes the app, so what a snapshot test sees is what a person sees.
//! Drawing depends on the state and never the other way round: the
//! layout arithmetic and the colours, which the app needs too (to scroll,
//! to map clicks, to colour members), are `crate::layout` and
//! [`crate::theme`].
//! (The highlight cache for the visible lines is filled by
//! `Action::Frame` before drawing, not here.)
//!
//! The layout is the app's, made for the size it was last told
//! (`Action::Resize`). The terminal can already be another size when a
//! frame is drawn (a window corner dragged faster than resize events are
//! read): then the screen is drawn at the app's size into a scratch buffer
//! and what fits is copied, so nothing is ever drawn outside the frame.

pub mod buffer_bar;
pub mod chat_panel;
pub mod editor_view;
pub mod help;
pub mod members;
pub mod notices;
pub mod picker_list;
pub mod status_bar;
pub mod tree_panel;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Position, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use crate::app::{App, Focus, PromptKind};
use crate::editor::text::col_of;

/// Draws the whole screen.
pub fn draw(app: &App, frame: &mut Frame<'_>) {
    let area = frame.area();
    if area == app.size() {
        draw_screen(app, frame.buffer_mut(), area);
        if app.help().is_none()
            && let Some(pos) = cursor(app)
        {
            frame.set_cursor_position(pos);
        }
        return;
    }
    let mut scratch = Buffer::empty(app.size());
    draw_screen(app, &mut scratch, app.size());
    let buf = frame.buffer_mut();
    let fits = area.intersection(app.size());
    for y in fits.top()..fits.bottom() {
        for x in fits.left()..fits.right() {
            if let (Some(from), Some(to)) = (scratch.cell((x, y)), buf.cell_mut((x, y))) {
                *to = from.clone();
            }
        }
    }
}

/// Everything but the terminal's caret, into `buf` of `size` (the app's).
fn draw_screen(app: &App, buf: &mut Buffer, size: Rect) {
    editor_view::draw(app, buf);
    if let Some(area) = app.areas().tree {
        tree_panel::draw(app, buf, area);
    }
    if let Some(area) = app.areas().tabs {
        buffer_bar::draw(app, buf, area);
    }
    if let Some(area) = app.areas().members {
        members::draw(app, buf, area);
    }
    if let Some(area) = app.areas().chat {
        chat_panel::draw(app, buf, area);
    }
    if let Some(area) = app.areas().prompt {
        draw_prompt(app, buf, area);
        if app.prompt().is_some_and(|p| p.kind == PromptKind::OpenFile) {
            picker_list::draw(app, buf, area);
        }
    }
    status_bar::draw(app, buf, app.areas().status);
    notices::draw(app, buf, app.areas().text);
    if let Some(scroll) = app.help() {
        help::draw(buf, size, scroll);
    }
}

fn draw_prompt(app: &App, buf: &mut Buffer, area: Rect) {
    let Some(prompt) = app.prompt() else { return };
    let hint = match prompt.kind {
        PromptKind::Find => "  Enter/↓ next · ↑ previous · Esc close",
        PromptKind::GotoLine => "  Enter go · Esc cancel",
        PromptKind::SaveAs => "  Enter save · Esc cancel",
        PromptKind::OpenFile => "  ↑↓ choose · Enter open · Esc cancel",
        PromptKind::SaveDir => "  Enter save · Esc cancel",
        PromptKind::NewFile => "  Enter create · Esc cancel",
        PromptKind::Rename => "  Enter rename · Esc cancel",
    };
    let mut spans = vec![
        Span::styled(
            prompt.kind.label(),
            ratatui::style::Style::new().add_modifier(Modifier::BOLD),
        ),
        if prompt.input.selected {
            Span::styled(prompt.input.text.clone(), app.palette.selection())
        } else {
            Span::raw(prompt.input.text.clone())
        },
    ];
    if prompt.no_match {
        spans.push(Span::styled("  no match", app.palette.warn()));
    }
    spans.push(Span::styled(hint, app.palette.dim()));
    let line = Line::from(spans);
    Paragraph::new(line).render(area, buf);
}

/// Where the terminal's own caret goes: in the text, the prompt or the
/// chat box, whichever has focus.
fn cursor(app: &App) -> Option<Position> {
    match app.focus {
        Focus::Text => {
            let text = app.areas().text;
            let rope = app.editor.rope();
            let line = rope.char_to_line(app.editor.head());
            let col = col_of(rope, app.editor.head(), app.editor.tab_width);
            let row = line.checked_sub(app.view.top)?;
            let col = col.checked_sub(app.view.left)?;
            if row >= usize::from(text.height) || col >= usize::from(text.width) {
                return None;
            }
            Some(Position::new(
                text.x + u16::try_from(col).ok()?,
                text.y + u16::try_from(row).ok()?,
            ))
        }
        Focus::Prompt => {
            let area = app.areas().prompt?;
            let p = app.prompt()?;
            let before: String = p.input.text.chars().take(p.input.cursor).collect();
            let x = p.kind.label().width() + before.width();
            Some(Position::new(
                area.x + u16::try_from(x).ok()?.min(area.width.saturating_sub(1)),
                area.y,
            ))
        }
        Focus::Chat => chat_panel::cursor(app, app.areas().chat?),
        Focus::Tree => None,
    }
}
