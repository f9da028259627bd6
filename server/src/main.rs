//! `collab-server`: parses flags (each with a `COLLAB_*` variable), starts
//! logging, binds, prints the address, and runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use collab_server::Storage;
use collab_server::{Config, Secret};
use tracing_subscriber::EnvFilter;

/// The collab room server: rooms, members, chat and each room's merged
/// document, over WebSockets at ws://ADDR/ws.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the address is
    /// printed on stdout).
    #[arg(long, env = "COLLAB_BIND", default_value = "127.0.0.1:7878")]
    bind: SocketAddr,

    /// Most simultaneous connections past their handshake; more are
    /// refused with server_full.
    #[arg(long, env = "COLLAB_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,

    /// The whole handshake (TLS, HTTP request, WebSocket upgrade) must
    /// finish within this from the accept, or the connection is closed.
    #[arg(long, env = "COLLAB_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    handshake_timeout: Duration,

    /// Most connections still in their handshake (not counted in
    /// --max-connections); past it the oldest from the address holding the
    /// most is closed.
    #[arg(long, env = "COLLAB_MAX_HALF_OPEN", default_value_t = 256)]
    max_half_open: usize,

    /// Most connections still in their handshake from one IP address; past
    /// it new ones are closed unanswered. Loopback is exempt unless
    /// --cap-loopback-per-ip.
    #[arg(long, env = "COLLAB_MAX_HALF_OPEN_PER_IP", default_value_t = 8)]
    max_half_open_per_ip: usize,

    /// Most rooms alive at once; joins to new rooms past it get server_full.
    #[arg(long, env = "COLLAB_MAX_ROOMS", default_value_t = 256)]
    max_rooms: usize,

    /// Most members in one room; more get room_full.
    #[arg(long, env = "COLLAB_MAX_USERS_PER_ROOM", default_value_t = 32)]
    max_users_per_room: usize,

    /// Largest incoming WebSocket message, bytes; larger ones get
    /// frame_too_large and the connection closes.
    #[arg(long, env = "COLLAB_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    max_frame_bytes: usize,

    /// Largest room document, bytes of UTF-8 text; edits past it get
    /// doc_too_large and are not applied.
    #[arg(long, env = "COLLAB_MAX_DOC_BYTES", default_value_t = 8 * 1024 * 1024)]
    max_doc_bytes: usize,

    /// Workspace rooms (a shared folder): files and folders one room's tree
    /// may ever hold, deleted ones included (workspace_full past it).
    #[arg(long, env = "COLLAB_MAX_FILES", default_value_t = 20_000)]
    max_files: usize,

    /// Workspace rooms: bytes of all of one room's documents together (its
    /// files' text and its tree); each file is also within
    /// --max-doc-bytes (workspace_full past it).
    #[arg(long, env = "COLLAB_MAX_WORKSPACE_BYTES", default_value_t = 256 * 1024 * 1024)]
    max_workspace_bytes: usize,

    /// Workspace rooms: operations one tree update may carry (a file's
    /// creation is 4; bad_update past it).
    #[arg(long, env = "COLLAB_MAX_TREE_OPS_PER_UPDATE", default_value_t = 65_536)]
    max_tree_ops_per_update: u64,

    /// Sustained events per second allowed per connection (rate_limited
    /// past it).
    #[arg(long, env = "COLLAB_RATE", default_value_t = 200)]
    rate: u32,

    /// Burst size of the per-connection rate limit.
    #[arg(long, env = "COLLAB_BURST", default_value_t = 400)]
    burst: u32,

    /// A connection that keeps flooding after this many refused events is
    /// removed.
    #[arg(long, env = "COLLAB_FLOOD_MAX_REFUSED", default_value_t = 1000)]
    flood_max_refused: u32,

    /// A connection over its rate for this long (no one-second pause) is
    /// removed. Duration: 5s, 500ms, 2m or plain seconds.
    #[arg(long, env = "COLLAB_FLOOD_MAX_DURATION", default_value = "5s", value_parser = parse_duration)]
    flood_max_duration: Duration,

    /// Bytes per second one connection may send, sustained (its inbound
    /// byte budget). Past its budget the server reads that connection more
    /// slowly: nothing is refused, its acks come later.
    #[arg(long, env = "COLLAB_INBOUND_BYTES_PER_SECOND", default_value_t = 1024 * 1024)]
    inbound_bytes_per_second: usize,

    /// Bytes one connection may send at once before its reads are paced
    /// to --inbound-bytes-per-second. At least --max-frame-bytes.
    #[arg(long, env = "COLLAB_INBOUND_BURST_BYTES", default_value_t = 1024 * 1024)]
    inbound_burst_bytes: usize,

    /// Events queued for one connection; a client that falls this far
    /// behind is disconnected (slow_consumer) and resyncs on reconnect.
    #[arg(long, env = "COLLAB_OUTBOUND_QUEUE", default_value_t = 256)]
    outbound_queue: usize,

    /// Bytes queued for one connection; a client that falls this far behind
    /// is disconnected too. Bounds the memory a stalled reader holds. At
    /// least twice --max-frame-bytes.
    #[arg(long, env = "COLLAB_OUTBOUND_QUEUE_BYTES", default_value_t = 4 * 1024 * 1024)]
    outbound_queue_bytes: usize,

    /// How often each connection is pinged; silent for two intervals, it is
    /// dropped.
    #[arg(long, env = "COLLAB_PING_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    ping_interval: Duration,

    /// A connection must send its join within this.
    #[arg(long, env = "COLLAB_JOIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    join_timeout: Duration,

    /// Compact a room's document after this many imported updates.
    #[arg(long, env = "COLLAB_COMPACT_EVERY", default_value_t = 1000)]
    compact_every: usize,

    /// Exit once no connection has existed for this long (for a server
    /// started in the background by the editor). Off by default.
    #[arg(long, env = "COLLAB_IDLE_SHUTDOWN", value_parser = parse_duration)]
    idle_shutdown: Option<Duration>,

    /// Access token clients must present (their --token); without it the
    /// server is open to anyone who can reach it.
    #[arg(long, env = "COLLAB_TOKEN", hide_env_values = true)]
    token: Option<Secret>,

    /// Token for viewers: a join with it sees the document, presence and
    /// chat, and may chat, but its edits are refused (read_only).
    #[arg(long, env = "COLLAB_READ_ONLY_TOKEN", hide_env_values = true)]
    read_only_token: Option<Secret>,

    /// Most simultaneous connections from one IP address; more are refused
    /// with server_full. Loopback (a proxy on this host) is exempt unless
    /// --cap-loopback-per-ip.
    #[arg(long, env = "COLLAB_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,

    /// Apply the per-address caps to loopback addresses too (when no
    /// reverse proxy on this host forwards everyone from 127.0.0.1).
    #[arg(long, env = "COLLAB_CAP_LOOPBACK_PER_IP")]
    cap_loopback_per_ip: bool,

    /// PEM certificate chain (leaf first): serve wss:// (and https:// for
    /// /healthz and /metrics) instead of ws://. Needs --tls-key.
    #[arg(
        long,
        env = "COLLAB_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "COLLAB_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    tls_key: Option<std::path::PathBuf>,

    /// Where rooms are stored (created if missing). Default: the
    /// platform's data directory, e.g. ~/.local/share/collab.
    #[arg(long, env = "COLLAB_DATA_DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,

    /// Keep nothing on disk: rooms live only while the server runs.
    #[arg(long, env = "COLLAB_MEMORY")]
    memory: bool,

    /// Accepted edits reach disk within this window (one fsync per
    /// window).
    #[arg(long, env = "COLLAB_FLUSH_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    flush_interval: Duration,

    /// Delete a stored room nobody joined or edited for this long (30d,
    /// 12h...). Default: keep rooms forever.
    #[arg(long, env = "COLLAB_ROOM_TTL", value_parser = humantime::parse_duration)]
    room_ttl: Option<Duration>,

    /// Share rooms with other nodes through this Redis, e.g.
    /// redis://HOST:6379/0 (docs/scale-out.md). Needs --node-id. Run Redis
    /// with appendonly yes.
    #[cfg(feature = "cluster")]
    #[arg(
        long,
        env = "COLLAB_REDIS",
        requires = "node_id",
        value_name = "URL",
        hide_env_values = true
    )]
    redis: Option<collab_server::RedisUrl>,

    /// This node's name among the nodes sharing --redis: unique, 1 to 64
    /// letters, digits, '-', '_' or '.'.
    #[cfg(feature = "cluster")]
    #[arg(long, env = "COLLAB_NODE_ID", requires = "redis", value_name = "NAME")]
    node_id: Option<collab_server::NodeId>,

    /// With --redis: a member of a node that stopped answering leaves the
    /// room's list this long after its node last refreshed it (so does
    /// the node's claim on its id).
    #[cfg(feature = "cluster")]
    #[arg(long, env = "COLLAB_MEMBER_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    member_ttl: Duration,

    /// Log format: human (default) or json. Filter with RUST_LOG (default
    /// "warn,collab_server=info,collab_doc=info,collab_protocol=info");
    /// WebSocket payloads are never logged, even at trace.
    #[arg(long, env = "COLLAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// Runtime worker threads (CPU work is document merging).
    #[arg(long, env = "COLLAB_WORKERS", default_value_t = 2)]
    workers: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// `500ms`, `15s`, `2m`, or a plain number of seconds (`1.5`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 500ms, 15s or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: the unit must be ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

impl Cli {
    /// Where rooms go: --memory, --data-dir, or the platform default.
    fn storage(&self) -> Result<Storage, String> {
        if self.memory {
            return Ok(Storage::Memory);
        }
        // A node keeps its rooms in Redis (docs/scale-out.md), never in a
        // data directory: one set by the environment (the container image
        // sets COLLAB_DATA_DIR) is not used.
        #[cfg(feature = "cluster")]
        if self.redis.is_some() {
            return Ok(Storage::Memory);
        }
        match self.data_dir.clone().or_else(Storage::default_dir) {
            Some(dir) => Ok(Storage::Dir(dir)),
            None => Err(
                "this platform has no data directory for the room store; pass --data-dir DIR, or --memory to keep nothing".into(),
            ),
        }
    }

    fn config(&self) -> Config {
        Config {
            max_connections: self.max_connections,
            max_rooms: self.max_rooms,
            max_users_per_room: self.max_users_per_room,
            max_frame_bytes: self.max_frame_bytes,
            max_doc_bytes: self.max_doc_bytes,
            max_files: self.max_files,
            max_workspace_bytes: self.max_workspace_bytes,
            max_tree_ops_per_update: self.max_tree_ops_per_update,
            messages_per_second: self.rate,
            burst: self.burst,
            flood_max_refused: self.flood_max_refused,
            flood_max_duration: self.flood_max_duration,
            inbound_bytes_per_second: self.inbound_bytes_per_second,
            inbound_burst_bytes: self.inbound_burst_bytes,
            outbound_queue: self.outbound_queue,
            outbound_queue_bytes: self.outbound_queue_bytes,
            ping_interval: self.ping_interval,
            join_timeout: self.join_timeout,
            compact_every: self.compact_every,
            idle_shutdown: self.idle_shutdown,
            access_token: self.token.clone().filter(|t| !t.expose().is_empty()),
            read_only_token: self
                .read_only_token
                .clone()
                .filter(|t| !t.expose().is_empty()),
            max_connections_per_ip: self.max_connections_per_ip,
            cap_loopback_per_ip: self.cap_loopback_per_ip,
            handshake_timeout: self.handshake_timeout,
            max_half_open: self.max_half_open,
            max_half_open_per_ip: self.max_half_open_per_ip,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            #[cfg(feature = "cluster")]
            cluster: self.cluster(),
            ..Config::default()
        }
    }

    /// --redis with --node-id (clap makes each require the other).
    #[cfg(feature = "cluster")]
    fn cluster(&self) -> Option<collab_server::ClusterConfig> {
        match (&self.redis, &self.node_id) {
            (Some(redis), Some(node)) => {
                let mut c = collab_server::ClusterConfig::new(redis.clone(), node.clone());
                c.member_ttl = self.member_ttl.max(Duration::from_millis(30));
                Some(c)
            }
            _ => None,
        }
    }
}

/// The filter when `RUST_LOG` is unset: the server's own events from
/// `info`, its dependencies' from `warn` only (Loro logs every import at
/// `info`: it was most of the log).
const DEFAULT_LOG: &str = "warn,collab_server=info,collab_doc=info,collab_protocol=info";

/// Dependencies whose `trace` events print whole WebSocket messages:
/// joins with their tokens and session ids, welcomes, document text.
const PAYLOAD_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

/// True for an event that may carry a message's payload. Such events are
/// dropped whatever `RUST_LOG` says: no secret reaches the log at any level.
fn carries_payload(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::TRACE
        && PAYLOAD_LOGGERS.iter().any(|crate_name| {
            meta.target()
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::prelude::*;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let no_payloads = tracing_subscriber::filter::filter_fn(|meta| !carries_payload(meta));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(no_payloads);
    match format {
        LogFormat::Human => registry.with(fmt).init(),
        LogFormat::Json => registry.with(fmt.json()).init(),
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: the address line tells
/// scripts the server is up, and a SIGTERM right after it must shut down
/// gracefully rather than kill the process. Call inside the runtime.
fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Raises the open-files soft limit to the hard limit: each connection is a
/// file descriptor, and the usual soft limit of 1024 would refuse
/// connections long before `--max-connections`. Warns when even the hard
/// limit is below it.
fn raise_open_files_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            // Listener, store, logs and a margin besides the connections.
            let wanted = u64::try_from(max_connections)
                .unwrap_or(u64::MAX)
                .saturating_add(64);
            if limit < wanted {
                tracing::warn!(
                    open_files = limit,
                    max_connections,
                    "the open-files limit is below --max-connections; raise it (ulimit -n, LimitNOFILE=) or lower --max-connections"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

/// Panics go to the log as one error event (JSON with --log-format json)
/// rather than raw text on stderr. The store catches those a damaged file
/// trips inside its database library and refuses the rooms concerned; the
/// event says where it happened.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("?");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(thread, at, backtrace = %backtrace, "panic: {what}");
        } else {
            tracing::error!(thread, at, "panic: {what}");
        }
    }));
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    log_panics();
    raise_open_files_limit(cli.max_connections);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.workers.max(1))
        // Rooms' long CRDT work (pastes, compaction, snapshots for the
        // store and rejoiners, stored rooms' decoding) runs on the blocking
        // pool, one task per room at a time (room/document.rs): with 2
        // threads, two heavy rooms held up every other room's. Idle
        // threads exit after tokio's 10 s keep-alive.
        .max_blocking_threads(16)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("collab-server: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let stop = signal();
        let listener = tokio::net::TcpListener::bind(cli.bind).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", cli.bind))
        })?;
        let mut config = cli.config();
        config.storage = cli.storage().map_err(std::io::Error::other)?;
        config.flush_interval = cli.flush_interval;
        config.room_ttl = cli.room_ttl;
        let scheme = if cli.tls_cert.is_some() { "wss" } else { "ws" };
        // The one line on stdout: scripts and tests read the address here,
        // and take it to mean "up", so it comes once the store is open.
        let ready = |addr| {
            println!(
                "collab-server listening on {scheme}://{addr}{}",
                collab_protocol::WS_PATH
            );
        };
        collab_server::run_with_ready(listener, config, stop, ready).await
    });
    // Do not wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collab-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn payload_loggers_are_recognised_by_crate() {
        use tracing::Level;
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Nowhere;
        impl tracing::Callsite for Nowhere {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!()
            }
        }
        static CS: Nowhere = Nowhere;
        let meta = |target: &'static str, level: Level| {
            tracing::Metadata::new(
                "e",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&CS)),
                Kind::EVENT,
            )
        };
        assert!(carries_payload(&meta(
            "tungstenite::protocol",
            Level::TRACE
        )));
        assert!(carries_payload(&meta("tokio_tungstenite", Level::TRACE)));
        assert!(!carries_payload(&meta(
            "tungstenite::protocol",
            Level::DEBUG
        )));
        assert!(!carries_payload(&meta("tungstenite_extra", Level::TRACE)));
        assert!(!carries_payload(&meta("collab_server::room", Level::TRACE)));
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn storage_flags_parse() {
        let cli = Cli::try_parse_from([
            "collab-server",
            "--data-dir",
            "/srv/collab",
            "--room-ttl",
            "30d",
            "--flush-interval",
            "250ms",
        ])
        .unwrap();
        assert_eq!(cli.storage(), Ok(Storage::Dir("/srv/collab".into())));
        assert_eq!(cli.room_ttl, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(cli.flush_interval, Duration::from_millis(250));
        let cli = Cli::try_parse_from(["collab-server", "--memory"]).unwrap();
        assert_eq!(cli.storage(), Ok(Storage::Memory));
        assert!(Cli::try_parse_from(["collab-server", "--memory", "--data-dir", "x"]).is_err());
        assert!(Cli::try_parse_from(["collab-server", "--room-ttl", "soon"]).is_err());
    }

    #[cfg(feature = "cluster")]
    #[test]
    #[allow(clippy::unwrap_used)]
    fn cluster_flags_parse_and_are_checked() {
        // Without --redis the server is on its own.
        let cli = Cli::try_parse_from(["collab-server"]).unwrap();
        assert!(cli.config().cluster.is_none());
        let cli = Cli::try_parse_from([
            "collab-server",
            "--redis",
            "redis://:pa55word@10.1.2.3:6379/0",
            "--node-id",
            "node-a",
        ])
        .unwrap();
        let config = cli.config();
        let cluster = config.cluster.as_ref().unwrap();
        assert_eq!(cluster.node_id.as_str(), "node-a");
        assert_eq!(cluster.member_ttl, Duration::from_secs(15));
        // Rooms live in Redis: a data dir (the container image sets one)
        // is not used.
        let with_dir = Cli::try_parse_from([
            "collab-server",
            "--redis",
            "redis://h/0",
            "--node-id",
            "a",
            "--data-dir",
            "/var/lib/collab",
            "--member-ttl",
            "2s",
        ])
        .unwrap();
        assert!(matches!(with_dir.storage(), Ok(Storage::Memory)));
        assert_eq!(
            with_dir.config().cluster.unwrap().member_ttl,
            Duration::from_secs(2)
        );
        assert_eq!(cluster.redis.to_string(), "redis://:***@10.1.2.3:6379/0");
        let shown = format!("{cli:?} {config:?}");
        assert!(!shown.contains("pa55word"), "{shown}");
        // Each needs the other; both are checked.
        assert!(Cli::try_parse_from(["collab-server", "--redis", "redis://h/0"]).is_err());
        assert!(Cli::try_parse_from(["collab-server", "--node-id", "a"]).is_err());
        for bad in [
            ["--redis", "http://h/0", "--node-id", "a"],
            ["--redis", "redis://h/0", "--node-id", "a:b"],
            ["--redis", "redis://h/0", "--node-id", ""],
        ] {
            let args = std::iter::once("collab-server").chain(bad);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn access_and_tls_flags_parse_and_tokens_stay_hidden() {
        let cli = Cli::try_parse_from([
            "collab-server",
            "--token",
            "edit-s3cret",
            "--read-only-token",
            "view-s3cret",
            "--max-connections-per-ip",
            "8",
            "--max-half-open-per-ip",
            "3",
            "--handshake-timeout",
            "2s",
            "--cap-loopback-per-ip",
            "--tls-cert",
            "/etc/collab/tls.crt",
            "--tls-key",
            "/etc/collab/tls.key",
        ])
        .unwrap();
        let config = cli.config();
        assert!(config.access_token.as_ref().unwrap().matches("edit-s3cret"));
        assert!(
            config
                .read_only_token
                .as_ref()
                .unwrap()
                .matches("view-s3cret")
        );
        assert_eq!(config.max_connections_per_ip, 8);
        assert_eq!(config.max_half_open_per_ip, 3);
        assert_eq!(config.handshake_timeout, Duration::from_secs(2));
        assert!(config.cap_loopback_per_ip);
        assert_eq!(config.tls_key, Some("/etc/collab/tls.key".into()));
        let shown = format!("{cli:?} {config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        // An empty token is no token (an unset variable in a unit file).
        let cli = Cli::try_parse_from(["collab-server", "--token", ""]).unwrap();
        assert!(cli.config().access_token.is_none());
        // TLS needs both files.
        assert!(Cli::try_parse_from(["collab-server", "--tls-cert", "c.pem"]).is_err());
        assert!(Cli::try_parse_from(["collab-server", "--tls-key", "k.pem"]).is_err());
    }
}
