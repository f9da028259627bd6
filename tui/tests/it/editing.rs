//! Editing as a person does it, through `App::update`: undo steps, find,
//! line endings.

use crate::support;

use std::time::Duration;

use collab_tui::action::Action;
use collab_tui::keymap::Command;
use support::*;

fn type_slowly(app: &mut collab_tui::app::App, text: &str, gap: Duration) {
    for c in text.chars() {
        let later = app.now + gap;
        app.update(Action::Clock(later));
        app.update(Action::Type(c));
    }
}

fn text(app: &collab_tui::app::App) -> String {
    app.editor.rope().to_string()
}

#[test]
fn undo_takes_back_a_word_at_a_time() {
    let room = Room::new("");
    let mut app = joined(&room, "", 80, 24);
    // Typed slowly, 0.7 s a key: undo takes back " def", then "abc".
    type_slowly(&mut app, "abc def", Duration::from_millis(700));
    assert_eq!(text(&app), "abc def");
    app.update(Action::Command(Command::Undo));
    assert_eq!(text(&app), "abc");
    app.update(Action::Command(Command::Undo));
    assert_eq!(text(&app), "");
    // A pause of more than 2 s inside a word ends a step too.
    type_slowly(&mut app, "wor", Duration::from_millis(100));
    type_slowly(&mut app, "d", Duration::from_secs(3));
    app.update(Action::Command(Command::Undo));
    assert_eq!(text(&app), "wor");
    // Typing, then deleting: two steps.
    type_slowly(&mut app, "ld", Duration::from_millis(100));
    app.update(Action::Command(Command::Backspace));
    app.update(Action::Command(Command::Backspace));
    assert_eq!(text(&app), "wor");
    app.update(Action::Command(Command::Undo));
    assert_eq!(text(&app), "world");
}

#[test]
fn find_opens_on_the_last_query_selected_and_ignores_case() {
    let room = Room::new("Alpha beta\nALPHA gamma\nalpha\n");
    let mut app = joined(&room, "", 80, 24);
    app.update(Action::Command(Command::Find));
    for c in "alpha".chars() {
        app.update(Action::Type(c));
    }
    // Smart case: no capital in the query, so `Alpha` matches.
    assert_eq!(app.editor.selected_text(), "Alpha");
    app.update(Action::Command(Command::FindNext));
    assert_eq!(app.editor.selected_text(), "ALPHA");
    app.update(Action::Command(Command::Cancel));
    // Reopened: the query is there and selected; Enter finds it again...
    app.update(Action::Command(Command::Find));
    let p = app.prompt().unwrap();
    assert_eq!((p.input.text.as_str(), p.input.selected), ("alpha", true));
    let screen = render(&mut app);
    assert!(screen.contains("Find: alpha"), "{screen}");
    app.update(Action::Command(Command::Submit));
    assert_eq!(app.editor.rope().char_to_line(app.editor.head()), 2);
    // ...and typing replaces it. A capital makes the case count.
    app.update(Action::Command(Command::Cancel));
    app.update(Action::Command(Command::Find));
    for c in "Al".chars() {
        app.update(Action::Type(c));
    }
    assert_eq!(app.prompt().unwrap().input.text, "Al");
    assert_eq!(app.editor.selected_text(), "Al");
    assert_eq!(app.editor.selection().range().start, 0);
}
