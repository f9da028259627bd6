//! `collab-server`: the room server of collab.
//!
//! A headless tokio WebSocket server. Each connection is one user in one
//! room; a room holds its members and the merged Loro document
//! ([`collab_doc::RoomDoc`], kept detached so a keystroke only extends its history), relays edits, chat and presence, and is
//! dropped when its last member leaves. The wire contract is
//! [`collab_protocol`].
//!
//! Built like mini-redis: [`run`] takes a bound listener, a [`Config`] and a
//! shutdown future, so the binary, the tests and the terminal editor (which
//! starts a server in the background) all run the same code.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?; // clients connect to ws://{addr}/ws
//! let config = collab_server::Config::default();
//! tokio::spawn(collab_server::run(listener, config, std::future::pending::<()>()));
//! # Ok(()) }
//! ```

mod access;
mod clock;
// Snapshots and trimming (docs/scale-out.md, "What is left", item 4) do
// not use their part of it yet.
mod byte_budget;
#[cfg(feature = "cluster")]
#[allow(dead_code)]
mod cluster;
mod config;
mod connection;
mod listener;
mod metrics;
mod priority;
mod probe;
mod rate_limit;
mod registry;
mod room;
mod shutdown;
mod socket;
mod store;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

pub use config::{Config, Secret};

#[cfg(feature = "cluster")]
pub use cluster::{ClusterConfig, NodeId, RedisUrl};

pub use probe::{CompactionHold, Hold, StoreEvent, StoreProbe, hold_compaction};
pub use store::{DB_FILE, Storage, StoreFault};

use listener::Listener;
use registry::Registry;

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub registry: Registry,
    /// Connection ids, unique for the server's life.
    pub next_conn: AtomicU64,
    /// Counters for `GET /metrics`.
    pub metrics: metrics::Metrics,
    /// Set when the server speaks TLS.
    pub tls: Option<tls::Tls>,
    /// Set when this server is a node sharing rooms through Redis.
    #[cfg(feature = "cluster")]
    pub node: Option<cluster::Node>,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Self {
            registry: Registry::new(config.max_rooms, config.outbound_queue_bytes),
            config,
            next_conn: AtomicU64::new(1),
            metrics: metrics::Metrics::default(),
            tls: None,
            #[cfg(feature = "cluster")]
            node: None,
        }
    }

    /// False while this node cannot reach Redis (`/healthz` answers 503);
    /// always true for a server on its own.
    pub(crate) fn healthy(&self) -> bool {
        #[cfg(feature = "cluster")]
        if let Some(node) = &self.node {
            return node.health.is_up();
        }
        true
    }

    /// `/metrics`: the server's counters, and a node's Redis health.
    pub(crate) fn render_metrics(&self) -> String {
        #[allow(unused_mut)]
        let mut out = self.metrics.render(self.registry.room_count());
        #[cfg(feature = "cluster")]
        if let Some(node) = &self.node {
            node.health.render(&mut out);
            node.cluster.render(&mut out);
            node.hub.render(&mut out);
        }
        out
    }
}

/// Serves collab on `listener` until `shutdown` completes (or, with
/// [`Config::idle_shutdown`], until no connection has existed for that
/// long). On shutdown every client gets a `shutdown` event and a close
/// frame; `run` returns once they are gone or [`Config::shutdown_grace`]
/// has passed. It returns an error when the store could not be opened, or
/// when changes could not be written at shutdown (the error says how many).
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
) -> std::io::Result<()> {
    run_with_ready(listener, config, shutdown, |_| {}).await
}

/// [`run`], calling `ready` once the server is ready to serve (its store
/// open), before the first connection is accepted: the moment to tell
/// scripts that it is up.
pub async fn run_with_ready(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future,
    ready: impl FnOnce(std::net::SocketAddr),
) -> std::io::Result<()> {
    let config = config.sanitized();
    // A certificate that cannot be read ends `run` before anything starts.
    let tls = tls::Tls::from_config(&config)?;
    if config.read_only_token.is_some() && config.access_token.is_none() {
        warn!("a read-only token without an access token: anyone can still edit");
    }
    #[cfg(feature = "cluster")]
    if config.cluster.is_some()
        && let Storage::Dir(dir) = &config.storage
    {
        return Err(std::io::Error::other(format!(
            "--redis keeps rooms in Redis, not in a data directory: drop --data-dir {} (or run without --redis)",
            dir.display()
        )));
    }
    let grace = config.shutdown_grace;
    let (notify_shutdown, _) = broadcast::channel(1);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    // Open the store before serving anyone: a data dir that cannot be
    // opened ends `run` with one sentence saying what to do.
    let store = match &config.storage {
        Storage::Memory => None,
        Storage::Dir(dir) => Some(store::Store::open(
            dir,
            config.flush_interval,
            config.room_ttl,
            config.store_fault.clone(),
            config.store_probe.clone(),
        )?),
    };
    // A node joins the others before it serves anyone: a Redis that cannot
    // be reached, or a node id another node holds, ends `run` with one
    // sentence.
    #[cfg(feature = "cluster")]
    let node = match &config.cluster {
        Some(c) => {
            let settings = room::DocSettings::of(&config);
            let c = cluster::ClusterConfig {
                room_ttl: config.room_ttl,
                ..c.clone()
            };
            Some(cluster::Node::start(c, settings, config.max_users_per_room).await?)
        }
        None => None,
    };
    let mut shared = Shared::new(config);
    shared.tls = tls;
    #[cfg(feature = "cluster")]
    {
        if let Some(node) = &node {
            shared.registry.set_hub(Arc::clone(&node.hub));
        }
        shared.node = node;
    }
    if let Some(s) = &store {
        shared.registry.set_store(s.handle());
    }
    let shared = Arc::new(shared);
    let store = match store {
        Some(s) => Some(s.start(Arc::downgrade(&shared))?),
        None => None,
    };
    let addr = listener.local_addr()?;
    info!(%addr, path = collab_protocol::WS_PATH, "listening");
    ready(addr);
    #[cfg(feature = "cluster")]
    let at_stop = Arc::clone(&shared);
    let mut server = Listener::new(listener, shared, notify_shutdown.clone(), done_tx);
    let result = tokio::select! {
        r = server.run() => r,
        _ = shutdown => {
            info!("shutting down");
            Ok(())
        }
    };
    // Stop accepting, tell every task, then wait for their done senders.
    drop(server);
    let _ = notify_shutdown.send(());
    drop(notify_shutdown);
    if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
        warn!("some connections did not close within the grace period");
    }
    // The node id is free for a restart at once.
    #[cfg(feature = "cluster")]
    if let Some(node) = &at_stop.node {
        node.stop().await;
    }
    // Everything the rooms accepted reaches disk before `run` returns, or
    // `run` says how much did not.
    if let Some(store) = store {
        let lost = store.shutdown().await;
        if lost.changes > 0 {
            return Err(std::io::Error::other(format!(
                "{} accepted changes of {} rooms could not be written to {}: clients that reconnect to the restarted server resend what they still hold",
                lost.changes,
                lost.rooms,
                lost.path.display()
            )));
        }
    }
    result
}
