//! A room's document side: the merged `RoomDoc`, its way to the store and
//! who owns which peer id, behind a lock of its own that the relay of chat,
//! presence and membership never takes.
//!
//! CRDT work can be long: a paste's import, a newcomer's snapshot of a big
//! room, a compaction, a snapshot for the store (tens of ms to seconds).
//! mini-redis's `db.rs` puts it plainly: such work must not run under a
//! lock the hot path takes, nor on a runtime worker. So the document has
//! its own async lock (waiting for it parks the task, never a thread), and
//! work that is not known to be short runs on a thread of its own at nice
//! 10 (`priority::heavy`: below the workers, so other rooms' keystrokes go
//! first) while that room's lock is held: one room's heavy import delays that room's
//! next update alone; every other room, and chat in this one, go on.
//!
//! A keystroke stays on the worker: a small update into a detached
//! document is 2 to 3 µs, less than the hand-off to another thread.
//!
//! Compaction and the store's periodic snapshot do not hold the lock at
//! all (`collab_doc::CompactionJob`): the job is taken under the lock as
//! references to the bytes the room keeps for newcomers, runs on the
//! server's one background thread, in the idle class (`priority.rs`), with
//! nothing held, and its result is swapped in under the lock again
//! (microseconds). The store's snapshot is the compaction's,
//! handed over with the updates that arrived while it ran. So relaying in
//! a room never waits for its compaction or its store.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use collab_doc::{CompactionJob, DocError, LazyRoomDoc, PeerId, UpdateInfo, VersionVector};
use collab_protocol::RoomId;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::Room;
use crate::store::StoreLink;

/// Checkpoints older than this are dropped once a newer one is as old
/// (`NEED_GRACE` in `room.rs` is less).
const CHECKPOINT_KEPT: Duration = Duration::from_secs(120);

/// The owner of the peer ids the server authors (seeds).
pub(super) const SERVER_OWNER: &str = "";

/// Largest update imported on the runtime's worker; bigger ones go to a
/// thread of their own (`Runs::Blocking`). Keystrokes are about 90 bytes.
const INLINE_IMPORT_MAX_BYTES: usize = 4 * 1024;

/// The document side of a room.
#[derive(Debug)]
pub(super) struct DocPart {
    /// Bytes until an update arrives (`collab_doc::LazyRoomDoc`).
    pub doc: LazyRoomDoc,
    /// With storage: where accepted changes go, and when a snapshot is
    /// due (`store/persist.rs`).
    pub store: Option<StoreLink>,
    /// Told when a compaction is swapped in or abandoned.
    pub compacted: Arc<tokio::sync::Notify>,
    /// The room's version at recent compactions, oldest first (see
    /// `Room::take_compaction`).
    pub checkpoints: VecDeque<(Instant, VersionVector)>,
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
    /// Maybe long: on a thread at nice 10 (`priority::heavy`), the room's
    /// document lock held.
    Blocking,
}

pub(super) type DocLock = Arc<Mutex<DocPart>>;

impl DocPart {
    pub fn new(doc: LazyRoomDoc, store: Option<StoreLink>) -> DocLock {
        Arc::new(Mutex::new(Self {
            doc,
            store,
            compacted: Arc::default(),
            checkpoints: VecDeque::new(),
            owners: HashMap::new(),
        }))
    }

    /// Where importing an update of `len` bytes runs (what follows it,
    /// queueing for the store and taking a compaction job, is short).
    pub fn import_runs(&self, len: usize, max_doc_bytes: usize) -> Runs {
        if len <= INLINE_IMPORT_MAX_BYTES && self.doc.import_is_light(len, max_doc_bytes) {
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
        self.check_authors_with(info, session, false)
    }

    /// [`Self::check_authors`]; with `known_ok`, changes under another
    /// session's peer id that the room has already are let through (Loro
    /// ignores them): on a node sharing the room (`--redis`), a member back
    /// from another node brings what it saw there, which this node has once
    /// it has read the log that far (`Room::update_stored`). New changes
    /// under another's id are refused either way.
    pub fn check_authors_with(
        &self,
        info: &UpdateInfo,
        session: &str,
        known_ok: bool,
    ) -> Result<(), DocError> {
        let mut vv = None;
        for span in info.spans() {
            let Some(owner) = self.owners.get(&span.peer) else {
                continue;
            };
            if crate::access::same_secret(owner, session) {
                continue;
            }
            if owner == SERVER_OWNER || known_ok {
                let vv = vv.get_or_insert_with(|| self.doc.version_vector());
                if vv.get(&span.peer).copied().unwrap_or(0) >= span.end {
                    continue;
                }
            }
            return Err(DocError::PeerOwned(span.peer));
        }
        Ok(())
    }

    /// After an accepted import: store the bytes as received.
    pub fn after_import(&mut self, room: &RoomId, data: Vec<u8>) {
        if self.store.is_some() {
            // The bytes as received: they imported without pending parts,
            // so everything they depend on is stored before them, and a part
            // the room already had is ignored on reload. (Exporting "what
            // this import added" instead costs time that grows with the
            // document, on every keystroke.)
            self.persist(room, data);
        }
    }

    /// Whether a compaction is due: at least every `compact_every`
    /// imports, less often for a big document (see
    /// `collab_doc::next_compaction_after`), at a tail of
    /// `collab_doc::TAIL_COMPACT_BYTES`, or when the store wants a
    /// snapshot. Never while one is out.
    pub fn compaction_wanted(&self, compact_every: usize) -> bool {
        let store_wants = self.store.as_ref().is_some_and(StoreLink::wants_snapshot);
        (store_wants && !self.doc.is_compacting()) || self.doc.compaction_due(compact_every)
    }

    /// Notes the room's version now, for members connected long enough to
    /// have it; keeps the last one at least `NEED_GRACE` old and those
    /// since, at most one a second.
    pub fn checkpoint(&mut self, now: Instant) {
        if self
            .checkpoints
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_secs(1))
        {
            self.checkpoints.push_back((now, self.doc.version_vector()));
        }
        while self
            .checkpoints
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) >= CHECKPOINT_KEPT)
        {
            self.checkpoints.pop_front();
        }
    }

    /// The room's version at the latest checkpoint taken at least `grace`
    /// before `now` and not before `since`.
    pub fn checkpoint_before(
        &self,
        now: Instant,
        since: Instant,
        grace: Duration,
    ) -> Option<&VersionVector> {
        self.checkpoints
            .iter()
            .rev()
            .find(|(t, _)| *t >= since && now.duration_since(*t) >= grace)
            .map(|(_, vv)| vv)
    }

    /// Hands a change to the store, as the policy in `store/persist.rs`
    /// says. Never blocks and never exports.
    pub fn persist(&mut self, room: &RoomId, change: Vec<u8>) {
        if let Some(link) = self.store.as_mut() {
            link.persist(room, change);
        }
    }

    /// The room emptied: the store gets what it still lacks.
    fn close(&mut self, room: &RoomId) {
        if let Some(link) = self.store.as_mut() {
            link.close(&mut self.doc, room);
        }
    }
}

/// Runs a compaction job on the background thread (`priority.rs`),
/// with no lock held, then swaps its result in under the room's document
/// lock (see `collab_doc::RoomDoc::finish_compaction`) and hands the store
/// its snapshot when it wants one.
pub(super) fn spawn_compaction(room: Arc<Room>, job: CompactionJob) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        if let Ok(mut part) = room.doc.try_lock() {
            part.doc.compaction_abandoned();
        }
        return;
    };
    rt.spawn(async move {
        let id = room.id.clone();
        // Nobody waits for it and it holds no lock: in the idle class.
        let ran = crate::priority::background(move || {
            crate::probe::compaction_starts(id.as_str());
            job.run()
        })
        .await;
        let mut part = room.doc.lock().await;
        match ran {
            Ok(Ok(done)) => {
                let swapped = part.doc.finish_compaction(done);
                // Checked with the members' lock held: a room that emptied
                // (and may be loaded again from the store) hands nothing
                // more to the store, and one that has not cannot empty
                // before its snapshot is queued.
                let st = room.lock();
                if !st.dead
                    && let Some(link) = part.store.as_mut()
                {
                    link.store_compacted(&room.id, &swapped);
                }
            }
            Ok(Err(e)) => {
                part.doc.compaction_abandoned();
                tracing::warn!(room = %room.id, error = %e, "compacting the document failed");
            }
            Err(crate::priority::Lost) => {
                part.doc.compaction_abandoned();
                tracing::error!(room = %room.id, "compacting the document failed: its thread panicked");
            }
        }
        part.compacted.notify_waiters();
        drop(part);
        crate::probe::compaction_finished(room.id.as_str());
    });
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
            // work is lost (a panic in Loro, no thread) so is the guard, and
            // the lock is released by its drop.
            let lock = Arc::clone(OwnedMutexGuard::mutex(&part));
            // At nice 10, below the workers but never starved: only this
            // room waits for it (`priority.rs`).
            match crate::priority::heavy(move || {
                let r = work(&mut part);
                (part, r)
            })
            .await
            {
                Ok((part, r)) => (part, Ok(r)),
                Err(crate::priority::Lost) => {
                    tracing::error!("document work failed: its thread panicked");
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
