//! Everything a server operator (or a test) can tune, with defaults sane
//! enough that `Config::default()` runs a small team's server as is.
//!
//! Fields are public so tests and the embedding client can tweak intervals
//! and limits with struct update syntax; the binary maps each field to a
//! flag and a `COLLAB_*` environment variable.

use std::time::Duration;

use collab_protocol::Limits;
use collab_protocol::workspace::WorkspaceLimits;

pub use crate::store::{Storage, StoreFault};

pub use crate::access::Secret;

/// Server settings. See each field for its default.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most simultaneous connections past their handshake (joined or
    /// not). Default 1024.
    pub max_connections: usize,
    /// Most rooms alive at once. Default 256.
    pub max_rooms: usize,
    /// Most members in one room. Default 32.
    pub max_users_per_room: usize,
    /// Largest incoming WebSocket frame/message, bytes. Default 1 MiB. A
    /// larger one gets `frame_too_large` and the connection closes: the
    /// stream cannot be resynchronised after an oversized frame header.
    pub max_frame_bytes: usize,
    /// Largest room document, bytes of UTF-8 text. Default 8 MiB.
    pub max_doc_bytes: usize,
    /// A workspace room's tree (protocol 2, docs/workspace.md): files and
    /// folders it may ever hold, deleted ones included (they stay in its
    /// history). Past it: `workspace_full`. Default 20,000.
    pub max_files: usize,
    /// A workspace room's documents together (its files' text and its
    /// tree's updates), bytes; each file is also within
    /// [`Config::max_doc_bytes`]. Past it: `workspace_full`. Default 256 MiB.
    pub max_workspace_bytes: usize,
    /// Loro operations one tree update may carry (a creation is 4). Past
    /// it: `bad_update`. Default 65,536.
    pub max_tree_ops_per_update: u64,
    /// Sustained events per second per connection. Default 200.
    pub messages_per_second: u32,
    /// Burst size of the per-connection rate limit. Default 400.
    pub burst: u32,
    /// A connection still over its rate after refusing this many events in
    /// one flood is removed. Default 1000.
    pub flood_max_refused: u32,
    /// A connection over its rate for this long without a pause of a second
    /// is removed. Default 5 s.
    pub flood_max_duration: Duration,
    /// Bytes per second one connection's messages may sustain (the inbound
    /// byte budget's refill, `byte_budget.rs`). Past its budget the server
    /// stops reading the connection until the budget refills: nothing is
    /// refused, the member's later messages arrive later (TCP
    /// backpressure). Default 1 MiB/s; at least 1 KiB/s.
    pub inbound_bytes_per_second: usize,
    /// The inbound byte budget's burst: bytes one connection may send at
    /// once before its reads are paced to
    /// [`Config::inbound_bytes_per_second`]. Default 1 MiB (one frame of
    /// the default largest size: a new connection gets a fresh burst, so a
    /// bigger one would let a member who reconnects for each paste skip
    /// the pacing); raised to at least [`Config::max_frame_bytes`], so the
    /// largest frame is always read at once.
    pub inbound_burst_bytes: usize,
    /// Events waiting to be written to one connection; when full, the
    /// connection is a slow consumer and is removed. Default 256.
    pub outbound_queue: usize,
    /// Bytes queued for one connection; past this it is a slow consumer
    /// too (one event always fits in an empty queue). Bounds the memory a
    /// stalled reader can hold. Default 4 MiB; raised to at least twice
    /// `max_frame_bytes`, so one relayed maximal update never removes a
    /// healthy member.
    pub outbound_queue_bytes: usize,
    /// How often the server pings each connection. A connection silent for
    /// two intervals is dropped. Default 15 s.
    pub ping_interval: Duration,
    /// The whole handshake (TLS, the HTTP request, the WebSocket
    /// upgrade) must finish within this from the accept, or the connection
    /// is closed. Default 5 s.
    pub handshake_timeout: Duration,
    /// Most connections in their handshake at once (they do not count
    /// against [`Config::max_connections`]); past it the oldest is closed
    /// to make room. Default 256.
    pub max_half_open: usize,
    /// Most connections in their handshake from one IP address; past it a
    /// new one is closed unanswered. Loopback is exempt unless
    /// [`Config::cap_loopback_per_ip`]. Default 8.
    pub max_half_open_per_ip: usize,
    /// The first `join` must arrive within this. Default 30 s.
    pub join_timeout: Duration,
    /// Compact a room's document after at least this many imported
    /// updates, so a long session's memory stays bounded; a large document,
    /// whose compaction costs more, waits proportionally longer (up to
    /// 100,000 imports). Default 1000.
    pub compact_every: usize,
    /// When set, `run` returns once no connection has existed for this long
    /// (for a server the editor starts in the background). Default `None`.
    pub idle_shutdown: Option<Duration>,
    /// When set, a join must carry this access token (`token`) or is
    /// refused with `unauthorized`. Default `None` (open server). Compared
    /// in constant time; `Debug` prints `<redacted>`.
    pub access_token: Option<Secret>,
    /// When set, a join carrying this token joins read-only: it sees the
    /// document, presence and chat, may chat and send presence, but its
    /// `update`s and `seed`s are refused with `read_only`. Default `None`.
    pub read_only_token: Option<Secret>,
    /// Most simultaneous connections from one IP address; more are refused
    /// with `server_full`. Default 64. Loopback addresses are exempt unless
    /// [`Config::cap_loopback_per_ip`]: a reverse proxy on the same host,
    /// local users and benchmarks all share one.
    pub max_connections_per_ip: usize,
    /// Apply [`Config::max_connections_per_ip`] to loopback addresses too
    /// (for tests, which have only loopback). Default `false`.
    pub cap_loopback_per_ip: bool,
    /// PEM certificate chain (leaf first): with [`Config::tls_key`], the
    /// server speaks TLS only (`wss://`, and `https://` for `/healthz` and
    /// `/metrics`). Default `None` (plain `ws://`).
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of [`Config::tls_cert`]. Default `None`.
    pub tls_key: Option<std::path::PathBuf>,
    /// How long `run` waits for connections to say goodbye at shutdown.
    /// Default 3 s.
    pub shutdown_grace: Duration,
    /// Where rooms are kept. Default [`Storage::Memory`] (nothing stored),
    /// so tests and embedding stay hermetic; the binary defaults to the
    /// platform's data directory. See `docs/storage.md`.
    pub storage: Storage,
    /// With storage, accepted updates reach disk within this window (one
    /// fsync'd transaction per window). Default 100 ms.
    pub flush_interval: Duration,
    /// With storage, a room nobody joined or edited for this long is
    /// deleted from the store. Default `None` (kept forever).
    pub room_ttl: Option<Duration>,
    /// With `Some`, this server is a node sharing rooms with others through
    /// Redis (docs/scale-out.md): it claims its node id at start, keeps it
    /// with a heartbeat, and is unhealthy while Redis is unreachable.
    /// Default `None`: a server on its own, as without the feature.
    #[cfg(feature = "cluster")]
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// Test hook: makes every store commit fail while set.
    #[doc(hidden)]
    pub store_fault: Option<StoreFault>,
    /// Test hook: reports the store's commits and loads.
    #[doc(hidden)]
    pub store_probe: Option<crate::probe::StoreProbe>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_rooms: 256,
            max_users_per_room: 32,
            max_frame_bytes: 1024 * 1024,
            max_doc_bytes: collab_doc::DEFAULT_MAX_DOC_BYTES,
            max_files: 20_000,
            max_workspace_bytes: 256 * 1024 * 1024,
            max_tree_ops_per_update: 65_536,
            messages_per_second: 200,
            burst: 400,
            flood_max_refused: 1000,
            flood_max_duration: Duration::from_secs(5),
            inbound_bytes_per_second: 1024 * 1024,
            inbound_burst_bytes: 1024 * 1024,
            outbound_queue: 256,
            outbound_queue_bytes: 4 * 1024 * 1024,
            ping_interval: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(5),
            max_half_open: 256,
            max_half_open_per_ip: 8,
            join_timeout: Duration::from_secs(30),
            compact_every: 1000,
            idle_shutdown: None,
            access_token: None,
            read_only_token: None,
            max_connections_per_ip: 64,
            cap_loopback_per_ip: false,
            tls_cert: None,
            tls_key: None,
            shutdown_grace: Duration::from_secs(3),
            storage: Storage::Memory,
            flush_interval: Duration::from_millis(100),
            room_ttl: None,
            #[cfg(feature = "cluster")]
            cluster: None,
            store_fault: None,
            store_probe: None,
        }
    }
}

impl Config {
    /// The limits announced to clients in the welcome.
    pub fn limits(&self) -> Limits {
        Limits {
            max_frame_bytes: self.max_frame_bytes,
            max_doc_bytes: self.max_doc_bytes,
            messages_per_second: self.messages_per_second,
            burst: self.burst,
        }
    }

    /// The workspace limits announced in a workspace room's welcome.
    pub fn workspace_limits(&self) -> WorkspaceLimits {
        WorkspaceLimits {
            max_files: self.max_files,
            max_workspace_bytes: self.max_workspace_bytes,
            max_tree_ops_per_update: self.max_tree_ops_per_update,
        }
    }

    /// The same settings with every zero that would wedge the server raised
    /// to the smallest working value, and durations capped at 30 days.
    pub(crate) fn sanitized(mut self) -> Self {
        self.max_connections = self.max_connections.max(1);
        self.max_connections_per_ip = self.max_connections_per_ip.max(1);
        self.max_half_open = self.max_half_open.max(1);
        self.max_half_open_per_ip = self.max_half_open_per_ip.max(1);
        self.max_rooms = self.max_rooms.max(1);
        self.max_users_per_room = self.max_users_per_room.max(1);
        self.max_frame_bytes = self.max_frame_bytes.max(1024);
        self.messages_per_second = self.messages_per_second.max(1);
        self.burst = self.burst.max(1);
        self.flood_max_refused = self.flood_max_refused.max(1);
        self.inbound_bytes_per_second = self.inbound_bytes_per_second.max(1024);
        self.inbound_burst_bytes = self.inbound_burst_bytes.max(self.max_frame_bytes);
        self.outbound_queue = self.outbound_queue.max(4);
        self.outbound_queue_bytes = self
            .outbound_queue_bytes
            .max(self.max_frame_bytes.saturating_mul(2));
        // Long enough for any use, short enough that `Instant + d` and
        // `d * 2` cannot overflow.
        let cap = Duration::from_secs(30 * 24 * 3600);
        self.ping_interval = self.ping_interval.clamp(Duration::from_millis(10), cap);
        self.handshake_timeout = self.handshake_timeout.clamp(Duration::from_millis(10), cap);
        self.join_timeout = self.join_timeout.min(cap);
        self.flood_max_duration = self.flood_max_duration.min(cap);
        self.shutdown_grace = self.shutdown_grace.min(cap);
        self.idle_shutdown = self.idle_shutdown.map(|d| d.min(cap));
        self.compact_every = self.compact_every.max(1);
        self.flush_interval = self
            .flush_interval
            .clamp(Duration::from_millis(1), Duration::from_secs(60));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_values_are_made_safe() {
        let c = Config {
            max_connections: 0,
            outbound_queue: 0,
            ping_interval: Duration::MAX,
            join_timeout: Duration::MAX,
            idle_shutdown: Some(Duration::MAX),
            ..Config::default()
        }
        .sanitized();
        assert_eq!(c.max_connections, 1);
        assert!(c.outbound_queue >= 1);
        // Would panic if not capped.
        let _ = std::time::Instant::now() + c.ping_interval * 2;
        let _ = std::time::Instant::now() + c.join_timeout;
        let _ = std::time::Instant::now() + c.idle_shutdown.unwrap_or_default();
    }
}
