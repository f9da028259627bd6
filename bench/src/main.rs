//! `collab-bench`: the load generator that ships with collab, like
//! redis-benchmark. See `collab-bench --help` and BENCHMARKS.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use collab_bench::idle::{IdleOutcome, IdleSpec, run_idle};
use collab_bench::load::{Endpoint, Outcome, Spec, Typing, run_phase};
use collab_bench::relay::RELAY_PATH;
use collab_bench::target::{self, ChildServer, InProcess, Server};
use collab_bench::{procfs, relay};
use serde_json::{Value, json};

const ABOUT: &str = "Load generator and benchmark for collab-server (like redis-benchmark).

It speaks the real protocol: every simulated user joins a room over a
WebSocket and types real Loro updates (its own Loro peer id), one per
keystroke, at a fixed rate: a pacer thread spreads all sends evenly over
the period, to tens of µs (tokio's timer has a 1 ms grid, which would send
them in bursts). It measures, on this machine only (loopback):

  * keystroke latency: from a member's send to each other member's receipt,
    p50/p99/p99.9 (HDR histogram). Nothing is embedded in the document: the
    server relays each sender's updates in order, so the nth update a
    receiver gets from a sender is that sender's nth send (checked by a
    hash of the bytes);
  * deliveries per second, and the server's CPU seconds per 100,000
    deliveries and resident memory (/proc/PID/stat and /proc/PID/status);
  * the same load against a bare WebSocket relay (this binary's `relay`
    command, run as a child so its CPU and memory are measured the same
    way): collab's deliveries per server CPU-second as a ratio of it;
  * memory per idle joined connection (`idle`), and the rate at which
    latency breaks (`ramp`).

By default it starts collab-server itself (the binary next to this one, as
built by `cargo build --release -p collab-bench -p collab-server`), on
127.0.0.1 with a free port. On a machine with two or more cores, pin the
server (with taskset) and the bench (sched_setaffinity) to different cores
for stable figures:

  collab-bench load --server-cpu 0 --client-cpu 1
  collab-bench idle --connections 10000 --server-cpu 0 --client-cpu 1
  collab-bench ramp --server-cpu 0 --client-cpu 1

Every run is bounded in time and count and stops by itself; a progress line
goes to stderr each second, the report to stdout (--json for a program).";

#[derive(Debug, Parser)]
#[command(name = "collab-bench", version, about = "Load generator and benchmark for collab-server", long_about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// N rooms of M users typing at R edits/s each: latency, deliveries/s,
    /// server CPU per delivery and RSS, then the same against the relay.
    Load(LoadArgs),
    /// Hold K idle joined connections: the server's RSS empty, loaded, and
    /// per connection (and the relay's, as a baseline).
    Idle(IdleArgs),
    /// Raise the per-user rate step by step until p99 latency passes a
    /// threshold; report the knee and how latency and memory behave past
    /// it.
    Ramp(RampArgs),
    /// Run the baseline relay: forwards each text frame to the other
    /// connections of its room (ws://ADDR/relay/ROOM), parses nothing.
    /// The other commands start it as a child; run it by hand to load it
    /// with your own client.
    Relay(RelayArgs),
}

/// Where the server comes from, how it is pinned, what to print.
#[derive(Debug, Clone, Args)]
struct Common {
    /// The collab-server binary to start. Default: collab-server in the
    /// same directory as this executable.
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,

    /// Load a collab-server that is already running instead of starting
    /// one (loopback only), e.g. ws://127.0.0.1:7878/ws.
    #[arg(long, value_name = "URL", conflicts_with_all = ["server_bin", "in_process"])]
    url: Option<String>,

    /// The pid of the server at --url, to read its CPU time and RSS.
    #[arg(long, value_name = "PID", requires = "url")]
    server_pid: Option<u32>,

    /// Run collab-server inside this process (on its own runtime thread).
    /// For tests: the CPU and RSS figures then include the load generator.
    #[arg(long)]
    in_process: bool,

    /// Pin the server (and the relay) to this CPU with taskset.
    #[arg(long, value_name = "CPU")]
    server_cpu: Option<usize>,

    /// Pin this load generator to this CPU (sched_setaffinity).
    #[arg(long, value_name = "CPU")]
    client_cpu: Option<usize>,

    /// Worker threads of the started server and relay (collab-server's
    /// --workers).
    #[arg(long, default_value_t = 2, value_name = "N")]
    server_workers: usize,

    /// An extra argument for the started collab-server; repeat it, e.g.
    /// --server-arg=--compact-every --server-arg=5000.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    server_arg: Vec<String>,

    /// The access token, when the server needs one.
    #[arg(long, env = "COLLAB_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Skip the run against the bare relay.
    #[arg(long)]
    no_baseline: bool,

    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,

    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// Rooms.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rooms: u32,
    /// Users per room (each one WebSocket).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    users: u32,
    /// Edits per second per user.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds measured (sending stops at the end), at most 600.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// How the typists of a room relate to each other's edits (see
    /// BENCHMARKS.md): turns keeps the history linear, concurrent lets
    /// edits cross under load, independent never merges.
    #[arg(long, value_enum, default_value = "turns")]
    typing: Typing,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct IdleArgs {
    /// Idle connections to hold.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    connections: u32,
    /// Members per room.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    users_per_room: u32,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to hold the connections before the final reading.
    #[arg(long, default_value_t = 3.0)]
    hold: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct RampArgs {
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    rooms: u32,
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    users: u32,
    /// The first step's edits per second per user.
    #[arg(long, default_value_t = 10.0)]
    start_rate: f64,
    /// Each step multiplies the rate by this.
    #[arg(long, default_value_t = 1.5)]
    factor: f64,
    /// Never go past this rate per user.
    #[arg(long, default_value_t = 2000.0)]
    max_rate: f64,
    /// Seconds measured per step (after a 1 s warm-up).
    #[arg(long, default_value_t = 3.0)]
    step_secs: f64,
    /// Latency breaks when p99 goes over this many µs (or a step has
    /// errors, or sends fall below 90% of the offered rate).
    #[arg(long, default_value_t = 1000.0)]
    p99_limit_us: f64,
    /// Steps to run past the knee, to show overload behaviour.
    #[arg(long, default_value_t = 2)]
    overload_steps: usize,
    /// At most this many steps in all.
    #[arg(long, default_value_t = 16)]
    max_steps: usize,
    /// How the typists of a room relate to each other's edits.
    #[arg(long, value_enum, default_value = "turns")]
    typing: Typing,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
struct RelayArgs {
    /// Address to listen on (loopback only; port 0 picks one, printed on
    /// stdout).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Outbound queue per connection; a connection whose queue is full is
    /// dropped.
    #[arg(long, default_value_t = 256)]
    queue: usize,
    /// Exit when standard input closes (how the bench stops its child).
    #[arg(long)]
    exit_on_stdin_eof: bool,
    /// Exit after this many seconds in any case.
    #[arg(long, default_value_t = 3600)]
    max_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Relay(args) => run_relay(args),
        Command::Load(args) => with_runtime(&args.common.clone(), |rt| rt.block_on(load(args))),
        Command::Idle(args) => with_runtime(&args.common.clone(), |rt| rt.block_on(idle(args))),
        Command::Ramp(args) => with_runtime(&args.common.clone(), |rt| rt.block_on(ramp(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collab-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Pins this process when asked, raises the open-files limit, and runs
/// `f` on a single-threaded runtime (the generator's one core).
fn with_runtime(
    common: &Common,
    f: impl FnOnce(&tokio::runtime::Runtime) -> Result<(), String>,
) -> Result<(), String> {
    if let Some(cpu) = common.client_cpu {
        let ok = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
        if !ok {
            return Err(format!("cannot pin the bench to CPU {cpu}"));
        }
    }
    // Children (the server, the relay) inherit the raised limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("collab-bench: cannot raise the open-files limit: {e}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    f(&rt)
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    if !(0.0..=600.0).contains(&s) {
        return Err(format!("{what} must be between 0 and 600 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Limits to start collab-server with, so the bench's own load is never
/// refused: enough connections, rooms and members, and a rate limit above
/// the offered rate (the rate limit guards against abuse, not load).
struct Sizing {
    connections: usize,
    rooms: usize,
    users: usize,
    rate: f64,
}

fn start_collab(common: &Common, sizing: &Sizing) -> Result<Server, String> {
    let rate = (sizing.rate * 4.0).ceil().max(200.0) as u32;
    let burst = rate.saturating_mul(2).max(400);
    let max_connections = (sizing.connections + 64).max(1024);
    let max_rooms = (sizing.rooms + 16).max(256);
    let max_users = sizing.users.max(32);
    if let Some(url) = &common.url {
        let addr = target::loopback_addr(url)?;
        return Ok(Server::Attached {
            addr,
            pid: common.server_pid,
        });
    }
    if common.in_process {
        let config = collab_server::Config {
            max_connections,
            max_rooms,
            max_users_per_room: max_users,
            messages_per_second: rate,
            burst,
            ..collab_server::Config::default()
        };
        return InProcess::start(config, common.server_workers).map(Server::InProcess);
    }
    let bin = match &common.server_bin {
        Some(p) => p.clone(),
        None => target::default_server_bin().ok_or(
            "no collab-server next to this executable: build it with \
             `cargo build --release -p collab-bench -p collab-server`, or pass --server-bin or --url",
        )?,
    };
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1:0",
        "--max-connections",
        &max_connections.to_string(),
        "--max-rooms",
        &max_rooms.to_string(),
        "--max-users-per-room",
        &max_users.to_string(),
        "--rate",
        &rate.to_string(),
        "--burst",
        &burst.to_string(),
        "--workers",
        &common.server_workers.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(common.server_arg.iter().cloned());
    ChildServer::spawn("collab-server", &bin, &args, common.server_cpu).map(Server::Child)
}

fn start_relay(common: &Common) -> Result<ChildServer, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let args: Vec<String> = [
        "relay",
        "--bind",
        "127.0.0.1:0",
        "--exit-on-stdin-eof",
        "--workers",
        &common.server_workers.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ChildServer::spawn("relay", &exe, &args, common.server_cpu)
}

fn collab_endpoint(server: &Server, common: &Common) -> Endpoint {
    Endpoint::Collab {
        url: format!("ws://{}{}", server.addr(), collab_protocol::WS_PATH),
        token: common.token.clone(),
    }
}

fn relay_endpoint(relay: &ChildServer) -> Endpoint {
    Endpoint::Relay {
        base: format!("ws://{}{RELAY_PATH}", relay.addr),
    }
}

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

async fn load(args: LoadArgs) -> Result<(), String> {
    let common = &args.common;
    let spec = Spec {
        rooms: args.rooms as usize,
        users: args.users as usize,
        rate: args.rate.clamp(0.01, 100_000.0),
        warmup: secs(args.warmup, "--warmup")?,
        duration: secs(args.duration, "--duration")?.max(Duration::from_millis(100)),
        drain: Duration::from_secs(3),
        tag: "load".into(),
        connect_concurrency: 64,
        label: "collab".into(),
        progress: !common.quiet,
        typing: args.typing,
    };
    let server = start_collab(
        common,
        &Sizing {
            connections: spec.rooms * spec.users,
            rooms: spec.rooms,
            users: spec.users,
            rate: spec.rate,
        },
    )?;
    let collab = run_phase(&collab_endpoint(&server, common), &spec, server.pid()).await?;
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        let spec = Spec {
            label: "relay".into(),
            ..spec.clone()
        };
        let out = run_phase(&relay_endpoint(&relay), &spec, Some(relay.pid)).await?;
        Some(out)
    };
    if common.json {
        let j = json!({
            "mode": "load",
            "machine": machine_json(common),
            "server": server.describe(),
            "collab": outcome_json(&collab),
            "relay": baseline.as_ref().map(outcome_json),
            "ratio": ratio(&collab, baseline.as_ref()),
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
        print_machine(common, &server);
        println!();
        print_outcomes(&collab, baseline.as_ref());
        print_load_targets(&collab, baseline.as_ref());
    }
    drop(server);
    Ok(())
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

fn us(v: f64) -> String {
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
    let rows: [Row; 18] = [
        ("keystroke latency p50", |o| us(o.latency_us(0.5))),
        ("keystroke latency p99", |o| us(o.latency_us(0.99))),
        ("keystroke latency p99.9", |o| us(o.latency_us(0.999))),
        ("keystroke latency max", |o| {
            us(o.latency.max() as f64 / 1000.0)
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

async fn idle(args: IdleArgs) -> Result<(), String> {
    let common = &args.common;
    let k = args.connections as usize;
    let upr = args.users_per_room as usize;
    let my_limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    if (my_limit as usize) < k + 64 {
        return Err(format!(
            "the open-files limit is {my_limit}, too low for {k} connections: raise it (ulimit -n)"
        ));
    }
    let spec = IdleSpec {
        connections: k,
        users_per_room: upr,
        concurrency: args.concurrency.clamp(1, 1024),
        settle: Duration::from_secs(1),
        hold: secs(args.hold, "--hold")?,
        setup_limit: Duration::from_secs(180),
        tag: "idle".into(),
        label: "collab idle".into(),
        progress: !common.quiet,
    };
    let server = start_collab(
        common,
        &Sizing {
            connections: k,
            rooms: k.div_ceil(upr),
            users: upr,
            rate: 1.0,
        },
    )?;
    if let Some(pid) = server.pid()
        && let Some(limit) = target::nofile_soft_limit(pid)
        && (limit as usize) < k + 64
    {
        eprintln!(
            "collab-bench: the server's open-files soft limit is {limit}: it cannot hold {k} connections"
        );
    }
    // Let a freshly started server settle before reading "empty".
    tokio::time::sleep(Duration::from_millis(300)).await;
    let collab = run_idle(&collab_endpoint(&server, common), &spec, server.pid()).await;
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let spec = IdleSpec {
            label: "relay idle".into(),
            ..spec.clone()
        };
        Some(run_idle(&relay_endpoint(&relay), &spec, Some(relay.pid)).await)
    };
    if common.json {
        let j = json!({
            "mode": "idle",
            "machine": machine_json(common),
            "server": server.describe(),
            "collab": idle_json(&collab),
            "relay": baseline.as_ref().map(idle_json),
        });
        println!("{j}");
    } else {
        println!("collab-bench idle: {k} connections, {upr} per room");
        print_machine(common, &server);
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
        match &baseline {
            Some(r) => {
                println!(
                    "{:<28} {:>22}   {:>22}",
                    "", "collab-server", "relay (baseline)"
                );
                for (name, f) in rows {
                    println!("{name:<28} {:>22}   {:>22}", f(&collab), f(r));
                }
            }
            None => {
                println!("{:<28} {:>22}", "", "collab-server");
                for (name, f) in rows {
                    println!("{name:<28} {:>22}", f(&collab));
                }
            }
        }
        println!();
        println!("targets:");
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
    Ok(())
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

struct Step {
    rate: f64,
    outcome: Outcome,
    ok: bool,
}

fn step_ok(o: &Outcome, limit_us: f64) -> bool {
    o.latency_us(0.99) <= limit_us
        && o.errors.total() == 0
        && o.sends_per_sec() >= 0.9 * o.offered_sends_per_sec()
}

async fn ramp_one(
    endpoint: &Endpoint,
    pid: Option<u32>,
    args: &RampArgs,
    label: &str,
) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rate = args.start_rate.clamp(0.01, args.max_rate);
    let mut past_knee = 0;
    for i in 0..args.max_steps.clamp(1, 64) {
        let spec = Spec {
            rooms: args.rooms as usize,
            users: args.users as usize,
            rate,
            warmup: Duration::from_secs(1),
            duration: secs(args.step_secs, "--step-secs")?.max(Duration::from_millis(200)),
            drain: Duration::from_secs(2),
            tag: format!("ramp{i}"),
            connect_concurrency: 64,
            label: format!("{label} {rate:.0}/s"),
            progress: !args.common.quiet,
            typing: args.typing,
        };
        let outcome = run_phase(endpoint, &spec, pid).await?;
        let ok = step_ok(&outcome, args.p99_limit_us);
        if !args.common.quiet {
            eprintln!(
                "[{label}] rate {rate:.0}/s per user: p99 {} sends/s {:.0} deliveries/s {:.0} errors {} -> {}",
                us(outcome.latency_us(0.99)),
                outcome.sends_per_sec(),
                outcome.deliveries_per_sec(),
                outcome.errors.describe(),
                if ok { "ok" } else { "broken" }
            );
        }
        steps.push(Step { rate, outcome, ok });
        if !ok {
            past_knee += 1;
            if past_knee > args.overload_steps {
                break;
            }
        }
        if rate >= args.max_rate {
            break;
        }
        rate = (rate * args.factor.max(1.05)).min(args.max_rate);
    }
    Ok(steps)
}

fn knee(steps: &[Step]) -> Option<&Step> {
    steps.iter().take_while(|s| s.ok).last()
}

async fn ramp(args: RampArgs) -> Result<(), String> {
    let common = &args.common;
    let server = start_collab(
        common,
        &Sizing {
            connections: (args.rooms * args.users) as usize,
            rooms: args.rooms as usize,
            users: args.users as usize,
            rate: args.max_rate,
        },
    )?;
    let collab = ramp_one(
        &collab_endpoint(&server, common),
        server.pid(),
        &args,
        "collab",
    )
    .await?;
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        Some(ramp_one(&relay_endpoint(&relay), Some(relay.pid), &args, "relay").await?)
    };
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
            "collab": { "knee_rate": knee(&collab).map(|s| s.rate), "steps": steps_json(&collab) },
            "relay": baseline.as_ref().map(|b| json!({ "knee_rate": knee(b).map(|s| s.rate), "steps": steps_json(b) })),
        });
        println!("{j}");
        return Ok(());
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
    print_machine(common, &server);
    for (name, steps) in [
        ("collab-server", Some(&collab)),
        ("relay (baseline)", baseline.as_ref()),
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
    Ok(())
}

// ---------------------------------------------------------------- relay

fn run_relay(args: RelayArgs) -> Result<(), String> {
    if !args.bind.ip().is_loopback() {
        return Err("the relay listens on loopback only (127.0.0.1 or ::1)".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        println!("collab-bench relay listening on ws://{addr}{RELAY_PATH}");
        let stdin_eof = async {
            if args.exit_on_stdin_eof {
                use tokio::io::AsyncReadExt;
                let mut stdin = tokio::io::stdin();
                let mut buf = [0u8; 64];
                while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
            } else {
                std::future::pending::<()>().await;
            }
        };
        let stop = async {
            tokio::select! {
                () = stdin_eof => {}
                _ = tokio::signal::ctrl_c() => {}
                () = terminate() => {}
                () = tokio::time::sleep(Duration::from_secs(args.max_secs)) => {}
            }
        };
        relay::run(listener, args.queue, stop).await;
        Ok::<(), String>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}
