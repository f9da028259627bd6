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
//!
//! # Bounded history
//!
//! Churn (inserting and deleting the same text again and again) grows a
//! CRDT's history without growing its text: 60 times 700 KiB left an empty
//! text, a 9.5 MB welcome and 71 MB stored. So when a compaction's snapshot
//! passes [`snapshot_bound`] of its text, the job exports a Loro *shallow*
//! snapshot instead: the text as it is, and only the history after a root
//! version. The root is the latest version every connected member is known
//! to have ([`Need`]; Loro moves it back to a version all later history
//! descends from), so their edits still merge. History before it is gone:
//! an update that builds on it is refused ([`DocError::HistoryTrimmed`]),
//! and a replica that comes back from before it loads the room again
//! (docs/protocol.md, "Trimmed history"). The room's snapshot, what it
//! keeps after it and what the store keeps stay within [`history_bound`].
//!
//! Trimming is for the bound only. Trimming at every compaction what no
//! replica the room knows of needs was measured and not kept
//! (BENCHMARKS.md, issue 16): Loro 1.17's shallow documents make
//! compaction and a newcomer's first import many times dearer, and with
//! members typing concurrently Loro finds no later root to trim at.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loro::{ExportMode, Frontiers, ID, LoroDoc, VersionVector};

use crate::{DocError, TEXT_CONTAINER};

/// The unit of history the bound allows beyond the text: as many update
/// bytes as make a compaction due ([`crate::TAIL_COMPACT_BYTES`]).
pub const HISTORY_WINDOW: usize = crate::TAIL_COMPACT_BYTES;

/// Room for Loro's own encoding (headers, ids, a small document's state).
const HISTORY_SLACK: usize = 32 * 1024;

/// The most bytes a room keeps for a text of `text_len` UTF-8 bytes, in
/// memory (its snapshot and the updates after it, which are also its
/// welcome) and in the store (its snapshot and the updates after it): twice
/// the text, and three windows of history: one kept in the snapshot
/// (`snapshot_bound`: a compacted snapshot past it is trimmed), and two of
/// updates after it (a compaction is due after one; while it runs the
/// server lets one more arrive). `text_len`
/// is the larger of the text now and at the room's last compaction: a
/// snapshot holds the text as it was, so right after a big deletion the
/// room still keeps the deleted text until it compacts again.
pub fn history_bound(text_len: usize) -> usize {
    text_len
        .saturating_mul(2)
        .saturating_add(3 * HISTORY_WINDOW)
        .saturating_add(HISTORY_SLACK)
}

/// A compacted snapshot larger than this for a text of `text_len` bytes is
/// trimmed to a shallow one.
pub fn snapshot_bound(text_len: usize) -> usize {
    text_len
        .saturating_mul(2)
        .saturating_add(HISTORY_WINDOW)
        .saturating_add(HISTORY_SLACK)
}

/// What one connected member is known to have, so a trimmed history keeps
/// what its edits build on: the room's version when it was welcomed (or a
/// later one it surely has), and the last changes of its that the room
/// accepted (it has them and everything they depend on).
#[derive(Debug, Clone, Default)]
pub struct Need {
    pub seen: VersionVector,
    pub last: Vec<(u64, i32)>,
}

/// A compaction to run off the room's lock: the room's kept snapshot and
/// the updates merged after it, as they were when the job was taken.
#[derive(Debug)]
pub struct CompactionJob {
    pub(crate) base: Arc<Vec<u8>>,
    pub(crate) tail: Vec<Arc<Vec<u8>>>,
    /// Which base this job started from: a base replaced meanwhile (a
    /// seed, a rollback's rebuild) makes the result stale.
    pub(crate) generation: u64,
    /// What connected members have, when the history is to be trimmed.
    pub(crate) needs: Vec<Need>,
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
    /// The snapshot is a shallow one that trimmed history.
    pub(crate) trimmed: bool,
    /// The same history as one update (made on the way, by [`recoded`]),
    /// what a newcomer is sent; none for a shallow document.
    pub(crate) updates: Option<Arc<Vec<u8>>>,
    /// The version of the snapshot (and of `updates`).
    pub(crate) version: VersionVector,
}

impl std::fmt::Debug for Compacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compacted")
            .field("snapshot_bytes", &self.snapshot.len())
            .field("covered", &self.covered)
            .field("text_bytes", &self.text_bytes)
            .field("cost", &self.cost)
            .field("trimmed", &self.trimmed)
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

    /// Whether the job trimmed history (a shallow snapshot).
    pub fn trimmed(&self) -> bool {
        self.trimmed
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
    /// Whether the new snapshot trimmed history.
    pub trimmed: bool,
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
        // Detached, the imports only extend the history.
        doc.detach();
        for u in &self.tail {
            let status = doc
                .import(u)
                .map_err(|e| DocError::BadUpdate(e.to_string()))?;
            if status.pending.is_some() {
                return Err(DocError::MissingDependencies);
            }
        }
        let (doc, updates) = recoded(doc)?;
        let text_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        let version = doc.oplog_vv();
        let mut snapshot = crate::export::export(&doc, ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()))?;
        let mut trimmed = false;
        // Loro moves a root back to a version every later change descends
        // from, and never before the document's own root.
        let shallow = |needs: &[Need]| {
            let root = doc.vv_to_frontiers(&needed_version(&doc, needs));
            doc.export(ExportMode::ShallowSnapshot(Cow::Owned(root)))
                .ok()
        };
        if snapshot.len() > snapshot_bound(text_bytes)
            && let Some(s) = shallow(&self.needs)
            && s.len() < snapshot.len()
        {
            snapshot = s;
            trimmed = true;
        }
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
            updates: updates.filter(|_| !trimmed).map(Arc::new),
            trimmed,
            version,
        })
    }
}

/// The document `doc` holds (detached), attached and with its history
/// encoded anew: exported as one update and imported into a fresh
/// document, which merges the changes a room imported one keystroke at a
/// time into Loro's compact blocks. On automerge-paper typed key by key
/// (the last 1,000 keystrokes after a snapshot) that takes 30 ms, where
/// bringing the text of the document as imported up to date took 161 ms;
/// the snapshot is 18% smaller (309 to 253 KB), and a newcomer's load and
/// first import take 10 ms instead of 159 (issue 16). A shallow document
/// cannot be replayed from its updates: its text is brought up to date.
/// Also returns that one update (none for a shallow document).
fn recoded(doc: LoroDoc) -> Result<(LoroDoc, Option<Vec<u8>>), DocError> {
    if doc.is_shallow() {
        doc.checkout_to_latest();
        return Ok((doc, None));
    }
    let (fresh, all) = replayed_with_update(&doc)?;
    Ok((fresh, Some(all)))
}

/// A fresh document with `doc`'s history (not shallow), replayed from one
/// update (see [`recoded`]), and that update. Reads the history only, not
/// the text.
pub(crate) fn replayed_with_update(doc: &LoroDoc) -> Result<(LoroDoc, Vec<u8>), DocError> {
    let all = doc
        .export(ExportMode::all_updates())
        .map_err(|e| DocError::Export(e.to_string()))?;
    let fresh = LoroDoc::new();
    fresh
        .import(&all)
        .map_err(|e| DocError::BadUpdate(e.to_string()))?;
    Ok((fresh, all))
}

/// The latest version every need includes: per peer, the least counter
/// (each need is a whole version, so their meet is one too). No needs: the
/// document's own version.
fn needed_version(doc: &LoroDoc, needs: &[Need]) -> VersionVector {
    let mut meet: Option<VersionVector> = None;
    for need in needs {
        let mut vv = need.seen.clone();
        let last: Frontiers = need.last.iter().map(|&(p, c)| ID::new(p, c)).collect();
        if let Some(had) = doc.frontiers_to_vv(&last) {
            vv.merge(&had);
        }
        meet = Some(match meet {
            None => vv,
            Some(m) => m
                .iter()
                .filter_map(|(peer, &c)| {
                    let least = c.min(vv.get(peer).copied().unwrap_or(0));
                    (least > 0).then_some((*peer, least))
                })
                .collect(),
        });
    }
    meet.unwrap_or_else(|| doc.oplog_vv())
}
