//! The store with a room on top: what a room queues, what a full queue
//! does to it, what a closing room leaves behind.
#![allow(clippy::unwrap_used)]

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Weak};
use std::time::Duration;

use collab_doc::{RoomDoc, SharedDoc};
use collab_protocol::{Limits, RoomId, UserName};
use tokio::sync::{mpsc, oneshot};

use super::handle::{Cmd, decode};
use super::{Loaded, Store, StoreHandle};
use crate::room::{Control, JoinRequest, Link, Room};
/// A stored room with alice in it, whose changes go to `handle`.
async fn room_with_alice(handle: StoreHandle) -> (Arc<Room>, crate::room::Joined) {
    let loaded = Loaded {
        doc: RoomDoc::new(),
        updates: 0,
        bytes: 0,
    };
    let room = Arc::new(Room::restored(
        RoomId::parse("q").unwrap(),
        1 << 20,
        loaded,
        handle,
    ));
    let (out, _out_rx) = mpsc::channel(64);
    let req = JoinRequest {
        name: UserName::parse("alice").unwrap(),
        session: None,
        version: None,
        link: Link {
            conn: 1,
            tx: out,
            control: Arc::new(Control::default()),
        },
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: 1 << 20,
            messages_per_second: 1,
            burst: 1,
        },
        max_users: 2,
        read_only: false,
    };
    let alice = room.join(req, || 7).await.ok().unwrap();
    (room, alice)
}

fn handle(tx: SyncSender<Cmd>) -> StoreHandle {
    StoreHandle {
        tx,
        path: Arc::default(),
        closing: Arc::default(),
        probe: None,
    }
}

/// A full store queue never blocks the room and loses nothing: the
/// next change that fits carries the whole snapshot.
/// Alice types `text` at the end of `doc`, and the room takes it.
async fn type_into(
    room: &Arc<Room>,
    alice: collab_protocol::UserId,
    doc: &mut SharedDoc,
    text: &str,
) {
    let at = doc.len_chars();
    doc.splice(at, 0, text).unwrap();
    let u = doc.take_local_update().unwrap();
    let info = collab_doc::UpdateInfo::read(&u).unwrap();
    room.update(alice, u, info, 1 << 20, 1000).await.unwrap();
}

#[tokio::test]
async fn a_full_queue_makes_the_next_change_a_snapshot() {
    let (tx, rx) = sync_channel(1);
    let (room, alice) = room_with_alice(handle(tx)).await;
    let mut doc = SharedDoc::new();
    type_into(&room, alice.id, &mut doc, "one ").await;
    // The queue (1) is full: dropped, room dirty.
    type_into(&room, alice.id, &mut doc, "two ").await;
    let Ok(Cmd::Append { data, .. }) = rx.try_recv() else {
        panic!("the first change is an append")
    };
    assert!(rx.try_recv().is_err(), "the second did not fit");
    type_into(&room, alice.id, &mut doc, "three").await;
    let Ok(Cmd::Snapshot { data: snap, .. }) = rx.try_recv() else {
        panic!("after an overflow the next change is a snapshot")
    };
    let restored = SharedDoc::from_snapshot(&snap).unwrap();
    assert_eq!(restored.text(), "one two three");
    let mut first = SharedDoc::new();
    first.import(&data).unwrap();
    assert_eq!(first.text(), "one ");
    // Back to appends.
    type_into(&room, alice.id, &mut doc, "!").await;
    assert!(matches!(rx.try_recv(), Ok(Cmd::Append { .. })));
}

/// A room that closes while the queue still refuses its changes hands
/// its last snapshot over beside the queue; the store thread takes it
/// before anything else, so a later load of the room has it.
#[tokio::test]
async fn a_room_closing_with_refused_changes_leaves_its_snapshot() {
    let (tx, rx) = sync_channel(1);
    let handle = handle(tx);
    let (room, alice) = room_with_alice(handle.clone()).await;
    let mut doc = SharedDoc::new();
    for text in ["one ", "two "] {
        type_into(&room, alice.id, &mut doc, text).await;
    }
    // "one " fills the queue, "two " is refused: the room is dirty.
    assert!(matches!(rx.try_recv(), Ok(Cmd::Append { .. })));
    assert!(rx.try_recv().is_err());
    // Fill the queue again, then alice leaves: the room closes.
    handle.append(room.id(), b"filler".to_vec());
    assert!(room.leave(alice.id, 1, collab_protocol::LeftReason::Left));
    let closing = handle.closing.lock().clone();
    let snap = closing.get(room.id()).expect("the last snapshot waits");
    assert_eq!(SharedDoc::from_snapshot(snap).unwrap().text(), "one two ");

    // A real store thread takes it before the load that follows.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Duration::from_secs(60), None, None, None).unwrap();
    store
        .handle()
        .closing
        .lock()
        .insert(room.id().clone(), snap.clone());
    let h = store.handle();
    let running = store.start(Weak::new()).unwrap();
    let (reply, got) = oneshot::channel();
    h.tx.send(Cmd::Load {
        room: room.id().clone(),
        reply,
    })
    .unwrap();
    let stored = got.await.unwrap().unwrap();
    let mut loaded = decode(room.id(), stored).unwrap();
    assert_eq!(loaded.doc.text(), "one two ");
    drop(running);
}
