//! The collab client library: everything a program needs to take part in a
//! room, from the terminal editor to a test bot.
//!
//! - [`Replica`]: the sans-IO sync state (document, undo of my own edits,
//!   session token, unacked updates). Synchronous, no tokio: feed it server
//!   events with [`Replica::handle`], carry out the [`Effect`]s, and send
//!   what its editing methods return.
//! - [`Connection`]: the async WebSocket transport. It reports
//!   [`TransportEvent`]s and reconnects with exponential [`Backoff`] until
//!   closed or refused for good.
//! - [`Client`]: the two glued together in a background task, with waits
//!   (`wait_for`, `wait_synced`) that make tests pleasant.
//!
//! # Driving a replica (what the editor does)
//!
//! ```no_run
//! # async fn demo() -> Result<(), collab_client::ClientError> {
//! use collab_client::{ConnectOptions, Connection, Effect, Replica, TransportEvent};
//!
//! let mut replica = Replica::new();
//! let (conn, mut events) = Connection::open("127.0.0.1:7777", ConnectOptions::default())?;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         TransportEvent::Connected => {
//!             conn.send(replica.join_msg("room", "alice", None));
//!         }
//!         TransportEvent::Message(msg) => {
//!             for effect in replica.handle(msg) {
//!                 match effect {
//!                     Effect::Send(m) => { conn.send(m); }
//!                     Effect::Event(e) => println!("{e:?}"),
//!                 }
//!             }
//!             for delta in replica.take_changes() {
//!                 // apply `delta` to the editor's rope
//!                 # let _ = delta;
//!             }
//!         }
//!         TransportEvent::Disconnected { reason, retry_in } => {
//!             replica.on_disconnect();
//!             println!("offline ({reason}), {} unsent edits, retry in {retry_in:?}",
//!                 replica.unsent_edits());
//!         }
//!         TransportEvent::Closed { error } => { println!("closed: {error:?}"); break; }
//!     }
//!     // on a keystroke: if let Ok(Some(m)) = replica.edit(pos, 0, "x") { conn.send(m); }
//! }
//! # Ok(()) }
//! ```

mod client;
mod connection;
mod replica;

pub use client::{Client, ClientBuilder, ClientState, EVENT_LOG_LEN, apply_delta};
pub use collab_doc::{DocError, TextChange};
pub use connection::{
    Backoff, ConnectOptions, Connection, TransportEvent, TransportEvents, stops_reconnecting,
    ws_url,
};
pub use replica::{ClientEvent, Effect, Replica, SyncState};

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
