//! Resident memory of the real binary: empty, and per idle joined
//! connection. Ignored by default (it opens many sockets and takes a few
//! seconds); run it with
//! `cargo test -p collab-server --release --test it memory:: -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::{Child, Command};

use collab_protocol::{Base64Bytes, ClientMsg, Presence, ServerMsg};
use common::Client;

/// A `/proc/PID/status` field in KiB (`VmRSS`, `RssAnon`, `RssFile`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn vm_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

async fn spawn_server(extra: &[&str]) -> (Child, std::net::SocketAddr) {
    let mut args = vec![
        "--max-connections",
        "5000",
        "--max-rooms",
        "1000",
        "--memory",
    ];
    args.extend_from_slice(extra);
    common::spawn_binary(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: opens 2000 sockets; run with --ignored --nocapture"]
async fn resident_memory_per_idle_connection() {
    const N: usize = 2000;
    let (mut child, addr) = spawn_server(&[]).await;
    let pid = child.id();
    let fresh = vm_rss_kib(pid);
    println!(
        "fresh: VmRSS {fresh} KiB = RssAnon {} KiB + RssFile {} KiB",
        status_kib(pid, "RssAnon"),
        status_kib(pid, "RssFile")
    );
    // Warm up: one connection, join, leave (first-use allocations).
    let (mut c, _) = {
        let mut c = Client::connect(addr).await;
        let w = c.join("warm", "up").await;
        (c, w)
    };
    c.ping_chat("warm").await;
    c.close().await;
    let empty = vm_rss_kib(pid);
    let empty_anon = status_kib(pid, "RssAnon");
    println!(
        "after one join and leave: VmRSS {empty} KiB = RssAnon {empty_anon} KiB + RssFile {} KiB \
         (file pages are the binary's code, shared and reclaimable)",
        status_kib(pid, "RssFile")
    );

    let mut clients = Vec::with_capacity(N);
    for i in 0..N {
        let mut c = Client::connect(addr).await;
        // 20 members per room, 100 rooms.
        c.join(&format!("room{}", i / 20), &format!("user{i}"))
            .await;
        clients.push(c);
    }
    // Everyone has read their joined events? Not needed: idle cost is what
    // the server holds; give the server a moment to settle its queues.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let loaded = vm_rss_kib(pid);
    let per_conn = (loaded.saturating_sub(empty) * 1024) / N as u64;
    println!(
        "collab-server RSS: empty {empty} KiB; with {N} idle joined connections in {} rooms \
         {loaded} KiB; {per_conn} bytes per connection",
        N / 20
    );
    drop(clients);
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    assert!(
        empty_anon < 4 * 1024,
        "empty server {empty_anon} KiB anonymous"
    );
    assert!(per_conn < 16 * 1024, "{per_conn} bytes per connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: relays ~200 MB; run with --ignored --nocapture"]
async fn a_stalled_reader_does_not_grow_the_server() {
    let (mut child, addr) = spawn_server(&["--rate", "100000", "--burst", "100000"]).await;
    let pid = child.id();
    let mut typist = Client::connect(addr).await;
    typist.join("abc", "typist").await;
    // A member that never reads, with a tiny receive window.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream)
        .await
        .unwrap();
    let mut stalled = Client { ws };
    stalled.join("abc", "stalled").await;
    typist
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;
    let before = vm_rss_kib(pid);
    let blob = ClientMsg::Presence(Presence {
        cursor: Some(Base64Bytes(vec![7u8; 256 * 1024])),
        anchor: None,
    })
    .to_json();
    let mut peak = before;
    let mut removed = false;
    for i in 0..600 {
        typist.send_raw(&blob).await;
        if i % 20 == 0 {
            peak = peak.max(vm_rss_kib(pid));
            // The typist gets `left` once the stalled reader is removed.
            while let Ok(Some(Ok(m))) = tokio::time::timeout(
                std::time::Duration::from_millis(1),
                futures::StreamExt::next(&mut typist.ws),
            )
            .await
            {
                if m.to_text().unwrap_or("").contains("\"left\"") {
                    removed = true;
                }
            }
        }
    }
    let after = vm_rss_kib(pid);
    println!(
        "stalled reader: RSS before {before} KiB, peak {peak} KiB, after {after} KiB \
         while relaying 600 x 350 KB; stalled member removed: {removed}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    assert!(removed, "the stalled reader is removed");
    assert!(peak < before + 32 * 1024, "server grew to {peak} KiB");
}
