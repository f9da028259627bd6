//! The editor's side of the session: transport events (connected, a server
//! message, dropped, closed) and the clock fed to the `collab_client::Session`,
//! the client events it returns shown, my edits and caret sent after each
//! frame, and an empty room seeded from FILE after the first welcome. The
//! session itself (joining on connect, the acks' clock) is the client
//! library's, shared with `collab_client::Client`.

use std::time::Duration;

use collab_client::{ClientEvent, Effect, TransportEvent};
use collab_protocol::{ErrorCode, LeftReason, ProtocolError};
use ropey::Rope;

use super::{App, Conn, OnDisk, Order, PRESENCE_EVERY, RETURN_WITHIN};
use crate::autostart::Local;
use crate::chat::ChatLine;
use crate::input::LineInput;

impl App {
    /// FILE's text into an empty room, if the server takes that much.
    pub(super) fn seed(&mut self) {
        let Some(text) = self.config.file_text.clone() else {
            return;
        };
        if !self.replica.doc().is_empty() || text.len_chars() == 0 {
            self.seeding = false;
            return;
        }
        let bytes = text.len_bytes();
        if let Some(limits) = self.replica.limits() {
            // JSON escaping can double the size; leave room for it.
            let frame_room = limits.max_frame_bytes.saturating_sub(64) / 2;
            if bytes > limits.max_doc_bytes || bytes > frame_room {
                self.seed_refused();
                let name = self.file_name().unwrap_or_default();
                return self.warn(format!(
                    "{name} ({bytes} bytes) is larger than this server accepts; the room stays empty and {name} is left as it is."
                ));
            }
        }
        match self.replica.seed(&text.to_string()) {
            Some(m) => self.orders.push(Order::Send(m)),
            None => self.seeding = false,
        }
    }

    /// After the first welcome, with FILE: a room that already has text
    /// shows the room's, and FILE is said to differ when it does.
    fn compare_with_file(&mut self) {
        let Some(file) = &self.config.file_text else {
            return;
        };
        let room = self.replica.doc();
        if room.is_empty() {
            return;
        }
        let text = room.text();
        if file.len_bytes() == text.len() && *file == text.as_str() {
            return;
        }
        self.file_state = super::FileState::Differs;
        let name = self.file_name().unwrap_or_default();
        self.warn(format!(
            "{name} differs from the room's text; you see the room's. Ctrl-S asks before replacing {name}; Alt-S saves elsewhere."
        ));
    }

    /// The sentence for a refused join: the server's own, except that a
    /// token given and refused is said to be refused (the server's words
    /// ask for a token, which was passed).
    fn refusal(&self, code: ErrorCode, message: &str) -> String {
        match code {
            ErrorCode::Unauthorized if self.config.token.is_some() => {
                "The server refused the access token given with --token (or COLLAB_TOKEN): check it with whoever runs the server.".into()
            }
            _ => message.to_owned(),
        }
    }

    /// A new or read-only FILE is said when it opens.
    fn say_file_state(&mut self) {
        let Some(name) = self.file_name() else { return };
        match self.config.file_on_disk {
            OnDisk::Writable => {}
            OnDisk::New => self.notice(format!("{name} is a new file: Ctrl-S creates it.")),
            OnDisk::ReadOnly => self.warn(format!(
                "{name} is read-only on disk: you can edit here, but saving to it will fail."
            )),
        }
    }

    /// A connection event, through the session (which joins on connect
    /// and keeps the acks' clock).
    pub(super) fn transport(&mut self, ev: TransportEvent) {
        let effects = self.replica.handle(ev, self.now);
        self.session_effects(effects);
        self.pull_changes(false);
    }

    /// The session's clock (on every `Action::Clock`): my unacked updates
    /// go again when no ack came for `collab_client::RESEND_AFTER`.
    pub(super) fn resend_stalled(&mut self) {
        let effects = self.replica.handle_timeout(self.now);
        self.session_effects(effects);
    }

    /// What the session returned: messages out, events shown.
    fn session_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send(m) => self.orders.push(Order::Send(m)),
                Effect::Event(e) => self.client_event(e),
            }
        }
    }

    /// After a frame is on screen: my batched edits and my caret go out.
    pub(super) fn sync(&mut self) {
        if let Some(m) = self.replica.flush() {
            self.orders.push(Order::Send(m));
            // Its wait for the ack starts now.
            self.replica.poll_timeout(self.now);
        }
        let sel = self.editor.selection();
        if self.conn == Conn::Live {
            let due = match self.last_presence {
                None => true,
                Some((last, at)) => last != sel && self.now.duration_since(at) >= PRESENCE_EVERY,
            };
            if due {
                let anchor = (!sel.is_empty()).then_some(sel.anchor);
                self.orders
                    .push(Order::Send(self.replica.presence(sel.head, anchor)));
                self.last_presence = Some((sel, self.now));
            }
        }
    }

    fn disconnected(&mut self, reason: String, retry_in: Option<Duration>) {
        if self.conn == Conn::Live {
            self.warn("Connection lost: editing goes on offline.");
            let here = self.peers.iter().filter(|p| !p.me);
            self.returning = (here.map(|p| p.name.clone()).collect(), None);
        }
        self.conn = Conn::Reconnecting { reason, retry_in };
        self.last_presence = None;
        self.refresh_peers();
        // Our own local server may have died: check, start again.
        if let Some(addr) = self.config.local_server
            && !self.starting_server
            && !self.quitting
        {
            self.starting_server = true;
            self.orders.push(Order::StartLocalServer(addr));
        }
    }

    fn closed(&mut self, error: Option<ProtocolError>) {
        let reason = match &error {
            Some(e) => e.message.clone(),
            None => "closed".to_owned(),
        };
        if self.replica.welcomes() == 0 && !self.quitting {
            self.fatal = Some(match &error {
                Some(e) => self.refusal(e.code, &e.message),
                None => format!(
                    "The connection to {} closed before joining: check the server and try again.",
                    self.config.server
                ),
            });
        } else if error.is_some() {
            self.warn(format!("Disconnected for good: {reason}"));
        }
        self.conn = Conn::Closed { reason };
    }

    /// The local server was checked after a drop: started again, or it
    /// was there (another editor started it, or only the connection broke).
    pub(super) fn local_server(&mut self, result: Result<Local, String>) {
        self.starting_server = false;
        match result {
            Ok(Local::Started) => {
                self.notice("The local server had stopped: started a new one.");
                self.orders.push(Order::Reconnect);
            }
            // Up, or up again: the backoff's next try connects (trying at
            // once would spin if the server refuses us for another reason).
            Ok(Local::Running) => {}
            Err(e) => self.warn(e),
        }
    }

    pub(super) fn client_event(&mut self, e: ClientEvent) {
        let me = self.me.as_ref().map(|m| m.name.clone());
        match e {
            ClientEvent::Connected => self.conn = Conn::Joining,
            ClientEvent::Disconnected { reason, retry_in } => self.disconnected(reason, retry_in),
            ClientEvent::Closed { error } => self.closed(error),
            ClientEvent::Welcome {
                you,
                resumed,
                first,
                ..
            } => {
                self.conn = Conn::Live;
                if you.read_only {
                    self.warn("You joined read-only: you can follow (F5) and chat, not edit.");
                }
                self.me = Some(you);
                if first {
                    // Without a file the room's text is the baseline; with
                    // one, the file on disk is (see `saved`).
                    if self.config.file.is_none() {
                        self.saved = Rope::from_str(&self.replica.text());
                    } else {
                        self.compare_with_file();
                    }
                } else {
                    if !resumed {
                        self.notice("Reconnected: edits merged.");
                    } else {
                        self.notice("Reconnected.");
                    }
                    self.returning.1 = Some(self.now + RETURN_WITHIN);
                }
                if first {
                    self.seed();
                    self.say_file_state();
                }
                self.last_presence = None;
                self.refresh_peers();
            }
            ClientEvent::DocChanged | ClientEvent::Acked { .. } => {}
            ClientEvent::MemberJoined(m) => {
                let (names, until) = &mut self.returning;
                let back = until.is_some_and(|t| self.now < t)
                    && names
                        .iter()
                        .position(|n| *n == m.name)
                        .map(|i| names.swap_remove(i))
                        .is_some();
                if !back {
                    self.notice(format!("{} joined", m.name));
                }
                // They know nothing of my caret yet: send it again.
                self.last_presence = None;
                self.refresh_peers();
            }
            ClientEvent::MemberChanged(m) => {
                let role = if m.read_only { "a viewer" } else { "an editor" };
                self.notice(format!("{} is now {role}", m.name));
                self.refresh_peers();
            }
            ClientEvent::MemberLeft { name, reason, .. } => {
                let text = match reason {
                    LeftReason::Left => format!("{name} left the room"),
                    LeftReason::Disconnected => format!("{name} lost the connection"),
                    LeftReason::Removed => format!("{name} was removed by the server"),
                };
                self.notice(text);
                self.refresh_peers();
            }
            ClientEvent::Chat { from, text, time } => {
                let mine = Some(&from.name) == me.as_ref();
                self.chat.push(
                    ChatLine {
                        from: from.name,
                        to: None,
                        text,
                        time,
                    },
                    mine,
                );
            }
            ClientEvent::Direct {
                from,
                to,
                text,
                time,
            } => {
                let mine = Some(&from.name) == me.as_ref();
                if mine {
                    self.unechoed_direct = None;
                }
                self.chat.push(
                    ChatLine {
                        from: from.name,
                        to: Some(to),
                        text,
                        time,
                    },
                    mine,
                );
            }
            ClientEvent::Presence { .. } => self.refresh_peers(),
            ClientEvent::Seeded { applied } => {
                self.seeding = false;
                if applied && let Some(name) = self.file_name() {
                    self.notice(format!("The room starts from {name}."));
                } else if !applied {
                    // Someone else's file seeded the room first.
                    self.compare_with_file();
                }
            }
            ClientEvent::Error { code, message, seq } => {
                if self.seeding
                    && seq.is_none()
                    && matches!(code, ErrorCode::DocTooLarge | ErrorCode::ReadOnly)
                {
                    self.seed_refused();
                }
                if self.replica.welcomes() == 0 && code.is_fatal() {
                    self.fatal = Some(self.refusal(code, &message));
                } else if code == ErrorCode::NoSuchUser
                    && let Some(typed) = self.unechoed_direct.take()
                {
                    if self.chat.input.text.is_empty() {
                        self.chat.input = LineInput::with_text(&typed);
                        self.warn(format!("{message} Your message is back in the chat box."));
                    } else {
                        self.warn(format!("{message} It was: {typed}"));
                    }
                } else {
                    self.warn(message);
                }
            }
            ClientEvent::BadServerData { message } => self.warn(message),
            ClientEvent::Shutdown { message } => {
                self.warn(format!("Server stopping: {message}"));
            }
        }
    }
}
