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
        room: RoomId,
        reply: oneshot::Sender<Result<Stored, LoadError>>,
    },
    Flush {
        reply: oneshot::Sender<bool>,
    },
    Shutdown {
        reply: oneshot::Sender<Unsaved>,
    },
}

/// One queued change, kept until committed.
#[derive(Debug)]
pub(super) enum Op {
    Append(RoomId, Vec<u8>),
    Snapshot(RoomId, Vec<u8>),
}

impl Op {
    pub(super) fn room(&self) -> &RoomId {
        match self {
            Op::Append(r, _) | Op::Snapshot(r, _) => r,
        }
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
    closing: HashMap<RoomId, Vec<u8>>,
    /// The store thread stopped: nothing more is taken.
    closed: bool,
}

/// What the store thread takes from the inbox at once.
#[derive(Debug, Default)]
pub(super) struct Taken {
    pub(super) ops: Vec<Op>,
    pub(super) closing: HashMap<RoomId, Vec<u8>>,
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
        self.state.lock().closing.insert(room, data);
    }

    /// The snapshot a closing room left beside the full inbox.
    #[cfg(test)]
    pub(super) fn closing_of(&self, room: &RoomId) -> Option<Vec<u8>> {
        self.state.lock().closing.get(room).cloned()
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
    pub(crate) fn append(&self, room: &RoomId, data: Vec<u8>) -> Queued {
        self.queue(Op::Append(room.clone(), data))
    }

    /// Queues a snapshot of the room that does not cover its latest
    /// updates (a compaction's, made off the room's lock while updates went
    /// on), then those updates: taken in together, so one commit replaces
    /// the room's stored updates by them.
    pub(crate) fn snapshot_then(
        &self,
        room: &RoomId,
        data: Vec<u8>,
        after: Vec<Vec<u8>>,
    ) -> Queued {
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
    pub(crate) fn closing_snapshot(&self, room: &RoomId, data: Vec<u8>) -> Queued {
        let mut st = self.inbox.state.lock();
        if st.closed {
            return Queued::Closed;
        }
        if st.ops.len() < self.inbox.capacity {
            st.ops.push(Op::Snapshot(room.clone(), data));
        } else {
            st.closing.insert(room.clone(), data);
        }
        let first = st.ops.len() + st.closing.len() == 1;
        drop(st);
        if first { self.wake() } else { Queued::Yes }
    }

    /// The room as stored, with everything queued before this call. The
    /// store thread reads the records; they are decoded on a blocking
    /// thread, so a heavy room never holds up the store's commits.
    pub(crate) async fn load(&self, room: &RoomId) -> Result<Loaded, ProtocolError> {
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
            room: room.clone(),
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
        tokio::task::spawn_blocking(move || {
            crate::priority::background();
            if let Some(p) = probe {
                p.decoding(name.as_str());
            }
            decode(&name, stored)
        })
        .await
        .map_err(|e| LoadError::Damaged(format!("decoding panicked: {e}")))
        .and_then(|r| r)
        .map_err(fail)
    }
}

/// A room's document from its records. Any record that does not decode
/// makes the whole room damaged: serving the rest would show members a
/// partial text they would then edit and store over the damaged records.
pub(super) fn decode(room: &RoomId, stored: Stored) -> Result<Loaded, LoadError> {
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
