//! What the commands print: the text report (tables, targets met or
//! missed) and the `--json` object, for load, idle, ramp and interfere. Formatting
//! only; the drivers in `cmd/` measure and hand their outcomes here.

use collab_bench::idle::IdleOutcome;
use collab_bench::load::{Outcome, Spec};
use collab_bench::procfs;
use collab_bench::target::{self, Server};
use serde_json::{Value, json};

use crate::cmd::idle::SizeRun;
use crate::cmd::interfere::{Phase, Run};
use crate::cmd::ramp::{Step, knee};
use crate::{Common, InterfereArgs, RampArgs};

fn machine_json(common: &Common) -> Value {
    let (cpus, model) = procfs::machine();
    json!({ "cpus": cpus, "cpu_model": model, "server_cpu": common.server_cpu, "client_cpu": common.client_cpu })
}

fn print_machine(common: &Common, server: &Server) {
    let (cpus, model) = procfs::machine();
    println!("machine: {cpus} CPUs, {model}");
    println!(
        "server:  {}; bench {}",
        server.describe(),
        match common.client_cpu {
            Some(c) => format!("pinned to CPU {c}"),
            None => "not pinned".into(),
        }
    );
    if let Some(pid) = server.pid()
        && let Some(limit) = target::nofile_soft_limit(pid)
    {
        println!("server open-files soft limit: {limit}");
    }
}

// ---------------------------------------------------------------- load

pub(crate) fn print_load(
    common: &Common,
    server: &Server,
    spec: &Spec,
    collab: &Outcome,
    baseline: Option<&Outcome>,
) {
    if common.json {
        let j = json!({
            "mode": "load",
            "machine": machine_json(common),
            "server": server.describe(),
            "collab": outcome_json(collab),
            "relay": baseline.map(outcome_json),
            "ratio": ratio(collab, baseline),
        });
        println!("{j}");
    } else {
        println!(
            "collab-bench load: {} rooms x {} users x {} edits/s ({:?} typing), {} s measured after {} s warm-up",
            spec.rooms,
            spec.users,
            spec.rate,
            spec.typing,
            spec.duration.as_secs_f64(),
            spec.warmup.as_secs_f64()
        );
        print_machine(common, server);
        println!();
        print_outcomes(collab, baseline);
        print_load_targets(collab, baseline);
    }
}

fn ratio(collab: &Outcome, relay: Option<&Outcome>) -> Option<f64> {
    Some(collab.deliveries_per_cpu_sec()? / relay?.deliveries_per_cpu_sec()?)
}

fn outcome_json(o: &Outcome) -> Value {
    let q = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "rooms": o.spec.rooms,
        "users": o.spec.users,
        "rate": o.spec.rate,
        "window_secs": o.window.as_secs_f64(),
        "latency_us": {
            "count": o.latency.len(),
            "p50": q(&o.latency, 0.5),
            "p99": q(&o.latency, 0.99),
            "p999": q(&o.latency, 0.999),
            "max": o.latency.max() as f64 / 1000.0,
        },
        "ack_us": {
            "count": o.ack.len(),
            "p50": q(&o.ack, 0.5),
            "p99": q(&o.ack, 0.99),
        },
        "sends_per_sec": o.sends_per_sec(),
        "offered_sends_per_sec": o.offered_sends_per_sec(),
        "deliveries_per_sec": o.deliveries_per_sec(),
        "sent_total": o.sent_total,
        "delivered_total": o.delivered_total,
        "server_cpu_secs": o.server_cpu,
        "server_cpu_per_100k_deliveries": o.cpu_per_100k(),
        "deliveries_per_server_cpu_sec": o.deliveries_per_cpu_sec(),
        "bench_cpu_secs": o.client_cpu,
        "pacer_cpu_secs": o.pacer_cpu,
        "server_rss_kib": { "start": o.rss_start_kib, "end": o.rss_end_kib, "max": o.rss_max_kib },
        "typing": format!("{:?}", o.spec.typing).to_lowercase(),
        "waits": o.waits,
        "pacing_us": {
            "count": o.pacing.len(),
            "p50": q(&o.pacing, 0.5),
            "p99": q(&o.pacing, 0.99),
            "p999": q(&o.pacing, 0.999),
            "max": o.pacing.max() as f64 / 1000.0,
            "pacer_wake_p50": q(&o.pacer_wake, 0.5),
            "pacer_wake_p99": q(&o.pacer_wake, 0.99),
        },
        "ticks_skipped": o.ticks_skipped,
        "send_gap_us": {
            "p10": q(&o.gaps, 0.1),
            "p50": q(&o.gaps, 0.5),
            "p90": q(&o.gaps, 0.9),
        },
        "sends_within_50us": o.bunched(),
        "errors": o.errors.total(),
        "errors_detail": o.errors.describe(),
    })
}

pub(crate) fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1} ms", v / 1000.0)
    } else {
        format!("{v:.0} µs")
    }
}

fn mib(k: Option<u64>) -> String {
    k.map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn print_outcomes(collab: &Outcome, relay: Option<&Outcome>) {
    type Row = (&'static str, fn(&Outcome) -> String);
    let rows: [Row; 17] = [
        ("keystroke latency p50", |o| us(o.latency_us(0.5))),
        ("keystroke latency p99", |o| us(o.latency_us(0.99))),
        ("keystroke latency p99.9 / max", |o| {
            format!(
                "{} / {}",
                us(o.latency_us(0.999)),
                us(o.latency.max() as f64 / 1000.0)
            )
        }),
        ("latency samples", |o| o.latency.len().to_string()),
        ("ack latency p50 / p99", |o| {
            if o.ack.is_empty() {
                "-".into()
            } else {
                format!("{} / {}", us(o.ack_us(0.5)), us(o.ack_us(0.99)))
            }
        }),
        ("sends/s (offered)", |o| {
            format!(
                "{:.0} ({:.0})",
                o.sends_per_sec(),
                o.offered_sends_per_sec()
            )
        }),
        ("deliveries/s", |o| format!("{:.0}", o.deliveries_per_sec())),
        ("keystrokes that waited a turn", |o| o.waits.to_string()),
        ("pacing: send - schedule p50/p99", |o| {
            format!("{:.1} / {:.1} µs", o.pacing_us(0.5), o.pacing_us(0.99))
        }),
        ("sends < 50 µs after another", |o| {
            format!("{:.1}%", o.bunched() * 100.0)
        }),
        ("late ticks skipped", |o| o.ticks_skipped.to_string()),
        ("server CPU in window", |o| {
            o.server_cpu.map_or("-".into(), |c| {
                format!(
                    "{c:.2} s ({:.0}% of a core)",
                    c * 100.0 / o.window.as_secs_f64()
                )
            })
        }),
        ("server CPU-s / 100k deliveries", |o| {
            o.cpu_per_100k().map_or("-".into(), |c| format!("{c:.3}"))
        }),
        ("deliveries / server CPU-s", |o| {
            o.deliveries_per_cpu_sec()
                .map_or("-".into(), |d| format!("{d:.0}"))
        }),
        ("server RSS start / max", |o| {
            format!("{} / {}", mib(o.rss_start_kib), mib(o.rss_max_kib))
        }),
        ("bench CPU (its core)", |o| {
            let w = o.window.as_secs_f64();
            match (o.client_cpu, o.pacer_cpu) {
                (Some(c), Some(p)) => {
                    format!("{:.0}% (pacer {:.0}%)", c * 100.0 / w, p * 100.0 / w)
                }
                (Some(c), None) => format!("{:.0}%", c * 100.0 / w),
                _ => "-".into(),
            }
        }),
        ("errors", |o| o.errors.describe()),
    ];
    match relay {
        Some(r) => {
            println!(
                "{:<32} {:>22}   {:>22}",
                "", "collab-server", "relay (baseline)"
            );
            for (name, f) in rows {
                println!("{name:<32} {:>22}   {:>22}", f(collab), f(r));
            }
        }
        None => {
            println!("{:<32} {:>22}", "", "collab-server");
            for (name, f) in rows {
                println!("{name:<32} {:>22}", f(collab));
            }
        }
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn print_load_targets(collab: &Outcome, relay: Option<&Outcome>) {
    println!();
    let p50 = collab.latency_us(0.5);
    let p99 = collab.latency_us(0.99);
    let standard = collab.spec.rooms == 100 && collab.spec.users == 4 && collab.spec.rate == 10.0;
    let note = if standard {
        ""
    } else {
        " (the targets are for 100 rooms x 4 users x 10 edits/s)"
    };
    println!("targets{note}:");
    println!("  p50 <= 200 µs: {} ({})", verdict(p50 <= 200.0), us(p50));
    println!("  p99 <= 500 µs: {} ({})", verdict(p99 <= 500.0), us(p99));
    match ratio(collab, relay) {
        Some(r) => println!(
            "  deliveries per server CPU-s >= 50% of the relay's: {} ({:.0}%)",
            verdict(r >= 0.5),
            r * 100.0
        ),
        None => println!("  deliveries per server CPU-s vs the relay: not measured"),
    }
    println!(
        "  no errors: {} ({})",
        verdict(collab.errors.total() == 0),
        collab.errors.describe()
    );
}

// ---------------------------------------------------------------- idle

pub(crate) fn print_idle(
    common: &Common,
    k: usize,
    runs: &[SizeRun],
    baseline: Option<&IdleOutcome>,
) {
    let Some(head) = runs.first() else {
        return;
    };
    if common.json {
        let sizes: Vec<Value> = runs
            .iter()
            .map(|r| {
                json!({
                    "users_per_room": r.users_per_room,
                    "server": r.server,
                    "collab": idle_json(&r.collab),
                })
            })
            .collect();
        let j = json!({
            "mode": "idle",
            "machine": machine_json(common),
            "server": head.server,
            "users_per_room": head.users_per_room,
            "collab": idle_json(&head.collab),
            "sizes": sizes,
            "relay": baseline.map(idle_json),
        });
        println!("{j}");
        return;
    }
    let (cpus, model) = procfs::machine();
    println!(
        "collab-bench idle: {k} connections, in rooms of {}",
        runs.iter()
            .map(|r| r.users_per_room.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("machine: {cpus} CPUs, {model}");
    for r in runs {
        println!("server (rooms of {}): {}", r.users_per_room, r.server);
    }
    println!(
        "bench: {}",
        match common.client_cpu {
            Some(c) => format!("pinned to CPU {c}"),
            None => "not pinned".into(),
        }
    );
    println!();
    type Row = (&'static str, fn(&IdleOutcome) -> String);
    let rows: [Row; 8] = [
        ("RSS empty", |o| mib(o.empty_kib)),
        ("RSS with all joined", |o| mib(o.loaded_kib)),
        ("RSS at end of hold", |o| mib(o.held_kib)),
        ("RSS after all closed", |o| mib(o.closed_kib)),
        ("per idle connection", |o| {
            o.bytes_per_connection()
                .map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0))
        }),
        ("joined / failed / dropped", |o| {
            format!("{} / {} / {}", o.joined, o.failed, o.dropped)
        }),
        ("set-up time", |o| format!("{:.1} s", o.setup_secs)),
        ("first error", |o| {
            o.first_error.clone().unwrap_or("-".into())
        }),
    ];
    let mut columns: Vec<(String, &IdleOutcome)> = runs
        .iter()
        .map(|r| (format!("collab, rooms of {}", r.users_per_room), &r.collab))
        .collect();
    if let Some(b) = baseline {
        columns.push((format!("relay, rooms of {}", head.users_per_room), b));
    }
    print!("{:<28}", "");
    for (name, _) in &columns {
        print!(" {name:>20}");
    }
    println!();
    for (name, f) in rows {
        print!("{name:<28}");
        for (_, o) in &columns {
            print!(" {:>20}", f(o));
        }
        println!();
    }
    println!();
    let collab = &head.collab;
    println!("targets (rooms of {}):", head.users_per_room);
    let per = collab.bytes_per_connection();
    println!(
        "  {k} idle connections held: {} ({} joined, {} failed, {} dropped)",
        verdict(collab.joined as usize == k && collab.dropped == 0),
        collab.joined,
        collab.failed,
        collab.dropped
    );
    println!(
        "  <= 12 KiB per idle connection: {} ({})",
        verdict(per.is_some_and(|b| b <= 12.0 * 1024.0)),
        per.map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0))
    );
    println!(
        "  empty server < 5 MiB RSS: {} ({})",
        verdict(collab.empty_kib.is_some_and(|k| k < 5 * 1024)),
        mib(collab.empty_kib)
    );
}

fn idle_json(o: &IdleOutcome) -> Value {
    json!({
        "rss_kib": { "empty": o.empty_kib, "loaded": o.loaded_kib, "held": o.held_kib, "closed": o.closed_kib },
        "bytes_per_connection": o.bytes_per_connection(),
        "joined": o.joined,
        "failed": o.failed,
        "dropped": o.dropped,
        "setup_secs": o.setup_secs,
        "first_error": o.first_error,
    })
}

// ---------------------------------------------------------------- ramp

pub(crate) fn print_ramp(
    args: &RampArgs,
    server: &Server,
    collab: &[Step],
    baseline: Option<&[Step]>,
) {
    let common = &args.common;
    let steps_json = |steps: &[Step]| -> Value {
        Value::Array(
            steps
                .iter()
                .map(|s| json!({ "rate": s.rate, "ok": s.ok, "outcome": outcome_json(&s.outcome) }))
                .collect(),
        )
    };
    if common.json {
        let j = json!({
            "mode": "ramp",
            "machine": machine_json(common),
            "server": server.describe(),
            "p99_limit_us": args.p99_limit_us,
            "collab": { "knee_rate": knee(collab).map(|s| s.rate), "steps": steps_json(collab) },
            "relay": baseline.map(|b| json!({ "knee_rate": knee(b).map(|s| s.rate), "steps": steps_json(b) })),
        });
        println!("{j}");
        return;
    }
    println!(
        "collab-bench ramp: {} rooms x {} users, from {} edits/s per user x{} per step, {:.0} s per step; breaks at p99 > {}",
        args.rooms,
        args.users,
        args.start_rate,
        args.factor,
        args.step_secs,
        us(args.p99_limit_us)
    );
    print_machine(common, server);
    for (name, steps) in [
        ("collab-server", Some(collab)),
        ("relay (baseline)", baseline),
    ] {
        let Some(steps) = steps else { continue };
        println!();
        println!("{name}:");
        println!(
            "  {:>8} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>11}  errors",
            "rate/u",
            "sends/s",
            "deliveries/s",
            "p50",
            "p99",
            "p99.9",
            "max",
            "srv CPU",
            "bench CPU",
            "srv RSS max"
        );
        for s in steps {
            let o = &s.outcome;
            let w = o.window.as_secs_f64();
            println!(
                "  {:>8.0} {:>10.0} {:>12.0} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>11}  {}{}",
                s.rate,
                o.sends_per_sec(),
                o.deliveries_per_sec(),
                us(o.latency_us(0.5)),
                us(o.latency_us(0.99)),
                us(o.latency_us(0.999)),
                us(o.latency.max() as f64 / 1000.0),
                o.server_cpu
                    .map_or("-".into(), |c| format!("{:.0}%", c * 100.0 / w)),
                o.client_cpu
                    .map_or("-".into(), |c| format!("{:.0}%", c * 100.0 / w)),
                mib(o.rss_max_kib),
                o.errors.describe(),
                if s.ok { "" } else { "  <- broken" }
            );
        }
        match knee(steps) {
            Some(k) => println!(
                "  knee: {:.0} edits/s per user ({:.0} deliveries/s) is the last rate with p99 <= {}",
                k.rate,
                k.outcome.deliveries_per_sec(),
                us(args.p99_limit_us)
            ),
            None => println!("  knee: below the first step"),
        }
    }
}

// ----------------------------------------------------------- interfere

fn hist_json(h: &hdrhistogram::Histogram<u64>, scale: f64) -> Value {
    let q = |q: f64| h.value_at_quantile(q) as f64 / scale;
    json!({
        "count": h.len(),
        "p50": q(0.5),
        "p99": q(0.99),
        "max": h.max() as f64 / scale,
    })
}

fn interfere_phase_json(p: &Phase) -> Value {
    let s = &p.stats;
    json!({
        "room": outcome_json(&p.outcome),
        "server_rss_hwm_kib": p.rss_hwm_kib,
        "probe_join_us": hist_json(&s.probe_us, 1.0),
        "probe_failed": s.probe_failed,
        "probe_first_failure": s.probe_first_failure,
        "disturbance": {
            "rounds": s.rounds,
            "round_ms": hist_json(&s.round_us, 1000.0),
            "refused": s.refused,
            "accepted": s.accepted,
            "failures": s.failures,
            "first_failure": s.first_failure,
            "flood": s.flood.map(|f| json!({
                "opened": f.opened,
                "connect_failed": f.connect_failed,
                "closed_by_server": f.closed_by_server,
                "open_max": f.open_max,
                "bytes_dripped": f.bytes_dripped,
            })),
        },
    })
}

/// Disturbed over quiet; `None` when the quiet value is 0.
fn over(disturbed: f64, quiet: f64) -> Option<f64> {
    (quiet > 0.0).then(|| disturbed / quiet)
}

fn max_us(o: &Outcome) -> f64 {
    o.latency.max() as f64 / 1000.0
}

pub(crate) fn print_interfere(
    common: &Common,
    server: &Server,
    args: &InterfereArgs,
    spec: &Spec,
    run: &Run,
) {
    let (q, d) = (&run.quiet.outcome, &run.disturbed.outcome);
    let ratios = [
        ("p50", over(d.latency_us(0.5), q.latency_us(0.5))),
        ("p99", over(d.latency_us(0.99), q.latency_us(0.99))),
        ("max", over(max_us(d), max_us(q))),
    ];
    let within = |r: Option<f64>| r.is_some_and(|r| r <= 2.0);
    let bomb_refused = run.disturbed.stats.accepted == 0 && run.disturbed.stats.rounds > 0;
    if common.json {
        let ratio: serde_json::Map<String, Value> = ratios
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let j = json!({
            "mode": "interfere",
            "disturb": args.disturb.name(),
            "machine": machine_json(common),
            "server": server.describe(),
            "quiet": interfere_phase_json(&run.quiet),
            "disturbed": interfere_phase_json(&run.disturbed),
            "ratio": ratio,
            "payload_bytes": run.payload_bytes,
            "heavy_room": run.heavy.map(|h| json!({
                "text_bytes": h.text_bytes,
                "updates": h.updates,
                "prepare_secs": h.secs,
            })),
        });
        println!("{j}");
        return;
    }
    println!(
        "collab-bench interfere --disturb {}: 1 room x {} typists x {} edits/s ({:?} typing), {} s measured per phase after {} s warm-up",
        args.disturb.name(),
        spec.users,
        spec.rate,
        spec.typing,
        spec.duration.as_secs_f64(),
        spec.warmup.as_secs_f64()
    );
    print_machine(common, server);
    if let Some(h) = run.heavy {
        println!(
            "heavy room: {} updates, {:.1} MB of text, stored in {:.1} s; the server was restarted on it",
            h.updates,
            h.text_bytes as f64 / 1e6,
            h.secs
        );
    }
    if !run.payload_bytes.is_empty() {
        println!("payload as sent (bytes of Loro): {:?}", run.payload_bytes);
    }
    println!();
    type Row = (&'static str, fn(&Phase) -> String);
    let rows: [Row; 11] = [
        ("keystroke latency p50", |p| us(p.outcome.latency_us(0.5))),
        ("keystroke latency p99", |p| us(p.outcome.latency_us(0.99))),
        ("keystroke latency p99.9 / max", |p| {
            format!(
                "{} / {}",
                us(p.outcome.latency_us(0.999)),
                us(max_us(&p.outcome))
            )
        }),
        ("latency samples", |p| p.outcome.latency.len().to_string()),
        ("quiet room errors", |p| p.outcome.errors.describe()),
        ("server CPU in window", |p| {
            p.outcome.server_cpu.map_or("-".into(), |c| {
                format!(
                    "{c:.2} s ({:.0}%)",
                    c * 100.0 / p.outcome.window.as_secs_f64()
                )
            })
        }),
        ("server RSS start / max", |p| {
            format!(
                "{} / {}",
                mib(p.outcome.rss_start_kib),
                mib(p.outcome.rss_max_kib)
            )
        }),
        ("server RSS peak (VmHWM)", |p| mib(p.rss_hwm_kib)),
        ("newcomer join p50 / max", |p| {
            let h = &p.stats.probe_us;
            if h.is_empty() {
                "-".into()
            } else {
                format!(
                    "{} / {}",
                    us(h.value_at_quantile(0.5) as f64),
                    us(h.max() as f64)
                )
            }
        }),
        ("newcomer joins ok / failed", |p| {
            format!("{} / {}", p.stats.probe_us.len(), p.stats.probe_failed)
        }),
        ("bench CPU (its core)", |p| {
            p.outcome.client_cpu.map_or("-".into(), |c| {
                format!("{:.0}%", c * 100.0 / p.outcome.window.as_secs_f64())
            })
        }),
    ];
    println!(
        "{:<32} {:>22}   {:>22}",
        "",
        "quiet",
        format!("during {}", args.disturb.name())
    );
    for (name, f) in rows {
        println!(
            "{name:<32} {:>22}   {:>22}",
            f(&run.quiet),
            f(&run.disturbed)
        );
    }
    let s = &run.disturbed.stats;
    println!();
    println!("the disturbance:");
    match s.flood {
        Some(f) => println!(
            "  half-open connections opened {} (most at once {}), closed by the server {}, connects failed {}, bytes dripped {}",
            f.opened, f.open_max, f.closed_by_server, f.connect_failed, f.bytes_dripped
        ),
        None => println!(
            "  rounds {}; each (send to answer, or join to welcome) p50 {} max {}",
            s.rounds,
            us(s.round_us.value_at_quantile(0.5) as f64),
            us(s.round_us.max() as f64)
        ),
    }
    if !s.refused.is_empty() || s.accepted > 0 {
        println!(
            "  answers: accepted {}, refused {:?}",
            s.accepted, s.refused
        );
    }
    if s.failures > 0 {
        println!(
            "  failed rounds {} (the first: {})",
            s.failures,
            s.first_failure.as_deref().unwrap_or("-")
        );
    }
    if let Some(e) = &s.probe_first_failure {
        println!("  first failed newcomer join: {e}");
    }
    println!();
    println!("targets (issue 13: the other room within 2x its quiet value):");
    for (name, r) in &ratios[1..] {
        println!(
            "  {name} within 2x quiet: {} ({})",
            verdict(within(*r)),
            r.map_or("-".into(), |r| format!("{r:.2}x"))
        );
    }
    if args.disturb == collab_bench::interfere::Disturb::SnapshotBomb {
        println!(
            "  every snapshot bomb refused: {} ({} refused, {} accepted)",
            verdict(bomb_refused),
            s.refused.values().sum::<u64>(),
            s.accepted
        );
    }
    println!(
        "  no errors in the quiet room: {} ({})",
        verdict(d.errors.total() == 0),
        d.errors.describe()
    );
}
