//! What docs/protocol.md tells a client beyond the events themselves, each
//! claim checked on the wire with raw frames: name and text rules, the
//! order of join checks, the open server's roles, presence relayed
//! unchecked, seeds, directs to oneself, "send it if the version vectors
//! say so", the silent-client lifetime and the size of the welcome.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_protocol::{ClientMsg, ErrorCode, ServerMsg};
use common::{Client, Frame, Server, edit, replica, test_config};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

async fn event(c: &mut Client) -> Value {
    match c.next_frame().await {
        Frame::Event(v) => v,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn answer(c: &mut Client, text: &str) -> Value {
    c.send_raw(text).await;
    let v = event(c).await;
    // A welcome's own updates (`doc_updates`) come with it.
    if v["type"] == "welcome" && v["doc_parts"] == 0 {
        for _ in 0..v["doc_updates"].as_u64().unwrap_or(0) {
            assert_eq!(event(c).await["type"], "update");
        }
    }
    v
}

fn join(room: &str, user: &str) -> String {
    json!({"type":"join","protocol":1,"room":room,"user":user}).to_string()
}

/// "Alphanumeric" is `char::is_alphanumeric`: Alphabetic or Nd/Nl/No.
#[tokio::test]
async fn names_follow_the_documented_unicode_property() {
    let server = Server::start(test_config()).await;
    for ok in ["a\u{0903}", "\u{2167}", "½", "ʰ", "名前", "Zoë"] {
        let mut c = server.client().await;
        assert_eq!(
            answer(&mut c, &join("abc", ok)).await["type"],
            "welcome",
            "{ok}"
        );
        let mut c = server.client().await;
        assert_eq!(
            answer(&mut c, &join(ok, "x")).await["type"],
            "welcome",
            "{ok}"
        );
    }
    for bad in ["e\u{0301}", "a b", "a/b", "a@b", "🙂"] {
        let mut c = server.client().await;
        c.send_raw(&join("abc", bad)).await;
        c.expect_errors_then_close(&[ErrorCode::InvalidName], 1008)
            .await;
    }
    server.stop().await;
}

/// White space is Unicode White_Space; Cc is refused but for \n and \t.
#[tokio::test]
async fn chat_text_follows_the_documented_rules() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    for bad in ["\u{3000}\u{a0} \n\t", "a\r\nb", "a\u{85}", "a\u{7f}"] {
        let v = answer(&mut alice, &json!({"type":"chat","text":bad}).to_string()).await;
        assert_eq!(v["code"], "invalid_text", "{bad:?}: {v}");
    }
    for ok in ["a\nb\tc", "zero\u{200b}width", "\u{202e}rtl"] {
        let v = answer(&mut alice, &json!({"type":"chat","text":ok}).to_string()).await;
        assert_eq!((&v["type"], &v["text"]), (&json!("chat"), &json!(ok)));
    }
    server.stop().await;
}

/// version, fields, token, room, user, version vector: the first failure
/// is the answer.
#[tokio::test]
async fn join_checks_come_in_the_documented_order() {
    let server = Server::start(collab_server::Config {
        access_token: Some("tok".into()),
        ..test_config()
    })
    .await;
    let cases = [
        (
            json!({"type":"join","protocol":3,"room":"a b","user":"c d","x":1}),
            "version_mismatch",
        ),
        (
            json!({"type":"join","protocol":1,"room":"a b","user":"c d","x":1}),
            "invalid_message",
        ),
        (
            json!({"type":"join","protocol":1,"room":"a b","user":"c d"}),
            "unauthorized",
        ),
        (
            json!({"type":"join","protocol":1,"room":"a b","user":"c d","token":"tok"}),
            "invalid_room",
        ),
        (
            json!({"type":"join","protocol":1,"room":"ab","user":"c d","token":"tok","version":"/w=="}),
            "invalid_name",
        ),
        (
            json!({"type":"join","protocol":1,"room":"ab","user":"cd","token":"tok","version":"/w=="}),
            "bad_update",
        ),
    ];
    for (j, code) in cases {
        let mut c = server.client().await;
        assert_eq!(answer(&mut c, &j.to_string()).await["code"], code, "{j}");
    }
    server.stop().await;
}

/// A server with only a read-only token is open: no token, or any other
/// token, joins as an editor; the read-only token joins as a viewer.
#[tokio::test]
async fn a_server_with_only_a_read_only_token_is_open() {
    let server = Server::start(collab_server::Config {
        read_only_token: Some("view".into()),
        ..test_config()
    })
    .await;
    let mut joined = Vec::new();
    for (user, token, read_only) in [
        ("a", None, false),
        ("b", Some("guess"), false),
        ("c", Some("view"), true),
    ] {
        let mut j = json!({"type":"join","protocol":1,"room":"abc","user":user});
        if let Some(t) = token {
            j["token"] = json!(t);
        }
        let mut c = server.client().await;
        let w = answer(&mut c, &j.to_string()).await;
        assert_eq!(w["you"]["read_only"], json!(read_only), "{token:?}");
        joined.push(c);
    }
    server.stop().await;
}

/// Presence: absent fields relay as null, undecodable cursors relay as
/// sent (the server checks only the base64).
#[tokio::test]
async fn presence_is_relayed_unchecked() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    let id = wa.you.id;
    alice.send_raw(r#"{"type":"presence"}"#).await;
    assert_eq!(
        event(&mut bob).await,
        json!({"type":"presence","id":id,"cursor":null,"anchor":null})
    );
    alice
        .send_raw(r#"{"type":"presence","cursor":"AAECAw==","anchor":"/////w=="}"#)
        .await;
    assert_eq!(
        event(&mut bob).await,
        json!({"type":"presence","id":id,"cursor":"AAECAw==","anchor":"/////w=="})
    );
    server.stop().await;
}

/// A seed is unchecked text; an empty one changes nothing; a direct to
/// oneself arrives once.
#[tokio::test]
async fn seeds_and_directs_to_oneself_as_documented() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let v = answer(&mut alice, r#"{"type":"seed","text":""}"#).await;
    assert_eq!(v, json!({"type":"seeded","applied":false}));
    let v = answer(&mut alice, r#"{"type":"seed","text":"a\r\u0007b"}"#).await;
    assert_eq!(v["type"], "update");
    assert_eq!(
        event(&mut alice).await,
        json!({"type":"seeded","applied":true})
    );
    let v = answer(
        &mut alice,
        r#"{"type":"direct","to":"alice","text":"note"}"#,
    )
    .await;
    assert_eq!((&v["type"], &v["to"]), (&json!("direct"), &json!("alice")));
    alice.ping_chat("nothing else").await;
    server.stop().await;
}

/// An export with nothing new is not empty, and sending it is harmless:
/// acked, nothing relayed. What to send is decided by version vectors.
#[tokio::test]
async fn an_export_with_nothing_new_is_not_empty_and_harmless() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    let mut doc = replica(&wa);
    let data = edit(&mut doc, 0, "hi");
    alice.send(&ClientMsg::Update { seq: 1, data }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 1 });
    bob.recv().await;
    let mut again = server.client().await;
    let mut j: Value = serde_json::from_str(&join("abc", "alice")).unwrap();
    j["session"] = json!(wa.session);
    let w = answer(&mut again, &j.to_string()).await;
    let server_vv = base64_decode(w["version"].as_str().unwrap());
    let nothing = doc.updates_since(&server_vv).unwrap();
    assert!(nothing.len() >= 16, "{} bytes", nothing.len());
    assert!(
        doc.is_covered_by(&server_vv).unwrap(),
        "the version vectors say: nothing to send"
    );
    let v = answer(
        &mut again,
        &json!({"type":"update","seq":2,"data":base64_encode(&nothing)}).to_string(),
    )
    .await;
    assert_eq!(v, json!({"type":"ack","seq":2}));
    bob.expect_silence(Duration::from_millis(150)).await;
    server.stop().await;
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A client that answers no ping is dropped between two and three ping
/// intervals after its last frame, with close 1001; the others see
/// `disconnected`.
#[tokio::test]
async fn a_silent_client_is_dropped_after_two_to_three_ping_intervals() {
    let ping = Duration::from_millis(200);
    let server = Server::start(collab_server::Config {
        ping_interval: ping,
        ..test_config()
    })
    .await;
    let (mut watcher, _) = server.join("abc", "watcher").await;
    let (silent, ws) = server.join("abc", "silent").await;
    watcher.recv().await;
    let started = tokio::time::Instant::now();
    // The silent client reads nothing (so answers no ping) until the
    // watcher hears that it left.
    let left = watcher
        .recv_until(|m| matches!(m, ServerMsg::Left { .. }))
        .await;
    let after = started.elapsed();
    assert_eq!(
        left,
        ServerMsg::Left {
            id: ws.you.id,
            name: "silent".into(),
            reason: collab_protocol::LeftReason::Disconnected
        }
    );
    // Two intervals after its last frame (the join, just before `started`)
    // at the earliest; three and scheduling slack at the latest.
    assert!(after >= ping * 3 / 2 && after < ping * 6, "{after:?}");
    // What it finds when it reads: pings, then close 1001. Read raw: a
    // WebSocket client answers each ping it reads with a pong, and a pong
    // to the socket the server has closed brings back a reset, which on a
    // busy machine came before the close frame was read (close: None).
    let mut silent = silent;
    let mut raw = Vec::new();
    let _ = timeout(
        Duration::from_secs(2),
        tokio::io::AsyncReadExt::read_to_end(silent.ws.get_mut(), &mut raw),
    )
    .await;
    assert_eq!(close_code(&raw), Some(1001), "{raw:?}");
    server.stop().await;
}

/// The welcome, the largest message the server sends, within the bound the
/// document gives today: 3 times the text plus 64 KiB, for text typed in
/// many small edits.
#[tokio::test]
async fn the_welcome_stays_within_the_documented_bound() {
    let server = Server::start(test_config()).await;
    let (mut alice, w) = server.join("abc", "alice").await;
    let mut doc = replica(&w);
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut seq = 0;
    let mut text_len = 0;
    // 256 KiB in 1 KiB edits of text that does not compress: a document
    // typed in pieces.
    while text_len < 256 * 1024 {
        let chunk: String = (0..1024)
            .map(|_| char::from(rng.random_range(b' '..=b'~')))
            .collect();
        let data = edit(&mut doc, text_len, &chunk);
        text_len += chunk.len();
        seq += 1;
        alice.send(&ClientMsg::Update { seq, data }).await;
        assert_eq!(alice.recv().await, ServerMsg::Ack { seq });
    }
    let mut c = server.client().await;
    c.send_raw(&join("abc", "bob")).await;
    let welcome = loop {
        match timeout(common::WAIT, c.ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => break t,
            _ => continue,
        }
    };
    let bound = 3 * text_len + 64 * 1024;
    assert!(
        welcome.len() <= bound,
        "a welcome of {} bytes for {text_len} bytes of text",
        welcome.len()
    );
    println!(
        "welcome {} bytes for {text_len} bytes of text",
        welcome.len()
    );
    server.stop().await;
}

/// The code of the first close frame in `raw`, the bytes a server sent
/// (RFC 6455 5.2: a server's frames are not masked).
fn close_code(raw: &[u8]) -> Option<u16> {
    let mut at = 0;
    while let (Some(&head), Some(&len)) = (raw.get(at), raw.get(at + 1)) {
        let (len, start) = match len & 0x7f {
            126 => (
                usize::from(u16::from_be_bytes(
                    raw.get(at + 2..at + 4)?.try_into().ok()?,
                )),
                at + 4,
            ),
            127 => (
                usize::try_from(u64::from_be_bytes(
                    raw.get(at + 2..at + 10)?.try_into().ok()?,
                ))
                .ok()?,
                at + 10,
            ),
            n => (usize::from(n), at + 2),
        };
        let payload = raw.get(start..start + len)?;
        if head & 0x0f == 0x8 {
            return payload
                .get(..2)
                .map(|code| u16::from_be_bytes([code[0], code[1]]));
        }
        at = start + len;
    }
    None
}
