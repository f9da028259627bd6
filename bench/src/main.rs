//! `collab-bench`: the load generator that ships with collab, like
//! redis-benchmark. See `collab-bench --help` and BENCHMARKS.md.

mod cmd;
mod report;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use cmd::{idle::idle, interfere::interfere, load::load, ramp::ramp, relay::run_relay};
use collab_bench::interfere::Disturb;
use collab_bench::load::Typing;

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
    latency breaks (`ramp`);
  * a quiet room's latency while another room or a flood disturbs the
    server (`interfere`: a snapshot bomb, a concurrent paste, a heavy
    stored room's load, half-open connections), beside its quiet value.

By default it starts collab-server itself (the binary next to this one, as
built by `cargo build --release -p collab-bench -p collab-server`), on
127.0.0.1 with a free port. On a machine with two or more cores, pin the
server (with taskset) and the bench (sched_setaffinity) to different cores
for stable figures:

  collab-bench load --server-cpu 0 --client-cpu 1
  collab-bench idle --connections 10000 --server-cpu 0 --client-cpu 1
  collab-bench ramp --server-cpu 0 --client-cpu 1
  collab-bench interfere --disturb paste --server-cpu 0 --client-cpu 1

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
    /// per connection, in rooms of 2, 4 and 20 (and the relay's, as a
    /// baseline).
    Idle(IdleArgs),
    /// Raise the per-user rate step by step until p99 latency passes a
    /// threshold; report the knee and how latency and memory behave past
    /// it.
    Ramp(RampArgs),
    /// A quiet room's keystroke latency alone, then while a disturbance
    /// runs against the same server (another room's snapshot bomb,
    /// concurrent paste or heavy stored load, or a half-open flood), with
    /// the ratios, the server's RSS and newcomers' join times.
    Interfere(InterfereArgs),
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
    /// one (loopback only), e.g. ws://127.0.0.1:7878/ws. Given several
    /// times (nodes sharing rooms through Redis), `load` spreads each
    /// room's members over `--spread` of them.
    #[arg(long, value_name = "URL", conflicts_with_all = ["server_bin", "in_process"])]
    url: Vec<String>,

    /// With several `--url`s: how many nodes each room's members are
    /// spread over (room r's member u joins node (r + u mod SPREAD) mod
    /// the nodes), so a room lives on SPREAD nodes.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "url")]
    spread: usize,

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
    /// Members per room: one run per size, each against a fresh server
    /// (comma-separated). The first is the headline, that the targets and
    /// the relay's baseline use: pair editing, the common case.
    #[arg(long, default_value = "2,4,20", value_delimiter = ',', num_args = 1.., value_parser = clap::value_parser!(u32).range(1..=1000))]
    users_per_room: Vec<u32>,
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
struct InterfereArgs {
    /// What disturbs the quiet room.
    #[arg(long, value_enum)]
    disturb: Disturb,
    /// Typists of the quiet room (they type in turns).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=64))]
    users: u32,
    /// Edits per second per typist of the quiet room.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds measured in each phase (quiet, then disturbed), at most 600.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of typing before each phase's measurement.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// snapshot-bomb: KiB of text in the snapshot (sent compressed).
    #[arg(long, default_value_t = 4096)]
    bomb_text_kib: usize,
    /// paste: KiB pasted each round, cut into the parts collab-client sends
    /// under the default 1 MiB frame limit.
    #[arg(long, default_value_t = 1024)]
    paste_kib: usize,
    /// heavy-load: pastes in the stored room's history...
    #[arg(long, default_value_t = 10)]
    heavy_pastes: usize,
    /// ...of this many KiB each.
    #[arg(long, default_value_t = 280)]
    heavy_paste_kib: usize,
    /// half-open: connections held at once.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=4096))]
    half_open: u64,
    /// half-open: client addresses, 127.0.0.2 onwards.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=250))]
    half_open_addresses: u64,
    /// At most this many rounds of the disturbance (bombs, pastes, loads).
    #[arg(long, default_value_t = 1000)]
    max_rounds: u64,
    /// A newcomer joins a fresh room this often (ms), in both phases.
    #[arg(long, default_value_t = 250)]
    probe_every_ms: u64,
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
        Command::Interfere(args) => {
            with_runtime(&args.common.clone(), |rt| rt.block_on(interfere(args)))
        }
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
