//! Error codes the server sends in `error` events, each with the sentence a
//! person reads. Codes are stable strings on the wire (`snake_case`); the
//! sentence may be refined with details in the event's `message`.

use serde::{Deserialize, Serialize};

/// Whether the server closes the connection after sending an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The connection goes on.
    Stays,
    /// The server closes the connection.
    Fatal,
}

/// Declares every error code once: its doc, its wire string (which serde
/// uses too), whether it is fatal and its sentence. `ALL`, `as_str`,
/// `sentence` and `is_fatal` come from the one table, so a new code cannot
/// be missed by them (nor by the server's metrics, which count by `ALL`).
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $name:ident = $wire:literal, $after:ident, $sentence:expr;)*) => {
        /// Every error the server can report. `fatal` codes are followed by the
        /// server closing the connection.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $wire)] $name,)*
        }

        impl ErrorCode {
            /// All codes, for documentation, tests and the server's metrics.
            pub const ALL: [ErrorCode; [$(ErrorCode::$name),*].len()] = [$(ErrorCode::$name),*];

            /// The wire string of this code.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $wire,)*
                }
            }

            /// The default sentence for a person, saying what to do where possible.
            pub fn sentence(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $sentence,)*
                }
            }

            /// Whether the server closes the connection after sending this error.
            pub fn is_fatal(self) -> bool {
                let after = match self {
                    $(ErrorCode::$name => After::$after,)*
                };
                after == After::Fatal
            }
        }
    };
}

error_codes! {
    /// The frame is not valid JSON.
    InvalidJson = "invalid_json", Stays,
        "The message is not valid JSON.";
    /// The frame is a JSON object whose `type` this server does not know.
    UnknownType = "unknown_type", Stays,
        "The message type is not one this server knows.";
    /// A known event with a missing, extra-typed or malformed field.
    InvalidMessage = "invalid_message", Stays,
        "The message is missing a field or has a field of the wrong type.";
    /// A binary WebSocket frame; collab speaks JSON text frames only.
    BinaryFrame = "binary_frame", Stays,
        "Binary frames are not accepted; send JSON as text frames.";
    /// A frame larger than the server's frame limit.
    FrameTooLarge = "frame_too_large", Fatal,
        "The message is larger than the server accepts.";
    /// The client's protocol version differs from the server's.
    VersionMismatch = "version_mismatch", Fatal,
        "Client and server speak different protocol versions: upgrade the older one.";
    /// Any event other than `join` before the join succeeded.
    NotJoined = "not_joined", Stays,
        "Join a room first: the first message must be a join.";
    /// A second `join` on a connection that already joined.
    AlreadyJoined = "already_joined", Stays,
        "This connection has already joined a room; open a new connection for another.";
    /// The room id breaks the naming rules.
    InvalidRoom = "invalid_room", Fatal,
        "Room ids are 1 to 64 characters: letters, digits, '-', '_' and '.'.";
    /// The user name breaks the naming rules.
    InvalidName = "invalid_name", Fatal,
        "User names are 1 to 32 characters: letters, digits, '-', '_' and '.'.";
    /// Someone with this name is live in the room.
    NameTaken = "name_taken", Fatal,
        "Someone with that name is already in the room: pick another name with --user.";
    /// A session token that does not match the live session of that name.
    BadSession = "bad_session", Fatal,
        "The session token does not match; join again without it or under another name.";
    /// The server refuses the connection without the right access token.
    Unauthorized = "unauthorized", Fatal,
        "The server needs an access token: pass --token or set COLLAB_TOKEN.";
    /// A direct message to a name that is not in the room.
    NoSuchUser = "no_such_user", Stays,
        "Nobody of that name is in the room.";
    /// A chat or direct message that is empty or too long.
    InvalidText = "invalid_text", Stays,
        "Messages must be 1 to 4096 characters.";
    /// Too many events too fast; slow down.
    RateLimited = "rate_limited", Stays,
        "Too many messages too fast: slow down.";
    /// The room has as many members as the server allows.
    RoomFull = "room_full", Fatal,
        "The room is full.";
    /// The server has as many connections or rooms as it allows.
    ServerFull = "server_full", Fatal,
        "The server is at its connection or room limit: try again later.";
    /// A document update or version that cannot be decoded or merged.
    BadUpdate = "bad_update", Stays,
        "The document update could not be applied; it was not shared.";
    /// The update would make the document larger than the server allows.
    DocTooLarge = "doc_too_large", Stays,
        "The document would exceed the server's size limit; the edit was not applied.";
    /// The update builds on history the room trimmed to bound its size
    /// (docs/protocol.md, "Trimmed history"): it was not applied, and the
    /// edits it carries cannot be; the client loads the room again.
    HistoryTrimmed = "history_trimmed", Stays,
        "The edit builds on history the room no longer keeps (you were away too long); it was not applied: reload the room.";
    /// This connection may read but not edit.
    ReadOnly = "read_only", Stays,
        "You joined read-only: edits are not accepted.";
    /// The server could not store the document.
    StorageFailed = "storage_failed", Stays,
        "The server could not save the document.";
    /// The server fell behind sending to this client (its queue filled).
    SlowConsumer = "slow_consumer", Fatal,
        "The connection fell too far behind and was closed; reconnect to resync.";
    /// Unexpected server fault; the connection stays usable.
    Internal = "internal", Stays,
        "The server hit an internal error.";
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
