//! What a newcomer to the automerge-paper room is sent and loads, as the
//! kept snapshot and the updates after it against the whole history as one
//! update (issue 16: at most 250 KB on the wire). Figures printed
//! (BENCHMARKS.md); until issue 19 an `#[ignore]`d test in
//! `crdt/tests/welcome_size.rs`. Run:
//! `cargo bench -p collab-bench --bench welcome_size`

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use collab_bench::trace;
use collab_doc::{DocEncoding, NewcomerDoc, RoomDoc, SharedDoc};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Base64 of `n` bytes.
fn b64(n: usize) -> usize {
    n.div_ceil(3) * 4
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

    // As the server builds it: compaction jobs as they fall due. The last
    // 21 keystrokes each followed by a newcomer: the export's cost.
    let mut room = RoomDoc::new();
    let (head, last) = updates.split_at(updates.len() - 21);
    for u in head {
        room.import_limited(u, collab_doc::DEFAULT_MAX_DOC_BYTES)
            .unwrap();
        room.compact_if_due(1000).unwrap();
    }
    let mut exports = Vec::new();
    for u in last {
        room.import_limited(u, collab_doc::DEFAULT_MAX_DOC_BYTES)
            .unwrap();
        let started = Instant::now();
        let _ = room.newcomer_doc(usize::MAX);
        exports.push(started.elapsed());
    }
    let started = Instant::now();
    let NewcomerDoc::Updates(whole, after) = room.newcomer_doc(usize::MAX) else {
        panic!("an untrimmed room sends its history as one update")
    };
    let cached = started.elapsed();
    let (base, tail) = room.for_newcomer();
    let tail_bytes: usize = tail.iter().map(|u| u.len()).sum();
    println!(
        "kept snapshot {} bytes + {} updates {} bytes = {} bytes ({} in base64 JSON payloads)",
        base.len(),
        tail.len(),
        tail_bytes,
        base.len() + tail_bytes,
        b64(base.len()) + tail.iter().map(|u| b64(u.len())).sum::<usize>()
    );
    let after_len = after.as_ref().map_or(0, |a| a.len());
    println!(
        "newcomer_doc: history to the snapshot {} bytes + the changes since {after_len} bytes ({} in base64); made in {:?} (median of {}), {:?} once made",
        whole.len(),
        b64(whole.len()) + b64(after_len),
        median(exports),
        last.len(),
        cached
    );

    // The text a newcomer that asks is shown first (`welcome.text`): taken
    // by the first such newcomer after a compaction, copied for the next.
    let started = Instant::now();
    let shown = room.newcomer_text().unwrap();
    let first = started.elapsed();
    let mut copies = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        let _ = room.newcomer_text();
        copies.push(started.elapsed());
    }
    println!(
        "the text shown first: {} bytes of zlib ({} in base64) for {} bytes of text; taken in {first:?}, {:?} once taken (median of 21)",
        shown.len(),
        b64(shown.len()),
        end.len(),
        median(copies)
    );

    // The updates after the kept snapshot merged into one, exported per
    // newcomer from the version of the snapshot.
    let base_version = SharedDoc::from_snapshot(&base).unwrap().version();
    let mut merges = Vec::new();
    let mut merged = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        merged = room.updates_since(&base_version).unwrap();
        merges.push(started.elapsed());
    }
    println!(
        "the tail merged into one update {} bytes, exported in {:?} (median of 21)",
        merged.len(),
        median(merges)
    );
    let deflated = |bytes: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap().len()
    };
    println!(
        "deflated (level 9): whole history {} bytes, snapshot {} bytes, merged tail {} bytes",
        deflated(&whole),
        deflated(&base),
        deflated(&merged)
    );
    let mut mid = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut doc = SharedDoc::new();
        doc.track_changes();
        doc.import(&base).unwrap();
        doc.import(&merged).unwrap();
        mid.push(started.elapsed());
        assert_eq!(doc.text(), end);
    }
    println!(
        "newcomer load: snapshot + the merged tail {:?} (median of 5)",
        median(mid)
    );

    let mut old = Vec::new();
    let mut new = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut doc = SharedDoc::new();
        doc.track_changes();
        doc.import(&base).unwrap();
        for u in &tail {
            doc.import(u).unwrap();
        }
        old.push(started.elapsed());
        assert_eq!(doc.text(), end);
        let started = Instant::now();
        let mut doc = SharedDoc::new();
        doc.track_changes();
        doc.import(&whole).unwrap();
        if let Some(a) = &after {
            doc.import(a).unwrap();
        }
        new.push(started.elapsed());
        assert_eq!(doc.text(), end);
    }
    println!(
        "newcomer load (a replica tracking changes, as a client's): snapshot + updates {:?}, newcomer_doc {:?} (medians of 5)",
        median(old),
        median(new)
    );

    // As sent now to a newcomer that reads zlib (`newcomer_doc_as`,
    // `welcome.doc_encoding: "zlib"`): the first part compressed once,
    // copied for the next newcomer; the newcomer inflates, then loads.
    let mut compress = Vec::new();
    for _ in 0..5 {
        // What the first such newcomer's `newcomer_doc_as` does.
        let started = Instant::now();
        let _ = collab_doc::zlib::deflate(&whole);
        compress.push(started.elapsed());
    }
    let NewcomerDoc::ZlibUpdates(first, _) = room.newcomer_doc_as(usize::MAX, DocEncoding::Zlib)
    else {
        panic!("zlib updates");
    };
    let z = first.as_ref().clone();
    let mut copies = Vec::new();
    for _ in 0..21 {
        let started = Instant::now();
        let _ = room.newcomer_doc_as(usize::MAX, DocEncoding::Zlib);
        copies.push(started.elapsed());
    }
    let after_len = after.as_ref().map_or(0, |a| a.len());
    println!(
        "zlib: history to the snapshot {} bytes ({} in base64) + the changes since {after_len} bytes ({} in base64): {} bytes of base64 in all, against {} raw; compressed by the first newcomer in {:?} (median of 5), {:?} for the next (median of 21)",
        z.len(),
        b64(z.len()),
        b64(after_len),
        b64(z.len()) + b64(after_len),
        b64(whole.len()) + b64(after_len),
        median(compress),
        median(copies)
    );
    let mut loads = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let bytes = collab_doc::zlib::inflate(&z, usize::MAX).unwrap();
        let mut doc = SharedDoc::new();
        doc.track_changes();
        doc.import(&bytes).unwrap();
        if let Some(a) = &after {
            doc.import(a).unwrap();
        }
        loads.push(started.elapsed());
        assert_eq!(doc.text(), end);
    }
    println!(
        "newcomer load with zlib (inflate, then as above) {:?} (median of 5)",
        median(loads)
    );
}
