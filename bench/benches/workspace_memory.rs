//! Issue 17's memory target: a workspace room of 1,000 files, each with
//! 2 KiB of text, on a real server in this process with a store. The
//! server's live heap (this process's, counted by the `cap` allocator;
//! the bench's own members are a few replicas) with a member who has 3
//! files open, against the same member with 30 and with all 1,000 open:
//! memory follows the open files, not the room. Figures in
//! docs/workspace.md. Run:
//! `cargo bench -p collab-bench --bench workspace_memory`
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::System;

use cap::Cap;
use collab_doc::tree::Kind;
use common::{Member, Server, TempDir, share_workspace};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

fn kib() -> f64 {
    ALLOC.allocated() as f64 / 1024.0
}

const FILES: usize = 1_000;

async fn heap_by_open_files() {
    let dir = TempDir::new("workspace-memory");
    let server = Server::start(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.0.clone()),
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        ..collab_server::Config::default()
    })
    .await;
    let paths: Vec<(String, Kind)> = (0..FILES)
        .map(|f| (format!("dir{:02}/file{f:04}.rs", f / 50), Kind::File))
        .collect();
    let mut items: Vec<(String, Kind)> = (0..FILES.div_ceil(50))
        .map(|d| (format!("dir{d:02}"), Kind::Dir))
        .collect();
    items.extend(paths);
    let files = share_workspace(server.addr, "mem", &items, FILES).await;
    assert_eq!(files.len(), FILES);
    let empty = kib();

    let (mut bob, welcome, _tree) = Member::join2(server.addr, "mem", "bob").await;
    let peer = welcome["peer"].as_u64().unwrap();
    let joined = kib();
    let mut figures = Vec::new();
    let mut opened = 0;
    for target in [3, 30, 300, FILES] {
        while opened < target {
            // The bench keeps no replica: what grows is the server's.
            drop(bob.open(files[opened], peer).await);
            opened += 1;
        }
        figures.push((target, kib() - joined));
    }
    let per_file = |(n, k): (usize, f64)| k / n as f64;
    println!(
        "{FILES} files of 2 KiB, stored; the process's live heap with the room unloaded {empty:.0} KiB, joined (tree loaded, no file open) {joined:.0} KiB; over that, in KiB: {}; per open file: {}",
        figures
            .iter()
            .map(|(n, k)| format!("{n} open {k:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        figures
            .iter()
            .map(|f| format!("{:.1}", per_file(*f)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    bob.leave().await;
    server.stop().await;
}

fn main() {
    common::bench_main(heap_by_open_files());
}
