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
///
/// Each node serves in a tokio runtime of its own, so that it can die as a
/// SIGKILLed process does ([`Nodes::restart`] with [`Down::Kill`]): the
/// balancer cuts its members' connections at once, then its runtime is
/// shut down, which drops every task of the node where it stands (no
/// `shutdown` to its members, no drain of its publisher, no release of its
/// names, no giving up of its node id) and closes its listener and its
/// Redis connections. What it had not written to Redis is gone with it.
pub struct Nodes {
    pub url: String,
    pub redis: redis::RedisServer,
    pub nodes: Vec<Option<Node>>,
    /// The nodes' addresses, shared with the balancer.
    addrs: Backends,
    config: Config,
    /// Lives per node: a node killed comes back under a new node id (its
    /// old one is held in Redis until the member ttl runs out, as a killed
    /// process's is).
    lives: Vec<u32>,
    cuts: Cuts,
}

/// A node and the runtime it alone runs in.
pub struct Node {
    /// `None` once stopped.
    server: Option<Server>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Node {
    fn start(listener: std::net::TcpListener, config: Config) -> Node {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("collab-node")
            .enable_all()
            .build()
            .unwrap();
        let server = {
            let _in = runtime.enter();
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = oneshot::channel::<()>();
            let handle = runtime.spawn(collab_server::run(listener, config, async move {
                let _ = stopped.await;
            }));
            Server {
                url: format!("ws://{addr}/ws"),
                stop: Some(stop),
                handle,
            }
        };
        Node {
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// Stops the node the way SIGTERM does: its members get `shutdown`,
    /// its names are released, its node id is given up.
    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Ends the node the way SIGKILL does (see [`Nodes`]).
    fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Never blocks (a runtime dropped in an async context would panic).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The balancer's backends: a restarted node may come back on another port.
type Backends = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// Per backend, a signal that ends the balancer's connections to it (the
/// sockets of a killed process, which the kernel closes at once).
type Cuts = std::sync::Arc<Vec<tokio::sync::watch::Sender<u64>>>;

/// How a node goes down in [`Nodes::restart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// SIGTERM: the node's shutdown runs.
    Stop,
    /// SIGKILL: nothing of the node runs any more.
    Kill,
}

impl Nodes {
    pub async fn start(count: usize, config: Config) -> Nodes {
        let redis = redis::RedisServer::start().await;
        let mut nodes = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..count {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            addrs.push(listener.local_addr().unwrap().to_string());
            nodes.push(Some(Node::start(
                listener,
                Self::node_config(&redis, &format!("node-{i}"), &config),
            )));
        }
        let addrs: Backends = std::sync::Arc::new(std::sync::Mutex::new(addrs));
        let cuts: Cuts = std::sync::Arc::new(
            (0..count)
                .map(|_| tokio::sync::watch::channel(0).0)
                .collect(),
        );
        let url = balancer(addrs.clone(), cuts.clone()).await;
        Nodes {
            url,
            redis,
            nodes,
            addrs,
            config,
            lives: vec![0; count],
            cuts,
        }
    }

    fn node_config(redis: &redis::RedisServer, node: &str, config: &Config) -> Config {
        let mut cluster =
            collab_server::ClusterConfig::new(redis.url().parse().unwrap(), node.parse().unwrap());
        cluster.member_ttl = Duration::from_secs(1);
        Config {
            cluster: Some(cluster),
            ..config.clone()
        }
    }

    /// Takes node `i` down (`how`: its members get `shutdown`, or their
    /// connections just drop) and starts it again on its address, or on
    /// a new one when an outgoing connection took that port as its own
    /// meanwhile (the kernel reuses a freed port for `connect`: about one
    /// run of 1,000 schedules in two hit it). Either way its members
    /// reconnect through the balancer to the others.
    pub async fn restart(&mut self, i: usize, how: Down) {
        let i = i % self.nodes.len();
        if let Some(node) = self.nodes[i].take() {
            match how {
                Down::Stop => node.stop().await,
                Down::Kill => {
                    // Its members' sockets close first, as a dead process's
                    // do: nothing the runtime's winding down does (a
                    // cancelled document export, a dropped Redis
                    // connection) reaches them as an answer.
                    self.cuts[i].send_modify(|n| *n += 1);
                    node.kill();
                    self.lives[i] += 1;
                }
            }
        }
        let id = match self.lives[i] {
            0 => format!("node-{i}"),
            life => format!("node-{i}.{life}"),
        };
        let config = Self::node_config(&self.redis, &id, &self.config);
        let addr = self.addrs.lock().unwrap()[i].clone();
        // A killed node's listener closes as its runtime winds down, on
        // its own thread: a bind a moment too early finds the port busy.
        let mut listener = None;
        for _ in 0..50 {
            if let Ok(l) = std::net::TcpListener::bind(&addr) {
                listener = Some(l);
                break;
            }
            if how == Down::Stop {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let listener =
            listener.unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        self.addrs.lock().unwrap()[i] = listener.local_addr().unwrap().to_string();
        self.nodes[i] = Some(Node::start(listener, config));
    }

    /// The room's text as a newcomer on node `i` loads it.
    pub async fn room_text(&self, i: usize, room: &str) -> String {
        match &self.nodes[i % self.nodes.len()] {
            Some(Node {
                server: Some(s), ..
            }) => s.room_text(room).await,
            _ => String::new(),
        }
    }

    pub async fn stop(self) {
        for n in self.nodes.into_iter().flatten() {
            n.stop().await;
        }
    }
}

/// A TCP balancer over `backends`: connection n goes to backend n (mod
/// their number), or the next that accepts. Returns its `ws://` URL.
/// Its connections to backend `i` end when `cuts[i]` changes.
async fn balancer(backends: Backends, cuts: Cuts) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = listener.accept().await {
            let backends = backends.lock().unwrap().clone();
            let cuts = cuts.clone();
            let first = next;
            next = next.wrapping_add(1);
            tokio::spawn(async move {
                for k in 0..backends.len() {
                    let j = (first + k) % backends.len();
                    let mut cut = cuts[j].subscribe();
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&backends[j]).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut out) => {}
                            _ = cut.changed() => {}
                        }
                        return;
                    }
                }
            });
        }
    });
    format!("ws://{addr}/ws")
}
