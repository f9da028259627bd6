//! What a room's document holds in memory after the automerge-paper trace
//! arrives key by key (as the server gets it), and after compaction. Prints
//! figures (BENCHMARKS.md); until issue 19 an `#[ignore]`d test in
//! `crdt/tests/room_memory.rs`. Run:
//! `cargo bench -p collab-bench --bench room_memory`
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::io::Read;
use std::time::Instant;

use cap::Cap;
use collab_doc::{RoomDoc, SharedDoc};

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
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/editing-traces/automerge-paper.json.gz"
    );
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut json)
        .unwrap();
    let trace: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut typist = SharedDoc::new();
    let mut updates = Vec::new();
    for txn in trace["txns"].as_array().unwrap() {
        for p in txn["patches"].as_array().unwrap() {
            let pos = usize::try_from(p[0].as_u64().unwrap()).unwrap();
            let del = usize::try_from(p[1].as_u64().unwrap()).unwrap();
            typist.splice(pos, del, p[2].as_str().unwrap()).unwrap();
            updates.push(typist.take_local_update().unwrap());
        }
    }
    let end = trace["endContent"].as_str().unwrap().to_owned();
    drop((trace, json, typist));

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
