//! Interference: what one room's heavy work, or one attacker's flood, does
//! to the keystroke latency of another, quiet room on the same server
//! (issue 13's "other rooms keep relaying within milliseconds").
//!
//! A disturbance runs on a thread of its own with its own runtime (the
//! bench's core, but not the quiet typists' task queue: a task of it that
//! reads a megabyte never delays a typist's task by a turn of the queue),
//! in bounded rounds until it is stopped:
//!
//! - `snapshot-bomb`: a member of a fresh room types a keystroke, then sends
//!   a compressed Loro snapshot of a big repetitive text as an `update`;
//!   the server must refuse it before importing it.
//! - `paste`: in a fresh room a member types a line while another, who has
//!   not seen it, pastes (1 MiB by default) in the parts collab-client
//!   would send: Loro's costly concurrent merge, on the server.
//! - `heavy-load`: a stored room with megabytes of history (made in a first
//!   phase, before the server restarts) joined over and over, each join
//!   after the room closed: each is a first joiner's load.
//! - `half-open`: a flood of connections from 127.0.0.2.. that never
//!   finish their HTTP request (`flood.rs`).
//!
//! Beside every disturbance (and in the quiet phase too, to compare) a
//! probe joins a fresh room every so often and times its welcome: whether
//! newcomers get in.

mod flood;
mod member;
mod payload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::load::{Endpoint, join, join_until, new_histogram};

pub use flood::{FloodCounters, FloodSpec};
pub use member::{Answers, Member};
pub use payload::{
    CLIENT_FRAME_BUDGET, PasteRound, PastingPair, TYPED_LINE, paste_text, snapshot_bomb,
};

/// What disturbs the quiet room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Disturb {
    /// A member sends a compressed Loro snapshot as an update (to be
    /// refused), in a fresh room, again and again.
    SnapshotBomb,
    /// A member pastes while another types a line it has not seen, in a
    /// fresh room, again and again.
    Paste,
    /// A stored room with megabytes of history loaded by its first joiner,
    /// again and again.
    HeavyLoad,
    /// Unfinished connections from other loopback addresses, held and
    /// reopened.
    HalfOpen,
}

impl Disturb {
    pub fn name(self) -> &'static str {
        match self {
            Disturb::SnapshotBomb => "snapshot-bomb",
            Disturb::Paste => "paste",
            Disturb::HeavyLoad => "heavy-load",
            Disturb::HalfOpen => "half-open",
        }
    }
}

/// The heavy room's name (made by [`prepare_heavy`]).
pub const HEAVY_ROOM: &str = "interfere-heavy";

/// What a disturbance sends, made before the measured phase.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Nothing: the quiet phase (its probe only).
    None,
    Bomb {
        keystroke: Vec<u8>,
        snapshot: Vec<u8>,
    },
    Paste(PasteRound),
    HeavyLoad,
    HalfOpen(FloodSpec),
}

/// How a disturbance runs.
#[derive(Debug, Clone)]
pub struct DisturbSpec {
    pub payload: Payload,
    /// At most this many rounds.
    pub max_rounds: u64,
    /// A round that takes longer is a failure (and the next starts).
    pub round_timeout: Duration,
    /// Between rounds.
    pub pause: Duration,
    /// A newcomer's probe join this often.
    pub probe_every: Duration,
    /// Room names start with this.
    pub tag: String,
}

/// What a disturbance (and its probe) saw.
#[derive(Debug, Clone)]
pub struct DisturbStats {
    /// Rounds completed.
    pub rounds: u64,
    /// Per round, µs: bomb: its send to its answer; paste: the first
    /// part's send to the last answer; heavy-load: join to welcome.
    pub round_us: Histogram<u64>,
    /// The heavy sends' answers: refusals by code.
    pub refused: BTreeMap<String, u64>,
    /// The heavy sends the server accepted (acked).
    pub accepted: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    /// The half-open flood's counters.
    pub flood: Option<FloodSummary>,
    /// Probe joins: connect to welcome, µs.
    pub probe_us: Histogram<u64>,
    pub probe_failed: u64,
    pub probe_first_failure: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct FloodSummary {
    pub opened: u64,
    pub connect_failed: u64,
    pub closed_by_server: u64,
    pub open_max: u64,
    pub bytes_dripped: u64,
}

impl DisturbStats {
    fn new() -> Self {
        Self {
            rounds: 0,
            round_us: new_histogram(),
            refused: BTreeMap::new(),
            accepted: 0,
            failures: 0,
            first_failure: None,
            flood: None,
            probe_us: new_histogram(),
            probe_failed: 0,
            probe_first_failure: None,
        }
    }

    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }
}

/// A disturbance running on its own thread.
pub struct Running {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<DisturbStats>,
}

impl Running {
    /// Stops it and waits for its thread (bounded: every await in it ends
    /// on the stop).
    pub async fn stop(self) -> Result<DisturbStats, String> {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.thread.is_finished() {
            if Instant::now() > deadline {
                return Err("the disturbance did not stop within 15 s".into());
            }
            sleep(Duration::from_millis(10)).await;
        }
        self.thread
            .join()
            .map_err(|_| "the disturbance thread panicked".to_string())
    }
}

/// Starts `spec` against the server at `endpoint` (`addr` for the flood).
pub fn start(endpoint: Endpoint, addr: SocketAddr, spec: DisturbSpec) -> Result<Running, String> {
    let (stop, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("disturbance".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt.block_on(run(endpoint, addr, spec, stop_rx)),
                Err(e) => {
                    let mut s = DisturbStats::new();
                    s.fail(format!("cannot start the runtime: {e}"));
                    s
                }
            }
        })
        .map_err(|e| format!("cannot start the disturbance thread: {e}"))?;
    Ok(Running { stop, thread })
}

async fn run(
    endpoint: Endpoint,
    addr: SocketAddr,
    spec: DisturbSpec,
    stop: watch::Receiver<bool>,
) -> DisturbStats {
    let stats = Arc::new(Mutex::new(DisturbStats::new()));
    let probe = probe(&endpoint, &spec, Arc::clone(&stats), stop.clone());
    let flood_counters = Arc::new(FloodCounters::default());
    let disturb = async {
        match &spec.payload {
            Payload::None => {}
            Payload::HalfOpen(f) => {
                flood::run(addr, f, Arc::clone(&flood_counters), stop.clone()).await;
            }
            _ => rounds(&endpoint, &spec, Arc::clone(&stats), stop.clone()).await,
        }
    };
    tokio::join!(probe, disturb);
    let mut out = stats.lock().clone();
    if matches!(spec.payload, Payload::HalfOpen(_)) {
        let c = &flood_counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        out.flood = Some(FloodSummary {
            opened: get(&c.opened),
            connect_failed: get(&c.connect_failed),
            closed_by_server: get(&c.closed_by_server),
            open_max: get(&c.open_max),
            bytes_dripped: get(&c.bytes_dripped),
        });
        out.rounds = out.flood.map_or(0, |f| f.opened);
    }
    out
}

fn with(stats: &Mutex<DisturbStats>, f: impl FnOnce(&mut DisturbStats)) {
    f(&mut stats.lock());
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A newcomer joins a fresh room every `probe_every`, until the stop.
async fn probe(
    endpoint: &Endpoint,
    spec: &DisturbSpec,
    stats: Arc<Mutex<DisturbStats>>,
    mut stop: watch::Receiver<bool>,
) {
    for k in 0..100_000u64 {
        tokio::select! {
            () = sleep(spec.probe_every) => {}
            _ = stop.changed() => return,
        }
        let room = format!("{}-probe-{k}", spec.tag);
        let t = Instant::now();
        let joined = tokio::select! {
            j = join(endpoint, &room, "newcomer") => j,
            _ = stop.changed() => return,
        };
        match joined {
            Ok((mut ws, _)) => {
                let us = micros(t);
                with(&stats, |s| {
                    let _ = s.probe_us.record(us);
                });
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            }
            Err(e) => with(&stats, |s| {
                s.probe_failed += 1;
                s.probe_first_failure.get_or_insert(e);
            }),
        }
    }
}

/// The disturbance's rounds, one after another, until the stop or
/// `max_rounds`.
async fn rounds(
    endpoint: &Endpoint,
    spec: &DisturbSpec,
    stats: Arc<Mutex<DisturbStats>>,
    mut stop: watch::Receiver<bool>,
) {
    for k in 0..spec.max_rounds {
        let deadline = Instant::now() + spec.round_timeout;
        let round = one_round(endpoint, spec, k, deadline, &stats);
        let done = tokio::select! {
            r = round => r,
            _ = stop.changed() => return,
        };
        match done {
            Ok(()) => with(&stats, |s| s.rounds += 1),
            Err(e) => with(&stats, |s| s.fail(e)),
        }
        tokio::select! {
            () = sleep(spec.pause) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn one_round(
    endpoint: &Endpoint,
    spec: &DisturbSpec,
    k: u64,
    deadline: Instant,
    stats: &Mutex<DisturbStats>,
) -> Result<(), String> {
    match &spec.payload {
        Payload::Bomb {
            keystroke,
            snapshot,
        } => {
            let room = format!("{}-bomb-{k}", spec.tag);
            let mut m = Member::join(endpoint, &room, "bomber").await?;
            m.send_update(keystroke, deadline).await?;
            let t = Instant::now();
            let bomb = m.send_update(snapshot, deadline).await?;
            m.await_answers(bomb, deadline).await?;
            let us = micros(t);
            let answer = m.answers.refused(bomb).map(str::to_string);
            with(stats, |s| {
                let _ = s.round_us.record(us);
                match answer {
                    Some(code) => *s.refused.entry(code).or_insert(0) += 1,
                    None => s.accepted += 1,
                }
            });
            m.close(deadline).await;
            Ok(())
        }
        Payload::Paste(round) => {
            let room = format!("{}-paste-{k}", spec.tag);
            let mut typist = Member::join(endpoint, &room, "typist").await?;
            let mut paster = Member::join(endpoint, &room, "paster").await?;
            for key in &round.keystrokes {
                typist.send_update(key, deadline).await?;
            }
            let t = Instant::now();
            let mut first = None;
            for part in &round.paste_parts {
                let seq = paster.send_update(part, deadline).await?;
                first.get_or_insert(seq);
            }
            paster.await_answers(paster.seq, deadline).await?;
            typist.await_answers(typist.seq, deadline).await?;
            let us = micros(t);
            let answers: Vec<Option<String>> = (first.unwrap_or(1)..=paster.seq)
                .map(|s| paster.answers.refused(s).map(str::to_string))
                .collect();
            with(stats, |s| {
                let _ = s.round_us.record(us);
                for a in answers {
                    match a {
                        Some(code) => *s.refused.entry(code).or_insert(0) += 1,
                        None => s.accepted += 1,
                    }
                }
            });
            paster.close(deadline).await;
            typist.close(deadline).await;
            Ok(())
        }
        Payload::HeavyLoad => {
            let t = Instant::now();
            // One joiner at a time, waiting as long as the load takes (a
            // joiner that gave up and came back would start a second load
            // of the same room beside the first).
            let (mut ws, _) =
                join_until(endpoint, HEAVY_ROOM, &format!("joiner{k}"), deadline).await?;
            let us = micros(t);
            with(stats, |s| {
                let _ = s.round_us.record(us);
                s.accepted += 1;
            });
            let _ = tokio::time::timeout_at(deadline, ws.close(None)).await;
            // Drain to the server's close, so the room is gone (and the next
            // join loads it again) before the next round.
            let _ = tokio::time::timeout_at(deadline, async {
                use futures::StreamExt;
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            Ok(())
        }
        Payload::None | Payload::HalfOpen(_) => Ok(()),
    }
}

/// What [`prepare_heavy`] stored.
#[derive(Debug, Clone, Copy)]
pub struct HeavyRoom {
    /// Bytes of text in the room.
    pub text_bytes: usize,
    /// Updates the server accepted.
    pub updates: u64,
    pub secs: f64,
}

/// Makes [`HEAVY_ROOM`]: `pastes` rounds of a line typed by one member and
/// a paste of `paste_bytes` by another who has not seen it (so the history
/// interleaves, as [`Payload::Paste`]'s). Every update must be accepted.
pub async fn prepare_heavy(
    endpoint: &Endpoint,
    pastes: usize,
    paste_bytes: usize,
    frame_budget: usize,
    limit: Duration,
) -> Result<HeavyRoom, String> {
    let started = Instant::now();
    let deadline = started + limit;
    let mut typist = Member::join(endpoint, HEAVY_ROOM, "typist").await?;
    let mut paster = Member::join(endpoint, HEAVY_ROOM, "paster").await?;
    let mut pair = PastingPair::new();
    for _ in 0..pastes {
        let round = pair.next_round(paste_bytes, frame_budget)?;
        for key in &round.keystrokes {
            typist.send_update(key, deadline).await?;
        }
        for part in &round.paste_parts {
            paster.send_update(part, deadline).await?;
        }
        paster.await_answers(paster.seq, deadline).await?;
        typist.await_answers(typist.seq, deadline).await?;
    }
    let mut updates = 0;
    for m in [&typist, &paster] {
        for (seq, a) in &m.answers.by_seq {
            match a {
                None => updates += 1,
                Some(code) => {
                    return Err(format!(
                        "preparing the heavy room: update {seq} refused: {code}"
                    ));
                }
            }
        }
    }
    paster.close(deadline).await;
    typist.close(deadline).await;
    Ok(HeavyRoom {
        text_bytes: pastes * (paste_bytes + TYPED_LINE.len()),
        updates,
        secs: started.elapsed().as_secs_f64(),
    })
}
