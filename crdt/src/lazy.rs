//! A room's document that does not exist until someone edits the room.
//!
//! Many rooms spend their life idle: two people join to pair and nobody has
//! typed yet, or everyone left a room open. A live Loro document costs the
//! server several KiB even when empty (its oplog, state, arena and caches),
//! a large part of what an idle pair of editors costs (BENCHMARKS.md, issue
//! 16). An empty room needs none of it to serve joins: a newcomer's welcome
//! is the empty snapshot (made once per process) and the empty version, and
//! checking an update's authors needs only that version. So a
//! [`LazyRoomDoc`] builds the [`RoomDoc`] the first time something needs
//! more: an update to import, a rejoiner's missing updates, a seed, the
//! text. Building an empty one takes microseconds, so that first use stays
//! wherever it happens.
//!
//! It dereferences to the [`RoomDoc`], building it on first use, as
//! `std::cell::LazyCell` does, so every `RoomDoc` method works on it; the
//! methods an empty room answers without a document are its own and shadow
//! those.
//!
//! A room loaded from the store is live from the start: it is loaded because
//! someone joins it, a rejoiner (the usual joiner after a restart) needs the
//! live document at once, and the load has just built it to check that the
//! stored records decode.

use std::cell::OnceCell;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use loro::VersionVector;

use crate::room::empty_snapshot;
use crate::{DocEncoding, DocError, NewcomerDoc, RoomDoc};

/// What a newcomer loads: a snapshot, then the updates merged after it.
pub type Newcomer = (Arc<Vec<u8>>, Vec<Arc<Vec<u8>>>);

/// A room's document, built on first use (empty until then).
#[derive(Default)]
pub struct LazyRoomDoc {
    live: OnceCell<RoomDoc>,
}

impl std::fmt::Debug for LazyRoomDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.live.get() {
            Some(doc) => doc.fmt(f),
            None => f.write_str("LazyRoomDoc(empty, not built)"),
        }
    }
}

impl From<RoomDoc> for LazyRoomDoc {
    /// A document already live (a room loaded from the store).
    fn from(doc: RoomDoc) -> Self {
        Self {
            live: OnceCell::from(doc),
        }
    }
}

impl LazyRoomDoc {
    /// An empty room, with no live document yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the live document was built.
    pub fn is_live(&self) -> bool {
        self.live.get().is_some()
    }

    /// The room's version vector, encoded ([`RoomDoc::version`]).
    pub fn version(&self) -> Vec<u8> {
        match self.live.get() {
            Some(doc) => doc.version(),
            None => VersionVector::new().encode(),
        }
    }

    /// The room's version vector ([`RoomDoc::version_vector`]).
    pub fn version_vector(&self) -> VersionVector {
        match self.live.get() {
            Some(doc) => doc.version_vector(),
            None => VersionVector::new(),
        }
    }

    /// What a newcomer needs ([`RoomDoc::for_newcomer`]); for an empty
    /// room, without building anything.
    pub fn for_newcomer(&self) -> Newcomer {
        match self.live.get() {
            Some(doc) => doc.for_newcomer(),
            None => (empty_snapshot(), Vec::new()),
        }
    }

    /// What a newcomer loads ([`RoomDoc::newcomer_doc`]); for an empty
    /// room, the empty snapshot, without building anything.
    pub fn newcomer_doc(&mut self, max_update_bytes: usize) -> NewcomerDoc {
        match self.live.get_mut() {
            Some(doc) => doc.newcomer_doc(max_update_bytes),
            None => NewcomerDoc::Snapshot((empty_snapshot(), Vec::new())),
        }
    }

    /// Whether [`Self::newcomer_doc`] is a copy of references
    /// ([`RoomDoc::newcomer_doc_ready`]): always in an empty room.
    pub fn newcomer_doc_ready(&self) -> bool {
        self.live.get().is_none_or(RoomDoc::newcomer_doc_ready)
    }

    /// [`RoomDoc::newcomer_doc_as`]; for an empty room, the empty snapshot.
    pub fn newcomer_doc_as(
        &mut self,
        max_update_bytes: usize,
        encoding: DocEncoding,
    ) -> NewcomerDoc {
        match self.live.get_mut() {
            Some(doc) => doc.newcomer_doc_as(max_update_bytes, encoding),
            None => NewcomerDoc::Snapshot((empty_snapshot(), Vec::new())),
        }
    }

    /// [`RoomDoc::newcomer_doc_ready_as`]: always in an empty room.
    pub fn newcomer_doc_ready_as(&self, encoding: DocEncoding) -> bool {
        self.live
            .get()
            .is_none_or(|d| d.newcomer_doc_ready_as(encoding))
    }

    /// The text for a newcomer to show ([`RoomDoc::newcomer_text`]): none
    /// in an empty room.
    pub fn newcomer_text(&mut self) -> Option<Arc<Vec<u8>>> {
        self.live.get_mut().and_then(RoomDoc::newcomer_text)
    }

    /// [`RoomDoc::newcomer_text_ready`]: always in an empty room.
    pub fn newcomer_text_ready(&self) -> bool {
        self.live.get().is_none_or(RoomDoc::newcomer_text_ready)
    }

    /// Update bytes kept after the snapshot ([`RoomDoc::tail_bytes`]):
    /// none in an empty room.
    pub fn tail_bytes(&self) -> usize {
        self.live.get().map_or(0, RoomDoc::tail_bytes)
    }

    /// Whether a compaction job is out ([`RoomDoc::is_compacting`]): an
    /// empty room never compacts (its bytes are the empty snapshot).
    pub fn is_compacting(&self) -> bool {
        self.live.get().is_some_and(RoomDoc::is_compacting)
    }

    /// Whether a compaction is due ([`RoomDoc::compaction_due`]): never in
    /// an empty room.
    pub fn compaction_due(&self, every: usize) -> bool {
        self.live.get().is_some_and(|d| d.compaction_due(every))
    }

    /// The whole document ([`RoomDoc::snapshot`]); for an empty room,
    /// without building anything.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, DocError> {
        match self.live.get_mut() {
            Some(doc) => doc.snapshot(),
            None => Ok(empty_snapshot().as_ref().clone()),
        }
    }
}

impl Deref for LazyRoomDoc {
    type Target = RoomDoc;

    /// The live document, built on first use.
    fn deref(&self) -> &RoomDoc {
        self.live.get_or_init(RoomDoc::new)
    }
}

impl DerefMut for LazyRoomDoc {
    /// The live document, built on first use.
    fn deref_mut(&mut self) -> &mut RoomDoc {
        if self.live.get().is_none() {
            self.live = OnceCell::from(RoomDoc::new());
        }
        match self.live.get_mut() {
            Some(doc) => doc,
            None => unreachable!("the live document was just built"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{DEFAULT_MAX_DOC_BYTES, SharedDoc};

    /// An empty room serves joins, author checks and the store without a
    /// live document, with the very bytes a live empty room gives.
    #[test]
    fn an_empty_room_answers_without_building() {
        let mut lazy = LazyRoomDoc::new();
        let live = RoomDoc::new();
        assert_eq!(lazy.version(), live.version());
        assert_eq!(lazy.version_vector(), live.version_vector());
        let (snapshot, tail) = lazy.for_newcomer();
        assert_eq!((snapshot.as_ref().clone(), tail.len()), {
            let (s, t) = live.for_newcomer();
            (s.as_ref().clone(), t.len())
        });
        assert_eq!(SharedDoc::from_snapshot(&snapshot).unwrap().text(), "");
        assert_eq!(lazy.snapshot().unwrap(), snapshot.as_ref().clone());
        // What the server asks before an update and about compaction.
        assert_eq!(lazy.tail_bytes(), 0);
        assert!(!lazy.is_compacting());
        assert!(!lazy.compaction_due(0), "nothing to compact");
        assert!(!lazy.is_live(), "nothing above needed the document");
    }

    /// The first update builds the document; from then on it is the room's.
    #[test]
    fn the_first_update_builds_the_document() {
        let mut lazy = LazyRoomDoc::new();
        let mut typist = SharedDoc::new();
        typist.splice(0, 0, "hello").unwrap();
        let update = typist.take_local_update().unwrap();
        assert!(lazy.import_limited(&update, DEFAULT_MAX_DOC_BYTES).unwrap());
        assert!(lazy.is_live());
        assert_eq!(lazy.text(), "hello");
        assert_eq!(lazy.version(), typist.version());
        let (snapshot, tail) = lazy.for_newcomer();
        let mut newcomer = SharedDoc::from_snapshot(&snapshot).unwrap();
        for u in tail {
            newcomer.import(&u).unwrap();
        }
        assert_eq!(newcomer.text(), "hello");
    }
}
