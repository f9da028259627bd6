//! Client against the real server: newcomer sync, seeding, undo, offline
//! edits, hostile updates.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_client::Client;
use collab_protocol::{Base64Bytes, ClientMsg, ErrorCode};
use common::Server;

#[tokio::test]
async fn an_edit_reaches_a_newcomer_and_a_member() {
    let server = Server::start().await;
    let alice = server.join("r", "alice").await;
    alice.edit(0, 0, "héllo 😀\r\n").unwrap();
    alice.wait_synced().await.unwrap();
    let bob = server.join("r", "bob").await;
    assert_eq!(bob.text(), "héllo 😀\r\n");
    bob.edit(6, 0, "wörld ").unwrap();
    alice.wait_text("héllo wörld 😀\r\n").await.unwrap();
    assert_eq!(server.room_text("r").await, "héllo wörld 😀\r\n");
    server.stop().await;
}

#[tokio::test]
async fn my_undo_leaves_a_concurrent_remote_edit_in_place() {
    let server = Server::start().await;
    let alice = server.join("undo", "alice").await;
    let bob = server.join("undo", "bob").await;
    alice.edit(0, 0, "mine ").unwrap();
    bob.wait_text("mine ").await.unwrap();
    bob.edit(5, 0, "theirs").unwrap();
    alice.wait_text("mine theirs").await.unwrap();
    assert!(alice.undo());
    assert_eq!(alice.text(), "theirs");
    bob.wait_text("theirs").await.unwrap();
    // Bob typed inside while alice's undo travelled; redo brings mine back.
    assert!(alice.redo());
    bob.wait_text("mine theirs").await.unwrap();
    alice.wait_synced().await.unwrap();
    bob.wait_synced().await.unwrap();
    assert_eq!(server.room_text("undo").await, "mine theirs");
    // Bob's undo reverts only bob's edit.
    assert!(bob.undo());
    alice.wait_text("mine ").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_first_joiner_seeds_and_a_newcomer_gets_the_file() {
    let server = Server::start().await;
    let file = "fn main() {\r\n    println!(\"¡hola 🌍\");\r\n}\n";
    let alice = Client::builder(&server.url, "seed", "alice")
        .options(Server::options())
        .seed(file)
        .join()
        .await
        .unwrap();
    alice.wait_text(file).await.unwrap();
    // A second seeder finds the room full of text: nothing happens.
    let bob = Client::builder(&server.url, "seed", "bob")
        .options(Server::options())
        .seed("other file")
        .join()
        .await
        .unwrap();
    assert_eq!(bob.text(), file);
    bob.seed("other file");
    assert_eq!(server.room_text("seed").await, file);
    server.stop().await;
}

#[tokio::test]
async fn two_clients_seeding_at_once_get_the_text_once() {
    let server = Server::start().await;
    let file = "shared file\n😀 line two\n";
    for round in 0..20 {
        let room = format!("race{round}");
        let builder = |user: &str| {
            Client::builder(&server.url, &room, user)
                .options(Server::options())
                .seed(file)
                .join()
        };
        let (a, b) = tokio::join!(builder("alice"), builder("bob"));
        let (a, b) = (a.unwrap(), b.unwrap());
        a.wait_text(file).await.unwrap();
        b.wait_text(file).await.unwrap();
        // Both got an answer to their seed, exactly one applied.
        let seeded = |c: &Client| {
            c.state()
                .events()
                .filter_map(|e| match e {
                    collab_client::ClientEvent::Seeded { applied } => Some(*applied),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        a.wait_for(|s| {
            s.events()
                .any(|e| matches!(e, collab_client::ClientEvent::Seeded { .. }))
        })
        .await
        .unwrap();
        b.wait_for(|s| {
            s.events()
                .any(|e| matches!(e, collab_client::ClientEvent::Seeded { .. }))
        })
        .await
        .unwrap();
        let applied: Vec<bool> = seeded(&a).into_iter().chain(seeded(&b)).collect();
        assert_eq!(applied.iter().filter(|x| **x).count(), 1, "{applied:?}");
        assert_eq!(server.room_text(&room).await, file);
    }
    server.stop().await;
}

#[tokio::test]
async fn offline_edits_merge_on_reconnect() {
    let server = Server::start().await;
    let alice = server.join("off", "alice").await;
    let bob = server.join("off", "bob").await;
    alice.edit(0, 0, "line one\n").unwrap();
    bob.wait_text("line one\n").await.unwrap();
    alice.wait_synced().await.unwrap();
    alice.go_offline().await.unwrap();
    alice.edit(9, 0, "alice offline\n").unwrap();
    alice.edit(0, 0, "# ").unwrap();
    assert_eq!(alice.unsent_edits(), 2, "{:?}", alice.state());
    bob.edit(9, 0, "bob online\n").unwrap();
    bob.wait_synced().await.unwrap();
    alice.go_online().await.unwrap();
    assert_eq!(alice.unsent_edits(), 0);
    let expected = alice.text();
    bob.wait_text(&expected).await.unwrap();
    assert!(expected.starts_with("# line one\n"), "{expected:?}");
    assert!(expected.contains("alice offline\n") && expected.contains("bob online\n"));
    assert_eq!(server.room_text("off").await, expected);
    // Alice is back (once), the probe is gone.
    bob.wait_for(|s| s.replica().members().len() == 2)
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn presence_follows_its_character_through_the_server() {
    let server = Server::start().await;
    let alice = server.join("p", "alice").await;
    let bob = server.join("p", "bob").await;
    alice.edit(0, 0, "hello world").unwrap();
    bob.wait_text("hello world").await.unwrap();
    alice.presence(6, Some(11));
    let alice_id = alice.state().replica().you().unwrap().id;
    bob.wait_for(|s| s.replica().member_cursor(alice_id).is_some())
        .await
        .unwrap();
    bob.edit(0, 0, "¡¡").unwrap();
    let cursor = bob.state().replica().member_cursor(alice_id);
    assert_eq!(cursor, Some((Some(8), Some(13))));
    server.stop().await;
}

#[tokio::test]
async fn a_taken_name_is_refused_without_retrying() {
    let server = Server::start().await;
    let _alice = server.join("names", "alice").await;
    let err = Client::builder(&server.url, "names", "alice")
        .options(Server::options())
        .join()
        .await
        .unwrap_err();
    match err {
        collab_client::ClientError::Refused(e) => assert_eq!(e.code, ErrorCode::NameTaken),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

/// Sends a raw update from `c` and waits for the error answering it.
async fn refused(c: &Client, data: Vec<u8>) -> ErrorCode {
    let seq = c.next_seq();
    c.send_raw(ClientMsg::Update {
        seq,
        data: Base64Bytes(data),
    });
    c.wait_for(|s| s.errors().iter().any(|(_, q)| *q == Some(seq)))
        .await
        .unwrap();
    let errors = c.state().errors();
    errors
        .into_iter()
        .find(|(_, q)| *q == Some(seq))
        .map(|(code, _)| code)
        .unwrap()
}

#[tokio::test]
async fn hostile_updates_are_refused_and_change_nothing() {
    let config = collab_server::Config {
        max_doc_bytes: 4096,
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    let alice = server.join("h", "alice").await;
    alice.edit(0, 0, "precious text").unwrap();
    alice.wait_synced().await.unwrap();
    let mallory = server.join("h", "mallory").await;
    let before = server.room_text("h").await;
    assert_eq!(before, "precious text");

    // Garbage bytes.
    assert_eq!(
        refused(&mallory, b"\x00\x01garbage".to_vec()).await,
        ErrorCode::BadUpdate
    );
    assert_eq!(refused(&mallory, Vec::new()).await, ErrorCode::BadUpdate);
    // History forged under alice's peer id, with other (and more) content.
    let alice_peer = alice.state().replica().doc().peer_id();
    let forged = collab_doc::forge_for_tests(alice_peer, "evil text, longer than hers");
    assert_eq!(refused(&mallory, forged).await, ErrorCode::BadUpdate);
    // An update that would grow the document past the limit.
    let mut big = collab_doc::SharedDoc::new();
    big.splice(0, 0, &"x".repeat(5000)).unwrap();
    let big = big.take_local_update().unwrap();
    assert_eq!(refused(&mallory, big).await, ErrorCode::DocTooLarge);

    assert_eq!(server.room_text("h").await, before);
    assert_eq!(alice.text(), before);
    // The room still works for everyone.
    mallory.edit(0, 0, "ok: ").unwrap();
    alice.wait_text("ok: precious text").await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_is_refused_and_changes_nothing() {
    let config = collab_server::Config {
        max_frame_bytes: 64 * 1024,
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    let alice = server.join("big", "alice").await;
    alice.edit(0, 0, "small").unwrap();
    alice.wait_synced().await.unwrap();
    let mallory = server.join("big", "mallory").await;
    let mut big = collab_doc::SharedDoc::new();
    let noise: String = (0..100_000u32)
        .map(|i| char::from_u32(0x4e00 + (i * 7919) % 20000).unwrap_or('x'))
        .collect();
    big.splice(0, 0, &noise).unwrap();
    let seq = mallory.next_seq();
    mallory.send_raw(ClientMsg::Update {
        seq,
        data: Base64Bytes(big.take_local_update().unwrap()),
    });
    // Refused with frame_too_large, or the connection is closed: either way
    // nothing reaches the room.
    mallory
        .wait_for_within(Duration::from_secs(10), |s| {
            s.errors()
                .iter()
                .any(|(c, _)| *c == ErrorCode::FrameTooLarge)
                || s.disconnects() > 0
        })
        .await
        .unwrap();
    assert_eq!(server.room_text("big").await, "small");
    assert_eq!(alice.text(), "small");
    server.stop().await;
}

#[tokio::test]
async fn a_server_restart_loses_nothing() {
    let first = Server::start().await;
    let addr = first.url.clone();
    let alice = first.join("restart", "alice").await;
    alice.edit(0, 0, "before the restart\n").unwrap();
    alice.wait_synced().await.unwrap();
    first.stop().await;
    // The client retries with backoff meanwhile; edits stay local.
    alice
        .wait_for(|s| !s.connected() && s.disconnects() > 0)
        .await
        .unwrap();
    alice.edit(0, 0, "typed while down\n").unwrap();
    assert_eq!(alice.unsent_edits(), 1);
    // A new server (empty: no storage) on the same address.
    let second = Server::start_on(&addr).await;
    alice.wait_synced().await.unwrap();
    let bob = second.join("restart", "bob").await;
    assert_eq!(bob.text(), "typed while down\nbefore the restart\n");
    second.stop().await;
}

#[tokio::test]
async fn updates_dropped_by_the_rate_limit_are_resent() {
    let config = collab_server::Config {
        messages_per_second: 20,
        burst: 10,
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    let alice = Client::builder(&server.url, "rl", "alice")
        .options(Server::options())
        .resend_after(Duration::from_millis(300))
        .join()
        .await
        .unwrap();
    // 60 updates at once: most are dropped by the server's rate limit.
    for i in 0..60 {
        alice.edit(i, 0, "é").unwrap();
    }
    alice.wait_synced().await.unwrap();
    assert!(
        alice
            .state()
            .errors()
            .iter()
            .any(|(c, _)| *c == ErrorCode::RateLimited),
        "the limit was hit"
    );
    assert_eq!(server.room_text("rl").await, "é".repeat(60));
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_for_good_and_the_right_one_joins() {
    let config = collab_server::Config {
        access_token: Some("s3cret".into()),
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    for token in [None, Some("wrong")] {
        let mut b = Client::builder(&server.url, "t", "alice").options(Server::options());
        if let Some(t) = token {
            b = b.token(t);
        }
        match b.join().await.unwrap_err() {
            collab_client::ClientError::Refused(e) => assert_eq!(e.code, ErrorCode::Unauthorized),
            other => panic!("{other:?}"),
        }
    }
    let alice = Client::builder(&server.url, "t", "alice")
        .options(Server::options())
        .token("s3cret")
        .join()
        .await
        .unwrap();
    alice.edit(0, 0, "in").unwrap();
    alice.wait_synced().await.unwrap();
    // Reconnects carry the token too.
    alice.go_offline().await.unwrap();
    alice.go_online().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_as_slow_consumer_resyncs() {
    let config = collab_server::Config {
        outbound_queue: 2,
        messages_per_second: 1_000_000,
        burst: 1_000_000,
        ..collab_server::Config::default()
    };
    let server = Server::start_with(config).await;
    let alice = server.join("slow", "alice").await;
    let bob = server.join("slow", "bob").await;
    // Fat updates as fast as alice can: bob's queue of 2 overflows when
    // his socket falls behind, he is removed, reconnects and resyncs.
    let line = "0123456789abcdef😀\r\n".repeat(200);
    for i in 0..300 {
        alice.edit(0, 0, &format!("{i}:{line}")).unwrap();
    }
    alice.wait_synced().await.unwrap();
    bob.wait_includes(&alice.version()).await.unwrap();
    assert_eq!(bob.text(), alice.text());
    let removed = bob
        .state()
        .errors()
        .iter()
        .any(|(c, _)| *c == ErrorCode::SlowConsumer);
    println!(
        "bob removed as slow consumer: {removed}, disconnects: {}",
        bob.state().disconnects()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_paste_larger_than_a_frame_goes_out_in_parts() {
    let server = Server::start().await; // 1 MiB frames, 8 MiB documents
    let alice = server.join("paste", "alice").await;
    let bob = server.join("paste", "bob").await;
    let paste = "fn main() { println!(\"héllo 😀\"); }\r\n".repeat(80_000); // ~3 MB
    alice.edit(0, 0, &paste).unwrap();
    alice.edit(0, 0, "// typed right after\n").unwrap();
    alice.wait_synced().await.unwrap();
    bob.wait_includes(&alice.version()).await.unwrap();
    assert!(bob.text() == alice.text());
    assert!(
        alice.state().errors().is_empty(),
        "{:?}",
        alice.state().errors()
    );
    // Offline, then a room that forgot everything: both leave, the room is
    // dropped, alice comes back with the whole document in parts.
    alice.go_offline().await.unwrap();
    bob.close().await.unwrap();
    alice.go_online().await.unwrap();
    assert!(server.room_text("paste").await == alice.text());
    server.stop().await;
}

/// After a restart the server gives a returning member a new session. If
/// her connection drops before she reads that welcome, she comes back with
/// the old server's token while her dropped connection still holds her
/// name: `bad_session`, which was fatal, so she stopped reconnecting for
/// good with her offline edits (1 of 10,000 convergence schedules). Welcomed
/// before, she now forgets the token and joins again after a backoff.
#[tokio::test]
async fn a_stale_session_after_a_restart_joins_again() {
    let server = Server::start().await;
    let url = server.url.clone();
    // A backoff long enough for her ghost to go before she retries.
    let options = collab_client::ConnectOptions {
        backoff: collab_client::Backoff {
            initial: Duration::from_millis(300),
            max: Duration::from_millis(300),
            jitter: 0.0,
        },
        ..Server::options()
    };
    let alice = Client::builder(&url, "stale", "alice")
        .options(options)
        .timeout(Duration::from_secs(20))
        .join()
        .await
        .unwrap();
    alice.edit(0, 0, "before\n").unwrap();
    alice.wait_synced().await.unwrap();
    alice.go_offline().await.unwrap();
    alice.edit(7, 0, "offline\n").unwrap();
    server.stop().await;
    let server = Server::start_on(&url).await;
    // Her ghost: a connection holding her name on the new server, as her
    // unread welcome's connection does.
    let ghost = server.join("stale", "alice").await;
    let before = alice.state().disconnects();
    alice.reconnect();
    // Refused (bad_session), the connection drops and waits its backoff.
    alice.wait_for(|s| s.disconnects() > before).await.unwrap();
    ghost.close().await.unwrap();
    alice.wait_for(|s| s.welcomes() == 2).await.unwrap();
    alice.wait_synced().await.unwrap();
    // Nothing to tell her user: she is back.
    assert!(
        alice.state().errors().is_empty(),
        "{:?}",
        alice.state().errors()
    );
    assert_eq!(server.room_text("stale").await, "before\noffline\n");
    server.stop().await;
}
