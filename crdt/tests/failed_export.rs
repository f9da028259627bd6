//! A failed export loses nothing (issue 12, item 5): a room's snapshot is
//! an error, never an empty snapshot the store would replace the room's
//! history with; a failed compaction leaves the room (and so the store,
//! which only takes a compaction that was swapped in) as it was; a replica
//! does not mark as sent the edits an export failed to carry. Loro has no
//! input that makes an export fail, so the tests make this thread's exports
//! fail (`collab_doc::testing::failing_exports`).
#![allow(clippy::unwrap_used)]

use collab_doc::testing::failing_exports;
use collab_doc::{DocError, RoomDoc, SharedDoc};

const MAX: usize = 1 << 20;

/// A room that has taken "hello " and "world".
fn room_with_text() -> (RoomDoc, SharedDoc) {
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    for word in ["hello ", "world"] {
        let at = typist.len_chars();
        typist.splice(at, 0, word).unwrap();
        room.import_limited(&typist.take_local_update().unwrap(), MAX)
            .unwrap();
    }
    (room, typist)
}

#[test]
fn a_failed_snapshot_is_an_error_not_an_empty_snapshot() {
    let (mut room, _) = room_with_text();
    {
        let _failing = failing_exports();
        assert!(matches!(room.snapshot(), Err(DocError::Export(_))));
    }
    // Nothing about the room changed, and it exports again.
    let snapshot = room.snapshot().unwrap();
    assert_eq!(
        SharedDoc::from_snapshot(&snapshot).unwrap().text(),
        "hello world"
    );
}

#[test]
fn a_failed_compaction_leaves_the_room_as_it_was() {
    let (mut room, mut typist) = room_with_text();
    let (base, tail) = room.for_newcomer();
    let kept: Vec<Vec<u8>> = tail.iter().map(|u| u.to_vec()).collect();
    {
        let _failing = failing_exports();
        assert!(matches!(room.compact_if_due(1), Err(DocError::Export(_))));
    }
    // A newcomer (and the store, which takes only a swapped-in compaction)
    // still gets exactly what the room kept before.
    let (base_after, tail_after) = room.for_newcomer();
    assert_eq!(base_after.as_slice(), base.as_slice());
    let after: Vec<Vec<u8>> = tail_after.iter().map(|u| u.to_vec()).collect();
    assert_eq!(after, kept);
    assert!(!room.is_compacting(), "the next compaction may start");
    assert_eq!(room.text(), "hello world");
    // The room goes on: it takes edits and compacts when exports work.
    typist.splice(0, 0, "> ").unwrap();
    assert_eq!(
        room.import_limited(&typist.take_local_update().unwrap(), MAX),
        Ok(true)
    );
    assert_eq!(room.compact_if_due(1), Ok(true));
    let (base, tail) = room.for_newcomer();
    let mut newcomer = SharedDoc::from_snapshot(&base).unwrap();
    for u in &tail {
        newcomer.import(u).unwrap();
    }
    assert_eq!(newcomer.text(), "> hello world");
}

#[test]
fn edits_an_export_failed_to_carry_are_sent_by_the_next() {
    let mut replica = SharedDoc::new();
    replica.splice(0, 0, "typed offline").unwrap();
    {
        let _failing = failing_exports();
        assert_eq!(replica.take_local_update(), None);
    }
    let update = replica
        .take_local_update()
        .expect("the edits are still to send");
    let mut other = SharedDoc::new();
    other.import(&update).unwrap();
    assert_eq!(other.text(), "typed offline");
    assert_eq!(replica.take_local_update(), None, "sent once");
}
