//! Layout and the view on the text: which areas the screen has, what a
//! frame needs before it is drawn, scrolling so the caret stays visible,
//! and mouse clicks (which place the caret or focus the chat box).

use ratatui::layout::{Position, Rect};

use super::{App, Focus};
use crate::editor::text;
use crate::keymap::Command;
use crate::layout::{self, Areas, Open};

/// The screen as laid out: its size, where each part goes, the help
/// overlay's scroll (when open) and whether the members panel is wanted.
/// This module's state, changed only here.
#[derive(Debug)]
pub(super) struct Screen {
    size: Rect,
    areas: Areas,
    help: Option<usize>,
    show_members: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Self {
            size: Rect::new(0, 0, 80, 24),
            areas: Areas::default(),
            help: None,
            show_members: true,
        }
    }
}

impl App {
    /// Before drawing a frame: my caret for the members panel and the
    /// highlighter's lines for what is visible.
    pub(super) fn frame(&mut self) {
        let sel = self.editor.selection();
        if let Some(me) = self.peers.iter_mut().find(|p| p.me) {
            me.head = Some(sel.head);
            me.anchor = Some(sel.anchor);
            me.line = Some(self.editor.rope().char_to_line(sel.head));
        }
        let h = self.text_height();
        self.highlight.prepare(self.editor.rope(), self.view.top, h);
    }

    /// The terminal's size, as last told.
    pub fn size(&self) -> Rect {
        self.screen.size
    }

    /// Where each part of the screen goes.
    pub fn areas(&self) -> &Areas {
        &self.screen.areas
    }

    /// The help overlay's scroll offset, when open.
    pub fn help(&self) -> Option<usize> {
        self.screen.help
    }

    pub(super) fn resize(&mut self, width: u16, height: u16) {
        self.screen.size = Rect::new(0, 0, width, height);
        self.relayout();
        self.hide_undrawn_inputs();
        self.follow_cursor();
    }

    /// F1: opens the help at its top, or closes it.
    pub(super) fn toggle_help(&mut self) {
        self.screen.help = match self.screen.help {
            Some(_) => None,
            None => Some(0),
        };
    }

    /// Scrolls the help by a line or a page.
    pub(super) fn scroll_help(&mut self, c: Command) {
        let page = layout::help_page(self.screen.size);
        let max = layout::help_max_scroll(self.screen.size);
        self.screen.help = self.screen.help.map(|h| match c {
            Command::HelpUp => h.saturating_sub(1),
            Command::HelpDown => (h + 1).min(max),
            Command::HelpPageUp => h.saturating_sub(page.saturating_sub(1).max(1)),
            _ => (h + page.saturating_sub(1).max(1)).min(max),
        });
    }

    /// F4: shows or hides the members panel.
    pub(super) fn toggle_members(&mut self) {
        self.screen.show_members = !self.screen.show_members;
        self.relayout();
        self.follow_cursor();
    }

    pub(super) fn relayout(&mut self) {
        let open = Open {
            chat: self.chat().open,
            members: self.screen.show_members,
            prompt: self.prompt().is_some(),
            gutter: layout::gutter_width(self.editor.rope().len_lines()),
        };
        self.screen.areas = layout::areas(self.screen.size, open);
        if self.tree_open() {
            self.screen.areas = layout::with_tree(self.screen.areas);
        }
        if !self.buffers().is_empty() {
            self.screen.areas = layout::with_tabs(self.screen.areas);
        }
    }

    /// Never leaves the keyboard with a chat box or prompt the terminal is
    /// too small to draw (what is typed would go where no one sees it).
    pub(super) fn hide_undrawn_inputs(&mut self) {
        if self.chat().open && self.screen.areas.chat.is_none() {
            self.close_chat(Some(
                "The terminal is too small for the chat: it needs 7 rows.",
            ));
        }
        if self.prompt().is_some() && self.screen.areas.prompt.is_none() {
            self.drop_prompt();
            self.focus = Focus::Text;
            self.warn("The terminal is too small for a prompt.");
            self.relayout();
        }
    }

    pub(super) fn text_height(&self) -> usize {
        usize::from(self.screen.areas.text.height.max(1))
    }

    /// Scrolls so the caret is visible: mine, or while I follow a member,
    /// theirs.
    pub(super) fn follow_cursor(&mut self) {
        let (line, col) = match self.followed_caret() {
            Some(pos) => {
                let rope = self.editor.rope();
                let pos = pos.min(rope.len_chars());
                (
                    rope.char_to_line(pos),
                    text::col_of(rope, pos, self.editor.tab_width),
                )
            }
            None => self.editor.line_col(),
        };
        let h = self.text_height();
        let w = usize::from(self.screen.areas.text.width.max(1));
        if line < self.view.top {
            self.view.top = line;
        } else if line >= self.view.top + h {
            self.view.top = line + 1 - h;
        }
        if col < self.view.left {
            self.view.left = col.saturating_sub(w / 4);
        } else if col >= self.view.left + w {
            self.view.left = col + 1 - w + (w / 4).min(8);
        }
    }

    pub(super) fn scroll(&mut self, lines: isize) {
        self.end_follow_quietly();
        let last = self.editor.rope().len_lines().saturating_sub(1);
        self.view.top = self.view.top.saturating_add_signed(lines).min(last);
    }

    pub(super) fn click(&mut self, column: u16, row: u16, extend: bool) {
        let at = Position::new(column, row);
        if let Some(chat) = self.screen.areas.chat
            && chat.contains(at)
        {
            self.focus = Focus::Chat;
            return;
        }
        let text = self.screen.areas.text;
        let in_text = at.y >= text.y
            && at.y < text.y + text.height
            && at.x >= self.screen.areas.gutter.x
            && at.x < text.x + text.width;
        if !in_text {
            return;
        }
        self.focus = Focus::Text;
        self.end_follow_quietly();
        let line = self.view.top + usize::from(at.y - text.y);
        let rope = self.editor.rope();
        let pos = if line >= rope.len_lines() {
            rope.len_chars()
        } else {
            let col = self.view.left + usize::from(at.x.saturating_sub(text.x));
            text::pos_at_col(rope, line, col, self.editor.tab_width)
        };
        self.editor.set_cursor(pos, extend);
        self.session.undo_checkpoint();
        self.undo_group.end();
        self.follow_cursor();
    }

    pub(super) fn center_cursor(&mut self) {
        let (line, _) = self.editor.line_col();
        self.view.top = line.saturating_sub(self.text_height() / 2);
        self.follow_cursor();
    }
}
