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

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use collab_doc::SharedDoc;
use collab_protocol::{ClientMsg, Join, PROTOCOL_VERSION, ServerMsg};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use loro::{ExportMode, LoroDoc, LoroText};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::{pace, procfs};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connect, a join or one send may take before it is an error.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server speaks to the bench.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// collab-server at `ws://ADDR/ws`.
    Collab { url: String, token: Option<String> },
    /// The bare relay at `ws://ADDR/relay/ROOM`: senders send frames
    /// already shaped like collab's `update` event (`from` = sender index),
    /// so readers parse the same JSON either way.
    Relay { base: String },
}

impl Endpoint {
    pub fn is_relay(&self) -> bool {
        matches!(self, Endpoint::Relay { .. })
    }
}

/// The bench's own sockets. Frames are ~150 bytes: tungstenite zeroes up
/// to `read_buffer_size` of its buffer before every read (also the one that
/// finds nothing), so 16 KiB cost the generator a 16 KiB memset per read
/// (~5% of its CPU); 4 KiB holds any burst it gets.
fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Opens a WebSocket (`TCP_NODELAY`), within [`IO_TIMEOUT`].
pub async fn connect(url: &str) -> Result<Ws, String> {
    let connecting =
        tokio_tungstenite::connect_async_with_config(url, Some(client_ws_config()), true);
    match timeout(IO_TIMEOUT, connecting).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("connect: {e}")),
        Err(_) => Err("connect: timed out".into()),
    }
}

/// Connects and joins `room` as `user`; returns the socket and, for
/// collab, my member id (the relay has none).
pub async fn join(endpoint: &Endpoint, room: &str, user: &str) -> Result<(Ws, u64), String> {
    match endpoint {
        Endpoint::Collab { url, token } => {
            let mut ws = connect(url).await?;
            let join = ClientMsg::Join(Join {
                protocol: PROTOCOL_VERSION,
                room: room.to_string(),
                user: user.to_string(),
                session: None,
                token: token.clone(),
                version: None,
            });
            timeout(IO_TIMEOUT, ws.send(Message::text(join.to_json())))
                .await
                .map_err(|_| "join: send timed out".to_string())?
                .map_err(|e| format!("join: {e}"))?;
            let deadline = Instant::now() + IO_TIMEOUT;
            loop {
                let frame = tokio::time::timeout_at(deadline, ws.next())
                    .await
                    .map_err(|_| "join: no welcome".to_string())?;
                match frame {
                    Some(Ok(Message::Text(t))) => match ServerMsg::from_json(&t) {
                        Ok(ServerMsg::Welcome(w)) => return Ok((ws, w.you.id)),
                        Ok(ServerMsg::Error { code, .. }) => {
                            return Err(format!("join refused: {code}"));
                        }
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(format!("join: {e}")),
                    None => return Err("join: closed".into()),
                }
            }
        }
        Endpoint::Relay { base } => {
            let mut ws = connect(&format!("{base}{room}")).await?;
            let frame = timeout(IO_TIMEOUT, ws.next())
                .await
                .map_err(|_| "relay: no ready".to_string())?;
            match frame {
                Some(Ok(Message::Text(t))) if t.as_str() == "ready" => Ok((ws, 0)),
                other => Err(format!("relay: expected ready, got {other:?}")),
            }
        }
    }
}

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

fn hash_bytes(data: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// The keystroke rule of a typist: mostly inserts the next character of
/// some code at the caret, every eighth keystroke a backspace, now and
/// then the caret jumps. The caret is a plain index, clamped to the text,
/// as a naive client keeps it.
struct Caret {
    pos: usize,
    n: u64,
    rng: u64,
}

/// One keystroke's edit of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    /// Delete the character at this position (a backspace).
    Delete(usize),
    /// Insert this text at this position.
    Insert(usize, &'static str),
}

const TYPED: &str =
    "fn main() {\n    let greeting = \"hello, world\";\n    println!(\"{greeting}\");\n}\n";

impl Caret {
    fn new(seed: u64) -> Self {
        Self {
            pos: 0,
            n: seed % 97,
            rng: seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407)
                | 1,
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next keystroke on a text of `len` chars.
    fn next_edit(&mut self, len: usize) -> Edit {
        self.n += 1;
        if self.n.is_multiple_of(64) && len > 0 {
            self.pos = (self.next_random() % (len as u64 + 1)) as usize;
        }
        self.pos = self.pos.min(len);
        if self.n.is_multiple_of(8) && self.pos > 0 {
            self.pos -= 1;
            Edit::Delete(self.pos)
        } else {
            let i = (self.n as usize) % TYPED.len();
            self.pos += 1;
            Edit::Insert(self.pos - 1, &TYPED[i..=i])
        }
    }
}

/// A typist with a replica of its own (`--typing concurrent` and
/// `independent`). Like a real client it merges what it receives into its
/// replica (concurrent), so its next update builds on everything it has
/// seen, and the bench pays Loro's merge as clients do.
struct Typist {
    doc: SharedDoc,
    caret: Caret,
}

impl Typist {
    fn new(seed: u64) -> Self {
        Self {
            doc: SharedDoc::new(),
            caret: Caret::new(seed),
        }
    }

    /// Merges a received update into my replica.
    fn receive(&mut self, data: &[u8]) -> bool {
        self.doc.import(data).is_ok()
    }

    /// One keystroke; the Loro update it makes.
    fn keystroke(&mut self) -> Vec<u8> {
        let edited = match self.caret.next_edit(self.doc.len_chars()) {
            Edit::Delete(pos) => self.doc.splice(pos, 1, ""),
            Edit::Insert(pos, s) => self.doc.splice(pos, 0, s),
        };
        if edited.is_err() {
            self.caret.pos = self.doc.len_chars();
        }
        self.doc.take_local_update().unwrap_or_default()
    }
}

/// The typists of one room in `--typing turns`: ONE Loro document they
/// all type into, each keystroke under the typing user's own peer id.
///
/// In turns a user types only once it has received every update sent in
/// its room, so its replica would hold exactly this document: the update
/// a keystroke exports here (only the new change, with its causal
/// dependencies on everyone's changes) is the one that replica would send.
/// Sharing the document spares the bench a replica per user and three
/// imports per keystroke, which were most of its CPU.
struct RoomTyping {
    doc: LoroDoc,
    text: LoroText,
    /// Per user of the room: its stable Loro peer id, and its caret.
    users: Vec<(u64, Caret)>,
}

/// The `i`th of a series of distinct Loro peer ids (splitmix64, a
/// bijection, so distinct `i` give distinct ids).
fn peer_id_of(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    // u64::MAX is not a valid peer id.
    (z ^ (z >> 31)).min(u64::MAX - 1)
}

impl RoomTyping {
    /// The typing doc of the room whose users are `first..first + users`
    /// (indices in the phase, which seed their carets). Peer ids are
    /// random per doc, as fresh replicas' are, so a second run into the
    /// same rooms of a server (`--url`) never reuses history ids.
    fn new(first: usize, users: usize) -> Self {
        let doc = LoroDoc::new();
        let text = doc.get_text(collab_doc::TEXT_CONTAINER);
        let base = doc.peer_id();
        let users = (0..users)
            .map(|slot| {
                (
                    peer_id_of(base.wrapping_add(slot as u64)),
                    Caret::new((first + slot) as u64 + 1),
                )
            })
            .collect();
        Self { doc, text, users }
    }

    /// One keystroke of the room's user `slot` (0-based in the room); the
    /// Loro update it makes (empty if it changed nothing).
    fn keystroke(&mut self, slot: usize) -> Vec<u8> {
        let Some((peer, caret)) = self.users.get_mut(slot) else {
            return Vec::new();
        };
        if self.doc.set_peer_id(*peer).is_err() {
            return Vec::new();
        }
        let before = self.doc.oplog_vv();
        let edited = match caret.next_edit(self.text.len_unicode()) {
            Edit::Delete(pos) => self.text.delete(pos, 1),
            Edit::Insert(pos, s) => self.text.insert(pos, s),
        };
        self.doc.commit();
        if edited.is_err() {
            caret.pos = self.text.len_unicode();
        }
        if self.doc.oplog_vv() == before {
            return Vec::new();
        }
        self.doc
            .export(ExportMode::updates(&before))
            .unwrap_or_default()
    }
}

/// What a user's writer types with.
enum Keyboard {
    /// Turns: the room's typing doc, and my place in the room.
    Room(Arc<Mutex<RoomTyping>>, usize),
    /// Concurrent, independent: my own replica (my reader merges into it).
    Replica(Arc<Mutex<Typist>>),
}

impl Keyboard {
    /// One keystroke; `None` if the lock is poisoned.
    fn keystroke(&self) -> Option<Vec<u8>> {
        match self {
            Keyboard::Room(room, slot) => room.lock().ok().map(|mut r| r.keystroke(*slot)),
            Keyboard::Replica(typist) => typist.lock().ok().map(|mut t| t.keystroke()),
        }
    }
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
        if let Ok(mut e) = self.errors.lock() {
            f(&mut e);
        }
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
        let endpoint = endpoint.clone();
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
                    let p99 = shared
                        .latency
                        .lock()
                        .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
                        .unwrap_or(0.0);
                    let errs = shared.errors.lock().map(|e| e.total()).unwrap_or(0);
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
    let mut errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    errors.lost = (sent_total * (spec.users as u64 - 1)).saturating_sub(delivered_total);
    if !shared.relay {
        errors.unacked = sent_total.saturating_sub(acked);
    }
    let latency = shared
        .latency
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| new_histogram());
    let ack = shared
        .ack
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| new_histogram());
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
        pacing: shared
            .pacing
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| new_histogram()),
        gaps: shared
            .gaps
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| new_histogram()),
        ticks_skipped: shared.ticks_skipped.load(Ordering::Relaxed)
            + pacer.as_ref().map_or(0, |p| p.dropped),
        pacer_cpu: pacer.as_ref().and_then(|p| p.cpu_secs),
        pacer_wake: pacer.map_or_else(new_histogram, |p| p.wake),
        spec: spec.clone(),
    })
}

async fn writer(
    shared: Arc<Shared>,
    keyboard: Keyboard,
    mut sink: SplitSink<Ws, Message>,
    me: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut seq = 0u64;
    let room = me / shared.users_per_room;
    let (Some(room_sent), Some(turn), Some(tick)) = (
        shared.room_sent.get(room),
        shared.turns.get(me),
        shared.ticks.get(me),
    ) else {
        return;
    };
    let my_sent = shared.sent.get(me);
    loop {
        tokio::select! {
            () = tick.wake.notified() => {}
            _ = stop.changed() => break,
        }
        // Take the tick: from now on the pacer may give me the next one.
        let scheduled = match tick.scheduled.swap(NO_TICK, Ordering::AcqRel) {
            NO_TICK => continue,
            at => shared.t0 + Duration::from_nanos(at),
        };
        if Instant::now() >= shared.end {
            // Sending is over; wait for the stop to close.
            let _ = stop.changed().await;
            break;
        }
        let mut waited = false;
        if shared.typing == Typing::Turns {
            // Wait (bounded by the stop) until I have received every
            // update sent in my room. Nothing awaits between this check
            // and the keystroke (one thread), so the room's typing doc
            // then holds exactly what I have: my edit builds on it.
            while turn.seen.load(Ordering::Relaxed) < room_sent.load(Ordering::Relaxed) {
                waited = true;
                tokio::select! {
                    () = turn.ready.notified() => {}
                    _ = stop.changed() => return,
                }
            }
            if waited {
                shared.waits.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(data) = keyboard.keystroke() else {
            break;
        };
        if data.is_empty() {
            continue;
        }
        room_sent.fetch_add(1, Ordering::Relaxed);
        turn.seen.fetch_add(1, Ordering::Relaxed);
        seq += 1;
        let hash = hash_bytes(&data);
        let t = Instant::now();
        if let Some(list) = my_sent
            && let Ok(mut list) = list.lock()
        {
            list.push((t, hash));
        }
        let text = if shared.relay {
            ServerMsg::Update {
                from: me as u64,
                data: data.into(),
            }
            .to_json()
        } else {
            ClientMsg::Update {
                seq,
                data: data.into(),
            }
            .to_json()
        };
        shared.sent_total.fetch_add(1, Ordering::Relaxed);
        if shared.in_window(t) {
            shared.sent_window.fetch_add(1, Ordering::Relaxed);
            if !waited && let Ok(mut h) = shared.pacing.lock() {
                let late = t.saturating_duration_since(scheduled);
                let _ = h.record(late.as_nanos() as u64);
            }
            if let Ok(mut last) = shared.last_send.lock() {
                if let Some(l) = *last
                    && let Ok(mut h) = shared.gaps.lock()
                {
                    let _ = h.record(t.saturating_duration_since(l).as_nanos().max(1) as u64);
                }
                *last = Some(t);
            }
        }
        match timeout(IO_TIMEOUT, sink.send(Message::text(text))).await {
            Ok(Ok(())) => {}
            _ => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.send_failed += 1);
                }
                return;
            }
        }
    }
    let _ = timeout(Duration::from_secs(1), sink.close()).await;
}

/// `replica`: my replica, when I merge what I receive (concurrent).
async fn reader(
    shared: Arc<Shared>,
    replica: Option<Arc<Mutex<Typist>>>,
    mut stream: SplitStream<Ws>,
    me: usize,
    by_member: Arc<HashMap<u64, usize>>,
) {
    let users = shared.users_per_room;
    let room = me / users;
    // How many updates I have had from each member of my room, by place.
    let mut counts = vec![0usize; users];
    let (Some(room_sent), Some(turn)) = (shared.room_sent.get(room), shared.turns.get(me)) else {
        return;
    };
    loop {
        let frame = match stream.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.closed += 1);
                }
                return;
            }
            Some(Ok(_)) => continue,
        };
        let msg = match ServerMsg::from_json(&frame) {
            Ok(m) => m,
            Err(_) => {
                shared.error(|e| e.unexpected += 1);
                continue;
            }
        };
        let now = Instant::now();
        match msg {
            ServerMsg::Update { from, data } => {
                let sender = if shared.relay {
                    Some(from as usize)
                } else {
                    by_member.get(&from).copied()
                };
                let Some(sender) = sender.filter(|s| s / users == room && *s != me) else {
                    shared.error(|e| e.unexpected += 1);
                    continue;
                };
                let Some(n) = counts.get_mut(sender % users) else {
                    continue;
                };
                let entry = shared
                    .sent
                    .get(sender)
                    .and_then(|l| l.lock().ok().and_then(|l| l.get(*n).copied()));
                *n += 1;
                match entry {
                    Some((t, hash)) if hash == hash_bytes(data.as_slice()) => {
                        shared.delivered_total.fetch_add(1, Ordering::Relaxed);
                        if shared.in_window(now) {
                            shared.delivered_window.fetch_add(1, Ordering::Relaxed);
                        }
                        if shared.in_window(t)
                            && let Ok(mut h) = shared.latency.lock()
                        {
                            let _ = h.record(now.saturating_duration_since(t).as_nanos() as u64);
                        }
                    }
                    Some(_) => shared.error(|e| e.mismatch += 1),
                    None => shared.error(|e| e.unexpected += 1),
                }
                match (&replica, shared.typing) {
                    (Some(typist), _) => {
                        if !typist.lock().is_ok_and(|mut t| t.receive(data.as_slice())) {
                            shared.error(|e| e.import += 1);
                        }
                    }
                    (None, Typing::Turns) => {
                        // Nothing to merge: the room's typing doc has it.
                        // Wake my writer once I have everything sent.
                        let seen = turn.seen.fetch_add(1, Ordering::Relaxed) + 1;
                        if seen >= room_sent.load(Ordering::Relaxed) {
                            turn.ready.notify_one();
                        }
                    }
                    (None, _) => {}
                }
            }
            ServerMsg::Ack { seq } => {
                // Acks come in order: the nth ack is for my nth send.
                let entry = shared.sent.get(me).and_then(|l| {
                    l.lock()
                        .ok()
                        .and_then(|l| l.get((seq as usize).wrapping_sub(1)).copied())
                });
                shared.acked_total.fetch_add(1, Ordering::Relaxed);
                if let Some((t, _)) = entry
                    && shared.in_window(t)
                    && let Ok(mut h) = shared.ack.lock()
                {
                    let _ = h.record(now.saturating_duration_since(t).as_nanos() as u64);
                }
            }
            ServerMsg::Error { code, .. } => {
                shared.error(|e| *e.server.entry(code.to_string()).or_insert(0) += 1);
            }
            ServerMsg::Shutdown { .. } => {
                if !shared.stopping.load(Ordering::Relaxed) {
                    shared.error(|e| e.closed += 1);
                }
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_typist_makes_small_real_updates() {
        let mut t = Typist::new(1);
        let mut replica = SharedDoc::new();
        for _ in 0..500 {
            let u = t.keystroke();
            assert!(!u.is_empty());
            assert!(u.len() < 200, "{} bytes", u.len());
            assert!(replica.import(&u).is_ok_and(|new| new));
        }
        assert_eq!(replica.text(), t.doc.text());
    }

    /// The room's typing doc sends what replicas that merged everything
    /// would: each update imports, in order, into a fresh replica that has
    /// all the earlier ones (its causal dependencies are there), brings
    /// something new, carries one change of its typist's own peer, and
    /// the replica ends with the room doc's text.
    #[test]
    fn a_room_typing_doc_makes_updates_a_replica_merges_in_order() {
        let users = 4;
        let mut room = RoomTyping::new(8, users);
        let mut replica = SharedDoc::new();
        let mut peers = std::collections::BTreeSet::new();
        for k in 0..2000 {
            // In turn, and now and then one user twice in a row.
            let slot = if k % 7 == 3 {
                (k - 1) % users
            } else {
                k % users
            };
            let u = room.keystroke(slot);
            assert!(!u.is_empty(), "keystroke {k}");
            assert!(u.len() < 200, "{} bytes", u.len());
            let meta = LoroDoc::decode_import_blob_meta(&u, true).unwrap();
            assert_eq!(meta.change_num, 1, "keystroke {k}: only the new change");
            let in_update: Vec<u64> = meta.partial_end_vv.keys().copied().collect();
            assert_eq!(in_update, vec![room.users[slot].0], "keystroke {k}");
            peers.insert(in_update[0]);
            assert_eq!(replica.import(&u), Ok(true), "keystroke {k}");
        }
        assert_eq!(peers.len(), users);
        assert_eq!(replica.text(), room.text.to_string());
        assert!(replica.len_chars() > 1000);
    }

    /// Four real replicas typing in turn, each merging the others' updates
    /// (what turns did before the room doc), type the same text with
    /// updates of the same sizes as the room doc.
    #[test]
    fn a_room_typing_doc_types_like_replicas_that_merge_everything() {
        let mut replicas: Vec<Typist> = (1..=4).map(Typist::new).collect();
        let mut room = RoomTyping::new(0, 4);
        for k in 0..400 {
            let slot = k % 4;
            let expected = replicas[slot].keystroke();
            for (j, other) in replicas.iter_mut().enumerate() {
                if j != slot {
                    assert!(other.receive(&expected));
                }
            }
            assert_eq!(room.keystroke(slot).len(), expected.len(), "keystroke {k}");
        }
        assert_eq!(room.text.to_string(), replicas[0].doc.text());
    }

    #[test]
    fn peer_ids_are_distinct_and_valid() {
        let ids: std::collections::BTreeSet<u64> = (0..100_000).map(peer_id_of).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(!ids.contains(&u64::MAX));
    }
}
