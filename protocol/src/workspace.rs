//! The workspace extension (protocol 2): a room that holds a tree of files,
//! each its own document (`docs/protocol.md`, section 11, and
//! `docs/workspace.md` for the design).
//!
//! Version 1 stays as it is, byte for byte: [`crate::ClientMsg`] and
//! [`crate::ServerMsg`] are not changed by this module. A workspace
//! connection (one whose `join` says `"protocol":2`) speaks the same events
//! plus:
//!
//! - a `doc_id` on `update` and `presence` (both ways), `ack`, `welcome`,
//!   `seeded` and `error`, naming the document the event is about; absent
//!   means the room's main document, the one version 1 knows, so an event
//!   without it means what it means in version 1 ([`DocId`]);
//! - `open` and `close` (a member loads only the files it opens) and the
//!   server's `opened`, which carries an opened file's document as a
//!   `welcome` carries the room's;
//! - `seed_tree`, which shares a folder into an empty room.
//!
//! The `doc_id` rides in an envelope ([`Addressed`]) around the version 1
//! events rather than in their Rust types, so this extension changed none
//! of the code that builds or matches them. On the wire it is one more
//! field of the event's object; [`ClientEvent::from_json`] reads it and
//! checks that the event may carry it.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{
    Base64Bytes, CLIENT_TYPES, ClientMsg, DocKind, ErrorCode, Join, PROTOCOL_VERSION,
    ProtocolError, ServerMsg, Welcome,
};

/// The protocol version of a workspace connection.
pub const WORKSPACE_PROTOCOL_VERSION: u32 = 2;

/// The wire `type` of the events a workspace connection adds, client to
/// server.
pub const WORKSPACE_CLIENT_TYPES: [&str; 3] = ["open", "close", "seed_tree"];

/// The wire `type` of the events a workspace connection adds, server to
/// client.
pub const WORKSPACE_SERVER_TYPES: [&str; 1] = ["opened"];

/// The version 1 events that may carry a `doc_id`, client to server.
pub const ADDRESSED_CLIENT_TYPES: [&str; 2] = ["update", "presence"];

/// The version 1 events that may carry a `doc_id`, server to client.
pub const ADDRESSED_SERVER_TYPES: [&str; 6] =
    ["welcome", "update", "ack", "presence", "seeded", "error"];

/// The key of the document id in an event's object.
const DOC_ID: &str = "doc_id";

/// Which document of a room an event is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DocId {
    /// The room's main document: the one text of a version 1 room. Written
    /// by leaving `doc_id` out (`"main"` is read too).
    #[default]
    Main,
    /// A workspace's file tree, `"tree"`.
    Tree,
    /// A file's text, named by its tree node's id, `"COUNTER@PEER"`
    /// (decimal; the counter below 2^31): the id stays when the file is
    /// renamed or moved.
    File { counter: u32, peer: u64 },
}

impl DocId {
    pub fn is_main(&self) -> bool {
        *self == DocId::Main
    }

    /// Reads `"main"`, `"tree"` or `"COUNTER@PEER"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "main" => return Some(DocId::Main),
            "tree" => return Some(DocId::Tree),
            _ => {}
        }
        let (counter, peer) = s.split_once('@')?;
        let digits =
            |t: &str| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(counter) || !digits(peer) {
            return None;
        }
        let counter: u32 = counter.parse().ok()?;
        if i32::try_from(counter).is_err() {
            return None;
        }
        Some(DocId::File {
            counter,
            peer: peer.parse().ok()?,
        })
    }
}

impl std::fmt::Display for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocId::Main => f.write_str("main"),
            DocId::Tree => f.write_str("tree"),
            DocId::File { counter, peer } => write!(f, "{counter}@{peer}"),
        }
    }
}

impl Serialize for DocId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DocId::parse(&s).ok_or_else(|| {
            D::Error::custom(format!(
                "{:?} is no document id: \"main\", \"tree\" or \"COUNTER@PEER\"",
                s.chars().take(64).collect::<String>()
            ))
        })
    }
}

/// A version 1 event about one document of the room.
#[derive(Debug, Clone, PartialEq)]
pub struct Addressed<M> {
    pub doc: DocId,
    pub msg: M,
}

/// What a client may send on a workspace connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// A version 1 event (a `join` with protocol 1 or 2); `update` and
    /// `presence` may name another document than the main one.
    V1(Addressed<ClientMsg>),
    /// Load a file's document: answered with `opened`, after which the
    /// file's updates and presence reach this member.
    Open {
        doc: DocId,
        /// The version of the document kept from before (a rejoin): the
        /// answer then carries only what it lacks.
        version: Option<Base64Bytes>,
    },
    /// Stop receiving a file's updates and presence.
    Close { doc: DocId },
    /// Put this tree update into the room if, and only if, the room is
    /// empty (no text, no tree) and every member speaks protocol 2.
    SeedTree { data: Base64Bytes },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenFields {
    doc_id: DocId,
    #[serde(default)]
    version: Option<Base64Bytes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseFields {
    doc_id: DocId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedTreeFields {
    data: Base64Bytes,
}

/// A keystroke's update in the one shape a workspace client sends it, read
/// without building a JSON tree (see `hot.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: &'a str,
    #[serde(default)]
    doc_id: DocId,
    seq: u64,
    data: Base64Bytes,
}

fn invalid(ty: &str, why: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::InvalidMessage,
        format!("Invalid {ty} message: {why}."),
    )
}

/// A join's `protocol` that neither version accepts.
fn version_mismatch(v: &serde_json::Number) -> ProtocolError {
    let newer = v
        .as_f64()
        .is_some_and(|f| f > f64::from(WORKSPACE_PROTOCOL_VERSION));
    let older = if newer { "server" } else { "client" };
    ProtocolError::new(
        ErrorCode::VersionMismatch,
        format!(
            "This server speaks protocols {PROTOCOL_VERSION} and {WORKSPACE_PROTOCOL_VERSION}, the client speaks {v}: upgrade the {older}."
        ),
    )
}

impl ClientEvent {
    /// Parses one text frame of a workspace connection (or of a connection
    /// not joined yet, whose `join` may say protocol 1 or 2), naming what is
    /// wrong when it is not a valid event.
    pub fn from_json(text: &str) -> Result<ClientEvent, ProtocolError> {
        // A keystroke: one pass, no JSON tree.
        if let Ok(f) = serde_json::from_str::<UpdateFrame<'_>>(text)
            && f.ty == "update"
        {
            return Ok(ClientEvent::V1(Addressed {
                doc: f.doc_id,
                msg: ClientMsg::Update {
                    seq: f.seq,
                    data: f.data,
                },
            }));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ProtocolError::new(
                ErrorCode::InvalidJson,
                format!("The message is not valid JSON: {e}."),
            )
        })?;
        let Value::Object(mut obj) = value else {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                "The message must be a JSON object with a \"type\" field.",
            ));
        };
        let ty = match obj.get("type") {
            Some(Value::String(t)) => t.clone(),
            // Version 1 names these.
            _ => return ClientMsg::from_json(text).map(unaddressed),
        };
        match ty.as_str() {
            "open" => {
                let f: OpenFields = fields(&ty, obj)?;
                Ok(ClientEvent::Open {
                    doc: file_only(&ty, f.doc_id)?,
                    version: f.version,
                })
            }
            "close" => {
                let f: CloseFields = fields(&ty, obj)?;
                Ok(ClientEvent::Close {
                    doc: file_only(&ty, f.doc_id)?,
                })
            }
            "seed_tree" => {
                let f: SeedTreeFields = fields(&ty, obj)?;
                Ok(ClientEvent::SeedTree { data: f.data })
            }
            "join" => parse_join(obj),
            t if !CLIENT_TYPES.contains(&t) => Err(ProtocolError::new(
                ErrorCode::UnknownType,
                format!(
                    "Unknown message type {t:?}; expected one of: {}, {}.",
                    CLIENT_TYPES.join(", "),
                    WORKSPACE_CLIENT_TYPES.join(", ")
                ),
            )),
            t => {
                let doc = match obj.remove(DOC_ID) {
                    None => DocId::Main,
                    Some(_) if !ADDRESSED_CLIENT_TYPES.contains(&t) => {
                        return Err(invalid(
                            t,
                            format!("a {t} is about the room, it has no \"doc_id\""),
                        ));
                    }
                    Some(v) => serde_json::from_value(v).map_err(|e| invalid(t, e))?,
                };
                let rest = Value::Object(obj).to_string();
                let msg = ClientMsg::from_json(&rest)?;
                Ok(ClientEvent::V1(Addressed { doc, msg }))
            }
        }
    }

    /// The JSON text of this event.
    pub fn to_json(&self) -> String {
        match self {
            ClientEvent::V1(Addressed { doc, msg }) => with_doc_id(msg.to_json(), *doc),
            ClientEvent::Open { doc, version } => {
                let mut obj = Map::new();
                obj.insert("type".into(), "open".into());
                obj.insert(DOC_ID.into(), doc.to_string().into());
                if let Some(v) = version {
                    obj.insert("version".into(), json_of(v));
                }
                Value::Object(obj).to_string()
            }
            ClientEvent::Close { doc } => {
                format!("{{\"type\":\"close\",\"doc_id\":\"{doc}\"}}")
            }
            ClientEvent::SeedTree { data } => {
                format!("{{\"type\":\"seed_tree\",\"data\":{}}}", json_of(data))
            }
        }
    }
}

fn unaddressed(msg: ClientMsg) -> ClientEvent {
    ClientEvent::V1(Addressed {
        doc: DocId::Main,
        msg,
    })
}

fn json_of(bytes: &Base64Bytes) -> Value {
    serde_json::to_value(bytes).unwrap_or(Value::Null)
}

fn fields<T: serde::de::DeserializeOwned>(
    ty: &str,
    mut obj: Map<String, Value>,
) -> Result<T, ProtocolError> {
    obj.remove("type");
    serde_json::from_value(Value::Object(obj)).map_err(|e| invalid(ty, e))
}

/// `open` and `close` name a file: the main document and the tree come
/// with the welcome and stay open.
fn file_only(ty: &str, doc: DocId) -> Result<DocId, ProtocolError> {
    match doc {
        DocId::File { .. } => Ok(doc),
        _ => Err(invalid(
            ty,
            format!("\"doc_id\" must name a file (COUNTER@PEER); {doc} is always open"),
        )),
    }
}

/// A join of either version; other numbers get `version_mismatch` before
/// any other field is looked at, as in version 1.
fn parse_join(obj: Map<String, Value>) -> Result<ClientEvent, ProtocolError> {
    match obj.get("protocol") {
        Some(Value::Number(n))
            if n.as_u64() == Some(u64::from(PROTOCOL_VERSION))
                || n.as_u64() == Some(u64::from(WORKSPACE_PROTOCOL_VERSION)) => {}
        Some(Value::Number(n)) => return Err(version_mismatch(n)),
        _ => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidMessage,
                format!(
                    "A join needs a numeric \"protocol\" field (this server speaks {PROTOCOL_VERSION} and {WORKSPACE_PROTOCOL_VERSION})."
                ),
            ));
        }
    }
    let join: Join = fields("join", obj)?;
    Ok(unaddressed(ClientMsg::Join(join)))
}

/// `json` (an event's object, `{"type":"...",...}`) with `"doc_id"` put
/// right after its type; unchanged for the main document. A server
/// addresses an event it serialized once (a relayed update) this way.
pub fn with_doc_id(json: String, doc: DocId) -> String {
    if doc.is_main() {
        return json;
    }
    // Every event serializes its tag first, and no type name holds a
    // quote: the type's value ends at the second quote after the colon.
    let head = "{\"type\":\"";
    let Some(rest) = json.strip_prefix(head) else {
        return json;
    };
    let Some(end) = rest.find('"') else {
        return json;
    };
    let at = head.len() + end + 1;
    format!("{},\"doc_id\":\"{doc}\"{}", &json[..at], &json[at..])
}

/// The answer to `open`: the file's document, as a welcome carries the
/// room's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Opened {
    pub doc_id: DocId,
    pub doc_kind: DocKind,
    /// Empty when the document comes in `doc_part`s.
    pub doc: Base64Bytes,
    /// How many `doc_part` events follow at once.
    #[serde(default)]
    pub doc_parts: u32,
    /// How many `update` events (`from` 0, this `doc_id`) follow after the
    /// parts, at once, and belong to it.
    #[serde(default)]
    pub doc_updates: u32,
    /// The server's version vector of this document.
    pub version: Base64Bytes,
}

/// What a workspace room enforces besides the version 1 limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceLimits {
    /// Files and folders the tree may ever hold (deleted ones count).
    pub max_files: usize,
    /// All the room's documents together, bytes of UTF-8 text (each file
    /// also within `limits.max_doc_bytes`).
    pub max_workspace_bytes: usize,
    /// Operations one tree update may carry.
    pub max_tree_ops_per_update: u64,
}

/// The welcome of a workspace connection: version 1's, with the document
/// it carries named, and the workspace's limits when the room is one (its
/// document is then the tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceWelcome {
    #[serde(flatten)]
    pub welcome: Welcome,
    #[serde(default, skip_serializing_if = "DocId::is_main")]
    pub doc_id: DocId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceLimits>,
}

/// What the server sends on a workspace connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The welcome (its `doc` is the tree in a workspace room).
    Welcome(Box<WorkspaceWelcome>),
    /// Any other version 1 event; `update`, `ack`, `presence`, `seeded`
    /// and `error` may name a document.
    V1(Addressed<ServerMsg>),
    /// The answer to `open`.
    Opened(Box<Opened>),
}

impl ServerEvent {
    /// The JSON text of this event.
    pub fn to_json(&self) -> String {
        match self {
            ServerEvent::Welcome(w) => {
                let mut obj = Map::new();
                obj.insert("type".into(), "welcome".into());
                if let Ok(Value::Object(fields)) = serde_json::to_value(w) {
                    obj.extend(fields);
                }
                Value::Object(obj).to_string()
            }
            ServerEvent::V1(Addressed { doc, msg }) => with_doc_id(msg.to_json(), *doc),
            ServerEvent::Opened(o) => {
                let mut obj = Map::new();
                obj.insert("type".into(), "opened".into());
                if let Ok(Value::Object(fields)) = serde_json::to_value(o) {
                    obj.extend(fields);
                }
                Value::Object(obj).to_string()
            }
        }
    }

    /// Parses a server event of a workspace connection (for clients).
    pub fn from_json(text: &str) -> Result<ServerEvent, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let Value::Object(mut obj) = value else {
            return Err(serde_json::Error::custom("an event is a JSON object"));
        };
        let ty = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match ty.as_str() {
            "welcome" => {
                obj.remove("type");
                Ok(ServerEvent::Welcome(Box::new(serde_json::from_value(
                    Value::Object(obj),
                )?)))
            }
            "opened" => {
                obj.remove("type");
                Ok(ServerEvent::Opened(Box::new(serde_json::from_value(
                    Value::Object(obj),
                )?)))
            }
            t => {
                let doc = match obj.remove(DOC_ID) {
                    None => DocId::Main,
                    Some(_) if !ADDRESSED_SERVER_TYPES.contains(&t) => {
                        return Err(serde_json::Error::custom(format!("a {t} has no doc_id")));
                    }
                    Some(v) => serde_json::from_value(v)?,
                };
                let msg: ServerMsg = serde_json::from_value(Value::Object(obj))?;
                Ok(ServerEvent::V1(Addressed { doc, msg }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> ErrorCode {
        ClientEvent::from_json(text).unwrap_err().code
    }

    #[test]
    fn doc_ids_read_and_write_the_same() {
        for s in ["tree", "0@1", "7@18446744073709551615", "2147483647@3"] {
            assert_eq!(DocId::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(DocId::parse("main"), Some(DocId::Main));
        for bad in [
            "",
            "Main",
            "7",
            "@1",
            "1@",
            "-1@2",
            "+1@2",
            "1@2@3",
            "2147483648@1",
            "1@18446744073709551616",
            " 1@2",
        ] {
            assert_eq!(DocId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_update_without_doc_id_is_version_1s() {
        let text = r#"{"type":"update","seq":4,"data":"AQ=="}"#;
        let ev = ClientEvent::from_json(text).unwrap();
        assert_eq!(
            ev,
            ClientEvent::V1(Addressed {
                doc: DocId::Main,
                msg: ClientMsg::from_json(text).unwrap()
            })
        );
        assert_eq!(ev.to_json(), text);
    }

    #[test]
    fn the_fast_update_reader_agrees_with_the_full_one() {
        // Field order the fast reader does not care about; the full path
        // takes what it refuses (an escaped type) with the same result.
        let fast = r#"{"type":"update","doc_id":"3@9","seq":4,"data":"AQ=="}"#;
        let slow = r#"{"type":"upd\u0061te","seq":4,"doc_id":"3@9","data":"AQ=="}"#;
        assert_eq!(
            ClientEvent::from_json(fast).unwrap(),
            ClientEvent::from_json(slow).unwrap()
        );
    }

    #[test]
    fn doc_id_only_where_it_means_something() {
        assert_eq!(
            code_of(r#"{"type":"chat","doc_id":"3@9","text":"hi"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code_of(r#"{"type":"update","doc_id":"x","seq":1,"data":""}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code_of(r#"{"type":"open","doc_id":"tree"}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(
            code_of(r#"{"type":"open","doc_id":"3@9","x":1}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code_of(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code_of(r#"{"type":"leave","x":1}"#),
            ErrorCode::InvalidMessage
        );
        assert_eq!(code_of("{"), ErrorCode::InvalidJson);
    }

    #[test]
    fn joins_of_both_versions_and_no_other() {
        for p in [1, 2] {
            let text = format!(r#"{{"type":"join","protocol":{p},"room":"a","user":"b"}}"#);
            assert!(matches!(
                ClientEvent::from_json(&text).unwrap(),
                ClientEvent::V1(Addressed {
                    doc: DocId::Main,
                    msg: ClientMsg::Join(_)
                })
            ));
        }
        let e = ClientEvent::from_json(r#"{"type":"join","protocol":3}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::VersionMismatch);
        assert!(e.message.contains("upgrade the server"), "{}", e.message);
        let e = ClientEvent::from_json(r#"{"type":"join","protocol":0}"#).unwrap_err();
        assert!(e.message.contains("upgrade the client"), "{}", e.message);
        assert_eq!(
            code_of(r#"{"type":"join","protocol":2.0,"room":"a","user":"b"}"#),
            ErrorCode::VersionMismatch
        );
    }

    #[test]
    fn doc_id_goes_right_after_the_type() {
        let m = ServerEvent::V1(Addressed {
            doc: DocId::Tree,
            msg: ServerMsg::Ack { seq: 3 },
        });
        assert_eq!(m.to_json(), r#"{"type":"ack","doc_id":"tree","seq":3}"#);
        assert_eq!(ServerEvent::from_json(&m.to_json()).unwrap(), m);
    }
}
