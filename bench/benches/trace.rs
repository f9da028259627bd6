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
//! - `welcome`: the room built as a server builds it, keystroke by
//!   keystroke with its compactions, in two ways (issue 16: a newcomer
//!   costs at most 1 ms of server CPU and 250 KB on the wire):
//!   `CostScheduled`, compacting in place when the import count says so
//!   (main's schedule before compaction left the room's lock; the
//!   compaction itself is this branch's); `Jobs`, compaction jobs as the
//!   server runs them now (also due once the updates after the kept
//!   snapshot are as big as it). For each, sent two ways in the same run
//!   (`SnapshotAndUpdates`: the kept snapshot, then the updates after it,
//!   one `update` event each, as before; `OneUpdate`: the history up to
//!   the kept snapshot as one update and the changes since merged into
//!   another, `RoomDoc::newcomer_doc`; `Zlib`: that with its first update
//!   compressed, `newcomer_doc_as`, as a newcomer that reads zlib gets it
//!   now): the welcome's bytes
//!   on the wire (printed), the server's work for a newcomer (serialized
//!   as the welcome and its `update` events), the newcomer's load (a
//!   replica tracking changes, as a client's), and a remote keystroke into
//!   the loaded document (issue 16: 17 to 19 ms into a big document loaded
//!   from a snapshot); and what the first newcomer after a keystroke costs
//!   the server (the merge of the changes since the snapshot, made once
//!   per change).
//!
//! Slow by nature (seconds per iteration): run it alone with
//! `cargo bench -p collab-bench --bench trace`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use collab_bench::trace;
use collab_doc::{
    DEFAULT_MAX_DOC_BYTES, DocEncoding, NewcomerDoc, RoomDoc, SharedDoc, UpdateInfo,
    next_compaction_after,
};
use collab_protocol::{Base64Bytes, DocKind, Limits, Member, PROTOCOL_VERSION, ServerMsg, Welcome};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// How the room is compacted while the trace arrives.
#[derive(Clone, Copy, Debug)]
enum Compaction {
    CostScheduled,
    Jobs,
}

/// The room after `updates`, compacted the `how` way.
fn room_of(updates: &[Vec<u8>], typist: &SharedDoc, how: Compaction) -> RoomDoc {
    let mut room = RoomDoc::new();
    let mut since = 0usize;
    let mut after = 0usize;
    for u in updates {
        room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
        match how {
            Compaction::CostScheduled => {
                since += 1;
                if since >= after.max(1000) {
                    let started = std::time::Instant::now();
                    room.compact().unwrap();
                    after = next_compaction_after(started.elapsed());
                    since = 0;
                }
            }
            Compaction::Jobs => {
                room.compact_if_due(1000).unwrap();
            }
        }
    }
    assert_eq!(room.text(), typist.text());
    room
}

/// How a newcomer's document is sent.
#[derive(Clone, Copy, Debug)]
enum Sent {
    /// The kept snapshot, then the updates after it, one `update` each
    /// (every newcomer's welcome before `NewcomerDoc`).
    SnapshotAndUpdates,
    /// The history up to the kept snapshot as one update, the changes
    /// since merged into another (`RoomDoc::newcomer_doc`).
    OneUpdate,
    /// The same with the first update compressed (`doc_encoding: "zlib"`,
    /// `RoomDoc::newcomer_doc_as`), as a newcomer that reads zlib gets it:
    /// the newcomer's load includes the inflate.
    Zlib,
}

/// What a newcomer is sent, the `sent` way: the welcome's kind and
/// document, and the updates after it.
fn newcomer_doc(room: &mut RoomDoc, sent: Sent) -> (DocKind, Vec<u8>, Vec<Arc<Vec<u8>>>) {
    let encoding = match sent {
        Sent::SnapshotAndUpdates => {
            let (base, tail) = room.for_newcomer();
            return (DocKind::Snapshot, base.as_ref().clone(), tail);
        }
        Sent::OneUpdate => DocEncoding::Raw,
        Sent::Zlib => DocEncoding::Zlib,
    };
    match room.newcomer_doc_as(usize::MAX, encoding) {
        NewcomerDoc::Updates(whole, after) | NewcomerDoc::ZlibUpdates(whole, after) => (
            DocKind::Updates,
            whole.as_ref().clone(),
            after.into_iter().collect(),
        ),
        NewcomerDoc::Snapshot((base, tail)) => (DocKind::Snapshot, base.as_ref().clone(), tail),
    }
}

/// What the server writes for a newcomer: the welcome, then the updates
/// after its document.
fn welcome_frames(room: &mut RoomDoc, sent: Sent) -> Vec<String> {
    let (doc_kind, doc, tail) = newcomer_doc(room, sent);
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION,
        you: Member {
            id: 2,
            name: "newcomer".into(),
            color: "#61afef".into(),
            read_only: false,
        },
        members: Vec::new(),
        session: "0".repeat(32),
        peer: 1 << 40,
        resumed: false,
        doc_kind,
        doc: Base64Bytes(doc),
        doc_encoding: matches!(sent, Sent::Zlib).then_some(collab_protocol::DocEncoding::Zlib),
        doc_parts: 0,
        doc_updates: u32::try_from(tail.len()).unwrap(),
        text: None,
        version: Base64Bytes(room.version()),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: DEFAULT_MAX_DOC_BYTES,
            messages_per_second: 200,
            burst: 400,
        },
    };
    let mut frames = vec![ServerMsg::Welcome(Box::new(welcome)).to_json()];
    frames.extend(tail.iter().map(|u| ServerMsg::update_json(0, u)));
    frames
}

/// The newcomer's document, from the room's welcome, loaded as a client
/// loads it (a replica that tracks its changes for the editor).
fn newcomer_of(room: &mut RoomDoc, sent: Sent) -> SharedDoc {
    let (_, mut doc, tail) = newcomer_doc(room, sent);
    if matches!(sent, Sent::Zlib) {
        doc = collab_doc::zlib::inflate(&doc, usize::MAX).unwrap();
    }
    let mut replica = SharedDoc::new();
    replica.track_changes();
    replica.import(&doc).unwrap();
    for u in &tail {
        replica.import(u).unwrap();
    }
    replica
}

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

    // A remote keystroke in the middle of the text, from another replica.
    let keystroke = {
        let mut other = SharedDoc::from_snapshot(&snapshot).unwrap();
        let from = other.version();
        other.splice(other.len_chars() / 2, 0, "x").unwrap();
        other.updates_since(&from).unwrap()
    };
    let mut g = c.benchmark_group("automerge-paper welcome");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    for how in [Compaction::CostScheduled, Compaction::Jobs] {
        let started = std::time::Instant::now();
        let mut room = room_of(&updates, &replica, how);
        eprintln!(
            "room built ({how:?}): {:?} for the trace's imports and compactions",
            started.elapsed()
        );
        for sent in [Sent::SnapshotAndUpdates, Sent::OneUpdate, Sent::Zlib] {
            let frames = welcome_frames(&mut room, sent);
            let (kind, doc, tail) = newcomer_doc(&mut room, sent);
            eprintln!(
                "welcome ({how:?}, {sent:?}): {} bytes on the wire in {} messages ({kind:?} {} bytes, {} updates after it, {} bytes)",
                frames.iter().map(String::len).sum::<usize>(),
                frames.len(),
                doc.len(),
                tail.len(),
                tail.iter().map(|u| u.len()).sum::<usize>()
            );
            g.bench_function(
                format!("server work for a newcomer ({how:?}, {sent:?})"),
                |b| b.iter(|| welcome_frames(&mut room, sent)),
            );
            g.bench_function(format!("newcomer load ({how:?}, {sent:?})"), |b| {
                b.iter(|| newcomer_of(&mut room, sent))
            });
            g.bench_function(
                format!("first remote keystroke after load ({how:?}, {sent:?})"),
                |b| {
                    b.iter_batched(
                        || newcomer_of(&mut room, sent),
                        |mut doc| {
                            doc.import(&keystroke).unwrap();
                            doc
                        },
                        BatchSize::PerIteration,
                    )
                },
            );
        }
        // The first newcomer after a change merges the changes since the
        // snapshot (every later one is sent them as merged): a keystroke
        // of another member arrives, then a newcomer (the keystroke's
        // import is 2 to 3 µs).
        let mut other = SharedDoc::from_snapshot(&snapshot).unwrap();
        g.bench_function(
            format!("keystroke, then the first newcomer's merge ({how:?})"),
            |b| {
                b.iter(|| {
                    other.splice(0, 0, "y").unwrap();
                    let u = other.take_local_update().unwrap();
                    room.import_limited(&u, DEFAULT_MAX_DOC_BYTES).unwrap();
                    newcomer_doc(&mut room, Sent::OneUpdate)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, trace_benches);
criterion_main!(benches);
