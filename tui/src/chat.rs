//! The chat: room messages and direct messages, what I am typing, how
//! many arrived while the panel was closed, and how far back I scrolled.
//!
//! Why the chat is in three files, as every other part of the editor is:
//! this one is its state and the rules that need nothing else (parsing
//! what I send, scrolling, times); `app/chat_box.rs` is what its keys do to
//! the app (focus, notices, messages queued for the server, the box's text
//! kept when a direct message finds nobody), which only `App::update` may
//! change; `ui/chat_panel.rs` draws it, and drawing depends on the state,
//! never the other way round. Put together they would need `App`'s state
//! open to the drawing code, or drawing code inside `App`.

use collab_protocol::{ClientMsg, validate_chat_text};

use crate::input::LineInput;

/// One message as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub from: String,
    /// `Some(name)` for a direct message to `name`.
    pub to: Option<String>,
    pub text: String,
    /// The server's clock when it was sent, ms since the Unix epoch.
    pub time: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Chat {
    pub lines: Vec<ChatLine>,
    pub input: LineInput,
    pub open: bool,
    pub unread: usize,
    /// Messages hidden below the panel (0: the latest shows).
    pub scroll: usize,
}

/// `HH:MM` of a server time (ms since the epoch) at a UTC offset in
/// seconds.
pub fn short_time(ms: u64, utc_offset: i32) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(0) + i64::from(utc_offset);
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}", day / 3600, day % 3600 / 60)
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
        // Scrolled back: stay on the same messages.
        if self.scroll > 0 {
            self.scroll += 1;
        }
        if self.lines.len() > KEEP {
            self.lines.drain(..self.lines.len() - KEEP);
        }
        self.scroll = self.scroll.min(self.lines.len().saturating_sub(1));
    }

    /// Scrolls back (`n` > 0) or forward by `n` messages.
    pub fn scroll_by(&mut self, n: isize) {
        let max = self.lines.len().saturating_sub(1);
        self.scroll = self.scroll.saturating_add_signed(n).min(max);
    }

    pub fn set_open(&mut self, open: bool) {
        self.open = open;
        if open {
            self.unread = 0;
        }
    }
}

/// What the chat box's text asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// A message for the server.
    Send(ClientMsg),
    /// `/follow NAME`: follow that member; `/follow` alone stops.
    Follow(Option<String>),
}

/// What the chat box's text asks: `/msg NAME text` is a direct message,
/// `/follow NAME` follows a member, anything else goes to the room. `Err`
/// is a sentence to show.
pub fn parse_outgoing(text: &str) -> Result<Outgoing, String> {
    let text = text.trim();
    if text.starts_with('/') && !text.starts_with("//") {
        let (cmd, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let rest = rest.trim_start();
        return match cmd {
            "/msg" | "/m" => {
                let (to, body) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if to.is_empty() || body.trim().is_empty() {
                    return Err("Usage: /msg NAME text (a message to NAME alone)".into());
                }
                validate_chat_text(body).map_err(|e| e.message)?;
                Ok(Outgoing::Send(ClientMsg::Direct {
                    to: to.to_owned(),
                    text: body.trim().to_owned(),
                }))
            }
            "/follow" | "/f" => Ok(Outgoing::Follow(
                (!rest.is_empty()).then(|| rest.to_owned()),
            )),
            _ => Err(
                "Unknown command: /msg NAME text, /follow NAME, or // to start a message with /"
                    .into(),
            ),
        };
    }
    let text = text
        .strip_prefix('/')
        .filter(|t| t.starts_with('/'))
        .unwrap_or(text);
    validate_chat_text(text).map_err(|e| e.message)?;
    Ok(Outgoing::Send(ClientMsg::Chat {
        text: text.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_room_and_direct_messages() {
        let send = |m| Ok(Outgoing::Send(m));
        assert_eq!(
            parse_outgoing("hi all"),
            send(ClientMsg::Chat {
                text: "hi all".into()
            })
        );
        assert_eq!(
            parse_outgoing("/msg bob  psst there"),
            send(ClientMsg::Direct {
                to: "bob".into(),
                text: "psst there".into()
            })
        );
        assert!(parse_outgoing("/msg bob").is_err());
        // `/msg` alone says how to use it.
        assert!(parse_outgoing("/msg").is_err_and(|e| e.starts_with("Usage: /msg NAME text")));
        assert!(parse_outgoing("/dance").is_err());
        assert!(parse_outgoing("   ").is_err());
        assert_eq!(
            parse_outgoing("//etc"),
            send(ClientMsg::Chat {
                text: "/etc".into()
            })
        );
        assert_eq!(
            parse_outgoing("/follow bob"),
            Ok(Outgoing::Follow(Some("bob".into())))
        );
        assert_eq!(parse_outgoing("/follow"), Ok(Outgoing::Follow(None)));
    }

    #[test]
    fn counts_unread_while_closed() {
        let mut c = Chat::default();
        let line = ChatLine {
            from: "bob".into(),
            to: None,
            text: "x".into(),
            time: 0,
        };
        c.push(line.clone(), false);
        c.push(line.clone(), true);
        assert_eq!(c.unread, 1);
        c.set_open(true);
        c.push(line.clone(), false);
        assert_eq!(c.unread, 0);
        // Scrolled back, a new message keeps the view where it is.
        c.scroll_by(2);
        c.push(line, false);
        assert_eq!(c.scroll, 3);
        c.scroll_by(-10);
        assert_eq!(c.scroll, 0);
    }

    #[test]
    fn times_are_short() {
        // 2024-01-01 13:05:09 UTC.
        let ms = 1_704_114_309_000;
        assert_eq!(short_time(ms, 0), "13:05");
        assert_eq!(short_time(ms, 3600), "14:05");
        assert_eq!(short_time(ms, -14 * 3600), "23:05");
    }
}
