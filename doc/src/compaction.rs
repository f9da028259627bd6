//! Compaction without the room's document: a job built from bytes the room
//! already keeps, run anywhere, and a short swap afterwards.
//!
//! Compaction turns the parsed history a long session accumulates back into
//! Loro's compact encoded form and makes the snapshot newcomers and the
//! store are given. It costs time that grows with the document (about
//! 50 ms for automerge-paper, up to 0.3 s): done on the room's document,
//! under the lock every update of the room takes, it stalled the room's
//! relay for that long (issue 16). But the room already keeps everything
//! compaction needs as bytes: the snapshot of its last compaction (or load,
//! or seed) and every update merged since, in order (what a newcomer is
//! sent). So a [`CompactionJob`] is those bytes, taken under the lock as a
//! few reference counts; [`CompactionJob::run`] builds a *separate*
//! document from them, brings its text up to date, exports the new
//! snapshot and reloads it into the compact form, all with no lock held
//! (the server runs it on its blocking pool); and
//! [`crate::RoomDoc::finish_compaction`], under the lock again, swaps the
//! new snapshot in as the newcomers' base, drops the updates it covers
//! (those that arrived meanwhile stay as the tail) and, when the tail that
//! arrived meanwhile is small, replaces the room's live document with the
//! reloaded one after importing that tail into it: a few keystrokes'
//! imports, microseconds.
//!
//! The live document is never read or written while the job runs, so
//! relaying, acking and welcoming go on in that room meanwhile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loro::{ExportMode, LoroDoc};

use crate::{DocError, TEXT_CONTAINER};

/// A compaction to run off the room's lock: the room's kept snapshot and
/// the updates merged after it, as they were when the job was taken.
#[derive(Debug)]
pub struct CompactionJob {
    pub(crate) base: Arc<Vec<u8>>,
    pub(crate) tail: Vec<Arc<Vec<u8>>>,
    /// Which base this job started from: a base replaced meanwhile (a
    /// seed, a rollback's rebuild) makes the result stale.
    pub(crate) generation: u64,
}

/// What [`CompactionJob::run`] made, to hand back to the room.
pub struct Compacted {
    /// The new snapshot: the base and the covered updates in one.
    pub(crate) snapshot: Arc<Vec<u8>>,
    /// The snapshot reloaded, detached: the room's next live document.
    pub(crate) doc: LoroDoc,
    /// How many updates of the tail the snapshot covers.
    pub(crate) covered: usize,
    pub(crate) generation: u64,
    /// UTF-8 bytes of the text at the snapshot.
    pub(crate) text_bytes: usize,
    /// What the job cost (it sets how long the room waits for the next).
    pub(crate) cost: Duration,
}

impl std::fmt::Debug for Compacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compacted")
            .field("snapshot_bytes", &self.snapshot.len())
            .field("covered", &self.covered)
            .field("text_bytes", &self.text_bytes)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

impl Compacted {
    /// The new snapshot (the store is given it).
    pub fn snapshot(&self) -> &Arc<Vec<u8>> {
        &self.snapshot
    }

    /// What the job cost.
    pub fn cost(&self) -> Duration {
        self.cost
    }
}

/// What [`crate::RoomDoc::finish_compaction`] did.
#[derive(Debug, Clone, Default)]
pub struct Swapped {
    /// The new snapshot, when it was swapped in as the newcomers' base.
    pub snapshot: Option<Arc<Vec<u8>>>,
    /// The updates merged after that snapshot (the room's tail now), in
    /// order: the store keeps them after the snapshot.
    pub after: Vec<Arc<Vec<u8>>>,
    /// Whether the live document was replaced by the compacted one.
    pub live_replaced: bool,
}

impl CompactionJob {
    /// How many updates the job covers.
    pub fn updates(&self) -> usize {
        self.tail.len()
    }

    /// Builds the document from the job's bytes, exports the new snapshot
    /// and reloads it. CPU work proportional to the document; touches
    /// nothing of the room's.
    pub fn run(self) -> Result<Compacted, DocError> {
        let started = Instant::now();
        let doc = LoroDoc::new();
        doc.import(&self.base)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        if !self.tail.is_empty() {
            // Detached, the imports only extend the history; the text
            // catches up once at the end (Loro's batch path).
            doc.detach();
            for u in &self.tail {
                let status = doc
                    .import(u)
                    .map_err(|e| DocError::BadUpdate(e.to_string()))?;
                if status.pending.is_some() {
                    return Err(DocError::MissingDependencies);
                }
            }
            doc.checkout_to_latest();
        }
        let text_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        let snapshot = doc
            .export(ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()))?;
        drop(doc);
        // Reloaded from its own bytes, the history is in Loro's compact
        // encoded form again (automerge-paper typed key by key: 43 MiB of
        // live heap before, 0.6 MiB after); the text is materialized on
        // demand.
        let live = LoroDoc::new();
        live.import(&snapshot)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        live.detach();
        Ok(Compacted {
            snapshot: Arc::new(snapshot),
            doc: live,
            covered: self.tail.len(),
            generation: self.generation,
            text_bytes,
            cost: started.elapsed(),
        })
    }
}
