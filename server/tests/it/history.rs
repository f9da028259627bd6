//! A room's history: compaction runs beside the room's relay, never in
//! its way.
#![allow(clippy::unwrap_used)]

use crate::common;
use collab_doc::testing::noise;

use collab_doc::SharedDoc;
use collab_protocol::{ClientMsg, ServerMsg, Welcome};
use collab_server::Config;
use common::{Client, Server, WAIT, edit, join_msg, replica, test_config};

/// Joins `room` as `user` and returns the welcome as it came (the test
/// helper folds the updates after the snapshot into it) and the document
/// it makes, its `doc_updates` imported.
async fn join_raw(server: &Server, room: &str, user: &str) -> (Client, Welcome, SharedDoc) {
    join_raw_with(server, join_msg(room, user)).await
}

/// [`join_raw`] with a join of one's own (a token, say).
async fn join_raw_with(
    server: &Server,
    join: collab_protocol::Join,
) -> (Client, Welcome, SharedDoc) {
    let mut client = server.client().await;
    client.send(&ClientMsg::Join(join)).await;
    let w = match client.recv().await {
        ServerMsg::Welcome(w) => *w,
        other => panic!("expected a welcome, got {other:?}"),
    };
    assert_eq!(w.doc_parts, 0);
    let mut doc = replica(&w);
    for _ in 0..w.doc_updates {
        match client.recv().await {
            ServerMsg::Update { from: 0, data } => {
                doc.import(data.as_slice()).unwrap();
            }
            other => panic!("expected the welcome's updates, got {other:?}"),
        }
    }
    (client, w, doc)
}

/// Compaction runs with no lock the relay takes: while a compaction of
/// the room is held (a test's stand-in for one of seconds), another
/// member's update is acked and relayed; released, it swaps in, and a
/// newcomer gets the whole text.
#[tokio::test]
async fn updates_are_relayed_while_the_room_compacts() {
    let server = Server::start(Config {
        compact_every: 3,
        ..test_config()
    })
    .await;
    let held = collab_server::hold_compaction("compacting");
    let (mut alice, wa) = server.join("compacting", "alice").await;
    let (mut bob, wb) = server.join("compacting", "bob").await;
    alice.recv().await; // bob joined
    let mut da = replica(&wa);
    let mut db = replica(&wb);
    for (seq, word) in ["one ", "two ", "three "].into_iter().enumerate() {
        let at = da.len_chars();
        let data = edit(&mut da, at, word);
        let seq = seq as u64 + 1;
        alice.send(&ClientMsg::Update { seq, data }).await;
        assert_eq!(alice.recv().await, ServerMsg::Ack { seq });
        match bob.recv().await {
            ServerMsg::Update { data, .. } => {
                db.import(data.as_slice()).unwrap();
            }
            other => panic!("expected an update, got {other:?}"),
        }
    }
    // The third import made a compaction due: it is running, and held.
    tokio::time::timeout(WAIT, held.started())
        .await
        .expect("a compaction starts after 3 imports");

    let data = edit(&mut db, 0, "bob: ");
    bob.send(&ClientMsg::Update { seq: 1, data }).await;
    assert_eq!(
        tokio::time::timeout(WAIT, bob.recv())
            .await
            .expect("acked while the room compacts"),
        ServerMsg::Ack { seq: 1 }
    );
    match tokio::time::timeout(WAIT, alice.recv())
        .await
        .expect("relayed while the room compacts")
    {
        ServerMsg::Update { data, .. } => {
            da.import(data.as_slice()).unwrap();
        }
        other => panic!("expected an update, got {other:?}"),
    }
    // A newcomer meanwhile gets the room as it is.
    let (_carol, wc, doc) = join_raw(&server, "compacting", "carol").await;
    // (No compaction has finished yet: the whole history, exported for
    // this newcomer as one update, nothing after it.)
    assert_eq!(wc.doc_updates, 0, "the history as one update");
    assert_eq!(doc.text(), "bob: one two three ");

    held.release();
    tokio::time::timeout(WAIT, held.finished())
        .await
        .expect("the compaction finishes");
    let (_dave, wd, doc) = join_raw(&server, "compacting", "dave").await;
    assert_eq!(
        wd.doc_updates, 1,
        "the compaction's history, then the update that came during it"
    );
    assert_eq!(doc.text(), "bob: one two three ");
    server.stop().await;
}

/// The room's bytes in the store: its snapshot and the updates after it.
fn stored_bytes(dir: &std::path::Path, room: &str) -> usize {
    use redb::TableDefinition;
    const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
    const UPDATES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("updates");
    let db = redb::Database::open(dir.join(collab_server::DB_FILE)).unwrap();
    let tx = db.begin_read().unwrap();
    let snapshot = tx
        .open_table(SNAPSHOTS)
        .unwrap()
        .get(room)
        .unwrap()
        .map_or(0, |s| s.value().len());
    let updates: usize = tx
        .open_table(UPDATES)
        .unwrap()
        .range((room, 0)..=(room, u64::MAX))
        .unwrap()
        .map(|r| r.unwrap().1.value().len())
        .sum();
    snapshot + updates
}

/// Issue 13: inserting and deleting the same 700 KiB 60 times left an
/// empty text, a 9.5 MB welcome and 71 MB stored (8 MB after 10 rounds of
/// this text, which does not compress). The history is bounded: every
/// newcomer's welcome (its snapshot and `doc_updates`) and what the store
/// keeps stay under `collab_doc::history_bound` of the text (4.6 MB), and
/// the member who churned keeps editing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_keeps_welcomes_and_the_store_within_the_history_bound() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(Config {
        storage: collab_server::Storage::Dir(dir.path().to_path_buf()),
        ..test_config()
    })
    .await;
    let (mut alice, wa) = server.join("churn", "alice").await;
    let mut da = replica(&wa);
    let chunk = noise(700 * 1024, 7);
    let mut seq = 0;
    let mut send = |doc: &mut SharedDoc| {
        seq += 1;
        let data = collab_protocol::Base64Bytes(doc.take_local_update().unwrap());
        (seq, ClientMsg::Update { seq, data })
    };
    da.splice(0, 0, "kept line\n").unwrap();
    let (s, m) = send(&mut da);
    alice.send(&m).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: s });
    // The text is at most the chunk and the line: the bound is of the
    // larger of the text now and at the room's last compaction.
    let bound = collab_doc::history_bound("kept line\n".len() + chunk.len());
    let mut worst = 0;
    for round in 1..=60 {
        for (del, ins) in [(0, chunk.as_str()), (chunk.len(), "")] {
            da.splice(0, del, ins).unwrap();
            let (s, m) = send(&mut da);
            alice.send(&m).await;
            assert_eq!(alice.recv().await, ServerMsg::Ack { seq: s });
        }
        if round % 10 == 0 {
            let mut probe = server.client().await;
            probe
                .send(&ClientMsg::Join(join_msg("churn", "probe")))
                .await;
            let ServerMsg::Welcome(mut w) = probe.recv().await else {
                panic!("expected a welcome")
            };
            for _ in 0..w.doc_parts {
                let ServerMsg::DocPart { data } = probe.recv().await else {
                    panic!("expected the welcome's parts")
                };
                w.doc.0.extend_from_slice(data.as_slice());
            }
            let mut bytes = w.doc.as_slice().len();
            let mut doc = replica(&w);
            for _ in 0..w.doc_updates {
                let ServerMsg::Update { data, .. } = probe.recv().await else {
                    panic!("expected the welcome's updates")
                };
                bytes += data.as_slice().len();
                doc.import(data.as_slice()).unwrap();
            }
            assert_eq!(doc.text(), "kept line\n");
            assert!(
                bytes <= bound,
                "round {round}: the welcome is {bytes} bytes, over the bound of {bound}"
            );
            worst = worst.max(bytes);
            probe.close().await;
            alice
                .recv_until(|m| matches!(m, ServerMsg::Left { .. }))
                .await;
        }
    }
    // Alice, connected throughout, edits on.
    da.splice(0, 0, ">").unwrap();
    let (s, m) = send(&mut da);
    alice.send(&m).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: s });
    alice.close().await;
    server.stop().await;
    let stored = stored_bytes(dir.path(), "churn");
    assert!(
        stored <= bound,
        "the store keeps {stored} bytes, over the bound of {bound}"
    );
    eprintln!("largest welcome {worst} bytes, stored {stored} bytes, bound {bound}");
}
