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
//! quadratic in its length (`crate::runs`), so a big update's inserts are
//! read from the history: their cost against [`REPLAY_BUDGET`] (over it,
//! the update is rolled back and refused), and their bytes, which bound
//! the text's growth exactly. Only an update that could cross the size
//! limit by that bound has the text brought up to date (and is refused
//! over it); a paste far from the limit is never merged into the live
//! text (the compaction it makes due merges it, on a document of its
//! own).
//!
//! Compaction (see `crate::compaction`) never runs on this document: the
//! room keeps the snapshot of its last compaction and every update merged
//! since as bytes (what a newcomer is sent), a job compacts those bytes
//! elsewhere, and [`RoomDoc::finish_compaction`] swaps the result in.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use loro::{ContainerID, ContainerType, ExportMode, ID, LoroDoc, VersionVector};

use crate::compaction::{Compacted, CompactionJob, Need, Swapped};
use crate::{DocEncoding, DocError, PeerSpan, TEXT_CONTAINER, UpdateInfo};

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
    /// load, or seed), and every update merged since, in order: together
    /// they are the document, so a newcomer's welcome costs no CRDT work
    /// (see [`Self::for_newcomer`]) and compaction needs nothing else (see
    /// [`Self::compaction_job`]).
    base: Arc<Vec<u8>>,
    tail: Vec<Arc<Vec<u8>>>,
    tail_bytes: usize,
    /// Bumped whenever `base` is replaced: a compaction job taken before
    /// is stale.
    generation: u64,
    /// A compaction job is out (at most one at a time).
    compacting: bool,
    /// The history trimmed away (Loro's shallow root), empty when none:
    /// a replica must have all of it to be sent only what it lacks.
    trimmed: VersionVector,
    /// The history up to a version as one update, and that version: what
    /// a newcomer is sent first (see [`Self::newcomer_doc`]). Made on the
    /// way by the compaction or load that made the kept snapshot, else by
    /// the first newcomer after it; kept until the snapshot is replaced.
    whole: Option<Whole>,
    /// The changes after `whole`, merged into one update: made by the
    /// first newcomer after a change, dropped at the next.
    whole_after: Option<Arc<Vec<u8>>>,
    /// The text as one zlib stream, for a newcomer to show while it loads
    /// the history (`welcome.text`): taken by the first newcomer that asks
    /// after the kept snapshot is replaced, kept until the next (see
    /// [`Self::newcomer_text`]).
    shown: Option<Arc<Vec<u8>>>,
}

/// The history up to a version as one update, and the same compressed
/// once a newcomer that reads zlib asked for it (`crate::zlib`).
#[derive(Debug, Clone)]
struct Whole {
    update: Arc<Vec<u8>>,
    at: VersionVector,
    zlib: Option<Arc<Vec<u8>>>,
}

/// What a newcomer loads (`welcome.doc_kind` and what follows it).
#[derive(Debug, Clone)]
pub enum NewcomerDoc {
    /// The room's whole history as updates (`doc_kind: "updates"`,
    /// imported into an empty document, then the second if any): the
    /// history up to the kept snapshot's version as one update, and the
    /// changes since merged into one. No text state and no per-keystroke
    /// headers: automerge-paper's newcomer loads it in a fifth of the time
    /// the kept snapshot and its 2,557 updates took, in two thirds of the
    /// bytes (BENCHMARKS.md, "The welcome as one update").
    Updates(Arc<Vec<u8>>, Option<Arc<Vec<u8>>>),
    /// [`Self::Updates`] with its first update compressed as a zlib
    /// stream (`welcome.doc_encoding: "zlib"`), for a newcomer that reads
    /// it ([`DocEncoding::Zlib`]); the changes since stay as they are.
    ZlibUpdates(Arc<Vec<u8>>, Option<Arc<Vec<u8>>>),
    /// The kept snapshot and the updates merged after it, to import in
    /// order (`doc_kind: "snapshot"` and its `doc_updates`): a room that
    /// trimmed history, whose updates cannot start from nothing.
    Snapshot(Newcomer),
}

/// What a newcomer loads: a snapshot, then the updates merged after it.
pub type Newcomer = (Arc<Vec<u8>>, Vec<Arc<Vec<u8>>>);

/// Compaction is due once this many update bytes follow the kept
/// snapshot, however few the imports: the tail is what every newcomer is
/// sent on top of the snapshot.
pub const TAIL_COMPACT_BYTES: usize = 1024 * 1024;

/// A small room compacts no sooner than this many update bytes after its
/// kept snapshot: a compaction has a fixed cost (a new Loro document, an
/// export and an import: about 4 to 7 ms for a room of a few thousand
/// keystrokes), and at "as big as the snapshot and 16 KiB" 50 small rooms
/// typing at 160 updates/s each compacted 40 times a second, a third of
/// the server's CPU (BENCHMARKS.md, "Issue 16").
pub const TAIL_COMPACT_MIN_BYTES: usize = 64 * 1024;

/// A compaction replaces the live document only when the updates that
/// arrived while it ran are at most this many bytes: importing them into
/// the compacted document happens under the room's lock (detached, a
/// keystroke is 2 to 3 µs and a 740 KiB paste under a millisecond). The
/// server lets at most two history windows and an update arrive meanwhile.
/// Otherwise only the kept snapshot is swapped, and the next compaction
/// tries again; a snapshot that trimmed history is not swapped in at all
/// without the live document (both must refuse the same updates).
const LIVE_SWAP_MAX_AFTER_BYTES: usize = 4 * 1024 * 1024;

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
        Self::detached(LoroDoc::new(), empty_snapshot())
    }

    /// Takes an attached document (its text up to date) and detaches it;
    /// `base` is its snapshot.
    fn detached(doc: LoroDoc, base: Arc<Vec<u8>>) -> Self {
        let caught_up_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        let trimmed = doc.shallow_since_vv().to_vv();
        doc.detach();
        Self {
            doc,
            caught_up_bytes,
            growth_bound: 0,
            imports_since_compact: 0,
            compact_after: 0,
            base,
            tail: Vec::new(),
            tail_bytes: 0,
            generation: 0,
            compacting: false,
            trimmed,
            whole: None,
            whole_after: None,
            shown: None,
        }
    }

    /// A merged update joins the tail kept for newcomers.
    fn remember(&mut self, update: &[u8]) {
        self.whole_after = None;
        self.tail_bytes += update.len();
        self.tail.push(Arc::new(update.to_vec()));
    }

    /// The kept snapshot is replaced: the tail starts again.
    fn rebase(&mut self, base: Arc<Vec<u8>>) {
        self.whole = None;
        self.shown = None;
        self.whole_after = None;
        self.base = base;
        self.tail = Vec::new();
        self.tail_bytes = 0;
        self.generation += 1;
    }

    /// What a newcomer needs: the kept snapshot, and the updates merged
    /// after it, to import in order. No CRDT work: a copy of references.
    pub fn for_newcomer(&self) -> Newcomer {
        (Arc::clone(&self.base), self.tail.clone())
    }

    /// What a newcomer loads: the history up to the kept snapshot's version
    /// as one update (made by the compaction or load that made the
    /// snapshot; else by the first newcomer after it, an export of the
    /// history: automerge-paper 3.4 ms), and the changes since merged into
    /// one (made by the first newcomer after a change: automerge-paper's
    /// 2,557 keystrokes, 0.16 ms), so a newcomer usually costs a reference
    /// count (see [`Self::newcomer_doc_ready`]). A room that trimmed
    /// history sends its kept snapshot and tail ([`Self::for_newcomer`]),
    /// as does one whose export fails, or whose merged changes would be
    /// over `max_update_bytes` (an update cannot be cut into parts: the
    /// updates it merges each fit, as each was accepted).
    pub fn newcomer_doc(&mut self, max_update_bytes: usize) -> NewcomerDoc {
        self.newcomer_doc_as(max_update_bytes, DocEncoding::Raw)
    }

    /// [`Self::newcomer_doc`] for a newcomer that reads `encoding`: with
    /// [`DocEncoding::Zlib`], the history up to the kept snapshot is sent
    /// compressed ([`NewcomerDoc::ZlibUpdates`]), compressed by the first
    /// such newcomer after the snapshot (automerge-paper: 259 KB to about
    /// 113 KB in a few milliseconds) and copied for the next.
    pub fn newcomer_doc_as(
        &mut self,
        max_update_bytes: usize,
        encoding: DocEncoding,
    ) -> NewcomerDoc {
        if self.is_trimmed() {
            return NewcomerDoc::Snapshot(self.for_newcomer());
        }
        let whole = match &mut self.whole {
            Some(w) => w,
            None => match self.doc.export(ExportMode::all_updates()) {
                Ok(bytes) => {
                    self.whole_after = None;
                    self.whole.insert(Whole {
                        update: Arc::new(bytes),
                        at: self.doc.oplog_vv(),
                        zlib: None,
                    })
                }
                Err(_) => return NewcomerDoc::Snapshot(self.for_newcomer()),
            },
        };
        let at = whole.at.clone();
        let first = match encoding {
            DocEncoding::Raw => Arc::clone(&whole.update),
            DocEncoding::Zlib => Arc::clone(
                whole
                    .zlib
                    .get_or_insert_with(|| Arc::new(crate::zlib::deflate(&whole.update))),
            ),
        };
        let wrap = match encoding {
            DocEncoding::Raw => NewcomerDoc::Updates,
            DocEncoding::Zlib => NewcomerDoc::ZlibUpdates,
        };
        let whole = first;
        if at == self.doc.oplog_vv() {
            return wrap(whole, None);
        }
        let after = match &self.whole_after {
            Some(after) => Arc::clone(after),
            None => match self.doc.export(ExportMode::updates(&at)) {
                Ok(bytes) => {
                    let after = Arc::new(bytes);
                    self.whole_after = Some(Arc::clone(&after));
                    after
                }
                Err(_) => return NewcomerDoc::Snapshot(self.for_newcomer()),
            },
        };
        if after.len() > max_update_bytes {
            return NewcomerDoc::Snapshot(self.for_newcomer());
        }
        wrap(whole, Some(after))
    }

    /// Whether [`Self::newcomer_doc`] is short work (references, or the
    /// merge of a tail of at most 64 KiB): the caller may run it where only
    /// short work may run.
    pub fn newcomer_doc_ready(&self) -> bool {
        self.newcomer_doc_ready_as(DocEncoding::Raw)
    }

    /// [`Self::newcomer_doc_ready`] for [`Self::newcomer_doc_as`]: a zlib
    /// newcomer also needs the history compressed already.
    pub fn newcomer_doc_ready_as(&self, encoding: DocEncoding) -> bool {
        self.is_trimmed()
            || (self
                .whole
                .as_ref()
                .is_some_and(|w| encoding == DocEncoding::Raw || w.zlib.is_some())
                && (self.whole_after.is_some() || self.tail_bytes <= 64 * 1024))
    }

    /// The text as one zlib stream, for a newcomer to show while it loads
    /// the history (`welcome.text`, docs/protocol.md 5.1); `None` when the
    /// text is empty. Taken by the first newcomer that asks after the kept
    /// snapshot is replaced, then copied for the next; the newcomer shows
    /// its document's text once loaded, so the text may lag: it is the
    /// text as of the last catch-up (a compaction leaves the document
    /// caught up), unless the updates since could have grown it more than
    /// eightfold (a bound that counts a keystroke as about 360 bytes), when
    /// it is caught up first. Catching automerge-paper up across 1,800
    /// keystrokes costs about 20 ms; its text as it stands, 0.3 ms, and
    /// compressing it a few ms (on the blocking pool, once).
    pub fn newcomer_text(&mut self) -> Option<Arc<Vec<u8>>> {
        let shown = match &self.shown {
            Some(shown) => Arc::clone(shown),
            None => {
                let lagging = self.growth_bound > self.caught_up_bytes.saturating_mul(8);
                let text = if lagging {
                    self.text()
                } else {
                    self.doc.get_text(TEXT_CONTAINER).to_string()
                };
                // An empty text is not kept: the next update may fill it.
                if text.is_empty() {
                    return None;
                }
                let z = crate::zlib::deflate(text.as_bytes());
                Arc::clone(self.shown.insert(Arc::new(z)))
            }
        };
        Some(shown)
    }

    /// Whether [`Self::newcomer_text`] is a copy of a reference, or of
    /// nothing (an empty text caught up).
    pub fn newcomer_text_ready(&self) -> bool {
        self.shown.is_some() || (self.caught_up_bytes == 0 && self.growth_bound == 0)
    }

    /// Update bytes kept after the snapshot for newcomers.
    pub fn tail_bytes(&self) -> usize {
        self.tail_bytes
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
        let base = match snapshot {
            Some(s) => Arc::new(s.to_vec()),
            None => empty_snapshot(),
        };
        let mut room = Self::detached(doc, base);
        if !updates.is_empty() {
            // Merging updates leaves Loro's merge structures behind: 1.3 MiB
            // for a room of 840 keystrokes of 4 peers, against 0.1 MiB once
            // reloaded from its own snapshot (0.4 ms more per load). It also
            // makes the newcomers' snapshot: the kept base must be the whole
            // document, and an update that failed to load is not in it.
            room.compact()?;
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
        let bytes = crate::export::export(&self.doc, ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()));
        self.detach();
        bytes
    }

    /// Everything the room has that a replica at `version` lacks.
    /// [`DocError::HistoryTrimmed`] when it lacks history the room trimmed
    /// (it loads the room's snapshot instead).
    pub fn updates_since(&self, version: &[u8]) -> Result<Vec<u8>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        if !covers(&vv, &self.trimmed) {
            return Err(DocError::HistoryTrimmed);
        }
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
        if light {
            self.growth_bound = self.growth_bound.saturating_add(growth);
            self.remember(bytes);
            return Ok(true);
        }
        // A big update, or one near the limit. What its inserts cost to
        // merge into the text and how much they can grow it, read from the
        // history (a 1 MiB paste: well under a millisecond).
        let inserts = crate::runs::inserts_of(&self.doc, &new);
        if bytes.len() >= REPLAY_CHECK_MIN_BYTES && inserts.replay_cost > REPLAY_BUDGET {
            self.roll_back_to(&before)?;
            return Err(DocError::TooCostly {
                cost: inserts.replay_cost,
                budget: REPLAY_BUDGET,
            });
        }
        // Within the limit even if nothing it inserts is ever deleted: the
        // text need not be brought up to date. (A paste used to be merged
        // into the text here, then again by the compaction it made due:
        // the text's catch-up was a fifth of what a 1 MiB paste cost the
        // server, issue 13.)
        if self.len_bytes_at_most().saturating_add(inserts.bytes) <= max_bytes {
            self.growth_bound = self.growth_bound.saturating_add(inserts.bytes);
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
        let doc = match self.doc.fork_at(&frontiers) {
            Ok(doc) => doc,
            // Loro cannot fork a shallow document; the kept snapshot and
            // the updates after it are the document as it was.
            Err(_) => self.rebuilt()?,
        };
        self.caught_up_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        self.growth_bound = 0;
        doc.detach();
        self.doc = doc;
        self.whole_after = None;
        Ok(())
    }

    /// The document rebuilt from the kept snapshot and the updates after
    /// it, its text up to date.
    fn rebuilt(&self) -> Result<LoroDoc, DocError> {
        let doc = LoroDoc::new();
        doc.import(&self.base)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        doc.detach();
        for u in &self.tail {
            outcome(&doc.import(u).map_err(bad_update)?)?;
        }
        doc.checkout_to_latest();
        Ok(doc)
    }

    /// Whether the room trimmed history (it keeps a shallow one).
    pub fn is_trimmed(&self) -> bool {
        !self.trimmed.is_empty()
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
            Ok(s) => self.rebase(Arc::new(s)),
            Err(_) => self.remember(&update),
        }
        Some(update)
    }

    /// Rebuilds the document from its own snapshot, in place, turning the
    /// parsed history a long session accumulates back into Loro's compact
    /// form; the snapshot becomes the newcomers' base. Text, history and
    /// version are unchanged. The work of a compaction job, done on the
    /// room's document (a load, tests): the server compacts through
    /// [`Self::compaction_job`], off the room's lock.
    pub fn compact(&mut self) -> Result<(), DocError> {
        let started = Instant::now();
        // Encoded anew (see `crate::compaction::replayed`), unless shallow.
        let mut whole = None;
        let snapshot = if self.doc.is_shallow() {
            self.snapshot()?
        } else {
            let (doc, all) = crate::compaction::replayed_with_update(&self.doc)?;
            whole = Some(Whole {
                update: Arc::new(all),
                at: doc.oplog_vv(),
                zlib: None,
            });
            doc.export(ExportMode::Snapshot)
                .map_err(|e| DocError::Export(e.to_string()))?
        };
        let doc = LoroDoc::new();
        doc.import(&snapshot)
            .map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        self.caught_up_bytes = doc.get_text(TEXT_CONTAINER).len_utf8();
        self.growth_bound = 0;
        self.trimmed = doc.shallow_since_vv().to_vv();
        doc.detach();
        self.doc = doc;
        self.rebase(Arc::new(snapshot));
        if !self.is_trimmed() {
            self.whole = whole;
        }
        self.imports_since_compact = 0;
        self.compact_after = next_compaction_after(started.elapsed());
        Ok(())
    }

    /// Whether a compaction is due: at least `every` new imports (more
    /// after a costly compaction) since the last one, or as many update
    /// bytes after the kept snapshot as the snapshot itself and 16 KiB, at
    /// least [`TAIL_COMPACT_MIN_BYTES`] and at most [`TAIL_COMPACT_BYTES`];
    /// never while a job is out.
    ///
    /// The tail is what every newcomer is sent after the snapshot, one
    /// `update` event each (automerge-paper typed key by key, compacted on
    /// the import count alone: 27,227 updates, 2.6 MB, after a 231 KB
    /// snapshot). Compacting when it is as big as the snapshot keeps a
    /// welcome within about twice the snapshot, and costs what a
    /// compaction costs per byte of document (about 60 to 110 ns) once per
    /// byte of updates: 5 to 10 µs per keystroke, off the room's lock.
    pub fn compaction_due(&self, every: usize) -> bool {
        let tail_max =
            TAIL_COMPACT_BYTES.min((self.base.len() + 16 * 1024).max(TAIL_COMPACT_MIN_BYTES));
        !self.compacting
            && (self.imports_since_compact >= self.compact_after.max(every)
                || self.tail_bytes >= tail_max)
    }

    /// Takes a compaction job (a copy of references to the kept snapshot
    /// and tail) unless one is out already. Run it anywhere
    /// ([`CompactionJob::run`]) and give the result to
    /// [`Self::finish_compaction`], or tell [`Self::compaction_abandoned`].
    ///
    /// `needs` are what each connected member has: when the history must
    /// be trimmed, the job keeps what they build on (see
    /// `crate::compaction`). No needs: a trimmed history keeps none.
    pub fn compaction_job(&mut self, needs: Vec<Need>) -> Option<CompactionJob> {
        if self.compacting {
            return None;
        }
        self.compacting = true;
        self.imports_since_compact = 0;
        Some(CompactionJob {
            base: Arc::clone(&self.base),
            tail: self.tail.clone(),
            generation: self.generation,
            needs,
        })
    }

    /// Whether a compaction job is out.
    pub fn is_compacting(&self) -> bool {
        self.compacting
    }

    /// The job taken did not finish (it failed, or its thread was lost).
    pub fn compaction_abandoned(&mut self) {
        self.compacting = false;
    }

    /// Swaps a finished job in: its snapshot becomes the newcomers' base
    /// and the updates it covers leave the tail (those that arrived while
    /// it ran stay). When those are few, they are imported into the
    /// compacted document, which then replaces the live one. Nothing
    /// changes when the base was replaced meanwhile (the result is stale).
    pub fn finish_compaction(&mut self, done: Compacted) -> Swapped {
        self.compacting = false;
        self.compact_after = next_compaction_after(done.cost);
        if done.generation != self.generation || done.covered > self.tail.len() {
            return Swapped::default();
        }
        let after = self.tail.split_off(done.covered);
        let after_bytes: usize = after.iter().map(|u| u.len()).sum();
        let mut live_replaced = false;
        if after_bytes <= LIVE_SWAP_MAX_AFTER_BYTES {
            let merged = after.iter().all(|u| {
                done.doc
                    .import(u)
                    .is_ok_and(|status| status.pending.is_none())
            });
            if merged && done.doc.oplog_vv() == self.doc.oplog_vv() {
                self.trimmed = done.doc.shallow_since_vv().to_vv();
                self.doc = done.doc;
                self.caught_up_bytes = done.text_bytes;
                self.growth_bound = after
                    .iter()
                    .fold(0, |g: usize, u| g.saturating_add(growth_of(u.len())));
                live_replaced = true;
            }
        }
        if done.trimmed && !live_replaced {
            self.tail = [self.tail.as_slice(), after.as_slice()].concat();
            return Swapped::default();
        }
        self.rebase(Arc::clone(&done.snapshot));
        if !done.trimmed {
            // The job's history is the snapshot's: a newcomer's first update.
            self.whole = done.updates.map(|update| Whole {
                update,
                at: done.version,
                zlib: None,
            });
        }
        self.tail = after.clone();
        self.tail_bytes = after_bytes;
        Swapped {
            snapshot: Some(done.snapshot),
            after,
            live_replaced,
            trimmed: done.trimmed,
        }
    }

    /// Compacts when due ([`Self::compaction_due`]), the way the server
    /// does but on the caller's thread: takes the job, runs it, swaps it
    /// in. Returns whether it did.
    pub fn compact_if_due(&mut self, every: usize) -> Result<bool, DocError> {
        if !self.compaction_due(every) {
            return Ok(false);
        }
        let Some(job) = self.compaction_job(Vec::new()) else {
            return Ok(false);
        };
        match job.run() {
            Ok(done) => {
                self.finish_compaction(done);
                Ok(true)
            }
            Err(e) => {
                self.compaction_abandoned();
                Err(e)
            }
        }
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
    match e {
        loro::LoroError::ImportUpdatesThatDependsOnOutdatedVersion => DocError::HistoryTrimmed,
        e => DocError::BadUpdate(e.to_string()),
    }
}

/// Whether `vv` has every change of `trimmed`.
fn covers(vv: &VersionVector, trimmed: &VersionVector) -> bool {
    trimmed
        .iter()
        .all(|(peer, &c)| vv.get(peer).copied().unwrap_or(0) >= c)
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
