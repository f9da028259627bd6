//! The chat box's keys and sending what it holds (the chat's lines and their
//! parsing are [`crate::chat`]).

use collab_protocol::ClientMsg;

use super::{App, Conn, Effect};
use crate::chat::parse_outgoing;
use crate::keymap::Command;

impl App {
    pub(super) fn chat_command(&mut self, c: Command) {
        use Command::*;
        let input = &mut self.chat.input;
        match c {
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
        if self.conn != Conn::Live {
            return self.warn("Offline: the message was not sent; it is still in the box.");
        }
        match parse_outgoing(&self.chat.input.text) {
            Ok(msg) => {
                let typed = self.chat.input.take();
                if matches!(msg, ClientMsg::Direct { .. }) {
                    self.unechoed_direct = Some(typed);
                }
                self.effects.push(Effect::Send(msg));
            }
            Err(why) => self.warn(why),
        }
    }
}
