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
        app.update(Action::Tick(later));
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
