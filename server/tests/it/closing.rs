//! How connections end, pinned on the wire: every way has its close frame
//! and code (docs/protocol.md, "How a connection ends"), so a client never
//! mistakes a normal end for a failure.
#![allow(clippy::unwrap_used)]

use crate::common;

use collab_protocol::{ClientMsg, ErrorCode, LeftReason, ServerMsg};
use common::{Frame, Server, test_config};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

/// RFC 6455 §5.5.1: the server answers a client's close frame with its own,
/// echoing the code, before the TCP connection goes; joined or not.
#[tokio::test]
async fn a_client_close_is_answered_with_a_close() {
    let server = Server::start(test_config()).await;
    let (mut watcher, _) = server.join("abc", "watcher").await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    watcher.recv().await;
    let mut lurker = server.client().await;
    for c in [&mut alice, &mut lurker] {
        c.ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
        match c.next_frame().await {
            Frame::Close(Some((code, _))) => assert_eq!(code, 1000),
            other => panic!("expected the server's close, got {other:?}"),
        }
    }
    assert_eq!(
        watcher.recv().await,
        ServerMsg::Left {
            id: wa.you.id,
            name: "alice".into(),
            reason: LeftReason::Left
        }
    );
    server.stop().await;
}

/// `leave` ends with close 1000: a normal closure, not an abnormal one.
#[tokio::test]
async fn leave_ends_with_close_1000() {
    let server = Server::start(test_config()).await;
    let (mut watcher, _) = server.join("abc", "watcher").await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    watcher.recv().await;
    alice.send(&ClientMsg::Leave).await;
    assert_eq!(alice.until_close().await, (vec![], Some(1000)));
    assert_eq!(
        watcher.recv().await,
        ServerMsg::Left {
            id: wa.you.id,
            name: "alice".into(),
            reason: LeftReason::Left
        }
    );
    server.stop().await;
}

/// A text frame that is not UTF-8 breaks RFC 6455: close 1007 (invalid
/// frame payload data), whole or fragmented, overlong encodings included.
#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let server = Server::start(test_config()).await;
    let (mut watcher, _) = server.join("abc", "watcher").await;
    let text = |bytes: &'static [u8], fin: bool| {
        Message::Frame(
            tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
                bytes,
                OpCode::Data(Data::Text),
                fin,
            ),
        )
    };
    let more = |bytes: &'static [u8]| {
        Message::Frame(
            tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
                bytes,
                OpCode::Data(Data::Continue),
                true,
            ),
        )
    };
    let cases: [(&str, Vec<Message>); 4] = [
        ("0xff", vec![text(b"\xff", true)]),
        ("overlong NUL", vec![text(b"\xc0\x80", true)]),
        (
            "surrogate",
            vec![text(b"{\"type\":\"chat\",\"text\":\"\xed\xa0\x80\"}", true)],
        ),
        (
            "fragmented",
            vec![
                text(b"{\"type\":\"chat\",", false),
                more(b"\"text\":\"\xc0\xaf\"}"),
            ],
        ),
    ];
    for (i, (what, frames)) in cases.into_iter().enumerate() {
        let (mut c, w) = server.join("abc", &format!("u{i}")).await;
        watcher.recv().await;
        for f in frames {
            c.ws.send(f).await.unwrap();
        }
        assert_eq!(c.until_close().await, (vec![], Some(1007)), "{what}");
        assert!(
            matches!(watcher.recv().await, ServerMsg::Left { id, reason: LeftReason::Removed, .. } if id == w.you.id),
            "{what}"
        );
    }
    // Before the join too.
    let mut c = server.client().await;
    c.ws.send(text(b"\xff", true)).await.unwrap();
    assert_eq!(c.until_close().await, (vec![], Some(1007)));
    watcher.ping_chat("undisturbed").await;
    server.stop().await;
}

/// A refused join closes with 1008 (change what you send), except a full
/// room or server: 1013 (try again later), like the connection caps.
#[tokio::test]
async fn refused_joins_close_with_1008_and_full_ones_with_1013() {
    let config = collab_server::Config {
        max_rooms: 1,
        max_users_per_room: 1,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (_alice, _) = server.join("abc", "alice").await;
    let cases = [
        (
            r#"{"type":"join","protocol":3,"room":"abc","user":"bob"}"#,
            ErrorCode::VersionMismatch,
            1008,
        ),
        (
            r#"{"type":"join","protocol":1,"room":"abc","user":"alice"}"#,
            ErrorCode::NameTaken,
            1008,
        ),
        (
            r#"{"type":"join","protocol":1,"room":"abc","user":"bob"}"#,
            ErrorCode::RoomFull,
            1013,
        ),
        (
            r#"{"type":"join","protocol":1,"room":"xyz","user":"bob"}"#,
            ErrorCode::ServerFull,
            1013,
        ),
    ];
    for (join, code, close) in cases {
        let mut c = server.client().await;
        c.send_raw(join).await;
        c.expect_errors_then_close(&[code], close).await;
    }
    server.stop().await;
}
