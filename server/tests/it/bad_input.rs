//! Every kind of bad input gets an error event naming it; the connection
//! keeps working where the error is not fatal, and other users never notice.
//! Also: rate limiting and slow consumers.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_protocol::{Base64Bytes, ClientMsg, ErrorCode, LeftReason, Presence, ServerMsg};
use common::{Client, Server, join_msg, test_config};
use futures::SinkExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn malformed_events_are_named_and_the_connection_goes_on() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;

    let cases = [
        ("{not json", ErrorCode::InvalidJson, "JSON"),
        ("[1,2]", ErrorCode::InvalidMessage, "object"),
        (r#"{"text":"hi"}"#, ErrorCode::InvalidMessage, "type"),
        (r#"{"type":"dance"}"#, ErrorCode::UnknownType, "dance"),
        (r#"{"type":"chat"}"#, ErrorCode::InvalidMessage, "text"),
        (
            r#"{"type":"chat","text":5}"#,
            ErrorCode::InvalidMessage,
            "chat",
        ),
        (
            r#"{"type":"update","seq":"one","data":""}"#,
            ErrorCode::InvalidMessage,
            "update",
        ),
        (
            r#"{"type":"update","seq":1,"data":"%%%"}"#,
            ErrorCode::InvalidMessage,
            "base64",
        ),
        (
            r#"{"type":"chat","text":"hi","extra":1}"#,
            ErrorCode::InvalidMessage,
            "extra",
        ),
    ];
    for (text, code, mention) in cases {
        alice.send_raw(text).await;
        let (msg, _) = alice.expect_error(code).await;
        assert!(msg.contains(mention), "{text}: {msg}");
    }

    alice
        .ws
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    alice.expect_error(ErrorCode::BinaryFrame).await;

    alice
        .send(&ClientMsg::Join(join_msg("abc", "alice2")))
        .await;
    alice.expect_error(ErrorCode::AlreadyJoined).await;

    alice.ping_chat("still here").await;
    // Bob saw only the chat.
    assert!(matches!(bob.recv().await, ServerMsg::Chat { text, .. } if text == "still here"));
    bob.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn events_before_join_are_refused_then_join_works() {
    let server = Server::start(test_config()).await;
    let mut c = server.client().await;
    c.send(&ClientMsg::Chat { text: "hi".into() }).await;
    c.expect_error(ErrorCode::NotJoined).await;
    c.send_raw("{oops").await;
    c.expect_error(ErrorCode::InvalidJson).await;
    c.send_raw(r#"{"type":"join","room":"abc","user":"a"}"#)
        .await;
    c.expect_error(ErrorCode::InvalidMessage).await;
    let w = c.join("abc", "alice").await;
    assert_eq!(w.you.name, "alice");
    server.stop().await;
}

#[tokio::test]
async fn fatal_join_errors_close_the_connection() {
    let server = Server::start(test_config()).await;
    let fatal = [
        (
            r#"{"type":"join","protocol":99,"room":"abc","user":"a"}"#,
            ErrorCode::VersionMismatch,
            "upgrade the server",
        ),
        (
            r#"{"type":"join","protocol":1,"room":"no spaces","user":"a"}"#,
            ErrorCode::InvalidRoom,
            "no spaces",
        ),
        (
            r#"{"type":"join","protocol":1,"room":"abc","user":"a\nb"}"#,
            ErrorCode::InvalidName,
            "user name",
        ),
        (
            r#"{"type":"join","protocol":1,"room":"","user":"a"}"#,
            ErrorCode::InvalidRoom,
            "empty",
        ),
    ];
    for (text, code, mention) in fatal {
        let mut c = server.client().await;
        c.send_raw(text).await;
        let (msg, _) = c.expect_error(code).await;
        assert!(msg.contains(mention), "{text}: {msg}");
        assert!(c.expect_closed().await.is_empty(), "{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_frame_over_the_limit_gets_an_error_then_close() {
    let config = collab_server::Config {
        max_frame_bytes: 16 * 1024,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, wb) = server.join("abc", "bob").await;
    alice.recv().await;

    let big = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(200 * 1024));
    bob.send_raw(&big).await;
    // The error event arrives before the close.
    let (msg, _) = bob.expect_error(ErrorCode::FrameTooLarge).await;
    assert!(msg.contains("16384"), "{msg}");
    assert!(bob.expect_closed().await.is_empty());
    assert_eq!(
        alice.recv().await,
        ServerMsg::Left {
            id: wb.you.id,
            name: "bob".into(),
            reason: LeftReason::Removed
        }
    );
    alice.ping_chat("undisturbed").await;
    server.stop().await;
}

// Paused time: the 15 events arrive at one instant of the server's clock
// (the rate limiter reads tokio's), so the counts are exact, and the refill
// below is the clock moved on, not a wait.
#[tokio::test(start_paused = true)]
async fn over_the_rate_an_error_once_and_the_connection_stays() {
    let config = collab_server::Config {
        messages_per_second: 5,
        burst: 5,
        flood_max_refused: 1000,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    for i in 0..15 {
        alice
            .send(&ClientMsg::Chat {
                text: format!("m{i}"),
            })
            .await;
    }
    let (mut chats, mut errors) = (0, 0);
    // The burst (less the join) passes, the rest is refused with one error.
    for m in alice.collect_until_quiet(Duration::from_millis(300)).await {
        match m {
            ServerMsg::Chat { .. } => chats += 1,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            } => errors += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // One error for the whole burst; the burst less the join passes.
    assert_eq!(errors, 1);
    assert_eq!(chats, 4);
    // The bucket refills with time; the connection was never closed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    alice.ping_chat("calm again").await;
    server.stop().await;
}

#[tokio::test]
async fn a_sustained_flood_is_removed() {
    let config = collab_server::Config {
        messages_per_second: 5,
        burst: 5,
        flood_max_refused: 100,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, wb) = server.join("abc", "bob").await;
    alice.recv().await;

    // Bob floods (bounded: 300 events).
    let flood = ClientMsg::Presence(Presence::default()).to_json();
    for _ in 0..300 {
        if bob
            .ws
            .send(Message::Text(flood.clone().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let seen = bob.expect_closed().await;
    let codes: Vec<ErrorCode> = seen
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    // Refused first, once a second (not once per event), then removed with
    // a reason.
    assert!(
        (2..=3).contains(&codes.len()) && codes.iter().all(|c| *c == ErrorCode::RateLimited),
        "{seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(ServerMsg::Error { message, .. }) if message.contains("closes")),
        "{seen:?}"
    );
    let left = alice
        .recv_until(|m| matches!(m, ServerMsg::Left { .. }))
        .await;
    assert_eq!(
        left,
        ServerMsg::Left {
            id: wb.you.id,
            name: "bob".into(),
            reason: LeftReason::Removed
        }
    );
    alice.ping_chat("undisturbed").await;
    server.stop().await;
}

/// A WebSocket client whose socket buffers are tiny and who never reads.
async fn stalled_client(server: &Server) -> Client {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async(server.url(), stream)
        .await
        .unwrap();
    Client { ws }
}

#[tokio::test]
async fn a_slow_consumer_is_removed_and_the_room_goes_on() {
    let config = collab_server::Config {
        outbound_queue: 8,
        messages_per_second: 100_000,
        burst: 100_000,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut typist, _) = server.join("abc", "typist").await;
    let (mut watcher, _) = server.join("abc", "watcher").await;
    let mut slow = stalled_client(&server).await;
    let ws = slow.join("abc", "slow").await;
    typist
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;
    watcher
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;

    // The typist sends 64 KiB presence blobs (bounded: at most 500, ~45 MB
    // relayed) until the slow consumer is removed. The watcher reads each
    // one before the next is sent, so it never falls behind whatever the
    // machine's load; the stalled client never reads at all.
    let slow_id = ws.you.id;
    let blob = ClientMsg::Presence(Presence {
        cursor: Some(Base64Bytes(vec![7u8; 64 * 1024])),
        anchor: None,
    })
    .to_json();
    let mut removed = None;
    let mut relayed = 0usize;
    for _ in 0..500 {
        typist.send_raw(&blob).await;
        match watcher.recv().await {
            ServerMsg::Presence { .. } => relayed += 1,
            ServerMsg::Left { id, reason, .. } if id == slow_id => {
                removed = Some(reason);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        removed,
        Some(LeftReason::Removed),
        "after {relayed} relayed"
    );
    assert!(relayed > 0);
    // Everyone else is fine.
    typist.ping_chat("carry on").await;
    watcher
        .recv_until(|m| matches!(m, ServerMsg::Chat { text, .. } if text == "carry on"))
        .await;
    // The slow client, once it reads, finds what was in flight, then
    // `slow_consumer`, then close 1013 (try again later).
    let (events, close) = timeout(Duration::from_secs(20), slow.until_close())
        .await
        .expect("the slow connection is closed");
    assert_eq!(close, Some(1013));
    let last = events.last().expect("events before the close");
    assert_eq!(last["code"], "slow_consumer", "{last}");
    server.stop().await;
}

#[tokio::test]
async fn random_garbage_gets_errors_never_a_crash() {
    use rand::{RngExt, SeedableRng};
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"type\"",
        ":",
        ",",
        "\"chat\"",
        "\"update\"",
        "\"seq\"",
        "-1",
        "1e999",
        "null",
        "\"data\"",
        "\"AAAA\"",
        "\"\\u0000\"",
        "true",
        "\"join\"",
        "\"protocol\"",
        "18446744073709551616",
        "\"to\"",
        "\"text\"",
        "\"é\"",
        " ",
    ];
    for _ in 0..100 {
        let n = rng.random_range(1..12);
        let text: String = (0..n)
            .map(|_| pieces[rng.random_range(0..pieces.len())])
            .collect();
        alice.send_raw(&text).await;
        // Either an error or (rarely) a valid event's answer; never a close.
        let m = alice.recv().await;
        assert!(
            matches!(
                m,
                ServerMsg::Error { .. } | ServerMsg::Chat { .. } | ServerMsg::Ack { .. }
            ),
            "{text} -> {m:?}"
        );
    }
    alice.ping_chat("alive").await;
    bob.recv_until(|m| matches!(m, ServerMsg::Chat { text, .. } if text == "alive"))
        .await;
    server.stop().await;
}

/// A `wss://` client at a plain server: its TLS hello gets the connection
/// closed at once, not at the handshake deadline (set far away here).
#[tokio::test]
async fn a_tls_hello_at_a_plain_server_is_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(collab_server::Config {
        handshake_timeout: Duration::from_secs(600),
        ..test_config()
    })
    .await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The start of a TLS 1.2/1.3 ClientHello record.
    tcp.write_all(&[
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ])
    .await
    .unwrap();
    let mut buf = [0u8; 64];
    let read = timeout(common::WAIT, tcp.read(&mut buf))
        .await
        .expect("closed before the handshake deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.stop().await;
}
