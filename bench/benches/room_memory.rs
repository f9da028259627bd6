//! What a room's document holds in memory after the automerge-paper trace
//! arrives key by key (as the server gets it), and after compaction. Prints
//! figures (BENCHMARKS.md); until issue 19 an `#[ignore]`d test in
//! `crdt/tests/room_memory.rs`. Run:
//! `cargo bench -p collab-bench --bench room_memory`
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::time::Instant;

use cap::Cap;
use collab_bench::trace;
use collab_doc::RoomDoc;

/// Counts live heap bytes, so the figure is the document's, not the
/// allocator's cached pages.
#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn live_kib() -> usize {
    ALLOC.allocated() / 1024
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: only
    // the former measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let trace = trace::load(&trace::trace_path("automerge-paper")).unwrap();
    let (updates, _) = trace::keystroke_updates(&trace).unwrap();
    let end = trace.end_content;

    let base = live_kib();
    let mut room = RoomDoc::new();
    let started = Instant::now();
    for u in &updates {
        room.import_limited(u, collab_doc::DEFAULT_MAX_DOC_BYTES)
            .unwrap();
    }
    let applied = started.elapsed();
    let before = live_kib() - base;
    let started = Instant::now();
    room.compact().unwrap();
    let compacted = started.elapsed();
    let after = live_kib().saturating_sub(base);
    assert_eq!(room.text(), end);
    println!(
        "{} updates applied in {applied:?}; room doc {before} KiB live heap; \
         compaction {compacted:?}; after it {after} KiB; snapshot {} bytes",
        updates.len(),
        room.snapshot().unwrap().len()
    );
    assert!(after < before, "compaction must shrink the room's memory");
}
