//! A big paste through a real server: Loro merges one long insert of
//! another peer in time quadratic in its length, on the server and on every
//! member, so the replica sends a paste as runs (collab-doc's `runs`).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::Server;

/// Alice types; Bob, who has her line, pastes 740 KiB (one 1 MiB frame).
/// As one insert the paste reached Alice after 2.6 s (a `cargo test`
/// build); as runs after 0.3 s, most of it moving a 1 MiB frame through
/// JSON and base64 in a debug build. The bound leaves room for a loaded
/// machine.
#[tokio::test]
async fn a_big_paste_reaches_the_other_member_quickly() {
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
    let started = Instant::now();
    bob.edit(13, 0, &paste).unwrap();
    alice.wait_text(&expected).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "the paste took {took:?}"
    );
    bob.wait_synced().await.unwrap();
    assert_eq!(server.room_text("paste").await, expected);
    server.stop().await;
}
