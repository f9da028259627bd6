//! Graceful shutdown, the mini-redis way: one broadcast tells every task to
//! stop, and each task holds a clone of an mpsc sender whose drop tells
//! `run` that the task is gone. `run` returns when the last sender drops
//! (or the grace period ends).

use tokio::sync::{broadcast, mpsc};

/// A task's view of the shutdown signal.
#[derive(Debug)]
pub(crate) struct Shutdown {
    is_shutdown: bool,
    notify: broadcast::Receiver<()>,
    /// Dropped with the task: `run` waits until every clone is gone.
    _done: mpsc::Sender<()>,
}

impl Shutdown {
    pub(crate) fn new(notify: broadcast::Receiver<()>, done: mpsc::Sender<()>) -> Self {
        Self {
            is_shutdown: false,
            notify,
            _done: done,
        }
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Waits for the signal; returns at once if it was already seen.
    /// Cancel safe.
    pub(crate) async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        // Lagged or Closed both mean: stop.
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}
