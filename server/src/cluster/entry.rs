//! What a room's log holds: entries, their ids, and their encoding as a
//! Redis stream entry's field list.
//!
//! Redis is the nodes' own infrastructure, as trusted as their memory, but
//! an entry is still decoded strictly (a missing field, an unknown kind, a
//! payload over the bound: the entry is skipped and logged, never a panic),
//! because a bug in one node, or another program writing to the same Redis,
//! must not take every node hosting the room down with it.

use std::fmt;
use std::str::FromStr;

use redis::Value;

/// A stream entry id, `MS-SEQ`: the time Redis appended it and a sequence
/// within that millisecond. Ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    /// Before every entry: reading from here reads the whole log.
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    /// The id `age_ms` older than this one (for trimming with a grace).
    pub fn minus_ms(self, age_ms: u64) -> EntryId {
        EntryId {
            ms: self.ms.saturating_sub(age_ms),
            seq: 0,
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for EntryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a stream entry id");
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(EntryId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A document update (Loro bytes), accepted by its node.
    Update,
    /// A member joined (the member as JSON).
    Joined,
    /// A member left (the `left` event as JSON).
    Left,
    /// A member's role changed (the member as JSON).
    Member,
    /// A chat message (the `chat` event as JSON).
    Chat,
    /// A direct message (the `direct` event as JSON).
    Direct,
    /// A Loro peer id given out, and its owner (`PEER SESSION`).
    Peer,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Update,
        Kind::Joined,
        Kind::Left,
        Kind::Member,
        Kind::Chat,
        Kind::Direct,
        Kind::Peer,
    ];

    fn code(self) -> &'static str {
        match self {
            Kind::Update => "u",
            Kind::Joined => "j",
            Kind::Left => "l",
            Kind::Member => "m",
            Kind::Chat => "c",
            Kind::Direct => "d",
            Kind::Peer => "p",
        }
    }

    fn from_code(code: &[u8]) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code().as_bytes() == code)
    }
}

/// One entry of a room's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// The node that wrote it: a node skips its own entries when it reads.
    pub node: String,
    /// The member it is from (0: the room itself).
    pub from: u64,
    pub data: Vec<u8>,
    /// The room instance (one room's life on one node) that wrote it; 0
    /// for what the Lua scripts write. A node skips the entries of the
    /// instance reading, not of the node: a room that closed on a node and
    /// opened again there, or a node restarted under the same id, must
    /// still import what the earlier instance wrote after it loaded.
    pub instance: u64,
}

/// Field names in the stream entry.
const KIND: &str = "k";
const NODE: &str = "n";
const FROM: &str = "f";
const DATA: &str = "d";
const INSTANCE: &str = "i";

impl Entry {
    /// The field list `XADD key * ...` takes.
    pub(super) fn write_fields(&self, cmd: &mut redis::Cmd) {
        cmd.arg(KIND)
            .arg(self.kind.code())
            .arg(NODE)
            .arg(&self.node)
            .arg(FROM)
            .arg(self.from)
            .arg(DATA)
            .arg(&self.data);
        if self.instance != 0 {
            cmd.arg(INSTANCE).arg(self.instance);
        }
    }

    /// Decodes an entry's field list (`[k, v, k, v, ...]` as Redis sends
    /// it), refusing one whose payload is over `max_data`.
    pub(super) fn read_fields(fields: Vec<Value>, max_data: usize) -> Result<Entry, String> {
        let (mut kind, mut node, mut from, mut data) = (None, None, None, None);
        let mut instance = 0;
        let mut it = fields.into_iter();
        while let (Some(name), Some(value)) = (it.next(), it.next()) {
            let name = bytes(name).ok_or("a field name that is not a string")?;
            let value = bytes(value).ok_or("a field value that is not a string")?;
            match name.as_slice() {
                b"k" => kind = Some(Kind::from_code(&value).ok_or("an unknown kind")?),
                b"n" => {
                    node = Some(String::from_utf8(value).map_err(|_| "a node id not in UTF-8")?)
                }
                b"f" => {
                    let text =
                        std::str::from_utf8(&value).map_err(|_| "a member id not in UTF-8")?;
                    from = Some(
                        text.parse::<u64>()
                            .map_err(|_| "a member id that is not a number")?,
                    );
                }
                b"i" => {
                    instance = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|t| t.parse().ok())
                        .ok_or("an instance that is not a number")?;
                }
                b"d" => {
                    if value.len() > max_data {
                        return Err(format!(
                            "a payload of {} bytes, over the bound of {max_data}",
                            value.len()
                        ));
                    }
                    data = Some(value);
                }
                // Fields a later version adds are ignored.
                _ => {}
            }
        }
        match (kind, node, from, data) {
            (Some(kind), Some(node), Some(from), Some(data)) => Ok(Entry {
                kind,
                node,
                from,
                data,
                instance,
            }),
            _ => Err(format!(
                "a missing field (it needs {KIND}, {NODE}, {FROM} and {DATA})"
            )),
        }
    }
}

/// The bytes of a string reply.
pub(super) fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// The id of a string reply.
pub(super) fn entry_id(v: Value) -> Option<EntryId> {
    let b = bytes(v)?;
    std::str::from_utf8(&b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_order_as_redis_orders_them() {
        let a: EntryId = "1700000000000-0".parse().unwrap();
        let b: EntryId = "1700000000000-1".parse().unwrap();
        let c: EntryId = "1700000000001-0".parse().unwrap();
        assert!(a < b && b < c);
        assert_eq!(c.to_string(), "1700000000001-0");
        assert_eq!(c.minus_ms(60_000).to_string(), "1699999940001-0");
        assert_eq!(EntryId::ZERO.minus_ms(5), EntryId::ZERO);
        for bad in ["", "12", "a-1", "1-b", "1-2-3", "-1"] {
            assert!(bad.parse::<EntryId>().is_err(), "{bad:?}");
        }
    }

    fn field_list(pairs: &[(&str, &[u8])]) -> Vec<Value> {
        pairs
            .iter()
            .flat_map(|(k, v)| {
                [
                    Value::BulkString(k.as_bytes().to_vec()),
                    Value::BulkString(v.to_vec()),
                ]
            })
            .collect()
    }

    #[test]
    fn entries_decode_strictly() {
        let ok = field_list(&[
            ("k", b"u"),
            ("n", b"a"),
            ("f", b"7"),
            ("d", b"xyz"),
            ("later", b"?"),
        ]);
        assert_eq!(
            Entry::read_fields(ok, 3),
            Ok(Entry {
                kind: Kind::Update,
                node: "a".into(),
                from: 7,
                data: b"xyz".to_vec(),
                instance: 0,
            })
        );
        let big = field_list(&[("k", b"u"), ("n", b"a"), ("f", b"7"), ("d", b"xyz")]);
        assert!(
            Entry::read_fields(big, 2)
                .unwrap_err()
                .contains("over the bound")
        );
        let missing = field_list(&[("k", b"u"), ("n", b"a"), ("d", b"xyz")]);
        assert!(Entry::read_fields(missing, 8).is_err());
        let unknown = field_list(&[("k", b"?"), ("n", b"a"), ("f", b"1"), ("d", b"")]);
        assert!(Entry::read_fields(unknown, 8).is_err());
        let not_a_number = field_list(&[("k", b"c"), ("n", b"a"), ("f", b"x"), ("d", b"")]);
        assert!(Entry::read_fields(not_a_number, 8).is_err());
    }
}
