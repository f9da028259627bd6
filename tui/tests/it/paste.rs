//! Pasting into the editor: a long paste goes into the replica as runs of
//! operations (collab-doc's `runs`, so that merging it costs every member
//! linear time), yet the screen's rope, the replica and a member merging
//! the update all hold the text pasted, and one undo takes it all back.
#![allow(clippy::unwrap_used)]

use crate::support;

use collab_protocol::{ClientMsg, ServerMsg};
use collab_tui::action::Action;
use collab_tui::app::{App, Order};
use collab_tui::keymap::Command;
use support::*;

/// Sends what the app has to send to `room`'s document, acking each.
fn deliver(app: &mut App, room: &mut Room) {
    app.update(Action::Sync);
    for e in app.take_orders() {
        if let Order::Send(ClientMsg::Update { seq, data }) = e {
            room.doc.import(&data.0).unwrap();
            msg(app, ServerMsg::Ack { seq });
        }
    }
}

#[test]
fn a_long_paste_is_the_same_text_everywhere_and_one_undo_step() {
    let before = "fn main() {\n}\n";
    let mut room = Room::new(before);
    let mut app = joined(&room, "main.rs", 80, 24);
    let _ = app.take_orders();
    app.update(Action::Command(Command::DocEnd));
    let paste: String = "    let café = compute(42); // 😀\n"
        .chars()
        .cycle()
        .take(20 * collab_doc::INSERT_RUN_CHARS + 3)
        .collect();
    app.update(Action::Paste(paste.clone()));
    let after = format!("{before}{paste}");
    assert_eq!(app.editor.rope().to_string(), after);
    assert_eq!(app.session.text(), after);
    deliver(&mut app, &mut room);
    assert_eq!(room.doc.text(), after);

    app.update(Action::Command(Command::Undo));
    assert_eq!(app.editor.rope().to_string(), before, "one undo step");
    assert_eq!(app.session.text(), before);
    deliver(&mut app, &mut room);
    assert_eq!(room.doc.text(), before);
    app.update(Action::Command(Command::Redo));
    assert_eq!(app.editor.rope().to_string(), after);
}
