//! The accept loop: one task per connection, a cap on connections, and the
//! idle timer of an embedded server.
//!
//! Connections over a cap (overall, or per IP address) still get a
//! WebSocket answer (`server_full`),
//! but only a few at a time: past that they are dropped unanswered, so a
//! connection storm cannot turn the refusals into the problem.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, info, warn};

use crate::Shared;
use crate::metrics::Refusal;
use crate::shutdown::Shutdown;
use crate::{connection, socket};

/// Refusals (`server_full`) answered at once; more are dropped.
const MAX_REFUSING: usize = 16;

/// Live connections, and since when there have been none.
#[derive(Debug)]
struct Counter {
    live: AtomicUsize,
    idle_since: Mutex<Instant>,
    /// Woken when `live` drops to zero.
    emptied: Notify,
}

impl Counter {
    fn enter(self: &Arc<Self>) -> CounterGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        CounterGuard(Arc::clone(self))
    }

    fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    fn idle_since(&self) -> Instant {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once no connection has existed for `after`.
    async fn idle_for(&self, after: Duration) {
        loop {
            let emptied = self.emptied.notified();
            if self.live() == 0 {
                let deadline = self.idle_since() + after;
                if Instant::now() >= deadline {
                    return;
                }
                tokio::select! {
                    () = sleep_until(deadline) => {}
                    () = emptied => {}
                }
            } else {
                emptied.await;
            }
        }
    }
}

/// Live connections per IP address. Locked once when a connection starts
/// and once when it ends, never on the message path.
#[derive(Debug, Default)]
struct PerIp {
    live: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    /// Counts a connection from `ip`, unless it already has `max`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpGuard> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let n = live.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIpGuard(Arc::clone(self), ip))
    }
}

struct PerIpGuard(Arc<PerIp>, IpAddr);

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut live = self.0.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = live.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&self.1);
            }
        }
    }
}

/// Counts the connection as open in the metrics until dropped.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.metrics.connection_closed();
    }
}

struct CounterGuard(Arc<Counter>);

impl Drop for CounterGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            self.0.emptied.notify_waiters();
        }
    }
}

pub(crate) struct Listener {
    listener: TcpListener,
    shared: Arc<Shared>,
    notify_shutdown: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
    conns: Arc<Counter>,
    per_ip: Arc<PerIp>,
    refusing: Arc<AtomicUsize>,
}

impl Listener {
    pub(crate) fn new(
        listener: TcpListener,
        shared: Arc<Shared>,
        notify_shutdown: broadcast::Sender<()>,
        done: mpsc::Sender<()>,
    ) -> Self {
        Self {
            listener,
            shared,
            notify_shutdown,
            done,
            conns: Arc::new(Counter {
                live: AtomicUsize::new(0),
                idle_since: Mutex::new(Instant::now()),
                emptied: Notify::new(),
            }),
            per_ip: Arc::default(),
            refusing: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn idle(&self) -> impl Future<Output = ()> + use<> {
        let conns = Arc::clone(&self.conns);
        let after = self.shared.config.idle_shutdown;
        async move {
            match after {
                Some(after) => conns.idle_for(after).await,
                None => std::future::pending().await,
            }
        }
    }

    /// Accepts until the idle timer fires (when configured). Shutdown is the
    /// caller's select.
    pub(crate) async fn run(&mut self) -> std::io::Result<()> {
        loop {
            let accepted = tokio::select! {
                r = self.listener.accept() => r,
                () = self.idle() => {
                    info!("no connection for the idle period: stopping");
                    return Ok(());
                }
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    warn!(error = %e, "accept failed");
                    sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shutdown = Shutdown::new(self.notify_shutdown.subscribe(), self.done.clone());
            let config = &self.shared.config;
            // `::ffff:a.b.c.d` (an IPv4 client of a dual-stack socket) is
            // a.b.c.d.
            let ip = peer.ip().to_canonical();
            let per_ip = if self.conns.live() >= config.max_connections {
                Err(Refusal::MaxConnections)
            } else if ip.is_loopback() && !config.cap_loopback_per_ip {
                Ok(None)
            } else {
                self.per_ip
                    .enter(ip, config.max_connections_per_ip)
                    .map(Some)
                    .ok_or(Refusal::MaxConnectionsPerIp)
            };
            let per_ip = match per_ip {
                Ok(guard) => guard,
                Err(why) => {
                    self.shared.metrics.refused(why);
                    if self.refusing.load(Ordering::Acquire) >= MAX_REFUSING {
                        debug!(%peer, ?why, "over a connection limit: dropped");
                        continue;
                    }
                    warn!(%peer, ?why, "over a connection limit: refusing");
                    self.refusing.fetch_add(1, Ordering::AcqRel);
                    let refusing = Arc::clone(&self.refusing);
                    let shared = Arc::clone(&self.shared);
                    tokio::spawn(async move {
                        socket::refuse_full(stream, &shared, why, shutdown).await;
                        refusing.fetch_sub(1, Ordering::AcqRel);
                    });
                    continue;
                }
            };
            debug!(%peer, "accepted");
            let guard = self.conns.enter();
            self.shared.metrics.connection_opened();
            let open = OpenGuard(Arc::clone(&self.shared));
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                connection::serve(stream, peer, shared, shutdown).await;
                drop((guard, per_ip, open));
            });
        }
    }
}
