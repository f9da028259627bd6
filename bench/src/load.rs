//! The load generator: rooms of users typing real Loro updates at a fixed
//! rate, and the keystroke latency from one member's send to each other
//! member's receipt.
//!
//! Nothing is embedded in the document to measure it. Every sender keeps
//! the time and a hash of each update it sends, in order. The server
//! relays each member's updates in order (FIFO per sender), so the `n`th
//! update a receiver gets `from` a sender is that sender's `n`th send; the
//! hash of the bytes confirms the match (a mismatch is an error).
//!
//! Each user is two tasks on the bench's runtime: a writer that types on a
//! fixed schedule (open loop: a late tick is skipped, not queued, and the
//! achieved rate is reported) and a reader that always drains, so the
//! server never waits for the bench. The schedule is kept by one pacer
//! thread ([`crate::pace`]), to microseconds: tokio's 1 ms timer grid
//! would send in bursts.
//!
//! The parts: `load/socket.rs` connects and joins, `load/typist.rs` makes
//! the keystrokes' Loro updates, `load/user.rs` runs each user's writer and
//! reader; this file holds a phase's spec, its shared state and its
//! outcome.

mod socket;
mod typist;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use futures::StreamExt;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until, timeout};

use crate::{pace, procfs};

pub use socket::{Endpoint, IO_TIMEOUT, Ws, connect, join, join_until};
use typist::{Keyboard, RoomTyping, Typist};
use user::{reader, writer};

/// What one phase of load is.
#[derive(Debug, Clone)]
pub struct Spec {
    pub rooms: usize,
    pub users: usize,
    /// Edits per second per user.
    pub rate: f64,
    /// Load before the measurement window (not measured).
    pub warmup: Duration,
    /// The measurement window; sending stops at its end.
    pub duration: Duration,
    /// After the window, how long to wait for what is in flight.
    pub drain: Duration,
    /// Room names start with this (a fresh prefix gives fresh rooms).
    pub tag: String,
    /// Connections opened at once while setting up.
    pub connect_concurrency: usize,
    /// Label of the progress line.
    pub label: String,
    /// Print a progress line every second (stderr).
    pub progress: bool,
    /// How the typists of a room relate to each other's edits.
    pub typing: Typing,
}

/// How the typists of a room relate to each other's edits. Every mode
/// sends real Loro updates from one Loro peer per user; they differ in
/// the history the server has to merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Typing {
    /// Like people typing in turn, which is what rooms mostly see at low
    /// latency: a user types once every update sent in the room has
    /// reached it (a tick that finds an update still in flight waits for
    /// it; those waits are counted). The history stays linear, so the
    /// figures are the relay path and a linear import, never Loro's
    /// concurrent merge. The typists of a room share one Loro document
    /// (each under its own peer id), so the bench merges nothing itself.
    Turns,
    /// Typists type on their tick whatever has arrived: under load their
    /// edits become concurrent, and Loro's merge of concurrent edits
    /// (which replays history back to the last version everyone shared)
    /// joins the cost, on the server and in the bench.
    Concurrent,
    /// Typists never merge what they receive (offline for the whole
    /// run): every edit is concurrent with all others. The worst case.
    Independent,
}

/// Errors of a phase, by kind.
#[derive(Debug, Clone, Default)]
pub struct Errors {
    pub connect: u64,
    pub join: u64,
    /// `error` events from the server, by code.
    pub server: BTreeMap<String, u64>,
    /// Connections closed by the server during the phase.
    pub closed: u64,
    /// A received update whose bytes differ from the sender's send.
    pub mismatch: u64,
    /// An update from nobody we know, or more than the sender sent.
    pub unexpected: u64,
    pub send_failed: u64,
    /// Deliveries still missing after the drain.
    pub lost: u64,
    /// Acks still missing after the drain (collab only).
    pub unacked: u64,
    /// A received update my replica could not merge (concurrent).
    pub import: u64,
}

/// Ticks that waited for an update in flight before typing (turns).
pub type Waits = u64;

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect
            + self.join
            + self.server.values().sum::<u64>()
            + self.closed
            + self.mismatch
            + self.unexpected
            + self.send_failed
            + self.lost
            + self.unacked
            + self.import
    }

    pub fn describe(&self) -> String {
        if self.total() == 0 {
            return "0".into();
        }
        let mut parts = Vec::new();
        for (name, n) in [
            ("connect", self.connect),
            ("join", self.join),
            ("closed", self.closed),
            ("mismatch", self.mismatch),
            ("unexpected", self.unexpected),
            ("send_failed", self.send_failed),
            ("lost", self.lost),
            ("unacked", self.unacked),
            ("import", self.import),
        ] {
            if n > 0 {
                parts.push(format!("{name} {n}"));
            }
        }
        for (code, n) in &self.server {
            parts.push(format!("server {code} {n}"));
        }
        format!("{} ({})", self.total(), parts.join(", "))
    }
}

/// What a phase measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Send to receipt, ns, of updates sent in the window.
    pub latency: Histogram<u64>,
    /// Send to ack, ns (collab only).
    pub ack: Histogram<u64>,
    /// The window's real length.
    pub window: Duration,
    /// Updates sent in the window.
    pub sent: u64,
    /// Updates received by members in the window.
    pub delivered: u64,
    pub sent_total: u64,
    pub delivered_total: u64,
    /// Server CPU seconds in the window.
    pub server_cpu: Option<f64>,
    /// This process's CPU seconds in the window.
    pub client_cpu: Option<f64>,
    pub rss_start_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub rss_max_kib: Option<u64>,
    pub errors: Errors,
    /// Turns: keystrokes that waited for an update in flight.
    pub waits: Waits,
    /// Send time minus scheduled time, ns, of sends in the window that
    /// did not wait a turn: how well the bench kept its schedule.
    pub pacing: Histogram<u64>,
    /// The pacer thread's wake-up minus the send time, ns (window).
    pub pacer_wake: Histogram<u64>,
    /// The pacer thread's CPU seconds in the window (part of
    /// `client_cpu`).
    pub pacer_cpu: Option<f64>,
    /// Ticks skipped because they came late: the writer had not yet taken
    /// its previous one, or the pacer was more than a period behind.
    pub ticks_skipped: u64,
    /// Time between consecutive sends (any users), ns (window).
    pub gaps: Histogram<u64>,
    pub spec: Spec,
}

impl Outcome {
    pub fn deliveries_per_sec(&self) -> f64 {
        self.delivered as f64 / self.window.as_secs_f64().max(1e-9)
    }
    pub fn sends_per_sec(&self) -> f64 {
        self.sent as f64 / self.window.as_secs_f64().max(1e-9)
    }
    pub fn offered_sends_per_sec(&self) -> f64 {
        self.spec.rate * (self.spec.rooms * self.spec.users) as f64
    }
    /// Server CPU seconds per 100,000 deliveries.
    pub fn cpu_per_100k(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.delivered > 0).then(|| cpu * 100_000.0 / self.delivered as f64)
    }
    /// Deliveries per server CPU-second.
    pub fn deliveries_per_cpu_sec(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (cpu > 0.0).then(|| self.delivered as f64 / cpu)
    }
    /// A latency quantile in µs.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
    pub fn ack_us(&self, q: f64) -> f64 {
        self.ack.value_at_quantile(q) as f64 / 1000.0
    }
    /// A quantile of send time minus scheduled time, in µs.
    pub fn pacing_us(&self, q: f64) -> f64 {
        self.pacing.value_at_quantile(q) as f64 / 1000.0
    }
    /// The share of sends less than 50 µs after the previous send (of
    /// anyone): bursts. Evenly paced at 4,000 sends/s, ~0.
    pub fn bunched(&self) -> f64 {
        self.gaps.count_between(0, 50_000) as f64 / self.gaps.len().max(1) as f64
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 ns to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000_000, 3)
        .unwrap_or_else(|_| unreachable!("the bounds are valid"))
}

/// Turns: what a user has seen of its room (updates received plus updates
/// sent), and the signal that it may have seen everything.
#[derive(Default)]
struct Turn {
    seen: AtomicU64,
    ready: tokio::sync::Notify,
}

/// A user's tick, from the pacer thread to its writer.
struct Tick {
    /// The send time of the tick not yet taken (ns from `t0`), or
    /// [`NO_TICK`]. A tick that finds one still there is skipped, so a
    /// late tick is taken once, not queued.
    scheduled: AtomicU64,
    /// Wakes the writer (`notify_one` from the pacer thread).
    wake: tokio::sync::Notify,
}

const NO_TICK: u64 = u64::MAX;

impl Default for Tick {
    fn default() -> Self {
        Self {
            scheduled: AtomicU64::new(NO_TICK),
            wake: tokio::sync::Notify::new(),
        }
    }
}

struct Shared {
    relay: bool,
    users_per_room: usize,
    /// The schedule's origin.
    t0: Instant,
    start: Instant,
    end: Instant,
    /// Per user: (send time, hash of the update bytes), in send order.
    sent: Vec<Mutex<Vec<(Instant, u64)>>>,
    latency: Mutex<Histogram<u64>>,
    ack: Mutex<Histogram<u64>>,
    sent_window: AtomicU64,
    sent_total: AtomicU64,
    delivered_window: AtomicU64,
    delivered_total: AtomicU64,
    acked_total: AtomicU64,
    stopping: AtomicBool,
    typing: Typing,
    /// Updates sent per room (turns: who may type).
    room_sent: Vec<AtomicU64>,
    /// Per user (turns): what it has seen of its room.
    turns: Vec<Turn>,
    waits: AtomicU64,
    /// Per user: its tick.
    ticks: Vec<Tick>,
    ticks_skipped: AtomicU64,
    /// Send time minus scheduled time (window, no turn waited).
    pacing: Mutex<Histogram<u64>>,
    last_send: Mutex<Option<Instant>>,
    gaps: Mutex<Histogram<u64>>,
    errors: Mutex<Errors>,
}

/// Sets `stopping` when dropped: the pacer thread stops even if a phase
/// is abandoned before its end.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopping.store(true, Ordering::Relaxed);
    }
}

impl Shared {
    fn error(&self, f: impl FnOnce(&mut Errors)) {
        f(&mut self.errors.lock());
    }
    fn in_window(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }
}

/// Runs one phase: connect and join everyone, type for warm-up + window,
/// drain, close. `server_pid` is sampled for CPU and RSS.
pub async fn run_phase(
    endpoint: &Endpoint,
    spec: &Spec,
    server_pid: Option<u32>,
) -> Result<Outcome, String> {
    let n_users = spec.rooms * spec.users;
    let mut errors = Errors::default();

    // Set up: every user connected and joined before anyone types.
    let gate = Arc::new(Semaphore::new(spec.connect_concurrency.max(1)));
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..n_users {
        let endpoint = endpoint.placed(i / spec.users, i % spec.users);
        let room = format!("{}-{}", spec.tag, i / spec.users);
        let user = format!("u{}", i % spec.users);
        let gate = Arc::clone(&gate);
        joins.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, join(&endpoint, &room, &user).await)
        });
    }
    let mut sockets: Vec<Option<(Ws, u64)>> = (0..n_users).map(|_| None).collect();
    while let Some(joined) = joins.join_next().await {
        match joined {
            Ok((i, Ok(s))) => sockets[i] = Some(s),
            Ok((_, Err(e))) => {
                if e.starts_with("connect") {
                    errors.connect += 1;
                } else {
                    errors.join += 1;
                }
                if errors.connect + errors.join == 1 {
                    eprintln!("collab-bench: {e}");
                }
            }
            Err(_) => errors.join += 1,
        }
    }
    if errors.connect + errors.join > 0 {
        return Err(format!(
            "{} of {n_users} users could not connect and join ({})",
            errors.connect + errors.join,
            errors.describe()
        ));
    }

    // Member id -> user index, so a reader knows whose send it got.
    let mut by_member: HashMap<u64, usize> = HashMap::new();
    for (i, s) in sockets.iter().enumerate() {
        if let Some((_, id)) = s {
            by_member.insert(*id, i);
        }
    }
    let by_member = Arc::new(by_member);

    let t0 = Instant::now() + Duration::from_millis(50);
    let start = t0 + spec.warmup;
    let end = start + spec.duration;
    let shared = Arc::new(Shared {
        relay: endpoint.is_relay(),
        users_per_room: spec.users,
        t0,
        start,
        end,
        sent: (0..n_users).map(|_| Mutex::new(Vec::new())).collect(),
        latency: Mutex::new(new_histogram()),
        ack: Mutex::new(new_histogram()),
        sent_window: AtomicU64::new(0),
        sent_total: AtomicU64::new(0),
        delivered_window: AtomicU64::new(0),
        delivered_total: AtomicU64::new(0),
        acked_total: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        typing: spec.typing,
        room_sent: (0..spec.rooms).map(|_| AtomicU64::new(0)).collect(),
        turns: (0..n_users).map(|_| Turn::default()).collect(),
        waits: AtomicU64::new(0),
        ticks: (0..n_users).map(|_| Tick::default()).collect(),
        ticks_skipped: AtomicU64::new(0),
        pacing: Mutex::new(new_histogram()),
        last_send: Mutex::new(None),
        gaps: Mutex::new(new_histogram()),
        errors: Mutex::new(errors),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let period = Duration::from_secs_f64(1.0 / spec.rate.max(0.001));
    // The pacer: a thread of this process, spawned after it pinned itself
    // (so on the same core), that wakes each writer on its tick until the
    // end of sending, or the stop (set also if this phase is dropped).
    let _stop_pacer = StopOnDrop(Arc::clone(&shared));
    let schedule = pace::Schedule::new(t0.into_std(), period, spec.rooms, spec.users);
    let pacer = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || {
                pace::run(
                    &schedule,
                    shared.start.into_std(),
                    shared.end.into_std(),
                    &shared.stopping,
                    |user, at| {
                        let Some(tick) = shared.ticks.get(user) else {
                            return;
                        };
                        let free = tick.scheduled.compare_exchange(
                            NO_TICK,
                            at,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        );
                        if free.is_ok() {
                            tick.wake.notify_one();
                        } else {
                            shared.ticks_skipped.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                )
            })
            .map_err(|e| format!("cannot start the pacer thread: {e}"))?
    };
    let mut tasks = tokio::task::JoinSet::new();
    // Turns: one typing doc per room, shared by its typists.
    let rooms: Vec<Arc<Mutex<RoomTyping>>> = if spec.typing == Typing::Turns {
        (0..spec.rooms)
            .map(|r| Arc::new(Mutex::new(RoomTyping::new(r * spec.users, spec.users))))
            .collect()
    } else {
        Vec::new()
    };
    for (i, s) in sockets.into_iter().enumerate() {
        let Some((ws, _)) = s else { continue };
        let (sink, stream) = ws.split();
        let (keyboard, replica) = match rooms.get(i / spec.users) {
            Some(room) => (Keyboard::Room(Arc::clone(room), i % spec.users), None),
            None => {
                let typist = Arc::new(Mutex::new(Typist::new(i as u64 + 1)));
                let merges = spec.typing == Typing::Concurrent;
                (
                    Keyboard::Replica(Arc::clone(&typist)),
                    merges.then_some(typist),
                )
            }
        };
        tasks.spawn(writer(
            Arc::clone(&shared),
            keyboard,
            sink,
            i,
            stop_rx.clone(),
        ));
        tasks.spawn(reader(
            Arc::clone(&shared),
            replica,
            stream,
            i,
            Arc::clone(&by_member),
        ));
    }

    // Progress, and RSS samples, once a second until the window ends.
    let sampler = {
        let shared = Arc::clone(&shared);
        let label = spec.label.clone();
        let progress = spec.progress;
        let total = spec.warmup + spec.duration;
        async move {
            let mut max_rss = None::<u64>;
            let mut tick =
                tokio::time::interval_at(t0 + Duration::from_secs(1), Duration::from_secs(1));
            let mut last_cpu = server_pid.and_then(procfs::cpu_seconds);
            loop {
                let at = tick.tick().await;
                if at > end {
                    break;
                }
                let rss = server_pid.and_then(procfs::rss_kib);
                if let Some(r) = rss {
                    max_rss = Some(max_rss.map_or(r, |m| m.max(r)));
                }
                if progress {
                    let cpu = server_pid.and_then(procfs::cpu_seconds);
                    let cpu_pct = match (cpu, last_cpu) {
                        (Some(c), Some(l)) => format!("{:.0}%", (c - l) * 100.0),
                        _ => "-".into(),
                    };
                    last_cpu = cpu;
                    let p99 = shared.latency.lock().value_at_quantile(0.99) as f64 / 1000.0;
                    let errs = shared.errors.lock().total();
                    eprintln!(
                        "[{label}] {:>4.0}s/{:.0}s sent {} delivered {} p99 {p99:.0}µs server cpu {cpu_pct} rss {} errors {errs}",
                        (at - t0).as_secs_f64(),
                        total.as_secs_f64(),
                        shared.sent_total.load(Ordering::Relaxed),
                        shared.delivered_total.load(Ordering::Relaxed),
                        rss.map_or("-".into(), |r| format!("{:.1}MiB", r as f64 / 1024.0)),
                    );
                }
            }
            max_rss
        }
    };
    let sampler = tokio::spawn(sampler);

    // The window: CPU and RSS at both ends.
    sleep_until(start).await;
    let cpu0 = server_pid.and_then(procfs::cpu_seconds);
    let me = std::process::id();
    let my_cpu0 = procfs::cpu_seconds(me);
    let rss_start = server_pid.and_then(procfs::rss_kib);
    sleep_until(end).await;
    let cpu1 = server_pid.and_then(procfs::cpu_seconds);
    let my_cpu1 = procfs::cpu_seconds(me);
    let rss_end = server_pid.and_then(procfs::rss_kib);
    // Deliveries and sends are counted in [start, end): exactly the window.
    let window = spec.duration;

    // Drain: wait for what is in flight, bounded.
    let drain_deadline = Instant::now() + spec.drain;
    loop {
        let sent = shared.sent_total.load(Ordering::Relaxed);
        let expected = sent * (spec.users as u64 - 1);
        let done = shared.delivered_total.load(Ordering::Relaxed) >= expected
            && (shared.relay || shared.acked_total.load(Ordering::Relaxed) >= sent);
        if done || Instant::now() >= drain_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shared.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // Writers close their sockets; readers end on the close. Bounded.
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if timeout(Duration::from_secs(5), all_done).await.is_err() {
        tasks.abort_all();
    }
    let max_rss = sampler.await.ok().flatten();
    // The pacer ended at the end of sending (or on the stop, within
    // 10 ms); wait for it without blocking the runtime, bounded.
    let pacer_deadline = Instant::now() + Duration::from_secs(2);
    while !pacer.is_finished() && Instant::now() < pacer_deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pacer = if pacer.is_finished() {
        pacer.join().ok()
    } else {
        None
    };

    let sent_total = shared.sent_total.load(Ordering::Relaxed);
    let delivered_total = shared.delivered_total.load(Ordering::Relaxed);
    let acked = shared.acked_total.load(Ordering::Relaxed);
    let mut errors = shared.errors.lock().clone();
    errors.lost = (sent_total * (spec.users as u64 - 1)).saturating_sub(delivered_total);
    if !shared.relay {
        errors.unacked = sent_total.saturating_sub(acked);
    }
    let latency = shared.latency.lock().clone();
    let ack = shared.ack.lock().clone();
    let rss_max_kib = [max_rss, rss_start, rss_end].into_iter().flatten().max();
    Ok(Outcome {
        latency,
        ack,
        window,
        sent: shared.sent_window.load(Ordering::Relaxed),
        delivered: shared.delivered_window.load(Ordering::Relaxed),
        sent_total,
        delivered_total,
        server_cpu: cpu0.zip(cpu1).map(|(a, b)| (b - a).max(0.0)),
        client_cpu: my_cpu0.zip(my_cpu1).map(|(a, b)| (b - a).max(0.0)),
        rss_start_kib: rss_start,
        rss_end_kib: rss_end,
        rss_max_kib,
        errors,
        waits: shared.waits.load(Ordering::Relaxed),
        pacing: shared.pacing.lock().clone(),
        gaps: shared.gaps.lock().clone(),
        ticks_skipped: shared.ticks_skipped.load(Ordering::Relaxed)
            + pacer.as_ref().map_or(0, |p| p.dropped),
        pacer_cpu: pacer.as_ref().and_then(|p| p.cpu_secs),
        pacer_wake: pacer.map_or_else(new_histogram, |p| p.wake),
        spec: spec.clone(),
    })
}
