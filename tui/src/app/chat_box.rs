//! The chat as the app holds it: opening and closing the panel, the box's
//! keys and sending what it holds, and messages arriving (the chat's lines
//! and their parsing are `crate::chat`).

use collab_protocol::{ClientMsg, MemberRef};

use collab_client::Link;

use super::{App, Focus};
use crate::chat::{Chat, ChatLine, Outgoing, parse_outgoing};
use crate::input::LineInput;
use crate::keymap::Command;

/// The chat and what the app remembers about it: this module's state,
/// changed only here.
#[derive(Debug, Default)]
pub(super) struct ChatBox {
    chat: Chat,
    /// The chat box's text of a direct message not yet echoed by the
    /// server: if the name is nobody in the room it goes back in the box
    /// rather than being lost.
    unechoed_direct: Option<String>,
}

impl App {
    /// The chat's lines, box and panel, for drawing.
    pub fn chat(&self) -> &Chat {
        &self.chat_box.chat
    }

    /// F2: opens the chat with the keyboard in its box, or closes it.
    pub(super) fn toggle_chat(&mut self) {
        let open = !(self.chat_box.chat.open && self.focus == Focus::Chat);
        self.chat_box.chat.set_open(open);
        self.focus = if open { Focus::Chat } else { Focus::Text };
        self.relayout();
        self.hide_undrawn_inputs();
        self.follow_cursor();
    }

    /// Closes the chat panel; `why` (the terminal too small for it) is
    /// said when the keyboard was in its box.
    pub(super) fn close_chat(&mut self, why: Option<&str>) {
        self.chat_box.chat.set_open(false);
        if self.focus == Focus::Chat {
            self.focus = Focus::Text;
            if let Some(why) = why {
                self.warn(why);
            }
        }
        self.relayout();
    }

    /// Typed or pasted into the chat box.
    pub(super) fn chat_insert(&mut self, text: &str) {
        self.chat_box.chat.input.insert(text);
    }

    /// A room message (`to` is `None`) or a direct one from the server, my
    /// own echoed too (never unread).
    pub(super) fn chat_received(
        &mut self,
        from: MemberRef,
        to: Option<String>,
        text: String,
        time: u64,
    ) {
        let mine = self.session.you().is_some_and(|me| me.name == from.name);
        if mine && to.is_some() {
            self.chat_box.unechoed_direct = None;
        }
        let line = ChatLine {
            from: from.name,
            to,
            text,
            time,
        };
        self.chat_box.chat.push(line, mine);
    }

    /// `no_such_user`: the direct message I typed goes back in the box (or
    /// is quoted, when the box holds something else). False when no direct
    /// message waited for its echo.
    pub(super) fn direct_refused(&mut self, message: &str) -> bool {
        let Some(typed) = self.chat_box.unechoed_direct.take() else {
            return false;
        };
        let chat = &mut self.chat_box.chat;
        if chat.input.text.is_empty() {
            chat.input = LineInput::with_text(&typed);
            self.warn(format!("{message} Your message is back in the chat box."));
        } else {
            self.warn(format!("{message} It was: {typed}"));
        }
        true
    }

    pub(super) fn chat_command(&mut self, c: Command) {
        use Command::*;
        let page = self
            .areas()
            .chat
            .map_or(1, |a| usize::from(a.height.saturating_sub(3)).max(1));
        let page = isize::try_from(page).unwrap_or(1);
        let empty = self.chat_box.chat.input.text.is_empty();
        let input = &mut self.chat_box.chat.input;
        match c {
            InputUp if empty => self.chat_box.chat.scroll_by(1),
            InputDown if empty => self.chat_box.chat.scroll_by(-1),
            PageUp => self.chat_box.chat.scroll_by(page),
            PageDown => self.chat_box.chat.scroll_by(-page),
            MoveLeft => input.left(),
            MoveRight => input.right(),
            LineStart => input.home(),
            LineEnd => input.end(),
            WordLeft => input.word_left(),
            WordRight => input.word_right(),
            DeleteWordBefore => input.delete_word(),
            DeleteToStart => input.delete_to_start(),
            Backspace => input.backspace(),
            Delete => input.delete(),
            Paste => {
                let clip = self.clipboard.clone();
                input.insert(&clip);
            }
            Submit => self.send_chat(),
            _ => {}
        }
    }

    pub(super) fn send_chat(&mut self) {
        if self.chat_box.chat.input.text.trim().is_empty() {
            return;
        }
        let parsed = parse_outgoing(&self.chat_box.chat.input.text);
        if let Ok(Outgoing::Follow(name)) = parsed {
            self.chat_box.chat.input.take();
            return self.follow_named(name.as_deref());
        }
        if *self.session.link() != Link::Live {
            return self.warn("Offline: the message was not sent; it is still in the box.");
        }
        match parsed {
            Ok(Outgoing::Follow(_)) => {}
            Ok(Outgoing::Send(msg)) => {
                self.chat_box.chat.scroll = 0;
                let typed = self.chat_box.chat.input.take();
                if matches!(msg, ClientMsg::Direct { .. }) {
                    self.chat_box.unechoed_direct = Some(typed);
                }
                let msg = self.session.room_msg(msg);
                self.send(msg);
            }
            Err(why) => self.warn(why),
        }
    }
}
