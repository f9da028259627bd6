//! A room's history: compaction runs beside the room's relay, never in
//! its way.
#![allow(clippy::unwrap_used)]

use crate::common;

use collab_doc::SharedDoc;
use collab_protocol::{ClientMsg, ServerMsg, Welcome};
use collab_server::Config;
use common::{Client, Server, WAIT, edit, join_msg, replica, test_config};

/// Joins `room` as `user` and returns the welcome as it came (the test
/// helper folds the updates after the snapshot into it) and the document
/// it makes, its `doc_updates` imported.
async fn join_raw(server: &Server, room: &str, user: &str) -> (Client, Welcome, SharedDoc) {
    let mut client = server.client().await;
    client.send(&ClientMsg::Join(join_msg(room, user))).await;
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
    assert_eq!(wc.doc_updates, 4, "the kept snapshot is as before");
    assert_eq!(doc.text(), "bob: one two three ");

    held.release();
    tokio::time::timeout(WAIT, held.finished())
        .await
        .expect("the compaction finishes");
    let (_dave, wd, doc) = join_raw(&server, "compacting", "dave").await;
    assert_eq!(
        wd.doc_updates, 1,
        "the update that came during the compaction"
    );
    assert_eq!(doc.text(), "bob: one two three ");
    server.stop().await;
}
