//! The server's copy of a room's document: the whole history, with the text
//! materialized only when someone needs it.
//!
//! A relay never reads the text on a keystroke: it merges the update into
//! the history, relays it, and hands the whole document to newcomers. So the
//! Loro document is kept *detached*: an import only adds the change to
//! Loro's history (its oplog), and the text (its state) is brought up to date
//! in one step when a snapshot, a seed or the size limit needs it. Bringing
//! it up to date once for many keystrokes is Loro's batch path; doing it per
//! keystroke is what made imports 3 to 8 times dearer (automerge-paper typed
//! key by key: 1.59 s attached, 0.49 s detached plus one 0.16 s catch-up; 4
//! peers typing in turns: 18.7 us per import attached, 2.4 us detached).
//!
//! The size limit needs the text's length, which a detached document does
//! not track. An update cannot grow the text by more than four times its own
//! size (inserted text is stored as UTF-8 in it; the factor leaves room for
//! encoding overheads), so the room keeps the exact length at the last
//! catch-up plus that bound for every update since, and catches up only when
//! the bound could cross the limit.
//!
//! Every update is imported detached first, which only adds its changes to
//! the history. Loro merges one long inserted run into the text in time
//! quadratic in its length (`crate::runs`), so before a big update's text is
//! brought up to date its inserts' cost is measured against
//! [`REPLAY_BUDGET`]; over it, or over the size limit once caught up, the
//! update is rolled back and refused.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use loro::{ContainerID, ContainerType, ExportMode, ID, LoroDoc, VersionVector};

use crate::{DocError, PeerSpan, TEXT_CONTAINER, UpdateInfo};

/// A room's merged document, as the server holds it.
pub struct RoomDoc {
    /// Detached between calls: imports reach the oplog only.
    doc: LoroDoc,
    /// UTF-8 bytes of the text at the last catch-up.
    caught_up_bytes: usize,
    /// How much the imports since then can have grown it, at most.
    growth_bound: usize,
    /// New imports since the last compaction.
    imports_since_compact: usize,
    /// Imports to wait before the next compaction, given what the last one
    /// cost (see [`next_compaction_after`]).
    compact_after: usize,
    /// A snapshot of the document as it was at the last compaction (or
    /// load), and every update merged since, in order: together they are
    /// the document, so a newcomer's welcome costs no CRDT work (see
    /// [`Self::for_newcomer`]). `None` when unknown or the tail grew past
    /// [`TAIL_MAX_BYTES`]: then a newcomer gets a fresh snapshot.
    base: Option<Arc<Vec<u8>>>,
    tail: Vec<Arc<Vec<u8>>>,
    tail_bytes: usize,
}

/// What a newcomer loads: a snapshot, then the updates merged after it.
pub type Newcomer = (Arc<Vec<u8>>, Vec<Arc<Vec<u8>>>);

/// The most update bytes kept after the base snapshot for newcomers.
const TAIL_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The snapshot of an empty document, made once.
pub(crate) fn empty_snapshot() -> Arc<Vec<u8>> {
    static EMPTY: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| {
        Arc::new(
            LoroDoc::new()
                .export(ExportMode::Snapshot)
                .unwrap_or_default(),
        )
    }))
}

impl Default for RoomDoc {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RoomDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomDoc")
            .field("changes", &self.doc.len_changes())
            .field("bytes_at_most", &self.len_bytes_at_most())
            .finish()
    }
}

/// Updates up to this size, far from the size limit, stay on the cheap path:
/// imported detached with the text's growth bounded, not measured.
/// Keystrokes are about 90 bytes.
const DETACHED_IMPORT_MAX_BYTES: usize = 4 * 1024;

/// The most an update's text inserts may cost to merge into the text, in
/// Loro's fragment updates (see `crate::runs::insert_replay_cost`): one
/// insert of 256 Ki chars, about 0.3 s (release). Loro merges one long
/// insert in time quadratic in its length, again whenever a concurrent edit
/// is merged across it; clients insert long text as runs of 512 chars
/// (cost 4 each, a full 1 MiB frame about 6,000), so only a client that
/// does not meets this.
pub const REPLAY_BUDGET: u64 = 1 << 20;

/// Updates smaller than this cannot exceed [`REPLAY_BUDGET`] (an insert of
/// `n` chars is at least `n` bytes; one over budget is over 256 Ki chars),
/// so keystrokes skip the check.
const REPLAY_CHECK_MIN_BYTES: usize = 256 * 1024;

/// How much an update of `len` bytes can grow the text, at most.
fn growth_of(len: usize) -> usize {
    len.saturating_mul(4)
}

impl RoomDoc {
    /// An empty room.
    pub fn new() -> Self {
        let mut room = Self::detached(LoroDoc::new());
        room.base = Some(empty_snapshot());
        room
    }

    /// Takes an attached document (its text up to date) and detaches it.
    fn detached(doc: LoroDoc) -> Self {
        let caught_up_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        doc.detach();
        Self {
            doc,
            caught_up_bytes,
            growth_bound: 0,
            imports_since_compact: 0,
            compact_after: 0,
            base: None,
            tail: Vec::new(),
            tail_bytes: 0,
        }
    }

    /// A merged update joins the tail kept for newcomers.
    fn remember(&mut self, update: &[u8]) {
        if self.base.is_none() {
            return;
        }
        self.tail_bytes += update.len();
        if self.tail_bytes > TAIL_MAX_BYTES {
            self.base = None;
            self.tail = Vec::new();
            self.tail_bytes = 0;
        } else {
            self.tail.push(Arc::new(update.to_vec()));
        }
    }

    /// What a newcomer needs: a snapshot, and the updates merged after it,
    /// to import in order. From the kept base and tail when there are,
    /// with no CRDT work (a copy of bytes); otherwise a fresh snapshot,
    /// which brings the text up to date (milliseconds for a big room) and
    /// becomes the new base.
    pub fn for_newcomer(&mut self) -> Result<Newcomer, DocError> {
        if let Some(base) = &self.base {
            return Ok((Arc::clone(base), self.tail.clone()));
        }
        let snapshot = Arc::new(self.snapshot()?);
        self.base = Some(Arc::clone(&snapshot));
        Ok((snapshot, Vec::new()))
    }

    /// Whether [`Self::for_newcomer`] has what it needs kept (no CRDT work).
    pub fn newcomer_is_cheap(&self) -> bool {
        self.base.is_some()
    }

    /// A room loaded from storage: an optional snapshot, then the updates
    /// stored after it, merged in one batch (one catch-up of the text for
    /// all of them). An update that does not merge in the batch is retried
    /// alone; those that still fail are returned with their error, and the
    /// rest of the room loads.
    pub fn load(
        snapshot: Option<&[u8]>,
        updates: &[Vec<u8>],
    ) -> Result<(Self, Vec<(usize, DocError)>), DocError> {
        let doc = LoroDoc::new();
        if let Some(s) = snapshot {
            doc.import(s)
                .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        }
        let mut failed = Vec::new();
        // Runs of small updates go in one batch; a big one alone, attached
        // (a batch ends with a catch-up, quadratic in one long inserted run).
        let mut start = 0;
        while start < updates.len() {
            let big = |u: &Vec<u8>| u.len() > DETACHED_IMPORT_MAX_BYTES;
            let end = if big(&updates[start]) {
                start + 1
            } else {
                updates[start..]
                    .iter()
                    .position(big)
                    .map_or(updates.len(), |n| start + n)
            };
            let run = &updates[start..end];
            if run.len() == 1 || doc.import_batch(run).is_err() {
                for (i, u) in run.iter().enumerate() {
                    if let Err(e) = doc.import(u).map_err(bad_update).and_then(|s| outcome(&s)) {
                        failed.push((start + i, e));
                    }
                }
            }
            start = end;
        }
        let mut room = Self::detached(doc);
        room.base = match snapshot {
            Some(s) if updates.is_empty() => Some(Arc::new(s.to_vec())),
            None if updates.is_empty() => Some(empty_snapshot()),
            _ => None,
        };
        if !updates.is_empty() {
            // Merging updates leaves Loro's merge structures behind: 1.3 MiB
            // for a room of 840 keystrokes of 4 peers, against 0.1 MiB once
            // reloaded from its own snapshot (0.4 ms more per load). On error
            // the room stays as merged.
            let _ = room.compact();
        }
        Ok((room, failed))
    }

    /// Brings the text up to date with the history (Loro diffs everything
    /// imported since the last catch-up in one pass), leaving the document
    /// attached until [`Self::detach`].
    fn attach(&mut self) {
        if self.doc.is_detached() {
            self.doc.checkout_to_latest();
        }
        self.caught_up_bytes = self.doc.get_text(TEXT_CONTAINER).len_utf8();
        self.growth_bound = 0;
    }

    fn detach(&mut self) {
        self.doc.detach();
    }

    /// An upper bound of the text's UTF-8 length, without catching up.
    pub fn len_bytes_at_most(&self) -> usize {
        self.caught_up_bytes.saturating_add(self.growth_bound)
    }

    /// The text's exact UTF-8 length (catches up).
    pub fn len_bytes(&mut self) -> usize {
        self.attach();
        self.detach();
        self.caught_up_bytes
    }

    /// The whole text (catches up; for tests and tools).
    pub fn text(&mut self) -> String {
        self.attach();
        let text = self.doc.get_text(TEXT_CONTAINER).to_string();
        self.detach();
        text
    }

    /// The number of changes in the history.
    pub fn history_len(&self) -> usize {
        self.doc.len_changes()
    }

    /// The room's version vector, encoded.
    pub fn version(&self) -> Vec<u8> {
        self.doc.oplog_vv().encode()
    }

    /// The room's version vector.
    pub fn version_vector(&self) -> VersionVector {
        self.doc.oplog_vv()
    }

    /// The whole document, history included, for a newcomer or the store.
    /// A failed export is an error, never an empty snapshot: the store
    /// would replace the room's history with it.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, DocError> {
        self.attach();
        let bytes = self
            .doc
            .export(ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()));
        self.detach();
        bytes
    }

    /// Everything the room has that a replica at `version` lacks.
    pub fn updates_since(&self, version: &[u8]) -> Result<Vec<u8>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        self.doc
            .export(ExportMode::updates(&vv))
            .map_err(|e| DocError::BadVersion(e.to_string()))
    }

    /// Merges an update if the text stays within `max_bytes`; otherwise, or
    /// on any error, the document is left as it was. Returns whether the
    /// update brought anything new (a resent one brings nothing).
    ///
    /// `info` is the update's metadata ([`UpdateInfo::read`]): an update
    /// whose dependencies the room lacks is refused before Loro sees it (Loro
    /// would keep it pending and apply it, unannounced, once they arrive),
    /// and one that touches anything but the room's text is rolled back.
    /// Loro itself refuses history forged under a peer id it has seen when
    /// the update brings something new (`BadUpdate`).
    pub fn import_checked(
        &mut self,
        bytes: &[u8],
        info: &UpdateInfo,
        max_bytes: usize,
    ) -> Result<bool, DocError> {
        let before = self.doc.oplog_vv();
        if !info.applies_to(&before) {
            return Err(DocError::MissingDependencies);
        }
        let new: Vec<PeerSpan> = info.new_to(&before).collect();
        if new.is_empty() {
            return Ok(false);
        }
        let growth = growth_of(bytes.len());
        let light = self.import_is_light(bytes.len(), max_bytes);
        // Detached first in every case: that only adds the changes to the
        // history (a 740 KiB paste: under a millisecond), so what they
        // would cost to merge into the text is known before it is paid.
        outcome(&self.import_counted(bytes)?)?;
        if let Some(foreign) = self.foreign_container(&new) {
            self.roll_back_to(&before)?;
            return Err(DocError::ForeignContainer(foreign));
        }
        if bytes.len() >= REPLAY_CHECK_MIN_BYTES {
            let cost = crate::runs::insert_replay_cost(&self.doc, &new);
            if cost > REPLAY_BUDGET {
                self.roll_back_to(&before)?;
                return Err(DocError::TooCostly {
                    cost,
                    budget: REPLAY_BUDGET,
                });
            }
        }
        if light {
            self.growth_bound = self.growth_bound.saturating_add(growth);
            self.remember(bytes);
            return Ok(true);
        }
        // A big update, or one near the limit: bring the text up to date
        // to know its exact length.
        self.attach();
        let would_be = self.caught_up_bytes;
        self.detach();
        if would_be > max_bytes {
            self.roll_back_to(&before)?;
            return Err(DocError::TooLarge {
                would_be,
                max: max_bytes,
            });
        }
        self.remember(bytes);
        Ok(true)
    }

    /// Whether importing an update of `len` bytes stays on the cheap path:
    /// detached, no catch-up of the text (a keystroke, a few µs).
    pub fn import_is_light(&self, len: usize, max_bytes: usize) -> bool {
        len <= DETACHED_IMPORT_MAX_BYTES
            && self.len_bytes_at_most().saturating_add(growth_of(len)) <= max_bytes
    }

    /// Whether the next import that brings something may compact.
    pub fn compaction_due(&self, every: usize) -> bool {
        self.imports_since_compact + 1 >= self.compact_after.max(every)
    }

    /// [`Self::import_checked`], reading the update's metadata first.
    pub fn import_limited(&mut self, bytes: &[u8], max_bytes: usize) -> Result<bool, DocError> {
        self.import_checked(bytes, &UpdateInfo::read(bytes)?, max_bytes)
    }

    /// The first container other than the room's text that the changes in
    /// `spans` touch, if any.
    fn foreign_container(&self, spans: &[PeerSpan]) -> Option<String> {
        let text = ContainerID::new_root(TEXT_CONTAINER, ContainerType::Text);
        spans.iter().find_map(|s| {
            let len = usize::try_from(s.end.saturating_sub(s.start)).unwrap_or(0);
            self.doc
                .get_changed_containers_in(ID::new(s.peer, s.start), len)
                .into_iter()
                .find(|c| *c != text)
                .map(|c| c.to_string())
        })
    }

    /// Forgets every change after `vv`: rebuilds the document as it was
    /// then. Costs time linear in the document; only refused updates that
    /// Loro had to import to be judged come here.
    fn roll_back_to(&mut self, vv: &VersionVector) -> Result<(), DocError> {
        let frontiers = self.doc.vv_to_frontiers(vv);
        let doc = self
            .doc
            .fork_at(&frontiers)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        let (since, after) = (self.imports_since_compact, self.compact_after);
        let kept = (
            self.base.take(),
            std::mem::take(&mut self.tail),
            self.tail_bytes,
        );
        *self = Self::detached(doc);
        (self.imports_since_compact, self.compact_after) = (since, after);
        (self.base, self.tail, self.tail_bytes) = kept;
        Ok(())
    }

    /// One Loro import; one that brings something counts towards the next
    /// compaction.
    fn import_counted(&mut self, bytes: &[u8]) -> Result<loro::ImportStatus, DocError> {
        let status = self.doc.import(bytes).map_err(bad_update)?;
        if brought_something(&status) {
            self.imports_since_compact += 1;
        }
        Ok(status)
    }

    /// Inserts `text` if the document has no history at all, returning the
    /// update to relay; `None` when it already has some.
    ///
    /// The seed is deterministic: authored under a peer id derived from the
    /// text (see [`seed_peer`]), from an empty history, with no timestamp.
    /// Two servers (or one, twice) seeding the same text make the very same
    /// change, so replicas that bring one seed back to a room seeded again
    /// from the same file merge the two as one instead of doubling the text.
    pub fn seed_if_empty(&mut self, text: &str) -> Option<Vec<u8>> {
        if text.is_empty() || self.doc.len_changes() > 0 {
            return None;
        }
        let doc = LoroDoc::new();
        doc.set_peer_id(seed_peer(text)).ok()?;
        doc.get_text(TEXT_CONTAINER).insert(0, text).ok()?;
        doc.commit();
        let update = doc.export(ExportMode::all_updates()).ok()?;
        self.attach();
        let imported = self.doc.import(&update);
        self.caught_up_bytes = self.doc.get_text(TEXT_CONTAINER).len_utf8();
        // The room was empty: its snapshot now is the newcomers' base (the
        // text is up to date, so it costs an export only).
        let snapshot = self.doc.export(ExportMode::Snapshot);
        self.detach();
        imported.ok()?;
        match snapshot {
            Ok(s) => {
                self.base = Some(Arc::new(s));
                self.tail = Vec::new();
                self.tail_bytes = 0;
            }
            Err(_) => self.remember(&update),
        }
        Some(update)
    }

    /// Rebuilds the document from its own snapshot, turning the parsed
    /// history a long session accumulates back into Loro's compact form.
    /// Text, history and version are unchanged.
    pub fn compact(&mut self) -> Result<(), DocError> {
        let started = Instant::now();
        let snapshot = self.snapshot()?;
        let doc = LoroDoc::new();
        doc.import(&snapshot)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        *self = Self::detached(doc);
        self.base = Some(Arc::new(snapshot));
        self.compact_after = next_compaction_after(started.elapsed());
        Ok(())
    }

    /// Compacts when at least `every` new imports (more after a costly
    /// compaction) arrived since the last one. Returns whether it did.
    pub fn compact_if_due(&mut self, every: usize) -> Result<bool, DocError> {
        if self.imports_since_compact < self.compact_after.max(every) {
            return Ok(false);
        }
        self.imports_since_compact = 0;
        self.compact().map(|()| true)
    }
}

/// How many imports to wait before compacting again, given what the last
/// compaction cost. Compaction (a reload from the room's snapshot) turns the
/// tens of MiB of parsed history a long session accumulates back into Loro's
/// compact encoded form (automerge-paper typed key by key: 43 MiB of live
/// heap before, 0.6 MiB after), but it costs time that grows with the
/// document: the catch-up of the text it starts with replays the history
/// after the previous reload (up to 0.3 s for that document). Waiting one
/// import per `COMPACTION_BUDGET_PER_IMPORT` of that cost keeps compaction
/// near that much per import, about a fifth of a detached import, instead of
/// compacting a large document every few seconds of typing. The cap bounds
/// the history a room holds between compactions (about 170 bytes each).
pub fn next_compaction_after(cost: Duration) -> usize {
    const MAX_IMPORTS_BETWEEN_COMPACTIONS: usize = 100_000;
    usize::try_from(cost.as_nanos() / COMPACTION_BUDGET_PER_IMPORT.as_nanos())
        .unwrap_or(usize::MAX)
        .min(MAX_IMPORTS_BETWEEN_COMPACTIONS)
}

/// The peer id a seed of `text` is authored under: FNV-1a of its bytes, so
/// every build and every server agrees (std's hashers promise no stable
/// output). Loro reserves `u64::MAX`.
pub fn seed_peer(text: &str) -> u64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash.min(u64::MAX - 1)
}

/// What compaction may cost per import, amortized.
pub const COMPACTION_BUDGET_PER_IMPORT: Duration = Duration::from_nanos(500);

fn bad_update(e: loro::LoroError) -> DocError {
    DocError::BadUpdate(e.to_string())
}

/// What an import means to the caller: an error when parts of it wait for
/// changes the room lacks (Loro keeps those pending), else whether it
/// brought anything new.
fn outcome(status: &loro::ImportStatus) -> Result<bool, DocError> {
    if status.pending.is_some() {
        return Err(DocError::MissingDependencies);
    }
    Ok(brought_something(status))
}

/// Whether an import added changes to the history (a resent update adds
/// none: Loro trims the parts it knows).
fn brought_something(status: &loro::ImportStatus) -> bool {
    status.success.iter().any(|(_, (start, end))| end > start)
}

#[cfg(test)]
mod tests {
    use super::next_compaction_after;
    use std::time::Duration;

    #[test]
    fn costly_compactions_wait_longer_within_a_cap() {
        assert_eq!(next_compaction_after(Duration::from_micros(40)), 80);
        assert_eq!(next_compaction_after(Duration::from_millis(20)), 40_000);
        assert_eq!(next_compaction_after(Duration::from_secs(3)), 100_000);
    }
}
