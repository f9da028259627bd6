//! Error codes the server sends in `error` events, each with the sentence a
//! person reads. Codes are stable strings on the wire (`snake_case`); the
//! sentence may be refined with details in the event's `message`.

use serde::{Deserialize, Serialize};

/// Every error the server can report. `fatal` codes are followed by the
/// server closing the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid JSON.
    InvalidJson,
    /// The frame is a JSON object whose `type` this server does not know.
    UnknownType,
    /// A known event with a missing, extra-typed or malformed field.
    InvalidMessage,
    /// A binary WebSocket frame; collab speaks JSON text frames only.
    BinaryFrame,
    /// A frame larger than the server's frame limit.
    FrameTooLarge,
    /// The client's protocol version differs from the server's.
    VersionMismatch,
    /// Any event other than `join` before the join succeeded.
    NotJoined,
    /// A second `join` on a connection that already joined.
    AlreadyJoined,
    /// The room id breaks the naming rules.
    InvalidRoom,
    /// The user name breaks the naming rules.
    InvalidName,
    /// Someone with this name is live in the room.
    NameTaken,
    /// A session token that does not match the live session of that name.
    BadSession,
    /// The server refuses the connection without the right access token.
    Unauthorized,
    /// A direct message to a name that is not in the room.
    NoSuchUser,
    /// A chat or direct message that is empty or too long.
    InvalidText,
    /// Too many events too fast; slow down.
    RateLimited,
    /// The room has as many members as the server allows.
    RoomFull,
    /// The server has as many connections or rooms as it allows.
    ServerFull,
    /// A document update or version that cannot be decoded or merged.
    BadUpdate,
    /// The update would make the document larger than the server allows.
    DocTooLarge,
    /// This connection may read but not edit.
    ReadOnly,
    /// The server could not store the document.
    StorageFailed,
    /// The server fell behind sending to this client (its queue filled).
    SlowConsumer,
    /// Unexpected server fault; the connection stays usable.
    Internal,
}

impl ErrorCode {
    /// All codes, for documentation and tests.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidMessage,
        ErrorCode::BinaryFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::VersionMismatch,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidName,
        ErrorCode::NameTaken,
        ErrorCode::BadSession,
        ErrorCode::Unauthorized,
        ErrorCode::NoSuchUser,
        ErrorCode::InvalidText,
        ErrorCode::RateLimited,
        ErrorCode::RoomFull,
        ErrorCode::ServerFull,
        ErrorCode::BadUpdate,
        ErrorCode::DocTooLarge,
        ErrorCode::ReadOnly,
        ErrorCode::StorageFailed,
        ErrorCode::SlowConsumer,
        ErrorCode::Internal,
    ];

    /// The wire string of this code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::BinaryFrame => "binary_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::BadSession => "bad_session",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::BadUpdate => "bad_update",
            ErrorCode::DocTooLarge => "doc_too_large",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::StorageFailed => "storage_failed",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::Internal => "internal",
        }
    }

    /// The default sentence for a person, saying what to do where possible.
    pub fn sentence(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "The message is not valid JSON.",
            ErrorCode::UnknownType => "The message type is not one this server knows.",
            ErrorCode::InvalidMessage => {
                "The message is missing a field or has a field of the wrong type."
            }
            ErrorCode::BinaryFrame => "Binary frames are not accepted; send JSON as text frames.",
            ErrorCode::FrameTooLarge => "The message is larger than the server accepts.",
            ErrorCode::VersionMismatch => {
                "Client and server speak different protocol versions: upgrade the older one."
            }
            ErrorCode::NotJoined => "Join a room first: the first message must be a join.",
            ErrorCode::AlreadyJoined => {
                "This connection has already joined a room; open a new connection for another."
            }
            ErrorCode::InvalidRoom => {
                "Room ids are 1 to 64 characters: letters, digits, '-', '_' and '.'."
            }
            ErrorCode::InvalidName => {
                "User names are 1 to 32 characters: letters, digits, '-', '_' and '.'."
            }
            ErrorCode::NameTaken => {
                "Someone with that name is already in the room: pick another name with --user."
            }
            ErrorCode::BadSession => {
                "The session token does not match; join again without it or under another name."
            }
            ErrorCode::Unauthorized => {
                "The server needs an access token: pass --token or set COLLAB_TOKEN."
            }
            ErrorCode::NoSuchUser => "Nobody of that name is in the room.",
            ErrorCode::InvalidText => "Messages must be 1 to 4096 characters.",
            ErrorCode::RateLimited => "Too many messages too fast: slow down.",
            ErrorCode::RoomFull => "The room is full.",
            ErrorCode::ServerFull => {
                "The server is at its connection or room limit: try again later."
            }
            ErrorCode::BadUpdate => "The document update could not be applied; it was not shared.",
            ErrorCode::DocTooLarge => {
                "The document would exceed the server's size limit; the edit was not applied."
            }
            ErrorCode::ReadOnly => "You joined read-only: edits are not accepted.",
            ErrorCode::StorageFailed => "The server could not save the document.",
            ErrorCode::SlowConsumer => {
                "The connection fell too far behind and was closed; reconnect to resync."
            }
            ErrorCode::Internal => "The server hit an internal error.",
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        matches!(
            self,
            ErrorCode::FrameTooLarge
                | ErrorCode::VersionMismatch
                | ErrorCode::InvalidRoom
                | ErrorCode::InvalidName
                | ErrorCode::NameTaken
                | ErrorCode::BadSession
                | ErrorCode::Unauthorized
                | ErrorCode::RoomFull
                | ErrorCode::ServerFull
                | ErrorCode::SlowConsumer
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: the code and a sentence with details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The error with the code's default sentence.
    pub fn from_code(code: ErrorCode) -> Self {
        Self::new(code, code.sentence())
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!(code.sentence().ends_with('.'), "{code}");
        }
    }
}
