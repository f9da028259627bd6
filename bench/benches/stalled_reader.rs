//! A member that never reads, with a 4 KiB receive window, while another
//! relays 600 presence events of 350 KB through the room: what the server's
//! memory does until the stalled member is removed (its queue is bounded).
//! The server runs in this process, so the figure is the process's
//! resident memory. That the stalled member is removed is tested
//! (`server/tests/it/bad_input.rs`, a slow consumer); until issue 19 this
//! was an `#[ignore]`d test in `server/tests/it/memory.rs`. Run:
//! `cargo bench -p collab-bench --bench stalled_reader`
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use collab_protocol::{Base64Bytes, ClientMsg, Presence};
use common::{Member, Server};

fn vm_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn a_stalled_reader() {
    let server = Server::start(collab_server::Config {
        messages_per_second: 100_000,
        burst: 100_000,
        ..collab_server::Config::default()
    })
    .await;
    let (mut typist, _) = Member::join(server.addr, "abc", "typist").await;
    let (stalled, _) = Member::connect_with_recv_buffer(server.addr, 4096)
        .await
        .join_as("abc", "stalled")
        .await;
    typist.next_of("joined").await;
    let before = vm_rss_kib();
    let blob = ClientMsg::Presence(Presence {
        cursor: Some(Base64Bytes(vec![7u8; 256 * 1024])),
        anchor: None,
    })
    .to_json();
    let mut peak = before;
    let mut removed = false;
    for i in 0..600 {
        typist.send_json(blob.clone()).await;
        if i % 20 == 0 {
            peak = peak.max(vm_rss_kib());
            // The typist gets `left` once the stalled reader is removed.
            while let Some(v) = typist.try_event(Duration::from_millis(1)).await {
                removed |= v["type"] == "left";
            }
        }
    }
    let after = vm_rss_kib();
    println!(
        "stalled reader: RSS (server and clients) before {before} KiB, peak {peak} KiB, after {after} KiB \
         while relaying 600 x 350 KB; stalled member removed: {removed}"
    );
    drop((stalled, typist));
    server.stop().await;
    assert!(removed, "the stalled reader is removed");
    assert!(peak < before + 32 * 1024, "grew to {peak} KiB");
}

fn main() {
    common::bench_main(a_stalled_reader());
}
