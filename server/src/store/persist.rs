//! The persistence policy: what a stored room writes, and when.
//!
//! A room stores each accepted update as the bytes it received (they
//! imported without pending parts, so everything they depend on is stored
//! before them, and a part the room already had is ignored on reload).
//! Every [`SNAPSHOT_EVERY_UPDATES`] updates or [`SNAPSHOT_EVERY_BYTES`] of
//! them it writes its whole snapshot instead, which replaces the stored
//! updates, so a restart loads one snapshot and a few updates. A change the
//! store queue refused (the disk fell behind) is never skipped: the room is
//! marked dirty and its next change, or its close, carries the snapshot.
//!
//! The room's document side (`room/document.rs`) owns a [`StoreLink`] and
//! calls it with the document; this file decides, the store thread writes.

use collab_doc::LazyRoomDoc;
use collab_protocol::RoomId;

use super::{Queued, StoreHandle};

/// A room writes its snapshot (and the store drops its updates) after
/// this many stored updates...
pub(crate) const SNAPSHOT_EVERY_UPDATES: usize = 1000;
/// ...or this many bytes of them, whichever comes first.
pub(crate) const SNAPSHOT_EVERY_BYTES: usize = 4 * 1024 * 1024;

/// A stored room's way to the store thread, and what it sent since its
/// last snapshot (compaction happens when that grows past a bound).
#[derive(Debug)]
pub(crate) struct StoreLink {
    handle: StoreHandle,
    updates: usize,
    bytes: usize,
    /// A change could not be queued (queue full): the next change sends
    /// the whole snapshot instead, so nothing is skipped on disk.
    dirty: bool,
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
            warned: false,
        }
    }

    /// Whether storing a change of `len` bytes will export the whole
    /// snapshot (CRDT work: not on a runtime worker).
    pub(crate) fn snapshot_due(&self, len: usize) -> bool {
        self.dirty
            || self.updates + 1 >= SNAPSHOT_EVERY_UPDATES
            || self.bytes + len >= SNAPSHOT_EVERY_BYTES
    }

    /// A change refused by the queue waits for the room's next change or
    /// its close.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Hands a change (None: could not be exported) to the store, or the
    /// whole snapshot of `doc` when enough changes piled up or an earlier
    /// one was not queued. Never blocks: a full queue marks the room dirty.
    pub(crate) fn persist(
        &mut self,
        doc: &mut LazyRoomDoc,
        room: &RoomId,
        change: Option<Vec<u8>>,
    ) {
        self.updates += 1;
        self.bytes += change.as_ref().map_or(0, Vec::len);
        let compact = self.dirty
            || change.is_none()
            || self.updates >= SNAPSHOT_EVERY_UPDATES
            || self.bytes >= SNAPSHOT_EVERY_BYTES;
        let queued = match change {
            Some(c) if !compact => self.handle.append(room, c),
            _ => match doc.snapshot() {
                Ok(snapshot) => {
                    let q = self.handle.snapshot(room, snapshot);
                    if q == Queued::Yes {
                        self.updates = 0;
                        self.bytes = 0;
                    }
                    q
                }
                Err(e) => {
                    // What is stored stays as it was: the change alone goes
                    // on disk, and the room stays dirty so the next change
                    // tries the snapshot again.
                    tracing::error!(room = %room, error = %e, "exporting the room for the store failed");
                    if let Some(c) = change {
                        self.handle.append(room, c);
                    }
                    self.dirty = true;
                    return;
                }
            },
        };
        match queued {
            Queued::Yes => {
                self.dirty = false;
                if self.warned {
                    tracing::info!(room = %room, "the store queue has room again; the room's snapshot is queued");
                    self.warned = false;
                }
            }
            Queued::Full => {
                self.dirty = true;
                if !self.warned {
                    tracing::error!(room = %room, "the store queue is full (the disk is too slow): the room's next change stores its whole snapshot");
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
