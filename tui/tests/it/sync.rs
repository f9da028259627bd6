//! The app's side of syncing: stalled acks are resent, a read-only member
//! edits nothing, and the highlight cache follows edits exactly.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::path::Path;
use std::time::Duration;

use collab_client::{RESEND_AFTER, TransportEvent};
use collab_protocol::{ClientMsg, ServerMsg};
use collab_tui::action::Action;
use collab_tui::app::{App, Order, READ_ONLY_NOTICE};
use collab_tui::highlight::Highlight;
use collab_tui::keymap::Command;
use support::*;

/// The seqs of the updates among the effects.
fn updates(app: &mut App) -> Vec<u64> {
    app.take_orders()
        .into_iter()
        .filter_map(|e| match e {
            Order::Send(ClientMsg::Update { seq, .. }) => Some(seq),
            _ => None,
        })
        .collect()
}

fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        app.update(Action::Type(c));
    }
}

#[test]
fn updates_without_an_ack_are_resent_after_a_while() {
    let room = Room::new("hello\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    let _ = app.take_orders();
    let t0 = app.now;
    type_str(&mut app, "abc");
    app.update(Action::Sync);
    let sent = updates(&mut app);
    assert_eq!(sent.len(), 1, "one update for the batch");
    // The server dropped it (rate limit) and said nothing.
    app.update(Action::Clock(t0 + RESEND_AFTER / 2));
    assert!(updates(&mut app).is_empty(), "not yet");
    app.update(Action::Clock(
        t0 + RESEND_AFTER + Duration::from_millis(100),
    ));
    let resent = updates(&mut app);
    assert_eq!(resent.len(), 1, "resent once the acks stalled");
    assert!(resent[0] > sent[0]);
    // Acked: nothing more goes out, however long it stays quiet.
    msg(&mut app, ServerMsg::Ack { seq: resent[0] });
    assert!(app.session.is_synced());
    app.update(Action::Clock(t0 + RESEND_AFTER * 5));
    assert!(updates(&mut app).is_empty());
    // The clock starts again with the next update.
    type_str(&mut app, "d");
    app.update(Action::Sync);
    assert_eq!(updates(&mut app).len(), 1);
    app.update(Action::Clock(t0 + RESEND_AFTER * 5 + RESEND_AFTER / 2));
    assert!(
        updates(&mut app).is_empty(),
        "from the send, not from the last ack"
    );
    app.update(Action::Clock(
        t0 + RESEND_AFTER * 6 + Duration::from_millis(100),
    ));
    assert_eq!(updates(&mut app).len(), 1);
}

#[test]
fn a_read_only_member_types_nothing_into_the_text() {
    let room = Room::new("shared text\n");
    let mut app = App::new(config("", None), std::time::Instant::now());
    app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    let mut me = alice();
    me.read_only = true;
    msg(&mut app, room.welcome(me.clone(), vec![me, bob()]));
    assert!(app.read_only());
    let screen = render(&mut app);
    assert!(screen.contains("read-only"), "{screen}");
    type_str(&mut app, "xyz");
    app.update(Action::Command(Command::Newline));
    app.update(Action::Paste("pasted".into()));
    app.update(Action::Command(Command::Undo));
    app.update(Action::Sync);
    assert_eq!(app.editor.rope().to_string(), "shared text\n");
    assert_eq!(app.session.text(), "shared text\n");
    assert!(updates(&mut app).is_empty());
    assert_eq!(
        app.notices
            .iter()
            .filter(|n| n.text == READ_ONLY_NOTICE)
            .count(),
        1,
        "one notice, renewed, not a stack of them"
    );
    let screen = render(&mut app);
    assert!(screen.contains(READ_ONLY_NOTICE), "{screen}");
    assert!(!app.modified());
}

#[test]
fn highlighting_after_edits_matches_a_fresh_parse() {
    let text = "fn main() {\n    let s = \"a\"; // c\n    x(1);\n}\n".repeat(200);
    let room = Room::new(&text);
    let mut app = joined(&room, "main.rs", 80, 30);
    app.update(Action::Command(Command::GotoLine));
    type_str(&mut app, "100");
    app.update(Action::Command(Command::Submit));
    render(&mut app);
    // Open a block comment, type, break lines, close it, and a remote
    // edit above the view.
    type_str(&mut app, "/* open");
    render(&mut app);
    app.update(Action::Command(Command::Newline));
    type_str(&mut app, "still comment\n");
    render(&mut app);
    for _ in 0..5 {
        app.update(Action::Command(Command::MoveDown));
    }
    type_str(&mut app, "*/ closed \"str");
    render(&mut app);
    let mut room = room;
    let edit = room.edit(2, 10, 0, "/* far above */\n\n");
    msg(&mut app, edit);
    render(&mut app);
    app.update(Action::Command(Command::Backspace));
    render(&mut app);

    let rope = app.editor.rope().clone();
    let (top, h) = (app.view.top, usize::from(app.areas().text.height));
    let mut fresh = Highlight::for_file(Some(Path::new("main.rs")), "");
    fresh.prepare(&rope, top, h);
    for line in top..top + h {
        assert_eq!(
            app.highlight.line(line),
            fresh.line(line),
            "line {line}: {:?}",
            rope.line(line)
        );
    }
}

#[test]
fn edits_typed_just_before_quitting_go_out_before_the_leave() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "", 80, 24);
    let _ = app.take_orders();
    type_str(&mut app, "last words");
    // Quit in the same frame (no Sync in between), twice: unsaved.
    app.update(Action::Command(Command::Quit));
    app.update(Action::Command(Command::Quit));
    let effects = app.take_orders();
    let update = effects
        .iter()
        .position(|e| matches!(e, Order::Send(ClientMsg::Update { .. })));
    let leave = effects
        .iter()
        .position(|e| matches!(e, Order::Send(ClientMsg::Leave)));
    assert!(update.is_some() && leave.is_some(), "{effects:?}");
    assert!(update < leave);
    assert_eq!(effects.last(), Some(&Order::Quit));
}

#[test]
fn members_back_after_a_server_restart_are_not_announced() {
    let room = Room::new("text\n");
    let mut app = joined(&room, "notes.txt", 80, 24);
    // The server restarts: my connection drops, then I join the new,
    // empty server alone, and bob joins after me.
    app.update(Action::Transport(TransportEvent::Disconnected {
        reason: "gone".into(),
        retry_in: Some(Duration::from_secs(1)),
    }));
    app.update(Action::Transport(TransportEvent::Connected));
    msg(&mut app, room.welcome(alice(), vec![alice()]));
    app.update(Action::Clock(app.now + Duration::from_secs(10)));
    msg(&mut app, ServerMsg::Joined { member: bob() });
    let carol = member(3, "carol", "#98c379");
    msg(&mut app, ServerMsg::Joined { member: carol });
    let screen = render(&mut app);
    assert!(!screen.contains("bob joined"), "{screen}");
    assert!(screen.contains("carol joined"), "{screen}");
    assert!(screen.contains("● bob"), "{screen}");
}

#[test]
fn a_refused_token_is_said_to_be_refused() {
    use collab_protocol::{ErrorCode, ProtocolError};
    let refused = |token: Option<&str>| {
        let mut cfg = config("", None);
        cfg.token = token.map(str::to_owned);
        let mut app = App::new(cfg, std::time::Instant::now());
        app.update(Action::Transport(TransportEvent::Connected));
        app.update(Action::Transport(TransportEvent::Closed {
            error: Some(ProtocolError::from_code(ErrorCode::Unauthorized)),
        }));
        app.fatal().unwrap().to_owned()
    };
    assert!(
        refused(Some("wrong")).starts_with("The server refused the access token"),
        "{}",
        refused(Some("wrong"))
    );
    assert!(refused(None).contains("pass --token"));
}

#[test]
fn terminating_quits_at_once_with_one_leave() {
    for modified in [false, true] {
        let room = Room::new("text\n");
        let mut app = joined(&room, "", 80, 24);
        if modified {
            type_str(&mut app, "unsaved");
        }
        let _ = app.take_orders();
        app.update(Action::Terminate);
        let effects = app.take_orders();
        let leaves = effects
            .iter()
            .filter(|e| matches!(e, Order::Send(ClientMsg::Leave)))
            .count();
        assert_eq!(leaves, 1, "modified={modified}: {effects:?}");
        assert_eq!(effects.last(), Some(&Order::Quit), "modified={modified}");
        assert_eq!(effects.iter().filter(|e| **e == Order::Quit).count(), 1);
    }
}
