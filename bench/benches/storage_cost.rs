//! What storing rooms costs: the automerge-paper trace sent as ~1000
//! updates into a stored room, then the store's size and how long a restart
//! takes until the first joiner has the room; and 5,000 single-character
//! updates, pipelined, until the last ack, in memory and stored. A real
//! server in this process over loopback. Figures printed; until issue 19
//! `#[ignore]`d tests in `server/tests/storage.rs`. Run:
//! `cargo bench -p collab-bench --bench storage_cost`
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, ClientMsg, ServerMsg};
use collab_server::{Config, Storage};
use common::{Member, Server, TempDir};

fn stored(dir: &std::path::Path) -> Config {
    Config {
        storage: Storage::Dir(dir.to_path_buf()),
        flush_interval: Duration::from_millis(20),
        messages_per_second: 100_000,
        burst: 100_000,
        ..Config::default()
    }
}

/// Sends `updates` pipelined as seqs 1.. and waits for the last ack.
async fn send_all(m: &mut Member, updates: Vec<Vec<u8>>) -> Duration {
    let n = updates.len() as u64;
    let t = Instant::now();
    for (i, u) in updates.into_iter().enumerate() {
        m.send(&ClientMsg::Update {
            seq: i as u64 + 1,
            data: Base64Bytes(u),
        })
        .await;
    }
    m.recv_until(|msg| matches!(msg, ServerMsg::Ack { seq } if *seq == n))
        .await;
    t.elapsed()
}

async fn automerge_paper_restart() {
    let (patches, end) = common::automerge_paper();
    let mut doc = SharedDoc::new();
    let mut updates = Vec::new();
    for (i, (pos, del, text)) in patches.iter().enumerate() {
        doc.splice(*pos, *del, text).unwrap();
        if (i + 1) % 260 == 0 {
            updates.push(doc.take_local_update().unwrap());
        }
    }
    updates.extend(doc.take_local_update());
    assert_eq!(doc.text(), end);
    let snapshot = doc.snapshot().unwrap().len();

    let dir = TempDir::new("paper");
    let server = Server::start(stored(&dir.0)).await;
    let (mut c, _) = Member::join(server.addr, "paper", "alice").await;
    let n = updates.len();
    let sent = send_all(&mut c, updates).await;
    c.leave().await;
    let t = Instant::now();
    server.stop().await;
    let stop = t.elapsed();
    let size = std::fs::metadata(dir.0.join(collab_server::DB_FILE))
        .unwrap()
        .len();

    let t = Instant::now();
    let server = Server::start(stored(&dir.0)).await;
    let (c, doc) = Member::join(server.addr, "paper", "bob").await;
    let restart = t.elapsed();
    assert_eq!(doc.text(), end);
    c.leave().await;
    server.stop().await;
    println!(
        "automerge-paper: {} edits in {n} updates stored in {sent:?}; stop (flush) {stop:?}; \
         rooms.redb {:.1} MiB (the room's snapshot: {} KiB); restart to first welcome {restart:?} ({} chars)",
        patches.len(),
        size as f64 / (1024.0 * 1024.0),
        snapshot / 1024,
        end.chars().count()
    );
}

async fn update_path_cost() {
    let dir = TempDir::new("typing");
    for (name, config) in [
        (
            "memory",
            Config {
                messages_per_second: 100_000,
                burst: 100_000,
                ..Config::default()
            },
        ),
        ("stored", stored(&dir.0)),
    ] {
        let server = Server::start(config).await;
        let (mut c, mut doc) = Member::join(server.addr, "typing", "alice").await;
        let updates: Vec<_> = (0..5000)
            .map(|i| {
                doc.splice(i, 0, "x").unwrap();
                doc.take_local_update().unwrap()
            })
            .collect();
        let took = send_all(&mut c, updates).await;
        c.leave().await;
        server.stop().await;
        println!(
            "{name}: 5000 single-char updates acked in {took:?} ({:.1} µs/update)",
            took.as_secs_f64() * 1e6 / 5000.0
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: only
    // the former measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        automerge_paper_restart().await;
        update_path_cost().await;
    });
}
