//! [`Session`]: a [`Replica`] taking part in one room over a transport,
//! sans-IO, in the style of quinn-proto's `Connection`.
//!
//! The glue between [`crate::Connection`] and [`Replica`] (join on every
//! connect, the connection's state, watching the acks and resending when
//! they stall) is the same for every program that edits a room, so it
//! lives here once: the editor and [`crate::Client`] both drive a
//! `Session`. It does no IO and reads no clock: the owner passes `now`, so
//! tests step time with plain [`Instant`]s, without a runtime or sleeps.
//! The crate's docs show the loop that drives one.
//!
//! Welcome assembly and rate-limited updates stay in the [`Replica`]: they
//! are about the document, not the connection. The session adds the clock:
//! the server drops updates over its rate limit without a word when nothing
//! follows them, so updates unacked for [`RESEND_AFTER`] go again.

use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use collab_protocol::{ProtocolError, ServerMsg};

use crate::{ClientEvent, Effect, Replica, SyncState, TransportEvent};

/// Updates unacked this long are sent again (the default of
/// [`Session::resend_after`]): a live server acks within milliseconds, so
/// this only fires when updates were dropped.
pub const RESEND_AFTER: Duration = Duration::from_secs(2);

/// Who joins which room: what every `join` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinAs {
    pub room: String,
    pub user: String,
    /// The access token, when the server requires one.
    pub token: Option<String>,
}

/// The connection as the session last heard of it: what a status bar
/// shows. The one copy of this state: the editor reads it here.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not connected yet: the transport's first try is under way.
    Connecting,
    /// A WebSocket is open and the `join` went out; no welcome yet.
    Joining,
    /// Welcomed on the open connection.
    Live,
    /// Dropped; the transport retries in `retry_in` (`None` while
    /// suspended).
    Reconnecting {
        reason: String,
        retry_in: Option<Duration>,
    },
    /// Stopped for good, with the fatal error if there was one.
    Closed { error: Option<ProtocolError> },
}

/// A [`Replica`] joined to a room through a transport; see the module
/// documentation for how to drive it.
#[derive(Debug)]
pub struct Session {
    replica: Replica,
    join: JoinAs,
    link: Link,
    resend_after: Duration,
    /// Since when the oldest unacked update has waited without progress
    /// (an ack, a welcome, a part of one): `None` while nothing waits.
    waiting_since: Option<Instant>,
    disconnects: u64,
}

impl Session {
    /// A session for `replica` (fresh, or already edited or seeded), not
    /// connected yet.
    pub fn new(replica: Replica, join: JoinAs) -> Self {
        Self {
            replica,
            join,
            link: Link::Connecting,
            resend_after: RESEND_AFTER,
            waiting_since: None,
            disconnects: 0,
        }
    }

    /// Resend unacked updates after this long without progress instead of
    /// [`RESEND_AFTER`].
    pub fn resend_after(mut self, after: Duration) -> Self {
        self.resend_after = after;
        self
    }

    /// Handles one transport event at `now`, returning what to send and
    /// what to show, in order.
    pub fn handle(&mut self, event: TransportEvent, now: Instant) -> Vec<Effect> {
        let out = match event {
            TransportEvent::Connected => {
                self.link = Link::Joining;
                let JoinAs { room, user, token } = &self.join;
                let join = self.replica.join_msg(room, user, token.as_deref());
                vec![Effect::Event(ClientEvent::Connected), Effect::Send(join)]
            }
            TransportEvent::Message(msg) => {
                if matches!(
                    msg,
                    ServerMsg::Ack { .. } | ServerMsg::Welcome(_) | ServerMsg::DocPart { .. }
                ) {
                    self.waiting_since = Some(now);
                }
                let out = self.replica.handle(msg);
                if self.link == Link::Joining && self.replica.state() == SyncState::Live {
                    self.link = Link::Live;
                }
                out
            }
            TransportEvent::Disconnected { reason, retry_in } => {
                // A welcome whose text was shown first is the room's: its
                // document is loaded before the drop is handled.
                let mut out = self.settle(now);
                self.link = Link::Reconnecting {
                    reason: reason.clone(),
                    retry_in,
                };
                self.disconnects += 1;
                self.replica.on_disconnect();
                out.push(Effect::Event(ClientEvent::Disconnected {
                    reason,
                    retry_in,
                }));
                out
            }
            TransportEvent::Closed { error } => {
                let mut out = self.settle(now);
                self.link = Link::Closed {
                    error: error.clone(),
                };
                self.replica.on_disconnect();
                out.push(Effect::Event(ClientEvent::Closed { error }));
                out
            }
        };
        self.observe(now);
        out
    }

    /// Loads the document of a welcome whose text was shown first
    /// ([`Replica::settle`]): the session is live from then on.
    pub fn settle(&mut self, now: Instant) -> Vec<Effect> {
        let out = self.replica.settle();
        if self.link == Link::Joining && self.replica.state() == SyncState::Live {
            self.link = Link::Live;
        }
        self.observe(now);
        out
    }

    /// When [`Self::handle_timeout`] has work next: `None` while no update
    /// waits for an ack (or while not live, when nothing can be resent).
    /// Ask again after sending an update: its wait starts at the first
    /// `now` the session sees it.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        self.observe(now);
        self.waiting_since.map(|since| since + self.resend_after)
    }

    /// The clock at `now`: when no ack came for the resend interval, every
    /// unacked update goes again as one (and the wait starts over).
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Effect> {
        if self.poll_timeout(now).is_none_or(|due| now < due) {
            return Vec::new();
        }
        self.waiting_since = Some(now);
        self.replica
            .resend_unacked()
            .map(Effect::Send)
            .into_iter()
            .collect()
    }

    /// Starts the wait of a newly sent update, ends it when nothing waits.
    fn observe(&mut self, now: Instant) {
        let waiting =
            self.replica.state() == SyncState::Live && self.replica.unacked_seqs().next().is_some();
        if waiting {
            self.waiting_since.get_or_insert(now);
        } else {
            self.waiting_since = None;
        }
    }

    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The connection as last heard of.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// A WebSocket is open (the welcome may not have come yet).
    pub fn connected(&self) -> bool {
        matches!(self.link, Link::Joining | Link::Live)
    }

    /// Welcomed on an open connection, every edit acked, nothing waiting.
    pub fn is_synced(&self) -> bool {
        self.link == Link::Live && self.replica.is_synced()
    }

    /// `Some` once the transport stopped for good, with the fatal error if
    /// there was one.
    pub fn closed(&self) -> Option<&Option<ProtocolError>> {
        match &self.link {
            Link::Closed { error } => Some(error),
            _ => None,
        }
    }

    /// How many times the transport reported a drop.
    pub fn disconnects(&self) -> u64 {
        self.disconnects
    }
}

/// Reading and editing go straight to the replica: the session only adds
/// the connection and the clock around it.
impl Deref for Session {
    type Target = Replica;
    fn deref(&self) -> &Replica {
        &self.replica
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Replica {
        &mut self.replica
    }
}
