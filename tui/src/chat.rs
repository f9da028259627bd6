//! The chat: room messages and direct messages, what I am typing, and how
//! many arrived while the panel was closed.

use collab_protocol::{ClientMsg, validate_chat_text};

use crate::input::LineInput;

/// One message as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub from: String,
    /// `Some(name)` for a direct message to `name`.
    pub to: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct Chat {
    pub lines: Vec<ChatLine>,
    pub input: LineInput,
    pub open: bool,
    pub unread: usize,
}

/// Keep this many messages.
const KEEP: usize = 500;

impl Chat {
    /// A message arrived; `mine` ones never count as unread.
    pub fn push(&mut self, line: ChatLine, mine: bool) {
        if !self.open && !mine {
            self.unread += 1;
        }
        self.lines.push(line);
        if self.lines.len() > KEEP {
            self.lines.drain(..self.lines.len() - KEEP);
        }
    }

    pub fn set_open(&mut self, open: bool) {
        self.open = open;
        if open {
            self.unread = 0;
        }
    }
}

/// What the chat box's text asks to send: `/msg NAME text` is a direct
/// message, anything else goes to the room. `Err` is a sentence to show.
pub fn parse_outgoing(text: &str) -> Result<ClientMsg, String> {
    let text = text.trim();
    if let Some(rest) = text
        .strip_prefix("/msg ")
        .or_else(|| text.strip_prefix("/m "))
    {
        let rest = rest.trim_start();
        let (to, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if to.is_empty() {
            return Err("Usage: /msg NAME text".into());
        }
        validate_chat_text(body).map_err(|e| e.message)?;
        return Ok(ClientMsg::Direct {
            to: to.to_owned(),
            text: body.trim().to_owned(),
        });
    }
    if text.starts_with('/') && !text.starts_with("//") {
        return Err("Unknown command: use /msg NAME text, or // to start a message with /".into());
    }
    let text = text
        .strip_prefix('/')
        .filter(|t| t.starts_with('/'))
        .unwrap_or(text);
    validate_chat_text(text).map_err(|e| e.message)?;
    Ok(ClientMsg::Chat {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_room_and_direct_messages() {
        assert_eq!(
            parse_outgoing("hi all"),
            Ok(ClientMsg::Chat {
                text: "hi all".into()
            })
        );
        assert_eq!(
            parse_outgoing("/msg bob  psst there"),
            Ok(ClientMsg::Direct {
                to: "bob".into(),
                text: "psst there".into()
            })
        );
        assert!(parse_outgoing("/msg bob").is_err());
        assert!(parse_outgoing("/dance").is_err());
        assert!(parse_outgoing("   ").is_err());
        assert_eq!(
            parse_outgoing("//etc"),
            Ok(ClientMsg::Chat {
                text: "/etc".into()
            })
        );
    }

    #[test]
    fn counts_unread_while_closed() {
        let mut c = Chat::default();
        let line = ChatLine {
            from: "bob".into(),
            to: None,
            text: "x".into(),
        };
        c.push(line.clone(), false);
        c.push(line.clone(), true);
        assert_eq!(c.unread, 1);
        c.set_open(true);
        c.push(line, false);
        assert_eq!(c.unread, 0);
    }
}
