//! The chat panel as a person uses it: scrolling back, editing the line,
//! long messages, closing, and small terminals.

use crate::support;

use collab_protocol::ServerMsg;
use collab_tui::action::Action;
use collab_tui::app::{App, Focus, Order};
use collab_tui::keymap::Command;
use support::*;

fn say(app: &mut App, i: usize) {
    let mut m = chat(&bob(), &format!("message {i:02}"));
    if let ServerMsg::Chat { time, .. } = &mut m {
        // 09:00 UTC plus i minutes.
        *time = (9 * 3600 + 60 * i as u64) * 1000;
    }
    msg(app, m);
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(Action::Type(c));
    }
}

fn cmd(app: &mut App, c: Command) {
    app.update(Action::Command(c));
}

#[test]
fn scroll_back_through_the_chat() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    for i in 0..30 {
        say(&mut app, i);
    }
    cmd(&mut app, Command::Chat);
    let s = render(&mut app);
    assert!(s.contains("09:29 bob: message 29"), "{s}");
    assert!(!s.contains("message 10"), "{s}");
    // Up with an empty box goes back one message, PgUp a page.
    cmd(&mut app, Command::InputUp);
    assert!(!render(&mut app).contains("message 29"));
    cmd(&mut app, Command::PageUp);
    cmd(&mut app, Command::PageUp);
    cmd(&mut app, Command::PageUp);
    let s = render(&mut app);
    assert!(
        s.contains("message 13") && s.contains("13 newer below"),
        "{s}"
    );
    // PgDn comes back to the latest.
    for _ in 0..10 {
        cmd(&mut app, Command::PageDown);
    }
    let s = render(&mut app);
    assert!(
        s.contains("message 29") && !s.contains("newer below"),
        "{s}"
    );
    // With text in the box, Up does not scroll.
    typed(&mut app, "x");
    cmd(&mut app, Command::InputUp);
    assert_eq!(app.chat().scroll, 0);
}

#[test]
fn the_chat_box_edits_like_a_shell() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    cmd(&mut app, Command::Chat);
    typed(&mut app, "hello there world");
    cmd(&mut app, Command::DeleteWordBefore);
    cmd(&mut app, Command::LineStart);
    typed(&mut app, ">> ");
    cmd(&mut app, Command::LineEnd);
    typed(&mut app, "you");
    assert_eq!(app.chat().input.text, ">> hello there you");
    cmd(&mut app, Command::WordLeft);
    cmd(&mut app, Command::DeleteToStart);
    assert_eq!(app.chat().input.text, "you");
}

#[test]
fn long_messages_wrap_on_words_with_a_time() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 60, 16);
    msg(
        &mut app,
        chat(
            &bob(),
            "shall we fix the parser first, or the tests that keep failing on the build machine?",
        ),
    );
    cmd(&mut app, Command::Chat);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn esc_closes_the_chat_and_msg_alone_shows_its_usage() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    cmd(&mut app, Command::Chat);
    typed(&mut app, "/msg");
    cmd(&mut app, Command::Submit);
    let s = render(&mut app);
    assert!(s.contains("Usage: /msg NAME text"), "{s}");
    cmd(&mut app, Command::Cancel);
    assert!(!app.chat().open);
    assert_eq!(app.focus, Focus::Text);
    assert!(app.areas().chat.is_none());
}

#[test]
fn no_focus_for_a_chat_the_terminal_cannot_show() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 20, 5);
    cmd(&mut app, Command::Chat);
    assert_eq!(app.focus, Focus::Text);
    assert!(render(&mut app).contains("too small"));
    // What is typed goes into the text, where it shows, not to the room.
    typed(&mut app, "hi");
    assert!(app.editor.rope().to_string().starts_with("hi"));
    assert!(
        !app.take_orders()
            .iter()
            .any(|e| matches!(e, Order::Send(collab_protocol::ClientMsg::Chat { .. })))
    );
    // Open in a big terminal, then shrunk: the focus comes back to the text.
    let mut app = joined(&room, "notes.txt", 80, 24);
    cmd(&mut app, Command::Chat);
    assert_eq!(app.focus, Focus::Chat);
    app.update(Action::Resize {
        width: 20,
        height: 5,
    });
    assert_eq!(app.focus, Focus::Text);
}
