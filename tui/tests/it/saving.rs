//! Saving never writes over a file with text the editor did not load from
//! it: a file the server refused, a file that differs from the room's text.
//! The first Ctrl-S asks; the second does it.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Instant;

use collab_client::TransportEvent;
use collab_protocol::{ErrorCode, ServerMsg};
use collab_tui::action::Action;
use collab_tui::app::{App, Effect, FileState};
use collab_tui::keymap::Command;
use support::*;

/// The paths of the saves among the effects.
fn saves(app: &mut App) -> Vec<String> {
    app.take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Save { path, .. } => Some(path.display().to_string()),
            _ => None,
        })
        .collect()
}

fn quits(app: &mut App) -> bool {
    app.take_effects().contains(&Effect::Quit)
}

/// alice opens `file` holding `text` in `room`, on a server whose
/// documents hold at most `limit` bytes.
fn open(file: &str, text: &str, room: &Room, limit: usize) -> App {
    let mut app = App::new(config(file, Some(text)), Instant::now());
    app.update(Action::Resize {
        width: 100,
        height: 24,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    msg(
        &mut app,
        room.welcome_with_limit(alice(), vec![alice()], limit),
    );
    app
}

fn cmd(app: &mut App, c: Command) {
    app.update(Action::Command(c));
}

#[test]
fn a_file_too_large_for_the_room_is_not_emptied_by_ctrl_s() {
    let big = "a line of the big file\n".repeat(100);
    let mut app = open("big.txt", &big, &Room::new(""), 1000);
    assert!(render(&mut app).contains("larger than this server accepts"));
    // The room stays empty and so does the buffer: nothing is modified,
    // and quitting asks nothing.
    assert_eq!(app.editor.rope().len_chars(), 0);
    assert!(!app.modified, "a refused seed marks the buffer modified");
    assert_eq!(app.file_state, FileState::NotLoaded);
    let _ = app.take_effects();
    // Ctrl-S does not write the empty room over the file: it asks.
    cmd(&mut app, Command::Save);
    assert!(
        saves(&mut app).is_empty(),
        "Ctrl-S wrote over big.txt at once"
    );
    let screen = render(&mut app);
    assert!(screen.contains("big.txt was never loaded"), "{screen}");
    // Another command drops the question; Ctrl-S asks again.
    cmd(&mut app, Command::MoveRight);
    cmd(&mut app, Command::Save);
    assert!(saves(&mut app).is_empty());
    // Ctrl-S right after the question does it.
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["big.txt"]);
    // With nothing modified, Ctrl-Q quits at once.
    cmd(&mut app, Command::Quit);
    assert!(quits(&mut app));
}

#[test]
fn a_seed_the_server_refuses_leaves_the_buffer_unmodified() {
    // The welcome's limit lets the seed go; the server refuses it anyway.
    let mut app = open("notes.txt", "my notes\n", &Room::new(""), 1 << 20);
    assert!(app.seeding);
    msg(
        &mut app,
        ServerMsg::Error {
            code: ErrorCode::DocTooLarge,
            message: "The seed text is too large.".into(),
            seq: None,
        },
    );
    assert!(!app.seeding);
    assert!(!app.modified);
    assert_eq!(app.file_state, FileState::NotLoaded);
    let _ = app.take_effects();
    cmd(&mut app, Command::Save);
    assert!(saves(&mut app).is_empty());
}

#[test]
fn joining_with_a_file_that_differs_from_the_room_says_so_and_asks_before_saving() {
    let room = Room::new("the room's text\n");
    let mut app = open("mine.txt", "my own file\n", &room, 1 << 20);
    let screen = render(&mut app);
    assert!(
        screen.contains("mine.txt differs from the room's text"),
        "{screen}"
    );
    assert!(screen.contains("Alt-S saves elsewhere"), "{screen}");
    assert_eq!(app.file_state, FileState::Differs);
    let _ = app.take_effects();
    cmd(&mut app, Command::Save);
    assert!(
        saves(&mut app).is_empty(),
        "Ctrl-S replaced mine.txt at once"
    );
    assert!(render(&mut app).contains("mine.txt on disk is not the room's text"));
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["mine.txt"]);
    // Once saved, the file is the session's: the next save asks nothing.
    app.update(Action::Saved(Ok("mine.txt".into())));
    assert_eq!(app.file_state, FileState::Ours);
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["mine.txt"]);
}

#[test]
fn a_file_equal_to_the_room_saves_without_asking() {
    let room = Room::new("same text\n");
    let mut app = open("same.txt", "same text\n", &room, 1 << 20);
    assert_eq!(app.file_state, FileState::Ours);
    let _ = app.take_effects();
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["same.txt"]);
}
