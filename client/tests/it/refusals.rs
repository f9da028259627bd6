//! What the server must refuse, reduced from failures of the convergence
//! suite to deterministic tests through a real server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::Server;

use collab_protocol::{Base64Bytes, ClientMsg, ErrorCode};

/// Sends `data` as an update of `c`'s with its next seq; returns the seq.
fn send_update(c: &collab_client::Client, data: Vec<u8>) -> u64 {
    c.with_replica(|r| {
        let seq = r.next_seq();
        let data = Base64Bytes(data);
        (seq, vec![ClientMsg::Update { seq, data }])
    })
}

/// Issue 12: "reusing ids the room already has, with other content: the
/// server answers `ack` and silently drops it". Mallory sends changes under
/// alice's peer id at counters the room already holds ("EVIL" where alice
/// typed "vict"): nothing in it is new, and Loro ignores an update it has
/// entirely without comparing it, so it was acked. The same happened to a
/// forger that lost the race for a victim's next ids. Now any change under
/// another session's id is refused, known or not (honest resends carry only
/// their author's ids: `replica::a_resend_carries_my_changes_only`).
#[tokio::test]
async fn reused_ids_with_other_content_are_refused() {
    let server = Server::start().await;
    let alice = server.join("reuse", "alice").await;
    alice.edit(0, 0, "victim text. ").unwrap();
    alice.wait_synced().await.unwrap();
    let mallory = server.join("reuse", "mallory").await;
    let victim = alice.state().replica().doc().peer_id();
    let seq = send_update(&mallory, collab_doc::forge_for_tests(victim, "EVIL"));
    mallory
        .wait_for(|s| s.acks().any(|a| a == seq) || s.errors().iter().any(|e| e.1 == Some(seq)))
        .await
        .unwrap();
    let acked = mallory.state().acks().any(|a| a == seq);
    let errors = mallory.state().errors();
    assert!(!acked, "the forgery was acked");
    assert_eq!(errors, vec![(ErrorCode::BadUpdate, Some(seq))]);
    assert_eq!(server.room_text("reuse").await, "victim text. ");
    server.stop().await;
}

/// After a restart of a memory-only server nobody owns the peer ids given
/// out before (docs/protocol.md: "ids it never gave out ... are accepted
/// from anyone"). Mallory, back first, writes "EVIL" at alice's next ids
/// under alice's old peer id. This used to split the room silently: alice
/// had typed " MINE" offline under that same id, so her update collided
/// with the forgery ("victim text. EVILE" in the room, "victim text.  MINE"
/// at alice, both acked). Now a client types offline under a fresh id
/// (`SharedDoc::author_fresh`), so nothing collides. The forgery itself is
/// still taken as history, by decision (docs/protocol.md, "Peer ids"): an
/// honest member's catch-up after a restart brings new changes under other
/// members' old ids just the same (members hold different parts of an
/// absent member's history), so refusing "new changes under an id the room
/// has and nobody owns" would refuse honest members. Telling them apart
/// needs the room to remember, across the restart, which session its old
/// ids belonged to (possible for stored rooms by storing the bindings; not
/// done: they are kept in memory only).
#[tokio::test]
async fn after_a_restart_an_old_peer_id_extended_by_another_splits_nothing() {
    let server = Server::start().await;
    let url = server.url.clone();
    let alice = server.join("restart", "alice").await;
    alice.edit(0, 0, "victim text. ").unwrap();
    alice.wait_synced().await.unwrap();
    let mallory = server.join("restart", "mallory").await;
    let old_peer = alice.state().replica().doc().peer_id();
    alice.go_offline().await.unwrap();
    alice.edit(13, 0, " MINE").unwrap();

    server.stop().await;
    let server = Server::start_on(&url).await;
    mallory.wait_for(|s| s.welcomes() == 2).await.unwrap();
    mallory.wait_synced().await.unwrap();
    // Mallory's forgery: her replica's text, extended under alice's id.
    let snapshot = mallory.state().replica().doc().snapshot().unwrap();
    let mut forged = collab_doc::SharedDoc::from_snapshot(&snapshot).unwrap();
    forged.author_as(old_peer).unwrap();
    forged.splice(13, 0, "EVIL").unwrap();
    let seq = send_update(&mallory, forged.take_local_update().unwrap());
    mallory
        .wait_for(|s| s.acks().any(|a| a == seq) || s.errors().iter().any(|e| e.1 == Some(seq)))
        .await
        .unwrap();

    alice.go_online().await.unwrap();
    alice.wait_synced().await.unwrap();
    // Nobody can tell alice's old id from anyone's after a memory-only
    // restart, so the forgery is taken as history; but alice typed offline
    // under a fresh id, so nothing collides: no split, no error, her edit
    // is in the room once, and everyone holds the same text.
    let alice_errors = alice.state().errors();
    assert!(alice_errors.is_empty(), "alice: {alice_errors:?}");
    let room = server.room_text("restart").await;
    assert_eq!(room.matches(" MINE").count(), 1, "{room:?}");
    assert_eq!(alice.text(), room);
    assert!(alice.state().replica().doc().peer_id() != old_peer);
    let _ = seq;
    server.stop().await;
}

/// Issue 12, item 1, the case left: an update made *entirely* of changes
/// the room already has, under ids that are not another session's, with
/// other content. Here the seed's ids (the room binds them to itself, but
/// takes copies of changes it has: a member back from a restart carries the
/// seed in its catch-up, docs/protocol.md "Peer ids"). Mallory sends "EVIL"
/// at the seed's first counters: acked, and nothing changes anywhere. The
/// server imports nothing (every change is known, so Loro is not even
/// asked), relays nothing, stores nothing and keeps nothing for newcomers:
/// the room, every member and every newcomer keep the seed's text. Only a
/// sender that applied its forgery locally holds it, and only it.
#[tokio::test]
async fn a_copy_of_known_ids_with_other_content_changes_nobodys_text() {
    let server = Server::start().await;
    let file = "the file's own text\n";
    let alice = collab_client::Client::builder(&server.url, "copy", "alice")
        .options(Server::options())
        .seed(file)
        .join()
        .await
        .unwrap();
    alice
        .wait_for(|s| s.replica().text() == file)
        .await
        .unwrap();
    let bob = server.join("copy", "bob").await;
    let mallory = server.join("copy", "mallory").await;
    let seed = collab_doc::seed_peer(file);
    let seq = send_update(&mallory, collab_doc::forge_for_tests(seed, "EVIL"));
    mallory
        .wait_for(|s| s.acks().any(|a| a == seq) || s.errors().iter().any(|e| e.1 == Some(seq)))
        .await
        .unwrap();
    assert!(mallory.state().acks().any(|a| a == seq), "acked as a no-op");
    // An edit of alice's after it reaches bob: bob has seen whatever the
    // room relayed before it.
    alice.edit(0, 0, "> ").unwrap();
    alice.wait_synced().await.unwrap();
    bob.wait_includes(&alice.version()).await.unwrap();
    let want = format!("> {file}");
    assert_eq!(alice.text(), want);
    assert_eq!(bob.text(), want);
    assert_eq!(mallory.text(), want);
    assert_eq!(server.room_text("copy").await, want);

    // Nothing can be built on such a copy either: with a change of her own
    // on top (so the update brings something new), Loro compares the known
    // part with the room's history, and the whole update is refused.
    let mut forged = collab_doc::SharedDoc::new();
    forged.author_as(seed).unwrap();
    forged.splice(0, 0, "EVIL").unwrap();
    forged
        .author_as(mallory.state().replica().doc().peer_id())
        .unwrap();
    forged.splice(2, 0, "+").unwrap();
    let seq = send_update(&mallory, forged.take_local_update().unwrap());
    mallory
        .wait_for(|s| s.acks().any(|a| a == seq) || s.errors().iter().any(|e| e.1 == Some(seq)))
        .await
        .unwrap();
    let errors = mallory.state().errors();
    assert!(
        errors.contains(&(ErrorCode::BadUpdate, Some(seq))),
        "{errors:?}"
    );
    assert_eq!(server.room_text("copy").await, want);
    server.stop().await;
}
