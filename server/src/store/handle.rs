//! What rooms call: the [`StoreHandle`] a stored room keeps, the commands
//! it queues for the store thread, and a room's load (read by the thread,
//! decoded on a blocking thread).
//!
//! Nothing here waits for the disk: changes are queued with a
//! non-blocking `try_send`, and a full queue is reported to the room
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

/// Commands queued for the store thread. Enough for bursts of thousands
/// of updates per window; past it a room falls back to a snapshot.
pub(super) const QUEUE: usize = 16 * 1024;

/// What the store thread is asked to do.
pub(super) enum Cmd {
    Append {
        room: RoomId,
        data: Vec<u8>,
    },
    Snapshot {
        room: RoomId,
        data: Vec<u8>,
    },
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
    pub(super) tx: SyncSender<Cmd>,
    /// The database file, for messages.
    pub(super) path: Arc<PathBuf>,
    /// Test hook, see [`StoreProbe`].
    pub(super) probe: Option<StoreProbe>,
    /// The last snapshots of rooms that closed while the queue was full:
    /// at most one per room, taken by the store thread before anything
    /// else it handles (so before a later load of the same room).
    pub(super) closing: Arc<Mutex<HashMap<RoomId, Vec<u8>>>>,
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
    fn queue(&self, cmd: Cmd) -> Queued {
        match self.tx.try_send(cmd) {
            Ok(()) => Queued::Yes,
            Err(TrySendError::Full(_)) => Queued::Full,
            Err(TrySendError::Disconnected(_)) => Queued::Closed,
        }
    }

    /// Queues new operations of `room`. Never blocks.
    pub(crate) fn append(&self, room: &RoomId, data: Vec<u8>) -> Queued {
        self.queue(Cmd::Append {
            room: room.clone(),
            data,
        })
    }

    /// Queues the room's whole state, replacing its stored updates.
    pub(crate) fn snapshot(&self, room: &RoomId, data: Vec<u8>) -> Queued {
        self.queue(Cmd::Snapshot {
            room: room.clone(),
            data,
        })
    }

    /// The whole state of a room that is closing with changes the full
    /// queue refused: it has no next change to carry them, so when the
    /// queue is still full they wait beside it instead of being lost.
    /// Never blocks for long (a short lock, no I/O).
    pub(crate) fn closing_snapshot(&self, room: &RoomId, data: Vec<u8>) -> Queued {
        match self.tx.try_send(Cmd::Snapshot {
            room: room.clone(),
            data,
        }) {
            Ok(()) => Queued::Yes,
            Err(TrySendError::Full(Cmd::Snapshot { room, data })) => {
                self.closing.lock().insert(room, data);
                Queued::Yes
            }
            Err(_) => Queued::Closed,
        }
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
