//! The one place orders are carried out: a save is written off the event
//! loop and its result comes back as an action.

use crate::support;

use std::time::Duration;

use collab_tui::action::Action;
use collab_tui::keymap::Command;
use collab_tui::net::Net;
use collab_tui::outside::{Flow, Outside};
use support::*;

#[tokio::test]
async fn a_save_is_written_off_the_loop_and_comes_back_as_an_action() {
    let dir = std::env::temp_dir().join(format!("collab-tui-effects-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.txt");
    let room = Room::new("hello\n");
    let mut app = joined(&room, &path.display().to_string(), 80, 24);
    let _ = app.take_orders();
    // Nothing listens on port 1 of loopback: the messages go nowhere.
    let mut out = Outside::new(Net::open("ws://127.0.0.1:1", None).unwrap());
    app.update(Action::Command(Command::Save));
    assert_eq!(out.carry_out(&mut app), Flow::Continue);
    assert!(out.saving(), "carried out without waiting for the write");
    let back = tokio::time::timeout(Duration::from_secs(30), out.done.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(back, Action::Saved(Ok(_))), "{back:?}");
    out.apply(&mut app, back);
    assert!(!out.saving());
    assert!(app.notices.iter().any(|n| n.text.starts_with("Saved ")));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    std::fs::remove_dir_all(&dir).unwrap();
}
