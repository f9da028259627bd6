//! The shared text of a collab room: a [loro] CRDT behind a small, pure API
//! (no IO, no async) used by the server, the client library and the editor.
//!
//! Positions are Unicode scalar values (`char`s), the unit ropey uses, so the
//! editor's buffer and this document index text the same way. Bytes that
//! cross the network are Loro's own binary formats: updates
//! (`ExportMode::updates`), snapshots, version vectors and stable cursors.
//!
//! A replica that wants to mirror the text elsewhere (the editor's rope)
//! calls [`SharedDoc::track_changes`] and drains [`SharedDoc::take_changes`]
//! after each operation: local edits, imports and undo all arrive there as
//! the same [`TextChange`] list, so there is one path from document to
//! screen.
//!
//! The server holds each room as a [`RoomDoc`]: the same document kept
//! detached, so a keystroke only extends the history and the text is
//! brought up to date when a newcomer, a seed or the size limit needs it,
//! and compacted off the room's lock from the bytes it keeps
//! ([`CompactionJob`]). A room nobody has edited since it was created or
//! loaded is a [`LazyRoomDoc`]: bytes, with no live Loro document until it
//! is needed.

mod compaction;
mod export;
mod lazy;
mod room;
mod runs;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod tree;
mod update;
pub mod zlib;

pub use compaction::{Compacted, CompactionJob, HISTORY_WINDOW, Need, Swapped, history_bound};
pub use lazy::LazyRoomDoc;
pub use room::{
    NewcomerDoc, RoomDoc, TAIL_COMPACT_BYTES, TAIL_COMPACT_MIN_BYTES, next_compaction_after,
    seed_peer,
};
pub use runs::INSERT_RUN_CHARS;
pub use update::{PeerId, PeerSpan, UpdateInfo, forge_for_tests};
pub use zlib::DocEncoding;

/// Loro's version vector, as [`RoomDoc::version_vector`] and [`Need`] use it.
pub use loro::VersionVector;

use std::sync::Arc;

use parking_lot::Mutex;

use loro::event::Diff;
use loro::{
    ExportMode, ID, IdSpan, LoroDoc, LoroText, Subscription, TextDelta, UndoManager,
    cursor::Cursor, cursor::Side,
};

/// The name of the text container that holds the room's document.
pub const TEXT_CONTAINER: &str = "text";

/// The default largest document: 8 MiB of UTF-8 text.
pub const DEFAULT_MAX_DOC_BYTES: usize = 8 * 1024 * 1024;

/// Why an operation on the document failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DocError {
    #[error("the update could not be decoded or merged: {0}")]
    BadUpdate(String),
    #[error("the update depends on changes the document does not have")]
    MissingDependencies,
    #[error("the document would be {would_be} bytes, over the limit of {max} bytes")]
    TooLarge { would_be: usize, max: usize },
    #[error("the version vector could not be decoded: {0}")]
    BadVersion(String),
    #[error("the snapshot could not be loaded: {0}")]
    BadSnapshot(String),
    #[error("members send updates, not a {0:?} blob")]
    NotAnUpdate(String),
    #[error("the update changes {0}; members may change only the room's text")]
    ForeignContainer(String),
    #[error("the update carries changes under peer id {0}, which belongs to another member")]
    PeerOwned(u64),
    #[error(
        "the update inserts text in runs too long to merge cheaply (cost {cost}, budget {budget}): insert long text as runs of at most 512 characters"
    )]
    TooCostly { cost: u64, budget: u64 },
    #[error("the document could not be exported: {0}")]
    Export(String),
    #[error("position {pos} is past the end of the text ({len} characters)")]
    OutOfRange { pos: usize, len: usize },
    #[error(
        "the update builds on history the room no longer keeps (trimmed to bound it); load the room again"
    )]
    HistoryTrimmed,
}

/// One step of a change to the text, in `char`s, applied left to right from
/// position 0 (the Quill delta convention Loro uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextChange {
    Retain(usize),
    Insert(String),
    Delete(usize),
}

type ChangeLog = Arc<Mutex<Vec<Vec<TextChange>>>>;

/// A replica of a room's text.
pub struct SharedDoc {
    doc: LoroDoc,
    text: LoroText,
    changes: Option<(ChangeLog, Subscription)>,
    /// The version the last [`SharedDoc::take_local_update`] reached.
    sent: VersionVector,
}

impl Default for SharedDoc {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SharedDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedDoc")
            .field("peer", &self.doc.peer_id())
            .field("chars", &self.len_chars())
            .finish()
    }
}

impl SharedDoc {
    /// An empty document with a fresh random peer id.
    pub fn new() -> Self {
        Self::wrap(LoroDoc::new())
    }

    fn wrap(doc: LoroDoc) -> Self {
        let text = doc.get_text(TEXT_CONTAINER);
        let sent = doc.oplog_vv();
        Self {
            doc,
            text,
            changes: None,
            sent,
        }
    }

    /// A replica loaded from a snapshot, with a fresh peer id of its own,
    /// warm: a remote edit right after costs what it costs later (see
    /// [`Self::import`]).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, DocError> {
        let doc = LoroDoc::new();
        load_snapshot(&doc, bytes).map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        Ok(Self::wrap(doc))
    }

    /// This replica's Loro peer id.
    pub fn peer_id(&self) -> u64 {
        self.doc.peer_id()
    }

    /// Starts recording every change to the text (see [`Self::take_changes`]).
    pub fn track_changes(&mut self) {
        if self.changes.is_some() {
            return;
        }
        let log: ChangeLog = Arc::default();
        let sub = self.subscribe(Arc::clone(&log));
        self.changes = Some((log, sub));
    }

    /// Every change to the text goes into `sink`.
    fn subscribe(&self, sink: ChangeLog) -> Subscription {
        self.doc.subscribe(
            &loro::ContainerTrait::id(&self.text),
            Arc::new(move |event| {
                for container in event.events {
                    if let Diff::Text(deltas) = container.diff {
                        let steps = deltas.into_iter().map(|d| match d {
                            TextDelta::Retain { retain, .. } => TextChange::Retain(retain),
                            TextDelta::Insert { insert, .. } => TextChange::Insert(insert),
                            TextDelta::Delete { delete } => TextChange::Delete(delete),
                        });
                        sink.lock().push(coalesce(steps));
                    }
                }
            }),
        )
    }

    /// Replaces this replica by the document of `snapshot` and `updates`
    /// (imported in order), keeping its peer id: for a replica that cannot
    /// merge the room's document any more (the room trimmed history it
    /// builds on, docs/protocol.md "Trimmed history"). Its own changes the
    /// room lacks are gone. When changes are tracked, the change log gets
    /// the whole text replaced. On error nothing changes.
    pub fn replace_with(&mut self, snapshot: &[u8], updates: &[&[u8]]) -> Result<(), DocError> {
        let doc = LoroDoc::new();
        load_snapshot(&doc, snapshot).map_err(|e| DocError::BadSnapshot(e.to_string()))?;
        for u in updates {
            let status = doc
                .import(u)
                .map_err(|e| DocError::BadUpdate(e.to_string()))?;
            if status.pending.is_some() {
                return Err(DocError::MissingDependencies);
            }
        }
        // A fresh id: the old one's last changes may be ones the room
        // never got, and Loro expects a peer's changes to follow each other.
        let _ = doc.set_peer_id(LoroDoc::new().peer_id());
        let old_len = self.len_chars();
        let changes = self.changes.take();
        *self = Self::wrap(doc);
        if let Some((log, old)) = changes {
            drop(old);
            {
                let mut log = log.lock();
                if old_len > 0 {
                    log.push(vec![TextChange::Delete(old_len)]);
                }
                let text = self.text();
                if !text.is_empty() {
                    log.push(vec![TextChange::Insert(text)]);
                }
            }
            let sub = self.subscribe(Arc::clone(&log));
            self.changes = Some((log, sub));
        }
        Ok(())
    }

    /// The changes since the last call, oldest first; each inner list is one
    /// delta over the text as it was before it.
    pub fn take_changes(&self) -> Vec<Vec<TextChange>> {
        match &self.changes {
            Some((log, _)) => std::mem::take(&mut *log.lock()),
            None => Vec::new(),
        }
    }

    /// The owner shows `shown` (a room's text sent ahead of its document,
    /// `welcome.text`) instead of what the changes logged since the last
    /// [`Self::take_changes`] made of the text before them: the log
    /// becomes the one change from `shown` to the text now (nothing when
    /// they are equal), the differing middle replaced. Without change
    /// tracking, nothing happens.
    pub fn changes_from_shown(&self, shown: &str) {
        let Some((log, _)) = &self.changes else {
            return;
        };
        let now = self.text();
        let mut log = log.lock();
        log.clear();
        if let Some(delta) = replacing(shown, &now) {
            log.push(delta);
        }
    }

    /// The whole text.
    pub fn text(&self) -> String {
        self.text.to_string()
    }

    /// Characters in the text.
    pub fn len_chars(&self) -> usize {
        self.text.len_unicode()
    }

    /// UTF-8 bytes in the text.
    pub fn len_bytes(&self) -> usize {
        self.text.len_utf8()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces `delete` chars at `pos` with `insert`, as a local edit: one
    /// commit (one undo step), with an insert longer than
    /// [`INSERT_RUN_CHARS`] made of several operations.
    pub fn splice(&mut self, pos: usize, delete: usize, insert: &str) -> Result<(), DocError> {
        let len = self.len_chars();
        if pos > len || pos + delete > len {
            return Err(DocError::OutOfRange {
                pos: pos + delete,
                len,
            });
        }
        if delete > 0 {
            self.text
                .delete(pos, delete)
                .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        }
        if !insert.is_empty() {
            // A long insert (a paste) as runs: see the `runs` module.
            runs::insert_in_runs(&self.text, pos, insert)
                .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        }
        self.doc.commit();
        Ok(())
    }

    /// The local edits made since the last call, as one update to send, or
    /// `None` when there is nothing new.
    pub fn take_local_update(&mut self) -> Option<Vec<u8>> {
        let now = self.doc.oplog_vv();
        if now == self.sent {
            return None;
        }
        // Marked as sent only once exported: a failed export is retried by
        // the next call instead of losing the edits it should have carried.
        let bytes = export::export(&self.doc, ExportMode::updates(&self.sent)).ok()?;
        self.sent = now;
        Some(bytes)
    }

    /// The version the next [`Self::take_local_update`] starts from,
    /// encoded (keep it with an update that may be lost in transit).
    pub fn sent_version(&self) -> Vec<u8> {
        self.sent.encode()
    }

    /// Makes the next [`Self::take_local_update`] start from `version`
    /// again, to resend what a lost update carried (the receiver ignores
    /// what it already has).
    pub fn resend_from(&mut self, version: &[u8]) -> Result<(), DocError> {
        self.sent =
            VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        Ok(())
    }

    /// Marks everything in the document as sent (after a full resync).
    pub fn mark_all_sent(&mut self) {
        self.sent = self.doc.oplog_vv();
    }

    /// The whole document, history included.
    pub fn snapshot(&self) -> Result<Vec<u8>, DocError> {
        self.doc
            .export(ExportMode::Snapshot)
            .map_err(|e| DocError::Export(e.to_string()))
    }

    /// Authors the next edits under a fresh random peer id, for edits made
    /// while offline: after a server restart nobody owns the ids the old
    /// server gave out, so another member could extend this replica's id
    /// first, and edits made offline under it would then collide with that
    /// member's. A fresh id is one nobody has seen.
    pub fn author_fresh(&mut self) {
        self.doc.commit();
        // A fresh document draws its peer id from Loro's generator (never
        // `u64::MAX`, which Loro reserves).
        let _ = self.doc.set_peer_id(LoroDoc::new().peer_id());
    }

    /// Authors the next edits under `peer`, the id the server gave this
    /// session in its welcome (edits typed so far stay under the old one).
    /// The server refuses new changes under ids it gave other sessions.
    pub fn author_as(&mut self, peer: u64) -> Result<(), DocError> {
        author_as(&self.doc, peer)
    }

    /// This replica's version vector, encoded.
    pub fn version(&self) -> Vec<u8> {
        self.doc.oplog_vv().encode()
    }

    /// Everything this replica has that a replica at `version` lacks.
    pub fn updates_since(&self, version: &[u8]) -> Result<Vec<u8>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        self.doc
            .export(ExportMode::updates(&vv))
            .map_err(|e| DocError::BadVersion(e.to_string()))
    }

    /// Like [`Self::updates_since`], cut into updates of at most about
    /// `max_bytes` each (a frame limit), to import in the order given: the
    /// operations are ordered causally (by Lamport time) before cutting, so
    /// each part depends only on what the earlier parts and `version` hold.
    /// A single operation larger than `max_bytes` (a huge paste is cut
    /// between its characters, so only a pathological one) stays whole.
    pub fn updates_since_chunked(
        &self,
        version: &[u8],
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        self.export_chunked(&vv, None, max_bytes)
    }

    /// Like [`Self::take_local_update`], cut as [`Self::updates_since_chunked`]
    /// does; empty when there is nothing new.
    pub fn take_local_update_chunked(&mut self, max_bytes: usize) -> Vec<Vec<u8>> {
        let now = self.doc.oplog_vv();
        if now == self.sent {
            return Vec::new();
        }
        let parts = self
            .export_chunked(&self.sent, None, max_bytes)
            .unwrap_or_default();
        if !parts.is_empty() {
            self.sent = now;
        }
        parts
    }

    /// Like [`Self::take_local_update_chunked`], with only the changes of
    /// `peers`: a resend carries the ids its author wrote under, never
    /// another member's changes received since (the server refuses another
    /// session's ids, even in changes it has). Everything up to now counts
    /// as sent; empty when those peers have nothing new.
    pub fn take_updates_of_chunked(&mut self, peers: &[u64], max_bytes: usize) -> Vec<Vec<u8>> {
        let now = self.doc.oplog_vv();
        if !self
            .peers_after_vv(&self.sent)
            .iter()
            .any(|p| peers.contains(p))
        {
            self.sent = now;
            return Vec::new();
        }
        let parts = self
            .export_chunked(&self.sent, Some(peers), max_bytes)
            .unwrap_or_default();
        if !parts.is_empty() {
            self.sent = now;
        }
        parts
    }

    /// The peers with changes this replica has and a replica at `version`
    /// (encoded) lacks, sorted.
    pub fn peers_after(&self, version: &[u8]) -> Result<Vec<u64>, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        Ok(self.peers_after_vv(&vv))
    }

    fn peers_after_vv(&self, vv: &VersionVector) -> Vec<u64> {
        let mut peers: Vec<u64> = self
            .doc
            .oplog_vv()
            .iter()
            .filter(|(p, end)| vv.get(p).copied().unwrap_or(0) < **end)
            .map(|(p, _)| *p)
            .collect();
        peers.sort_unstable();
        peers
    }

    /// What a replica at `from` lacks (of `peers` only, when given), cut
    /// into updates of about `max_bytes`.
    fn export_chunked(
        &self,
        from: &VersionVector,
        peers: Option<&[u64]>,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, DocError> {
        if peers.is_none() {
            let whole = self
                .doc
                .export(ExportMode::updates(from))
                .map_err(|e| DocError::BadVersion(e.to_string()))?;
            if whole.len() <= max_bytes {
                return Ok(vec![whole]);
            }
        }
        // The missing changes, each as (lamport, span), in causal order.
        let mut pieces: Vec<(u32, IdSpan)> = Vec::new();
        for (&peer, &end) in self.doc.oplog_vv().iter() {
            if peers.is_some_and(|ps| !ps.contains(&peer)) {
                continue;
            }
            let mut at = from.get(&peer).copied().unwrap_or(0).max(0);
            while at < end {
                let Some(change) = self.doc.get_change(ID::new(peer, at)) else {
                    break;
                };
                let change_end = change
                    .id
                    .counter
                    .saturating_add(i32::try_from(change.len).unwrap_or(i32::MAX))
                    .min(end);
                if change_end <= at {
                    break;
                }
                let offset = u32::try_from(at - change.id.counter).unwrap_or(0);
                pieces.push((change.lamport + offset, IdSpan::new(peer, at, change_end)));
                at = change_end;
            }
        }
        pieces.sort_by_key(|(lamport, span)| (*lamport, span.peer));
        let spans: Vec<IdSpan> = pieces.into_iter().map(|(_, s)| s).collect();
        let mut out = Vec::new();
        self.cut(&spans, max_bytes, &mut out)?;
        Ok(out)
    }

    /// Exports `spans` (in causal order) as one update if it fits, else
    /// halves them (or halves the one span) and recurses.
    fn cut(
        &self,
        spans: &[IdSpan],
        max_bytes: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), DocError> {
        let bytes = self
            .doc
            .export(ExportMode::updates_in_range(spans.to_vec()))
            .map_err(|e| DocError::BadVersion(e.to_string()))?;
        if bytes.len() <= max_bytes {
            out.push(bytes);
            return Ok(());
        }
        match spans {
            [] => Ok(()),
            [one] => {
                let (start, end) = (one.counter.start, one.counter.end);
                if end - start <= 1 {
                    out.push(bytes);
                    return Ok(());
                }
                let mid = start + (end - start) / 2;
                self.cut(&[IdSpan::new(one.peer, start, mid)], max_bytes, out)?;
                self.cut(&[IdSpan::new(one.peer, mid, end)], max_bytes, out)
            }
            many => {
                let (a, b) = many.split_at(many.len() / 2);
                self.cut(a, max_bytes, out)?;
                self.cut(b, max_bytes, out)
            }
        }
    }

    /// Whether `version` includes everything this replica has.
    pub fn is_covered_by(&self, version: &[u8]) -> Result<bool, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        Ok(self.doc.oplog_vv() <= vv)
    }

    /// Whether this replica has everything a replica at `version` has.
    pub fn includes(&self, version: &[u8]) -> Result<bool, DocError> {
        let vv = VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        Ok(vv <= self.doc.oplog_vv())
    }

    /// Merges an update from another replica. Returns whether it brought
    /// anything new (a resent update brings nothing and need not be relayed).
    ///
    /// Loro compares the known part of an update with its own history when
    /// the update brings something new, so history forged under a peer id
    /// already seen is refused (`BadUpdate`) and changes nothing. An update
    /// made only of known ids changes nothing either way.
    ///
    /// A snapshot into an empty document (a newcomer's welcome) is loaded
    /// as `load_snapshot` says, in time linear in the document.
    pub fn import(&mut self, bytes: &[u8]) -> Result<bool, DocError> {
        let before = self.doc.oplog_vv();
        let status = if before.is_empty() {
            load_snapshot(&self.doc, bytes)
        } else {
            self.doc.import(bytes)
        }
        .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        if status.pending.is_some() {
            return Err(DocError::MissingDependencies);
        }
        // What it brought came from elsewhere, so it is not sent back.
        let now = self.doc.oplog_vv();
        let changed = now != before;
        if changed {
            self.mark_remote_sent(now);
        }
        Ok(changed)
    }

    /// Remote changes just imported came from elsewhere: the next
    /// [`Self::take_local_update`] need not send them back. Only this
    /// replica's own entry of `sent` is kept as it was.
    fn mark_remote_sent(&mut self, mut now: VersionVector) {
        let me = self.doc.peer_id();
        match self.sent.get(&me).copied() {
            Some(counter) => {
                now.insert(me, counter);
            }
            None => {
                now.remove(&me);
            }
        }
        self.sent = now;
    }

    /// A stable cursor at `pos` that stays on its character while others
    /// edit around it, encoded.
    pub fn cursor_at(&self, pos: usize) -> Option<Vec<u8>> {
        let pos = pos.min(self.len_chars());
        self.text.get_cursor(pos, Side::Middle).map(|c| c.encode())
    }

    /// Where an encoded stable cursor is now, in chars.
    pub fn resolve_cursor(&self, bytes: &[u8]) -> Option<usize> {
        let cursor = Cursor::decode(bytes).ok()?;
        self.doc
            .get_cursor_pos(&cursor)
            .ok()
            .map(|r| r.current.pos.min(self.len_chars()))
    }

    /// The number of changes in the history (for deciding when to compact).
    pub fn history_len(&self) -> usize {
        self.doc.len_changes()
    }

    /// An undo manager that reverts only this replica's own edits.
    pub fn undo_manager(&self) -> Undo {
        Undo(UndoManager::new(&self.doc))
    }
}

/// Undo and redo of this replica's local edits only; remote edits made in
/// between stay in place.
pub struct Undo(UndoManager);

impl Undo {
    /// Reverts my last edit; false when there is nothing to undo.
    pub fn undo(&mut self) -> bool {
        self.0.undo().unwrap_or(false)
    }
    /// Re-applies my last undone edit; false when there is nothing to redo.
    pub fn redo(&mut self) -> bool {
        self.0.redo().unwrap_or(false)
    }
    /// Closes the current undo step (and group), so the next edit starts
    /// a new one.
    pub fn checkpoint(&mut self) {
        self.0.group_end();
        let _ = self.0.record_new_checkpoint();
    }
    /// Closes the current undo step and opens a group: every edit until
    /// the next checkpoint is one step, however long it takes (a remote
    /// edit in between still splits it, as Loro cannot merge across one).
    pub fn begin_group(&mut self) {
        self.checkpoint();
        let _ = self.0.group_start();
    }
    pub fn can_undo(&self) -> bool {
        self.0.can_undo()
    }
    pub fn can_redo(&self) -> bool {
        self.0.can_redo()
    }
    /// Merge edits closer than this many milliseconds into one undo step.
    pub fn set_merge_interval(&mut self, ms: i64) {
        self.0.set_merge_interval(ms);
    }
}

/// Merges neighbouring steps of one kind: a document loaded by a replay
/// arrives as one insert per run of its history (a 10 MB paste: 20,000),
/// which the editor then applies as one.
fn coalesce(steps: impl Iterator<Item = TextChange>) -> Vec<TextChange> {
    let mut out: Vec<TextChange> = Vec::new();
    for step in steps {
        match (out.last_mut(), step) {
            (Some(TextChange::Insert(a)), TextChange::Insert(b)) => a.push_str(&b),
            (Some(TextChange::Retain(a)), TextChange::Retain(b)) => *a += b,
            (Some(TextChange::Delete(a)), TextChange::Delete(b)) => *a += b,
            (_, step) => out.push(step),
        }
    }
    out
}

/// The change from `old` to `new` as one replacement of the part between
/// their common start and common end; `None` when they are equal.
fn replacing(old: &str, new: &str) -> Option<Vec<TextChange>> {
    if old == new {
        return None;
    }
    let prefix: usize = old
        .chars()
        .zip(new.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let (old_rest, new_rest) = (&old[prefix..], &new[prefix..]);
    let suffix: usize = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let deleted = old_rest[..old_rest.len() - suffix].chars().count();
    let inserted = &new_rest[..new_rest.len() - suffix];
    let mut delta = Vec::new();
    if prefix > 0 {
        delta.push(TextChange::Retain(old[..prefix].chars().count()));
    }
    if deleted > 0 {
        delta.push(TextChange::Delete(deleted));
    }
    if !inserted.is_empty() {
        delta.push(TextChange::Insert(inserted.to_owned()));
    }
    Some(delta)
}

/// Checks that `bytes` decode as a version vector (`VersionVector::encode`),
/// as a join's `version` must: the server refuses one that does not before
/// the joiner enters the room.
pub fn check_version(bytes: &[u8]) -> Result<(), DocError> {
    VersionVector::decode(bytes)
        .map(|_| ())
        .map_err(|e| DocError::BadVersion(e.to_string()))
}

/// Loads a snapshot into `doc`, which has no history, through Loro's
/// replay of the history rather than its snapshot fast path.
///
/// Loro (1.17.1) loads a snapshot into an empty document by decoding the
/// text's state as stored, and decoding it is quadratic when the text was
/// pasted, that is made of many runs ([`INSERT_RUN_CHARS`], the last run
/// first: a 10 MB paste is about 20,000), each its own element: their bytes
/// lie one after the other in the snapshot, so each element pushed merges
/// into the one before, whose chars are counted again at every push
/// (`core::str::count` was 70 to 90% of the profiles). It happens
/// - during the import, when anything subscribes to `doc` (a replica's
///   change log, its undo manager): the event holding the whole text
///   (`RichtextState::to_diff`). Joining a room holding a 10 MB pasted file
///   took 41 s (BENCHMARKS.md), 2 MB 1.1 s;
/// - otherwise at the first edit that needs the text's state (the state is
///   decoded lazily): a remote keystroke into 8 MB loaded from a snapshot
///   took 4.3 s, the next one 10 µs (issue 16).
///
/// Imported detached, the snapshot only fills the history and its stored
/// state is never decoded; attaching builds the text by replaying the
/// history, which is linear (10 MB in runs: 0.36 s, release), emits it as
/// one event to whoever subscribes, and leaves Loro's merge structures
/// built, so the first remote edit costs what the next ones do.
///
/// Anything but a full snapshot is imported as it is: updates, and a
/// shallow snapshot (a room that trimmed history), whose history does not
/// start from nothing and so cannot be replayed.
fn load_snapshot(doc: &LoroDoc, bytes: &[u8]) -> loro::LoroResult<loro::ImportStatus> {
    if !update::is_full_snapshot(bytes) {
        return doc.import(bytes);
    }
    doc.detach();
    let status = doc.import(bytes);
    // Attached again whatever the import did: a failed import left the
    // history as it was.
    doc.attach();
    status
}

/// Commits what is pending and authors `doc`'s next changes under `peer`
/// (no-op when it already does): the text's and the tree's rule alike.
pub(crate) fn author_as(doc: &LoroDoc, peer: u64) -> Result<(), DocError> {
    if doc.peer_id() == peer {
        return Ok(());
    }
    doc.commit();
    doc.set_peer_id(peer)
        .map_err(|e| DocError::BadUpdate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use loro::EventTriggerKind;

    /// Applies `delta` to `text` as the editor does.
    fn applied(text: &str, delta: &[TextChange]) -> String {
        let chars: Vec<char> = text.chars().collect();
        let (mut at, mut out) = (0, String::new());
        for step in delta {
            match step {
                TextChange::Retain(n) => {
                    out.extend(&chars[at..at + n]);
                    at += n;
                }
                TextChange::Delete(n) => at += n,
                TextChange::Insert(s) => out.push_str(s),
            }
        }
        out.extend(&chars[at..]);
        out
    }

    /// The text shown ahead of the document becomes the document's text
    /// through one change of the part that differs, whatever the import
    /// logged; an equal one logs nothing.
    #[test]
    fn the_text_shown_first_becomes_the_documents_through_one_change() {
        let mut room = SharedDoc::new();
        room.splice(0, 0, "héllo wörld, a longer line\nand 🦀 more\n")
            .unwrap();
        let update = room.take_local_update().unwrap();
        for shown in [
            "héllo wörld, a longer line\nand 🦀 more\n",
            "héllo world, a longer line\nand 🦀 more\n",
            "héllo wörld\n",
            "",
            "and 🦀 more\n",
            "something else entirely 🦀",
        ] {
            let mut replica = SharedDoc::new();
            replica.track_changes();
            replica.import(&update).unwrap();
            replica.changes_from_shown(shown);
            let changes = replica.take_changes();
            let mut text = shown.to_owned();
            for delta in &changes {
                text = applied(&text, delta);
            }
            assert_eq!(text, replica.text(), "from {shown:?}");
            assert_eq!(changes.len(), usize::from(shown != replica.text()));
        }
        // The one change of a near miss is the differing char.
        let mut replica = SharedDoc::new();
        replica.track_changes();
        replica.import(&update).unwrap();
        replica.changes_from_shown("héllo world, a longer line\nand 🦀 more\n");
        assert_eq!(
            replica.take_changes(),
            [vec![
                TextChange::Retain(7),
                TextChange::Delete(1),
                TextChange::Insert("ö".into())
            ]]
        );
    }

    /// A snapshot of `text` pasted as runs (as the editor pastes).
    fn pasted_snapshot(text: &str) -> Vec<u8> {
        let mut room = SharedDoc::new();
        room.splice(0, 0, text).unwrap();
        room.snapshot().unwrap()
    }

    /// The structure of the fix for the 41 s join: a snapshot imported into
    /// an empty replica that tracks its changes (the first welcome) reaches
    /// the text through a replay (a checkout), never through Loro's
    /// snapshot fast path, whose event over the decoded state is quadratic
    /// in the runs. Through the fast path the event is an import's.
    #[test]
    fn a_snapshot_into_an_empty_tracked_replica_is_replayed_not_decoded() {
        let text = "fn main() {}\n".repeat(200);
        let snapshot = pasted_snapshot(&text);
        let mut replica = SharedDoc::new();
        replica.track_changes();
        let _undo = replica.undo_manager();
        let triggers: Arc<Mutex<Vec<EventTriggerKind>>> = Arc::default();
        let sink = Arc::clone(&triggers);
        let _sub = replica
            .doc
            .subscribe_root(Arc::new(move |e| sink.lock().push(e.triggered_by)));
        assert!(replica.import(&snapshot).unwrap());
        assert_eq!(*triggers.lock(), [EventTriggerKind::Checkout]);
        assert_eq!(replica.text(), text);
        assert_eq!(
            replica.take_changes(),
            [vec![TextChange::Insert(text.clone())]]
        );
        assert!(!replica.doc.is_detached());
        // It edits, and sends only what it adds.
        replica.splice(0, 0, "// x\n").unwrap();
        let update = replica.take_local_update().unwrap();
        let mut other = SharedDoc::from_snapshot(&snapshot).unwrap();
        assert!(other.import(&update).unwrap());
        assert_eq!(other.text(), replica.text());
    }

    /// A shallow snapshot (a room that trimmed history) into an empty
    /// tracked replica: the text, and a document that merges what follows.
    #[test]
    fn a_shallow_snapshot_into_an_empty_tracked_replica_loads() {
        let mut room = SharedDoc::new();
        room.splice(0, 0, &"z".repeat(3 * INSERT_RUN_CHARS))
            .unwrap();
        room.splice(0, 10, "").unwrap();
        room.splice(5, 0, "kept").unwrap();
        let frontiers = room.doc.oplog_frontiers();
        let shallow = room
            .doc
            .export(ExportMode::shallow_snapshot(&frontiers))
            .unwrap();
        let mut replica = SharedDoc::new();
        replica.track_changes();
        assert!(replica.import(&shallow).unwrap());
        assert_eq!(replica.text(), room.text());
        assert_eq!(
            replica.take_changes(),
            [vec![TextChange::Insert(room.text())]]
        );
        room.splice(0, 0, "after ").unwrap();
        assert!(replica.import(&room.take_local_update().unwrap()).unwrap());
        assert_eq!(replica.text(), room.text());
    }

    /// `from_snapshot` loads the same way: its state is built by a replay.
    #[test]
    fn from_snapshot_replays_the_history() {
        let text = "x".repeat(3 * INSERT_RUN_CHARS + 5);
        let doc = SharedDoc::from_snapshot(&pasted_snapshot(&text)).unwrap();
        assert_eq!(doc.text(), text);
        assert!(!doc.doc.is_detached());
    }

    /// A snapshot into a replica with history of its own (edits made before
    /// the first welcome) merges as before, and a bad one changes nothing
    /// and leaves the document attached.
    #[test]
    fn a_snapshot_into_a_replica_with_history_merges_and_garbage_changes_nothing() {
        let snapshot = pasted_snapshot(&"y".repeat(2 * INSERT_RUN_CHARS));
        let mut mine = SharedDoc::new();
        mine.splice(0, 0, "mine ").unwrap();
        assert!(mine.import(&snapshot).unwrap());
        assert_eq!(mine.len_chars(), 5 + 2 * INSERT_RUN_CHARS);
        let mut empty = SharedDoc::new();
        let mut broken = snapshot.clone();
        let at = broken.len() / 2;
        broken[at] ^= 0xff;
        assert!(empty.import(&broken).is_err());
        assert!(empty.is_empty());
        assert!(!empty.doc.is_detached());
        empty.splice(0, 0, "still edits").unwrap();
        assert_eq!(empty.text(), "still edits");
    }
}
