//! The conformance suite: what docs/protocol.md promises, driven on real
//! servers with raw WebSocket frames only (no collab-client), read from the
//! document itself so that the two cannot drift apart:
//!
//! - every error code in its table is provoked, and the answer checked:
//!   the code, the `seq` where one was readable, whether the connection
//!   survives (the table's "fatal" column) and, when it does not, the close
//!   code of section 9;
//! - every server event it has an example of is seen on the wire, with the
//!   fields of its examples;
//! - every client event it has an example of is sent and answered.
//!
//! `internal` is the one code no client can provoke (a server fault).
#![allow(clippy::unwrap_used)]

use crate::common;
use collab_doc::testing::noise;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use collab_protocol::Base64Bytes;
use collab_protocol::ErrorCode;
use common::{Client, Frame, Server, WAIT, edit, test_config};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The table of section 6: code -> fatal.
fn documented_codes() -> BTreeMap<String, bool> {
    DOC.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let fatal = match *cells.get(2)? {
                "yes" => true,
                "no" => false,
                _ => return None,
            };
            Some((code.to_owned(), fatal))
        })
        .collect()
}

/// The JSON examples fenced as ```json client / ```json server.
fn documented_examples(direction: &str) -> Vec<Value> {
    let fence = format!("```json {direction}");
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if line.trim() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(serde_json::from_str(&body.join("\n")).unwrap());
        }
    }
    out
}

/// Per server event type: the fields every example has, and the fields
/// any example has.
fn documented_fields() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    fields_of(&["server"])
}

/// [`documented_fields`] of the examples fenced as any of `directions`.
fn fields_of(directions: &[&str]) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for ex in directions.iter().flat_map(|d| documented_examples(d)) {
        let ty = ex["type"].as_str().unwrap().to_owned();
        let keys: BTreeSet<String> = ex.as_object().unwrap().keys().cloned().collect();
        let entry = out
            .entry(ty)
            .or_insert_with(|| (keys.clone(), BTreeSet::new()));
        entry.0 = entry.0.intersection(&keys).cloned().collect();
        entry.1.extend(keys);
    }
    out
}

/// Checks a received event against the document's examples of its type
/// (of either protocol: a workspace connection's events name their
/// document).
fn check_fields(v: &Value) {
    let fields = fields_of(&["server", "server-workspace"]);
    let ty = v["type"].as_str().unwrap_or_else(|| panic!("no type: {v}"));
    let (every, any) = fields
        .get(ty)
        .unwrap_or_else(|| panic!("the server sent an undocumented event: {v}"));
    let keys: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
    assert!(
        keys.is_superset(every),
        "{v} lacks documented fields {every:?}"
    );
    assert!(
        keys.is_subset(any),
        "{v} has undocumented fields (documented: {any:?})"
    );
}

async fn event(c: &mut Client) -> Value {
    match c.next_frame().await {
        Frame::Event(v) => {
            check_fields(&v);
            v
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Skips other events until an `error`.
async fn next_error(c: &mut Client) -> Value {
    loop {
        let v = event(c).await;
        if v["type"] == "error" {
            return v;
        }
    }
}

/// Sends a client event, noting its type.
async fn send(sent: &mut BTreeSet<String>, c: &mut Client, v: Value) {
    sent.insert(v["type"].as_str().unwrap().to_owned());
    c.send_raw(&v.to_string()).await;
}

fn join(room: &str, user: &str) -> Value {
    json!({"type":"join","protocol":1,"room":room,"user":user})
}

/// A client joined to `room` as `user`, over raw frames.
async fn joined(server: &Server, room: &str, user: &str) -> (Client, Value) {
    joined_with(server, join(room, user)).await
}

async fn joined_with(server: &Server, join: Value) -> (Client, Value) {
    let mut c = server.client().await;
    c.send_raw(&join.to_string()).await;
    let w = event(&mut c).await;
    assert_eq!(w["type"], "welcome", "{w}");
    // The welcome's own updates follow it at once (after its parts, which
    // the test that makes them reads itself).
    if w["doc_parts"] == 0 {
        for _ in 0..w["doc_updates"].as_u64().unwrap() {
            let u = event(&mut c).await;
            assert_eq!((&u["type"], &u["from"]), (&json!("update"), &json!(0)));
        }
    }
    (c, w)
}

/// A provoked error: the connection it came on, the error, the `seq` the
/// frame carried, the close code section 9 gives if the error is fatal,
/// and whether the connection is joined (how to show it still works).
struct Provoked {
    _server: Server,
    client: Client,
    error: Value,
    seq: Option<u64>,
    close: u16,
    joined: bool,
    /// How long the connection needs before it is served again (the rate
    /// limit's bucket refilling).
    settle: Duration,
    /// Kept open so that the room stays as the scenario made it.
    _others: Vec<Client>,
    /// The store's directory, removed when the scenario ends.
    _dir: Option<tempfile::TempDir>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Drives the scenario that provokes `code`.
async fn provoke(code: &str) -> Provoked {
    let mut others = Vec::new();
    let mut store_dir = None;
    let (server, mut client, seq, close, joined) = match code {
        "invalid_json" | "unknown_type" | "invalid_message" | "no_such_user" | "invalid_text"
        | "bad_update" => {
            let server = Server::start(test_config()).await;
            let (mut c, _) = joined(&server, "r", "alice").await;
            let (frame, seq) = match code {
                "invalid_json" => (r#"{"type":"chat","#.to_owned(), None),
                "unknown_type" => (r#"{"type":"dance"}"#.to_owned(), None),
                "invalid_message" => (
                    r#"{"type":"update","seq":3,"data":"%"}"#.to_owned(),
                    Some(3),
                ),
                "no_such_user" => (
                    r#"{"type":"direct","to":"nobody","text":"hi"}"#.to_owned(),
                    None,
                ),
                "invalid_text" => (r#"{"type":"chat","text":" "}"#.to_owned(), None),
                _ => (
                    r#"{"type":"update","seq":4,"data":"AAAAAA=="}"#.to_owned(),
                    Some(4),
                ),
            };
            c.send_raw(&frame).await;
            (server, c, seq, 0, true)
        }
        "binary_frame" => {
            let server = Server::start(test_config()).await;
            let (mut c, _) = joined(&server, "r", "alice").await;
            c.ws.send(Message::Binary(vec![1, 2].into())).await.unwrap();
            (server, c, None, 0, true)
        }
        "frame_too_large" => {
            let server = Server::start(collab_server::Config {
                max_frame_bytes: 4096,
                ..test_config()
            })
            .await;
            let (mut c, _) = joined(&server, "r", "alice").await;
            let text = "x".repeat(8192);
            c.send_raw(&json!({"type":"chat","text":text}).to_string())
                .await;
            (server, c, None, 1009, true)
        }
        "version_mismatch" | "invalid_room" | "invalid_name" | "not_joined" => {
            let server = Server::start(test_config()).await;
            let mut c = server.client().await;
            let frame = match code {
                "version_mismatch" => json!({"type":"join","protocol":3,"room":"r","user":"a"}),
                "invalid_room" => join("r/1", "a"),
                "invalid_name" => join("r", "a b"),
                _ => json!({"type":"chat","text":"hi"}),
            };
            c.send_raw(&frame.to_string()).await;
            (server, c, None, 1008, false)
        }
        "already_joined" => {
            let server = Server::start(test_config()).await;
            let (mut c, _) = joined(&server, "r", "alice").await;
            c.send_raw(&join("r", "alice").to_string()).await;
            (server, c, None, 0, true)
        }
        "name_taken" | "bad_session" => {
            let server = Server::start(test_config()).await;
            let (alice, _) = joined(&server, "r", "alice").await;
            others.push(alice);
            let mut frame = join("r", "alice");
            if code == "bad_session" {
                frame["session"] = json!("00000000000000000000000000000000");
            }
            let mut c = server.client().await;
            c.send_raw(&frame.to_string()).await;
            (server, c, None, 1008, false)
        }
        "unauthorized" => {
            let server = Server::start(collab_server::Config {
                access_token: Some("tok".into()),
                ..test_config()
            })
            .await;
            let mut c = server.client().await;
            c.send_raw(&join("r", "a").to_string()).await;
            (server, c, None, 1008, false)
        }
        "room_full" | "server_full" => {
            let server = Server::start(collab_server::Config {
                max_users_per_room: 1,
                max_rooms: 1,
                ..test_config()
            })
            .await;
            let (alice, _) = joined(&server, "r", "alice").await;
            others.push(alice);
            let room = if code == "room_full" { "r" } else { "other" };
            let mut c = server.client().await;
            c.send_raw(&join(room, "bob").to_string()).await;
            (server, c, None, 1013, false)
        }
        "rate_limited" => {
            let server = Server::start(collab_server::Config {
                messages_per_second: 1,
                burst: 1,
                flood_max_refused: 1000,
                ..test_config()
            })
            .await;
            let (mut c, _) = joined(&server, "r", "alice").await;
            // The join took the one token: this update is dropped.
            c.send_raw(r#"{"type":"update","seq":9,"data":"AAAA"}"#)
                .await;
            (server, c, Some(9), 0, true)
        }
        "doc_too_large" | "read_only" => {
            let server = Server::start(collab_server::Config {
                max_doc_bytes: 16,
                read_only_token: Some("view".into()),
                ..test_config()
            })
            .await;
            let mut j = join("r", "alice");
            if code == "read_only" {
                j["token"] = json!("view");
            }
            let (mut c, w) = joined_with(&server, j).await;
            let mut doc = collab_doc::SharedDoc::from_snapshot(&b64_decode(&w["doc"])).unwrap();
            let data = edit(&mut doc, 0, &"x".repeat(64));
            c.send_raw(&json!({"type":"update","seq":5,"data":data}).to_string())
                .await;
            (server, c, Some(5), 0, true)
        }
        "storage_failed" => {
            let dir = tempfile::tempdir().unwrap();
            let fault = collab_server::StoreFault::default();
            let server = Server::start(collab_server::Config {
                storage: collab_server::Storage::Dir(dir.path().to_path_buf()),
                flush_interval: Duration::from_millis(10),
                store_fault: Some(fault.clone()),
                ..test_config()
            })
            .await;
            let (mut c, w) = joined(&server, "r", "alice").await;
            fault.set(true);
            let mut doc = collab_doc::SharedDoc::from_snapshot(&b64_decode(&w["doc"])).unwrap();
            let data = edit(&mut doc, 0, "kept in memory");
            c.send_raw(&json!({"type":"update","seq":1,"data":data}).to_string())
                .await;
            // The ack comes first; the failure when the store writes.
            assert_eq!(event(&mut c).await, json!({"type":"ack","seq":1}));
            store_dir = Some(dir);
            (server, c, None, 0, true)
        }
        "no_such_doc" | "workspace_full" => {
            // A workspace of at most 2 files: a folder of 4 is refused; in
            // a room that is no workspace, a file is no document.
            let server = Server::start(collab_server::Config {
                max_files: 2,
                ..test_config()
            })
            .await;
            let (mut c, _) = joined_with(
                &server,
                json!({"type":"join","protocol":2,"room":"r","user":"a"}),
            )
            .await;
            let frame = if code == "no_such_doc" {
                json!({"type":"open","doc_id":"1@2"})
            } else {
                use collab_doc::tree::{Kind, Tree};
                let mut tree = Tree::new();
                tree.create_paths(&[("a", Kind::Dir), ("a/b", Kind::File), ("c", Kind::File)])
                    .unwrap();
                json!({"type":"seed_tree","data":b64(&tree.take_local_update().unwrap())})
            };
            c.send_raw(&frame.to_string()).await;
            (server, c, None, 0, true)
        }
        "slow_consumer" => return slow_consumer().await,
        "history_trimmed" => return history_trimmed().await,
        other => panic!("no scenario provokes {other}: add one to conformance.rs"),
    };
    let error = next_error(&mut client).await;
    Provoked {
        _server: server,
        client,
        error,
        seq,
        close,
        joined,
        settle: if code == "rate_limited" {
            Duration::from_millis(1100)
        } else {
            Duration::ZERO
        },
        _others: others,
        _dir: store_dir,
    }
}

fn b64_decode(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// A member that reads nothing while its room is busy.
async fn slow_consumer() -> Provoked {
    let server = Server::start(collab_server::Config {
        outbound_queue: 8,
        messages_per_second: 100_000,
        burst: 100_000,
        ..test_config()
    })
    .await;
    let (mut typist, _) = joined(&server, "r", "typist").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        server.url(),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut slow = Client { ws };
    slow.send_raw(&join("r", "slow").to_string()).await;
    assert_eq!(event(&mut typist).await["type"], "joined");
    let blob = json!({"type":"presence","cursor":b64(&[7u8; 64 * 1024]),"anchor":null}).to_string();
    // Bounded: at most 500 blobs; the typist hears the removal as `left`.
    let mut removed = false;
    for _ in 0..500 {
        typist.send_raw(&blob).await;
        typist.send_raw(r#"{"type":"chat","text":"."}"#).await;
        loop {
            let v = event(&mut typist).await;
            if v["type"] == "left" {
                assert_eq!(v["reason"], "removed");
                removed = true;
            }
            if v["type"] == "chat" {
                break;
            }
        }
        if removed {
            break;
        }
    }
    assert!(removed, "the stalled member was never removed");
    let error = next_error(&mut slow).await;
    Provoked {
        _server: server,
        client: slow,
        error,
        seq: None,
        close: 1013,
        joined: true,
        settle: Duration::ZERO,
        _others: vec![typist],
        _dir: None,
    }
}

/// Skips other events until the `ack` of `seq`.
async fn acked(c: &mut Client, seq: u64) {
    loop {
        let v = event(c).await;
        if v == json!({"type":"ack","seq":seq}) {
            return;
        }
        assert_ne!(v["type"], "error", "{v}");
    }
}

/// A member away while the room trims the history its offline edit builds
/// on: alice inserts and deletes 600 KiB that does not compress until a
/// rejoin with the away member's version is sent the whole document (the
/// room trimmed history it lacks); its offline edit is then refused.
async fn history_trimmed() -> Provoked {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = joined(&server, "r", "alice").await;
    let mut da = collab_doc::SharedDoc::from_snapshot(&b64_decode(&wa["doc"])).unwrap();
    da.author_as(wa["peer"].as_u64().unwrap()).unwrap();
    let data = edit(&mut da, 0, "start\n");
    alice
        .send_raw(&json!({"type":"update","seq":1,"data":data}).to_string())
        .await;
    acked(&mut alice, 1).await;
    let (away_conn, w) = joined(&server, "r", "away").await;
    let mut away = collab_doc::SharedDoc::from_snapshot(&b64_decode(&w["doc"])).unwrap();
    away_conn.close().await;
    away.author_fresh();
    let offline = edit(&mut away, 0, "offline ");
    let chunk = noise(600 * 1024, 5);
    let mut seq = 1;
    // Bounded: trimming needs about 3 MB of history, 3 rounds.
    for _ in 0..12 {
        for (at, del, ins) in [(0, 0, chunk.as_str()), (0, chunk.len(), "")] {
            da.splice(at, del, ins).unwrap();
            let data = Base64Bytes(da.take_local_update().unwrap());
            seq += 1;
            alice
                .send_raw(&json!({"type":"update","seq":seq,"data":data}).to_string())
                .await;
            acked(&mut alice, seq).await;
        }
        let mut j = join("r", "away");
        j["version"] = json!(b64(&away.version()));
        let (mut c, w) = joined_with(&server, j).await;
        if w["doc_kind"] == "snapshot" {
            c.send_raw(&json!({"type":"update","seq":7,"data":offline}).to_string())
                .await;
            let error = next_error(&mut c).await;
            return Provoked {
                _server: server,
                client: c,
                error,
                seq: Some(7),
                close: 0,
                joined: true,
                settle: Duration::ZERO,
                _others: vec![alice],
                _dir: None,
            };
        }
        c.close().await;
    }
    panic!("the room never trimmed its history");
}

#[tokio::test]
async fn every_documented_error_code_is_answered_as_documented() {
    let codes = documented_codes();
    let wire: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let documented: BTreeSet<&str> = codes.keys().map(String::as_str).collect();
    assert_eq!(
        documented, wire,
        "the table of docs/protocol.md and ErrorCode differ"
    );
    for (code, fatal) in &codes {
        if code == "internal" {
            continue; // a server fault: nothing a client sends provokes it
        }
        let mut p = tokio::time::timeout(4 * WAIT, provoke(code))
            .await
            .unwrap_or_else(|_| panic!("{code}: no answer in time"));
        assert_eq!(p.error["code"], json!(code), "{}", p.error);
        assert!(!p.error["message"].as_str().unwrap().is_empty());
        assert_eq!(
            p.error.get("seq").and_then(Value::as_u64),
            p.seq,
            "{code}: {}",
            p.error
        );
        if *fatal {
            let (after, close) = p.client.until_close().await;
            assert!(
                after.is_empty(),
                "{code}: events after a fatal error: {after:?}"
            );
            assert_eq!(close, Some(p.close), "{code}: close code");
        } else if p.joined {
            // Still in the room, in order (once the rate limit's bucket
            // has refilled, for `rate_limited`).
            tokio::time::sleep(p.settle).await;
            p.client
                .send_raw(r#"{"type":"chat","text":"still here"}"#)
                .await;
            loop {
                let v = event(&mut p.client).await;
                if v["type"] == "chat" && v["text"] == "still here" {
                    break;
                }
            }
        } else {
            // Still open, and may join.
            p.client.send_raw(&join("r", "late").to_string()).await;
            assert_eq!(event(&mut p.client).await["type"], "welcome", "{code}");
        }
    }
}

/// Every server event of the document, seen on the wire with the fields
/// of its examples; every client event of the document sent and answered.
#[tokio::test]
async fn every_documented_event_is_seen_on_the_wire() {
    let mut server = Server::start(collab_server::Config {
        read_only_token: Some("view".into()),
        ..test_config()
    })
    .await;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut sent: BTreeSet<String> = BTreeSet::new();
    let mut note = |v: &Value| {
        seen.insert(v["type"].as_str().unwrap().to_owned());
    };
    let (mut alice, wa) = joined(&server, "r", "alice").await;
    sent.insert("join".into());
    note(&wa);
    let (mut bob, wb) = joined(&server, "r", "bob").await;
    note(&event(&mut alice).await); // joined

    send(
        &mut sent,
        &mut alice,
        json!({"type":"seed","text":"fn main() {}\n"}),
    )
    .await;
    let up = event(&mut alice).await; // the seed's update, to the seeder too
    assert_eq!(up["type"], "update");
    note(&up);
    note(&event(&mut alice).await); // seeded
    assert_eq!(event(&mut bob).await["type"], "update");

    let mut doc = collab_doc::SharedDoc::from_snapshot(&b64_decode(&wb["doc"])).unwrap();
    doc.import(&b64_decode(&up["data"])).unwrap();
    let data = edit(&mut doc, 0, "// hi\n");
    send(
        &mut sent,
        &mut bob,
        json!({"type":"update","seq":1,"data":data}),
    )
    .await;
    let ack = event(&mut bob).await;
    assert_eq!(ack, json!({"type":"ack","seq":1}));
    note(&ack);
    assert_eq!(event(&mut alice).await["type"], "update");

    send(&mut sent, &mut alice, json!({"type":"chat","text":"hello"})).await;
    note(&event(&mut alice).await);
    assert_eq!(event(&mut bob).await["type"], "chat");
    send(
        &mut sent,
        &mut alice,
        json!({"type":"direct","to":"bob","text":"psst"}),
    )
    .await;
    note(&event(&mut bob).await);
    assert_eq!(event(&mut alice).await["type"], "direct");
    let cursor = b64(&doc.cursor_at(2).unwrap());
    send(
        &mut sent,
        &mut bob,
        json!({"type":"presence","cursor":cursor,"anchor":null}),
    )
    .await;
    let p = event(&mut alice).await;
    assert_eq!(
        (&p["type"], &p["cursor"]),
        (&json!("presence"), &json!(cursor))
    );
    note(&p);
    alice.send_raw(r#"{"type":"dance"}"#).await;
    note(&event(&mut alice).await); // error

    // Bob takes over his session as a viewer: alice gets `member`.
    let mut j = join("r", "bob");
    j["session"] = wb["session"].clone();
    j["token"] = json!("view");
    let (mut bob2, w) = joined_with(&server, j).await;
    assert_eq!(w["resumed"], true);
    note(&event(&mut alice).await); // member
    let (_, close) = bob.until_close().await;
    assert_eq!(close, Some(1000));

    send(&mut sent, &mut bob2, json!({"type":"leave"})).await;
    assert_eq!(bob2.until_close().await, (vec![], Some(1000)));
    let left = event(&mut alice).await;
    assert_eq!(
        (&left["type"], &left["reason"]),
        (&json!("left"), &json!("left"))
    );
    note(&left);

    server.trigger_shutdown();
    let (events, close) = alice.until_close().await;
    assert_eq!(close, Some(1001));
    for v in &events {
        check_fields(v);
        note(v);
    }

    // A room too big for one message: its welcome's document in parts.
    let small = Server::start(collab_server::Config {
        max_frame_bytes: 1024,
        // Compacting at once makes the snapshot the whole room, not the
        // empty one plus the seed after it.
        compact_every: 1,
        ..test_config()
    })
    .await;
    let (mut seeder, _) = joined(&small, "big", "seeder").await;
    let text: String = (0..900u32)
        .map(|i| char::from(b'!' + ((i.wrapping_mul(2_654_435_761) >> 7) % 94) as u8))
        .collect();
    seeder
        .send_raw(&json!({"type":"seed","text":text}).to_string())
        .await;
    let seeded = event(&mut seeder).await;
    assert_eq!(seeded["type"], "update");
    assert_eq!(event(&mut seeder).await["type"], "seeded");
    // More text, in updates that fit the frame: the room's history, which
    // a newcomer is sent as updates, is over 1 KiB too.
    let mut typist = collab_doc::SharedDoc::from_snapshot(&b64_decode(&seeded["data"])).unwrap();
    let mut text = text;
    for seq in 1..=3u64 {
        let more: String = text.chars().rev().take(300).collect();
        let at = typist.len_chars();
        typist.splice(at, 0, &more).unwrap();
        text.push_str(&more);
        let data = b64(&typist.take_local_update().unwrap());
        seeder
            .send_raw(&json!({"type":"update","seq":seq,"data":data}).to_string())
            .await;
        acked(&mut seeder, seq).await;
    }
    let (mut newcomer, w) = joined(&small, "big", "newcomer").await;
    let parts = w["doc_parts"].as_u64().unwrap();
    assert!(parts > 0, "{w}");
    let mut snapshot = Vec::new();
    for _ in 0..parts {
        let part = event(&mut newcomer).await;
        assert_eq!(part["type"], "doc_part");
        snapshot.extend(b64_decode(&part["data"]));
        note(&part);
    }
    let mut doc = collab_doc::SharedDoc::from_snapshot(&snapshot).unwrap();
    for _ in 0..w["doc_updates"].as_u64().unwrap() {
        let u = event(&mut newcomer).await;
        assert_eq!(u["type"], "update");
        doc.import(&b64_decode(&u["data"])).unwrap();
    }
    assert_eq!(doc.text(), text);
    small.stop().await;

    let documented: BTreeSet<String> = documented_fields().into_keys().collect();
    assert_eq!(seen, documented, "server events seen vs documented");
    let client_documented: BTreeSet<String> = documented_examples("client")
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, client_documented, "client events sent vs documented");
}
