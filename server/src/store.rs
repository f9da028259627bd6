//! Rooms on disk: an embedded [redb] database (one file, ACID, fsync'd
//! commits, pure Rust) under the data directory.
//!
//! The rooms never wait for the disk. After importing an update (under its
//! lock) a room hands the new operations to the store thread with a
//! non-blocking `try_send`; the thread appends everything that arrived
//! within one flush window (default 100 ms) in one write transaction with
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

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use collab_doc::RoomDoc;
use collab_protocol::{ErrorCode, ProtocolError, RoomId};
use parking_lot::Mutex;
use redb::{Database, Durability, ReadableTable, TableDefinition};
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use crate::Shared;
use crate::clock::now_ms;
use crate::probe::StoreProbe;

/// Room id -> the room's latest stored snapshot.
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// (room id, sequence) -> an update made after that snapshot, in order.
const UPDATES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("updates");
/// Room id -> last activity, ms since the Unix epoch (for `room_ttl`).
const ACTIVE: TableDefinition<&str, u64> = TableDefinition::new("active");

/// The database file inside the data directory.
pub const DB_FILE: &str = "rooms.redb";

/// Commands queued for the store thread. Enough for bursts of thousands
/// of updates per window; past it a room falls back to a snapshot.
const QUEUE: usize = 16 * 1024;

/// A room writes its snapshot (and the store drops its updates) after
/// this many stored updates...
pub(crate) const SNAPSHOT_EVERY_UPDATES: usize = 1000;
/// ...or this many bytes of them, whichever comes first.
pub(crate) const SNAPSHOT_EVERY_BYTES: usize = 4 * 1024 * 1024;

/// How often the store checks that its file is still the one at its path
/// (a deleted data directory must not go unnoticed while nobody edits).
const FILE_CHECK_EVERY: Duration = Duration::from_secs(1);

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

enum Cmd {
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
    snapshot: Option<Vec<u8>>,
    updates: Vec<Vec<u8>>,
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

/// What a room keeps to reach the store: cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct StoreHandle {
    tx: SyncSender<Cmd>,
    /// The database file, for messages.
    path: Arc<PathBuf>,
    /// Test hook, see [`StoreProbe`].
    probe: Option<StoreProbe>,
    /// The last snapshots of rooms that closed while the queue was full:
    /// at most one per room, taken by the store thread before anything
    /// else it handles (so before a later load of the same room).
    closing: Arc<Mutex<HashMap<RoomId, Vec<u8>>>>,
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
fn decode(room: &RoomId, stored: Stored) -> Result<Loaded, LoadError> {
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
        let (tx, rx) = sync_channel(QUEUE);
        if matches!(opened, Opened::Db(_)) {
            info!(path = %path.display(), "room store open");
        }
        Ok(Store {
            handle: StoreHandle {
                tx,
                path: Arc::new(path.clone()),
                closing: Arc::default(),
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
        let (db, damaged) = match opened {
            Opened::Db(db) => (Some(db), None),
            Opened::Damaged(why) => (None, Some(why)),
        };
        let file = db.as_ref().and_then(|_| FileId::of(&opts.path));
        let worker = Worker {
            db,
            damaged,
            file,
            next_file_check: Instant::now() + FILE_CHECK_EVERY,
            replaced: false,
            deleted: false,
            rx,
            closing: Arc::clone(&self.handle.closing),
            opts,
            shared,
            pending: Vec::new(),
            window_start: None,
            next_seq: HashMap::new(),
            touched: HashMap::new(),
            deferred: VecDeque::new(),
            failing: false,
            told: HashSet::new(),
            next_sweep: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("collab-store".into())
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

/// Why the database file could not be opened.
enum OpenError {
    /// The file is there but is not a usable store (empty, truncated,
    /// corrupted): refuse its rooms, do not treat it as a fresh store.
    Damaged(String),
    /// Anything else (permissions, another server holding it): the
    /// operator picks another directory.
    Other(String),
}

/// Opens (creating) the database file and its tables.
fn open_db(path: &Path) -> Result<Database, OpenError> {
    // redb writes its header as it creates a file: an existing empty file
    // was truncated (a full disk, a bad copy), not a fresh store.
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => {
            return Err(OpenError::Damaged(
                "the file is empty (0 bytes) though a store was created there".into(),
            ));
        }
        _ => {}
    }
    let create = std::panic::catch_unwind(|| Database::create(path));
    let db = match create {
        Err(panic) => return Err(OpenError::Damaged(panic_message(panic.as_ref()))),
        Ok(Ok(db)) => db,
        Ok(Err(e)) => {
            use redb::{DatabaseError, StorageError};
            return Err(match e {
                DatabaseError::Storage(StorageError::Corrupted(why)) => OpenError::Damaged(why),
                DatabaseError::Storage(StorageError::Io(io))
                    if io.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    OpenError::Damaged(format!("the file is shorter than it says: {io}"))
                }
                other => OpenError::Other(other.to_string()),
            });
        }
    };
    // Create the tables so readers always find them.
    let init = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(SNAPSHOTS)?;
        txn.open_table(UPDATES)?;
        txn.open_table(ACTIVE)?;
        txn.commit()?;
        Ok(())
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(init)) {
        Ok(Ok(())) => Ok(db),
        Ok(Err(redb::Error::Corrupted(why))) => Err(OpenError::Damaged(why)),
        Ok(Err(e)) => Err(OpenError::Other(e.to_string())),
        Err(panic) => Err(OpenError::Damaged(panic_message(panic.as_ref()))),
    }
}

/// One queued change, kept until committed.
enum Op {
    Append(RoomId, Vec<u8>),
    Snapshot(RoomId, Vec<u8>),
}

impl Op {
    fn room(&self) -> &RoomId {
        match self {
            Op::Append(r, _) | Op::Snapshot(r, _) => r,
        }
    }
}

struct Worker {
    /// `None` between a failed reopen and the next retry, or for good
    /// when the file is damaged.
    db: Option<Database>,
    /// Why the file cannot be used: loads are refused and it is never
    /// written or reopened.
    damaged: Option<String>,
    /// The identity of the open file; see [`Worker::check_file`].
    file: Option<FileId>,
    next_file_check: Instant,
    /// The path holds another file: told once, nothing written.
    replaced: bool,
    /// The path is empty and recreating failed: told once.
    deleted: bool,
    rx: Receiver<Cmd>,
    /// See [`StoreHandle::closing_snapshot`].
    closing: Arc<Mutex<HashMap<RoomId, Vec<u8>>>>,
    opts: Options,
    shared: Weak<Shared>,
    /// Changes not yet committed, in arrival order.
    pending: Vec<Op>,
    /// When the oldest pending change arrived.
    window_start: Option<Instant>,
    /// Next update sequence per room (filled lazily from the table).
    next_seq: HashMap<RoomId, u64>,
    /// Rooms active since the last commit, with when.
    touched: HashMap<RoomId, u64>,
    /// Commands read while sweeping, handled after it.
    deferred: VecDeque<Cmd>,
    /// In a failure streak.
    failing: bool,
    /// Rooms told `storage_failed` in this streak.
    told: HashSet<RoomId>,
    next_sweep: Instant,
}

impl Worker {
    fn run(mut self) {
        loop {
            let now = Instant::now();
            let mut deadline = self.next_sweep_due();
            if self.file.is_some() {
                let c = self.next_file_check;
                deadline = Some(deadline.map_or(c, |d| d.min(c)));
            }
            if let Some(start) = self.window_start {
                let w = start + self.opts.flush_interval;
                deadline = Some(deadline.map_or(w, |d| d.min(w)));
            }
            let cmd = match self.deferred.pop_front() {
                Some(c) => Some(c),
                None => match deadline {
                    None => match self.rx.recv() {
                        Ok(c) => Some(c),
                        Err(_) => {
                            // Every sender is gone: keep what we have.
                            self.take_closing();
                            self.commit();
                            return;
                        }
                    },
                    Some(d) => match self.rx.recv_timeout(d.saturating_duration_since(now)) {
                        Ok(c) => Some(c),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => {
                            self.take_closing();
                            self.commit();
                            return;
                        }
                    },
                },
            };
            // Closed rooms' last snapshots first: a command after them may
            // be the load of the same room.
            self.take_closing();
            match cmd {
                Some(Cmd::Append { room, data }) => self.push(Op::Append(room, data)),
                Some(Cmd::Snapshot { room, data }) => self.push(Op::Snapshot(room, data)),
                Some(Cmd::Load { room, reply }) => {
                    let stored = self.read_room(&room);
                    // A join to a room with nothing stored leaves no trace
                    // (probing random names must not grow the store).
                    if stored
                        .as_ref()
                        .is_ok_and(|s| s.snapshot.is_some() || !s.updates.is_empty())
                    {
                        self.touch(room);
                    }
                    let _ = reply.send(stored);
                }
                Some(Cmd::Flush { reply }) => {
                    let ok = self.commit();
                    let _ = reply.send(ok);
                }
                Some(Cmd::Shutdown { reply }) => {
                    self.take_closing();
                    // Nothing pending skips the commit: check anyway, so a
                    // deleted file is recreated before the server exits.
                    self.check_file();
                    let mut unsaved = Unsaved {
                        path: self.opts.path.clone(),
                        ..Unsaved::default()
                    };
                    if self.commit() {
                        info!("room store flushed and closed");
                    } else {
                        unsaved.changes = self.pending.len();
                        unsaved.rooms = self
                            .pending
                            .iter()
                            .map(Op::room)
                            .collect::<HashSet<_>>()
                            .len();
                        error!(
                            path = %self.opts.path.display(),
                            changes = unsaved.changes,
                            rooms = unsaved.rooms,
                            "stopping with changes the store could not write; clients that reconnect to the restarted server resend them"
                        );
                    }
                    let _ = reply.send(unsaved);
                    return;
                }
                None => {}
            }
            let now = Instant::now();
            if self
                .window_start
                .is_some_and(|s| now >= s + self.opts.flush_interval)
            {
                self.commit();
            }
            if self.next_sweep_due().is_some_and(|d| now >= d) {
                self.sweep();
            }
            if self.file.is_some() && now >= self.next_file_check {
                self.next_file_check = now + FILE_CHECK_EVERY;
                self.check_file();
            }
        }
    }

    /// True when the open file is still the one at its path. When the
    /// path is empty (the data directory or the file was deleted: the open
    /// file lives on, unlinked, and every write to it would be lost at
    /// exit), the store recreates the file at its path from the open copy,
    /// every room included, and carries on there. When the path holds
    /// another file (a restored backup?), nothing more is written until an
    /// operator decides. Either way members and the log are told.
    fn check_file(&mut self) -> bool {
        let Some(expected) = self.file else {
            return true;
        };
        match FileId::of(&self.opts.path) {
            Some(now) if now == expected => true,
            None => {
                let first = !self.deleted;
                self.deleted = true;
                if first {
                    error!(
                        path = %self.opts.path.display(),
                        "the room store file was deleted while the server ran: recreating it from the copy still open, every room included"
                    );
                    self.tell_every_room(
                        "The server's room store was deleted while it ran: the server is recreating it from what it still holds.",
                    );
                }
                match self.recreate() {
                    Ok(rooms) => {
                        self.deleted = false;
                        info!(path = %self.opts.path.display(), rooms, "room store recreated: nothing was lost");
                        true
                    }
                    Err(e) => {
                        if first {
                            error!(
                                path = %self.opts.path.display(),
                                error = %e,
                                "cannot recreate the room store: edits stay in memory and in the deleted file only while the server runs; make the directory writable again (the server retries every second)"
                            );
                        }
                        false
                    }
                }
            }
            Some(_) => {
                if !self.replaced {
                    self.replaced = true;
                    error!(
                        path = %self.opts.path.display(),
                        "the room store file was replaced by another file while the server ran: nothing more is written to either; edits stay in memory. Stop the server (changes since are lost) and start it on the file you want"
                    );
                    self.tell_every_room(
                        "The server's room store was replaced while it ran: edits are shared but no longer stored. Tell the server's operator.",
                    );
                }
                false
            }
        }
    }

    /// A new file at the path with every record of the open one; the store
    /// continues on it. Returns how many rooms it holds.
    fn recreate(&mut self) -> Result<usize, String> {
        let old = live(&self.db).map_err(|e| e.to_string())?;
        if let Some(dir) = self.opts.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let new = match open_db(&self.opts.path) {
            Ok(db) => db,
            Err(OpenError::Damaged(e) | OpenError::Other(e)) => return Err(e),
        };
        let rooms = guarded(|| copy_all(old, &new))?;
        self.file = FileId::of(&self.opts.path);
        self.db = Some(new);
        self.next_seq.clear();
        Ok(rooms)
    }

    /// `storage_failed` (non-fatal) to every member of every live room.
    fn tell_every_room(&self, message: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let msg = collab_protocol::ServerMsg::Error {
            code: ErrorCode::StorageFailed,
            message: message.into(),
            seq: None,
        };
        for room in shared.registry.rooms() {
            room.tell_all(&msg);
        }
    }

    fn take_closing(&mut self) {
        let closing = std::mem::take(&mut *self.closing.lock());
        for (room, data) in closing {
            self.push(Op::Snapshot(room, data));
        }
    }

    fn next_sweep_due(&self) -> Option<Instant> {
        self.opts.room_ttl.map(|_| self.next_sweep)
    }

    /// The room is active now (written with the next window).
    fn touch(&mut self, room: RoomId) {
        self.window_start.get_or_insert_with(Instant::now);
        self.touched.insert(room, now_ms());
    }

    fn push(&mut self, op: Op) {
        self.window_start.get_or_insert_with(Instant::now);
        self.touched.insert(op.room().clone(), now_ms());
        self.pending.push(op);
    }

    /// The stored snapshot and updates, then what is still pending. Only
    /// reads: decoding is the caller's, off this thread.
    fn read_room(&mut self, room: &RoomId) -> Result<Stored, LoadError> {
        if let Some(why) = &self.damaged {
            return Err(LoadError::Damaged(why.clone()));
        }
        let read = || -> Result<Stored, redb::Error> {
            let txn = live(&self.db)?.begin_read()?;
            let snap = txn
                .open_table(SNAPSHOTS)?
                .get(room.as_str())?
                .map(|g| g.value().to_vec());
            let updates = txn.open_table(UPDATES)?;
            let mut out = Vec::new();
            for item in updates.range((room.as_str(), 0)..=(room.as_str(), u64::MAX))? {
                let (_, v) = item?;
                out.push(v.value().to_vec());
            }
            Ok(Stored {
                snapshot: snap,
                updates: out,
            })
        };
        let Stored {
            mut snapshot,
            mut updates,
        } = match guarded(read) {
            Ok(r) => r,
            Err(e) if self.db.is_none() => return Err(LoadError::Failed(e)),
            Err(e) => return Err(LoadError::Damaged(format!("its records do not read: {e}"))),
        };
        for op in &self.pending {
            match op {
                Op::Snapshot(r, data) if r == room => {
                    snapshot = Some(data.clone());
                    updates.clear();
                }
                Op::Append(r, data) if r == room => updates.push(data.clone()),
                _ => {}
            }
        }
        Ok(Stored { snapshot, updates })
    }

    /// Writes the pending batch in one transaction. On failure the batch
    /// is kept for the next window.
    fn commit(&mut self) -> bool {
        if self.pending.is_empty() && self.touched.is_empty() {
            self.window_start = None;
            return true;
        }
        let at_path = self.check_file();
        let result = if !at_path {
            Err("the store file is no longer the one at its path".to_owned())
        } else if self.opts.fault.failing() {
            Err("writes are failing (injected fault)".to_owned())
        } else {
            guarded(|| self.write_batch())
        };
        match result {
            Ok(()) => {
                if self.failing {
                    info!("the room store is writable again; everything kept meanwhile is stored");
                }
                if let Some(p) = &self.opts.probe {
                    let rooms: HashSet<&str> =
                        self.pending.iter().map(|op| op.room().as_str()).collect();
                    p.committed(rooms.into_iter().map(str::to_owned).collect());
                }
                self.failing = false;
                self.told.clear();
                self.pending.clear();
                self.touched.clear();
                self.window_start = None;
                true
            }
            Err(e) => {
                // Sequences handed out in the aborted transaction are not
                // stored; reading them again keeps the order.
                self.next_seq.clear();
                if !self.failing {
                    error!(
                        path = %self.opts.path.display(),
                        error = %e,
                        pending = self.pending.len(),
                        "cannot write to the room store; edits stay in memory and are retried every flush interval (free disk space or fix permissions)"
                    );
                }
                self.failing = true;
                self.tell_rooms();
                // Reopening the path would open another file (or none) and
                // drop the only copy of the rooms: keep the open one.
                if at_path {
                    self.reopen();
                }
                // Retry at the next window, not at once.
                self.window_start = Some(Instant::now());
                false
            }
        }
    }

    fn write_batch(&mut self) -> Result<(), redb::Error> {
        let mut txn = live(&self.db)?.begin_write()?;
        txn.set_durability(Durability::Immediate);
        {
            let mut snaps = txn.open_table(SNAPSHOTS)?;
            let mut updates = txn.open_table(UPDATES)?;
            let mut active = txn.open_table(ACTIVE)?;
            for op in &self.pending {
                match op {
                    Op::Append(room, data) => {
                        let seq = match self.next_seq.get(room) {
                            Some(s) => *s,
                            None => updates
                                .range((room.as_str(), 0)..=(room.as_str(), u64::MAX))?
                                .next_back()
                                .transpose()?
                                .map_or(0, |(k, _)| k.value().1 + 1),
                        };
                        updates.insert((room.as_str(), seq), data.as_slice())?;
                        self.next_seq.insert(room.clone(), seq + 1);
                    }
                    Op::Snapshot(room, data) => {
                        remove_updates(&mut updates, room.as_str())?;
                        snaps.insert(room.as_str(), data.as_slice())?;
                        self.next_seq.insert(room.clone(), 0);
                    }
                }
            }
            for (room, at) in &self.touched {
                active.insert(room.as_str(), *at)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// After a failed write redb refuses every later one ("previous I/O
    /// error") until the file is reopened, so a freed disk would never be
    /// used again: close and reopen (redb repairs the file if needed).
    fn reopen(&mut self) {
        self.db = None;
        if self.damaged.is_some() {
            return;
        }
        match open_db(&self.opts.path) {
            Ok(db) => self.db = Some(db),
            Err(OpenError::Damaged(why)) => {
                error!(
                    path = %self.opts.path.display(),
                    error = %why,
                    "the room store file is damaged: nothing more is written to it, rooms not in memory are refused. Stop the server and restore the file from a backup, or move it aside to start every room empty"
                );
                self.damaged = Some(why);
            }
            Err(OpenError::Other(e)) => debug!(error = %e, "cannot reopen the room store yet"),
        }
    }

    /// `storage_failed` to the members of rooms with uncommitted changes,
    /// once per room per failure streak.
    fn tell_rooms(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let rooms: HashSet<RoomId> = self.pending.iter().map(|op| op.room().clone()).collect();
        for room in rooms {
            if self.told.contains(&room) {
                continue;
            }
            if let Some(r) = shared.registry.lookup(&room) {
                r.tell_all(&collab_protocol::ServerMsg::Error {
                    code: ErrorCode::StorageFailed,
                    message: "The server could not store this room's document: it is still shared in memory, and the server keeps retrying.".into(),
                    seq: None,
                });
            }
            self.told.insert(room);
        }
    }

    /// Deletes rooms idle for longer than the ttl (never a live one).
    fn sweep(&mut self) {
        let Some(ttl) = self.opts.room_ttl else {
            return;
        };
        let every = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(60));
        self.next_sweep = Instant::now() + every;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let cutoff = now_ms().saturating_sub(ttl_ms);
        if cutoff == 0 {
            return;
        }
        let stale = || -> Result<Vec<String>, redb::Error> {
            let txn = live(&self.db)?.begin_read()?;
            let active = txn.open_table(ACTIVE)?;
            let mut out = Vec::new();
            for item in active.iter()? {
                let (k, v) = item?;
                if v.value() < cutoff {
                    out.push(k.value().to_owned());
                }
            }
            Ok(out)
        };
        let candidates = match guarded(stale) {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "cannot read the store for the room ttl");
                return;
            }
        };
        if candidates.is_empty() {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        // First: which are live (a live room is active now). A room can
        // only come back to life through a load, which waits for us.
        let mut doomed = Vec::new();
        for name in candidates {
            let Ok(room) = RoomId::parse(&name) else {
                doomed.push(name);
                continue;
            };
            if shared.registry.lookup(&room).is_some() {
                self.touch(room);
            } else {
                doomed.push(name);
            }
        }
        drop(shared);
        // Then take in every change queued before the check: a room that
        // emptied just before it queued its last edits before it emptied.
        while let Ok(cmd) = self.rx.try_recv() {
            match cmd {
                Cmd::Append { room, data } => self.push(Op::Append(room, data)),
                Cmd::Snapshot { room, data } => self.push(Op::Snapshot(room, data)),
                other => self.deferred.push_back(other),
            }
        }
        let busy: HashSet<&str> = self
            .pending
            .iter()
            .map(|op| op.room().as_str())
            .chain(self.touched.keys().map(RoomId::as_str))
            .collect();
        let doomed: Vec<String> = doomed
            .into_iter()
            .filter(|r| !busy.contains(r.as_str()))
            .collect();
        if doomed.is_empty() {
            return;
        }
        let delete = || -> Result<(), redb::Error> {
            let mut txn = live(&self.db)?.begin_write()?;
            txn.set_durability(Durability::Immediate);
            {
                let mut snaps = txn.open_table(SNAPSHOTS)?;
                let mut updates = txn.open_table(UPDATES)?;
                let mut active = txn.open_table(ACTIVE)?;
                for room in &doomed {
                    snaps.remove(room.as_str())?;
                    remove_updates(&mut updates, room)?;
                    active.remove(room.as_str())?;
                }
            }
            txn.commit().map_err(redb::Error::from)
        };
        match guarded(delete) {
            Ok(()) => {
                for room in &doomed {
                    info!(room = %room, ttl = %humantime::format_duration(ttl), "room idle past its ttl: deleted from the store");
                    if let Ok(id) = RoomId::parse(room) {
                        self.next_seq.remove(&id);
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot delete expired rooms from the store"),
        }
    }
}

/// Runs a database operation, turning a panic inside redb (a damaged file
/// can trip its assertions) into an error: the store thread, and with it
/// every room's durability, must survive one bad page.
fn guarded<T>(f: impl FnOnce() -> Result<T, redb::Error>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => Err(panic_message(panic.as_ref())),
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into());
    format!("the database library failed on the file: {what}")
}

/// Which file a path names: device and inode (on Unix; elsewhere the
/// check is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| FileId(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    fn of(_: &Path) -> Option<FileId> {
        None
    }
}

/// Copies every record of `from` into `to` in one transaction; returns
/// how many rooms have a snapshot or updates.
fn copy_all(from: &Database, to: &Database) -> Result<usize, redb::Error> {
    let read = from.begin_read()?;
    let mut txn = to.begin_write()?;
    txn.set_durability(Durability::Immediate);
    let mut rooms = HashSet::new();
    {
        let mut snaps = txn.open_table(SNAPSHOTS)?;
        for item in read.open_table(SNAPSHOTS)?.iter()? {
            let (k, v) = item?;
            snaps.insert(k.value(), v.value())?;
            rooms.insert(k.value().to_owned());
        }
        let mut updates = txn.open_table(UPDATES)?;
        for item in read.open_table(UPDATES)?.iter()? {
            let (k, v) = item?;
            updates.insert(k.value(), v.value())?;
            rooms.insert(k.value().0.to_owned());
        }
        let mut active = txn.open_table(ACTIVE)?;
        for item in read.open_table(ACTIVE)?.iter()? {
            let (k, v) = item?;
            active.insert(k.value(), v.value())?;
        }
    }
    txn.commit()?;
    Ok(rooms.len())
}

/// The open database, or why there is none.
fn live(db: &Option<Database>) -> Result<&Database, redb::Error> {
    db.as_ref().ok_or_else(|| {
        redb::Error::Io(std::io::Error::other(
            "the room store could not be reopened after an I/O error",
        ))
    })
}

fn remove_updates(
    updates: &mut redb::Table<(&'static str, u64), &'static [u8]>,
    room: &str,
) -> Result<(), redb::Error> {
    let keys: Vec<u64> = updates
        .range((room, 0)..=(room, u64::MAX))?
        .map(|item| item.map(|(k, _)| k.value().1))
        .collect::<Result<_, _>>()?;
    for k in keys {
        updates.remove((room, k))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use collab_doc::SharedDoc;
    use collab_protocol::{Limits, UserName};
    use tokio::sync::mpsc;

    use super::*;
    use crate::room::{Control, JoinRequest, Link, Room};

    /// A stored room with alice in it, whose changes go to `handle`.
    async fn room_with_alice(handle: StoreHandle) -> (Arc<Room>, crate::room::Joined) {
        let loaded = Loaded {
            doc: RoomDoc::new(),
            updates: 0,
            bytes: 0,
        };
        let room = Arc::new(Room::restored(
            RoomId::parse("q").unwrap(),
            1 << 20,
            loaded,
            handle,
        ));
        let (out, _out_rx) = mpsc::channel(64);
        let req = JoinRequest {
            name: UserName::parse("alice").unwrap(),
            session: None,
            version: None,
            link: Link {
                conn: 1,
                tx: out,
                control: Arc::new(Control::default()),
            },
            limits: Limits {
                max_frame_bytes: 1 << 20,
                max_doc_bytes: 1 << 20,
                messages_per_second: 1,
                burst: 1,
            },
            max_users: 2,
            read_only: false,
        };
        let alice = room.join(req, || 7).await.ok().unwrap();
        (room, alice)
    }

    fn handle(tx: SyncSender<Cmd>) -> StoreHandle {
        StoreHandle {
            tx,
            path: Arc::default(),
            closing: Arc::default(),
            probe: None,
        }
    }

    /// A full store queue never blocks the room and loses nothing: the
    /// next change that fits carries the whole snapshot.
    /// Alice types `text` at the end of `doc`, and the room takes it.
    async fn type_into(
        room: &Arc<Room>,
        alice: collab_protocol::UserId,
        doc: &mut SharedDoc,
        text: &str,
    ) {
        let at = doc.len_chars();
        doc.splice(at, 0, text).unwrap();
        let u = doc.take_local_update().unwrap();
        let info = collab_doc::UpdateInfo::read(&u).unwrap();
        // Connection 1: hers (`room_with_alice`).
        room.update(alice, 1, u, info, 1 << 20, 1000).await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_makes_the_next_change_a_snapshot() {
        let (tx, rx) = sync_channel(1);
        let (room, alice) = room_with_alice(handle(tx)).await;
        let mut doc = SharedDoc::new();
        type_into(&room, alice.id, &mut doc, "one ").await;
        // The queue (1) is full: dropped, room dirty.
        type_into(&room, alice.id, &mut doc, "two ").await;
        let Ok(Cmd::Append { data, .. }) = rx.try_recv() else {
            panic!("the first change is an append")
        };
        assert!(rx.try_recv().is_err(), "the second did not fit");
        type_into(&room, alice.id, &mut doc, "three").await;
        let Ok(Cmd::Snapshot { data: snap, .. }) = rx.try_recv() else {
            panic!("after an overflow the next change is a snapshot")
        };
        let restored = SharedDoc::from_snapshot(&snap).unwrap();
        assert_eq!(restored.text(), "one two three");
        let mut first = SharedDoc::new();
        first.import(&data).unwrap();
        assert_eq!(first.text(), "one ");
        // Back to appends.
        type_into(&room, alice.id, &mut doc, "!").await;
        assert!(matches!(rx.try_recv(), Ok(Cmd::Append { .. })));
    }

    /// A room that closes while the queue still refuses its changes hands
    /// its last snapshot over beside the queue; the store thread takes it
    /// before anything else, so a later load of the room has it.
    #[tokio::test]
    async fn a_room_closing_with_refused_changes_leaves_its_snapshot() {
        let (tx, rx) = sync_channel(1);
        let handle = handle(tx);
        let (room, alice) = room_with_alice(handle.clone()).await;
        let mut doc = SharedDoc::new();
        for text in ["one ", "two "] {
            type_into(&room, alice.id, &mut doc, text).await;
        }
        // "one " fills the queue, "two " is refused: the room is dirty.
        assert!(matches!(rx.try_recv(), Ok(Cmd::Append { .. })));
        assert!(rx.try_recv().is_err());
        // Fill the queue again, then alice leaves: the room closes.
        handle.append(room.id(), b"filler".to_vec());
        assert!(room.leave(alice.id, 1, collab_protocol::LeftReason::Left));
        let closing = handle.closing.lock().clone();
        let snap = closing.get(room.id()).expect("the last snapshot waits");
        assert_eq!(SharedDoc::from_snapshot(snap).unwrap().text(), "one two ");

        // A real store thread takes it before the load that follows.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(60), None, None, None).unwrap();
        store
            .handle()
            .closing
            .lock()
            .insert(room.id().clone(), snap.clone());
        let h = store.handle();
        let running = store.start(Weak::new()).unwrap();
        let (reply, got) = oneshot::channel();
        h.tx.send(Cmd::Load {
            room: room.id().clone(),
            reply,
        })
        .unwrap();
        let stored = got.await.unwrap().unwrap();
        let mut loaded = decode(room.id(), stored).unwrap();
        assert_eq!(loaded.doc.text(), "one two ");
        drop(running);
    }
}
