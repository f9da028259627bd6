//! The events: [`ClientMsg`] (client to server) and [`ServerMsg`] (server to
//! client), JSON objects tagged by `"type"` in `snake_case`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Base64Bytes, ErrorCode, PROTOCOL_VERSION, ProtocolError};

/// A member's id: unique within a server's lifetime, kept across a resumed
/// session.
pub type UserId = u64;

/// The first event on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Join {
    /// Must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    pub room: String,
    pub user: String,
    /// The session token from an earlier `welcome`, to take over that
    /// session (after a dropped connection) instead of being refused as a
    /// duplicate name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The access token, when the server requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The client's document version vector (Loro `VersionVector::encode`).
    /// Present when reconnecting with a document: the welcome then carries
    /// only what this version lacks. Absent: the welcome carries a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Base64Bytes>,
    /// Encodings this client reads in `welcome.doc` besides Loro's bytes
    /// as they are (section 5.1): `"zlib"`. Names the server does not know
    /// are ignored, so a client may list more than one server reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub doc_encodings: Vec<String>,
    /// A newcomer (no `version`) that lists `"zlib"` asks for the room's
    /// text in `welcome.text`, to show while it loads the history: a long
    /// history takes a replica many milliseconds to import (section 5.1,
    /// "The text first").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub text_first: bool,
}

impl Join {
    /// Whether this join said it reads `encoding` in `welcome.doc`.
    pub fn reads(&self, encoding: DocEncoding) -> bool {
        self.doc_encodings.iter().any(|e| e == encoding.as_str())
    }
}

/// Where a member's cursor and selection are, as Loro stable cursors
/// (`Cursor::encode`). Ephemeral: relayed, never stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    /// The caret. `null` when the member has no position yet.
    #[serde(default)]
    pub cursor: Option<Base64Bytes>,
    /// The other end of the selection; `null` when nothing is selected.
    #[serde(default)]
    pub anchor: Option<Base64Bytes>,
}

/// Any `protocol` number but the integer [`PROTOCOL_VERSION`] (negative,
/// huge, with a fraction or an exponent, even `1.0`) is another version.
fn version_mismatch(v: &serde_json::Number) -> ProtocolError {
    let as_f64 = v.as_f64();
    let message = if as_f64 == Some(f64::from(PROTOCOL_VERSION)) {
        format!(
            "\"protocol\" must be the integer {PROTOCOL_VERSION}, written without a fraction or exponent; the client sent {v}."
        )
    } else {
        let older = if as_f64.is_some_and(|f| f > f64::from(PROTOCOL_VERSION)) {
            "server"
        } else {
            "client"
        };
        format!(
            "This server speaks protocol {PROTOCOL_VERSION}, the client speaks {v}: upgrade the {older}."
        )
    };
    ProtocolError::new(ErrorCode::VersionMismatch, message)
}

/// `{"type":"leave"}` has no other field. (serde lets a unit variant of an
/// internally tagged enum through with any fields, `deny_unknown_fields`
/// or not.)
fn check_leave(text: &str) -> Result<ClientMsg, ProtocolError> {
    let obj: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap_or_default();
    match obj.keys().find(|k| *k != "type") {
        Some(k) => Err(ProtocolError::new(
            ErrorCode::InvalidMessage,
            format!("Invalid leave message: unknown field `{k}`; a leave has only \"type\"."),
        )),
        None => Ok(ClientMsg::Leave),
    }
}

/// Names what is wrong with a frame that did not parse as a [`ClientMsg`].
fn diagnose(text: &str, err: serde_json::Error) -> ProtocolError {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return ProtocolError::new(
                ErrorCode::InvalidJson,
                format!("The message is not valid JSON: {e}."),
            );
        }
    };
    let Some(obj) = value.as_object() else {
        return ProtocolError::new(
            ErrorCode::InvalidMessage,
            "The message must be a JSON object with a \"type\" field.",
        );
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => {
            return ProtocolError::new(
                ErrorCode::InvalidMessage,
                "The \"type\" field must be a string.",
            );
        }
        None => {
            return ProtocolError::new(
                ErrorCode::InvalidMessage,
                "The message has no \"type\" field.",
            );
        }
    };
    if !CLIENT_TYPES.contains(&ty) {
        return ProtocolError::new(
            ErrorCode::UnknownType,
            format!(
                "Unknown message type {ty:?}; expected one of: {}.",
                CLIENT_TYPES.join(", ")
            ),
        );
    }
    if ty == "join" {
        // Another version's join may have another shape: check the version
        // before the fields, so the answer is "upgrade", not a parse error.
        match obj.get("protocol") {
            Some(Value::Number(n)) if n.as_u64() != Some(u64::from(PROTOCOL_VERSION)) => {
                return version_mismatch(n);
            }
            Some(Value::Number(_)) => {}
            _ => {
                return ProtocolError::new(
                    ErrorCode::InvalidMessage,
                    format!(
                        "A join needs a numeric \"protocol\" field (this server speaks {PROTOCOL_VERSION})."
                    ),
                );
            }
        }
    }
    ProtocolError::new(
        ErrorCode::InvalidMessage,
        format!("Invalid {ty} message: {err}."),
    )
}

/// Declares an event enum and the wire `type` of each variant once: the
/// enum (each variant renamed to its wire string, which serde uses), the
/// list of every wire type (`$TYPES`, for error messages, docs and tests)
/// and `wire_type`, all from the one table, so a new event cannot be
/// missing from the list.
macro_rules! events {
    (
        $(#[$meta:meta])*
        pub enum $Enum:ident, all in $TYPES:ident {
            $(
                $(#[$vmeta:meta])*
                $wire:literal => $Variant:ident $(($($tuple:tt)*))? $({$($fields:tt)*})?,
            )*
        }
    ) => {
        $(#[$meta])*
        pub enum $Enum {
            $(
                $(#[$vmeta])*
                #[serde(rename = $wire)]
                $Variant $(($($tuple)*))? $({$($fields)*})?,
            )*
        }

        #[doc = concat!("The wire `type` of every [`", stringify!($Enum), "`], in declaration order.")]
        pub const $TYPES: [&str; [$($wire),*].len()] = [$($wire),*];

        impl $Enum {
            /// This event's wire `type`.
            pub fn wire_type(&self) -> &'static str {
                match self {
                    $($Enum::$Variant { .. } => $wire,)*
                }
            }
        }
    };
}

events! {
    /// Everything a client may send.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", deny_unknown_fields)]
    pub enum ClientMsg, all in CLIENT_TYPES {
        "join" => Join(Join),
        /// A message to the whole room.
        "chat" => Chat { text: String },
        /// A message to one member, by name.
        "direct" => Direct { to: String, text: String },
        /// My cursor moved or my selection changed.
        "presence" => Presence(Presence),
        /// A Loro update (`export(ExportMode::updates(..))`) of my local edits.
        /// `seq` is mine to choose (increasing); the server answers `ack` with it.
        "update" => Update { seq: u64, data: Base64Bytes },
        /// Put this text in the room's document if, and only if, it is empty.
        "seed" => Seed { text: String },
        /// Leave the room; the server answers by closing the connection.
        "leave" => Leave,
    }
}

impl ClientMsg {
    /// Parses one text frame, naming what is wrong when it is not a valid
    /// event: not JSON, no or unknown `type`, wrong fields, or a `join` from
    /// another protocol version (checked before the other fields, so an
    /// older or newer client gets "upgrade", not a parse error).
    pub fn from_json(text: &str) -> Result<ClientMsg, ProtocolError> {
        // Fastest path: a keystroke's `update`, read without serde's
        // buffering of tagged enums (see `hot.rs`).
        if let Some((seq, data)) = crate::hot::read_update(text) {
            return Ok(ClientMsg::Update { seq, data });
        }
        // Fast path: a well-formed event parses once. Only a failure pays
        // for the second look that names the problem.
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Join(j)) if j.protocol != PROTOCOL_VERSION => {
                Err(version_mismatch(&j.protocol.into()))
            }
            Ok(ClientMsg::Leave) => check_leave(text),
            Ok(m) => Ok(m),
            Err(e) => Err(diagnose(text, e)),
        }
    }

    /// The JSON text of this event.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("ClientMsg always serializes"))
    }

    /// The `seq` of a frame that is an `update` object whose `seq` is a
    /// whole number in 0..2^64, however else it is wrong: the server
    /// answers every such frame with its seq, so a client waiting for that
    /// answer never waits forever.
    pub fn readable_seq(text: &str) -> Option<u64> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "type")]
            ty: Option<String>,
            seq: Option<Value>,
        }
        let p: Probe = serde_json::from_str(text).ok()?;
        if p.ty.as_deref() != Some("update") {
            return None;
        }
        p.seq?.as_u64()
    }
}

/// A room member as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: UserId,
    pub name: String,
    /// The member's colour, `#rrggbb`.
    pub color: String,
    /// Joined with a read-only token: can follow and chat, not edit.
    #[serde(default)]
    pub read_only: bool,
}

/// Who sent a chat or direct message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    pub id: UserId,
    pub name: String,
}

/// What the `doc` of a `welcome` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// The whole document (Loro `ExportMode::Snapshot`): load it into a
    /// fresh document.
    Snapshot,
    /// The updates since the `version` the join carried (Loro
    /// `ExportMode::updates`): import them into the document you kept.
    Updates,
}

/// How `welcome.doc` (its `doc_part`s joined) is encoded, when it is not
/// Loro's bytes as they are: only ever one the join listed in
/// `doc_encodings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocEncoding {
    /// One zlib stream (RFC 1950) of the Loro bytes.
    Zlib,
}

impl DocEncoding {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DocEncoding::Zlib => "zlib",
        }
    }
}

/// The answer to a successful `join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    /// You, as the others see you.
    pub you: Member,
    /// Everyone in the room, you included, in order of joining.
    pub members: Vec<Member>,
    /// Present this in a later `join` (as `session`) to take over this
    /// session after a dropped connection.
    pub session: String,
    /// The Loro peer id this session authors its edits under (below 2^53,
    /// so every JSON reader holds it exactly). New changes under a peer id
    /// the server gave another session are refused (`bad_update`).
    pub peer: u64,
    /// True when this join took over a live session (no `left`/`joined`
    /// was sent to the others).
    pub resumed: bool,
    pub doc_kind: DocKind,
    /// See [`DocKind`]. Empty when the document comes in `doc_parts`.
    pub doc: Base64Bytes,
    /// Absent: `doc` (its parts joined) is Loro's bytes. `"zlib"`: one
    /// zlib stream of them, sent only to a join that listed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_encoding: Option<DocEncoding>,
    /// How many `doc_part` events follow the welcome, at once and before
    /// any other event: a document too big for one message is cut into
    /// parts; their bytes, joined in order, are the document.
    #[serde(default)]
    pub doc_parts: u32,
    /// How many `update` events (`from` 0) follow the welcome (after its
    /// `doc_part`s), at once and before any other event, and belong to it:
    /// the room's changes after the snapshot in `doc`. Import them too
    /// before treating the welcome as the room.
    #[serde(default)]
    pub doc_updates: u32,
    /// The room's text, one zlib stream of its UTF-8, for a join that
    /// asked (`text_first`) and a room with text whose stream fits in one
    /// message. It may be older than the document (a view kept since the
    /// room's last compaction): show it until the document is loaded, then
    /// show the document's text. Never edit it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Base64Bytes>,
    /// The room document's version vector on the server: export what the
    /// server lacks (`ExportMode::updates(version)`) and send it as an
    /// `update`.
    pub version: Base64Bytes,
    /// Limits this server enforces.
    pub limits: Limits,
}

/// Limits announced in the welcome, so a client can check before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest text frame, bytes.
    pub max_frame_bytes: usize,
    /// Largest document, bytes of UTF-8 text.
    pub max_doc_bytes: usize,
    /// Sustained events per second allowed per connection.
    pub messages_per_second: u32,
    /// Burst size of the rate limit.
    pub burst: u32,
}

/// Why a member left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// They sent `leave` or closed the connection.
    Left,
    /// Their connection dropped or stopped answering pings.
    Disconnected,
    /// The server closed their connection (abuse, slow consumer).
    Removed,
}

events! {
    /// Everything the server sends.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type")]
    pub enum ServerMsg, all in SERVER_TYPES {
        "welcome" => Welcome(Box<Welcome>),
        /// The next part of the welcome's document (see [`Welcome::doc_parts`]).
        "doc_part" => DocPart { data: Base64Bytes },
        /// Someone joined the room.
        "joined" => Joined { member: Member },
        /// A member's details changed: today its `read_only`, when it took
        /// over its session with another role's token. Sent to everyone else
        /// in the room; replace the member with this id in your list.
        "member" => Member { member: Member },
        /// Someone left the room. Sent exactly once per departure.
        "left" => Left {
            id: UserId,
            name: String,
            reason: LeftReason,
        },
        /// A room message. `time` is the server's clock, milliseconds since the
        /// Unix epoch. The sender receives their own message too.
        "chat" => Chat {
            from: MemberRef,
            text: String,
            time: u64,
        },
        /// A direct message; sent to the recipient and echoed to the sender.
        "direct" => Direct {
            from: MemberRef,
            to: String,
            text: String,
            time: u64,
        },
        /// A member's cursor or selection moved.
        "presence" => Presence {
            id: UserId,
            #[serde(flatten)]
            presence: Presence,
        },
        /// Another member's edits (or a seed): import `data` into your document.
        "update" => Update { from: UserId, data: Base64Bytes },
        /// Your `update` with this `seq` was merged into the room's document
        /// and sent to the others.
        "ack" => Ack { seq: u64 },
        /// The answer to `seed`: `applied` is false when the room's document was
        /// not empty (nothing changed).
        "seeded" => Seeded { applied: bool },
        /// Something you sent was refused, or the connection is about to close.
        "error" => Error {
            code: ErrorCode,
            message: String,
            /// The `seq` of the refused `update`, if it was one.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            seq: Option<u64>,
        },
        /// The server is stopping; the connection closes next. Reconnect later.
        "shutdown" => Shutdown { message: String },
    }
}

impl ServerMsg {
    /// The JSON text of this event.
    pub fn to_json(&self) -> String {
        match self {
            // The relay path's events, written directly (see `hot.rs`).
            ServerMsg::Update { from, data } => crate::hot::write_update(*from, data.as_slice()),
            ServerMsg::Ack { seq } => crate::hot::write_ack(*seq),
            _ => serde_json::to_string(self)
                .unwrap_or_else(|_| unreachable!("ServerMsg always serializes")),
        }
    }

    /// The JSON text of `ServerMsg::Update { from, data }`, from borrowed
    /// bytes (the relay serializes each update once, before the room is
    /// locked, and keeps the bytes for the document).
    pub fn update_json(from: UserId, data: &[u8]) -> String {
        crate::hot::write_update(from, data)
    }

    /// Parses a server event (for clients).
    pub fn from_json(text: &str) -> Result<ServerMsg, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// An error event with the code's default sentence.
    pub fn error(code: ErrorCode) -> Self {
        Self::from(ProtocolError::from_code(code))
    }
}

impl From<ProtocolError> for ServerMsg {
    fn from(e: ProtocolError) -> Self {
        ServerMsg::Error {
            code: e.code,
            message: e.message,
            seq: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> ErrorCode {
        ClientMsg::from_json(text).unwrap_err().code
    }

    #[test]
    fn parses_a_join() {
        let m = ClientMsg::from_json(r#"{"type":"join","protocol":1,"room":"abc","user":"alice"}"#)
            .unwrap();
        assert_eq!(
            m,
            ClientMsg::Join(Join {
                protocol: 1,
                room: "abc".into(),
                user: "alice".into(),
                session: None,
                token: None,
                version: None,
                doc_encodings: Vec::new(),
                text_first: false,
            })
        );
    }

    #[test]
    fn a_join_lists_the_encodings_it_reads_and_unknown_names_pass() {
        let m = ClientMsg::from_json(
            r#"{"type":"join","protocol":1,"room":"abc","user":"alice","doc_encodings":["zstd","zlib"]}"#,
        )
        .unwrap();
        let ClientMsg::Join(j) = m else {
            panic!("{m:?}")
        };
        assert!(j.reads(DocEncoding::Zlib));
        let m = ClientMsg::from_json(r#"{"type":"join","protocol":1,"room":"abc","user":"alice"}"#)
            .unwrap();
        let ClientMsg::Join(j) = m else {
            panic!("{m:?}")
        };
        assert!(!j.reads(DocEncoding::Zlib));
        assert!(!j.text_first, "asked for only when said");
        let m = ClientMsg::from_json(
            r#"{"type":"join","protocol":1,"room":"abc","user":"alice","doc_encodings":["zlib"],"text_first":true}"#,
        )
        .unwrap();
        let ClientMsg::Join(j) = m else {
            panic!("{m:?}")
        };
        assert!(j.text_first);
    }

    #[test]
    fn names_each_kind_of_bad_input() {
        assert_eq!(code_of("{not json"), ErrorCode::InvalidJson);
        assert_eq!(code_of("[1,2]"), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"text":"hi"}"#), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"type":7}"#), ErrorCode::InvalidMessage);
        assert_eq!(code_of(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(code_of(r#"{"type":"chat"}"#), ErrorCode::InvalidMessage);
        assert_eq!(
            code_of(r#"{"type":"chat","text":5}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code_of(r#"{"type":"update","seq":1,"data":"%%%"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code_of(r#"{"type":"join","protocol":2,"room":"a","user":"b"}"#),
            ErrorCode::VersionMismatch
        );
        assert_eq!(
            code_of(r#"{"type":"join","protocol":0,"hello":"old shape"}"#),
            ErrorCode::VersionMismatch
        );
        assert_eq!(
            code_of(r#"{"type":"join","room":"a","user":"b"}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn version_mismatch_says_what_to_upgrade() {
        let e = ClientMsg::from_json(r#"{"type":"join","protocol":2,"room":"a","user":"b"}"#)
            .unwrap_err();
        assert!(e.message.contains("upgrade the server"), "{}", e.message);
        let e = ClientMsg::from_json(r#"{"type":"join","protocol":0,"room":"a","user":"b"}"#)
            .unwrap_err();
        assert!(e.message.contains("upgrade the client"), "{}", e.message);
    }

    #[test]
    fn unknown_type_message_lists_known_types() {
        let e = ClientMsg::from_json(r#"{"type":"dance"}"#).unwrap_err();
        assert!(e.message.contains("\"dance\""));
        assert!(e.message.contains("join"));
    }

    #[test]
    fn every_client_type_is_listed() {
        let samples = [
            ClientMsg::Leave,
            ClientMsg::Chat { text: "x".into() },
            ClientMsg::Seed { text: "x".into() },
        ];
        for m in samples {
            let v: Value = serde_json::from_str(&m.to_json()).unwrap();
            assert!(CLIENT_TYPES.contains(&v["type"].as_str().unwrap()));
            assert_eq!(v["type"], m.wire_type());
            assert_eq!(ClientMsg::from_json(&m.to_json()).unwrap(), m);
        }
    }

    /// An exhaustive match written apart from the `events!` table: a new
    /// server event does not compile until it is here too, and the table's
    /// wire types must agree with it and with serde (the docs test checks
    /// [`SERVER_TYPES`] for examples).
    #[test]
    fn every_server_type_is_listed() {
        fn wire_type(m: &ServerMsg) -> &'static str {
            match m {
                ServerMsg::Welcome(_) => "welcome",
                ServerMsg::DocPart { .. } => "doc_part",
                ServerMsg::Joined { .. } => "joined",
                ServerMsg::Member { .. } => "member",
                ServerMsg::Left { .. } => "left",
                ServerMsg::Chat { .. } => "chat",
                ServerMsg::Direct { .. } => "direct",
                ServerMsg::Presence { .. } => "presence",
                ServerMsg::Update { .. } => "update",
                ServerMsg::Ack { .. } => "ack",
                ServerMsg::Seeded { .. } => "seeded",
                ServerMsg::Error { .. } => "error",
                ServerMsg::Shutdown { .. } => "shutdown",
            }
        }
        let member = Member {
            id: 1,
            name: "a".into(),
            color: "#000000".into(),
            read_only: true,
        };
        let m = ServerMsg::Member { member };
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(v["type"], wire_type(&m));
        assert_eq!(m.wire_type(), wire_type(&m));
        assert!(SERVER_TYPES.contains(&wire_type(&m)));
        assert_eq!(SERVER_TYPES.len(), 13);
    }

    #[test]
    fn leave_refuses_unknown_fields() {
        assert_eq!(
            ClientMsg::from_json(r#"{"type":"leave"}"#).unwrap(),
            ClientMsg::Leave
        );
        assert_eq!(
            code_of(r#"{"type":"leave","x":1}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn any_other_protocol_number_is_a_version_mismatch() {
        for p in [
            "-1",
            "-9223372036854775808",
            "1e30",
            "1.0",
            "1e0",
            "2",
            "4294967297",
        ] {
            let text = format!(r#"{{"type":"join","protocol":{p},"room":"a","user":"b"}}"#);
            assert_eq!(code_of(&text), ErrorCode::VersionMismatch, "{p}");
        }
        let e = ClientMsg::from_json(r#"{"type":"join","protocol":1.0}"#).unwrap_err();
        assert!(e.message.contains("integer 1"), "{}", e.message);
        assert_eq!(
            code_of(r#"{"type":"join","protocol":"1","room":"a","user":"b"}"#),
            ErrorCode::InvalidMessage
        );
    }

    #[test]
    fn a_readable_seq_is_found_in_a_broken_update() {
        let seq = ClientMsg::readable_seq;
        assert_eq!(seq(r#"{"type":"update","seq":4,"data":"%%"}"#), Some(4));
        assert_eq!(seq(r#"{"seq":4,"type":"update","x":[1]}"#), Some(4));
        assert_eq!(seq(r#"{"type":"update","seq":-4}"#), None);
        assert_eq!(seq(r#"{"type":"update","seq":"4"}"#), None);
        assert_eq!(seq(r#"{"type":"chat","seq":4}"#), None);
        assert_eq!(seq(r#"[4]"#), None);
    }

    #[test]
    fn server_presence_is_flat() {
        let m = ServerMsg::Presence {
            id: 3,
            presence: Presence {
                cursor: Some(Base64Bytes(vec![1])),
                anchor: None,
            },
        };
        assert_eq!(
            m.to_json(),
            r#"{"type":"presence","id":3,"cursor":"AQ==","anchor":null}"#
        );
        assert_eq!(ServerMsg::from_json(&m.to_json()).unwrap(), m);
    }
}
