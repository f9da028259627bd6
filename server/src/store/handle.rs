//! What rooms call: the [`StoreHandle`] a stored room keeps, the inbox its
//! changes wait in for the store thread's next window, and a room's load
//! (read by the thread, decoded on a blocking thread).
//!
//! Nothing here waits for the disk, and a change does not wake the store
//! thread: relaying a keystroke never pays for the store's commit window.
//! A change is pushed into the [`Inbox`] under a short lock (a `Vec` push;
//! the thread only ever swaps the `Vec` out under it); only the first
//! change of a window sends the thread a [`Cmd::Wake`], and the thread takes
//! the whole inbox when the window ends. Before, every change went through
//! a channel that woke the thread, which then competed with the runtime's
//! workers for the core once per keystroke (BENCHMARKS.md, issue 16: p99
//! 3.4 times the memory-only p99). A full inbox is reported to the room
//! ([`Queued::Full`]), whose persistence policy (`persist.rs`) then sends
//! its whole snapshot with a later change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use collab_doc::RoomDoc;
use collab_doc::tree::Tree;
use collab_protocol::{ErrorCode, ProtocolError, RoomId};
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tracing::{debug, error};

use super::{Loaded, Unsaved};
use crate::probe::StoreProbe;

/// Changes waiting for the store thread's window. Enough for bursts of
/// thousands of updates per window; past it a room falls back to a
/// snapshot.
pub(super) const QUEUE: usize = 16 * 1024;

/// Commands for the store thread besides changes (which wait in the
/// inbox): a handful at a time.
pub(super) const COMMANDS: usize = 1024;

/// What the store thread is asked to do.
pub(super) enum Cmd {
    /// The inbox was empty and now holds a change (start a window), or
    /// it is half full (take it in now).
    Wake,
    Load {
        key: DocKey,
        reply: oneshot::Sender<Result<Stored, LoadError>>,
    },
    /// The sizes of a room's workspace documents (see `schema::SIZES`).
    Sizes {
        room: RoomId,
        reply: oneshot::Sender<Result<Vec<(String, u64)>, LoadError>>,
    },
    Flush {
        reply: oneshot::Sender<bool>,
    },
    Shutdown {
        reply: oneshot::Sender<Unsaved>,
    },
}

/// Where one document's records are kept: the room's id for its main
/// document (every store written before workspaces loads as it is), and
/// `ROOM/tree`, `ROOM/COUNTER@PEER` for a workspace's tree and files. A
/// room id holds no `/` (protocol section 7), so no key of one room is
/// another room's, and a room's keys are the range `ROOM/`.. beside `ROOM`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DocKey {
    room: RoomId,
    /// `ROOM/DOC`; `None` for the main document.
    key: Option<Arc<str>>,
}

impl DocKey {
    /// Document `doc` (`tree`, `COUNTER@PEER`) of `room`.
    pub(crate) fn of(room: &RoomId, doc: impl std::fmt::Display) -> Self {
        Self {
            room: room.clone(),
            key: Some(format!("{}/{doc}", room.as_str()).into()),
        }
    }

    pub(crate) fn room(&self) -> &RoomId {
        &self.room
    }

    pub(crate) fn as_str(&self) -> &str {
        self.key.as_deref().unwrap_or(self.room.as_str())
    }
}

impl From<&RoomId> for DocKey {
    /// A room's main document.
    fn from(room: &RoomId) -> Self {
        Self {
            room: room.clone(),
            key: None,
        }
    }
}

impl From<&DocKey> for DocKey {
    fn from(key: &DocKey) -> Self {
        key.clone()
    }
}

impl std::fmt::Display for DocKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One queued change, kept until committed.
#[derive(Debug)]
pub(super) enum Op {
    Append(DocKey, Vec<u8>),
    Snapshot(DocKey, Vec<u8>),
    /// What a workspace document counts against its room's bytes.
    Size(DocKey, u64),
}

impl Op {
    pub(super) fn key(&self) -> &DocKey {
        match self {
            Op::Append(k, _) | Op::Snapshot(k, _) | Op::Size(k, _) => k,
        }
    }

    pub(super) fn room(&self) -> &RoomId {
        self.key().room()
    }
}

/// Where rooms leave their changes for the store thread.
#[derive(Debug)]
pub(super) struct Inbox {
    state: Mutex<InboxState>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct InboxState {
    /// In the order the rooms queued them.
    ops: Vec<Op>,
    /// The last snapshots of rooms that closed while the inbox was full:
    /// at most one per room, taken with the inbox (so before a later load
    /// of the same room).
    closing: HashMap<DocKey, Vec<u8>>,
    /// The store thread stopped: nothing more is taken.
    closed: bool,
}

/// What the store thread takes from the inbox at once.
#[derive(Debug, Default)]
pub(super) struct Taken {
    pub(super) ops: Vec<Op>,
    pub(super) closing: HashMap<DocKey, Vec<u8>>,
}

impl Inbox {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            capacity,
        }
    }

    /// Adds `op`; `Ok(true)` when the thread must be woken: the first
    /// change waiting (a window starts), or the inbox half full (the thread
    /// takes it into its batch early, so a long window or a burst never
    /// fills it: like the channel before it, the inbox bounds what the
    /// thread has not taken yet, not what a window holds).
    fn push(&self, op: Op) -> Result<bool, Queued> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(Queued::Closed);
        }
        if st.ops.len() >= self.capacity {
            return Err(Queued::Full);
        }
        st.ops.push(op);
        let n = st.ops.len();
        Ok((n == 1 && st.closing.is_empty()) || n == self.half())
    }

    fn half(&self) -> usize {
        (self.capacity / 2).max(1)
    }

    /// Whether the thread should take the inbox in before its window ends.
    /// (Not at every wake: taking in the first change of a window would
    /// make the next change the first again, a wake per change.)
    pub(super) fn is_half_full(&self) -> bool {
        self.state.lock().ops.len() >= self.half()
    }

    /// Everything waiting (the lock is held for two swaps).
    pub(super) fn take(&self) -> Taken {
        let mut st = self.state.lock();
        Taken {
            ops: std::mem::take(&mut st.ops),
            closing: std::mem::take(&mut st.closing),
        }
    }

    /// Whether a change waits.
    pub(super) fn is_waiting(&self) -> bool {
        let st = self.state.lock();
        !st.ops.is_empty() || !st.closing.is_empty()
    }

    /// A closing room's snapshot left beside the full inbox, as
    /// [`StoreHandle::closing_snapshot`] leaves it.
    #[cfg(test)]
    pub(super) fn leave_closing(&self, room: RoomId, data: Vec<u8>) {
        self.state.lock().closing.insert(DocKey::from(&room), data);
    }

    /// The snapshot a closing room left beside the full inbox.
    #[cfg(test)]
    pub(super) fn closing_of(&self, room: &RoomId) -> Option<Vec<u8>> {
        self.state.lock().closing.get(&DocKey::from(room)).cloned()
    }

    /// Everything waiting, and no more changes from now on (the thread
    /// stops).
    pub(super) fn close(&self) -> Taken {
        let mut st = self.state.lock();
        st.closed = true;
        Taken {
            ops: std::mem::take(&mut st.ops),
            closing: std::mem::take(&mut st.closing),
        }
    }
}

/// A room's records as read, not yet decoded: the store thread only reads
/// (a few milliseconds); decoding a heavy room takes seconds and happens
/// off that thread, so commits keep their window meanwhile.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    pub(super) snapshot: Option<Vec<u8>>,
    pub(super) updates: Vec<Vec<u8>>,
}

/// Why a room could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Its records (or the whole file) do not read or decode: the room is
    /// refused, never served empty or partial.
    Damaged(String),
    /// Something passing (the store stopping).
    Failed(String),
}

/// What a room keeps to reach the store: cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StoreHandle {
    /// Loads, flushes, the shutdown, and one wake per window.
    pub(super) tx: SyncSender<Cmd>,
    /// Changes, waiting for the window.
    pub(super) inbox: Arc<Inbox>,
    /// The database file, for messages.
    pub(super) path: Arc<PathBuf>,
    /// Test hook, see [`StoreProbe`].
    pub(super) probe: Option<StoreProbe>,
}

/// Why a room's change did not reach the store queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    Yes,
    /// The queue is full: the room must send a snapshot later.
    Full,
    /// The store is gone (shutting down).
    Closed,
}

impl StoreHandle {
    fn queue(&self, op: Op) -> Queued {
        match self.inbox.push(op) {
            Ok(false) => Queued::Yes,
            Ok(true) => self.wake(),
            Err(why) => why,
        }
    }

    /// Tells the thread a window starts. A full command queue means the
    /// thread has commands to read, after each of which it looks at the
    /// inbox: the wake is not needed then.
    fn wake(&self) -> Queued {
        match self.tx.try_send(Cmd::Wake) {
            Ok(()) | Err(TrySendError::Full(_)) => Queued::Yes,
            Err(TrySendError::Disconnected(_)) => Queued::Closed,
        }
    }

    /// Queues new operations of `room`. Never blocks, and wakes the store
    /// thread only for the first change of a window.
    pub(crate) fn append(&self, key: impl Into<DocKey>, data: Vec<u8>) -> Queued {
        self.queue(Op::Append(key.into(), data))
    }

    /// Queues what workspace document `key` counts against its room's
    /// bytes. Best effort: a full inbox drops it (the room's total then
    /// undercounts that file until it is opened again).
    pub(crate) fn size(&self, key: DocKey, bytes: usize) {
        let _ = self.queue(Op::Size(key, u64::try_from(bytes).unwrap_or(u64::MAX)));
    }

    /// The sizes of `room`'s workspace documents, as stored and queued.
    pub(crate) async fn sizes(&self, room: &RoomId) -> Result<Vec<(String, u64)>, ProtocolError> {
        let failed = || {
            ProtocolError::new(
                ErrorCode::StorageFailed,
                "The server could not load this room from its store; try again later.",
            )
        };
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.clone();
        let cmd = Cmd::Sizes {
            room: room.clone(),
            reply,
        };
        tokio::task::spawn_blocking(move || tx.send(cmd))
            .await
            .map_err(|_| failed())?
            .map_err(|_| failed())?;
        rx.await.map_err(|_| failed())?.map_err(|e| {
            error!(room = %room, error = ?e, "cannot read the workspace's sizes");
            failed()
        })
    }

    /// Queues a snapshot of the room that does not cover its latest
    /// updates (a compaction's, made off the room's lock while updates went
    /// on), then those updates: taken in together, so one commit replaces
    /// the room's stored updates by them.
    pub(crate) fn snapshot_then(
        &self,
        key: impl Into<DocKey>,
        data: Vec<u8>,
        after: Vec<Vec<u8>>,
    ) -> Queued {
        let room = key.into();
        let mut st = self.inbox.state.lock();
        if st.closed {
            return Queued::Closed;
        }
        let before = st.ops.len();
        if before + 1 + after.len() > self.inbox.capacity {
            return Queued::Full;
        }
        st.ops.push(Op::Snapshot(room.clone(), data));
        st.ops
            .extend(after.into_iter().map(|u| Op::Append(room.clone(), u)));
        let half = self.inbox.half();
        let wake =
            (before == 0 && st.closing.is_empty()) || (before < half && st.ops.len() >= half);
        drop(st);
        if wake { self.wake() } else { Queued::Yes }
    }

    /// The whole state of a room that is closing with changes the full
    /// inbox refused: it has no next change to carry them, so when the
    /// inbox is still full they wait beside it instead of being lost.
    /// Never blocks for long (a short lock, no I/O).
    pub(crate) fn closing_snapshot(&self, key: impl Into<DocKey>, data: Vec<u8>) -> Queued {
        let room = key.into();
        let mut st = self.inbox.state.lock();
        if st.closed {
            return Queued::Closed;
        }
        if st.ops.len() < self.inbox.capacity {
            st.ops.push(Op::Snapshot(room.clone(), data));
        } else {
            st.closing.insert(room, data);
        }
        let first = st.ops.len() + st.closing.len() == 1;
        drop(st);
        if first { self.wake() } else { Queued::Yes }
    }

    /// The room as stored, with everything queued before this call. The
    /// store thread reads the records; they are decoded on a blocking
    /// thread, so a heavy room never holds up the store's commits.
    pub(crate) async fn load(&self, key: impl Into<DocKey>) -> Result<Loaded, ProtocolError> {
        self.load_with(key.into(), decode).await
    }

    /// A workspace's tree as stored (`None`: the room is no workspace).
    pub(crate) async fn load_tree(
        &self,
        room: &RoomId,
    ) -> Result<Option<LoadedTree>, ProtocolError> {
        self.load_with(DocKey::of(room, "tree"), decode_tree).await
    }

    /// Document `key` as stored, read by the store thread and decoded by
    /// `decode` on a blocking thread.
    async fn load_with<T: Send + 'static>(
        &self,
        key: DocKey,
        decode: fn(&DocKey, Stored) -> Result<T, LoadError>,
    ) -> Result<T, ProtocolError> {
        let room = &key;
        let (reply, rx) = oneshot::channel();
        let fail = |why: LoadError| match why {
            LoadError::Damaged(why) => {
                error!(
                    room = %room,
                    path = %self.path.display(),
                    error = %why,
                    "a room's stored records are damaged: the room is refused to its joiners, the other rooms are served. Stop the server and restore the file from a backup (or delete the file to start every room empty)"
                );
                ProtocolError::new(
                    ErrorCode::StorageFailed,
                    "This room's stored document is damaged, so the server will not serve it (nothing is overwritten). Tell the server's operator: its log says what to do.",
                )
            }
            LoadError::Failed(why) => {
                error!(room = %room, error = %why, "cannot load the room from the store");
                ProtocolError::new(
                    ErrorCode::StorageFailed,
                    "The server could not load this room from its store; try again later.",
                )
            }
        };
        let stopped = || fail(LoadError::Failed("the store stopped".into()));
        let tx = self.tx.clone();
        let cmd = Cmd::Load {
            key: key.clone(),
            reply,
        };
        // A full queue: wait for room off the runtime's threads.
        tokio::task::spawn_blocking(move || tx.send(cmd))
            .await
            .map_err(|_| stopped())?
            .map_err(|_| stopped())?;
        let stored = rx.await.map_err(|_| stopped())?.map_err(fail)?;
        let name = room.clone();
        let probe = self.probe.clone();
        // At nice 10, below the workers but never starved: a joiner waits
        // for it (`priority.rs`).
        crate::priority::heavy(move || {
            if let Some(p) = probe {
                p.decoding(name.as_str());
            }
            decode(&name, stored)
        })
        .await
        .map_err(|crate::priority::Lost| LoadError::Damaged("decoding panicked".into()))
        .and_then(|r| r)
        .map_err(fail)
    }
}

/// A room's document from its records. Any record that does not decode
/// makes the whole room damaged: serving the rest would show members a
/// partial text they would then edit and store over the damaged records.
pub(super) fn decode(room: &DocKey, stored: Stored) -> Result<Loaded, LoadError> {
    let Stored { snapshot, updates } = stored;
    let bytes = updates.iter().map(Vec::len).sum();
    // One batch: importing a few hundred interleaved keystrokes one by
    // one replays concurrent history per update (seconds per room).
    let (doc, failed) = RoomDoc::load(snapshot.as_deref(), &updates)
        .map_err(|e| LoadError::Damaged(format!("the stored snapshot does not decode: {e}")))?;
    if let Some((i, e)) = failed.first() {
        return Err(LoadError::Damaged(format!(
            "{} of {} stored updates do not decode (the first, record {i}: {e})",
            failed.len(),
            updates.len()
        )));
    }
    debug!(room = %room, updates = updates.len(), "room loaded");
    Ok(Loaded {
        doc,
        updates: updates.len(),
        bytes,
    })
}

/// A workspace's tree as stored.
#[derive(Debug)]
pub(crate) struct LoadedTree {
    pub tree: Tree,
    /// Stored updates on top of its snapshot.
    pub updates: usize,
    /// Its records' bytes (what the tree counts against the workspace's
    /// bytes).
    pub bytes: usize,
}

/// A workspace's tree from its records (`None` when it has none: the room
/// is no workspace); damaged as a whole when any record does not decode.
pub(super) fn decode_tree(key: &DocKey, stored: Stored) -> Result<Option<LoadedTree>, LoadError> {
    let Stored { snapshot, updates } = stored;
    if snapshot.is_none() && updates.is_empty() {
        return Ok(None);
    }
    let mut tree = match &snapshot {
        Some(s) => Tree::from_snapshot(s)
            .map_err(|e| LoadError::Damaged(format!("the stored tree does not decode: {e}")))?,
        None => Tree::new(),
    };
    for (i, u) in updates.iter().enumerate() {
        tree.import(u).map_err(|e| {
            LoadError::Damaged(format!("stored tree update {i} does not decode: {e}"))
        })?;
    }
    let bytes = snapshot.as_ref().map_or(0, Vec::len) + updates.iter().map(Vec::len).sum::<usize>();
    debug!(key = %key, updates = updates.len(), "tree loaded");
    Ok(Some(LoadedTree {
        tree,
        updates: updates.len(),
        bytes,
    }))
}
