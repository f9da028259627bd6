//! Connections that never finish their handshake (nothing sent, or the
//! request dripped a byte at a time) cannot lock anyone out: they have
//! their own caps and deadline, apart from `max_connections`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use collab_protocol::ServerMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::common::{Server, WAIT, test_config};

/// The attacker's address: loopback, but not the clients' 127.0.0.1.
const ATTACKER: &str = "127.0.0.2";

async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
    timeout(WAIT, sock.connect(to)).await.unwrap().unwrap()
}

/// Until the server closes it: nothing sent, or one byte of a WebSocket
/// request every 20 ms (never finishing it).
async fn hold(mut s: TcpStream, drip: bool) {
    let request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Pad: ";
    let mut sent = 0;
    let mut buf = [0u8; 64];
    loop {
        if drip {
            let byte = request.get(sent).copied().unwrap_or(b'a');
            if s.write_all(&[byte]).await.is_err() {
                return;
            }
            sent += 1;
        }
        if let Ok(Ok(0) | Err(_)) = timeout(Duration::from_millis(20), s.read(&mut buf)).await {
            return;
        }
    }
}

/// `/healthz` answered, or why not (never panics: a refused probe is
/// what some tests expect).
async fn healthz(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    match timeout(WAIT, s.read_to_string(&mut out)).await {
        Ok(Ok(_)) => Ok(out),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".into()),
    }
}

/// How many connections the server has accepted, from `/metrics`.
async fn accepted(addr: SocketAddr) -> Option<f64> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    timeout(WAIT, s.read_to_string(&mut out)).await.ok()?.ok()?;
    out.lines()
        .find_map(|l| l.strip_prefix("collab_connections_accepted_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// A flood of `count` half-open connections from [`ATTACKER`], half idle
/// and half dripping, each reopened (up to `reopens` times) when the server
/// closes it, until `stop`. Returns how many the server closed.
fn flood(
    set: &mut JoinSet<()>,
    addr: SocketAddr,
    count: usize,
    reopens: usize,
    stop: &Arc<AtomicBool>,
    closed: &Arc<AtomicUsize>,
) {
    for i in 0..count {
        let stop = Arc::clone(stop);
        let closed = Arc::clone(closed);
        set.spawn(async move {
            for _ in 0..=reopens {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                let s = connect_from(ATTACKER, addr).await;
                hold(s, i % 2 == 1).await;
                closed.fetch_add(1, Ordering::AcqRel);
            }
        });
    }
}

/// Waits (bounded) until the server has accepted at least `n` connections.
async fn until_accepted(addr: SocketAddr, n: f64) {
    for _ in 0..200 {
        if accepted(addr).await.is_some_and(|a| a >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server never accepted {n} connections");
}

#[tokio::test]
async fn a_flood_of_unfinished_handshakes_locks_nobody_out() {
    const FLOOD: usize = 40;
    // Loopback is exempt from the per-address caps here (the default): the
    // overall cap of handshakes in progress does the work.
    let server = Server::start(collab_server::Config {
        max_connections: 8,
        max_half_open: 16,
        handshake_timeout: Duration::from_secs(60),
        ..test_config()
    })
    .await;
    let (mut alice, _) = server.join("r", "alice").await;
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut attackers = JoinSet::new();
    // Five times the connection limit, reopened as they are closed.
    flood(&mut attackers, server.addr, FLOOD, 5, &stop, &closed);
    until_accepted(server.addr, (FLOOD + 1) as f64).await;

    // Members and newcomers get in, and the probe answers, several times
    // while the flood is held.
    for round in 0..3 {
        let health = healthz(server.addr).await;
        assert!(
            health
                .as_deref()
                .is_ok_and(|h| h.starts_with("HTTP/1.1 200")),
            "round {round}: {health:?}"
        );
        let (mut bob, _) = server.join("r", &format!("bob{round}")).await;
        alice
            .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
            .await;
        alice.ping_chat(&format!("still relaying {round}")).await;
        bob.recv_until(|m| matches!(m, ServerMsg::Chat { .. }))
            .await;
        bob.close().await;
    }
    // The flood was held to the cap: the rest were closed (bounded wait:
    // the last attackers may still be connecting).
    for _ in 0..200 {
        if closed.load(Ordering::Acquire) >= FLOOD - 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        closed.load(Ordering::Acquire) >= FLOOD - 16,
        "only {} closed",
        closed.load(Ordering::Acquire)
    );
    stop.store(true, Ordering::Release);
    attackers.abort_all();
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn one_address_gets_few_unfinished_handshakes_and_a_short_deadline() {
    const FLOOD: usize = 30;
    let server = Server::start(collab_server::Config {
        max_half_open_per_ip: 4,
        cap_loopback_per_ip: true,
        handshake_timeout: Duration::from_secs(3),
        ..test_config()
    })
    .await;
    let (mut alice, _) = server.join("r", "alice").await;
    // Idle connections from one address: past 4 they are closed at once.
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        held.push(connect_from(ATTACKER, server.addr).await);
    }
    // Closed by the cap: EOF (or a reset) right away; held: nothing until
    // the deadline, three seconds.
    let closed_at_once = futures::future::join_all(held.iter_mut().map(|s| async move {
        let mut buf = [0u8; 16];
        matches!(
            timeout(Duration::from_millis(500), s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }))
    .await
    .into_iter()
    .filter(|closed| *closed)
    .count();
    assert_eq!(closed_at_once, FLOOD - 4, "closed at once, of {FLOOD}");
    // Another address gets in meanwhile.
    let (mut bob, _) = server.join("r", "bob").await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;
    // The deadline closes the ones held (bounded wait, no sleep).
    let mut buf = [0u8; 16];
    for s in &mut held {
        let r = timeout(WAIT, s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0) | Err(_))),
            "a half-open connection outlived its deadline: {r:?}"
        );
    }
    bob.ping_chat("fine").await;
    bob.close().await;
    alice.close().await;
    server.stop().await;
}

/// Shutdown does not wait for connections stuck in their handshake: `run`
/// returns well before the grace period (2 s here) ends.
#[tokio::test]
async fn shutdown_does_not_wait_for_unfinished_handshakes() {
    let mut server = Server::start(test_config()).await;
    let (alice, _) = server.join("r", "alice").await;
    let mut idle = connect_from(ATTACKER, server.addr).await;
    until_accepted(server.addr, 2.0).await;
    let started = tokio::time::Instant::now();
    server.trigger_shutdown();
    drop(alice);
    timeout(WAIT, &mut server.handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    let mut buf = [0u8; 8];
    let r = timeout(WAIT, idle.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}
