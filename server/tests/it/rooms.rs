//! Joining, members, leaving, chat and direct messages, session takeover.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_protocol::{ClientMsg, ErrorCode, Join, LeftReason, ServerMsg};
use common::{Server, WAIT, join_msg, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn is_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn join_welcomes_with_members_and_tells_the_others() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    assert_eq!(wa.you.name, "alice");
    assert_eq!(wa.members, vec![wa.you.clone()]);
    assert!(is_color(&wa.you.color), "{}", wa.you.color);
    assert_eq!(wa.session.len(), 32, "128-bit hex token");
    assert!(!wa.resumed);
    assert_eq!(wa.doc_kind, collab_protocol::DocKind::Snapshot);
    assert_eq!(wa.limits, test_config().limits());

    let (_bob, wb) = server.join("abc", "bob").await;
    assert_eq!(wb.members.len(), 2);
    assert_eq!(wb.members[0], wa.you);
    assert_eq!(wb.members[1], wb.you);
    assert_ne!(wa.you.id, wb.you.id);
    assert_ne!(wa.you.color, wb.you.color);
    assert_ne!(wa.session, wb.session);

    match alice.recv().await {
        ServerMsg::Joined { member } => assert_eq!(member, wb.you),
        other => panic!("expected joined, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn rooms_are_separate() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("one", "alice").await;
    let (_bob, wb) = server.join("two", "alice").await;
    assert_eq!(wb.members.len(), 1, "same name in another room is fine");
    alice.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn leave_close_and_tcp_drop_each_send_left_once() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;

    // leave
    let (mut bob, wb) = server.join("abc", "bob").await;
    alice.recv().await; // joined
    bob.send(&ClientMsg::Leave).await;
    assert!(bob.expect_closed().await.is_empty());
    match alice.recv().await {
        ServerMsg::Left { id, name, reason } => {
            assert_eq!(
                (id, name.as_str(), reason),
                (wb.you.id, "bob", LeftReason::Left)
            );
        }
        other => panic!("expected left, got {other:?}"),
    }

    // close frame
    let (carol, wc) = server.join("abc", "carol").await;
    alice.recv().await;
    carol.close().await;
    assert_eq!(
        alice.recv().await,
        ServerMsg::Left {
            id: wc.you.id,
            name: "carol".into(),
            reason: LeftReason::Left
        }
    );

    // TCP drop without a close frame
    let (dave, wd) = server.join("abc", "dave").await;
    alice.recv().await;
    drop(dave);
    assert_eq!(
        alice.recv().await,
        ServerMsg::Left {
            id: wd.you.id,
            name: "dave".into(),
            reason: LeftReason::Disconnected
        }
    );
    // Exactly once: nothing more follows.
    alice.expect_silence(Duration::from_millis(300)).await;

    // The name is free again.
    let (_bob2, w) = server.join("abc", "bob").await;
    assert_eq!(w.members.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let config = collab_server::Config {
        ping_interval: Duration::from_millis(250),
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, _) = server.join("abc", "alice").await;

    // A raw socket: WebSocket handshake and join by hand, then it never
    // reads again (so it never answers a ping).
    let mut raw = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    raw.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = raw.read(&mut buf).await.unwrap();
    assert!(
        std::str::from_utf8(&buf[..n])
            .unwrap()
            .starts_with("HTTP/1.1 101")
    );
    let join = ClientMsg::Join(join_msg("abc", "mallory")).to_json();
    raw.write_all(&masked_text_frame(join.as_bytes()))
        .await
        .unwrap();

    let joined = alice.recv().await;
    let ServerMsg::Joined { member } = joined else {
        panic!("expected joined, got {joined:?}");
    };
    let started = std::time::Instant::now();
    assert_eq!(
        alice.recv().await,
        ServerMsg::Left {
            id: member.id,
            name: "mallory".into(),
            reason: LeftReason::Disconnected
        }
    );
    // Two intervals, give or take a tick; far less than the WAIT.
    assert!(started.elapsed() < Duration::from_secs(3));
    // Alice answers pings (her client does it while reading) and stays.
    alice.expect_silence(Duration::from_millis(500)).await;
    alice.ping_chat("still here").await;
    drop(raw);
    server.stop().await;
}

/// A client-to-server text frame (masked, as RFC 6455 requires).
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[tokio::test]
async fn a_live_name_is_refused_and_a_wrong_session_too() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;

    let mut dup = server.client().await;
    dup.send(&ClientMsg::Join(join_msg("abc", "alice"))).await;
    let (msg, _) = dup.expect_error(ErrorCode::NameTaken).await;
    assert!(msg.contains("alice"), "{msg}");
    assert!(dup.expect_closed().await.is_empty());

    let mut wrong = server.client().await;
    wrong
        .send(&ClientMsg::Join(Join {
            session: Some("0".repeat(32)),
            ..join_msg("abc", "alice")
        }))
        .await;
    wrong.expect_error(ErrorCode::BadSession).await;
    assert!(wrong.expect_closed().await.is_empty());

    // An unknown session for a name that is not live just joins.
    let mut fresh = server.client().await;
    let w = fresh
        .join_with(Join {
            session: Some("whatever".into()),
            ..join_msg("abc", "bob")
        })
        .await;
    assert!(!w.resumed);
    // Alice saw only bob.
    assert!(matches!(alice.recv().await, ServerMsg::Joined { member } if member.name == "bob"));
    alice.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_session_token_takes_over_without_flicker() {
    let server = Server::start(test_config()).await;
    let (mut carol, _) = server.join("abc", "carol").await;
    let (mut old, wa) = server.join("abc", "alice").await;
    carol.recv().await; // joined alice

    let mut new = server.client().await;
    let w = new
        .join_with(Join {
            session: Some(wa.session.clone()),
            ..join_msg("abc", "alice")
        })
        .await;
    assert!(w.resumed);
    assert_eq!(w.you.id, wa.you.id);
    assert_eq!(w.you.color, wa.you.color);
    assert_eq!(w.members.len(), 2);

    // The old connection is closed silently.
    assert!(old.expect_closed().await.is_empty());
    // The third member saw neither left nor joined.
    carol.expect_silence(Duration::from_millis(300)).await;

    // The new connection is alice for everyone.
    new.send(&ClientMsg::Chat {
        text: "back".into(),
    })
    .await;
    match carol.recv().await {
        ServerMsg::Chat { from, text, .. } => {
            assert_eq!((from.id, text.as_str()), (wa.you.id, "back"));
        }
        other => panic!("expected chat, got {other:?}"),
    }
    // And when it leaves, left is sent once.
    new.close().await;
    assert!(matches!(
        carol.recv().await,
        ServerMsg::Left { id, reason: LeftReason::Left, .. } if id == wa.you.id
    ));
    carol.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn chat_reaches_everyone_with_sender_and_time() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    alice
        .send(&ClientMsg::Chat {
            text: "hello\nworld".into(),
        })
        .await;
    for c in [&mut alice, &mut bob] {
        match c.recv().await {
            ServerMsg::Chat { from, text, time } => {
                assert_eq!(from.id, wa.you.id);
                assert_eq!(from.name, "alice");
                assert_eq!(text, "hello\nworld");
                assert!(time >= before && time < before + 60_000, "{time}");
            }
            other => panic!("expected chat, got {other:?}"),
        }
    }
    // Invalid text is refused, to the sender only.
    alice.send(&ClientMsg::Chat { text: "   ".into() }).await;
    alice.expect_error(ErrorCode::InvalidText).await;
    alice
        .send(&ClientMsg::Chat {
            text: "x".repeat(5000),
        })
        .await;
    alice.expect_error(ErrorCode::InvalidText).await;
    alice
        .send(&ClientMsg::Chat {
            text: "bell\u{7}".into(),
        })
        .await;
    alice.expect_error(ErrorCode::InvalidText).await;
    bob.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn direct_messages_go_to_one_member_and_echo() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    let (mut carol, _) = server.join("abc", "carol").await;
    alice.recv().await;
    alice.recv().await;
    bob.recv().await;

    alice
        .send(&ClientMsg::Direct {
            to: "bob".into(),
            text: "psst".into(),
        })
        .await;
    for c in [&mut alice, &mut bob] {
        match c.recv().await {
            ServerMsg::Direct { from, to, text, .. } => {
                assert_eq!(
                    (from.id, to.as_str(), text.as_str()),
                    (wa.you.id, "bob", "psst")
                );
            }
            other => panic!("expected direct, got {other:?}"),
        }
    }
    carol.expect_silence(Duration::from_millis(200)).await;

    alice
        .send(&ClientMsg::Direct {
            to: "zed".into(),
            text: "anyone?".into(),
        })
        .await;
    let (msg, _) = alice.expect_error(ErrorCode::NoSuchUser).await;
    assert!(msg.contains("zed"), "{msg}");
    alice.ping_chat("still works").await;
    server.stop().await;
}

#[tokio::test]
async fn presence_goes_to_the_others_with_the_sender_id() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    let p = collab_protocol::Presence {
        cursor: Some(vec![1, 2, 3].into()),
        anchor: None,
    };
    alice.send(&ClientMsg::Presence(p.clone())).await;
    assert_eq!(
        bob.recv().await,
        ServerMsg::Presence {
            id: wa.you.id,
            presence: p
        }
    );
    alice.expect_silence(Duration::from_millis(200)).await;
    // Not stored: a newcomer's welcome carries no presence, and nothing follows.
    let (mut carol, _) = server.join("abc", "carol").await;
    carol.expect_silence(Duration::from_millis(200)).await;
    let _ = WAIT;
    server.stop().await;
}

#[tokio::test]
async fn a_full_room_refuses() {
    let config = collab_server::Config {
        max_users_per_room: 2,
        max_rooms: 1,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (_a, _) = server.join("abc", "alice").await;
    let (_b, _) = server.join("abc", "bob").await;
    let mut c = server.client().await;
    c.send(&ClientMsg::Join(join_msg("abc", "carol"))).await;
    c.expect_error(ErrorCode::RoomFull).await;
    assert!(c.expect_closed().await.is_empty());
    let mut d = server.client().await;
    d.send(&ClientMsg::Join(join_msg("other", "dave"))).await;
    d.expect_error(ErrorCode::ServerFull).await;
    assert!(d.expect_closed().await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_access_token_is_required_when_configured() {
    let config = collab_server::Config {
        access_token: Some("s3cret".into()),
        ..test_config()
    };
    let server = Server::start(config).await;
    for token in [None, Some("wrong".to_string())] {
        let mut c = server.client().await;
        c.send(&ClientMsg::Join(Join {
            token,
            ..join_msg("abc", "alice")
        }))
        .await;
        c.expect_error(ErrorCode::Unauthorized).await;
        assert!(c.expect_closed().await.is_empty());
    }
    let mut c = server.client().await;
    let w = c
        .join_with(Join {
            token: Some("s3cret".into()),
            ..join_msg("abc", "alice")
        })
        .await;
    assert_eq!(w.you.name, "alice");
    server.stop().await;
}

/// Events that wait in a member's queue go out several per write (small
/// ones together, a big one in fragments after them): whatever the
/// grouping, the member gets every event whole and in order.
#[tokio::test]
async fn a_member_that_falls_behind_gets_every_event_in_order() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, wb) = server.join("abc", "bob").await;
    alice.recv().await; // joined
    let mut doc = common::replica(&wa);
    let mut expected = Vec::new();
    // Bob reads nothing while alice sends chats and, every 25th, an edit
    // bigger than a WebSocket fragment.
    for i in 0..200u64 {
        if i % 25 == 7 {
            let at = doc.len_chars();
            let data = common::edit(&mut doc, at, &format!("{i}:{}\n", "é".repeat(5000)));
            alice.send(&ClientMsg::Update { seq: i, data }).await;
            expected.push(format!("update {i}"));
        } else {
            alice
                .send(&ClientMsg::Chat {
                    text: format!("chat {i}"),
                })
                .await;
            expected.push(format!("chat {i}"));
        }
    }
    alice.ping_chat("done").await;
    let mut bob_doc = common::replica(&wb);
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        match bob.recv().await {
            ServerMsg::Chat { text, .. } => seen.push(text),
            ServerMsg::Update { data, .. } => {
                assert_eq!(bob_doc.import(data.as_slice()), Ok(true));
                // Which update: the number at the start of its line.
                let text = bob_doc.text();
                let last = text.lines().last().unwrap_or_default();
                seen.push(format!("update {}", last.split(':').next().unwrap()));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(bob_doc.text(), doc.text());
    server.stop().await;
}
