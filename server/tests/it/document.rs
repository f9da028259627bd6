//! The room's document: updates relayed and acked, refused updates, seeds,
//! snapshots for newcomers and updates for rejoiners.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, ClientMsg, DocEncoding, DocKind, ErrorCode, Join, ServerMsg};
use common::{Server, edit, join_msg, replica, test_config};

#[tokio::test]
async fn an_update_is_acked_and_relayed_to_the_others() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let (mut bob, wb) = server.join("doc", "bob").await;
    alice.recv().await;
    let mut da = replica(&wa);
    let mut db = replica(&wb);

    let data = edit(&mut da, 0, "hello");
    alice
        .send(&ClientMsg::Update {
            seq: 7,
            data: data.clone(),
        })
        .await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 7 });
    match bob.recv().await {
        ServerMsg::Update { from, data: d } => {
            assert_eq!(from, wa.you.id);
            db.import(d.as_slice()).unwrap();
        }
        other => panic!("expected update, got {other:?}"),
    }
    assert_eq!(db.text(), "hello");

    // A resent update brings nothing: acked, not relayed.
    alice.send(&ClientMsg::Update { seq: 8, data }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 8 });
    bob.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_update_is_refused_and_changes_nothing() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let (mut bob, _) = server.join("doc", "bob").await;
    alice.recv().await;
    let mut da = replica(&wa);
    let good = edit(&mut da, 0, "abc");
    alice.send(&ClientMsg::Update { seq: 1, data: good }).await;
    alice.recv().await;
    bob.recv().await;

    alice
        .send(&ClientMsg::Update {
            seq: 2,
            data: Base64Bytes(b"definitely not loro".to_vec()),
        })
        .await;
    let (_, seq) = alice.expect_error(ErrorCode::BadUpdate).await;
    assert_eq!(seq, Some(2));

    // History forged under a known peer id is refused as well.
    let forged = collab_doc::forge_for_tests(da.peer_id(), "XYZW");
    alice
        .send(&ClientMsg::Update {
            seq: 3,
            data: Base64Bytes(forged),
        })
        .await;
    let (_, seq) = alice.expect_error(ErrorCode::BadUpdate).await;
    assert_eq!(seq, Some(3));
    bob.expect_silence(Duration::from_millis(200)).await;

    let (_carol, wc) = server.join("doc", "carol").await;
    assert_eq!(replica(&wc).text(), "abc");
    alice.ping_chat("fine").await;
    server.stop().await;
}

#[tokio::test]
async fn an_update_over_the_doc_limit_is_refused() {
    let config = collab_server::Config {
        max_doc_bytes: 1000,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let mut da = replica(&wa);
    let ok = edit(&mut da, 0, &"a".repeat(600));
    alice.send(&ClientMsg::Update { seq: 1, data: ok }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 1 });
    let too_much = edit(&mut da, 0, &"b".repeat(600));
    alice
        .send(&ClientMsg::Update {
            seq: 2,
            data: too_much,
        })
        .await;
    let (msg, seq) = alice.expect_error(ErrorCode::DocTooLarge).await;
    assert_eq!(seq, Some(2));
    assert!(msg.contains("1000"), "{msg}");
    let (_bob, wb) = server.join("doc", "bob").await;
    assert_eq!(replica(&wb).text(), "a".repeat(600));

    // A seed over the limit is refused too.
    let (mut carol, _) = server.join("doc2", "carol").await;
    carol
        .send(&ClientMsg::Seed {
            text: "c".repeat(1001),
        })
        .await;
    carol.expect_error(ErrorCode::DocTooLarge).await;
    server.stop().await;
}

#[tokio::test]
async fn seed_applies_once_even_when_two_race() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("seed", "alice").await;
    let (mut bob, wb) = server.join("seed", "bob").await;
    alice.recv().await;

    // Both seed at once.
    let seed_a = ClientMsg::Seed {
        text: "from alice\n".into(),
    };
    let seed_b = ClientMsg::Seed {
        text: "from bob\n".into(),
    };
    tokio::join!(alice.send(&seed_a), bob.send(&seed_b));

    let mut da = replica(&wa);
    let mut db = replica(&wb);
    let mut applied = 0;
    for (c, d) in [(&mut alice, &mut da), (&mut bob, &mut db)] {
        loop {
            match c.recv().await {
                ServerMsg::Update { data, .. } => {
                    d.import(data.as_slice()).unwrap();
                }
                ServerMsg::Seeded { applied: a } => {
                    applied += usize::from(a);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(applied, 1, "exactly one seed applies");
    // Both replicas got the one update (the seeder too).
    assert_eq!(da.text(), db.text());
    assert!(da.text() == "from alice\n" || da.text() == "from bob\n");

    // Seeding a non-empty document does nothing.
    alice
        .send(&ClientMsg::Seed {
            text: "again".into(),
        })
        .await;
    assert_eq!(alice.recv().await, ServerMsg::Seeded { applied: false });
    bob.expect_silence(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_newcomer_gets_the_history_as_one_update_and_a_rejoiner_only_what_it_lacks() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let (mut bob, wb) = server.join("doc", "bob").await;
    alice.recv().await;
    let mut da = replica(&wa);
    let mut db = replica(&wb);
    let u = edit(&mut da, 0, "hello");
    alice.send(&ClientMsg::Update { seq: 1, data: u }).await;
    alice.recv().await;
    if let ServerMsg::Update { data, .. } = bob.recv().await {
        db.import(data.as_slice()).unwrap();
    }
    let bob_version = db.version();
    bob.close().await;
    alice.recv().await; // left

    // While bob is away alice types a lot.
    let long = "x".repeat(20_000);
    let u = edit(&mut da, 5, &long);
    alice.send(&ClientMsg::Update { seq: 2, data: u }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 2 });

    // A newcomer gets the room's whole history as one update (no text
    // state, no updates after it), which loads into an empty replica.
    let (_carol, wc) = server.join("doc", "carol").await;
    assert_eq!(wc.doc_kind, DocKind::Updates);
    assert_eq!(wc.doc_updates, 0);
    let mut fresh = SharedDoc::new();
    assert_eq!(fresh.import(wc.doc.as_slice()), Ok(true));
    assert_eq!(fresh.text(), format!("hello{long}"));
    assert!(fresh.is_covered_by(wc.version.as_slice()).unwrap());
    assert_eq!(replica(&wc).text(), format!("hello{long}"));

    // Bob rejoins with his version and gets only the missing updates.
    let mut bob = server.client().await;
    let w = bob
        .join_with(Join {
            version: Some(Base64Bytes(bob_version.clone())),
            ..join_msg("doc", "bob")
        })
        .await;
    assert_eq!(w.doc_kind, DocKind::Updates);
    let expected = {
        let full = SharedDoc::from_snapshot(wc.doc.as_slice()).unwrap();
        full.updates_since(&bob_version).unwrap()
    };
    assert_eq!(w.doc.len(), expected.len());
    db.import(w.doc.as_slice()).unwrap();
    assert_eq!(db.text(), format!("hello{long}"));
    assert!(db.is_covered_by(w.version.as_slice()).unwrap());

    // A rejoiner already up to date gets an empty-ish update.
    let mut bob2 = server.client().await;
    let w2 = bob2
        .join_with(Join {
            version: Some(Base64Bytes(db.version())),
            ..join_msg("doc", "bob2")
        })
        .await;
    assert_eq!(w2.doc_kind, DocKind::Updates);
    let mut copy = SharedDoc::from_snapshot(&db.snapshot().unwrap()).unwrap();
    assert!(!copy.import(w2.doc.as_slice()).unwrap_or(false));
    server.stop().await;
}

/// A newcomer that lists `"zlib"` in `doc_encodings` gets the history as
/// one zlib stream (`doc_encoding: "zlib"`) that inflates to the bytes a
/// newcomer without it gets; a rejoiner's missing updates and a joiner that
/// did not list it get Loro's bytes, with no `doc_encoding`.
#[tokio::test]
async fn a_newcomer_that_reads_zlib_gets_the_history_compressed() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let mut da = replica(&wa);
    let text = "fn main() { println!(\"hello\"); }\n".repeat(300);
    let u = edit(&mut da, 0, &text);
    alice.send(&ClientMsg::Update { seq: 1, data: u }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 1 });

    let zlib = || Join {
        doc_encodings: vec!["brotli".into(), "zlib".into()],
        ..join_msg("doc", "carol")
    };
    let mut carol = server.client().await;
    let wz = carol.join_with(zlib()).await;
    assert_eq!(wz.doc_encoding, Some(DocEncoding::Zlib));
    assert_eq!(wz.doc_kind, DocKind::Updates);
    let (_dave, wr) = server.join("doc", "dave").await;
    assert_eq!(wr.doc_encoding, None, "dave did not list zlib");
    let inflated = collab_doc::zlib::inflate(wz.doc.as_slice(), 1 << 24).unwrap();
    assert_eq!(inflated, wr.doc.as_slice());
    assert!(
        wz.doc.len() * 4 < wr.doc.len(),
        "{} bytes compressed against {}",
        wz.doc.len(),
        wr.doc.len()
    );
    let mut fresh = SharedDoc::new();
    fresh.import(&inflated).unwrap();
    assert_eq!(fresh.text(), text);

    // A rejoiner with a version gets what it lacks as Loro's bytes.
    let mut erin = server.client().await;
    let we = erin
        .join_with(Join {
            version: Some(Base64Bytes(SharedDoc::new().version())),
            doc_encodings: vec!["zlib".into()],
            ..join_msg("doc", "erin")
        })
        .await;
    assert_eq!(we.doc_encoding, None);
    let mut fresh = SharedDoc::new();
    fresh.import(we.doc.as_slice()).unwrap();
    assert_eq!(fresh.text(), text);
    server.stop().await;
}

/// A newcomer that asks for the text first (`text_first`, reading zlib)
/// gets the room's text in `welcome.text`, one zlib stream of its UTF-8,
/// beside the whole history. A joiner that did not ask, one that does not
/// read zlib, a rejoiner with a version and a newcomer to an empty room get
/// none. The text is kept, not made per newcomer: after an edit the next
/// newcomer gets the same text, older than its document.
#[tokio::test]
async fn a_newcomer_that_asks_gets_the_text_first_beside_the_history() {
    let server = Server::start(test_config()).await;
    let asks = |user: &str| Join {
        doc_encodings: vec!["zlib".into()],
        text_first: true,
        ..join_msg("doc", user)
    };
    let mut early = server.client().await;
    let w = early.join_with(asks("early")).await;
    assert_eq!(w.text, None, "an empty room has no text to show");

    let (mut alice, wa) = server.join("doc", "alice").await;
    let mut da = replica(&wa);
    let text = "fn main() { println!(\"héllo 🦀\"); }\n".repeat(300);
    let u = edit(&mut da, 0, &text);
    alice.send(&ClientMsg::Update { seq: 1, data: u }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 1 });

    let mut carol = server.client().await;
    let wc = carol.join_with(asks("carol")).await;
    let shown = collab_doc::zlib::inflate(wc.text.as_ref().unwrap().as_slice(), 1 << 24).unwrap();
    assert_eq!(String::from_utf8(shown).unwrap(), text);
    assert_eq!(
        wc.doc_encoding,
        Some(DocEncoding::Zlib),
        "the history comes too"
    );
    let mut fresh = SharedDoc::new();
    fresh
        .import(&collab_doc::zlib::inflate(wc.doc.as_slice(), 1 << 24).unwrap())
        .unwrap();
    assert_eq!(fresh.text(), text);

    for (who, join) in [
        ("dave did not ask", join_msg("doc", "dave")),
        (
            "erin does not read zlib",
            Join {
                doc_encodings: Vec::new(),
                ..asks("erin")
            },
        ),
        (
            "frank rejoins with a version",
            Join {
                version: Some(Base64Bytes(SharedDoc::new().version())),
                ..asks("frank")
            },
        ),
    ] {
        let mut c = server.client().await;
        assert_eq!(c.join_with(join).await.text, None, "{who}");
    }

    // An edit later, the text is the one kept; the document is the room's.
    let u = edit(&mut da, 0, "// new first line\n");
    alice.send(&ClientMsg::Update { seq: 2, data: u }).await;
    alice.recv_until(|m| *m == ServerMsg::Ack { seq: 2 }).await;
    let mut gina = server.client().await;
    let wg = gina.join_with(asks("gina")).await;
    assert_eq!(wg.text, wc.text);
    // (The helper folds the changes since the history into one snapshot.)
    let fresh = SharedDoc::from_snapshot(wg.doc.as_slice()).unwrap();
    assert_eq!(fresh.text(), format!("// new first line\n{text}"));
    server.stop().await;
}

#[tokio::test]
async fn compaction_keeps_the_document() {
    let config = collab_server::Config {
        compact_every: 3,
        ..test_config()
    };
    let server = Server::start(config).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let mut da = replica(&wa);
    for i in 0..10u64 {
        let u = edit(&mut da, 0, &i.to_string());
        alice.send(&ClientMsg::Update { seq: i, data: u }).await;
        assert_eq!(alice.recv().await, ServerMsg::Ack { seq: i });
    }
    let (_bob, wb) = server.join("doc", "bob").await;
    assert_eq!(replica(&wb).text(), "9876543210");
    assert!(da.is_covered_by(wb.version.as_slice()).unwrap());
    assert!(replica(&wb).is_covered_by(&da.version()).unwrap());
    server.stop().await;
}

/// An update that writes `text` at 0 under `peer`, on top of `base`.
pub(crate) fn forge_on(base: &SharedDoc, peer: u64, text: &str) -> Base64Bytes {
    let doc = loro::LoroDoc::new();
    doc.import(&base.snapshot().unwrap()).unwrap();
    let before = doc.oplog_vv();
    doc.set_peer_id(peer).unwrap();
    doc.get_text(collab_doc::TEXT_CONTAINER)
        .insert(0, text)
        .unwrap();
    doc.commit();
    Base64Bytes(doc.export(loro::ExportMode::updates(&before)).unwrap())
}

#[tokio::test]
async fn nobody_writes_under_another_members_peer_id() {
    let server = Server::start(test_config()).await;
    let (mut bob, wb) = server.join("doc", "bob").await;
    let (mut mallory, wm) = server.join("doc", "mallory").await;
    bob.recv().await; // mallory joined
    assert_ne!(wb.peer, wm.peer, "each session gets its own peer id");
    let mut db = replica(&wb);
    let mut dm = replica(&wm);
    let first = edit(&mut db, 0, "victim text. ");
    bob.send(&ClientMsg::Update {
        seq: 1,
        data: first,
    })
    .await;
    assert_eq!(bob.recv().await, ServerMsg::Ack { seq: 1 });
    match mallory.recv().await {
        ServerMsg::Update { data, .. } => assert!(dm.import(data.as_slice()).unwrap()),
        other => panic!("expected update, got {other:?}"),
    }

    // Mallory races bob's next ids: "EVIL" under bob's peer id, just
    // before bob types "MINE".
    let evil = forge_on(&dm, wb.peer, "EVIL");
    mallory
        .send(&ClientMsg::Update { seq: 1, data: evil })
        .await;
    let (msg, seq) = mallory.expect_error(ErrorCode::BadUpdate).await;
    assert_eq!(seq, Some(1));
    assert!(msg.contains("another member"), "{msg}");
    // Extending bob's history under his id is refused the same way, and
    // her own id stays hers.
    let extend = forge_on(&dm, wb.peer, "more");
    mallory
        .send(&ClientMsg::Update {
            seq: 2,
            data: extend,
        })
        .await;
    mallory.expect_error(ErrorCode::BadUpdate).await;

    let at = db.len_chars();
    let mine = edit(&mut db, at, "MINE");
    bob.send(&ClientMsg::Update { seq: 2, data: mine }).await;
    assert_eq!(bob.recv().await, ServerMsg::Ack { seq: 2 });
    match mallory.recv().await {
        ServerMsg::Update { from, data } => {
            assert_eq!(from, wb.you.id);
            dm.import(data.as_slice()).unwrap();
        }
        other => panic!("expected bob's update, got {other:?}"),
    }
    let (_carol, wc) = server.join("doc", "carol").await;
    assert_eq!(db.text(), "victim text. MINE");
    assert_eq!(replica(&wc).text(), db.text());
    assert_eq!(dm.text(), db.text());
    server.stop().await;
}

#[tokio::test]
async fn a_refused_update_leaves_no_trace() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let (mut bob, wb) = server.join("doc", "bob").await;
    alice.recv().await;
    let mut da = replica(&wa);
    let mut db = replica(&wb);
    let u1 = edit(&mut da, 0, "line one\n");
    let u2 = edit(&mut da, 9, "line two\n");

    // u2 first: it depends on u1, which the room lacks.
    alice
        .send(&ClientMsg::Update {
            seq: 1,
            data: u2.clone(),
        })
        .await;
    assert_eq!(alice.expect_error(ErrorCode::BadUpdate).await.1, Some(1));
    alice.send(&ClientMsg::Update { seq: 2, data: u1 }).await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 2 });
    let ServerMsg::Update { data, .. } = bob.recv().await else {
        panic!("u1 relayed")
    };
    db.import(data.as_slice()).unwrap();
    // What was acked is what the room holds: u1 alone.
    let (_carol, wc) = server.join("doc", "carol").await;
    assert_eq!(replica(&wc).text(), "line one\n");
    assert_eq!(db.text(), "line one\n");

    // Sent again, u2 is applied, acked and relayed like any other.
    alice.send(&ClientMsg::Update { seq: 3, data: u2 }).await;
    let ack = alice
        .recv_until(|m| matches!(m, ServerMsg::Ack { .. }))
        .await;
    assert_eq!(ack, ServerMsg::Ack { seq: 3 });
    let relayed = bob
        .recv_until(|m| matches!(m, ServerMsg::Update { .. }))
        .await;
    let ServerMsg::Update { data, .. } = relayed else {
        panic!("u2 relayed")
    };
    db.import(data.as_slice()).unwrap();
    assert_eq!(db.text(), da.text());
    let (_dave, wd) = server.join("doc", "dave").await;
    assert_eq!(replica(&wd).text(), "line one\nline two\n");
    server.stop().await;
}

#[tokio::test]
async fn snapshots_and_other_containers_are_refused() {
    let server = Server::start(test_config()).await;
    let (mut alice, wa) = server.join("doc", "alice").await;
    let mut da = replica(&wa);
    let first = edit(&mut da, 0, "text");
    alice
        .send(&ClientMsg::Update {
            seq: 1,
            data: first,
        })
        .await;
    assert_eq!(alice.recv().await, ServerMsg::Ack { seq: 1 });

    // A compressed snapshot of a large text, sent as an update.
    let bomb = loro::LoroDoc::new();
    bomb.get_text(collab_doc::TEXT_CONTAINER)
        .insert(0, &"a".repeat(1 << 20))
        .unwrap();
    bomb.commit();
    let snapshot = bomb.export(loro::ExportMode::Snapshot).unwrap();
    assert!(
        snapshot.len() < 64 * 1024,
        "it compresses: {}",
        snapshot.len()
    );
    alice
        .send(&ClientMsg::Update {
            seq: 2,
            data: Base64Bytes(snapshot),
        })
        .await;
    let (msg, seq) = alice.expect_error(ErrorCode::BadUpdate).await;
    assert_eq!(seq, Some(2));
    assert!(msg.contains("not a"), "{msg}");

    // A map beside the text.
    let other = loro::LoroDoc::new();
    other.import(&da.snapshot().unwrap()).unwrap();
    let before = other.oplog_vv();
    other.set_peer_id(wa.peer).unwrap();
    other
        .get_map("junk")
        .insert("k", "v".repeat(10_000))
        .unwrap();
    other.commit();
    let junk = Base64Bytes(other.export(loro::ExportMode::updates(&before)).unwrap());
    alice.send(&ClientMsg::Update { seq: 3, data: junk }).await;
    assert_eq!(alice.expect_error(ErrorCode::BadUpdate).await.1, Some(3));

    let (_bob, wb) = server.join("doc", "bob").await;
    assert_eq!(replica(&wb).text(), "text");
    assert!(
        wb.doc.as_slice().len() < 2_000,
        "nothing of the refused updates reached the room: {} bytes",
        wb.doc.as_slice().len()
    );
    server.stop().await;
}

#[tokio::test]
async fn every_room_the_server_accepts_can_be_joined_in_messages_that_fit() {
    let max_frame = 16 * 1024;
    let config = collab_server::Config {
        max_frame_bytes: max_frame,
        // Compaction keeps a snapshot of the whole room for newcomers; the
        // last edits come after it as the welcome's updates.
        compact_every: 30,
        ..test_config()
    };
    let server = Server::start(config).await;
    // Not held: watched, to know when the compaction is swapped in.
    let compaction = collab_server::hold_compaction("big");
    compaction.release();
    let (mut alice, wa) = server.join("big", "alice").await;
    let mut da = replica(&wa);
    // 60 edits of 3 KB that do not compress: the room's snapshot is many
    // frames long (a compaction is due at 30 imports, and whenever the
    // updates after the snapshot are as big as it).
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut letter = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        char::from(b'a' + (state % 26) as u8)
    };
    for seq in 0..60u64 {
        let at = da.len_chars();
        let line: String = (0..3000).map(|_| letter()).collect();
        let line = format!("{seq:04} {line}\n");
        let data = edit(&mut da, at, &line);
        alice.send(&ClientMsg::Update { seq, data }).await;
        assert_eq!(alice.recv().await, ServerMsg::Ack { seq });
    }
    // Compaction runs off the room's lock: wait for one to be swapped in.
    tokio::time::timeout(common::WAIT, compaction.finished())
        .await
        .unwrap();

    let mut raw = server.client().await;
    raw.send(&ClientMsg::Join(join_msg("big", "bob"))).await;
    let first = raw.next_raw().await.unwrap();
    assert!(first.len() <= max_frame, "welcome of {} bytes", first.len());
    let ServerMsg::Welcome(w) = ServerMsg::from_json(&first).unwrap() else {
        panic!("expected welcome: {first:.200}")
    };
    assert!(w.doc.as_slice().is_empty());
    assert!(w.doc_parts > 1, "{} parts", w.doc_parts);
    let mut doc = Vec::new();
    for _ in 0..w.doc_parts {
        let text = raw.next_raw().await.unwrap();
        assert!(text.len() <= max_frame, "doc_part of {} bytes", text.len());
        match ServerMsg::from_json(&text).unwrap() {
            ServerMsg::DocPart { data } => doc.extend_from_slice(data.as_slice()),
            other => panic!("expected doc_part, got {other:?}"),
        }
    }
    let mut copy = SharedDoc::from_snapshot(&doc).unwrap();
    // Then the room's updates after that snapshot, each a message that fits.
    for _ in 0..w.doc_updates {
        let text = raw.next_raw().await.unwrap();
        assert!(text.len() <= max_frame, "update of {} bytes", text.len());
        match ServerMsg::from_json(&text).unwrap() {
            ServerMsg::Update { from: 0, data } => assert!(copy.import(data.as_slice()).is_ok()),
            other => panic!("expected the welcome's update, got {other:?}"),
        }
    }
    assert_eq!(copy.text(), da.text());
    assert_eq!(
        alice.recv().await,
        ServerMsg::Joined {
            member: w.you.clone()
        }
    );

    // collab-client does the same on its own.
    let carol = collab_client::Client::builder(&server.url(), "big", "carol")
        .timeout(common::WAIT)
        .join()
        .await
        .unwrap();
    carol.wait_text(&da.text()).await.unwrap();
    carol.close().await.unwrap();
    server.stop().await;
}
