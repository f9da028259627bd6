//! The editor's side of the session: transport events (connected, a server
//! message, dropped, closed) and the clock fed to the `collab_client::Session`,
//! the client events it returns shown, my edits and caret sent after each
//! frame, and what FILE's seed came to. The session itself (joining on
//! connect, the acks' clock, the seed sent after a welcome to an empty
//! room) is the client library's, shared with `collab_client::Client`.

use std::time::Instant;

use collab_client::{ClientEvent, Effect, Link, TransportEvent};
use collab_protocol::{ErrorCode, LeftReason};

use super::room::RoomSession;
use super::{App, Order, PRESENCE_EVERY, RETURN_WITHIN};
use crate::autostart::Local;
use crate::editor::Selection;

/// This editor's part in the room beyond what the session knows (the
/// connection, me, my edits, FILE's seed): this module's state, changed
/// only here.
#[derive(Debug, Default)]
pub(super) struct InRoom {
    /// A check (or start) of the local server is under way.
    starting_server: bool,
    /// My caret as last sent, and when.
    last_presence: Option<(Selection, Instant)>,
    /// Members who were in the room when my connection dropped: when they
    /// come back after the reconnect (a server restart makes everyone join
    /// again) they are not announced as joining. Until the given time.
    returning: (Vec<String>, Option<Instant>),
}

impl App {
    /// Closed for good before the first welcome (refused, or the server
    /// went away): the sentence to print on exit.
    pub fn fatal(&self) -> Option<String> {
        let Link::Closed { error } = self.session.link() else {
            return None;
        };
        if self.session.welcomes() > 0 || self.quitting() {
            return None;
        }
        Some(match error {
            Some(e) => self.refusal(e.code, &e.message),
            None => format!(
                "The connection to {} closed before joining: check the server and try again.",
                self.config.server
            ),
        })
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

    /// A connection event, through the session (which joins on connect
    /// and keeps the acks' clock).
    pub(super) fn transport(&mut self, ev: TransportEvent) {
        if matches!(ev, TransportEvent::Disconnected { .. }) && *self.session.link() == Link::Live {
            self.note_connection_lost();
        }
        let RoomSession::OneFile(session) = &mut self.session else {
            return;
        };
        let effects = session.handle(ev, self.now);
        self.session_effects(effects);
        self.pull_changes(false);
    }

    /// The live connection dropped: said, and who was here remembered.
    pub(super) fn note_connection_lost(&mut self) {
        self.warn("Connection lost: editing goes on offline.");
        let here = self.peers.iter().filter(|p| !p.me);
        self.in_room.returning = (here.map(|p| p.name.clone()).collect(), None);
    }

    /// My caret goes again with the next frame (another document is on
    /// screen, or someone new needs it).
    pub(super) fn in_room_presence_again(&mut self) {
        self.in_room.last_presence = None;
    }

    /// The session's clock (on every `Action::Clock`): my unacked updates
    /// go again when no ack came for `collab_client::RESEND_AFTER`.
    pub(super) fn resend_stalled(&mut self) {
        for m in self.session.handle_timeout(self.now) {
            self.send(m);
        }
    }

    /// The room's text shown first is on screen: its document loads now,
    /// and the change from that text to the document's is mirrored.
    pub(super) fn settle_text_first(&mut self) {
        match &mut self.session {
            RoomSession::OneFile(s) => {
                let effects = s.settle(self.now);
                self.session_effects(effects);
            }
            RoomSession::Folder(f) => {
                let effects = f.ws.settle(self.now);
                self.ws_effects(effects);
            }
        }
        self.pull_changes(false);
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
        // (The event loop settles after drawing the text, before this.)
        if self.session.is_showing_text_first() {
            self.settle_text_first();
        }
        let flushed = self.session.flush_all();
        if !flushed.is_empty() {
            for m in flushed {
                self.send(m);
            }
            // Its wait for the ack starts now.
            self.session.poll_timeout(self.now);
        }
        let sel = self.editor.selection();
        if *self.session.link() == Link::Live && self.session.has_document() {
            let due = match self.in_room.last_presence {
                None => true,
                Some((last, at)) => last != sel && self.now.duration_since(at) >= PRESENCE_EVERY,
            };
            if due {
                let anchor = (!sel.is_empty()).then_some(sel.anchor);
                let m = self.session.presence_msg(sel.head, anchor);
                self.send(m);
                self.in_room.last_presence = Some((sel, self.now));
            }
        }
    }

    /// Dropped (after the session's state changed; see `transport` for
    /// what is said when it was live).
    fn disconnected(&mut self) {
        self.in_room.last_presence = None;
        self.refresh_peers();
        // Our own local server may have died: check, start again.
        if let Some(addr) = self.config.local_server
            && !self.in_room.starting_server
            && !self.quitting()
        {
            self.in_room.starting_server = true;
            self.orders.push(Order::StartLocalServer(addr));
        }
    }

    /// The local server was checked after a drop: started again, or it
    /// was there (another editor started it, or only the connection broke).
    pub(super) fn local_server(&mut self, result: Result<Local, String>) {
        self.in_room.starting_server = false;
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
        match e {
            ClientEvent::Connected => {}
            ClientEvent::Disconnected { .. } => self.disconnected(),
            // Before the first welcome, said on exit (see `fatal`).
            ClientEvent::Closed { error: Some(e) } if self.fatal().is_none() => {
                self.warn(format!("Disconnected for good: {}", e.message));
            }
            ClientEvent::Closed { .. } => {}
            ClientEvent::Welcome {
                you,
                resumed,
                first,
                ..
            } => {
                if you.read_only {
                    self.warn("You joined read-only: you can follow (F5) and chat, not edit.");
                }
                if first {
                    self.first_welcome_with_file();
                    self.say_file_state();
                } else {
                    let merged = if resumed { "" } else { ": edits merged" };
                    self.notice(format!("Reconnected{merged}."));
                    self.in_room.returning.1 = Some(self.now + RETURN_WITHIN);
                }
                self.in_room.last_presence = None;
                self.refresh_peers();
            }
            ClientEvent::TextFirst { text } => self.show_text_first(text),
            ClientEvent::DocChanged | ClientEvent::Acked { .. } => {}
            ClientEvent::MemberJoined(m) => {
                let (names, until) = &mut self.in_room.returning;
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
                self.in_room.last_presence = None;
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
            ClientEvent::Chat { from, text, time } => self.chat_received(from, None, text, time),
            ClientEvent::Direct {
                from,
                to,
                text,
                time,
            } => self.chat_received(from, Some(to), text, time),
            ClientEvent::Presence { .. } => self.refresh_peers(),
            ClientEvent::Seeded { applied } => {
                if applied && let Some(name) = self.file_name() {
                    self.notice(format!("The room starts from {name}."));
                } else if !applied {
                    // Someone else's file seeded the room first.
                    self.compare_with_file();
                }
            }
            ClientEvent::SeedRefused { too_large } => {
                self.seed_refused();
                if let Some(bytes) = too_large {
                    let name = self.file_name().unwrap_or_default();
                    self.warn(format!(
                        "{name} ({bytes} bytes) is larger than this server accepts; the room stays empty and {name} is left as it is."
                    ));
                }
            }
            ClientEvent::Error { code, message, .. } => {
                // A fatal one before the first welcome closes the
                // connection: said on exit (see `fatal`).
                let refused = self.session.welcomes() == 0 && code.is_fatal();
                if !refused && (code != ErrorCode::NoSuchUser || !self.direct_refused(&message)) {
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
