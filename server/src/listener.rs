//! The accept loop: one task per connection, a cap on connections, and the
//! idle timer of an embedded server.
//!
//! Connections over the cap still get a WebSocket answer (`server_full`),
//! but only a few at a time: past that they are dropped unanswered, so a
//! connection storm cannot turn the refusals into the problem.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{debug, info, warn};

use crate::Shared;
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
            if self.conns.live() >= self.shared.config.max_connections {
                if self.refusing.load(Ordering::Acquire) >= MAX_REFUSING {
                    debug!(%peer, "over the connection limit: dropped");
                    continue;
                }
                warn!(%peer, "over the connection limit: refusing");
                self.refusing.fetch_add(1, Ordering::AcqRel);
                let refusing = Arc::clone(&self.refusing);
                let config = self.shared.config.clone();
                tokio::spawn(async move {
                    socket::refuse_full(stream, config, shutdown).await;
                    refusing.fetch_sub(1, Ordering::AcqRel);
                });
                continue;
            }
            debug!(%peer, "accepted");
            let guard = self.conns.enter();
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                connection::serve(stream, peer, shared, shutdown).await;
                drop(guard);
            });
        }
    }
}
