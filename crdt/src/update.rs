//! What an update claims, read before anything is imported.
//!
//! A member's update is Loro bytes; importing them is where the cost and the
//! risk are (a compressed snapshot expands a hundredfold, changes that
//! depend on ones the room lacks stay pending inside Loro and apply later,
//! unseen). What an update claims is read from its header first
//! (`update/fast.rs`: the mode, each block's peer, counters and outside
//! dependencies, about 0.15 µs for a keystroke; a snapshot is told by its
//! mode bytes alone, before anything is decompressed), so the server can
//! refuse before the room's document is touched:
//!
//! - anything but an update (a snapshot, a shallow snapshot);
//! - changes whose dependencies the room lacks (they would stay pending);
//! - changes under a peer id another member owns (the server decides, see
//!   the server's room module), which needs the list of peers it carries.

mod fast;

use loro::{ExportMode, Frontiers, ID, LoroDoc, VersionVector};

use crate::DocError;

/// A peer id of Loro's: who authored a change.
pub type PeerId = u64;

/// The changes of one peer an update carries: counters `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSpan {
    pub peer: PeerId,
    pub start: i32,
    pub end: i32,
}

/// An update's metadata, decoded without importing it.
#[derive(Debug, Clone)]
pub struct UpdateInfo {
    spans: Vec<PeerSpan>,
    /// Changes outside the update that its first changes depend on.
    deps: Frontiers,
    changes: u32,
}

impl UpdateInfo {
    /// Reads an update's metadata. Refuses anything that is not an update
    /// (snapshots expand far beyond their size) or does not decode.
    pub fn read(bytes: &[u8]) -> Result<Self, DocError> {
        Self::read_fast_only(bytes).unwrap_or_else(|| Self::read_with_loro(bytes))
    }

    /// What the fast reader alone makes of `bytes` (`None`: it would ask
    /// Loro): for the test that compares the two readers.
    #[doc(hidden)]
    pub fn read_fast_only(bytes: &[u8]) -> Option<Result<Self, DocError>> {
        match fast::read(bytes)? {
            fast::Read::Snapshot => Some(Err(DocError::NotAnUpdate("Snapshot".into()))),
            fast::Read::Invalid => Some(Err(DocError::BadUpdate(
                "its change headers are not a valid encoding".into(),
            ))),
            fast::Read::Updates {
                spans,
                deps,
                changes,
            } => Some(Ok(Self {
                spans,
                deps: deps.into_iter().map(|(p, c)| ID::new(p, c)).collect(),
                changes,
            })),
        }
    }

    /// The changes outside the update its changes depend on, sorted.
    pub fn deps(&self) -> Vec<(u64, i32)> {
        let mut d: Vec<(u64, i32)> = self.deps.iter().map(|id| (id.peer, id.counter)).collect();
        d.sort_unstable();
        d.dedup();
        d
    }

    /// [`Self::read`] by Loro's own decoder (which builds a document: see
    /// `fast.rs`), for what the fast reader does not know.
    pub fn read_with_loro(bytes: &[u8]) -> Result<Self, DocError> {
        let meta = LoroDoc::decode_import_blob_meta(bytes, true)
            .map_err(|e| DocError::BadUpdate(e.to_string()))?;
        if !matches!(meta.mode, loro::EncodedBlobMode::Updates) {
            return Err(DocError::NotAnUpdate(format!("{:?}", meta.mode)));
        }
        let mut spans: Vec<PeerSpan> = meta
            .partial_end_vv
            .iter()
            .map(|(&peer, &end)| PeerSpan {
                peer,
                start: meta.partial_start_vv.get(&peer).copied().unwrap_or(0),
                end,
            })
            .collect();
        spans.sort_unstable_by_key(|s| s.peer);
        Ok(Self {
            spans,
            deps: meta.start_frontiers,
            changes: meta.change_num,
        })
    }

    /// The peers whose changes the update carries, with their counters.
    pub fn spans(&self) -> &[PeerSpan] {
        &self.spans
    }

    /// The number of Loro changes (consecutive edits of one peer merge
    /// into one change).
    pub fn changes(&self) -> u32 {
        self.changes
    }

    /// Whether a document at `vv` has everything this update builds on:
    /// its outside dependencies, and each peer's changes up to where the
    /// update starts (no gap). Otherwise Loro would keep it pending.
    pub(crate) fn applies_to(&self, vv: &VersionVector) -> bool {
        self.deps.iter().all(|id| vv.includes_id(id))
            && self
                .spans
                .iter()
                .all(|s| vv.get(&s.peer).copied().unwrap_or(0) >= s.start)
    }

    /// The version (encoded) a replica at `version` (encoded) reaches by
    /// importing this update, when it applies there: for a client cutting
    /// an update into parts, the version each next part starts from, so a
    /// lost part is resent without the parts before it that arrived.
    pub fn version_after(&self, version: &[u8]) -> Result<Vec<u8>, DocError> {
        let mut vv =
            VersionVector::decode(version).map_err(|e| DocError::BadVersion(e.to_string()))?;
        for s in &self.spans {
            if vv.get(&s.peer).copied().unwrap_or(0) < s.end {
                vv.insert(s.peer, s.end);
            }
        }
        Ok(vv.encode())
    }

    /// The spans that bring changes a document at `vv` lacks.
    pub fn new_to<'a>(&'a self, vv: &'a VersionVector) -> impl Iterator<Item = PeerSpan> + 'a {
        self.spans
            .iter()
            .filter(move |s| vv.get(&s.peer).copied().unwrap_or(0) < s.end)
            .copied()
    }
}

/// Whether `bytes` are a snapshot with the whole history, not a shallow
/// one (read from the envelope and the body's lengths; the import checks
/// the rest).
pub(crate) fn is_full_snapshot(bytes: &[u8]) -> bool {
    fast::is_full_snapshot(bytes)
}

/// An update made of `text` alone, under `peer`: for tests of hostile input
/// (forged history, other peers' ids). Not for production use.
#[doc(hidden)]
pub fn forge_for_tests(peer: PeerId, text: &str) -> Vec<u8> {
    let doc = LoroDoc::new();
    let _ = doc.set_peer_id(peer);
    let _ = doc.get_text(crate::TEXT_CONTAINER).insert(0, text);
    doc.commit();
    doc.export(ExportMode::all_updates()).unwrap_or_default()
}
