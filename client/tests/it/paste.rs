//! A big paste through a real server: Loro merges one long insert of
//! another peer in time quadratic in its length, on the server and on every
//! member, so the replica sends a paste as runs (collab-doc's `runs`).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::Server;

/// Alice types; Bob, who has her line, pastes 740 KiB (one 1 MiB frame):
/// it reaches Alice whole, and the room has the same text. The wait is the
/// client's timeout, a guard against a hang only. How fast (as one insert,
/// Loro's quadratic merge took 2.6 s here in a debug build; as runs 0.3 s)
/// is a bench's: `cargo bench -p collab-bench --bench paste_cost` times the
/// server's and each member's merge of such a paste both ways.
#[tokio::test]
async fn a_big_paste_reaches_the_other_member() {
    let server = Server::start().await;
    let alice = server.join("paste", "alice").await;
    let bob = server.join("paste", "bob").await;
    alice.edit(0, 0, "fn main() {}\n").unwrap();
    bob.wait_text("fn main() {}\n").await.unwrap();

    let paste: String = "    let café = compute(input, 42); // 😀\r\n"
        .chars()
        .cycle()
        .take(740 * 1024)
        .collect();
    let expected = format!("fn main() {{}}\n{paste}");
    bob.edit(13, 0, &paste).unwrap();
    alice.wait_text(&expected).await.unwrap();
    bob.wait_synced().await.unwrap();
    assert_eq!(server.room_text("paste").await, expected);
    server.stop().await;
}

/// A newcomer joins a room holding a big paste, loaded from the store (as
/// after a restart, or once its members all left): the welcome is one
/// snapshot whose text is the paste's runs, thousands of elements. Loading
/// it through Loro's snapshot path into the newcomer's document, which its
/// change log and undo manager subscribe to, was quadratic in them (release
/// builds: 2 MB 1.1 s, 8 MB 35 s, 10 MB 41 s). Now a replay: the newcomer
/// has the text, and its delta-fed mirror (an editor's buffer) the same.
/// The structure is pinned in collab-doc
/// (`a_snapshot_into_an_empty_tracked_replica_is_replayed_not_decoded`).
#[tokio::test]
async fn a_newcomer_loads_a_stored_room_holding_a_big_paste() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(collab_server::Config {
        storage: collab_server::Storage::Dir(dir.path().to_path_buf()),
        ..collab_server::Config::default()
    })
    .await;
    let alice = server.join("pasted", "alice").await;
    let paste = "    let total = items.iter().map(|x| x.price * x.count).sum::<u64>(); // sum\n"
        .repeat(40_000); // ~3 MB, about 6,000 runs
    alice.edit(0, 0, &paste).unwrap();
    alice.wait_synced().await.unwrap();
    // The room empties and is dropped from memory; carol's join loads it.
    alice.close().await.unwrap();
    let carol = collab_client::Client::builder(&server.url, "pasted", "carol")
        .options(Server::options())
        .timeout(Duration::from_secs(60))
        .mirror(true)
        .join()
        .await
        .unwrap();
    assert!(
        carol.text() == paste,
        "carol has {} chars",
        carol.text().len()
    );
    {
        let state = carol.state();
        assert_eq!(state.mirror_error(), None);
        assert!(state.mirror().is_some_and(|m| m == paste));
    }
    // Her keystroke after it reaches the next member.
    carol.edit(0, 0, "// carol\n").unwrap();
    carol.wait_synced().await.unwrap();
    let dave = server.join("pasted", "dave").await;
    assert!(dave.text() == carol.text());
    server.stop().await;
}
