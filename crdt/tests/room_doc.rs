//! The server's room document: detached between calls, so these tests check
//! that what newcomers, the store and the size limit see is always the
//! merged text, however imports and catch-ups interleave.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use collab_doc::{DocEncoding, DocError, NewcomerDoc, RoomDoc, SharedDoc};

/// Four replicas typing in rounds without hearing from each other first: a
/// concurrent history, as a busy room's is. Returns the updates in the order
/// a server would receive them.
fn interleaved(rounds: usize) -> Vec<Vec<u8>> {
    let mut peers: Vec<SharedDoc> = (0..4).map(|_| SharedDoc::new()).collect();
    let mut log = Vec::new();
    for round in 0..rounds {
        let mut sent = Vec::new();
        for (who, p) in peers.iter_mut().enumerate() {
            let len = p.len_chars();
            p.splice((round * 13 + who) % (len + 1), 0, "ab").unwrap();
            sent.push((who, p.take_local_update().unwrap()));
        }
        for (who, u) in &sent {
            for (j, p) in peers.iter_mut().enumerate() {
                if j != *who {
                    p.import(u).unwrap();
                }
            }
        }
        log.extend(sent.into_iter().map(|(_, u)| u));
    }
    log
}

/// Encoded version vectors are not canonical (map order): compare decoded.
fn assert_same_version(a: &[u8], b: &[u8]) {
    let a = loro::VersionVector::decode(a).unwrap();
    let b = loro::VersionVector::decode(b).unwrap();
    assert_eq!(a, b);
}

fn replica_of(updates: &[Vec<u8>]) -> SharedDoc {
    let mut r = SharedDoc::new();
    for u in updates {
        r.import(u).unwrap();
    }
    r
}

#[test]
fn every_view_of_the_room_is_the_merged_text() {
    let log = interleaved(40);
    let reference = replica_of(&log);
    let mut room = RoomDoc::new();
    for (i, u) in log.iter().enumerate() {
        assert_eq!(room.import_limited(u, 1 << 20), Ok(true), "update {i}");
        if i % 17 == 0 {
            // A newcomer in the middle: its snapshot holds exactly what
            // arrived so far, and imports go on afterwards.
            let newcomer = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
            assert_eq!(newcomer.text(), replica_of(&log[..=i]).text());
            assert_same_version(&newcomer.version(), &room.version());
        }
    }
    assert_eq!(room.text(), reference.text());
    assert_same_version(&room.version(), &reference.version());
    assert_eq!(room.len_bytes(), reference.len_bytes());
    // A returning replica gets just what it lacks.
    let half = replica_of(&log[..80]);
    let mut back = replica_of(&log[..80]);
    back.import(&room.updates_since(&half.version()).unwrap())
        .unwrap();
    assert_eq!(back.text(), reference.text());
}

#[test]
fn a_resent_update_brings_nothing() {
    let log = interleaved(3);
    let mut room = RoomDoc::new();
    for u in &log {
        assert_eq!(room.import_limited(u, 1 << 20), Ok(true));
    }
    assert_eq!(room.import_limited(&log[5], 1 << 20), Ok(false));
}

#[test]
fn garbage_forgery_and_gaps_are_refused_and_change_nothing() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "abc").unwrap();
    let first = a.take_local_update().unwrap();
    a.splice(3, 0, "d").unwrap();
    let second = a.take_local_update().unwrap();
    let mut room = RoomDoc::new();
    room.import_limited(&first, 1 << 20).unwrap();
    let v = room.version();

    assert!(matches!(
        room.import_limited(b"\x00garbage", 1 << 20),
        Err(DocError::BadUpdate(_))
    ));
    // Same ids as a's, other and longer text: Loro compares the known part.
    let forged = collab_doc::forge_for_tests(a.peer_id(), "xyzw");
    assert!(matches!(
        room.import_limited(&forged, 1 << 20),
        Err(DocError::BadUpdate(_))
    ));
    assert_same_version(&room.version(), &v);
    assert_eq!(room.text(), "abc");

    // An update whose dependency never arrived.
    let mut b = SharedDoc::new();
    b.import(&first).unwrap();
    b.import(&second).unwrap();
    b.splice(4, 0, "e").unwrap();
    let third = b.take_local_update().unwrap();
    assert_eq!(
        room.import_limited(&third, 1 << 20),
        Err(DocError::MissingDependencies)
    );
    assert_eq!(room.text(), "abc");
    // A refused update leaves no trace: filling the gap brings the gap
    // alone (Loro used to keep the refused one pending and apply it now,
    // unannounced), and the refused one is accepted when sent again.
    assert_eq!(room.import_limited(&second, 1 << 20), Ok(true));
    assert_eq!(room.text(), "abcd");
    assert_eq!(room.import_limited(&third, 1 << 20), Ok(true));
    assert_eq!(room.text(), "abcde");
}

#[test]
fn only_updates_to_the_text_are_accepted() {
    let mut a = SharedDoc::new();
    a.splice(0, 0, "text").unwrap();
    let first = a.take_local_update().unwrap();
    let mut room = RoomDoc::new();
    room.import_limited(&first, 1 << 20).unwrap();
    let v = room.version();

    // A snapshot is refused before any import: compressed, it can expand
    // a hundredfold.
    let snapshot = a.snapshot().unwrap();
    assert!(matches!(
        room.import_limited(&snapshot, 1 << 20),
        Err(DocError::NotAnUpdate(_))
    ));

    // A change to another container is rolled back, whatever it built on.
    let other = loro::LoroDoc::new();
    other.import(&first).unwrap();
    other.get_map("evil").insert("k", "v".repeat(100)).unwrap();
    other.get_text("text").insert(0, "x").unwrap();
    other.commit();
    let evil = other
        .export(loro::ExportMode::updates(
            &loro::VersionVector::decode(&v).unwrap(),
        ))
        .unwrap();
    assert!(matches!(
        room.import_limited(&evil, 1 << 20),
        Err(DocError::ForeignContainer(_))
    ));
    assert_same_version(&room.version(), &v);
    assert_eq!(room.text(), "text");
    // And the room goes on: the next honest edit merges.
    a.splice(4, 0, "!").unwrap();
    assert_eq!(
        room.import_limited(&a.take_local_update().unwrap(), 1 << 20),
        Ok(true)
    );
    assert_eq!(room.text(), "text!");
}

#[test]
fn seeding_the_same_text_twice_makes_one_change() {
    let mut first = RoomDoc::new();
    let seed = first.seed_if_empty("line one\nline two\n").unwrap();
    // A replica kept the seed from the first server, which died.
    let mut alice = SharedDoc::new();
    alice.import(&seed).unwrap();
    alice.splice(0, 0, "A").unwrap();
    // A new server is seeded from the same file by someone else.
    let mut second = RoomDoc::new();
    second.seed_if_empty("line one\nline two\n").unwrap();
    let catch_up = alice.updates_since(&second.version()).unwrap();
    assert_eq!(second.import_limited(&catch_up, 1 << 20), Ok(true));
    assert_eq!(second.text(), "Aline one\nline two\n");
    // A room with history is not seeded again.
    assert_eq!(second.seed_if_empty("other"), None);
}

#[test]
fn the_size_limit_holds_exactly() {
    let mut room = RoomDoc::new();
    let mut a = SharedDoc::new();
    a.splice(0, 0, &"x".repeat(1000)).unwrap();
    let big = a.take_local_update().unwrap();
    assert_eq!(
        room.import_limited(&big, 500),
        Err(DocError::TooLarge {
            would_be: 1000,
            max: 500
        })
    );
    assert_eq!(room.history_len(), 0);
    room.import_limited(&big, 1000).unwrap();
    assert_eq!(room.len_bytes(), 1000);

    // Keystrokes up to the limit: the bound on growth since the last
    // catch-up refuses nothing the exact length allows.
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    let max = 300;
    for i in 0..max {
        typist.splice(i, 0, "y").unwrap();
        let u = typist.take_local_update().unwrap();
        assert_eq!(room.import_limited(&u, max), Ok(true), "keystroke {i}");
    }
    assert_eq!(room.len_bytes(), max);
    typist.splice(max, 0, "z").unwrap();
    let over = typist.take_local_update().unwrap();
    assert!(matches!(
        room.import_limited(&over, max),
        Err(DocError::TooLarge { .. })
    ));
    assert_eq!(room.len_bytes(), max);
    // Deleting makes room again (from a replica without the refused "z").
    let mut other = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
    other.splice(0, 10, "").unwrap();
    room.import_limited(&other.take_local_update().unwrap(), max)
        .unwrap();
    assert_eq!(room.len_bytes(), max - 10);
}

#[test]
fn seeding_happens_once_and_is_relayable() {
    let mut room = RoomDoc::new();
    let update = room.seed_if_empty("file text\n").unwrap();
    assert!(room.seed_if_empty("other\n").is_none());
    assert_eq!(room.text(), "file text\n");
    assert_eq!(replica_of(&[update]).text(), "file text\n");
    let mut typed = RoomDoc::new();
    let mut a = SharedDoc::new();
    a.splice(0, 0, "typed first").unwrap();
    typed
        .import_limited(&a.take_local_update().unwrap(), 1 << 20)
        .unwrap();
    assert!(typed.seed_if_empty("file text\n").is_none());
}

#[test]
fn compaction_keeps_text_version_and_the_limit() {
    let log = interleaved(30);
    let mut room = RoomDoc::new();
    for u in &log[..60] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    let (text, version) = (room.text(), room.version());
    room.compact().unwrap();
    assert_eq!(room.text(), text);
    assert_same_version(&room.version(), &version);
    for u in &log[60..] {
        assert_eq!(room.import_limited(u, 1 << 20), Ok(true));
    }
    assert_eq!(room.text(), replica_of(&log).text());
}

#[test]
fn a_stored_room_loads_in_one_batch_and_reports_bad_records() {
    let log = interleaved(20);
    let reference = replica_of(&log);
    let snapshot = {
        let mut first = RoomDoc::new();
        for u in &log[..30] {
            first.import_limited(u, 1 << 20).unwrap();
        }
        first.snapshot().unwrap()
    };
    let (mut room, failed) = RoomDoc::load(Some(&snapshot), &log[30..]).unwrap();
    assert!(failed.is_empty());
    assert_eq!(room.text(), reference.text());
    assert_same_version(&room.version(), &reference.version());

    let mut damaged = log[30..].to_vec();
    damaged.insert(3, b"not loro".to_vec());
    let (mut room, failed) = RoomDoc::load(Some(&snapshot), &damaged).unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, 3);
    assert_eq!(room.text(), reference.text());

    assert!(matches!(
        RoomDoc::load(Some(b"not a snapshot"), &[]),
        Err(DocError::BadSnapshot(_))
    ));
    let (empty, failed) = RoomDoc::load(None, &[]).unwrap();
    assert!(failed.is_empty());
    assert_eq!(empty.history_len(), 0);
}

/// A paste of megabytes arrives in frame-sized parts. Loro's catch-up of a
/// detached document is quadratic in the length of one inserted run (25 s
/// for these parts), so big updates must be imported attached. The test
/// A generous bound (10 s, against about 10 ms) guards against that path.
#[test]
fn a_big_paste_in_parts_merges_quickly() {
    let mut a = SharedDoc::new();
    let paste = "fn main() { println!(\"héllo 😀\"); }\r\n".repeat(80_000);
    a.splice(0, 0, &paste).unwrap();
    let parts = a.take_local_update_chunked(1 << 20);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut room = RoomDoc::new();
    let started = std::time::Instant::now();
    for p in &parts {
        assert_eq!(room.import_limited(p, 8 << 20), Ok(true));
    }
    assert_eq!(room.len_bytes(), paste.len());
    let newcomer = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
    assert!(newcomer.text() == paste);
    // The store loads the same parts as one batch.
    let (mut stored, failed) = RoomDoc::load(None, &parts).unwrap();
    assert!(failed.is_empty());
    assert_eq!(stored.len_bytes(), paste.len());
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "merging a 3 MB paste took {took:?}"
    );
}

#[test]
fn one_insert_too_long_to_merge_cheaply_is_refused_runs_are_not() {
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    typist.splice(0, 0, "a line typed first\n").unwrap();
    room.import_limited(&typist.take_local_update().unwrap(), 1 << 24)
        .unwrap();
    let v = room.version();
    // A client that pastes 300,000 chars as one Loro insert.
    let paster = loro::LoroDoc::new();
    paster.import(&room.snapshot().unwrap()).unwrap();
    let from = paster.oplog_vv();
    paster
        .get_text(collab_doc::TEXT_CONTAINER)
        .insert(0, &"p".repeat(300_000))
        .unwrap();
    paster.commit();
    let one = paster.export(loro::ExportMode::updates(&from)).unwrap();
    assert!(matches!(
        room.import_limited(&one, 1 << 24),
        Err(DocError::TooCostly { .. })
    ));
    assert_same_version(&room.version(), &v);
    assert_eq!(room.text(), "a line typed first\n");
    // The same paste as SharedDoc makes it (runs) goes in.
    let mut runs = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
    runs.splice(0, 0, &"p".repeat(300_000)).unwrap();
    assert_eq!(
        room.import_limited(&runs.take_local_update().unwrap(), 1 << 24),
        Ok(true)
    );
    assert_eq!(room.len_bytes(), 300_000 + 19);
}

#[test]
fn a_newcomer_gets_the_kept_snapshot_and_the_updates_after_it() {
    let mut room = RoomDoc::new();
    let mut a = SharedDoc::new();
    let mut b = SharedDoc::new();
    for (i, word) in ["one ", "two ", "three "].iter().enumerate() {
        a.splice(a.len_chars(), 0, word).unwrap();
        room.import_limited(&a.take_local_update().unwrap(), 1 << 20)
            .unwrap();
        if i == 1 {
            room.compact().unwrap();
        }
        b.splice(0, 0, "b").unwrap();
        let u = b.take_local_update().unwrap();
        room.import_limited(&u, 1 << 20).unwrap();
        // A refused update is not among what newcomers get.
        assert!(room.import_limited(b"junk", 1 << 20).is_err());
    }
    let (base, tail) = room.for_newcomer();
    assert_eq!(tail.len(), 3, "what came after the compaction");
    let mut newcomer = SharedDoc::from_snapshot(&base).unwrap();
    for u in &tail {
        newcomer.import(u).unwrap();
    }
    assert_eq!(newcomer.text(), room.text());
}

/// A compaction job runs with nothing of the room's: updates merged while
/// it ran stay as the newcomers' tail, and are in the live document that
/// replaces the old one.
#[test]
fn a_compaction_job_runs_beside_imports_and_swaps_in() {
    let log = interleaved(40);
    let mut room = RoomDoc::new();
    for u in &log[..50] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    let job = room.compaction_job(Vec::new()).expect("no job is out");
    assert!(
        room.compaction_job(Vec::new()).is_none(),
        "one job at a time"
    );
    assert_eq!(job.updates(), 50);
    // Updates go on while the job runs (here: before it runs at all).
    for u in &log[50..60] {
        assert_eq!(room.import_limited(u, 1 << 20), Ok(true));
    }
    let done = job.run().unwrap();
    let swapped = room.finish_compaction(done);
    assert!(swapped.snapshot.is_some());
    assert_eq!(swapped.after.len(), 10, "what arrived meanwhile");
    assert!(swapped.live_replaced);
    for u in &log[60..] {
        assert_eq!(room.import_limited(u, 1 << 20), Ok(true));
    }
    let reference = replica_of(&log);
    assert_eq!(room.text(), reference.text());
    assert_same_version(&room.version(), &reference.version());
    let (base, tail) = room.for_newcomer();
    assert_eq!(tail.len(), log.len() - 50);
    let mut newcomer = SharedDoc::from_snapshot(&base).unwrap();
    for u in &tail {
        newcomer.import(u).unwrap();
    }
    assert_eq!(newcomer.text(), reference.text());
    // A job whose base was replaced meanwhile changes nothing.
    let stale = room.compaction_job(Vec::new()).unwrap();
    room.compact().unwrap();
    let swapped = room.finish_compaction(stale.run().unwrap());
    assert!(swapped.snapshot.is_none());
    assert_eq!(room.text(), reference.text());
}

/// A newcomer is sent the room's whole history as updates: the history up
/// to the kept snapshot as one (made by the compaction that made the
/// snapshot), the changes since merged into another (made by the first
/// newcomer after a change), never a refused update; they load into an
/// empty replica as the snapshot and its tail did, in under half the bytes.
#[test]
fn a_newcomer_gets_the_history_as_two_updates_made_once_per_change() {
    let log = interleaved(300);
    let mut room = RoomDoc::new();
    for u in &log[..600] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    room.compact().unwrap();
    assert!(room.newcomer_doc_ready(), "made by the compaction");
    let NewcomerDoc::Updates(_, None) = room.newcomer_doc(usize::MAX) else {
        panic!("nothing after the snapshot yet");
    };
    for u in &log[600..] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    assert!(room.import_limited(b"junk", 1 << 20).is_err());
    let NewcomerDoc::Updates(whole, Some(after)) = room.newcomer_doc(usize::MAX) else {
        panic!("an untrimmed room sends its history as updates");
    };
    let NewcomerDoc::Updates(whole2, Some(after2)) = room.newcomer_doc(usize::MAX) else {
        panic!("still updates");
    };
    assert!(
        Arc::ptr_eq(&whole, &whole2) && Arc::ptr_eq(&after, &after2),
        "made once"
    );
    let reference = replica_of(&log);
    let mut newcomer = SharedDoc::new();
    newcomer.track_changes();
    assert_eq!(newcomer.import(&whole), Ok(true));
    assert_eq!(newcomer.import(&after), Ok(true));
    assert_eq!(newcomer.text(), reference.text());
    assert_same_version(&newcomer.version(), &room.version());
    // Smaller than what it replaces: the kept snapshot and the updates
    // after it (each keystroke's update carries its own header and ids).
    let (base, tail) = room.for_newcomer();
    let replaced = base.len() + tail.iter().map(|u| u.len()).sum::<usize>();
    let sent = whole.len() + after.len();
    assert!(sent * 2 < replaced, "{sent} bytes against {replaced}");
    // A resent update changes nothing; a new one is merged anew.
    room.import_limited(&log[0], 1 << 20).unwrap();
    let NewcomerDoc::Updates(_, Some(same)) = room.newcomer_doc(usize::MAX) else {
        panic!("updates");
    };
    assert!(Arc::ptr_eq(&after, &same));
    let mut more = replica_of(&log);
    more.splice(0, 0, "z").unwrap();
    room.import_limited(&more.take_local_update().unwrap(), 1 << 20)
        .unwrap();
    let NewcomerDoc::Updates(whole3, Some(after3)) = room.newcomer_doc(usize::MAX) else {
        panic!("updates");
    };
    assert!(Arc::ptr_eq(&whole, &whole3), "the snapshot's part is kept");
    // Merged changes over what one `update` event may carry (each merged
    // update fit, their merge may not): the kept snapshot and its tail.
    let NewcomerDoc::Snapshot((base, tail)) = room.newcomer_doc(after3.len() - 1) else {
        panic!("the merge does not fit");
    };
    let mut newcomer = SharedDoc::new();
    newcomer.import(&base).unwrap();
    for u in &tail {
        newcomer.import(u).unwrap();
    }
    assert_eq!(newcomer.text(), more.text());
    let mut newcomer = SharedDoc::new();
    newcomer.import(&whole3).unwrap();
    newcomer.import(&after3).unwrap();
    assert_eq!(newcomer.text(), more.text());
    // A compaction job makes the first part anew, with nothing after it.
    let job = room.compaction_job(Vec::new()).unwrap();
    let swapped = room.finish_compaction(job.run().unwrap());
    assert!(swapped.after.is_empty());
    assert!(room.newcomer_doc_ready());
    let NewcomerDoc::Updates(whole, None) = room.newcomer_doc(usize::MAX) else {
        panic!("one update");
    };
    let mut newcomer = SharedDoc::new();
    newcomer.import(&whole).unwrap();
    assert_eq!(newcomer.text(), more.text());
}

/// A newcomer that reads zlib is sent the same history compressed: made by
/// the first such newcomer after the snapshot (so that newcomer's welcome is
/// not short work), copied for the next, made anew with the next snapshot;
/// it inflates to the bytes a newcomer that reads only Loro's gets.
#[test]
fn a_zlib_newcomer_gets_the_same_history_compressed_once_per_snapshot() {
    let log = interleaved(300);
    let mut room = RoomDoc::new();
    for u in &log[..600] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    room.compact().unwrap();
    assert!(room.newcomer_doc_ready_as(DocEncoding::Raw));
    assert!(
        !room.newcomer_doc_ready_as(DocEncoding::Zlib),
        "compressing is work: not under the room's lock"
    );
    for u in &log[600..] {
        room.import_limited(u, 1 << 20).unwrap();
    }
    let NewcomerDoc::ZlibUpdates(z, Some(after)) =
        room.newcomer_doc_as(usize::MAX, DocEncoding::Zlib)
    else {
        panic!("an untrimmed room sends its history as updates");
    };
    assert!(room.newcomer_doc_ready_as(DocEncoding::Zlib));
    let NewcomerDoc::ZlibUpdates(z2, Some(after2)) =
        room.newcomer_doc_as(usize::MAX, DocEncoding::Zlib)
    else {
        panic!("still zlib");
    };
    assert!(
        Arc::ptr_eq(&z, &z2) && Arc::ptr_eq(&after, &after2),
        "made once"
    );
    let NewcomerDoc::Updates(whole, Some(raw_after)) = room.newcomer_doc(usize::MAX) else {
        panic!("raw");
    };
    assert!(
        Arc::ptr_eq(&after, &raw_after),
        "the changes since are not compressed"
    );
    let inflated = collab_doc::zlib::inflate(&z, whole.len()).unwrap();
    assert_eq!(&inflated, whole.as_ref());
    assert!(z.len() < whole.len(), "{} against {}", z.len(), whole.len());
    let mut newcomer = SharedDoc::new();
    newcomer.import(&inflated).unwrap();
    newcomer.import(&after).unwrap();
    assert_eq!(newcomer.text(), replica_of(&log).text());
    // The next snapshot's history is compressed anew.
    let job = room.compaction_job(Vec::new()).unwrap();
    room.finish_compaction(job.run().unwrap());
    assert!(!room.newcomer_doc_ready_as(DocEncoding::Zlib));
    let NewcomerDoc::ZlibUpdates(z3, None) = room.newcomer_doc_as(usize::MAX, DocEncoding::Zlib)
    else {
        panic!("one update");
    };
    assert!(!Arc::ptr_eq(&z, &z3));
    let mut newcomer = SharedDoc::new();
    newcomer
        .import(&collab_doc::zlib::inflate(&z3, 1 << 24).unwrap())
        .unwrap();
    assert_eq!(newcomer.text(), replica_of(&log).text());
}

/// A paste far from the size limit is not merged into the room's live text
/// (the compaction it makes due merges it, elsewhere): the limit is kept by
/// the bytes its inserts add, read from the history. Near the limit the
/// text is brought up to date and the limit holds exactly.
#[test]
fn a_paste_far_from_the_limit_is_counted_by_its_inserts_not_merged() {
    let mut room = RoomDoc::new();
    let mut a = SharedDoc::new();
    a.splice(0, 0, "hello world").unwrap();
    room.import_limited(&a.take_local_update().unwrap(), 1 << 24)
        .unwrap();
    assert_eq!(room.len_bytes(), 11);
    // "world" replaced by a paste of 300 KB, in one update.
    let paste = "fn main() {}\n".repeat(25_000);
    a.splice(6, 5, &paste).unwrap();
    let update = a.take_local_update().unwrap();
    assert_eq!(room.import_limited(&update, 1 << 24), Ok(true));
    assert_eq!(
        room.len_bytes_at_most(),
        11 + paste.len(),
        "the text was not caught up: its bound grew by the inserted bytes"
    );
    assert_eq!(room.len_bytes(), 6 + paste.len());
    // Against a limit the bound could cross, the exact length decides.
    let mut near = RoomDoc::new();
    let mut b = SharedDoc::new();
    b.splice(0, 0, "hello world").unwrap();
    near.import_limited(&b.take_local_update().unwrap(), 6 + paste.len())
        .unwrap();
    b.splice(6, 5, &paste).unwrap();
    assert_eq!(
        near.import_limited(&b.take_local_update().unwrap(), 6 + paste.len()),
        Ok(true)
    );
    b.splice(0, 0, "!").unwrap();
    assert!(matches!(
        near.import_limited(&b.take_local_update().unwrap(), 6 + paste.len()),
        Err(DocError::TooLarge { .. })
    ));
}

/// A small room's keystrokes make a compaction due by their bytes only
/// past `TAIL_COMPACT_MIN_BYTES`, not once they are as big as its tiny
/// snapshot: a compaction's fixed cost, paid every 16 KiB by 50 small
/// rooms at 160 updates/s, was a third of the server's CPU.
#[test]
fn a_small_room_compacts_by_bytes_only_past_the_floor() {
    let mut room = RoomDoc::new();
    let mut typist = SharedDoc::new();
    let never_by_count = usize::MAX;
    let mut bytes = 0;
    while bytes < collab_doc::TAIL_COMPACT_MIN_BYTES / 2 {
        let at = typist.len_chars();
        typist.splice(at, 0, "k").unwrap();
        let u = typist.take_local_update().unwrap();
        bytes += u.len();
        room.import_limited(&u, 1 << 20).unwrap();
    }
    assert!(
        !room.compaction_due(never_by_count),
        "due after {bytes} bytes of keystrokes"
    );
    while bytes <= collab_doc::TAIL_COMPACT_MIN_BYTES {
        let at = typist.len_chars();
        typist.splice(at, 0, "k").unwrap();
        let u = typist.take_local_update().unwrap();
        bytes += u.len();
        room.import_limited(&u, 1 << 20).unwrap();
    }
    assert!(room.compaction_due(never_by_count));
}

/// The text a newcomer is shown first is kept until the kept snapshot is
/// replaced, and taken as of the last catch-up while the updates since
/// could not have grown it much; a text that could have grown past
/// eightfold (an empty one, say) is caught up first.
#[test]
fn the_text_shown_first_is_kept_and_caught_up_only_when_far_behind() {
    let inflate = |z: Arc<Vec<u8>>| {
        String::from_utf8(collab_doc::zlib::inflate(&z, 1 << 24).unwrap()).unwrap()
    };
    let mut typist = SharedDoc::new();
    let mut room = RoomDoc::new();
    assert_eq!(room.newcomer_text(), None, "no text, nothing to show");
    let page = "fn f() {}\n".repeat(500);
    typist.splice(0, 0, &page).unwrap();
    room.import_limited(&typist.take_local_update().unwrap(), 1 << 23)
        .unwrap();
    // Far behind (from nothing): caught up.
    assert!(!room.newcomer_text_ready());
    assert_eq!(inflate(room.newcomer_text().unwrap()), page);
    assert!(room.newcomer_text_ready());
    // Kept: a keystroke later, the same bytes.
    typist.splice(0, 0, "x").unwrap();
    room.import_limited(&typist.take_local_update().unwrap(), 1 << 23)
        .unwrap();
    assert_eq!(inflate(room.newcomer_text().unwrap()), page);
    // A compaction replaces it: taken again, as of the compaction, which
    // caught the text up (a keystroke since is not worth catching up for).
    room.compact().unwrap();
    typist.splice(0, 0, "y").unwrap();
    room.import_limited(&typist.take_local_update().unwrap(), 1 << 23)
        .unwrap();
    assert!(!room.newcomer_text_ready());
    assert_eq!(inflate(room.newcomer_text().unwrap()), format!("x{page}"));
}
