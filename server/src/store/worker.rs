//! The store thread: one OS thread that owns the database, takes the
//! rooms' commands in order and writes the changes of one flush window in
//! one transaction. The first change of a window wakes it; the window's
//! changes wait in the inbox (`handle.rs`) until it ends, so a busy server
//! wakes this thread ten times a second (at the default 100 ms window), not
//! once per keystroke.
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

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Weak};
use std::time::Instant;

use collab_protocol::RoomId;
use redb::Database;
use tracing::{error, info};

use super::handle::{Cmd, DocKey, Inbox, LoadError, Op, Stored, Taken};
use super::schema::{SIZES, SNAPSHOTS, UPDATES, guarded, live, sizes_of};
use super::{Opened, Options, Unsaved};
use crate::Shared;
use crate::clock::now_ms;
use file::{FILE_CHECK_EVERY, FileId};

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
    /// The rooms' changes, taken when the window ends (or before a load).
    inbox: Arc<Inbox>,
    opts: Options,
    shared: Weak<Shared>,
    /// Changes not yet committed, in arrival order.
    pending: Vec<Op>,
    /// When the oldest pending change arrived.
    window_start: Option<Instant>,
    /// Next update sequence per room (filled lazily from the table).
    next_seq: HashMap<DocKey, u64>,
    /// Rooms active since the last commit, with when.
    touched: HashMap<RoomId, u64>,
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
        inbox: Arc<Inbox>,
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
            inbox,
            opts,
            shared,
            pending: Vec::new(),
            window_start: None,
            next_seq: HashMap::new(),
            touched: HashMap::new(),
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
            let received = match deadline {
                None => self.rx.recv().map(Some).map_err(|_| ()),
                Some(d) => match self.rx.recv_timeout(d.saturating_duration_since(now)) {
                    Ok(c) => Ok(Some(c)),
                    Err(RecvTimeoutError::Timeout) => Ok(None),
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                },
            };
            let Ok(cmd) = received else {
                // Every sender is gone: keep what we have.
                let taken = self.inbox.close();
                self.absorb(taken);
                self.commit();
                return;
            };
            if let (Some(p), Some(_)) = (&self.opts.probe, &cmd) {
                p.received();
            }
            match cmd {
                // A window starts (below), or the inbox is half full:
                // take it in now, so it never fills within a window.
                Some(Cmd::Wake) if self.inbox.is_half_full() => self.take_in(),
                Some(Cmd::Wake) | None => {}
                Some(Cmd::Load { key, reply }) => {
                    // Everything queued before the load is in what it reads.
                    self.take_in();
                    let stored = self.read_room(&key);
                    // A join to a room with nothing stored leaves no trace
                    // (probing random names must not grow the store).
                    if stored
                        .as_ref()
                        .is_ok_and(|s| s.snapshot.is_some() || !s.updates.is_empty())
                    {
                        self.touch(key.room().clone());
                    }
                    let _ = reply.send(stored);
                }
                Some(Cmd::Sizes { room, reply }) => {
                    self.take_in();
                    let _ = reply.send(self.read_sizes(&room));
                }
                Some(Cmd::Flush { reply }) => {
                    let ok = self.commit();
                    let _ = reply.send(ok);
                }
                Some(Cmd::Shutdown { reply }) => {
                    let taken = self.inbox.close();
                    self.absorb(taken);
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
            }
            // A change waiting opens the window: the wake of its first
            // change, or one that came while the thread was busy.
            if self.window_start.is_none() && self.inbox.is_waiting() {
                self.window_start = Some(Instant::now());
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

    /// Takes the rooms' changes waiting in the inbox into the batch.
    fn take_in(&mut self) {
        let taken = self.inbox.take();
        self.absorb(taken);
    }

    /// Adds changes taken from the inbox to the batch, in order; closed
    /// rooms' last snapshots after them (they are the rooms' latest state).
    fn absorb(&mut self, taken: Taken) {
        let Taken { ops, closing } = taken;
        if ops.is_empty() && closing.is_empty() {
            return;
        }
        self.window_start.get_or_insert_with(Instant::now);
        let now = now_ms();
        for op in ops.into_iter().chain(
            closing
                .into_iter()
                .map(|(room, data)| Op::Snapshot(room, data)),
        ) {
            // A room's key is cloned once per window, not per change.
            match self.touched.get_mut(op.room()) {
                Some(at) => *at = now,
                None => {
                    self.touched.insert(op.room().clone(), now);
                }
            }
            self.pending.push(op);
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

    /// The sizes of a room's workspace documents, stored then pending.
    fn read_sizes(&mut self, room: &RoomId) -> Result<Vec<(String, u64)>, LoadError> {
        if let Some(why) = &self.damaged {
            return Err(LoadError::Damaged(why.clone()));
        }
        let read = || -> Result<Vec<(String, u64)>, redb::Error> {
            let txn = live(&self.db)?.begin_read()?;
            sizes_of(&txn.open_table(SIZES)?, room.as_str())
        };
        let mut sizes: HashMap<String, u64> = match guarded(read) {
            Ok(s) => s.into_iter().collect(),
            Err(e) => return Err(LoadError::Failed(e)),
        };
        for op in &self.pending {
            if let Op::Size(k, n) = op
                && k.room() == room
            {
                sizes.insert(k.as_str().to_owned(), *n);
            }
        }
        Ok(sizes.into_iter().collect())
    }

    /// The stored snapshot and updates, then what is still pending. Only
    /// reads: decoding is the caller's, off this thread.
    fn read_room(&mut self, room: &DocKey) -> Result<Stored, LoadError> {
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
                Op::Size(..) => {}
                _ => {}
            }
        }
        Ok(Stored { snapshot, updates })
    }
}
