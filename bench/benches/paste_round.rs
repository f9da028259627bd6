//! The server's document work for one round of `collab-bench interfere
//! --disturb paste` (issue 13): in a fresh room a member types a line (41
//! keystrokes) and another, who never saw it, pastes 1 MiB in the parts
//! collab-client sends under the default frame limit; the room imports each
//! part (`import_limited`, on the blocking pool in the server) and runs the
//! compactions that fall due (compaction jobs, as the server runs them).
//! Figures printed (BENCHMARKS.md); until issue 19 an `#[ignore]`d test in
//! `crdt/tests/paste_round.rs`. Run:
//! `cargo bench -p collab-bench --bench paste_round`

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use collab_doc::{DEFAULT_MAX_DOC_BYTES, RoomDoc, SharedDoc};

/// The 1 MiB frame's budget for update bytes (base64 inside JSON).
const FRAME_BUDGET: usize = (1024 * 1024 - 512) / 4 * 3;

/// Varied code-like ASCII text, as a pasted file.
fn paste_text(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    let mut i = 0u64;
    while s.len() < bytes {
        i += 1;
        s.push_str(&format!(
            "    let v{i} = compute({}, \"{}\");\n",
            i * 7919 % 10007,
            i * 31
        ));
    }
    s.truncate(bytes);
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: only
    // the former measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut imports = Vec::new();
    let mut totals = Vec::new();
    let mut compactions = Vec::new();
    let mut parts_sent = 0;
    for round in 0..5 {
        let mut typist = SharedDoc::new();
        let mut paster = SharedDoc::new();
        let mut keys = Vec::new();
        for c in "a line typed while the other one pastes\n".chars() {
            let at = typist.len_chars();
            typist.splice(at, 0, &c.to_string()).unwrap();
            keys.push(typist.take_local_update().unwrap());
        }
        paster
            .splice(0, 0, &paste_text(1024 * 1024 + round))
            .unwrap();
        let parts = paster.take_local_update_chunked(FRAME_BUDGET);
        parts_sent = parts.len();
        let mut room = RoomDoc::new();
        for k in &keys {
            room.import_limited(k, DEFAULT_MAX_DOC_BYTES).unwrap();
            room.compact_if_due(1000).unwrap();
        }
        let started = Instant::now();
        let mut import = Duration::ZERO;
        let mut compacted = 0;
        for p in &parts {
            let t = Instant::now();
            assert_eq!(room.import_limited(p, DEFAULT_MAX_DOC_BYTES), Ok(true));
            import += t.elapsed();
            if room.compact_if_due(1000).unwrap() {
                compacted += 1;
            }
        }
        totals.push(started.elapsed());
        imports.push(import);
        compactions.push(compacted);
        assert_eq!(room.len_bytes(), 1024 * 1024 + round + keys.len());
    }
    let parts = parts_sent;
    println!(
        "1 MiB paste concurrent with a typed line, {parts} parts: imports {:?}, imports and compactions {:?} (medians of 5); compactions per round {:?}",
        median(imports),
        median(totals),
        compactions
    );
}
