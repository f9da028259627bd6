//! `collab-bench interfere` works with each disturbance: a short run against
//! the collab-server binary of this build (target/debug/collab-server, which
//! `cargo test --workspace` builds for the server's own tests; build it with
//! `cargo build -p collab-server` when testing this package alone). No
//! timing is asserted: that the run completes, that both phases report
//! latencies and the server's RSS, that the disturbance ran, and that the
//! snapshot bomb was refused. Each run is killed after two minutes. The
//! servers keep nothing on disk (`--memory`), but for `heavy-load`, which
//! stores its room in a directory of the bench's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn server_bin() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_collab-bench"));
    let bin = bench.with_file_name("collab-server");
    assert!(
        bin.is_file(),
        "{} is missing: cargo build -p collab-server",
        bin.display()
    );
    bin
}

fn interfere(disturb: &str, extra: &[&str]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collab-bench"))
        .args(["interfere", "--disturb", disturb])
        .args([
            "--duration",
            "1",
            "--warmup",
            "0.2",
            "--probe-every-ms",
            "100",
        ])
        .args(extra)
        .arg("--server-bin")
        .arg(server_bin())
        .args(["--json", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bench starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("collab-bench interfere --disturb {disturb} ran over two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        status.success(),
        "interfere --disturb {disturb} failed: {out}"
    );
    let j: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(j["mode"], "interfere", "{j}");
    assert_eq!(j["disturb"], disturb, "{j}");
    for phase in ["quiet", "disturbed"] {
        let p = &j[phase];
        let room = &p["room"];
        // 2 typists x 50/s for 1 s: about 100 deliveries.
        assert!(
            room["latency_us"]["count"].as_u64().unwrap() >= 40,
            "{phase}: {j}"
        );
        assert!(
            room["latency_us"]["max"].as_f64().unwrap() > 0.0,
            "{phase}: {j}"
        );
        assert_eq!(room["errors"].as_u64(), Some(0), "{phase}: {j}");
        assert!(
            p["server_rss_hwm_kib"].as_u64().unwrap() > 0,
            "{phase}: {j}"
        );
        assert!(
            room["server_rss_kib"]["max"].as_u64().unwrap() > 0,
            "{phase}: {j}"
        );
        // Newcomers got in.
        assert!(
            p["probe_join_us"]["count"].as_u64().unwrap() > 0,
            "{phase}: {j}"
        );
    }
    for r in ["p50", "p99", "max"] {
        assert!(j["ratio"][r].as_f64().is_some_and(|r| r > 0.0), "{r}: {j}");
    }
    // The quiet phase has no disturbance.
    assert_eq!(j["quiet"]["disturbance"]["rounds"].as_u64(), Some(0), "{j}");
    j
}

fn disturbance(j: &Value) -> &Value {
    &j["disturbed"]["disturbance"]
}

#[test]
fn a_snapshot_bomb_is_refused_every_time() {
    let j = interfere(
        "snapshot-bomb",
        &["--bomb-text-kib", "512", "--server-arg=--memory"],
    );
    let d = disturbance(&j);
    let rounds = d["rounds"].as_u64().unwrap();
    assert!(rounds > 0, "{j}");
    assert_eq!(d["accepted"].as_u64(), Some(0), "{j}");
    assert_eq!(d["refused"]["bad_update"].as_u64(), Some(rounds), "{j}");
    // The bomb is a small compressed snapshot of the 512 KiB text.
    let bytes = j["payload_bytes"][0].as_u64().unwrap();
    assert!(bytes > 0 && bytes < 64 * 1024, "{j}");
}

#[test]
fn a_concurrent_paste_is_accepted_while_the_other_room_types() {
    let j = interfere("paste", &["--paste-kib", "64", "--server-arg=--memory"]);
    let d = disturbance(&j);
    assert!(d["rounds"].as_u64().unwrap() > 0, "{j}");
    assert!(d["accepted"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(d["failures"].as_u64(), Some(0), "{j}");
}

#[test]
fn a_heavy_stored_room_is_loaded_again_and_again() {
    let j = interfere(
        "heavy-load",
        &["--heavy-pastes", "3", "--heavy-paste-kib", "32"],
    );
    let heavy = &j["heavy_room"];
    assert!(heavy["updates"].as_u64().unwrap() > 3, "{j}");
    let d = disturbance(&j);
    assert!(d["rounds"].as_u64().unwrap() > 0, "{j}");
    assert!(d["round_ms"]["max"].as_f64().unwrap() > 0.0, "{j}");
}

#[test]
fn a_half_open_flood_is_held_and_reopened() {
    let j = interfere(
        "half-open",
        &[
            "--half-open",
            "48",
            "--half-open-addresses",
            "3",
            "--server-arg=--memory",
        ],
    );
    let f = &disturbance(&j)["flood"];
    assert!(f["opened"].as_u64().unwrap() >= 48, "{j}");
    // 16 per address over a cap of 8: the server closes the rest, and the
    // flood opens them again.
    assert!(f["closed_by_server"].as_u64().unwrap() > 0, "{j}");
    assert_eq!(f["connect_failed"].as_u64(), Some(0), "{j}");
}
