//! Idle connections: open K connections, join each (collab) or enter its
//! room (relay), hold them, and read the server's resident memory before
//! and after. Each connection keeps a task that drains what the server
//! sends (the `joined` events, pings), so nothing piles up on either side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::load::{Endpoint, join};
use crate::procfs;

#[derive(Debug, Clone)]
pub struct IdleSpec {
    pub connections: usize,
    pub users_per_room: usize,
    pub concurrency: usize,
    /// How long to wait after the last join before measuring.
    pub settle: Duration,
    /// How long to hold the connections (measuring again at the end).
    pub hold: Duration,
    /// Bound on the whole set-up.
    pub setup_limit: Duration,
    pub tag: String,
    pub label: String,
    pub progress: bool,
}

#[derive(Debug, Clone, Default)]
pub struct IdleOutcome {
    /// Before the first connection.
    pub empty_kib: Option<u64>,
    /// With every connection joined, after settling.
    pub loaded_kib: Option<u64>,
    /// At the end of the hold.
    pub held_kib: Option<u64>,
    /// After every connection closed.
    pub closed_kib: Option<u64>,
    pub joined: u64,
    pub failed: u64,
    /// Connections the server closed while held.
    pub dropped: u64,
    pub setup_secs: f64,
    pub first_error: Option<String>,
}

impl IdleOutcome {
    /// Resident bytes per idle connection: the growth over the empty
    /// server, divided by the connections held.
    pub fn bytes_per_connection(&self) -> Option<f64> {
        let (empty, loaded) = (self.empty_kib?, self.held_kib.or(self.loaded_kib)?);
        (self.joined > 0).then(|| loaded.saturating_sub(empty) as f64 * 1024.0 / self.joined as f64)
    }
}

/// Opens, holds and closes the idle connections.
pub async fn run_idle(
    endpoint: &Endpoint,
    spec: &IdleSpec,
    server_pid: Option<u32>,
) -> IdleOutcome {
    let rss = || server_pid.and_then(procfs::rss_kib);
    let mut out = IdleOutcome {
        empty_kib: rss(),
        ..IdleOutcome::default()
    };
    let joined = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(parking_lot::Mutex::new(None::<String>));
    let gate = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..spec.connections {
        let endpoint = endpoint.clone();
        let room = format!("{}-{}", spec.tag, i / spec.users_per_room.max(1));
        let user = format!("u{}", i % spec.users_per_room.max(1));
        let gate = Arc::clone(&gate);
        let (joined, failed, dropped) = (
            Arc::clone(&joined),
            Arc::clone(&failed),
            Arc::clone(&dropped),
        );
        let stopping = Arc::clone(&stopping);
        let first_error = Arc::clone(&first_error);
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await;
            let ws = join(&endpoint, &room, &user).await;
            drop(permit);
            let (mut sink, mut stream) = match ws {
                Ok((ws, _)) => {
                    joined.fetch_add(1, Ordering::Relaxed);
                    ws.split()
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().get_or_insert(e);
                    return;
                }
            };
            loop {
                tokio::select! {
                    frame = stream.next() => match frame {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            if !stopping.load(Ordering::Relaxed) {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            return;
                        }
                        Some(Ok(_)) => {}
                    },
                    _ = stop.changed() => break,
                }
            }
            let _ = timeout(Duration::from_secs(2), sink.close()).await;
            // Read until the server's close (bounded).
            let _ = timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        });
    }

    // Wait for every connection to join or fail, bounded.
    let deadline = started + spec.setup_limit;
    let mut last_print = Instant::now();
    loop {
        let (j, f) = (
            joined.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        if j + f >= spec.connections as u64 || Instant::now() >= deadline {
            break;
        }
        if spec.progress && last_print.elapsed() >= Duration::from_secs(1) {
            last_print = Instant::now();
            eprintln!(
                "[{}] {:>4.0}s joined {j}/{} failed {f} server rss {}",
                spec.label,
                started.elapsed().as_secs_f64(),
                spec.connections,
                rss().map_or("-".into(), |r| format!("{:.1}MiB", r as f64 / 1024.0)),
            );
        }
        sleep(Duration::from_millis(50)).await;
    }
    out.setup_secs = started.elapsed().as_secs_f64();
    sleep(spec.settle).await;
    out.loaded_kib = rss();
    if spec.progress {
        eprintln!(
            "[{}] holding {} connections for {:?}",
            spec.label,
            joined.load(Ordering::Relaxed),
            spec.hold
        );
    }
    sleep(spec.hold).await;
    out.held_kib = rss();
    out.joined = joined.load(Ordering::Relaxed);
    out.failed = failed.load(Ordering::Relaxed);
    out.dropped = dropped.load(Ordering::Relaxed);
    out.first_error = first_error.lock().clone();

    stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    let all_done = async { while tasks.join_next().await.is_some() {} };
    if timeout(Duration::from_secs(20), all_done).await.is_err() {
        tasks.abort_all();
    }
    sleep(Duration::from_millis(500)).await;
    out.closed_kib = rss();
    out
}
