//! Where the server and docs/protocol.md once disagreed, pinned with raw
//! frames: each test sends what a client written from the document alone
//! (or a hostile one) sends, and checks the documented answer, whether the
//! connection survives it, and the close code when it does not.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_protocol::{ErrorCode, ServerMsg};
use common::{Client, Server, edit, replica, test_config};
use serde_json::{Value, json};

/// The next event as raw JSON.
async fn event(c: &mut Client) -> Value {
    match c.next_frame().await {
        common::Frame::Event(v) => v,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Sends `text` and returns the next event as raw JSON.
async fn answer(c: &mut Client, text: &str) -> Value {
    c.send_raw(text).await;
    event(c).await
}

fn error_code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "{v}");
    v["code"].as_str().unwrap()
}

/// Client events refuse unknown fields, `leave` included: refused, not
/// performed.
#[tokio::test]
async fn leave_with_an_unknown_field_is_refused_not_performed() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let v = answer(&mut alice, r#"{"type":"leave","x":1}"#).await;
    assert_eq!(error_code(&v), "invalid_message");
    assert!(v["message"].as_str().unwrap().contains('x'), "{v}");
    alice.ping_chat("still in").await;
    server.stop().await;
}

/// Any `protocol` number but the integers 1 and 2 gets `version_mismatch` (fatal,
/// 1008), whatever the other fields are; a `protocol` that is not a number
/// gets `invalid_message` (not fatal).
#[tokio::test]
async fn every_other_protocol_number_is_a_version_mismatch() {
    let server = Server::start(test_config()).await;
    for p in [
        "-1",
        "-9223372036854775808",
        "1e30",
        "1.0",
        "2.0",
        "3",
        "0",
        "4294967297",
    ] {
        let mut c = server.client().await;
        c.send_raw(&format!(r#"{{"type":"join","protocol":{p},"room":"abc"}}"#))
            .await;
        c.expect_errors_then_close(&[ErrorCode::VersionMismatch], 1008)
            .await;
    }
    let mut c = server.client().await;
    let v = answer(
        &mut c,
        r#"{"type":"join","protocol":"1","room":"abc","user":"a"}"#,
    )
    .await;
    assert_eq!(error_code(&v), "invalid_message");
    c.join("abc", "a").await;
    server.stop().await;
}

/// A join's `version` that is base64 but no version vector: `bad_update`,
/// not fatal; the connection stays unjoined and may join again.
#[tokio::test]
async fn a_version_that_does_not_decode_is_bad_update() {
    let server = Server::start(test_config()).await;
    let mut c = server.client().await;
    let v = answer(
        &mut c,
        r#"{"type":"join","protocol":1,"room":"abc","user":"a","version":"/////w=="}"#,
    )
    .await;
    assert_eq!(error_code(&v), "bad_update");
    assert!(v.get("seq").is_none(), "{v}");
    let w = c.join("abc", "a").await;
    assert_eq!(w.you.name, "a");
    server.stop().await;
}

/// Every answer to an `update` whose `seq` is readable carries it, however
/// else the update is wrong, and before the join too.
#[tokio::test]
async fn every_answer_to_an_update_with_a_readable_seq_carries_it() {
    let server = Server::start(test_config()).await;
    let mut lurker = server.client().await;
    let v = answer(&mut lurker, r#"{"type":"update","seq":5,"data":"AAAA"}"#).await;
    assert_eq!((error_code(&v), &v["seq"]), ("not_joined", &json!(5)));
    let v = answer(&mut lurker, r#"{"type":"update","seq":6,"data":"%%%"}"#).await;
    assert_eq!((error_code(&v), &v["seq"]), ("invalid_message", &json!(6)));

    let (mut alice, _) = server.join("abc", "alice").await;
    let cases = [
        (
            r#"{"type":"update","seq":7,"data":"%%%"}"#,
            "invalid_message",
        ),
        (r#"{"type":"update","seq":8}"#, "invalid_message"),
        (
            r#"{"type":"update","seq":9,"data":"AAAA","x":1}"#,
            "invalid_message",
        ),
        (r#"{"type":"update","seq":10,"data":"AAAA"}"#, "bad_update"),
    ];
    for (text, code) in cases {
        let v = answer(&mut alice, text).await;
        let seq: Value = serde_json::from_str::<Value>(text).unwrap()["seq"].clone();
        assert_eq!((error_code(&v), &v["seq"]), (code, &seq), "{text}");
    }
    // A seq that is not a number is not readable: no seq.
    let v = answer(&mut alice, r#"{"type":"update","seq":"one","data":""}"#).await;
    assert_eq!(error_code(&v), "invalid_message");
    assert!(v.get("seq").is_none(), "{v}");
    server.stop().await;
}

/// Over the rate limit, every dropped `update` is answered with
/// `rate_limited` and its seq (a client waiting for that seq's answer must
/// not wait forever); other events get one error a second.
#[tokio::test]
async fn a_rate_limited_update_is_answered_with_its_seq() {
    let config = collab_server::Config {
        messages_per_second: 1,
        burst: 2,
        flood_max_refused: 1000,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, w) = server.join("abc", "alice").await;
    let mut doc = replica(&w);
    let mut seqs = Vec::new();
    for seq in 1..=6u64 {
        let data = edit(&mut doc, 0, "x");
        alice
            .send_raw(&json!({"type":"update","seq":seq,"data":data}).to_string())
            .await;
        seqs.push(seq);
    }
    let mut answered = Vec::new();
    while answered.len() < seqs.len() {
        match alice.recv().await {
            ServerMsg::Ack { seq } => answered.push(seq),
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                seq: Some(seq),
                ..
            } => answered.push(seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answered, seqs, "every update answered, in order");
    server.stop().await;
}

/// `seq` is not checked: the server echoes whatever the client sent, in
/// the order sent (docs/protocol.md, 5.2).
#[tokio::test]
async fn seq_is_echoed_not_checked() {
    let server = Server::start(test_config()).await;
    let (mut alice, w) = server.join("abc", "alice").await;
    let mut doc = replica(&w);
    for seq in [8u64, 3, 3, 0] {
        let data = edit(&mut doc, 0, "y");
        let v = answer(
            &mut alice,
            &json!({"type":"update","seq":seq,"data":data}).to_string(),
        )
        .await;
        assert_eq!(v, json!({"type":"ack","seq":seq}));
    }
    server.stop().await;
}

/// A second `join` on a joined connection gets `already_joined` and
/// nothing else happens, whatever its `protocol`.
#[tokio::test]
async fn a_second_join_is_already_joined_whatever_its_protocol() {
    let server = Server::start(test_config()).await;
    let (mut alice, _) = server.join("abc", "alice").await;
    let (mut bob, _) = server.join("abc", "bob").await;
    alice.recv().await;
    for join in [
        r#"{"type":"join","protocol":1,"room":"abc","user":"alice2"}"#,
        r#"{"type":"join","protocol":2,"room":"abc","user":"alice"}"#,
        r#"{"type":"join","protocol":-1}"#,
    ] {
        let v = answer(&mut alice, join).await;
        assert_eq!(error_code(&v), "already_joined", "{join}");
    }
    alice.ping_chat("still here").await;
    assert!(matches!(bob.recv().await, ServerMsg::Chat { .. }));
    bob.expect_silence(Duration::from_millis(100)).await;
    server.stop().await;
}

/// A join that does not parse (an unknown field, a missing one) is not
/// fatal: `invalid_message`, and the connection may join again.
#[tokio::test]
async fn a_join_that_does_not_parse_is_not_fatal() {
    let server = Server::start(test_config()).await;
    let mut c = server.client().await;
    for join in [
        r#"{"type":"join","protocol":1,"room":"abc","user":"a","colour":"red"}"#,
        r#"{"type":"join","protocol":1,"room":"abc"}"#,
        r#"{"type":"join","protocol":1,"room":"abc","user":"a","version":"%%"}"#,
    ] {
        let v = answer(&mut c, join).await;
        assert_eq!(error_code(&v), "invalid_message", "{join}");
    }
    c.join("abc", "a").await;
    server.stop().await;
}

/// After the join timeout: `not_joined`, then close 1008.
#[tokio::test]
async fn the_join_timeout_ends_with_not_joined_and_1008() {
    let config = collab_server::Config {
        join_timeout: Duration::from_millis(100),
        ..test_config()
    };
    let server = Server::start(config).await;
    let mut c = server.client().await;
    c.expect_errors_then_close(&[ErrorCode::NotJoined], 1008)
        .await;
    server.stop().await;
}

/// A member that takes over its session with the other role's token keeps
/// its id; the others receive `member` with the new `read_only` (their
/// lists show who may edit), and nothing when the role stays.
#[tokio::test]
async fn a_resumed_session_with_another_role_tells_the_others() {
    let server = Server::start(collab_server::Config {
        access_token: Some("edit-tok".into()),
        read_only_token: Some("view-tok".into()),
        ..test_config()
    })
    .await;
    let join = |token: &str, session: Option<&str>| {
        let mut j = json!({"type":"join","protocol":1,"room":"abc","user":"alice","token":token});
        if let Some(s) = session {
            j["session"] = json!(s);
        }
        j.to_string()
    };
    let mut bob = server.client().await;
    bob.send_raw(r#"{"type":"join","protocol":1,"room":"abc","user":"bob","token":"edit-tok"}"#)
        .await;
    bob.recv().await;
    let mut first = server.client().await;
    let w = answer(&mut first, &join("edit-tok", None)).await;
    let (id, session) = (
        w["you"]["id"].clone(),
        w["session"].as_str().unwrap().to_owned(),
    );
    assert_eq!(event(&mut bob).await["type"], "joined");
    for (token, read_only, told) in [
        ("view-tok", true, true),
        ("view-tok", true, false),
        ("edit-tok", false, true),
    ] {
        let mut again = server.client().await;
        let w = answer(&mut again, &join(token, Some(&session))).await;
        assert_eq!(
            (&w["resumed"], &w["you"]["read_only"]),
            (&json!(true), &json!(read_only))
        );
        if told {
            let v = event(&mut bob).await;
            assert_eq!(v["type"], "member", "{v}");
            assert_eq!(
                (&v["member"]["id"], &v["member"]["read_only"]),
                (&id, &json!(read_only))
            );
        }
        bob.ping_chat("only the chat").await;
        first = again;
    }
    drop(first);
    server.stop().await;
}
