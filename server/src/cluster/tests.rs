//! The Redis side against a real `redis-server` on a free loopback port
//! (one per test, so tests share nothing). Every wait is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../tests/common/redis.rs"]
pub(super) mod redis_server;

use std::time::Duration;

use tokio::time::timeout;

use super::*;
use redis_server::RedisServer;

const WAIT: Duration = Duration::from_secs(5);

fn room(name: &str) -> RoomId {
    RoomId::parse(name).unwrap()
}

fn config(redis: &RedisServer, node: &str) -> ClusterConfig {
    ClusterConfig::new(redis.url().parse().unwrap(), node.parse().unwrap())
}

async fn node(redis: &RedisServer, name: &str) -> Cluster {
    timeout(WAIT, Cluster::connect(config(redis, name)))
        .await
        .expect("connects in time")
        .expect("connects")
}

fn update(node: &str, from: u64, data: &[u8]) -> Entry {
    Entry {
        kind: Kind::Update,
        node: node.into(),
        from,
        data: data.to_vec(),
        instance: 7,
    }
}

/// A raw command, for a test to look at or damage what the module wrote.
async fn raw<T: redis::FromRedisValue>(c: &Cluster, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(&mut c.conn()).await.unwrap()
}

#[tokio::test]
async fn published_entries_come_back_in_order_by_range_and_by_read() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let r = room("notes");
    let first = a.publish(&r, &update("a", 1, b"one")).await.unwrap();
    let second = a.publish(&r, &update("a", 1, b"two")).await.unwrap();
    assert!(first < second, "{first} then {second}");

    let all = a.range(&r, EntryId::ZERO, 10).await.unwrap();
    assert_eq!(all.entries.len(), 2);
    assert_eq!(all.entries[0], (first, update("a", 1, b"one")));
    assert_eq!(all.last, second);
    // Paged: one at a time, each page after the last.
    let page = a.range(&r, EntryId::ZERO, 1).await.unwrap();
    assert_eq!(page.entries.len(), 1);
    let page = a.range(&r, page.last, 1).await.unwrap();
    assert_eq!(page.entries[0].1.data, b"two");
    let page = a.range(&r, page.last, 1).await.unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(page.last, second, "an empty page keeps the cursor");

    let mut reader = a.reader().await.unwrap();
    let got = reader
        .read(&[(r.clone(), first)], Duration::ZERO, 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].room, r);
    assert_eq!(got[0].entries, vec![(second, update("a", 1, b"two"))]);
}

/// One read covers several rooms, answers only for those with entries, and
/// takes at most `count` entries of each.
#[tokio::test]
async fn a_read_covers_the_rooms_asked_for_and_is_bounded() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let (busy, quiet, other) = (room("busy"), room("quiet"), room("other"));
    for i in 0..5u8 {
        a.publish(&busy, &update("a", 1, &[i])).await.unwrap();
    }
    a.publish(&other, &update("a", 2, b"not asked for"))
        .await
        .unwrap();
    let mut reader = a.reader().await.unwrap();
    let cursors = [
        (busy.clone(), EntryId::ZERO),
        (quiet.clone(), EntryId::ZERO),
    ];
    let got = reader.read(&cursors, Duration::ZERO, 3).await.unwrap();
    assert_eq!(got.len(), 1, "only the room with entries: {got:?}");
    assert_eq!(got[0].room, busy);
    assert_eq!(got[0].entries.len(), 3, "at most count");
    let rest = reader
        .read(&[(busy.clone(), got[0].last)], Duration::ZERO, 3)
        .await
        .unwrap();
    assert_eq!(
        rest[0]
            .entries
            .iter()
            .map(|(_, e)| e.data[0])
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    // Nothing new: a read that does not block answers nothing, at once
    // (BLOCK 0 would be forever).
    let none = reader
        .read(&[(busy.clone(), rest[0].last)], Duration::ZERO, 3)
        .await;
    assert!(none.unwrap().is_empty());
}

/// A blocked read wakes for an entry another node publishes, and ends at
/// once when unblocked (how a node adds a room to its read).
#[tokio::test]
async fn a_blocked_read_wakes_on_publish_and_on_unblock() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let r = room("notes");
    let mut reader = b.reader().await.unwrap();
    let reader_id = reader.id();
    let cursor = [(r.clone(), EntryId::ZERO)];
    let reading = tokio::spawn(async move {
        let got = reader.read(&cursor, MAX_BLOCK, 10).await;
        (reader, got)
    });
    wait_until_blocked(&b, reader_id).await;
    let id = a.publish(&r, &update("a", 1, b"hello")).await.unwrap();
    let (mut reader, got) = timeout(WAIT, reading).await.unwrap().unwrap();
    assert_eq!(
        got.unwrap()[0].entries,
        vec![(id, update("a", 1, b"hello"))]
    );

    // Blocked again, on a room that stays quiet: unblocking ends the wait
    // with nothing, long before MAX_BLOCK.
    let cursor = [(room("quiet"), EntryId::ZERO)];
    let reading = tokio::spawn(async move { reader.read(&cursor, MAX_BLOCK, 10).await });
    wait_until_blocked(&b, reader_id).await;
    let started = std::time::Instant::now();
    assert!(b.unblock(reader_id).await.unwrap());
    let got = timeout(WAIT, reading).await.unwrap().unwrap().unwrap();
    assert!(got.is_empty());
    assert!(started.elapsed() < MAX_BLOCK / 2, "{:?}", started.elapsed());
}

/// Waits until Redis lists the reader's connection as blocked (the event a
/// test can observe; bounded).
async fn wait_until_blocked(c: &Cluster, id: i64) {
    timeout(WAIT, async {
        loop {
            let list: String = raw(c, redis::cmd("CLIENT").arg("LIST").arg("ID").arg(id)).await;
            if list.contains("cmd=xread") && list.contains("flags=b") {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the reader blocks");
}

#[tokio::test]
async fn entries_over_the_bound_are_refused_and_bad_ones_skipped() {
    let redis = RedisServer::start().await;
    let mut cfg = config(&redis, "a");
    cfg.max_entry_bytes = 8;
    let a = Cluster::connect(cfg).await.unwrap();
    let r = room("notes");
    assert!(matches!(
        a.publish(&r, &update("a", 1, &[0; 9])).await,
        Err(ClusterError::TooLarge(9))
    ));
    // Written by something else: no kind, then too big, then a good one.
    let log = Keys::of(&r).log;
    let _: String = raw(&a, redis::cmd("XADD").arg(&log).arg("*").arg("x").arg("1")).await;
    let _: String = raw(
        &a,
        redis::cmd("XADD").arg(&log).arg("*").arg(&[
            "k",
            "u",
            "n",
            "b",
            "f",
            "1",
            "d",
            "0123456789",
        ]),
    )
    .await;
    let good = a.publish(&r, &update("a", 1, b"ok")).await.unwrap();
    let got = a.range(&r, EntryId::ZERO, 10).await.unwrap();
    assert_eq!(got.entries, vec![(good, update("a", 1, b"ok"))]);
    assert_eq!(got.last, good, "the cursor moves past what was skipped");
}

#[tokio::test]
async fn node_ids_are_unique_while_claimed() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    assert!(matches!(
        Cluster::connect(config(&redis, "a")).await,
        Err(ClusterError::NodeIdTaken(_))
    ));
    a.heartbeat().await.unwrap();
    a.release_node().await.unwrap();
    let again = node(&redis, "a").await;
    // The old claim is gone: its heartbeat says so.
    assert!(matches!(
        a.heartbeat().await,
        Err(ClusterError::NodeIdTaken(_))
    ));
    again.heartbeat().await.unwrap();
    // A claim Redis lost (restarted empty, or expired while it was away)
    // is taken again by its holder's next heartbeat.
    let key = node_key(again.node());
    let _: i64 = raw(&again, redis::cmd("DEL").arg(&key)).await;
    again.heartbeat().await.unwrap();
    let held: Option<String> = raw(&again, redis::cmd("GET").arg(&key)).await;
    assert_eq!(held.as_deref(), Some(again.token.as_str()));
}

/// Names are unique across nodes, a session moves between nodes without a
/// second `joined`, only the node holding a member releases it, and every
/// join and leave is in the log once.
#[tokio::test]
async fn members_are_claimed_across_nodes() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let r = room("notes");
    let id = a.next_member_id().await.unwrap();
    assert_ne!(b.next_member_id().await.unwrap(), id);

    let alice = br#"{"name":"alice"}"#;
    assert_eq!(
        a.claim_member(&r, "alice", None, "s1", alice, id, 2)
            .await
            .unwrap(),
        Claim::Joined(alice.to_vec())
    );
    // On another node: the name is taken; a wrong session is refused.
    assert_eq!(
        b.claim_member(&r, "alice", None, "s9", b"{}", 99, 2)
            .await
            .unwrap(),
        Claim::Taken
    );
    assert!(
        b.claim_member(&r, "zed", None, "", b"{}", 98, 2)
            .await
            .is_err()
    );
    assert!(
        b.claim_member(&r, "zed", None, "a b", b"{}", 98, 2)
            .await
            .is_err()
    );
    assert_eq!(
        b.claim_member(&r, "alice", Some("s9"), "s9", b"{}", 99, 2)
            .await
            .unwrap(),
        Claim::BadSession
    );
    // Her session moves to node b: her record stands, no second `joined`.
    assert_eq!(
        b.claim_member(&r, "alice", Some("s1"), "s1", b"{}", 99, 2)
            .await
            .unwrap(),
        Claim::Resumed(alice.to_vec())
    );
    // Full at 2.
    assert!(matches!(
        a.claim_member(&r, "bob", None, "s2", b"{}", 7, 2)
            .await
            .unwrap(),
        Claim::Joined(_)
    ));
    assert_eq!(
        a.claim_member(&r, "carol", None, "s3", b"{}", 8, 2)
            .await
            .unwrap(),
        Claim::Full
    );
    assert_eq!(a.members(&r).await.unwrap().len(), 2);
    // Node a no longer holds alice: it cannot release her; b can, once.
    assert!(!a.release_member(&r, "alice", "left").await.unwrap());
    assert_eq!(
        a.refresh_members(&r, &["alice", "bob"]).await.unwrap(),
        vec!["alice".to_owned()]
    );
    assert!(b.release_member(&r, "alice", "left").await.unwrap());
    assert!(!b.release_member(&r, "alice", "left").await.unwrap());

    let log = a.range(&r, EntryId::ZERO, 100).await.unwrap();
    let kinds: Vec<_> = log
        .entries
        .iter()
        .map(|(_, e)| (e.kind, e.node.as_str(), e.from))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::Joined, "a", id),
            (Kind::Joined, "a", 7),
            (Kind::Left, "b", id),
        ]
    );
    assert_eq!(log.entries[2].1.data, b"left");
}

/// A member whose node stopped refreshing it is removed by the next sweep
/// or join on any node, with one `left` (reason `disconnected`).
#[tokio::test]
async fn members_of_a_silent_node_expire() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let r = room("notes");
    a.claim_member(&r, "alice", None, "s1", b"{}", 1, 8)
        .await
        .unwrap();
    a.claim_member(&r, "bob", None, "s2", b"{}", 2, 8)
        .await
        .unwrap();
    // Node a went silent long ago, for alice: her time is up (Redis's
    // clock decides, so the test moves her deadline instead of waiting).
    let _: i64 = raw(
        &b,
        redis::cmd("ZADD")
            .arg(Keys::of(&r).alive)
            .arg(1)
            .arg("alice"),
    )
    .await;
    assert_eq!(b.sweep_members(&r).await.unwrap(), vec!["alice".to_owned()]);
    assert!(b.sweep_members(&r).await.unwrap().is_empty());
    let names: Vec<String> = a
        .members(&r)
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, vec!["bob".to_owned()]);
    // Her name is free again, on any node.
    assert!(matches!(
        b.claim_member(&r, "alice", Some("s1"), "s5", b"{}", 3, 8)
            .await
            .unwrap(),
        Claim::Joined(_)
    ));
    let log = a.range(&r, EntryId::ZERO, 100).await.unwrap();
    // Under node a's id, although b swept: b relays it to its own members
    // like any other node's entry.
    let left: Vec<_> = log
        .entries
        .iter()
        .filter(|(_, e)| e.kind == Kind::Left)
        .map(|(_, e)| (e.node.as_str(), e.from, e.data.clone()))
        .collect();
    assert_eq!(left, vec![("a", 1, b"disconnected".to_vec())]);
}

/// A newer snapshot is never replaced by an older one; the log is trimmed
/// behind it and the trim is visible to a reader that was behind.
#[tokio::test]
async fn snapshots_only_move_forward_and_the_log_is_trimmed_behind_them() {
    let redis = RedisServer::start().await;
    let a = node(&redis, "a").await;
    let r = room("notes");
    assert_eq!(a.snapshot(&r).await.unwrap(), None);
    assert_eq!(a.first_entry(&r).await.unwrap(), None);
    let mut ids = Vec::new();
    for i in 0..4u8 {
        ids.push(a.publish(&r, &update("a", 1, &[i])).await.unwrap());
    }
    assert!(a.put_snapshot(&r, b"at 2", ids[2]).await.unwrap());
    assert!(!a.put_snapshot(&r, b"at 1", ids[1]).await.unwrap());
    assert!(!a.put_snapshot(&r, b"at 2 again", ids[2]).await.unwrap());
    assert_eq!(
        a.snapshot(&r).await.unwrap(),
        Some((b"at 2".to_vec(), ids[2]))
    );

    assert_eq!(a.trim(&r, ids[3]).await.unwrap(), 3);
    let rest = a.range(&r, EntryId::ZERO, 10).await.unwrap();
    assert_eq!(rest.entries.len(), 1);
    assert_eq!(rest.entries[0].0, ids[3]);
    // A reader at ids[0] may have missed entries: it can tell.
    assert_eq!(a.first_entry(&r).await.unwrap(), Some(ids[3]));
}

/// Redis restarts with `appendonly yes`: what it acked is still there, and
/// the node's commands work again without a new `Cluster`.
#[tokio::test]
async fn a_restarted_redis_keeps_acked_entries_and_the_node_reconnects() {
    let mut redis = RedisServer::start_persistent().await;
    let a = node(&redis, "a").await;
    let r = room("notes");
    let acked = a.publish(&r, &update("a", 1, b"acked")).await.unwrap();
    redis.kill().await;
    assert!(a.publish(&r, &update("a", 1, b"lost")).await.is_err());
    redis.restart().await;
    // The connection manager reconnects in the background after the
    // failure; the first commands after the restart may still fail.
    let after = timeout(WAIT, async {
        loop {
            if let Ok(id) = a.publish(&r, &update("a", 1, b"after")).await {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the node reconnects");
    let log = a.range(&r, EntryId::ZERO, 10).await.unwrap();
    let ids: Vec<EntryId> = log.entries.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![acked, after]);
    a.ping().await.unwrap();
}

#[test]
fn node_ids_and_urls_are_checked_and_passwords_hidden() {
    assert!("node-a.1".parse::<NodeId>().is_ok());
    assert!("".parse::<NodeId>().is_err());
    assert!("a:b".parse::<NodeId>().is_err());
    assert!("a{b}".parse::<NodeId>().is_err());
    assert!("x".repeat(65).parse::<NodeId>().is_err());

    let url: RedisUrl = "redis://:s3cret@10.0.0.5:6379/0".parse().unwrap();
    assert_eq!(url.to_string(), "redis://:***@10.0.0.5:6379/0");
    assert!(!format!("{url:?}").contains("s3cret"));
    let url: RedisUrl = "redis://app:s3cret@host/2".parse().unwrap();
    assert_eq!(url.to_string(), "redis://app:***@host/2");
    assert_eq!(url.expose(), "redis://app:s3cret@host/2");
    let url: RedisUrl = "redis://127.0.0.1:6379/0".parse().unwrap();
    assert_eq!(url.to_string(), "redis://127.0.0.1:6379/0");
    assert!("http://host".parse::<RedisUrl>().is_err());
    assert!("not a url".parse::<RedisUrl>().is_err());
}
