//! The store thread: one OS thread that owns the database, takes the
//! rooms' commands in order and writes what arrived within one flush
//! window in one transaction.
//!
//! Its concerns each have a file: `commit.rs` (the batched, fsync'd
//! commit and its failure streaks), `file.rs` (the file at its path:
//! deleted, replaced, recreated) and `sweep.rs` (deleting rooms idle past
//! their TTL). This file is the loop and the batch it builds.

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

mod commit;
mod file;
mod sweep;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Instant;

use collab_protocol::RoomId;
use parking_lot::Mutex;
use redb::Database;
use tracing::{error, info};

use super::handle::{Cmd, LoadError, Stored};
use super::schema::{SNAPSHOTS, UPDATES, guarded, live};
use super::{Opened, Options, Unsaved};
use crate::Shared;
use crate::clock::now_ms;
use file::{FILE_CHECK_EVERY, FileId};

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

pub(super) struct Worker {
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
    pub(super) fn new(
        opened: Opened,
        rx: Receiver<Cmd>,
        closing: Arc<Mutex<HashMap<RoomId, Vec<u8>>>>,
        opts: Options,
        shared: Weak<Shared>,
    ) -> Self {
        let (db, damaged) = match opened {
            Opened::Db(db) => (Some(db), None),
            Opened::Damaged(why) => (None, Some(why)),
        };
        let file = db.as_ref().and_then(|_| FileId::of(&opts.path));
        Worker {
            db,
            damaged,
            file,
            next_file_check: Instant::now() + FILE_CHECK_EVERY,
            replaced: false,
            deleted: false,
            rx,
            closing,
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
        }
    }

    pub(super) fn run(mut self) {
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
}
