//! The bench binary works: a tiny run of each command against collab-server
//! running in the bench process (and the relay as a child), on
//! 127.0.0.1, reporting latencies and no errors. Bounded: each run is
//! killed after a minute.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collab-bench"))
        .args(args)
        .args(["--in-process", "--json", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the bench starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("collab-bench {args:?} ran over a minute");
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
    assert!(status.success(), "collab-bench {args:?} failed: {out}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn check_load(o: &Value, name: &str) {
    let lat = &o["latency_us"];
    // 2 rooms x 2 users x 20/s for 1 s: about 80 deliveries.
    assert!(lat["count"].as_u64().unwrap() >= 40, "{name}: {o}");
    let p50 = lat["p50"].as_f64().unwrap();
    let p99 = lat["p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99, "{name}: {o}");
    assert!(
        o["deliveries_per_sec"].as_f64().unwrap() > 0.0,
        "{name}: {o}"
    );
    assert_eq!(o["errors"].as_u64(), Some(0), "{name}: {o}");
    // The pacer kept a schedule and it was measured.
    assert!(o["pacing_us"]["count"].as_u64().unwrap() > 0, "{name}: {o}");
    assert!(o["ticks_skipped"].as_u64().is_some(), "{name}: {o}");
    assert_eq!(
        o["sent_total"].as_u64().unwrap() * (o["users"].as_u64().unwrap() - 1),
        o["delivered_total"].as_u64().unwrap(),
        "{name}: every update reached every other member: {o}"
    );
}

#[test]
fn load_reports_latencies_and_no_errors() {
    let j = bench(&[
        "load",
        "--rooms",
        "2",
        "--users",
        "2",
        "--rate",
        "20",
        "--duration",
        "1",
        "--warmup",
        "0.2",
    ]);
    assert_eq!(j["mode"], "load");
    check_load(&j["collab"], "collab");
    let lat = &j["collab"]["latency_us"];
    assert!(
        lat["p999"].as_f64().unwrap() <= lat["max"].as_f64().unwrap(),
        "{j}"
    );
    assert!(j["collab"]["ack_us"]["count"].as_u64().unwrap() > 0);
    check_load(&j["relay"], "relay");
    // The ratio needs measurable relay CPU (10 ms ticks): absent or > 0.
    assert!(
        j["ratio"].is_null() || j["ratio"].as_f64().is_some_and(|r| r > 0.0),
        "{j}"
    );
}

#[test]
fn idle_holds_every_connection() {
    let j = bench(&[
        "idle",
        "--connections",
        "20",
        "--users-per-room",
        "5",
        "--hold",
        "0.2",
        "--no-baseline",
    ]);
    let c = &j["collab"];
    assert_eq!(c["joined"].as_u64(), Some(20), "{j}");
    assert_eq!(c["failed"].as_u64(), Some(0), "{j}");
    assert_eq!(c["dropped"].as_u64(), Some(0), "{j}");
}

/// By default idle runs rooms of 2 (the headline), 4 and 20, each
/// against its own server, and reports each.
#[test]
fn idle_reports_rooms_of_2_4_and_20() {
    let j = bench(&[
        "idle",
        "--connections",
        "20",
        "--hold",
        "0.2",
        "--no-baseline",
    ]);
    assert_eq!(j["users_per_room"].as_u64(), Some(2), "{j}");
    let sizes = j["sizes"].as_array().unwrap();
    let upr: Vec<u64> = sizes
        .iter()
        .map(|s| s["users_per_room"].as_u64().unwrap())
        .collect();
    assert_eq!(upr, [2, 4, 20], "{j}");
    for s in sizes {
        assert_eq!(s["collab"]["joined"].as_u64(), Some(20), "{j}");
        assert_eq!(s["collab"]["dropped"].as_u64(), Some(0), "{j}");
    }
    assert_eq!(j["collab"], sizes[0]["collab"], "{j}");
}

#[test]
fn ramp_finds_a_knee() {
    let j = bench(&[
        "ramp",
        "--rooms",
        "1",
        "--users",
        "2",
        "--start-rate",
        "10",
        "--factor",
        "2",
        "--max-rate",
        "20",
        "--step-secs",
        "0.3",
        "--p99-limit-us",
        "1000000",
        "--no-baseline",
    ]);
    let steps = j["collab"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{j}");
    assert_eq!(j["collab"]["knee_rate"].as_f64(), Some(20.0), "{j}");
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_collab-bench"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for word in ["load", "idle", "ramp", "relay", "latency", "taskset"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
}
