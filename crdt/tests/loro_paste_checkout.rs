//! Upstream reproduction (Loro), for a report to loro-dev/loro: importing
//! one long text insert made by another peer takes time quadratic in its
//! length, whether or not it is concurrent with anything. Loro's public API
//! only. Run:
//! `cargo test --release -p collab-doc --test loro_paste_checkout -- --ignored --nocapture`
//!
//! Versions: loro 1.17.1 and loro-internal 1.17.1 from crates.io, rustc
//! 1.9x, Linux x86_64, release build.
//!
//! Steps: a document holds "hello world\n" (one change of peer P). Peer A
//! inserts one character. Then one of four updates of `len` inserted chars
//! is imported into a fork of A (attached, default settings):
//! - `Concurrent`: peer B, without A's change, inserts the text at the end
//!   in one `LoroText::insert`;
//! - `AfterA`: B first imports A's change, then inserts the same;
//! - `AContinues`: A itself inserts it (one peer's chain);
//! - `ConcurrentRuns`: as `Concurrent`, with the text inserted as runs of
//!   512 chars, last run first, each at the same position.
//!
//! Observed (medians of 3, one run on a shared 2-core machine):
//!
//! | len (chars) | Concurrent | AfterA | AContinues | ConcurrentRuns |
//! |---|---|---|---|---|
//! | 65,536  | 20 ms   | 20 ms   | 0.06 ms | 0.33 ms |
//! | 131,072 | 80 ms   | 81 ms   | 0.10 ms | 0.62 ms |
//! | 262,144 | 324 ms  | 327 ms  | 0.19 ms | 1.2 ms  |
//! | 524,288 | 1.36 s  | 1.48 s  | 0.38 ms | 3.5 ms  |
//!
//! Four times the length costs 14 to 18 times the time for `Concurrent` and
//! `AfterA` (quadratic), 4 times for the other two. In collab's own
//! scenario (`bench/benches/paste_cost.rs`: the server's room importing a 740 KiB paste)
//! the peak RSS of that import is 237 MiB against under 1 MiB as runs.
//!
//! Expected: time linear in `len` in every case, as for `AContinues`
//! (which takes the `Linear` diff mode) and for the same text as runs.
//!
//! Where the time goes (perf, release): 91% in
//! `tracker::id_to_cursor::IdToCursor::update_insert_batch` (with
//! `InsertSet::update_many` inlined). Outside the `Linear` mode the text's
//! diff goes through the tracker: it keeps the insert as `len / 256`
//! fragments (`MAX_FRAGMENT_LEN`) that all point at one rope leaf; checking
//! out across the insert emits one `LeafUpdate` per fragment for that leaf,
//! `CrdtRope::update` splits the leaf once per update and
//! `update_insert_by_split` re-points every fragment after each split:
//! `(len / 256)^2 / 2` fragment updates. Open pull request #1082
//! ("coalesce contiguous leaf updates in `CrdtRope::update`") addresses
//! this checkout.
//!
//! Inserting the text as runs left to right (`insert(p, run1)`,
//! `insert(p + |run1|, run2)`, ...) does not help (measured): the runs
//! merge back into one operation and one rope leaf. Right to left they stay
//! apart, which is collab's workaround (`crdt/src/runs.rs`).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use loro::{ExportMode, LoroDoc};

#[derive(Clone, Copy, Debug)]
enum Case {
    /// B inserts without having A's change.
    Concurrent,
    /// B has A's change, then inserts (no concurrency at all).
    AfterA,
    /// A itself goes on to insert (one peer's chain: Loro's linear path).
    AContinues,
    /// Concurrent, B's text as runs of 512 chars inserted right to left.
    ConcurrentRuns,
}

/// The time the importer (a document with A's change) takes to import
/// B's update of `len` inserted chars.
fn import_time(len: usize, case: Case) -> Duration {
    let base = LoroDoc::new();
    base.get_text("text").insert(0, "hello world\n").unwrap();
    base.commit();
    let from = base.oplog_vv();
    let a = base.fork();
    let b = base.fork();
    a.get_text("text").insert(3, "x").unwrap();
    a.commit();
    let importer = a.fork();
    let b = match case {
        Case::AContinues => a.fork(),
        Case::AfterA => {
            b.import(&a.export(ExportMode::updates(&from)).unwrap())
                .unwrap();
            b
        }
        Case::Concurrent | Case::ConcurrentRuns => b,
    };
    if let Case::AContinues = case {
        b.set_peer_id(a.peer_id()).unwrap();
    }
    let b_from = b.oplog_vv();
    let paste: String = "let x = 1; // code\n".chars().cycle().take(len).collect();
    let text = b.get_text("text");
    let end = text.len_unicode();
    if let Case::ConcurrentRuns = case {
        let chars: Vec<char> = paste.chars().collect();
        for run in chars.chunks(512).rev() {
            text.insert(end, &run.iter().collect::<String>()).unwrap();
        }
    } else {
        text.insert(end, &paste).unwrap();
    }
    b.commit();
    let update = b.export(ExportMode::updates(&b_from)).unwrap();

    let started = Instant::now();
    importer.import(&update).unwrap();
    let took = started.elapsed();
    let merged = importer.get_text("text").to_string();
    assert_eq!(merged, format!("helxlo world\n{paste}"));
    took
}

fn median_of_3(len: usize, case: Case) -> Duration {
    let mut runs: Vec<Duration> = (0..3).map(|_| import_time(len, case)).collect();
    runs.sort_unstable();
    runs[1]
}

#[test]
#[ignore = "upstream reproduction; run by hand in release"]
fn importing_one_long_insert_from_another_peer_is_quadratic() {
    let cases = [
        Case::Concurrent,
        Case::AfterA,
        Case::AContinues,
        Case::ConcurrentRuns,
    ];
    let lens = [65_536, 131_072, 262_144, 524_288];
    let mut table = Vec::new();
    for len in lens {
        let row: Vec<Duration> = cases.iter().map(|&c| median_of_3(len, c)).collect();
        println!(
            "{len:>7} chars: {:?}",
            cases.iter().zip(&row).collect::<Vec<_>>()
        );
        table.push(row);
    }
    // Linear: 4 times the length, 4 times the time; quadratic: 16 times.
    for (i, case) in cases.iter().enumerate() {
        let growth = table[3][i].as_secs_f64() / table[1][i].as_secs_f64();
        println!("{case:?}: 4x the length, {growth:.1}x the time");
    }
}
