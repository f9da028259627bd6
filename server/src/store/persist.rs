//! The persistence policy: what a stored room writes, and when.
//!
//! A room stores each accepted update as the bytes it received (they
//! imported without pending parts, so everything they depend on is stored
//! before them, and a part the room already had is ignored on reload).
//! After [`SNAPSHOT_EVERY_UPDATES`] updates or [`SNAPSHOT_EVERY_BYTES`] of
//! them a snapshot is due, and the room's next compaction hands the store
//! its snapshot and the updates merged after it, which replace the stored
//! updates in one commit, so a restart loads one snapshot and a few
//! updates. The snapshot is the compaction's, made off the room's lock
//! (`collab_doc::CompactionJob`): storing never exports under a lock the
//! relay takes. A change the store's inbox refused (the disk fell behind)
//! is never skipped: the room is marked dirty, queues nothing more (the
//! stored updates would have a gap), and the next compaction, or its
//! close, carries the snapshot.
//!
//! The room's document side (`room/document.rs`) owns a [`StoreLink`] and
//! calls it with the document; this file decides, the store thread writes.

use collab_doc::{LazyRoomDoc, Swapped};
use collab_protocol::RoomId;

use super::{Queued, StoreHandle};

/// A room writes its snapshot (and the store drops its updates) after
/// this many stored updates...
pub(crate) const SNAPSHOT_EVERY_UPDATES: usize = 1000;
/// ...or this many bytes of them, whichever comes first: one window of
/// the room's history bound (`collab_doc::history_bound`), so what a room
/// stores stays within it.
pub(crate) const SNAPSHOT_EVERY_BYTES: usize = collab_doc::HISTORY_WINDOW;

/// A stored room's way to the store thread, and what it sent since its
/// last snapshot (compaction happens when that grows past a bound).
#[derive(Debug)]
pub(crate) struct StoreLink {
    handle: StoreHandle,
    updates: usize,
    bytes: usize,
    /// A change could not be queued (inbox full): no change is queued
    /// until the next compaction hands the store the whole snapshot and the
    /// updates after it, so nothing is skipped on disk.
    dirty: bool,
    /// The store should get a snapshot (enough updates since the last
    /// one): the next compaction's.
    snapshot_due: bool,
    /// An overflow was logged and not yet followed by a success.
    warned: bool,
}

impl StoreLink {
    /// The link of a room loaded with `updates` stored updates of `bytes`
    /// on top of its snapshot.
    pub(crate) fn new(handle: StoreHandle, updates: usize, bytes: usize) -> Self {
        Self {
            handle,
            updates,
            bytes,
            dirty: false,
            snapshot_due: false,
            warned: false,
        }
    }

    /// Whether the store wants the room's next compaction (a snapshot is
    /// due, or a change was refused).
    pub(crate) fn wants_snapshot(&self) -> bool {
        self.dirty || self.snapshot_due
    }

    /// A change refused by the queue waits for the room's next compaction
    /// or its close.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Hands a change to the store. Never blocks and never exports: a full
    /// inbox marks the room dirty, and enough changes since the last
    /// snapshot make one due; the next compaction brings it
    /// ([`Self::store_compacted`]).
    pub(crate) fn persist(&mut self, room: &RoomId, change: Vec<u8>) {
        self.updates += 1;
        self.bytes += change.len();
        if self.updates >= SNAPSHOT_EVERY_UPDATES || self.bytes >= SNAPSHOT_EVERY_BYTES {
            self.snapshot_due = true;
        }
        if self.dirty {
            // Not queued after a refused change (the stored updates would
            // have a gap): the compaction's snapshot and tail carry it.
            return;
        }
        let queued = self.handle.append(room, change);
        self.queued(room, queued);
    }

    /// A compaction was swapped in: when the store wants a snapshot (or the
    /// compaction trimmed history), it gets the new one and the updates
    /// merged after it, replacing what it has in one commit.
    pub(crate) fn store_compacted(&mut self, room: &RoomId, swapped: &Swapped) {
        let Some(snapshot) = &swapped.snapshot else {
            return;
        };
        if !(self.wants_snapshot() || swapped.trimmed) {
            return;
        }
        let after: Vec<Vec<u8>> = swapped.after.iter().map(|u| u.to_vec()).collect();
        let (updates, bytes) = (after.len(), after.iter().map(Vec::len).sum());
        let queued = self
            .handle
            .snapshot_then(room, snapshot.as_ref().clone(), after);
        if queued == Queued::Yes {
            self.updates = updates;
            self.bytes = bytes;
            self.snapshot_due = false;
        }
        self.queued(room, queued);
    }

    /// What queueing a change or snapshot came to.
    fn queued(&mut self, room: &RoomId, queued: Queued) {
        match queued {
            Queued::Yes => {
                if self.dirty && self.warned {
                    tracing::info!(room = %room, "the store's inbox has room again; the room's snapshot is queued");
                }
                self.dirty = false;
                self.warned = false;
            }
            Queued::Full => {
                self.dirty = true;
                if !self.warned {
                    tracing::error!(room = %room, "the store's inbox is full (the disk is too slow): the room's next compaction stores its whole snapshot");
                    self.warned = true;
                }
            }
            Queued::Closed => {}
        }
    }

    /// The room emptied: if the store queue refused one of its changes,
    /// hand the store its last snapshot of `doc` now (there is no next
    /// change to carry it).
    pub(crate) fn close(&mut self, doc: &mut LazyRoomDoc, room: &RoomId) {
        if !self.dirty {
            return;
        }
        let snapshot = match doc.snapshot() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(room = %room, error = %e, "exporting the closing room failed; its last changes are not stored");
                return;
            }
        };
        if self.handle.closing_snapshot(room, snapshot) == Queued::Yes {
            self.dirty = false;
            tracing::info!(room = %room, "the room closed; its last snapshot is queued");
        }
    }
}
