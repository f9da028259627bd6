//! Test helpers: a real collab server on 127.0.0.1:0 and real clients.
//! Every wait is bounded; nothing sleeps to synchronise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../server/tests/common/redis.rs"]
pub mod redis;

use std::time::Duration;

use collab_client::{Backoff, Client, ConnectOptions};
use collab_server::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Server {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Server {
        Self::start_at("127.0.0.1:0", config).await
    }

    /// A server on the address of an earlier one's `url` (a restart).
    pub async fn start_on(url: &str) -> Server {
        Self::start_on_with(url, Config::default()).await
    }

    /// [`Self::start_on`] with this configuration.
    pub async fn start_on_with(url: &str, config: Config) -> Server {
        let addr = url.trim_start_matches("ws://").trim_end_matches("/ws");
        Self::start_at(addr, config).await
    }

    async fn start_at(addr: &str, config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, config)
    }

    fn serve(listener: tokio::net::TcpListener, config: Config) -> Server {
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(collab_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            url: format!("ws://{addr}/ws"),
            stop: Some(stop),
            handle,
        }
    }

    /// Fast reconnects for tests: the server is local.
    pub fn options() -> ConnectOptions {
        ConnectOptions {
            backoff: Backoff {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(100),
                jitter: 0.5,
            },
            ..ConnectOptions::default()
        }
    }

    pub async fn join(&self, room: &str, user: &str) -> Client {
        Client::builder(&self.url, room, user)
            .options(Self::options())
            .timeout(Duration::from_secs(20))
            .join()
            .await
            .unwrap()
    }

    /// The room's text on the server, read through a newcomer's welcome
    /// snapshot (the newcomer leaves again).
    pub async fn room_text(&self, room: &str) -> String {
        let name = format!("probe{}", rand::random::<u32>());
        let probe = self.join(room, &name).await;
        let text = probe.text();
        probe.close().await.unwrap();
        text
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handle).await;
    }
}

/// Three nodes sharing rooms through a real redis-server
/// (docs/scale-out.md), behind a balancer that hands each new connection
/// to the next node (skipping one that is down): a member that reconnects
/// lands on another node.
pub struct Nodes {
    pub url: String,
    pub redis: redis::RedisServer,
    pub nodes: Vec<Option<Server>>,
    /// The nodes' addresses, shared with the balancer.
    addrs: Backends,
    config: Config,
}

/// The balancer's backends: a restarted node may come back on another port.
type Backends = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl Nodes {
    pub async fn start(count: usize, config: Config) -> Nodes {
        let redis = redis::RedisServer::start().await;
        let mut nodes = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..count {
            let s = Server::start_with(Self::node_config(&redis, i, &config)).await;
            addrs.push(
                s.url
                    .trim_start_matches("ws://")
                    .trim_end_matches("/ws")
                    .to_owned(),
            );
            nodes.push(Some(s));
        }
        let addrs: Backends = std::sync::Arc::new(std::sync::Mutex::new(addrs));
        let url = balancer(addrs.clone()).await;
        Nodes {
            url,
            redis,
            nodes,
            addrs,
            config,
        }
    }

    fn node_config(redis: &redis::RedisServer, i: usize, config: &Config) -> Config {
        let mut cluster = collab_server::ClusterConfig::new(
            redis.url().parse().unwrap(),
            format!("node-{i}").parse().unwrap(),
        );
        cluster.member_ttl = Duration::from_secs(1);
        Config {
            cluster: Some(cluster),
            ..config.clone()
        }
    }

    /// Stops node `i` (its members get `shutdown` and reconnect through
    /// the balancer to the others), then starts it again on its address,
    /// or on a new one when an outgoing connection took that port as its
    /// own meanwhile (the kernel reuses a freed port for `connect`: about
    /// one run of 1,000 schedules in two hit it).
    pub async fn restart(&mut self, i: usize) {
        let i = i % self.nodes.len();
        if let Some(s) = self.nodes[i].take() {
            s.stop().await;
        }
        let config = Self::node_config(&self.redis, i, &self.config);
        let addr = self.addrs.lock().unwrap()[i].clone();
        let listener = match tokio::net::TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        self.addrs.lock().unwrap()[i] = listener.local_addr().unwrap().to_string();
        self.nodes[i] = Some(Server::serve(listener, config));
    }

    /// The room's text as a newcomer on node `i` loads it.
    pub async fn room_text(&self, i: usize, room: &str) -> String {
        match &self.nodes[i % self.nodes.len()] {
            Some(s) => s.room_text(room).await,
            None => String::new(),
        }
    }

    pub async fn stop(self) {
        for s in self.nodes.into_iter().flatten() {
            s.stop().await;
        }
    }
}

/// A TCP balancer over `backends`: connection n goes to backend n (mod
/// their number), or the next that accepts. Returns its `ws://` URL.
async fn balancer(backends: Backends) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backends = backends.lock().unwrap().clone();
            let first = next;
            next = next.wrapping_add(1);
            tokio::spawn(async move {
                for k in 0..backends.len() {
                    let b = &backends[(first + k) % backends.len()];
                    if let Ok(mut out) = tokio::net::TcpStream::connect(b).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                        return;
                    }
                }
            });
        }
    });
    format!("ws://{addr}/ws")
}
