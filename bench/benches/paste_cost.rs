//! A paste concurrent with one keystroke
//! (issue 13), as the server, the typist and the paster merge it, with the
//! paste as one insert (what `SharedDoc::splice` made before it cut long
//! inserts into runs) and as `SharedDoc::splice` makes it now. Each case
//! runs in a child process of its own, so its peak RSS is its own. Figures
//! printed (BENCHMARKS.md); until issue 19 `#[ignore]`d tests in
//! `crdt/tests/paste_cost.rs`. Run (a filter picks one part: `keystroke`
//! or `ten`):
//! `cargo bench -p collab-bench --bench paste_cost [-- keystroke|ten]`
//!
//! The scenario: a room holds a 780-char file; Alice types one key, which
//! the room has; Bob, who has not seen it, pastes `kib` KiB of code at the
//! end and sends it as the editor does (frame-sized parts, one here). The
//! figures: the room's import (`RoomDoc::import_limited`) and its peak RSS
//! over what the process held before it, Alice importing the paste, Bob
//! importing the key. A last row has Bob paste after seeing the key: no
//! concurrency at all, and (as one insert) the same cost, since Loro's
//! quadratic path is taken for any long insert of another peer (see
//! `crdt/tests/loro_paste_checkout.rs`).
//!
//! `a_room_of_ten_pastes_live_and_loaded` is the heavy stored room:
//! ten pastes of 280 KiB, imported as they arrive and loaded from the store.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use collab_doc::{DEFAULT_MAX_DOC_BYTES, RoomDoc, SharedDoc};
use loro::{ExportMode, LoroDoc};

/// The 1 MiB frame's budget for update bytes (base64 inside JSON).
const FRAME_BUDGET: usize = (1024 * 1024 - 512) / 4 * 3;
const SIZES_KIB: [usize; 4] = [64, 256, 512, 740];
const RUNS: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// One Loro insert operation, as before.
    OneInsert,
    /// `SharedDoc::splice`: runs of at most `INSERT_RUN_CHARS`.
    Runs,
}

fn proc_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Figures {
    server: Duration,
    server_peak_mib: u64,
    typist: Duration,
    paster: Duration,
}

/// Whether Bob has seen Alice's key when he pastes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Order {
    /// He has not: the case.
    Concurrent,
    /// He has: no concurrency at all, and Loro's cost is the same.
    AfterTheKey,
}

fn scenario(kib: usize, shape: Shape, order: Order) -> Figures {
    let base = "fn main() {\n    println!(\"hello\");\n}\n".repeat(20);
    let mut room = RoomDoc::new();
    let mut alice = SharedDoc::new();
    alice.splice(0, 0, &base).unwrap();
    let seed = alice.take_local_update().unwrap();
    room.import_limited(&seed, DEFAULT_MAX_DOC_BYTES).unwrap();
    let mut bob = SharedDoc::from_snapshot(&alice.snapshot().unwrap()).unwrap();

    alice.splice(10, 0, "x").unwrap();
    let key = alice.take_local_update().unwrap();
    room.import_limited(&key, DEFAULT_MAX_DOC_BYTES).unwrap();
    if order == Order::AfterTheKey {
        bob.import(&key).unwrap();
    }

    let line = "    let value = compute(input, 42); // a line of code\n";
    let paste = line.repeat(kib * 1024 / line.len() + 1)[..kib * 1024].to_owned();
    let parts = match shape {
        Shape::Runs => {
            bob.splice(bob.len_chars(), 0, &paste).unwrap();
            let parts = bob.take_local_update_chunked(FRAME_BUDGET);
            // Reloaded as in the other case, so both merge the key alike.
            bob = SharedDoc::from_snapshot(&bob.snapshot().unwrap()).unwrap();
            parts
        }
        Shape::OneInsert => {
            // The same edit as one operation, by Loro directly; Bob, then
            // a SharedDoc of it, merges the key.
            let one = LoroDoc::from_snapshot(&bob.snapshot().unwrap()).unwrap();
            let from = one.oplog_vv();
            let text = one.get_text(collab_doc::TEXT_CONTAINER);
            text.insert(text.len_unicode(), &paste).unwrap();
            one.commit();
            let update = one.export(ExportMode::updates(&from)).unwrap();
            bob = SharedDoc::from_snapshot(&one.export(ExportMode::Snapshot).unwrap()).unwrap();
            vec![update]
        }
    };
    assert_eq!(parts.len(), 1, "one frame");

    let rss_before = proc_kib("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    room.import_limited(&parts[0], DEFAULT_MAX_DOC_BYTES)
        .unwrap();
    let server = started.elapsed();
    let server_peak_mib = proc_kib("VmHWM:").saturating_sub(rss_before) / 1024;

    let started = Instant::now();
    alice.import(&parts[0]).unwrap();
    let typist = started.elapsed();
    let started = Instant::now();
    bob.import(&key).unwrap(); // nothing new after the key
    let paster = started.elapsed();

    let text = room.text();
    assert_eq!(text, alice.text());
    assert_eq!(text, bob.text());
    assert_eq!(text.len(), base.len() + 1 + kib * 1024);
    Figures {
        server,
        server_peak_mib,
        typist,
        paster,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: only
    // the former measures.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    if let Ok(case) = std::env::var("PASTE_COST") {
        return one_case(&case);
    }
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wanted("paste_concurrent_with_a_keystroke") {
        paste_concurrent_with_a_keystroke();
    }
    if wanted("a_room_of_ten_pastes_live_and_loaded") {
        a_room_of_ten_pastes_live_and_loaded();
    }
}

/// One case, in the child process `paste_concurrent_with_a_keystroke`
/// starts with `PASTE_COST=kib,shape,order`.
fn one_case(case: &str) {
    let mut fields = case.split(',');
    let kib = fields.next().unwrap().parse().unwrap();
    let shape = match fields.next() {
        Some("runs") => Shape::Runs,
        _ => Shape::OneInsert,
    };
    let order = match fields.next() {
        Some("after") => Order::AfterTheKey,
        _ => Order::Concurrent,
    };
    let f = scenario(kib, shape, order);
    println!(
        "FIGURES {} {} {} {}",
        f.server.as_micros(),
        f.server_peak_mib,
        f.typist.as_micros(),
        f.paster.as_micros()
    );
}

/// Runs one case in a child process; (server µs, peak MiB, typist µs,
/// paster µs).
fn run_case(kib: usize, shape: Shape, order: Order) -> [u64; 4] {
    let name = if shape == Shape::Runs { "runs" } else { "one" };
    let when = if order == Order::AfterTheKey {
        "after"
    } else {
        "concurrent"
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--bench")
        .env("PASTE_COST", format!("{kib},{name},{when}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("FIGURES "))
        .unwrap_or_else(|| panic!("no figures: {stdout}"));
    let v: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2], v[3]]
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn paste_concurrent_with_a_keystroke() {
    println!(
        "median of {RUNS} runs; each: one insert -> runs (ratio)\n\
         paste   | server import            | server peak RSS | typist imports paste     | paster imports key"
    );
    let cases = SIZES_KIB
        .iter()
        .map(|&k| (k, Order::Concurrent))
        .chain([(740, Order::AfterTheKey)]);
    for (kib, order) in cases {
        let mut cols: Vec<[u64; 2]> = vec![[0; 2]; 4];
        for (s, shape) in [Shape::OneInsert, Shape::Runs].into_iter().enumerate() {
            let runs: Vec<[u64; 4]> = (0..RUNS).map(|_| run_case(kib, shape, order)).collect();
            for (c, col) in cols.iter_mut().enumerate() {
                col[s] = median(runs.iter().map(|r| r[c]).collect());
            }
        }
        let ratio = |c: [u64; 2]| c[0] as f64 / c[1].max(1) as f64;
        let label = if order == Order::AfterTheKey {
            " (after the key)"
        } else {
            ""
        };
        println!(
            "{kib:>3} KiB{label} | {} -> {} ({:.0}x) | {} -> {} MiB | {} -> {} ({:.0}x) | {} -> {}",
            ms(cols[0][0]),
            ms(cols[0][1]),
            ratio(cols[0]),
            cols[1][0],
            cols[1][1],
            ms(cols[2][0]),
            ms(cols[2][1]),
            ratio(cols[2]),
            ms(cols[3][0]),
            ms(cols[3][1]),
        );
    }
}

/// The heavy stored room: ten members each type a key, then paste
/// 280 KiB (2.8 MB of text), each having seen everything before. The
/// updates as the room receives them, with the pastes in `shape`.
fn ten_pastes(shape: Shape) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut room = SharedDoc::new();
    let line = "    let value = compute(input, 42); // a line of code\n";
    let paste = line.repeat(280 * 1024 / line.len());
    for i in 0..10 {
        let mut typist = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
        typist.splice(0, 0, "x").unwrap();
        out.push(typist.take_local_update().unwrap());
        room.import(out.last().unwrap()).unwrap();
        let snapshot = room.snapshot().unwrap();
        let update = match shape {
            Shape::Runs => {
                let mut paster = SharedDoc::from_snapshot(&snapshot).unwrap();
                paster.splice(i, 0, &paste).unwrap();
                paster.take_local_update().unwrap()
            }
            Shape::OneInsert => {
                let paster = LoroDoc::from_snapshot(&snapshot).unwrap();
                let from = paster.oplog_vv();
                paster
                    .get_text(collab_doc::TEXT_CONTAINER)
                    .insert(i, &paste)
                    .unwrap();
                paster.commit();
                paster.export(ExportMode::updates(&from)).unwrap()
            }
        };
        room.import(&update).unwrap();
        out.push(update);
    }
    out
}

fn a_room_of_ten_pastes_live_and_loaded() {
    println!("median of {RUNS} runs; one insert -> runs (ratio)");
    let mut figures = Vec::new();
    for shape in [Shape::OneInsert, Shape::Runs] {
        let updates = ten_pastes(shape);
        let (mut live, mut load) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let started = Instant::now();
            let mut room = RoomDoc::new();
            for u in &updates {
                room.import_limited(u, DEFAULT_MAX_DOC_BYTES).unwrap();
            }
            live.push(started.elapsed().as_micros() as u64);
            let started = Instant::now();
            let (mut loaded, failed) = RoomDoc::load(None, &updates).unwrap();
            load.push(started.elapsed().as_micros() as u64);
            assert!(failed.is_empty());
            assert_eq!(loaded.text(), room.text());
        }
        figures.push((median(live), median(load)));
    }
    let (one, runs) = (figures[0], figures[1]);
    println!(
        "20 updates as they arrive: {} -> {} ({:.0}x); RoomDoc::load of them: {} -> {} ({:.0}x)",
        ms(one.0),
        ms(runs.0),
        one.0 as f64 / runs.0.max(1) as f64,
        ms(one.1),
        ms(runs.1),
        one.1 as f64 / runs.1.max(1) as f64,
    );
}
