//! A client loading a room from its snapshot, and the remote keystrokes
//! after it, for a small room and a big one whose text was pasted (as the
//! editor pastes: runs of 512 chars, the last first; `collab_doc`'s
//! `runs` module):
//!
//! - `welcome`: `Replica::handle` of a first welcome carrying the snapshot,
//!   the changes drained (what collab-tui and `Client` do on joining);
//! - `from_snapshot`: `SharedDoc::from_snapshot` and the text read;
//! - `first remote keystroke`: a document just loaded by `from_snapshot`
//!   imports another member's keystroke (the load is not timed);
//! - `later remote keystroke`: the same document, keystrokes after the
//!   first.
//!
//! And the same for the automerge-paper trace's document (key by key, an
//! interleaved history of 259,778 operations: what the replay costs when
//! the history is long).
//!
//! Issue 16 asks that a remote keystroke into a big document loaded from a
//! snapshot cost what it costs into a small one after the first; the join
//! of a 10 MB pasted room took 41 s (BENCHMARKS.md). Slow before those
//! fixes (seconds per iteration): run it alone with
//! `cargo bench -p collab-bench --bench load`.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use collab_bench::trace;
use collab_client::Replica;
use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, DocKind, Limits, Member, ServerMsg, Welcome};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const LINE: &str = "    let total = items.iter().map(|x| x.price * x.count).sum::<u64>(); // sum\n";

fn member(id: u64, name: &str) -> Member {
    Member {
        id,
        name: name.into(),
        color: "#61afef".into(),
        read_only: false,
    }
}

fn welcome(snapshot: &[u8], version: Vec<u8>) -> ServerMsg {
    ServerMsg::Welcome(Box::new(Welcome {
        protocol: collab_protocol::PROTOCOL_VERSION,
        you: member(1, "alice"),
        members: vec![member(1, "alice"), member(2, "bob")],
        session: "s".into(),
        peer: 1 << 40,
        resumed: false,
        doc_kind: DocKind::Snapshot,
        doc: Base64Bytes(snapshot.to_vec()),
        doc_encoding: None,
        doc_parts: 0,
        doc_updates: 0,
        text: None,
        version: Base64Bytes(version),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: 64 << 20,
            messages_per_second: 200,
            burst: 400,
        },
    }))
}

/// Bob's next keystroke, in the middle of the text, as the update alice
/// receives.
fn bob_types(bob: &mut SharedDoc) -> Vec<u8> {
    let at = bob.len_chars() / 2;
    bob.splice(at, 0, "b").unwrap();
    bob.take_local_update().unwrap()
}

/// A room and its name: pasted text of that size, or the trace's.
fn room(name: &str) -> SharedDoc {
    let bytes = match name {
        "10 KB" => 10_000,
        "8 MB" => 8_000_000,
        _ => {
            let t = trace::load(&trace::trace_path("automerge-paper")).unwrap();
            return trace::keystroke_updates(&t).unwrap().1;
        }
    };
    let mut room = SharedDoc::new();
    room.splice(0, 0, &LINE.repeat(bytes / LINE.len())).unwrap();
    room
}

fn load(c: &mut Criterion) {
    for name in ["10 KB", "8 MB", "automerge-paper"] {
        let room = room(name);
        let snapshot = room.snapshot().unwrap();
        let welcome = welcome(&snapshot, room.version());
        let mut bob = SharedDoc::from_snapshot(&snapshot).unwrap();
        let first_key = bob_types(&mut bob);

        let mut g = c.benchmark_group(format!("load {name}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_secs(5));
        g.bench_function("welcome", |b| {
            b.iter_batched(
                || {
                    let mut r = Replica::new();
                    let _ = r.join_msg("bench", "alice", None);
                    (r, welcome.clone())
                },
                |(mut r, welcome)| {
                    black_box(r.handle(welcome));
                    black_box(r.take_changes());
                    r
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function("from_snapshot", |b| {
            b.iter_with_large_drop(|| {
                let doc = SharedDoc::from_snapshot(&snapshot).unwrap();
                black_box(doc.len_chars());
                doc
            })
        });
        g.bench_function("first remote keystroke", |b| {
            b.iter_batched(
                || SharedDoc::from_snapshot(&snapshot).unwrap(),
                |mut alice| {
                    assert!(alice.import(&first_key).unwrap());
                    alice
                },
                BatchSize::PerIteration,
            )
        });
        let mut alice = SharedDoc::from_snapshot(&snapshot).unwrap();
        alice.import(&first_key).unwrap();
        g.bench_function("later remote keystroke", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let key = bob_types(&mut bob);
                    let t0 = Instant::now();
                    assert!(alice.import(&key).unwrap());
                    total += t0.elapsed();
                }
                total
            })
        });
        g.finish();
    }
}

criterion_group!(benches, load);
criterion_main!(benches);
