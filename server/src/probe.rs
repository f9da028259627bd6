//! A test hook that watches the store thread: which rooms each commit
//! wrote, which rooms are being decoded, with a way to hold a room's
//! decoding (standing in for a heavy room that takes seconds to load), and
//! how many commands reached the thread (each one a wake-up).
//! Tests await these events instead of sleeping or reading the file,
//! which redb keeps locked.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
