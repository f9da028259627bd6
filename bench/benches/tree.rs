//! Figures for docs/workspace.md: a workspace tree of 5,000 files in 250
//! folders, built, encoded, loaded and shown, medians of 7. Until issue 19
//! an `#[ignore]`d test in `crdt/tests/tree.rs`. Run:
//! `cargo bench -p collab-bench --bench tree`
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use collab_doc::UpdateInfo;
use collab_doc::tree::{Kind, Tree, TreeLimits};

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: only
    // the former measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let mut items: Vec<(String, Kind)> = Vec::new();
    for d in 0..250 {
        items.push((format!("dir{d:03}"), Kind::Dir));
        for f in 0..20 {
            items.push((format!("dir{d:03}/file{f:02}.rs"), Kind::File));
        }
    }
    let refs: Vec<(&str, Kind)> = items.iter().map(|(p, k)| (p.as_str(), *k)).collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut build, mut load, mut view, mut import) = (vec![], vec![], vec![], vec![]);
    let mut sizes = (0, 0);
    for _ in 0..7 {
        let t0 = Instant::now();
        let mut t = Tree::new();
        t.create_paths(&refs).unwrap();
        build.push(t0.elapsed().as_secs_f64() * 1e3);
        let snapshot = t.snapshot().unwrap();
        let update = t.take_local_update().unwrap();
        sizes = (snapshot.len(), update.len());
        let t0 = Instant::now();
        let loaded = Tree::from_snapshot(&snapshot).unwrap();
        load.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        assert_eq!(loaded.entries().len(), 5_250);
        view.push(t0.elapsed().as_secs_f64() * 1e3);
        let mut server = Tree::new();
        let info = UpdateInfo::read(&update).unwrap();
        let t0 = Instant::now();
        server
            .import_checked(&update, &info, &TreeLimits::default())
            .unwrap();
        import.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "5,000 files in 250 folders: snapshot {} B, update {} B; medians of 7: build {:.1} ms, load {:.1} ms, entries() {:.1} ms, server import_checked {:.1} ms",
        sizes.0,
        sizes.1,
        median(build),
        median(load),
        median(view),
        median(import)
    );
}
