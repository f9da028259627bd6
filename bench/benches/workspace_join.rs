//! Figures for docs/workspace.md, against issue 17's targets (a join until
//! the tree is shown: at most 50 ms; opening a file: at most 10 ms), on a
//! real server in this process over loopback with a store: a workspace of
//! 5,000 files in 250 folders (100 of them with 2 KiB of text), nobody in
//! it. Medians of 7 newcomers, each staying: its join until its tree is
//! loaded and listed (`entries()`), the first one loading the room from the
//! store; its `open` of a file nobody has open (read from the store) and of
//! the file the newcomer before it has open (in memory), until the text is
//! loaded. Until issue 19 an `#[ignore]`d test in
//! `server/tests/it/workspace.rs`. Run:
//! `cargo bench -p collab-bench --bench workspace_join`
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use collab_doc::tree::Kind;
use common::{LINE, Member, Server, TempDir, median, share_workspace};

async fn cost_of_joining_and_opening() {
    let dir = TempDir::new("workspace");
    let server = Server::start(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.0.clone()),
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        max_users_per_room: 64,
        ..collab_server::Config::default()
    })
    .await;
    let mut items: Vec<(String, Kind)> = Vec::new();
    for d in 0..250 {
        items.push((format!("dir{d:03}"), Kind::Dir));
        for f in 0..20 {
            items.push((format!("dir{d:03}/file{f:02}.rs"), Kind::File));
        }
    }
    let files = share_workspace(server.addr, "big", &items, 100).await;

    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let (mut joins, mut cold, mut warm) = (vec![], vec![], vec![]);
    let mut first_join = 0.0;
    let mut members = Vec::new();
    for i in 0..8 {
        let t0 = Instant::now();
        let (mut m, welcome, tree) = Member::join2(server.addr, "big", &format!("u{i}")).await;
        assert_eq!(tree.entries().len(), 5_250);
        let took = ms(t0);
        if i == 0 {
            first_join = took;
        } else {
            joins.push(took);
        }
        let peer = welcome["peer"].as_u64().unwrap();
        let t0 = Instant::now();
        assert_eq!(m.open(files[i], peer).await.len_chars(), LINE.len() * 50);
        cold.push(ms(t0));
        if i > 0 {
            let t0 = Instant::now();
            assert_eq!(
                m.open(files[i - 1], peer).await.len_chars(),
                LINE.len() * 50
            );
            warm.push(ms(t0));
        }
        members.push(m);
    }
    println!(
        "5,000 files in 250 folders, stored: first join (loads the room) {first_join:.1} ms; medians of 7: join until the tree is listed {:.1} ms, open from the store {:.1} ms, open in memory {:.1} ms",
        median(joins),
        median(cold),
        median(warm)
    );
    drop(members);
    server.stop().await;
}

fn main() {
    common::bench_main(cost_of_joining_and_opening());
}
