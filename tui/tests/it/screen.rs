//! Snapshots of the screen (ratatui's TestBackend + insta): what a person
//! sees in each situation, at 80x24 and smaller.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::Duration;

use collab_client::TransportEvent;
use collab_tui::action::Action;
use collab_tui::keymap::Command;
use support::*;

const RUST: &str =
    "use std::io;\n\nfn main() {\n    let name = \"world\";\n    println!(\"hello {name}\");\n}\n";

#[test]
fn members_panel_status_bar_and_remote_caret_80x24() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 80, 24);
    // Bob selects `name` on line 4.
    msg(&mut app, room.presence(2, 38, Some(34)));
    app.update(Action::Command(Command::MoveDown));
    insta::assert_snapshot!(render(&mut app));
    let bob = app.peers.iter().find(|p| p.name == "bob").unwrap();
    assert_eq!(bob.line, Some(3));
}

#[test]
fn notices_for_joins_and_leaves() {
    let room = Room::new("one\ntwo\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    let carol = member(3, "carol", "#98c379");
    msg(
        &mut app,
        collab_protocol::ServerMsg::Joined {
            member: carol.clone(),
        },
    );
    msg(&mut app, left(&bob()));
    insta::assert_snapshot!(render(&mut app));
    // They fade, then go.
    let later = app.now + Duration::from_secs(60);
    app.update(Action::Clock(later));
    assert!(app.notices.is_empty());
}

#[test]
fn chat_panel_and_unread_count() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    msg(&mut app, chat(&bob(), "shall we fix the parser first?"));
    msg(
        &mut app,
        direct(&bob(), "alice", "psst: the tests are flaky"),
    );
    let closed = render(&mut app);
    assert!(closed.contains("chat 2"), "{closed}");
    app.update(Action::Command(Command::Chat));
    for c in "/msg bob on it".chars() {
        app.update(Action::Type(c));
    }
    insta::assert_snapshot!(render(&mut app));
    app.update(Action::Command(Command::Submit));
    let sent = app.take_orders();
    assert!(
        sent.iter().any(|e| matches!(e,
            collab_tui::app::Order::Send(collab_protocol::ClientMsg::Direct { to, text })
                if to == "bob" && text == "on it")),
        "{sent:?}"
    );
}

#[test]
fn wide_characters_and_combining_marks() {
    let text = "中文字符 and emoji 👍🏽 here\ncafe\u{301} naïve\n\tindented\tcolumns\n";
    let room = Room::new(text);
    let mut app = joined(&room, "wide.txt", 40, 8);
    app.update(Action::Command(Command::Members));
    insta::assert_snapshot!(render(&mut app));
    // The caret steps over a whole grapheme.
    app.update(Action::Command(Command::MoveDown));
    for _ in 0..4 {
        app.update(Action::Command(Command::MoveRight));
    }
    assert_eq!(
        app.editor.head(),
        text.chars().position(|c| c == '\n').unwrap() + 1 + 5
    );
}

#[test]
fn long_lines_scroll_horizontally() {
    let long = format!("{}END\nshort\n", "0123456789".repeat(12));
    let room = Room::new(&long);
    let mut app = joined(&room, "long.txt", 60, 6);
    app.update(Action::Command(Command::Members));
    app.update(Action::Command(Command::LineEnd));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn small_terminal_drops_the_side_panel() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 40, 10);
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn help_overlay_lists_the_keys() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 80, 24);
    app.update(Action::Command(Command::Help));
    insta::assert_snapshot!(render(&mut app));
}

#[test]
fn offline_with_unsent_edits() {
    let room = Room::new("abc\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    app.update(Action::Transport(TransportEvent::Disconnected {
        reason: "connection reset".into(),
        retry_in: Some(Duration::from_secs(2)),
    }));
    for c in "xyz".chars() {
        app.update(Action::Type(c));
    }
    let screen = render(&mut app);
    assert!(
        screen.contains("offline, 3 unsent edits; reconnecting in 2s"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn find_prompt() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 80, 24);
    app.update(Action::Command(Command::Find));
    for c in "name".chars() {
        app.update(Action::Type(c));
    }
    insta::assert_snapshot!(render(&mut app));
    assert_eq!(app.editor.selected_text(), "name");
}

#[test]
fn find_without_a_match_says_so_in_the_prompt() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 80, 24);
    app.update(Action::Command(Command::Find));
    for c in "nothing here".chars() {
        app.update(Action::Type(c));
    }
    let screen = render(&mut app);
    insta::assert_snapshot!(screen);
    assert!(!screen.contains("Not found"), "no notice per keystroke");
}

#[test]
fn long_notices_wrap_and_read_only_shows_80x24() {
    let room = Room::new(RUST);
    let mut app = collab_tui::app::App::new(config("main.rs", Some(RUST)), app_now());
    app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    let mut me = alice();
    me.read_only = true;
    msg(&mut app, room.welcome(me.clone(), vec![me, bob()]));
    app.update(Action::Type('x'));
    msg(
        &mut app,
        collab_protocol::ServerMsg::Shutdown {
            message: "The server is shutting down; reconnecting shortly.".into(),
        },
    );
    insta::assert_snapshot!(render(&mut app));
}

fn app_now() -> std::time::Instant {
    std::time::Instant::now()
}

/// A direct message to a name nobody in the room has is refused by the
/// server (`no_such_user`); what was typed goes back in the chat box, to fix
/// the name, instead of being lost.
#[test]
fn a_direct_message_to_nobody_comes_back_to_the_chat_box() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    app.update(Action::Command(Command::Chat));
    for c in "/msg carol see line 3".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    assert!(app.chat().input.text.is_empty(), "sent: the box is cleared");
    msg(
        &mut app,
        collab_protocol::ServerMsg::Error {
            code: collab_protocol::ErrorCode::NoSuchUser,
            message: "Nobody called \"carol\" is in the room.".into(),
            seq: None,
        },
    );
    assert_eq!(app.chat().input.text, "/msg carol see line 3");
    let screen = render(&mut app);
    assert!(screen.contains("back in the chat box"), "{screen}");

    // Delivered messages are not brought back by a later error.
    app.update(Action::Command(Command::DeleteToStart));
    for c in "/msg bob hi".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    msg(&mut app, direct(&alice(), "bob", "hi"));
    msg(
        &mut app,
        collab_protocol::ServerMsg::Error {
            code: collab_protocol::ErrorCode::NoSuchUser,
            message: "Nobody called \"dave\" is in the room.".into(),
            seq: None,
        },
    );
    assert!(app.chat().input.text.is_empty());
}

#[test]
fn status_bar_at_40_columns_drops_parts_and_cuts_no_word() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "paste.txt", 40, 6);
    let screen = render(&mut app);
    let bar = screen.lines().last().unwrap();
    // The connection, the file and the caret stay; the help hint and my
    // name go first.
    assert!(bar.contains(" connected "), "{bar}");
    assert!(bar.contains(" paste.txt "), "{bar}");
    assert!(bar.contains(" 1:1 "), "{bar}");
    assert!(!bar.contains("F1"), "{bar}");
}

#[test]
fn without_colour_each_caret_mark_is_the_members_initial() {
    let room = Room::new("one\ntwo\nthree\n");
    let mut app = joined(&room, "notes.txt", 60, 8);
    let carol = member(3, "carol", "#98c379");
    msg(
        &mut app,
        collab_protocol::ServerMsg::Joined {
            member: carol.clone(),
        },
    );
    msg(&mut app, room.presence(2, 5, None));
    msg(&mut app, room.presence(3, 9, None));
    let screen = render(&mut app);
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines[1].starts_with("\"  2B"), "{screen}");
    assert!(lines[2].starts_with("\"  3C"), "{screen}");
}

#[test]
fn new_and_read_only_files_are_marked_and_copy_says_how_much() {
    use collab_tui::app::{App, OnDisk};
    use std::time::Instant;
    let open = |on_disk| {
        let room = Room::new("");
        let mut cfg = config("todo.txt", None);
        cfg.file_on_disk = on_disk;
        let mut app = App::new(cfg, Instant::now());
        app.update(Action::Resize {
            width: 80,
            height: 10,
        });
        app.update(Action::Transport(TransportEvent::Connected));
        msg(&mut app, room.welcome(alice(), vec![alice()]));
        app
    };
    let mut app = open(OnDisk::New);
    let s = render(&mut app);
    assert!(
        s.contains("todo.txt is a new file: Ctrl-S creates it."),
        "{s}"
    );
    assert!(s.contains(" todo.txt [new] "), "{s}");
    app.update(Action::Saved(Ok(collab_tui::save::Saved {
        written: "todo.txt".into(),
        stamp: None,
        in_place: false,
    })));
    assert!(!render(&mut app).contains("[new]"));

    let mut app = open(OnDisk::ReadOnly);
    let s = render(&mut app);
    assert!(s.contains("todo.txt is read-only on disk"), "{s}");
    assert!(s.contains(" todo.txt [read-only] "), "{s}");

    // Copy says what it took.
    for c in "a\nb\nc".chars() {
        app.update(Action::Paste(c.to_string()));
    }
    app.update(Action::Command(Command::SelectAll));
    app.update(Action::Command(Command::Copy));
    assert!(render(&mut app).contains("Copied 3 lines."));
}

#[test]
fn help_pages_down_and_shows_the_mouse() {
    let room = Room::new(RUST);
    let mut app = joined(&room, "main.rs", 80, 24);
    app.update(Action::Command(Command::Help));
    // PgDn moves a page: the overlay's 20 rows less one kept for context.
    app.update(Action::Command(Command::HelpPageDown));
    assert_eq!(app.help(), Some(19));
    let mut seen = String::new();
    for _ in 0..10 {
        seen.push_str(&render(&mut app));
        app.update(Action::Command(Command::HelpPageDown));
    }
    assert!(seen.contains("Shift+drag") && seen.contains("select as the terminal does"));
    assert!(seen.contains("Wheel"));
    // At the end it stops, and PgUp comes back by pages.
    let end = app.help().unwrap();
    app.update(Action::Command(Command::HelpPageDown));
    assert_eq!(app.help(), Some(end));
    app.update(Action::Command(Command::HelpPageUp));
    assert_eq!(app.help(), Some(end - 19));
}
