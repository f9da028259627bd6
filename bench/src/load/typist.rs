//! What the simulated users type: the keystroke rule ([`Caret`]), a
//! typist with its own replica (`--typing concurrent`, `independent`) and
//! the room's shared typing doc (`--typing turns`). Pure document work,
//! no sockets, so it is tested here on its own.

use std::sync::Arc;

use parking_lot::Mutex;

use collab_doc::SharedDoc;
use loro::{ExportMode, LoroDoc, LoroText};

/// The keystroke rule of a typist: mostly inserts the next character of
/// some code at the caret, every eighth keystroke a backspace, now and
/// then the caret jumps. The caret is a plain index, clamped to the text,
/// as a naive client keeps it.
struct Caret {
    pos: usize,
    n: u64,
    rng: u64,
}

/// One keystroke's edit of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// Delete the character at this position (a backspace).
    Delete(usize),
    /// Insert this text at this position.
    Insert(usize, &'static str),
}

const TYPED: &str =
    "fn main() {\n    let greeting = \"hello, world\";\n    println!(\"{greeting}\");\n}\n";

impl Caret {
    fn new(seed: u64) -> Self {
        Self {
            pos: 0,
            n: seed % 97,
            rng: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next keystroke on a text of `len` chars.
    fn next_edit(&mut self, len: usize) -> Edit {
        self.n += 1;
        if self.n.is_multiple_of(64) && len > 0 {
            self.pos = (self.next_random() % (len as u64 + 1)) as usize;
        }
        self.pos = self.pos.min(len);
        if self.n.is_multiple_of(8) && self.pos > 0 {
            self.pos -= 1;
            Edit::Delete(self.pos)
        } else {
            let i = (self.n as usize) % TYPED.len();
            self.pos += 1;
            Edit::Insert(self.pos - 1, &TYPED[i..=i])
        }
    }
}

/// A typist with a replica of its own (`--typing concurrent` and
/// `independent`). Like a real client it merges what it receives into its
/// replica (concurrent), so its next update builds on everything it has
/// seen, and the bench pays Loro's merge as clients do.
pub(super) struct Typist {
    doc: SharedDoc,
    caret: Caret,
}

impl Typist {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            doc: SharedDoc::new(),
            caret: Caret::new(seed),
        }
    }

    /// Merges a received update into my replica.
    pub(super) fn receive(&mut self, data: &[u8]) -> bool {
        self.doc.import(data).is_ok()
    }

    /// One keystroke; the Loro update it makes.
    fn keystroke(&mut self) -> Vec<u8> {
        let edited = match self.caret.next_edit(self.doc.len_chars()) {
            Edit::Delete(pos) => self.doc.splice(pos, 1, ""),
            Edit::Insert(pos, s) => self.doc.splice(pos, 0, s),
        };
        if edited.is_err() {
            self.caret.pos = self.doc.len_chars();
        }
        self.doc.take_local_update().unwrap_or_default()
    }
}

/// The typists of one room in `--typing turns`: ONE Loro document they
/// all type into, each keystroke under the typing user's own peer id.
///
/// In turns a user types only once it has received every update sent in
/// its room, so its replica would hold exactly this document: the update
/// a keystroke exports here (only the new change, with its causal
/// dependencies on everyone's changes) is the one that replica would send.
/// Sharing the document spares the bench a replica per user and three
/// imports per keystroke, which were most of its CPU.
pub(super) struct RoomTyping {
    doc: LoroDoc,
    text: LoroText,
    /// Per user of the room: its stable Loro peer id, and its caret.
    users: Vec<(u64, Caret)>,
}

/// The `i`th of a series of distinct Loro peer ids (splitmix64, a
/// bijection, so distinct `i` give distinct ids).
fn peer_id_of(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    // u64::MAX is not a valid peer id.
    (z ^ (z >> 31)).min(u64::MAX - 1)
}

impl RoomTyping {
    /// The typing doc of the room whose users are `first..first + users`
    /// (indices in the phase, which seed their carets). Peer ids are
    /// random per doc, as fresh replicas' are, so a second run into the
    /// same rooms of a server (`--url`) never reuses history ids.
    pub(super) fn new(first: usize, users: usize) -> Self {
        let doc = LoroDoc::new();
        let text = doc.get_text(collab_doc::TEXT_CONTAINER);
        let base = doc.peer_id();
        let users = (0..users)
            .map(|slot| {
                (
                    peer_id_of(base.wrapping_add(slot as u64)),
                    Caret::new((first + slot) as u64 + 1),
                )
            })
            .collect();
        Self { doc, text, users }
    }

    /// One keystroke of the room's user `slot` (0-based in the room); the
    /// Loro update it makes (empty if it changed nothing).
    fn keystroke(&mut self, slot: usize) -> Vec<u8> {
        let Some((peer, caret)) = self.users.get_mut(slot) else {
            return Vec::new();
        };
        if self.doc.set_peer_id(*peer).is_err() {
            return Vec::new();
        }
        let before = self.doc.oplog_vv();
        let edited = match caret.next_edit(self.text.len_unicode()) {
            Edit::Delete(pos) => self.text.delete(pos, 1),
            Edit::Insert(pos, s) => self.text.insert(pos, s),
        };
        self.doc.commit();
        if edited.is_err() {
            caret.pos = self.text.len_unicode();
        }
        if self.doc.oplog_vv() == before {
            return Vec::new();
        }
        self.doc
            .export(ExportMode::updates(&before))
            .unwrap_or_default()
    }
}

/// What a user's writer types with.
pub(super) enum Keyboard {
    /// Turns: the room's typing doc, and my place in the room.
    Room(Arc<Mutex<RoomTyping>>, usize),
    /// Concurrent, independent: my own replica (my reader merges into it).
    Replica(Arc<Mutex<Typist>>),
}

impl Keyboard {
    /// One keystroke.
    pub(super) fn keystroke(&self) -> Vec<u8> {
        match self {
            Keyboard::Room(room, slot) => room.lock().keystroke(*slot),
            Keyboard::Replica(typist) => typist.lock().keystroke(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_typist_makes_small_real_updates() {
        let mut t = Typist::new(1);
        let mut replica = SharedDoc::new();
        for _ in 0..500 {
            let u = t.keystroke();
            assert!(!u.is_empty());
            assert!(u.len() < 200, "{} bytes", u.len());
            assert!(replica.import(&u).is_ok_and(|new| new));
        }
        assert_eq!(replica.text(), t.doc.text());
    }

    /// The room's typing doc sends what replicas that merged everything
    /// would: each update imports, in order, into a fresh replica that has
    /// all the earlier ones (its causal dependencies are there), brings
    /// something new, carries one change of its typist's own peer, and
    /// the replica ends with the room doc's text.
    #[test]
    fn a_room_typing_doc_makes_updates_a_replica_merges_in_order() {
        let users = 4;
        let mut room = RoomTyping::new(8, users);
        let mut replica = SharedDoc::new();
        let mut peers = std::collections::BTreeSet::new();
        for k in 0..2000 {
            // In turn, and now and then one user twice in a row.
            let slot = if k % 7 == 3 {
                (k - 1) % users
            } else {
                k % users
            };
            let u = room.keystroke(slot);
            assert!(!u.is_empty(), "keystroke {k}");
            assert!(u.len() < 200, "{} bytes", u.len());
            let meta = LoroDoc::decode_import_blob_meta(&u, true).unwrap();
            assert_eq!(meta.change_num, 1, "keystroke {k}: only the new change");
            let in_update: Vec<u64> = meta.partial_end_vv.keys().copied().collect();
            assert_eq!(in_update, vec![room.users[slot].0], "keystroke {k}");
            peers.insert(in_update[0]);
            assert_eq!(replica.import(&u), Ok(true), "keystroke {k}");
        }
        assert_eq!(peers.len(), users);
        assert_eq!(replica.text(), room.text.to_string());
        assert!(replica.len_chars() > 1000);
    }

    /// Four real replicas typing in turn, each merging the others' updates
    /// (what turns did before the room doc), type the same text with
    /// updates of the same sizes as the room doc.
    #[test]
    fn a_room_typing_doc_types_like_replicas_that_merge_everything() {
        let mut replicas: Vec<Typist> = (1..=4).map(Typist::new).collect();
        let mut room = RoomTyping::new(0, 4);
        for k in 0..400 {
            let slot = k % 4;
            let expected = replicas[slot].keystroke();
            for (j, other) in replicas.iter_mut().enumerate() {
                if j != slot {
                    assert!(other.receive(&expected));
                }
            }
            assert_eq!(room.keystroke(slot).len(), expected.len(), "keystroke {k}");
        }
        assert_eq!(room.text.to_string(), replicas[0].doc.text());
    }

    #[test]
    fn peer_ids_are_distinct_and_valid() {
        let ids: std::collections::BTreeSet<u64> = (0..100_000).map(peer_id_of).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(!ids.contains(&u64::MAX));
    }
}
