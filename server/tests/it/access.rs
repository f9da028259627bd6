//! Access: the access token, the read-only token, per-IP connection caps,
//! and tokens kept out of logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use collab_protocol::{ClientMsg, ErrorCode, Join, Presence, ServerMsg};
use common::{Client, Server, WAIT, edit, join_msg, replica, test_config};
use tokio::time::Instant;

const EDIT: &str = "edit-t0ken-8d1f";
const VIEW: &str = "view-t0ken-4c2a";

fn with_token(room: &str, user: &str, token: Option<&str>) -> Join {
    Join {
        token: token.map(str::to_owned),
        ..join_msg(room, user)
    }
}

async fn token_server() -> Server {
    Server::start(collab_server::Config {
        access_token: Some(EDIT.into()),
        read_only_token: Some(VIEW.into()),
        ..test_config()
    })
    .await
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized_and_fatal() {
    let server = token_server().await;
    for token in [None, Some("nope"), Some(""), Some("edit-t0ken-8d1F")] {
        let mut c = server.client().await;
        c.send(&ClientMsg::Join(with_token("r", "eve", token)))
            .await;
        c.expect_error(ErrorCode::Unauthorized).await;
        assert!(c.expect_closed().await.is_empty(), "closed after the error");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_access_token_joins_as_an_editor() {
    let server = token_server().await;
    let mut c = server.client().await;
    let w = c.join_with(with_token("r", "alice", Some(EDIT))).await;
    assert!(!w.you.read_only);
    c.close().await;
    server.stop().await;
}

#[tokio::test]
async fn the_read_only_token_joins_as_a_viewer_that_others_see() {
    let server = token_server().await;
    let mut alice = server.client().await;
    alice.join_with(with_token("r", "alice", Some(EDIT))).await;
    let mut viewer = server.client().await;
    let w = viewer.join_with(with_token("r", "vic", Some(VIEW))).await;
    assert!(w.you.read_only);
    let me = w.members.iter().find(|m| m.name == "vic").unwrap();
    assert!(me.read_only);
    match alice.recv().await {
        ServerMsg::Joined { member } => {
            assert_eq!(member.name, "vic");
            assert!(member.read_only);
        }
        other => panic!("expected joined, got {other:?}"),
    }
    viewer.close().await;
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_cannot_edit_or_seed_and_nothing_changes() {
    let server = token_server().await;
    let mut alice = server.client().await;
    let wa = alice.join_with(with_token("r", "alice", Some(EDIT))).await;
    let mut doc_a = replica(&wa);
    let data = edit(&mut doc_a, 0, "hello");
    alice.send(&ClientMsg::Update { seq: 1, data }).await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Ack { seq: 1 }))
        .await;

    let mut viewer = server.client().await;
    let wv = viewer.join_with(with_token("r", "vic", Some(VIEW))).await;
    let mut doc_v = replica(&wv);
    assert_eq!(doc_v.text(), "hello");
    alice
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;

    let data = edit(&mut doc_v, 5, " world");
    viewer.send(&ClientMsg::Update { seq: 9, data }).await;
    let (_, seq) = viewer.expect_error(ErrorCode::ReadOnly).await;
    assert_eq!(seq, Some(9));
    viewer
        .send(&ClientMsg::Seed {
            text: "seeded".into(),
        })
        .await;
    let (_, seq) = viewer.expect_error(ErrorCode::ReadOnly).await;
    assert_eq!(seq, None);

    // Nothing reached alice (the chat round trip orders after the edit),
    // and a newcomer sees the unchanged document.
    alice.ping_chat("after").await;
    let (mut carol, wc) = server.join_editor("r", "carol").await;
    assert_eq!(replica(&wc).text(), "hello");
    carol.ping_chat("still here").await;
    viewer.ping_chat("viewer still connected").await;
    carol.close().await;
    viewer.close().await;
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn a_viewer_can_chat_and_show_its_caret() {
    let server = token_server().await;
    let (mut alice, _) = server.join_editor("r", "alice").await;
    let mut viewer = server.client().await;
    viewer.join_with(with_token("r", "vic", Some(VIEW))).await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Joined { .. }))
        .await;

    viewer
        .send(&ClientMsg::Chat {
            text: "nice fn".into(),
        })
        .await;
    for c in [&mut alice, &mut viewer] {
        match c.recv().await {
            ServerMsg::Chat { from, text, .. } => {
                assert_eq!(from.name, "vic");
                assert_eq!(text, "nice fn");
            }
            other => panic!("expected chat, got {other:?}"),
        }
    }
    viewer
        .send(&ClientMsg::Direct {
            to: "alice".into(),
            text: "psst".into(),
        })
        .await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Direct { text, .. } if text == "psst"))
        .await;
    viewer
        .send(&ClientMsg::Presence(Presence {
            cursor: None,
            anchor: None,
        }))
        .await;
    alice
        .recv_until(|m| matches!(m, ServerMsg::Presence { .. }))
        .await;
    viewer.close().await;
    alice.close().await;
    server.stop().await;
}

#[tokio::test]
async fn connections_per_ip_are_capped_with_server_full() {
    let server = Server::start(collab_server::Config {
        max_connections_per_ip: 2,
        cap_loopback_per_ip: true,
        ..test_config()
    })
    .await;
    // Each connect returns after the server accepted (and counted) it.
    let (a, _) = server.join("r", "a").await;
    let mut b = server.client().await;
    let mut c = server.client().await;
    let (message, _) = c.expect_error(ErrorCode::ServerFull).await;
    assert!(message.contains("address"), "{message}");
    assert!(c.expect_closed().await.is_empty());

    // A freed place is usable again (the server forgets a connection as
    // its task ends, just after the close handshake: retry until then).
    a.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut d = server.client().await;
        d.send(&ClientMsg::Join(join_msg("r", "d"))).await;
        match d.recv().await {
            ServerMsg::Welcome(_) => break,
            ServerMsg::Error {
                code: ErrorCode::ServerFull,
                ..
            } => assert!(Instant::now() < deadline, "the place was never freed"),
            other => panic!("unexpected {other:?}"),
        }
    }
    b.join("r", "b").await;
    b.close().await;
    server.stop().await;
}

/// Log lines, captured from the server's tracing output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test] // current-thread runtime: the server's tasks log on this thread
async fn tokens_never_reach_the_logs_or_debug_output() {
    let config = collab_server::Config {
        access_token: Some(EDIT.into()),
        read_only_token: Some(VIEW.into()),
        ..test_config()
    };
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(EDIT) && !debug.contains(VIEW), "{debug}");
    assert!(debug.contains("<redacted>"));

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = Server::start(config).await;
    let mut wrong = server.client().await;
    wrong
        .send(&ClientMsg::Join(with_token(
            "r",
            "eve",
            Some("edit-t0ken-8d1e"),
        )))
        .await;
    wrong.expect_error(ErrorCode::Unauthorized).await;
    let mut a = server.client().await;
    a.join_with(with_token("r", "alice", Some(EDIT))).await;
    let mut v = server.client().await;
    v.join_with(with_token("r", "vic", Some(VIEW))).await;
    v.close().await;
    a.close().await;
    server.stop().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("joined"), "the capture works: {text}");
    for secret in [EDIT, VIEW, "edit-t0ken-8d1e"] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
}

impl ServerExt for Server {
    async fn join_editor(&self, room: &str, user: &str) -> (Client, collab_protocol::Welcome) {
        let mut c = self.client().await;
        let w = c.join_with(with_token(room, user, Some(EDIT))).await;
        (c, w)
    }
}

trait ServerExt {
    async fn join_editor(&self, room: &str, user: &str) -> (Client, collab_protocol::Welcome);
}

#[tokio::test]
async fn loopback_is_exempt_from_the_per_ip_cap_by_default() {
    // A reverse proxy on the same host, local users, benchmarks: all come
    // from 127.0.0.1.
    let server = Server::start(collab_server::Config {
        max_connections_per_ip: 1,
        ..test_config()
    })
    .await;
    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(server.join("r", &format!("u{i}")).await.0);
    }
    for c in clients {
        c.close().await;
    }
    server.stop().await;
}
