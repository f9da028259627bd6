//! The automerge-paper trace (259,778 single-character edits, see
//! testdata/editing-traces/FORMAT.md) on the server side:
//!
//! - `server import per keystroke`: the room's `SharedDoc` imports each
//!   keystroke's update as a client replica produced it (precomputed
//!   outside the timed loop), with `import_limited` as the server calls it;
//!   `+ compact every 1000` adds the server's periodic compaction
//!   (`Config::compact_every`). Target: < 1.5 s for the whole trace.
//! - `server import whole trace`: one update holding the whole history.
//! - `newcomer load`: `SharedDoc::from_snapshot` of the resulting document,
//!   what a client does with a welcome. Target: < 50 ms.
//!
//! Slow by nature (seconds per iteration): run it alone with
//! `cargo bench -p collab-bench --bench trace`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use collab_bench::trace;
use collab_doc::{DEFAULT_MAX_DOC_BYTES, SharedDoc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn trace_benches(c: &mut Criterion) {
    let t = trace::load(&trace::trace_path("automerge-paper")).unwrap();
    let (updates, replica) = trace::keystroke_updates(&t).unwrap();
    let whole = replica.updates_since(&SharedDoc::new().version()).unwrap();
    let snapshot = replica.snapshot();
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
            SharedDoc::new,
            |mut room| {
                for u in &updates {
                    room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
                }
                room
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("server import per keystroke + compact every 1000", |b| {
        b.iter_batched(
            SharedDoc::new,
            |mut room| {
                for (i, u) in updates.iter().enumerate() {
                    room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
                    if (i + 1) % 1000 == 0 {
                        room.compact().unwrap();
                    }
                }
                room
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("server import whole trace", |b| {
        b.iter_batched(
            SharedDoc::new,
            |mut room| {
                room.import(&whole).unwrap();
                room
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("newcomer load (from_snapshot)", |b| {
        b.iter(|| SharedDoc::from_snapshot(&snapshot).unwrap())
    });
    g.bench_function("server snapshot for a welcome", |b| {
        b.iter(|| replica.snapshot())
    });
    g.finish();
}

criterion_group!(benches, trace_benches);
criterion_main!(benches);
