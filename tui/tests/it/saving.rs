//! Saving never writes over a file with text the editor did not load from
//! it: a file the server refused, a file that differs from the room's text.
//! The first Ctrl-S asks; the second does it.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Instant;

use collab_client::TransportEvent;
use collab_protocol::{ErrorCode, ServerMsg};
use collab_tui::action::Action;
use collab_tui::app::{App, FileState, Order};
use collab_tui::keymap::Command;
use collab_tui::save::{Expect, SaveError, Saved};
use support::*;

/// The paths of the saves among the effects.
fn saves(app: &mut App) -> Vec<String> {
    expects(app).into_iter().map(|(p, _)| p).collect()
}

/// The saves among the effects, with what each expects of the file.
fn expects(app: &mut App) -> Vec<(String, Expect)> {
    app.take_orders()
        .into_iter()
        .filter_map(|e| match e {
            Order::Save { path, expect, .. } => Some((path.display().to_string(), expect)),
            _ => None,
        })
        .collect()
}

fn ok(path: &str) -> Action {
    Action::Saved(Ok(Saved {
        written: path.into(),
        stamp: None,
        in_place: false,
    }))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(Action::Type(c));
    }
}

fn quits(app: &mut App) -> bool {
    app.take_orders().contains(&Order::Quit)
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
    assert!(!app.modified(), "a refused seed marks the buffer modified");
    assert_eq!(app.file_state(), FileState::NotLoaded);
    let _ = app.take_orders();
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
    assert!(app.session.seeding());
    msg(
        &mut app,
        ServerMsg::Error {
            code: ErrorCode::DocTooLarge,
            message: "The seed text is too large.".into(),
            seq: None,
        },
    );
    assert!(!app.session.seeding());
    assert!(!app.modified());
    assert_eq!(app.file_state(), FileState::NotLoaded);
    let _ = app.take_orders();
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
    assert_eq!(app.file_state(), FileState::Differs);
    let _ = app.take_orders();
    cmd(&mut app, Command::Save);
    assert!(
        saves(&mut app).is_empty(),
        "Ctrl-S replaced mine.txt at once"
    );
    assert!(render(&mut app).contains("mine.txt on disk is not the room's text"));
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["mine.txt"]);
    // Once saved, the file is the session's: the next save asks nothing.
    app.update(ok("mine.txt"));
    assert_eq!(app.file_state(), FileState::Ours);
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["mine.txt"]);
}

#[test]
fn a_file_equal_to_the_room_saves_without_asking() {
    let room = Room::new("same text\n");
    let mut app = open("same.txt", "same text\n", &room, 1 << 20);
    assert_eq!(app.file_state(), FileState::Ours);
    let _ = app.take_orders();
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["same.txt"]);
}

#[test]
fn a_file_changed_on_disk_since_it_was_opened_is_not_overwritten_without_asking() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    let _ = app.take_orders();
    cmd(&mut app, Command::Save);
    // The save carries what the file was when read: the event loop's
    // write refuses when another program changed it since.
    assert_eq!(
        expects(&mut app),
        [("notes.txt".to_string(), Expect::Unchanged(None))]
    );
    app.update(Action::Saved(Err(SaveError::Changed)));
    let screen = render(&mut app);
    assert!(
        screen.contains("Not saved to notes.txt: it changed on disk"),
        "{screen}"
    );
    assert!(screen.contains("Ctrl-S again replaces it"), "{screen}");
    cmd(&mut app, Command::Save);
    assert_eq!(
        expects(&mut app),
        [("notes.txt".to_string(), Expect::Anything)]
    );
}

#[test]
fn save_as_asks_before_replacing_a_file_and_keeps_a_failed_name_out_of_the_title() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    let _ = app.take_orders();
    // `~` is the home directory.
    cmd(&mut app, Command::SaveAs);
    typed(&mut app, "~/copy.txt");
    cmd(&mut app, Command::Submit);
    let home = std::env::var("HOME").unwrap();
    let copy = format!("{home}/copy.txt");
    assert_eq!(expects(&mut app), [(copy.clone(), Expect::Unchanged(None))]);
    // It exists: the prompt comes back with the name, and Enter again
    // replaces it.
    app.update(Action::Saved(Err(SaveError::Exists)));
    let screen = render(&mut app);
    assert!(
        screen.contains(&format!("Not saved to {copy}: it already exists")),
        "{screen}"
    );
    assert_eq!(app.prompt().unwrap().input.text, copy);
    cmd(&mut app, Command::Submit);
    assert_eq!(expects(&mut app), [(copy.clone(), Expect::Anything)]);
    // A write that fails names the path and leaves FILE as it was; the
    // prompt is back to type another name.
    app.update(Action::Saved(Err(SaveError::Io(
        "No such file or directory (os error 2)".into(),
    ))));
    let screen = render(&mut app);
    assert!(
        screen.contains(&format!("Not saved to {copy}: No such file")),
        "{screen}"
    );
    assert_eq!(
        app.config.file.as_deref(),
        Some(std::path::Path::new("notes.txt"))
    );
    assert!(app.prompt().is_some());
    // A new name, saved: FILE becomes it.
    cmd(&mut app, Command::Cancel);
    cmd(&mut app, Command::SaveAs);
    typed(&mut app, "other.txt");
    cmd(&mut app, Command::Submit);
    assert_eq!(saves(&mut app), ["other.txt"]);
    app.update(ok("other.txt"));
    assert_eq!(
        app.config.file.as_deref(),
        Some(std::path::Path::new("other.txt"))
    );
    assert!(!app.modified());
}

#[test]
fn a_read_only_file_is_refused_with_the_way_out() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "ro.txt", 100, 24);
    let _ = app.take_orders();
    cmd(&mut app, Command::Save);
    app.update(Action::Saved(Err(SaveError::ReadOnly { mode: 0o444 })));
    let screen = render(&mut app);
    assert!(
        screen.contains("Not saved to ro.txt: it is read-only (mode 444)"),
        "{screen}"
    );
    assert!(screen.contains("Alt-S saves elsewhere"), "{screen}");
}

#[test]
fn quitting_offline_with_unsent_edits_warns_with_their_count() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    let _ = app.take_orders();
    app.update(Action::Transport(TransportEvent::Disconnected {
        reason: "connection refused".into(),
        retry_in: None,
    }));
    typed(&mut app, "ab");
    app.update(Action::Sync);
    // Saved, so only the unsent edits are at stake.
    cmd(&mut app, Command::Save);
    app.update(ok("notes.txt"));
    assert!(!app.modified());
    let _ = app.take_orders();
    cmd(&mut app, Command::Quit);
    assert!(!quits(&mut app), "quit at once with unsent edits");
    let unsent = app.session.unsent_edits();
    assert!(unsent > 0);
    let screen = render(&mut app);
    let word = if unsent == 1 {
        "edit has"
    } else {
        "edits have"
    };
    assert!(
        screen.contains(&format!("Offline: {unsent} {word} not reached the server")),
        "{screen}"
    );
    cmd(&mut app, Command::Quit);
    assert!(quits(&mut app));
}

#[test]
fn modified_means_different_from_the_file_on_disk() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    typed(&mut app, "more ");
    assert!(app.modified());
    // Another editor saved the same text to the file.
    let dir = std::env::temp_dir().join(format!("collab-ondisk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.txt");
    std::fs::write(&path, app.editor.rope().to_string()).unwrap();
    let mut watch = collab_tui::file_watch::FileWatch::default();
    let found = watch.check(&path, None).unwrap();
    let stamp = found.stamp;
    app.update(Action::FileOnDisk(found));
    assert!(!app.modified(), "the buffer is what the file holds");
    assert!(!render(&mut app).contains("[+]"));
    // The next save expects the file as it was found.
    let _ = app.take_orders();
    cmd(&mut app, Command::Save);
    assert_eq!(
        expects(&mut app),
        [("notes.txt".to_string(), Expect::Unchanged(Some(stamp)))]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_signal_quits_at_once_without_asking() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    typed(&mut app, "unsaved ");
    assert!(app.modified());
    let _ = app.take_orders();
    app.update(Action::Terminate);
    let effects = app.take_orders();
    let leaves = effects
        .iter()
        .filter(|e| matches!(e, Order::Send(collab_protocol::ClientMsg::Leave)))
        .count();
    assert_eq!(leaves, 1, "{effects:?}");
    assert_eq!(effects.last(), Some(&Order::Quit));
    // A second signal adds nothing.
    app.update(Action::Terminate);
    assert!(app.take_orders().is_empty());
}

#[test]
fn one_save_at_a_time() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 100, 24);
    typed(&mut app, "more ");
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["notes.txt"]);
    assert!(app.save_pending());
    // Its result is not back yet (the write runs off the event loop): a
    // second Ctrl-S waits rather than racing it.
    cmd(&mut app, Command::Save);
    assert!(saves(&mut app).is_empty());
    let screen = render(&mut app);
    assert!(screen.contains("Still saving notes.txt"), "{screen}");
    app.update(ok("notes.txt"));
    assert!(!app.save_pending() && !app.modified());
    typed(&mut app, "x");
    cmd(&mut app, Command::Save);
    assert_eq!(saves(&mut app), ["notes.txt"]);
}
