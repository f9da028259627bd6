//! The accept loop: one task per connection, caps on connections, and the
//! idle timer of an embedded server.
//!
//! A connection is *half-open* until its WebSocket handshake completes
//! (TLS, the HTTP request, the upgrade). Half-open connections cost the
//! server almost nothing but a socket, yet whoever opens them controls how
//! long they last, so they are kept apart: one deadline for the whole
//! handshake (`handshake_timeout`), a cap per IP address (past it a new
//! one is closed unanswered) and a cap overall (past it the oldest
//! half-open connection of the address holding the most is closed, so a
//! flood can never lock new clients out: a real client finishes its
//! handshake in milliseconds). Only a
//! completed handshake counts against `max_connections` and
//! `max_connections_per_ip`, so members and `/healthz` (answered during
//! the handshake) get in while such a flood is held.
//!
//! Connections over a cap of established connections still get a
//! WebSocket answer (`server_full`), but only a few at a time: past that
//! they are dropped unanswered, so a connection storm cannot turn the
//! refusals into the problem.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout};
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
        *self.idle_since.lock()
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
        let mut live = self.live.lock();
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
        let mut live = self.0.live.lock();
        if let Some(n) = live.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                live.remove(&self.1);
            }
        }
    }
}

/// Connections still in their handshake, oldest first, and how many per
/// IP address. Locked once when a connection is accepted and once when its
/// handshake ends, never on the message path.
#[derive(Debug, Default)]
struct HalfOpen {
    inner: Mutex<HalfOpenInner>,
}

#[derive(Debug, Default)]
struct HalfOpenInner {
    next: u64,
    /// Id -> address, and the sender whose drop closes the connection.
    live: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
    per_ip: HashMap<IpAddr, usize>,
}

impl HalfOpenInner {
    fn forget_ip(&mut self, ip: IpAddr) {
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Why a new connection was not let into its handshake.
struct OverIpCap;

impl HalfOpen {
    /// Admits a connection from `ip` into its handshake: refused when `ip`
    /// already has `per_ip` half-open connections (`None`: no cap); when
    /// `max` are half-open, the oldest one of the address with the most is
    /// closed to make room (its receiver fires). Returns the guard and the receiver that fires when
    /// this one is evicted in turn, and whether another was evicted.
    fn enter(
        self: &Arc<Self>,
        ip: IpAddr,
        per_ip: Option<usize>,
        max: usize,
    ) -> Result<(HalfOpenGuard, oneshot::Receiver<()>, bool), OverIpCap> {
        let mut inner = self.inner.lock();
        let n = inner.per_ip.get(&ip).copied().unwrap_or(0);
        if per_ip.is_some_and(|cap| n >= cap) {
            return Err(OverIpCap);
        }
        let mut evicted = false;
        while inner.live.len() >= max {
            // The oldest of the address holding the most: a flood from a
            // few addresses evicts its own connections, not a newcomer's.
            let Some(busiest) = inner
                .per_ip
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(ip, _)| *ip)
            else {
                break;
            };
            let Some(id) = inner
                .live
                .iter()
                .find(|(_, (ip, _))| *ip == busiest)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((old_ip, closer)) = inner.live.remove(&id) {
                inner.forget_ip(old_ip);
                drop(closer);
                evicted = true;
            }
        }
        let id = inner.next;
        inner.next += 1;
        let (tx, rx) = oneshot::channel();
        inner.live.insert(id, (ip, tx));
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        Ok((HalfOpenGuard(Arc::clone(self), id), rx, evicted))
    }
}

/// A connection in its handshake; dropped when the handshake ends.
struct HalfOpenGuard(Arc<HalfOpen>, u64);

impl Drop for HalfOpenGuard {
    fn drop(&mut self) {
        let mut inner = self.0.inner.lock();
        // Absent when it was evicted (and already forgotten).
        if let Some((ip, _)) = inner.live.remove(&self.1) {
            inner.forget_ip(ip);
        }
    }
}

/// Established connections, against `max_connections`.
#[derive(Debug, Default)]
struct Established(AtomicUsize);

impl Established {
    fn enter(self: &Arc<Self>, max: usize) -> Option<EstablishedGuard> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| EstablishedGuard(Arc::clone(self)))
    }
}

struct EstablishedGuard(Arc<Established>);

impl Drop for EstablishedGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
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
            *self.0.idle_since.lock() = Instant::now();
            self.0.emptied.notify_waiters();
        }
    }
}

pub(crate) struct Listener {
    listener: TcpListener,
    shared: Arc<Shared>,
    notify_shutdown: broadcast::Sender<()>,
    done: mpsc::Sender<()>,
    /// Every connection (for the idle timer).
    conns: Arc<Counter>,
    half_open: Arc<HalfOpen>,
    established: Arc<Established>,
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
            half_open: Arc::default(),
            established: Arc::default(),
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
            let config = &self.shared.config;
            // `::ffff:a.b.c.d` (an IPv4 client of a dual-stack socket) is
            // a.b.c.d.
            let ip = peer.ip().to_canonical();
            let capped = !ip.is_loopback() || config.cap_loopback_per_ip;
            let per_ip_cap = capped.then_some(config.max_half_open_per_ip);
            let (half_open, evicted, evicted_any) =
                match self.half_open.enter(ip, per_ip_cap, config.max_half_open) {
                    Ok(admitted) => admitted,
                    Err(OverIpCap) => {
                        self.shared.metrics.refused(Refusal::HalfOpenPerIp);
                        debug!(%peer, "too many unfinished handshakes from this address: closed");
                        continue;
                    }
                };
            if evicted_any {
                self.shared.metrics.refused(Refusal::HalfOpenEvicted);
                debug!("too many unfinished handshakes: the oldest was closed");
            }
            let mut shutdown = Shutdown::new(self.notify_shutdown.subscribe(), self.done.clone());
            debug!(%peer, "accepted");
            let guard = self.conns.enter();
            self.shared.metrics.connection_opened();
            let open = OpenGuard(Arc::clone(&self.shared));
            let admit = Admit {
                shared: Arc::clone(&self.shared),
                established: Arc::clone(&self.established),
                per_ip: Arc::clone(&self.per_ip),
                refusing: Arc::clone(&self.refusing),
            };
            tokio::spawn(async move {
                // Boxed: a task's future is as large as its largest state,
                // and an established connection should not keep paying for
                // the handshake's.
                let handshake = Box::pin(timeout(
                    admit.shared.config.handshake_timeout,
                    socket::handshake(stream, &admit.shared),
                ));
                // Shutdown does not wait for a handshake: the client was
                // never told anything, and would only hold up the exit.
                let ws = tokio::select! {
                    r = handshake => r.ok().flatten(),
                    _ = evicted => None,
                    () = shutdown.recv() => None,
                };
                drop(half_open);
                if let Some(ws) = ws {
                    admit.serve(ws, peer, ip, capped, shutdown).await;
                }
                drop((guard, open));
            });
        }
    }
}

/// What a connection whose handshake completed needs to take its place.
struct Admit {
    shared: Arc<Shared>,
    established: Arc<Established>,
    per_ip: Arc<PerIp>,
    refusing: Arc<AtomicUsize>,
}

impl Admit {
    /// Serves the connection if it fits under the caps of established
    /// connections, else answers `server_full`.
    async fn serve(
        self,
        ws: socket::Ws,
        peer: std::net::SocketAddr,
        ip: IpAddr,
        capped: bool,
        shutdown: Shutdown,
    ) {
        let config = &self.shared.config;
        let slot = self
            .established
            .enter(config.max_connections)
            .ok_or(Refusal::MaxConnections);
        let per_ip = slot.and_then(|slot| {
            if !capped {
                return Ok((slot, None));
            }
            self.per_ip
                .enter(ip, config.max_connections_per_ip)
                .map(|g| (slot, Some(g)))
                .ok_or(Refusal::MaxConnectionsPerIp)
        });
        match per_ip {
            Ok(guards) => {
                connection::serve(ws, peer, Arc::clone(&self.shared), shutdown).await;
                drop(guards);
            }
            Err(why) => {
                self.shared.metrics.refused(why);
                if self.refusing.load(Ordering::Acquire) >= MAX_REFUSING {
                    debug!(%peer, ?why, "over a connection limit: dropped");
                    return;
                }
                warn!(%peer, ?why, "over a connection limit: refusing");
                self.refusing.fetch_add(1, Ordering::AcqRel);
                socket::refuse_full(ws, &self.shared, why, shutdown).await;
                self.refusing.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}
