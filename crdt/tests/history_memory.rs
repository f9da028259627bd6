//! The room's memory under churn (issue 13, "History is bounded"): the
//! server grew from 12 to 140 MB when a member inserted and deleted the
//! same 700 KiB 60 times. What a room holds in memory (its live Loro
//! document, the kept snapshot and the updates after it) stays within a
//! small multiple of `collab_doc::history_bound` of its text, and does not
//! grow with the rounds. Its own test binary: the heap is counted by a
//! global allocator, and nothing else runs beside it.
#![allow(clippy::unwrap_used)]

use collab_doc::testing::noise;
use std::alloc::System;

use cap::Cap;
use collab_doc::{RoomDoc, SharedDoc, history_bound};

/// Counts live heap bytes.
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// A room's heap holds its text and history parsed (Loro's oplog and
/// state: a few times their encoded bytes) beside their bytes: at most
/// this many times the bound of the encoded history.
const HEAP_PER_BOUND: usize = 4;

#[test]
fn churn_keeps_the_rooms_heap_within_a_multiple_of_the_history_bound() {
    const ROUNDS: usize = 60;
    let chunk = noise(700 * 1024, 3);
    // Every update made up front (the typist's own history grows with
    // the rounds and must not be counted), each sized exactly.
    let mut updates: Vec<Box<[u8]>> = Vec::new();
    {
        let mut typist = SharedDoc::new();
        typist.splice(0, 0, "kept line\n").unwrap();
        updates.push(typist.take_local_update().unwrap().into_boxed_slice());
        for _ in 0..ROUNDS {
            typist.splice(0, 0, &chunk).unwrap();
            updates.push(typist.take_local_update().unwrap().into_boxed_slice());
            typist.splice(0, chunk.chars().count(), "").unwrap();
            updates.push(typist.take_local_update().unwrap().into_boxed_slice());
        }
    }
    let bound = history_bound("kept line\n".len() + chunk.len());
    drop(chunk);
    let mut waiting: usize = updates.iter().map(|u| u.len()).sum();
    // The heap before the room, without the updates still to come.
    let base = ALLOC.allocated() - waiting;
    let mut room = RoomDoc::new();
    let mut heap_at = Vec::new();
    for (i, u) in updates.into_iter().enumerate() {
        room.import_limited(&u, 8 << 20).unwrap();
        room.compact_if_due(1000).unwrap();
        waiting -= u.len();
        drop(u);
        if i % 2 == 0 {
            // After a round's deletion (and the first line).
            heap_at.push(ALLOC.allocated() - base - waiting);
        }
    }
    assert_eq!(room.text(), "kept line\n");
    let worst = *heap_at.iter().max().unwrap();
    let last_rounds = &heap_at[heap_at.len() - 10..];
    let first_rounds = &heap_at[1..11];
    eprintln!(
        "room heap: worst {worst} bytes, rounds 1-10 at most {}, rounds {}-{} at most {}; bound {bound}",
        first_rounds.iter().max().unwrap(),
        ROUNDS - 9,
        ROUNDS,
        last_rounds.iter().max().unwrap()
    );
    assert!(
        worst <= HEAP_PER_BOUND * bound,
        "the room's heap reached {worst} bytes, over {HEAP_PER_BOUND} times the history bound ({bound})"
    );
    // Flat: the last rounds cost no more than the first ones (untrimmed,
    // each round added 700 KiB of history).
    assert!(
        last_rounds.iter().max() <= Some(&(first_rounds.iter().max().unwrap() + bound / 2)),
        "the room's heap grows with the rounds: {heap_at:?}"
    );
    assert!(room.is_trimmed());
}
