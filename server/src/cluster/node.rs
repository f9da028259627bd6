//! A server's place among the nodes: the [`Cluster`] connection, a
//! heartbeat that keeps the node's id claimed and measures Redis's round
//! trip, and the health `/healthz` and `/metrics` report from it.
//!
//! The rooms' side (publisher, reader, the members' refresh) is the
//! node's [`Hub`]. While the heartbeat fails, the node is unhealthy (503 on
//! `/healthz`, so a load balancer sends newcomers elsewhere) and keeps
//! trying: the connection reconnects by itself when Redis returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Cluster, ClusterConfig, ClusterError, Hub, Settings};

/// What `/healthz` and `/metrics` say about Redis. Atomics: read by every
/// HTTP request without a lock.
#[derive(Debug, Default)]
pub(crate) struct Health {
    up: AtomicBool,
    /// The last heartbeat's round trip, microseconds.
    rtt_micros: AtomicU64,
    heartbeats: AtomicU64,
    failures: AtomicU64,
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn record(&self, result: &Result<Duration, ClusterError>) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(rtt) => {
                let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
                self.rtt_micros.store(micros, Ordering::Relaxed);
                self.up.store(true, Ordering::Relaxed);
            }
            Err(_) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.up.store(false, Ordering::Relaxed);
            }
        }
    }

    /// The node's lines of `/metrics`.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let mut line = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        line(
            "collab_cluster_redis_up",
            "gauge",
            "1 when the last heartbeat to Redis succeeded.",
            u8::from(self.is_up()).to_string(),
        );
        line(
            "collab_cluster_redis_rtt_seconds",
            "gauge",
            "Round trip of the last successful heartbeat to Redis.",
            (self.rtt_micros.load(Ordering::Relaxed) as f64 / 1e6).to_string(),
        );
        line(
            "collab_cluster_heartbeats_total",
            "counter",
            "Heartbeats sent to Redis.",
            self.heartbeats.load(Ordering::Relaxed).to_string(),
        );
        line(
            "collab_cluster_heartbeat_failures_total",
            "counter",
            "Heartbeats that failed (Redis unreachable or slow).",
            self.failures.load(Ordering::Relaxed).to_string(),
        );
    }
}

/// This server as a node: its connection, health and heartbeat task.
#[derive(Debug)]
pub(crate) struct Node {
    pub cluster: Arc<Cluster>,
    pub health: Arc<Health>,
    pub hub: Arc<Hub>,
    heartbeat: JoinHandle<()>,
}

impl Node {
    /// Connects and claims the node id, or says in one sentence why not;
    /// then beats every third of the member ttl.
    pub async fn start(
        config: ClusterConfig,
        settings: Settings,
        max_users: usize,
    ) -> std::io::Result<Node> {
        let url = config.redis.clone();
        let every = (config.member_ttl / 3).max(Duration::from_millis(10));
        let cluster = Cluster::connect(config).await.map_err(|e| {
            std::io::Error::other(format!("cannot join the nodes sharing {url}: {e}"))
        })?;
        let cluster = Arc::new(cluster);
        let health = Arc::new(Health::default());
        health.up.store(true, Ordering::Relaxed);
        let heartbeat = tokio::spawn(beat(Arc::clone(&cluster), Arc::clone(&health), every));
        let hub = Hub::start(Arc::clone(&cluster), settings, max_users, every);
        tracing::info!(node = %cluster.node(), redis = %url, "joined the nodes sharing this Redis");
        Ok(Node {
            cluster,
            health,
            hub,
            heartbeat,
        })
    }

    /// Stops the heartbeat and gives the node id up (bounded: a Redis that
    /// is away does not hold up the shutdown).
    pub async fn stop(&self) {
        self.heartbeat.abort();
        // No join is claimed from now on; those under way end first.
        self.hub.close(Duration::from_secs(1)).await;
        // The members that just left are released (the others see them
        // leave now, not after the member ttl), then those still held:
        // connections still closing, and joins whose welcome never went.
        self.hub.drain(Duration::from_secs(1)).await;
        self.hub.release_all(Duration::from_secs(1)).await;
        self.hub.stop();
        let released =
            tokio::time::timeout(Duration::from_secs(1), self.cluster.release_node()).await;
        if !matches!(released, Ok(Ok(()))) {
            tracing::warn!(node = %self.cluster.node(), "could not give the node id up; it frees itself within the member ttl");
        }
    }
}

async fn beat(cluster: Arc<Cluster>, health: Arc<Health>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = tokio::time::Instant::now();
        let result = cluster.heartbeat().await.map(|()| started.elapsed());
        let was_up = health.is_up();
        health.record(&result);
        match (&result, was_up) {
            (Err(e), true) => {
                tracing::error!(node = %cluster.node(), error = %e, "Redis is unreachable: this node is unhealthy until it answers")
            }
            (Ok(_), false) => tracing::info!(node = %cluster.node(), "Redis answers again"),
            _ => {}
        }
    }
}
