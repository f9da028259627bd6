//! The chat box's keys and sending what it holds (the chat's lines and their
//! parsing are [`crate::chat`]).

use collab_protocol::ClientMsg;

use super::{App, Conn, Order};
use crate::chat::{Outgoing, parse_outgoing};
use crate::keymap::Command;

impl App {
    pub(super) fn chat_command(&mut self, c: Command) {
        use Command::*;
        let page = self
            .areas()
            .chat
            .map_or(1, |a| usize::from(a.height.saturating_sub(3)).max(1));
        let page = isize::try_from(page).unwrap_or(1);
        let empty = self.chat.input.text.is_empty();
        let input = &mut self.chat.input;
        match c {
            InputUp if empty => self.chat.scroll_by(1),
            InputDown if empty => self.chat.scroll_by(-1),
            PageUp => self.chat.scroll_by(page),
            PageDown => self.chat.scroll_by(-page),
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
        if self.chat.input.text.trim().is_empty() {
            return;
        }
        let parsed = parse_outgoing(&self.chat.input.text);
        if let Ok(Outgoing::Follow(name)) = parsed {
            self.chat.input.take();
            return self.follow_named(name.as_deref());
        }
        if self.conn != Conn::Live {
            return self.warn("Offline: the message was not sent; it is still in the box.");
        }
        match parsed {
            Ok(Outgoing::Follow(_)) => {}
            Ok(Outgoing::Send(msg)) => {
                self.chat.scroll = 0;
                let typed = self.chat.input.take();
                if matches!(msg, ClientMsg::Direct { .. }) {
                    self.unechoed_direct = Some(typed);
                }
                self.orders.push(Order::Send(msg));
            }
            Err(why) => self.warn(why),
        }
    }
}
