//! A room's history stays within a bound of its text (issue 13, "History
//! is bounded"): churn cannot grow the room's memory, its welcome or its
//! store without limit, and what was trimmed is refused, never merged
//! wrongly.
#![allow(clippy::unwrap_used)]

use collab_doc::testing::noise;
use collab_doc::{DocError, Need, NewcomerDoc, RoomDoc, SharedDoc, UpdateInfo, history_bound};

const MAX: usize = 8 << 20;

/// What the room keeps for a newcomer: its snapshot and the updates after.
fn kept_bytes(room: &RoomDoc) -> usize {
    let (base, tail) = room.for_newcomer();
    base.len() + tail.iter().map(|u| u.len()).sum::<usize>()
}

fn take(doc: &mut SharedDoc) -> Vec<u8> {
    doc.take_local_update().unwrap()
}

/// Insert and delete the same 700 KiB 60 times: an empty text, and
/// (untrimmed) 9.5 MB of history. The room's memory-side history (its live
/// document's snapshot), what it keeps for newcomers, stay under the bound
/// after every round; a newcomer still gets the right text.
#[test]
fn churn_stays_within_the_history_bound() {
    let chunk = noise(700 * 1024, 1);
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    typist.splice(0, 0, "kept line\n").unwrap();
    room.import_limited(&take(&mut typist), MAX).unwrap();
    let mut worst = 0;
    for _ in 0..60 {
        typist.splice(0, 0, &chunk).unwrap();
        room.import_limited(&take(&mut typist), MAX).unwrap();
        room.compact_if_due(1000).unwrap();
        typist.splice(0, chunk.chars().count(), "").unwrap();
        room.import_limited(&take(&mut typist), MAX).unwrap();
        room.compact_if_due(1000).unwrap();
        let text = room.len_bytes();
        let kept = kept_bytes(&room);
        let live = room.snapshot().unwrap().len();
        assert!(
            kept <= history_bound(text) && live <= history_bound(text),
            "kept {kept}, live snapshot {live} bytes, bound {} for a text of {text}",
            history_bound(text)
        );
        worst = worst.max(kept);
    }
    assert!(room.is_trimmed());
    assert_eq!(room.text(), "kept line\n");
    // A trimmed history does not start from nothing: a newcomer is sent
    // the kept snapshot and the updates after it, not one update.
    assert!(matches!(
        room.newcomer_doc(usize::MAX),
        NewcomerDoc::Snapshot(_)
    ));
    let (base, tail) = room.for_newcomer();
    let mut newcomer = SharedDoc::from_snapshot(&base).unwrap();
    for u in &tail {
        newcomer.import(u).unwrap();
    }
    assert_eq!(newcomer.text(), "kept line\n");
    // The store's copy (the same snapshot and updates) loads trimmed.
    let tail: Vec<Vec<u8>> = tail.iter().map(|u| u.to_vec()).collect();
    let (mut stored, failed) = RoomDoc::load(Some(&base), &tail).unwrap();
    assert!(failed.is_empty() && stored.is_trimmed());
    assert_eq!(stored.text(), "kept line\n");
    // The typist (connected throughout) goes on editing.
    typist.splice(0, 0, ">").unwrap();
    assert_eq!(room.import_limited(&take(&mut typist), MAX), Ok(true));
    eprintln!("kept for newcomers at most {worst} bytes");
}

/// A room that trimmed history refuses an update built on what it trimmed
/// (nothing applied) and tells a rejoiner from before it to load the room
/// again; a replica whose need the compaction was given keeps merging.
#[test]
fn trimmed_history_is_refused_and_needs_are_kept() {
    let chunk = noise(600 * 1024, 2);
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    typist.splice(0, 0, "shared start\n").unwrap();
    room.import_limited(&take(&mut typist), MAX).unwrap();
    // Two replicas at the start: `away` goes offline, `kept` stays.
    let (base, _) = room.for_newcomer();
    let mut away = SharedDoc::from_snapshot(&base).unwrap();
    let mut kept = SharedDoc::from_snapshot(&base).unwrap();
    let churn = |room: &mut RoomDoc, typist: &mut SharedDoc, rounds| {
        for _ in 0..rounds {
            typist.splice(0, 0, &chunk).unwrap();
            room.import_limited(&take(typist), MAX).unwrap();
            typist.splice(0, chunk.len(), "").unwrap();
            room.import_limited(&take(typist), MAX).unwrap();
        }
    };
    churn(&mut room, &mut typist, 3);
    // `kept` catches up, then the room churns on.
    kept.import(&room.updates_since(&kept.version()).unwrap())
        .unwrap();
    let kept_need = Need {
        seen: loro::VersionVector::decode(&kept.version()).unwrap(),
        last: Vec::new(),
    };
    churn(&mut room, &mut typist, 3);
    // Trimmed down to what `kept` has: its edit still merges.
    let job = room.compaction_job(vec![kept_need]).unwrap();
    let done = job.run().unwrap();
    assert!(done.trimmed());
    assert!(room.finish_compaction(done).live_replaced);
    kept.splice(0, 0, "kept: ").unwrap();
    assert_eq!(room.import_limited(&take(&mut kept), MAX), Ok(true));

    // Trimmed down to the latest: `away`'s edit builds on nothing the room
    // keeps.
    churn(&mut room, &mut typist, 3);
    let job = room.compaction_job(Vec::new()).unwrap();
    room.finish_compaction(job.run().unwrap());
    let (text, version) = (room.text(), room.version());
    away.splice(0, 0, "offline edit ").unwrap();
    let edit = take(&mut away);
    let info = UpdateInfo::read(&edit).unwrap();
    assert_eq!(
        room.import_checked(&edit, &info, MAX),
        Err(DocError::HistoryTrimmed)
    );
    assert_eq!(room.text(), text);
    assert_eq!(
        loro::VersionVector::decode(&room.version()).unwrap(),
        loro::VersionVector::decode(&version).unwrap()
    );
    assert_eq!(
        room.updates_since(&away.version()),
        Err(DocError::HistoryTrimmed)
    );
    // A replica that has everything is still sent what it lacks.
    let mut current = {
        let (base, tail) = room.for_newcomer();
        let mut d = SharedDoc::from_snapshot(&base).unwrap();
        for u in &tail {
            d.import(u).unwrap();
        }
        d
    };
    typist.splice(0, 0, "more ").unwrap();
    room.import_limited(&take(&mut typist), MAX).unwrap();
    let missing = room.updates_since(&current.version()).unwrap();
    current.import(&missing).unwrap();
    assert_eq!(current.text(), room.text());
}
