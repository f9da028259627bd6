//! A room's document side: the merged `RoomDoc`, its way to the store and
//! who owns which peer id, behind a lock of its own that the relay of chat,
//! presence and membership never takes.
//!
//! CRDT work can be long: a paste's import, a newcomer's snapshot of a big
//! room, a compaction, a snapshot for the store (tens of ms to seconds).
//! mini-redis's `db.rs` puts it plainly: such work must not run under a
//! lock the hot path takes, nor on a runtime worker. So the document has
//! its own async lock (waiting for it parks the task, never a thread), and
//! work that is not known to be short runs on tokio's blocking pool while
//! that room's lock is held: one room's heavy import delays that room's
//! next update alone; every other room, and chat in this one, go on.
//!
//! A keystroke stays on the worker: a small update into a detached
//! document is 2 to 3 µs, less than the hand-off to another thread.

use std::collections::HashMap;
use std::sync::Arc;

use collab_doc::{DocError, LazyRoomDoc, PeerId, UpdateInfo};
use collab_protocol::RoomId;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::store::StoreLink;

/// The owner of the peer ids the server authors (seeds).
pub(super) const SERVER_OWNER: &str = "";

/// Largest update imported on the runtime's worker; bigger ones go to the
/// blocking pool. Keystrokes are about 90 bytes.
const INLINE_IMPORT_MAX_BYTES: usize = 4 * 1024;

/// The document side of a room.
#[derive(Debug)]
pub(super) struct DocPart {
    /// Bytes until an update arrives (`collab_doc::LazyRoomDoc`).
    pub doc: LazyRoomDoc,
    /// With storage: where accepted changes go, and when a snapshot is
    /// due (`store/persist.rs`).
    pub store: Option<StoreLink>,
    /// The Loro peer ids this room gave out, and the session token each
    /// belongs to ([`SERVER_OWNER`] for seeds): only that session may add
    /// changes under it. Kept after the member leaves, so nobody else
    /// extends its history; a member rejoining with that token gets its id
    /// back. Not stored: after a restart, ids given out before are history
    /// that anyone may bring back, and every session gets a fresh id.
    pub owners: HashMap<PeerId, String>,
}

/// Where a piece of document work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Runs {
    /// Known to be short (a keystroke): on the caller's task.
    Inline,
    /// Maybe long: on the blocking pool, the room's document lock held.
    Blocking,
}

pub(super) type DocLock = Arc<Mutex<DocPart>>;

impl DocPart {
    pub fn new(doc: LazyRoomDoc, store: Option<StoreLink>) -> DocLock {
        Arc::new(Mutex::new(Self {
            doc,
            store,
            owners: HashMap::new(),
        }))
    }

    /// Where importing an update of `len` bytes (and what follows it:
    /// persisting, compacting) runs.
    pub fn import_runs(&self, len: usize, max_doc_bytes: usize, compact_every: usize) -> Runs {
        let store_snapshot_due = self.store.as_ref().is_some_and(|l| l.snapshot_due(len));
        if len <= INLINE_IMPORT_MAX_BYTES
            && self.doc.import_is_light(len, max_doc_bytes)
            && !self.doc.compaction_due(compact_every)
            && !store_snapshot_due
        {
            Runs::Inline
        } else {
            Runs::Blocking
        }
    }

    /// Refuses an update that carries changes, new or already in the room,
    /// under a peer id this room gave a session other than `session`: an
    /// honest client sends only its own changes (a resend exports the ids it
    /// authored under, `collab_client::Replica`), so another session's ids
    /// in an update are a forgery, also when the room has them all (Loro
    /// ignores such an update without comparing its content).
    ///
    /// Ids this room never gave out are not claimed by whoever brings them
    /// first: after a restart that is often another member bringing history
    /// back (each member may hold a different part of an absent member's
    /// history, so it cannot be told from an extension). A client never goes
    /// back to an id it left (a new one every welcome, a fresh one offline),
    /// so an id nobody owns is one its author no longer extends.
    ///
    /// The seed's id ([`SERVER_OWNER`]) is refused for new changes only: its
    /// one change is fixed by the file's text, and a member coming back
    /// after a restart carries it in its catch-up while a newcomer may have
    /// seeded the room again from the same file meanwhile (the copy changes
    /// nothing either way).
    pub fn check_authors(&self, info: &UpdateInfo, session: &str) -> Result<(), DocError> {
        let mut vv = None;
        for span in info.spans() {
            let Some(owner) = self.owners.get(&span.peer) else {
                continue;
            };
            if crate::access::same_secret(owner, session) {
                continue;
            }
            if owner == SERVER_OWNER {
                let vv = vv.get_or_insert_with(|| self.doc.version_vector());
                if vv.get(&span.peer).copied().unwrap_or(0) >= span.end {
                    continue;
                }
            }
            return Err(DocError::PeerOwned(span.peer));
        }
        Ok(())
    }

    /// After an accepted import: store the bytes as received and compact
    /// when due.
    pub fn after_import(&mut self, room: &RoomId, data: Vec<u8>, compact_every: usize) {
        if self.store.is_some() {
            // The bytes as received: they imported without pending parts,
            // so everything they depend on is stored before them, and a part
            // the room already had is ignored on reload. (Exporting "what
            // this import added" instead costs time that grows with the
            // document, on every keystroke.)
            self.persist(room, Some(data));
        }
        // At least every `compact_every` imports, less often for a big
        // document (see `collab_doc::next_compaction_after`).
        if let Err(e) = self.doc.compact_if_due(compact_every) {
            tracing::warn!(room = %room, error = %e, "compacting the document failed");
        }
    }

    /// Hands a change (None: could not be exported) to the store, as the
    /// policy in `store/persist.rs` says. Never blocks.
    pub fn persist(&mut self, room: &RoomId, change: Option<Vec<u8>>) {
        if let Some(link) = self.store.as_mut() {
            link.persist(&mut self.doc, room, change);
        }
    }

    /// The room emptied: the store gets what it still lacks.
    fn close(&mut self, room: &RoomId) {
        if let Some(link) = self.store.as_mut() {
            link.close(&mut self.doc, room);
        }
    }
}

/// Runs `work` on the document, where `runs` says, and gives the lock back
/// with its result.
pub(super) async fn run<R: Send + 'static>(
    mut part: OwnedMutexGuard<DocPart>,
    runs: Runs,
    work: impl FnOnce(&mut DocPart) -> R + Send + 'static,
) -> (OwnedMutexGuard<DocPart>, Result<R, DocError>) {
    match runs {
        Runs::Inline => {
            let r = work(&mut part);
            (part, Ok(r))
        }
        Runs::Blocking => {
            // The guard travels with the work and comes back with it; if the
            // blocking task is lost (a panic in Loro, the runtime shutting
            // down) so is the guard, and the lock is released by its drop.
            let lock = Arc::clone(OwnedMutexGuard::mutex(&part));
            match tokio::task::spawn_blocking(move || {
                crate::priority::background();
                let r = work(&mut part);
                (part, r)
            })
            .await
            {
                Ok((part, r)) => (part, Ok(r)),
                Err(e) => {
                    tracing::error!(error = %e, "document work failed");
                    (
                        lock.lock_owned().await,
                        Err(DocError::BadUpdate("the server failed to apply it".into())),
                    )
                }
            }
        }
    }
}

/// Hands a closing room's last snapshot to the store when the store queue
/// refused one of its changes (rare: the disk fell behind). It must reach
/// the store before a later load of the room does, so when the document is
/// free (the last member left; nobody imports) it is exported right here,
/// on the caller; otherwise a task waits for the document lock.
pub(super) fn close(doc: DocLock, room: RoomId) {
    if let Ok(mut part) = doc.try_lock() {
        part.close(&room);
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn(async move {
        let part = doc.lock_owned().await;
        if part.store.as_ref().is_some_and(StoreLink::is_dirty) {
            let _ = run(part, Runs::Blocking, move |p| p.close(&room)).await;
        }
    });
}
