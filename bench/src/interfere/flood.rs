//! The half-open flood: connections from other loopback addresses
//! (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127.0.0.0/8 to the
//! loopback device, so each is a distinct client address to the server)
//! that never finish their HTTP upgrade request. Half send nothing; half
//! drip the request's headers a byte at a time. When the server closes
//! one (its handshake deadline, its half-open caps), the slot opens another
//! after a pause, as an attacker keeps them up. Bounded: a fixed number of
//! slots, a fixed number of opens per slot, and the stop.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::time::sleep;

/// How the flood is shaped.
#[derive(Debug, Clone)]
pub struct FloodSpec {
    /// Connections held at once (slots).
    pub connections: usize,
    /// Client addresses used: 127.0.0.2 onwards.
    pub addresses: usize,
    /// A dripping slot sends one byte this often.
    pub drip_every: Duration,
    /// After the server closes a slot's connection, wait this long before
    /// opening the next.
    pub reopen_after: Duration,
    /// At most this many opens per slot over the whole run.
    pub opens_per_slot: u64,
}

/// What the flood did.
#[derive(Debug, Default)]
pub struct FloodCounters {
    pub opened: AtomicU64,
    /// Connects that failed (refused, reset).
    pub connect_failed: AtomicU64,
    /// Connections the server closed.
    pub closed_by_server: AtomicU64,
    /// Connections open now, and the most at once.
    pub open_now: AtomicU64,
    pub open_max: AtomicU64,
    pub bytes_dripped: AtomicU64,
}

const REQUEST: &[u8] = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

/// Runs the flood against `server` until `stop` (or every slot used its
/// opens).
pub async fn run(
    server: SocketAddr,
    spec: &FloodSpec,
    counters: Arc<FloodCounters>,
    stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..spec.connections {
        let addresses = spec.addresses.clamp(1, 250);
        let ip = Ipv4Addr::new(127, 0, 0, 2 + (slot % addresses) as u8);
        let drip = slot % 2 == 1;
        let spec = spec.clone();
        let counters = Arc::clone(&counters);
        let mut stop = stop.clone();
        tasks.spawn(async move {
            for _ in 0..spec.opens_per_slot {
                if *stop.borrow() {
                    return;
                }
                tokio::select! {
                    () = hold_one(server, ip, drip, &spec, &counters) => {}
                    _ = stop.changed() => return,
                }
                tokio::select! {
                    () = sleep(spec.reopen_after) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One half-open connection from `ip`, held until the server closes it.
async fn hold_one(
    server: SocketAddr,
    ip: Ipv4Addr,
    drip: bool,
    spec: &FloodSpec,
    c: &FloodCounters,
) {
    let socket = match TcpSocket::new_v4() {
        Ok(s) => s,
        Err(_) => {
            c.connect_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if socket
        .bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
        .is_err()
    {
        c.connect_failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut stream =
        match tokio::time::timeout(Duration::from_secs(5), socket.connect(server)).await {
            Ok(Ok(s)) => s,
            _ => {
                c.connect_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
    c.opened.fetch_add(1, Ordering::Relaxed);
    let now = c.open_now.fetch_add(1, Ordering::Relaxed) + 1;
    c.open_max.fetch_max(now, Ordering::Relaxed);
    let mut buf = [0u8; 512];
    let mut sent = 0usize;
    let mut next_drip = tokio::time::Instant::now() + spec.drip_every;
    loop {
        let dripping = drip && sent < REQUEST.len();
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                // An answer (a refusal) is not what we wait for: go on
                // until the server closes.
                Ok(_) => {}
            },
            () = tokio::time::sleep_until(next_drip), if dripping => {
                next_drip += spec.drip_every;
                if stream.write_all(&REQUEST[sent..=sent]).await.is_err() {
                    break;
                }
                sent += 1;
                c.bytes_dripped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    c.closed_by_server.fetch_add(1, Ordering::Relaxed);
    c.open_now.fetch_sub(1, Ordering::Relaxed);
}
