//! Follow mode and jumping to a member, as drawn on a TestBackend.

use crate::support;

use std::time::Instant;

use collab_client::TransportEvent;
use collab_tui::action::Action;
use collab_tui::app::App;
use collab_tui::keymap::Command;
use support::*;

fn hundred_lines() -> String {
    (1..=100).map(|i| format!("line {i}\n")).collect()
}

fn pos_of_line(room: &Room, line: usize) -> usize {
    room.doc
        .text()
        .lines()
        .take(line - 1)
        .map(|l| l.len() + 1)
        .sum()
}

fn status(app: &mut App) -> String {
    render(app).lines().last().unwrap().to_owned()
}

#[test]
fn my_view_follows_a_member_until_i_move() {
    let room = Room::new(&hundred_lines());
    let mut app = joined(&room, "notes.txt", 80, 24);
    msg(&mut app, room.presence(2, pos_of_line(&room, 80), None));
    app.update(Action::Command(Command::Follow));
    let screen = render(&mut app);
    assert!(screen.contains("line 80"), "{screen}");
    assert!(status(&mut app).contains("following bob"));
    // Bob moves up; my view goes with him, my caret stays on line 1.
    msg(&mut app, room.presence(2, pos_of_line(&room, 40), None));
    let screen = render(&mut app);
    assert!(
        screen.contains("line 40") && !screen.contains("line 80"),
        "{screen}"
    );
    assert_eq!(app.editor.head(), 0);
    // Opening the chat keeps following; Esc closes the chat, then stops.
    app.update(Action::Command(Command::Chat));
    assert!(render(&mut app).contains("line 40"));
    app.update(Action::Command(Command::Cancel));
    assert!(app.following().is_some());
    app.update(Action::Command(Command::Cancel));
    assert!(app.following().is_none());
    assert!(!status(&mut app).contains("following"));
    // Followed again, a move of mine ends it and my caret shows.
    app.update(Action::Command(Command::Follow));
    app.update(Action::Command(Command::MoveDown));
    assert!(app.following().is_none());
    msg(&mut app, room.presence(2, pos_of_line(&room, 90), None));
    let screen = render(&mut app);
    assert!(
        screen.contains("line 2") && !screen.contains("line 90"),
        "{screen}"
    );
}

#[test]
fn follow_by_name_from_the_chat_and_when_they_leave() {
    let room = Room::new(&hundred_lines());
    let mut app = joined(&room, "notes.txt", 80, 24);
    msg(&mut app, room.presence(2, pos_of_line(&room, 60), None));
    app.update(Action::Command(Command::Chat));
    for c in "/follow bob".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    assert_eq!(app.following(), Some("bob"));
    assert!(app.take_orders().iter().all(|e| !matches!(
        e,
        collab_tui::app::Order::Send(collab_protocol::ClientMsg::Chat { .. })
    )));
    assert!(render(&mut app).contains("line 60"));
    for c in "/follow nobody".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    assert!(render(&mut app).contains("No one named nobody"));
    assert_eq!(app.following(), Some("bob"));
    msg(&mut app, left(&bob()));
    assert_eq!(app.following(), None);
}

#[test]
fn a_read_only_viewer_follows_and_jumps() {
    let room = Room::new(&hundred_lines());
    let mut app = App::new(config("", None), Instant::now());
    app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    let mut me = alice();
    me.read_only = true;
    msg(&mut app, room.welcome(me.clone(), vec![me, bob()]));
    assert!(app.read_only());
    msg(&mut app, room.presence(2, pos_of_line(&room, 70), None));
    app.update(Action::Command(Command::Follow));
    assert!(render(&mut app).contains("line 70"));
    // F6 puts my caret on bob's, once.
    app.update(Action::Command(Command::JumpToMember));
    assert_eq!(app.following(), None);
    assert_eq!(app.editor.line_col().0, 69);
}
