//! The commit: everything that arrived within one flush window written in
//! one redb transaction with `Durability::Immediate` (one fsync per
//! window, whatever the number of rooms and changes).
//!
//! A failed commit keeps the batch for the next window, logs one error
//! per failure streak, tells the affected rooms' members
//! `storage_failed` once per streak, and reopens the file (redb refuses
//! every write after an I/O error until then).

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::time::Instant;

use collab_protocol::{ErrorCode, RoomId};
use redb::{Durability, ReadableTable};
use tracing::{debug, error, info};

use super::{Op, Worker};
use crate::store::schema::{
    ACTIVE, OpenError, SIZES, SNAPSHOTS, UPDATES, guarded, live, open_db, remove_updates,
};

/// Inserts between two yields of the core in a commit (a few µs each).
const YIELD_EVERY_OPS: usize = 16;

impl Worker {
    /// Writes the pending batch in one transaction. On failure the batch
    /// is kept for the next window.
    pub(super) fn commit(&mut self) -> bool {
        self.take_in();
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
            let mut sizes = txn.open_table(SIZES)?;
            for (i, op) in self.pending.iter().enumerate() {
                // A worker woken meanwhile waits for this thread's time
                // slice (about 1.5 ms): give the core up between small
                // runs of inserts (BENCHMARKS.md, issue 16). The thread is
                // not in the idle class: joiners wait for its loads.
                if i % YIELD_EVERY_OPS == YIELD_EVERY_OPS - 1 {
                    std::thread::yield_now();
                }
                match op {
                    Op::Append(key, data) => {
                        let room = key;
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
                    Op::Size(key, n) => {
                        sizes.insert(key.as_str(), *n)?;
                    }
                    Op::Snapshot(key, data) => {
                        let room = key;
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
}
