//! The automerge-paper trace (259,778 single-character edits, see
//! testdata/editing-traces/FORMAT.md) on the server side:
//!
//! - `server import per keystroke`: the room's `RoomDoc` imports each
//!   keystroke's update as a client replica produced it (precomputed
//!   outside the timed loop), with `import_limited` as the server calls it,
//!   then brings its text up to date once (what the first newcomer or store
//!   snapshot does); `+ compaction as scheduled` adds the server's
//!   compaction (`compact_if_due` with the default `--compact-every` 1000).
//!   Target: < 1.5 s for the whole trace.
//! - `read update metadata per keystroke`: `UpdateInfo::read` of every
//!   keystroke's update, the part of `import_limited` that reads what an
//!   update claims before importing it (admission, peer-id binding).
//! - `server import whole trace`: one update holding the whole history.
//! - `newcomer load`: `SharedDoc::from_snapshot` of the resulting document,
//!   what a client does with a welcome. Target: < 50 ms.
//!
//! Slow by nature (seconds per iteration): run it alone with
//! `cargo bench -p collab-bench --bench trace`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use collab_bench::trace;
use collab_doc::{DEFAULT_MAX_DOC_BYTES, RoomDoc, SharedDoc, UpdateInfo};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn trace_benches(c: &mut Criterion) {
    let t = trace::load(&trace::trace_path("automerge-paper")).unwrap();
    let (updates, replica) = trace::keystroke_updates(&t).unwrap();
    let whole = replica.updates_since(&SharedDoc::new().version()).unwrap();
    let snapshot = replica.snapshot().unwrap();
    eprintln!(
        "automerge-paper: {} keystroke updates ({} bytes in all), whole-history update {} bytes, snapshot {} bytes, text {} chars",
        updates.len(),
        updates.iter().map(Vec::len).sum::<usize>(),
        whole.len(),
        snapshot.len(),
        replica.len_chars()
    );

    let mut g = c.benchmark_group("automerge-paper");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("server import per keystroke", |b| {
        b.iter_batched(
            RoomDoc::new,
            |mut room| {
                for u in &updates {
                    room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
                }
                assert_eq!(room.len_bytes(), t.end_content.len());
                room
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(
        "server import per keystroke + compaction as scheduled",
        |b| {
            b.iter_batched(
                RoomDoc::new,
                |mut room| {
                    for u in &updates {
                        room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
                        room.compact_if_due(1000).unwrap();
                    }
                    assert_eq!(room.len_bytes(), t.end_content.len());
                    room
                },
                BatchSize::PerIteration,
            )
        },
    );
    // What the server adds to every update before importing it (issue 12:
    // peer-id binding and admission read the update's metadata).
    g.bench_function("read update metadata per keystroke", |b| {
        b.iter(|| {
            for u in &updates {
                std::hint::black_box(UpdateInfo::read(u).unwrap());
            }
        })
    });
    g.bench_function("server import whole trace", |b| {
        b.iter_batched(
            RoomDoc::new,
            |mut room| {
                room.import_limited(&whole, DEFAULT_MAX_DOC_BYTES).unwrap();
                assert_eq!(room.len_bytes(), t.end_content.len());
                room
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("newcomer load (from_snapshot)", |b| {
        b.iter(|| SharedDoc::from_snapshot(&snapshot).unwrap())
    });
    g.bench_function("server snapshot for a welcome", |b| {
        b.iter(|| replica.snapshot().unwrap())
    });
    g.finish();
}

criterion_group!(benches, trace_benches);
criterion_main!(benches);
