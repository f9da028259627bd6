//! The collab client library: everything a program needs to take part in a
//! room, from the terminal editor to a test bot.
//!
//! - [`Replica`]: the sans-IO sync state (document, undo of my own edits,
//!   session token, unacked updates). Synchronous, no tokio: feed it server
//!   events with [`Replica::handle`], carry out the [`Effect`]s, and send
//!   what its editing methods return.
//! - [`Session`]: a replica joined to a room, still sans-IO: it joins on
//!   every connect, watches the acks and resends when they stall. Feed it
//!   [`TransportEvent`]s and the time; the editor and [`Client`] both
//!   drive one.
//! - [`Connection`]: the async WebSocket transport. It reports
//!   [`TransportEvent`]s and reconnects with exponential [`Backoff`] until
//!   closed or refused for good.
//! - [`Workspace`]: a session in a room of protocol 2, a workspace of
//!   files (`docs/workspace.md`): the tree, one [`Replica`] per open file,
//!   rejoin reopening each file with its version. Sans-IO as `Session`;
//!   [`WorkspaceClient`] drives one for tests and bots.
//! - [`Client`]: a session and a connection glued together in a background
//!   task, with waits (`wait_for`, `wait_synced`) that make tests pleasant.
//!   The `test-harness` feature adds what only tests read: the event log,
//!   a delta-fed mirror, `Client::state`.
//!
//! # Driving a session (what the editor does)
//!
//! ```no_run
//! # async fn demo() -> Result<(), collab_client::ClientError> {
//! use std::time::Instant;
//! use collab_client::{
//!     ClientEvent, ConnectOptions, Connection, Effect, JoinAs, Replica, Session,
//! };
//!
//! let join = JoinAs { room: "room".into(), user: "alice".into(), token: None };
//! let mut session = Session::new(Replica::new(), join);
//! let (conn, mut events) = Connection::open("127.0.0.1:7777", ConnectOptions::default())?;
//! loop {
//!     let due = session.poll_timeout(Instant::now());
//!     let effects = tokio::select! {
//!         event = events.recv() => match event {
//!             Some(event) => session.handle(event, Instant::now()),
//!             None => break,
//!         },
//!         _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()),
//!             if due.is_some() => session.handle_timeout(Instant::now()),
//!     };
//!     for effect in effects {
//!         match effect {
//!             Effect::Send(m) => { conn.send(m); }
//!             Effect::Event(ClientEvent::Closed { error }) => {
//!                 println!("closed: {error:?}");
//!             }
//!             Effect::Event(e) => println!("{e:?}"),
//!         }
//!     }
//!     for delta in session.take_changes() {
//!         // apply `delta` to the editor's rope
//!         # let _ = delta;
//!     }
//!     // on a keystroke: if let Ok(Some(m)) = session.edit(pos, 0, "x") { conn.send(m); }
//! }
//! # Ok(()) }
//! ```

mod client;
mod connection;
#[cfg(feature = "test-harness")]
mod harness;
mod replica;
mod session;
pub mod workspace;
mod workspace_client;

pub use client::{Client, ClientBuilder, ClientState};
pub use collab_doc::{DocError, TextChange};
pub use connection::{
    Backoff, ConnectOptions, Connection, Peek, TransportEvent, TransportEvents, V1, Wire,
    stops_reconnecting, ws_url,
};
#[cfg(feature = "test-harness")]
pub use harness::{EVENT_LOG_LEN, apply_delta};
pub use replica::{ClientEvent, Effect, Replica, SyncState};
pub use session::{JoinAs, Link, RESEND_AFTER, Session};
pub use workspace::{
    RoomKind, Workspace, WorkspaceConnection, WorkspaceError, WorkspaceWire, WsEffect, WsEvent,
};
pub use workspace_client::{WorkspaceClient, WorkspaceState};

use collab_protocol::ProtocolError;

/// What can go wrong for a [`Client`] or when opening a [`Connection`].
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ClientError {
    #[error("bad server address: {0}")]
    BadUrl(String),
    #[error("refused by the server: {0}")]
    Refused(ProtocolError),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("closed: {0}")]
    Closed(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(transparent)]
    Doc(#[from] DocError),
}
