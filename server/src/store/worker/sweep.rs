//! The room TTL (`--room-ttl`): rooms nobody used for longer are deleted
//! from the file, never a room that is live or has changes waiting.

// redb's error is large; it only travels the store thread's cold paths.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use collab_protocol::RoomId;
use redb::{Durability, ReadableTable};
use tracing::{info, warn};

use super::Worker;
use crate::clock::now_ms;
use crate::store::schema::{
    ACTIVE, SIZES, SNAPSHOTS, UPDATES, guarded, live, remove_docs, remove_sizes, remove_updates,
};

impl Worker {
    /// Deletes rooms idle for longer than the ttl (never a live one).
    pub(super) fn sweep(&mut self) {
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
        self.take_in();
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
                let mut sizes = txn.open_table(SIZES)?;
                for room in &doomed {
                    snaps.remove(room.as_str())?;
                    remove_updates(&mut updates, room)?;
                    remove_docs(&mut snaps, &mut updates, room)?;
                    remove_sizes(&mut sizes, room)?;
                    active.remove(room.as_str())?;
                }
            }
            txn.commit().map_err(redb::Error::from)
        };
        match guarded(delete) {
            Ok(()) => {
                for room in &doomed {
                    info!(room = %room, ttl = %humantime::format_duration(ttl), "room idle past its ttl: deleted from the store");
                    self.next_seq.retain(|k, _| k.room().as_str() != room);
                }
            }
            Err(e) => warn!(error = %e, "cannot delete expired rooms from the store"),
        }
    }
}
