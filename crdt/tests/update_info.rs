//! The fast reader of update metadata (`crdt/src/update/fast.rs`) against
//! Loro's own decoder, on updates of random histories: several peers typing
//! and deleting concurrently, syncing now and then, exported from random
//! earlier versions. Both must name the same peers, counters, outside
//! dependencies and number of changes, and the fast reader must never give
//! up on what our clients send.
#![allow(clippy::unwrap_used)]

use collab_doc::UpdateInfo;
use loro::{ExportMode, LoroDoc, VersionVector};
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn same(bytes: &[u8]) {
    let fast = UpdateInfo::read_fast_only(bytes)
        .expect("the fast reader reads every update Loro exports")
        .unwrap();
    let loro = UpdateInfo::read_with_loro(bytes).unwrap();
    assert_eq!(fast.spans(), loro.spans());
    assert_eq!(fast.deps(), loro.deps());
    assert_eq!(fast.changes(), loro.changes());
}

#[test]
fn the_fast_reader_agrees_with_loro() {
    for seed in 0..60u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let peers: Vec<LoroDoc> = (0..rng.random_range(1..=4))
            .map(|i| {
                let d = LoroDoc::new();
                d.set_peer_id(1000 + i).unwrap();
                d
            })
            .collect();
        let mut versions: Vec<VersionVector> = vec![VersionVector::new()];
        for _ in 0..rng.random_range(5..80) {
            let d = &peers[rng.random_range(0..peers.len())];
            let text = d.get_text("text");
            let len = text.len_unicode();
            match rng.random_range(0..10) {
                0..=5 => {
                    let at = rng.random_range(0..=len);
                    let n = rng.random_range(1..40);
                    let s: String = (0..n).map(|_| rng.random_range('a'..='z')).collect();
                    text.insert(at, &s).unwrap();
                }
                6..=7 if len > 0 => {
                    let at = rng.random_range(0..len);
                    text.delete(at, rng.random_range(1..=(len - at).min(20)))
                        .unwrap();
                }
                _ => {
                    // Sync two peers.
                    let other = &peers[rng.random_range(0..peers.len())];
                    other
                        .import(&d.export(ExportMode::updates(&other.oplog_vv())).unwrap())
                        .unwrap();
                }
            }
            if rng.random_bool(0.3) {
                d.commit();
            }
            versions.push(d.oplog_vv());
        }
        for d in &peers {
            d.commit();
            for _ in 0..5 {
                let from = &versions[rng.random_range(0..versions.len())];
                let bytes = d.export(ExportMode::updates(from)).unwrap();
                same(&bytes);
            }
            same(&d.export(ExportMode::all_updates()).unwrap());
        }
    }
}

#[test]
fn a_snapshot_is_told_apart_and_garbage_left_to_loro() {
    let d = LoroDoc::new();
    d.get_text("text").insert(0, "hello").unwrap();
    d.commit();
    let snapshot = d.export(ExportMode::Snapshot).unwrap();
    assert!(UpdateInfo::read_fast_only(&snapshot).unwrap().is_err());
    assert!(UpdateInfo::read(&snapshot).is_err());
    assert!(UpdateInfo::read_fast_only(b"not loro at all, not at all").is_none());
    assert!(UpdateInfo::read(b"not loro at all, not at all").is_err());
    // A truncated update: the fast reader gives up, Loro refuses it.
    let update = d.export(ExportMode::all_updates()).unwrap();
    let cut = &update[..update.len() - 3];
    assert!(UpdateInfo::read_fast_only(cut).is_none());
    assert!(UpdateInfo::read(cut).is_err());
}

/// Damaged updates (bytes flipped, cut, repeated) never make either reader
/// panic or allocate without bound: each gets an answer.
#[test]
fn damaged_updates_get_an_answer() {
    let mut rng = StdRng::seed_from_u64(7);
    let d = LoroDoc::new();
    let other = LoroDoc::new();
    for i in 0..30 {
        d.get_text("text")
            .insert(0, &format!("line {i}\n"))
            .unwrap();
        d.commit();
        if i % 7 == 0 {
            other
                .import(&d.export(ExportMode::all_updates()).unwrap())
                .unwrap();
            other.get_text("text").insert(0, "x").unwrap();
            other.commit();
            d.import(&other.export(ExportMode::all_updates()).unwrap())
                .unwrap();
        }
    }
    let good = d.export(ExportMode::all_updates()).unwrap();
    for _ in 0..3000 {
        let mut bytes = good.clone();
        match rng.random_range(0..3) {
            0 => {
                for _ in 0..rng.random_range(1..4) {
                    let at = rng.random_range(22..bytes.len());
                    bytes[at] = rng.random();
                }
            }
            1 => bytes.truncate(rng.random_range(0..bytes.len())),
            _ => {
                let at = rng.random_range(22..bytes.len());
                let run: Vec<u8> = bytes[at..].iter().take(16).copied().collect();
                bytes.splice(
                    at..at,
                    run.iter().copied().cycle().take(rng.random_range(1..200)),
                );
            }
        }
        let _ = UpdateInfo::read(&bytes);
    }
}
