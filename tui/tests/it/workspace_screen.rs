//! Snapshots of a workspace's panels (insta, as `screen`): the file tree
//! with a member's dot on their file, and the Ctrl-P picker. Against a
//! real server, as `workspace`; what could vary between runs (folder
//! paths, ids) is not on these screens.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use collab_tui::action::Action;
use collab_tui::keymap::Command;

use crate::support::render;
use crate::workspace::{alice_shares, bob_sees_the_tree, server};

#[tokio::test]
async fn the_tree_panel_and_the_picker_100x30() {
    let url = server().await;
    let (_dir, mut alice) = alice_shares(&url).await;
    let mut bob = bob_sees_the_tree(&url).await;
    bob.open_in_tree("src/lib.rs");
    bob.until("lib.rs", |a| a.editor.rope().len_chars() > 0)
        .await;
    // Alice is in main.rs: her dot is on it in bob's tree.
    alice.open_in_tree("main.rs");
    bob.until("alice in main.rs", |a| {
        let main = a.entries().iter().find(|e| e.path == "main.rs").unwrap().id;
        a.peers
            .iter()
            .any(|p| p.name == "alice" && a.session.member_file(p.id) == Some(main))
    })
    .await;
    // The notices so far fade (they name temporary folders).
    bob.app
        .update(Action::Clock(Instant::now() + Duration::from_secs(60)));
    assert!(bob.app.notices.is_empty());
    bob.cmd(Command::Tree);
    insta::assert_snapshot!("tree_panel", render(&mut bob.app));

    bob.cmd(Command::Picker);
    bob.type_str("rs");
    insta::assert_snapshot!("picker", render(&mut bob.app));
}
