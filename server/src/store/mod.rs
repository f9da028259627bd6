//! Rooms on disk: an embedded [redb] database (one file, ACID, fsync'd
//! commits, pure Rust) under the data directory.
//!
//! The rooms never wait for the disk. After importing an update (under its
//! lock) a room leaves the new operations in the store's inbox, a short
//! lock that never waits for the thread, and only the first change of a
//! window wakes it; the thread appends everything that arrived within one
//! flush window (default 100 ms) in one write transaction with
//! `Durability::Immediate`. Every so many updates the room sends its whole
//! snapshot instead, which replaces the stored updates (compaction), so a
//! restart loads one snapshot and a few updates.
//!
//! A room is loaded on its first join (its records read by this thread, so
//! it sees everything queued before it, then decoded on a blocking thread so
//! a heavy room never stretches the flush window), which keeps startup fast
//! with many rooms.
//! A failed commit keeps the batch for the next window, logs one error per
//! failure streak and tells the affected rooms' members `storage_failed`.
//! See `docs/storage.md`.
//!
//! By concern: `handle.rs` is what rooms call, `persist.rs` the policy of
//! what a room writes and when, `schema.rs` the tables and the file's
//! format, `worker.rs` the store thread (with `worker/commit.rs`,
//! `worker/file.rs`, `worker/sweep.rs`). This file opens the store and
//! starts and stops its thread.

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

mod handle;
mod persist;
mod schema;
#[cfg(test)]
mod tests;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use collab_doc::RoomDoc;
use redb::Database;
use tokio::sync::oneshot;
use tracing::{error, info};

use crate::Shared;
use crate::probe::StoreProbe;
use handle::{COMMANDS, Cmd, Inbox, QUEUE};
use schema::{OpenError, open_db};
use worker::Worker;

pub(crate) use handle::{DocKey, LoadedTree, Queued, StoreHandle};
pub(crate) use persist::StoreLink;
pub use schema::DB_FILE;

/// Where rooms are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Storage {
    /// Nothing is stored: a room is forgotten when its last member leaves
    /// and everything is gone when the server stops. The default of
    /// [`crate::Config`], so tests and an embedded server stay hermetic.
    #[default]
    Memory,
    /// Rooms persist in `DIR/rooms.redb` (the directory is created).
    Dir(PathBuf),
}

impl Storage {
    /// The platform's data directory for collab (`$XDG_DATA_HOME/collab`,
    /// `~/.local/share/collab`, `~/Library/Application Support/collab`...).
    pub fn default_dir() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("collab"))
    }
}

/// A switch that makes every store commit fail, for tests of the failure
/// path (running as root, a read-only directory does not fail writes).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct StoreFault(Arc<AtomicBool>);

impl StoreFault {
    pub fn set(&self, failing: bool) {
        self.0.store(failing, Ordering::Release);
    }

    fn failing(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A room's document as stored.
pub(crate) struct Loaded {
    pub doc: RoomDoc,
    /// Stored updates on top of the snapshot (compaction counts from here).
    pub updates: usize,
    pub bytes: usize,
}

/// What the store could not write before it closed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Unsaved {
    /// Queued changes (updates and snapshots) not written.
    pub changes: usize,
    /// Rooms they belong to.
    pub rooms: usize,
    /// The database file.
    pub path: PathBuf,
}

/// The open database, before and after its thread starts.
pub(crate) struct Store {
    handle: StoreHandle,
    thread: Option<(Opened, Receiver<Cmd>, Options)>,
}

/// The database, or why the file is damaged.
enum Opened {
    Db(Database),
    /// The file exists but cannot be used as a store. The server still
    /// runs (no crash loop), refuses every stored room with a clear error,
    /// and never writes to the file.
    Damaged(String),
}

#[derive(Debug, Clone)]
struct Options {
    path: PathBuf,
    flush_interval: Duration,
    room_ttl: Option<Duration>,
    fault: StoreFault,
    probe: Option<StoreProbe>,
}

impl Store {
    /// Opens (creating) `dir/rooms.redb`. The error is one sentence for
    /// the operator.
    pub(crate) fn open(
        dir: &Path,
        flush_interval: Duration,
        room_ttl: Option<Duration>,
        fault: Option<StoreFault>,
        probe: Option<StoreProbe>,
    ) -> std::io::Result<Store> {
        let advice = |e: &dyn std::fmt::Display| {
            let e = e.to_string();
            std::io::Error::other(format!(
                "cannot open the room store in {} ({}): pass --data-dir with a writable directory no other collab-server uses, or --memory to keep nothing",
                dir.display(),
                e.trim_end_matches('.')
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| advice(&e))?;
        let path = dir.join(DB_FILE);
        let opened = match open_db(&path) {
            Ok(db) => Opened::Db(db),
            Err(OpenError::Damaged(why)) => {
                error!(
                    path = %path.display(),
                    error = %why,
                    "the room store file is damaged: every stored room is refused to its joiners and nothing is written to the file. Stop the server and restore the file from a backup, or move it aside to start every room empty"
                );
                Opened::Damaged(why)
            }
            Err(OpenError::Other(e)) => return Err(advice(&e)),
        };
        let (tx, rx) = sync_channel(COMMANDS);
        if matches!(opened, Opened::Db(_)) {
            info!(path = %path.display(), "room store open");
        }
        Ok(Store {
            handle: StoreHandle {
                tx,
                path: Arc::new(path.clone()),
                inbox: Arc::new(Inbox::new(QUEUE)),
                probe: probe.clone(),
            },
            thread: Some((
                opened,
                rx,
                Options {
                    path,
                    flush_interval: flush_interval
                        .clamp(Duration::from_millis(1), Duration::from_secs(60)),
                    room_ttl,
                    fault: fault.unwrap_or_default(),
                    probe,
                },
            )),
        })
    }

    pub(crate) fn handle(&self) -> StoreHandle {
        self.handle.clone()
    }

    /// Starts the store thread. `shared` lets it tell rooms about failures
    /// and spare live rooms from the ttl.
    pub(crate) fn start(mut self, shared: Weak<Shared>) -> std::io::Result<Running> {
        let Some((opened, rx, opts)) = self.thread.take() else {
            return Err(std::io::Error::other("the store was started twice"));
        };
        let worker = Worker::new(opened, rx, Arc::clone(&self.handle.inbox), opts, shared);
        let thread = std::thread::Builder::new()
            .name("collab-store".into())
            // At normal priority: every joiner of a stored room waits for
            // it to read the room (`priority.rs`); its commits yield to
            // the workers every few inserts instead (`worker/commit.rs`).
            .spawn(move || worker.run())?;
        Ok(Running {
            handle: self.handle,
            thread: Some(thread),
        })
    }
}

/// The store thread, owned by `run`.
pub(crate) struct Running {
    handle: StoreHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Commits everything queued so far; false if the commit failed.
    #[allow(dead_code)]
    pub(crate) async fn flush(&self) -> bool {
        let (reply, rx) = oneshot::channel();
        let tx = self.handle.tx.clone();
        let sent = tokio::task::spawn_blocking(move || tx.send(Cmd::Flush { reply })).await;
        matches!(sent, Ok(Ok(()))) && rx.await.unwrap_or(false)
    }

    /// Commits everything queued and closes the database; says what could
    /// not be written.
    pub(crate) async fn shutdown(mut self) -> Unsaved {
        let (reply, rx) = oneshot::channel();
        let tx = self.handle.tx.clone();
        let sent = tokio::task::spawn_blocking(move || tx.send(Cmd::Shutdown { reply })).await;
        let mut unsaved = Unsaved::default();
        if matches!(sent, Ok(Ok(()))) {
            unsaved = rx.await.unwrap_or_default();
        }
        if let Some(t) = self.thread.take() {
            // The thread ends right after its reply; joining closes the file
            // before `run` returns (a restart in the same process reopens it).
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        unsaved
    }
}
