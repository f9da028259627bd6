//! The wire contract between collab clients and the collab server.
//!
//! Every event that crosses a WebSocket is one JSON text frame, an object
//! tagged by its `"type"` field. [`ClientMsg`] is what a client may send,
//! [`ServerMsg`] what the server sends back. This crate is serde only (no
//! async runtime) so that any client, the terminal editor, a bot or a test,
//! can depend on it. `docs/protocol.md` is the same contract in prose and is
//! checked against these types by `tests/wire_format.rs`.

mod bytes;
mod error;
mod hot;
mod ids;
mod message;
pub mod workspace;

pub use bytes::Base64Bytes;
pub use error::{ErrorCode, ProtocolError};
pub use ids::{
    IdError, MAX_ROOM_ID_CHARS, MAX_USER_NAME_CHARS, RoomId, UserName, validate_chat_text,
};
pub use message::{
    CLIENT_TYPES, ClientMsg, DocEncoding, DocKind, Join, LeftReason, Limits, Member, MemberRef,
    Presence, SERVER_TYPES, ServerMsg, UserId, Welcome,
};

/// The protocol version this crate speaks. A `join` that carries another
/// version is refused with [`ErrorCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The path the server serves the WebSocket on.
pub const WS_PATH: &str = "/ws";

/// The longest chat or direct message, in Unicode scalar values.
pub const MAX_CHAT_CHARS: usize = 4096;
