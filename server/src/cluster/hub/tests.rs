//! The hub's bookkeeping against a real `redis-server` on a free loopback
//! port: a hub built without its tasks, so a test drives the reader's and
//! a room task's steps itself, in the order a race would take them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use collab_doc::SharedDoc;
use tokio::time::timeout;

use super::*;
use crate::cluster::ClusterConfig;
use crate::cluster::tests::redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(5);

const SETTINGS: Settings = Settings {
    max_doc_bytes: 1 << 20,
    compact_every: 1000,
};

fn room_id(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

async fn cluster(redis: &RedisServer, tune: impl FnOnce(&mut ClusterConfig)) -> Arc<Cluster> {
    let mut config = ClusterConfig::new(redis.url().parse().unwrap(), "a".parse().unwrap());
    tune(&mut config);
    let c = timeout(WAIT, Cluster::connect(config))
        .await
        .expect("connects in time")
        .expect("connects");
    Arc::new(c)
}

/// Another node's update entry.
fn update(data: Vec<u8>) -> Entry {
    Entry {
        kind: Kind::Update,
        node: "b".into(),
        from: 1,
        data,
        instance: 77,
    }
}

/// Two of another node's updates in the room's log, "a" then "b".
async fn two_updates(cluster: &Cluster, r: &RoomId) -> (EntryId, EntryId) {
    let mut doc = SharedDoc::new();
    let a = typed(&mut doc, "a");
    let b = typed(&mut doc, "b");
    (
        cluster.publish(r, &update(a)).await.unwrap(),
        cluster.publish(r, &update(b)).await.unwrap(),
    )
}

/// Hosts the room as `instance` with its cursor at `cursor` (a room that
/// is not alive: no reader runs here to drop it); its task's queue.
fn host(hub: &Hub, r: &RoomId, instance: u64, cursor: EntryId) -> mpsc::Receiver<Delivery> {
    let (tx, rx) = mpsc::channel(ROOM_QUEUE);
    let hosted = Hosted {
        room: Weak::new(),
        instance,
        cursor,
        tx,
    };
    hub.hosted.lock().insert(r.clone(), hosted);
    rx
}

fn typed(doc: &mut SharedDoc, text: &str) -> Vec<u8> {
    let at = doc.len_chars();
    doc.splice(at, 0, text).unwrap();
    doc.take_local_update().unwrap()
}

/// The reader took a room's cursor and blocked; meanwhile the room closed
/// and opened again as a new instance, loaded with a cursor further on.
/// What the old read brings is not the new instance's: its cursor stays
/// where the load put it, and nothing is handed to its task. (Before, the
/// read was handed over and the cursor moved to where the old read ended,
/// behind or past entries the new instance had not got.)
#[tokio::test]
async fn a_read_for_a_closed_instance_does_not_move_the_next_ones_cursor() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis, |_| {}).await;
    let (hub, _ops) = Hub::quiet(Arc::clone(&cluster), SETTINGS, 20);
    let r = room_id("notes");
    let (first, second) = two_updates(&cluster, &r).await;
    // The closed instance (1) read from the start of the log.
    let mut reader = cluster.reader().await.unwrap();
    let old_read = reader
        .read(&[(r.clone(), EntryId::ZERO)], Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(old_read.len(), 1);
    assert_eq!(old_read[0].last, second);
    // The new instance (2) was loaded with the first entry in it.
    let mut rx = host(&hub, &r, 2, first);
    for b in old_read {
        hub.dispatch(b, 1);
    }
    assert_eq!(hub.hosted.lock()[&r].cursor, first, "the cursor stays");
    assert!(rx.try_recv().is_err(), "nothing handed to the new instance");
}

/// The same read, for the instance hosted now, moves its cursor and hands
/// its entries over: the check above drops only stale reads.
#[tokio::test]
async fn a_read_for_the_hosted_instance_moves_its_cursor() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis, |_| {}).await;
    let (hub, _ops) = Hub::quiet(Arc::clone(&cluster), SETTINGS, 20);
    let r = room_id("notes");
    let (first, second) = two_updates(&cluster, &r).await;
    let mut rx = host(&hub, &r, 2, first);
    let mut reader = cluster.reader().await.unwrap();
    for b in reader
        .read(&[(r.clone(), first)], Duration::ZERO, 10)
        .await
        .unwrap()
    {
        hub.dispatch(b, 2);
    }
    assert_eq!(hub.hosted.lock()[&r].cursor, second);
    let d = rx.try_recv().expect("handed over");
    assert_eq!((d.from, d.last, d.entries.len()), (first, second, 1));
}

/// An update that builds on a change the room lacks waits; a snapshot then
/// due is not taken, since it would say the room holds every entry up to
/// the read's last and the log would be trimmed behind it, losing the
/// waiting update for every node. Once what it builds on arrives, the
/// update goes in and the snapshot is taken, holding both.
#[tokio::test]
async fn no_snapshot_is_taken_while_updates_wait_for_what_they_build_on() {
    let redis = RedisServer::start().await;
    let cluster = cluster(&redis, |c| c.snapshot_every = 1).await;
    let r = room_id("notes");
    let room = Arc::new(Room::new(r.clone(), 1 << 20));
    let mut doc = SharedDoc::new();
    let (a, b) = (typed(&mut doc, "a"), typed(&mut doc, "b"));
    let at_a = cluster.publish(&r, &update(a.clone())).await.unwrap();
    let at_b = cluster.publish(&r, &update(b.clone())).await.unwrap();

    let (tx, rx) = mpsc::channel(ROOM_QUEUE);
    let task = tokio::spawn(apply(
        Arc::downgrade(&room),
        rx,
        Arc::clone(&cluster),
        SETTINGS,
        Since::default(),
    ));
    let delivery = |entries: Vec<Remote>, from, last| Delivery {
        read: Since {
            entries: entries.len(),
            bytes: 1,
        },
        entries,
        from,
        last,
    };
    // "b" alone: its "a" was not read (trimmed before this node read it,
    // say, or the entries came out of order).
    tx.send(delivery(
        vec![Remote::Update { from: 1, data: b }],
        at_a,
        at_b,
    ))
    .await
    .unwrap();
    tx.send(delivery(Vec::new(), at_b, at_b)).await.unwrap();
    // The task took the second delivery, so it is done with the first
    // (whose snapshot, had it been taken, was awaited there).
    timeout(WAIT, async {
        while tx.capacity() < ROOM_QUEUE {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the room's task takes its deliveries");
    assert_eq!(
        cluster.snapshot_at(&r).await.unwrap(),
        None,
        "no snapshot while \"b\" waits for \"a\""
    );

    tx.send(delivery(
        vec![Remote::Update { from: 1, data: a }],
        at_b,
        at_b,
    ))
    .await
    .unwrap();
    drop(tx);
    timeout(WAIT, task)
        .await
        .expect("the room's task ends with its queue")
        .unwrap();
    let (snapshot, at) = cluster.snapshot(&r).await.unwrap().expect("a snapshot");
    assert_eq!(at, at_b);
    assert_eq!(SharedDoc::from_snapshot(&snapshot).unwrap().text(), "ab");
}
