//! Long inserts go into the document as runs of bounded length, so that no
//! replica pays time quadratic in a paste for merging it.
//!
//! Loro (1.17.1) tracks one insert operation of `len` characters as
//! `len / 256` fragments that all point at one element of its merge
//! structure (the tracker's rope). Whenever a replica imports such an
//! operation made by another peer, unless it takes Loro's linear path (only
//! when one peer's changes follow each other), and whenever it imports a
//! change concurrent to one, Loro checks its tracker out across the
//! operation: it updates that element once per fragment, and each update
//! splits the element and re-points every fragment after the split. That is
//! `(len / 256)^2 / 2` fragment updates. The server importing a 740 KiB
//! paste after (or concurrent with) another member's keystroke took 2.4 s
//! and 237 MiB of peak RSS (5.9 s on the machine), 512 KiB 1.1 s,
//! 256 KiB 0.27 s, and every other member as much; a room of ten 280 KiB
//! pastes took 3.8 s to load. Loro's open pull request #1082 coalesces
//! those updates; `crdt/tests/loro_paste_checkout.rs` is the reproduction for
//! an upstream report, `bench/benches/paste_cost.rs` measures collab's case.
//!
//! An operation of at most [`INSERT_RUN_CHARS`] characters spans at most two
//! fragments, so cutting a paste into such runs makes the cost linear in
//! the paste (740 KiB: 4.4 ms and under 1 MiB; the room of ten pastes
//! loads in 22 ms). The runs must stay separate operations *and*
//! separate elements of the tracker: Loro merges an insert into the
//! operation and the element before it when it continues them to the right
//! (same peer, next counter, placed right after it), which is what inserting
//! the runs left to right does (measured: no gain at all). So the runs are
//! inserted last one first, each at the paste's position: every run lands to
//! the left of the one inserted before it, which it does not continue. The
//! text is the same, and all runs go in one commit: one change, one undo
//! step, one event.
//!
//! What this does not cover: Loro's undo and redo re-insert text they
//! restore as one operation (redoing a big paste, undoing a big deletion:
//! redoing the 740 KiB paste after another member's key took the server
//! 4.3 s),
//! a room's seed is one operation (it is deterministic, so its shape is
//! fixed), and another client may send any length; those keep Loro's cost.
//! [`insert_replay_cost`] measures it for a server that bounds it.

use loro::{IdSpan, JsonOpContent, JsonTextOp, LoroDoc, LoroResult, LoroText};

use crate::PeerSpan;

/// Characters per fragment of Loro's tracker (`MAX_FRAGMENT_LEN`).
const FRAGMENT_CHARS: u64 = 256;

/// The longest insert operation this replica makes: two of Loro's tracker
/// fragments (256 characters each). With 740 KiB pasted concurrent with a
/// keystroke (a `cargo test` build, one run), runs of 512 merged in 4.2 ms,
/// of 1,024 in 9.2 ms, of 4,096 in 19 ms (one operation: 2.9 s); runs of
/// 256 took no less time than 512 but twice the operations (an operation
/// costs about 7 bytes of update: 512-char runs make a paste's update 2.4%
/// larger).
pub const INSERT_RUN_CHARS: usize = 512;

/// Inserts `s` at char position `pos` of `text` as runs of at most
/// [`INSERT_RUN_CHARS`] chars, the last run first (see the module doc).
/// The caller commits.
pub(crate) fn insert_in_runs(text: &LoroText, pos: usize, s: &str) -> LoroResult<()> {
    // Byte offsets where runs start: every INSERT_RUN_CHARS-th char.
    let starts: Vec<usize> = s
        .char_indices()
        .step_by(INSERT_RUN_CHARS)
        .map(|(at, _)| at)
        .collect();
    let mut end = s.len();
    for &start in starts.iter().rev() {
        text.insert(pos, &s[start..end])?;
        end = start;
    }
    Ok(())
}

/// What the text inserts among the changes `spans` of `doc` cost Loro each
/// time it replays them, in fragment updates: the sum over insert
/// operations of `ceil(len / 256)^2`. Reads the history only (a detached
/// import puts an update's changes there without touching the text), in
/// time linear in the changes' size (a 740 KiB paste: 0.07 ms).
///
/// A server can import an update detached, refuse it over a budget (and
/// roll it back) and only then bring the text up to date. For scale: one
/// 65,536-char insert costs 65,536 (about 20 ms to replay, release); the
/// editor's runs cost 4 per 512 chars (a full 1 MiB frame: about 6,000);
/// one 740 KiB insert costs 8.8 million (2.4 s).
#[cfg(test)]
pub(crate) fn insert_replay_cost(doc: &LoroDoc, spans: &[PeerSpan]) -> u64 {
    inserts_of(doc, spans).replay_cost
}

/// What the text inserts among some changes amount to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Inserts {
    /// [`insert_replay_cost`]'s figure.
    pub replay_cost: u64,
    /// Their UTF-8 bytes: the most those changes can grow the text by
    /// (deletions only shrink it; the room takes changes to its text only).
    pub bytes: usize,
}

/// The text inserts among the changes `spans` of `doc`: what they cost to
/// replay ([`insert_replay_cost`]) and how many bytes they insert, read
/// from the history alone in one pass.
pub(crate) fn inserts_of(doc: &LoroDoc, spans: &[PeerSpan]) -> Inserts {
    spans
        .iter()
        .filter(|s| s.end > s.start)
        .flat_map(|s| doc.export_json_in_id_span(IdSpan::new(s.peer, s.start, s.end)))
        .flat_map(|change| change.ops)
        .filter_map(|op| match op.content {
            JsonOpContent::Text(JsonTextOp::Insert { text, .. }) => {
                let fragments = (text.chars().count() as u64).div_ceil(FRAGMENT_CHARS);
                Some((fragments * fragments, text.len()))
            }
            _ => None,
        })
        .fold(Inserts::default(), |acc, (cost, bytes)| Inserts {
            replay_cost: acc.replay_cost.saturating_add(cost),
            bytes: acc.bytes.saturating_add(bytes),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use loro::{ExportMode, ID};

    /// The cost of what `author` adds to a room holding "hello\n", as the
    /// room sees it after a detached import.
    fn cost_of(author: impl FnOnce(&LoroDoc)) -> u64 {
        let base = LoroDoc::new();
        base.get_text("text").insert(0, "hello\n").unwrap();
        base.commit();
        let member = base.fork();
        let from = member.oplog_vv();
        author(&member);
        member.commit();
        let update = member.export(ExportMode::updates(&from)).unwrap();
        let room = base.fork();
        room.detach();
        room.import(&update).unwrap();
        let end = member.oplog_vv().get(&member.peer_id()).copied().unwrap();
        let span = PeerSpan {
            peer: member.peer_id(),
            start: 0,
            end,
        };
        assert!(room.get_change(ID::new(span.peer, 0)).is_some());
        insert_replay_cost(&room, &[span])
    }

    #[test]
    fn one_long_insert_costs_its_fragments_squared_runs_do_not() {
        let text = "é".repeat(100_000);
        assert_eq!(
            cost_of(|d| d.get_text("text").insert(6, &text).unwrap()),
            391 * 391
        );
        let runs = cost_of(|d| insert_in_runs(&d.get_text("text"), 6, &text).unwrap());
        assert_eq!(runs, 195 * 4 + 1, "195 runs of 512 and one of 160");
        assert_eq!(cost_of(|d| d.get_text("text").insert(0, "x").unwrap()), 1);
        assert_eq!(cost_of(|d| d.get_text("text").delete(0, 3).unwrap()), 0);
    }
}
