//! A test hook that watches the store thread: which rooms each commit
//! wrote, which rooms are being decoded, with a way to hold a room's
//! decoding (standing in for a heavy room that takes seconds to load), and
//! how many commands reached the thread (each one a wake-up).
//! Tests await these events instead of sleeping or reading the file,
//! which redb keeps locked.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex};

use tokio::sync::broadcast;

/// What the store did.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A commit wrote changes of these rooms to disk.
    Committed(Vec<String>),
    /// A room's records are being decoded (a load in progress).
    Decoding(String),
}

/// See the module documentation. Cheap to clone; clones share state.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct StoreProbe(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    events: broadcast::Sender<StoreEvent>,
    held: Mutex<HashSet<String>>,
    released: Condvar,
    received: AtomicU64,
}

impl Default for StoreProbe {
    fn default() -> Self {
        Self(Arc::new(Inner {
            events: broadcast::channel(4096).0,
            held: Mutex::default(),
            released: Condvar::new(),
            received: AtomicU64::new(0),
        }))
    }
}

/// Decoding of a room waits while this lives.
#[doc(hidden)]
#[derive(Debug)]
pub struct Hold(StoreProbe, String);

impl Drop for Hold {
    fn drop(&mut self) {
        let inner = &(self.0).0;
        inner.held.lock().remove(&self.1);
        inner.released.notify_all();
    }
}

impl StoreProbe {
    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.0.events.subscribe()
    }

    /// Holds the decoding of `room` until the returned guard is dropped.
    pub fn hold_decoding(&self, room: &str) -> Hold {
        self.0.held.lock().insert(room.to_owned());
        Hold(self.clone(), room.to_owned())
    }

    /// Commands the store thread has received so far: loads, flushes and
    /// wake-ups (one per window with changes), never one per change.
    pub fn received_commands(&self) -> u64 {
        self.0.received.load(Ordering::Acquire)
    }

    pub(crate) fn received(&self) {
        self.0.received.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn committed(&self, rooms: Vec<String>) {
        let _ = self.0.events.send(StoreEvent::Committed(rooms));
    }

    /// Called where a room is decoded: reports it, then blocks while the
    /// room is held.
    pub(crate) fn decoding(&self, room: &str) {
        let _ = self.0.events.send(StoreEvent::Decoding(room.to_owned()));
        let mut held = self.0.held.lock();
        while held.contains(room) {
            self.0.released.wait(&mut held);
        }
    }
}

/// Compaction holds by room (a test hook: see [`hold_compaction`]).
#[derive(Default)]
struct Compactions {
    /// Rooms whose next compaction waits, with what the test awaits.
    held: HashMap<String, Arc<CompactionGate>>,
}

#[derive(Default)]
struct CompactionGate {
    started: tokio::sync::Notify,
    finished: tokio::sync::Notify,
    released: Mutex<bool>,
    release: Condvar,
}

fn compactions() -> &'static Mutex<Compactions> {
    static HELD: OnceLock<Mutex<Compactions>> = OnceLock::new();
    HELD.get_or_init(Mutex::default)
}

/// A test hook: the next compactions of a room (by id) wait, on the
/// thread where they run, until [`CompactionHold::release`] or the
/// drop of the hold, standing in for a compaction of seconds. Rooms of
/// other tests (other ids) are not affected.
#[doc(hidden)]
pub fn hold_compaction(room: &str) -> CompactionHold {
    let gate = Arc::new(CompactionGate::default());
    compactions()
        .lock()
        .held
        .insert(room.to_owned(), Arc::clone(&gate));
    CompactionHold {
        room: room.to_owned(),
        gate,
    }
}

/// See [`hold_compaction`].
#[doc(hidden)]
pub struct CompactionHold {
    room: String,
    gate: Arc<CompactionGate>,
}

impl std::fmt::Debug for CompactionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactionHold")
            .field("room", &self.room)
            .finish_non_exhaustive()
    }
}

impl CompactionHold {
    /// Waits until a compaction of the room is running (and held).
    pub async fn started(&self) {
        self.gate.started.notified().await;
    }

    /// Lets the held compaction (and later ones) go on.
    pub fn release(&self) {
        *self.gate.released.lock() = true;
        self.gate.release.notify_all();
    }

    /// Waits until a compaction of the room has been swapped in (or
    /// abandoned), after [`Self::release`].
    pub async fn finished(&self) {
        self.gate.finished.notified().await;
    }
}

impl Drop for CompactionHold {
    fn drop(&mut self) {
        self.release();
        let mut all = compactions().lock();
        if all
            .held
            .get(&self.room)
            .is_some_and(|g| Arc::ptr_eq(g, &self.gate))
        {
            all.held.remove(&self.room);
        }
    }
}

/// Called on the blocking thread where a compaction of `room` starts:
/// blocks while a test holds it.
pub(crate) fn compaction_starts(room: &str) {
    let gate = compactions().lock().held.get(room).cloned();
    if let Some(gate) = gate {
        gate.started.notify_one();
        let mut released = gate.released.lock();
        while !*released {
            gate.release.wait(&mut released);
        }
    }
}

/// Called once a compaction of `room` is swapped in or abandoned.
pub(crate) fn compaction_finished(room: &str) {
    let gate = compactions().lock().held.get(room).cloned();
    if let Some(gate) = gate {
        gate.finished.notify_one();
    }
}
