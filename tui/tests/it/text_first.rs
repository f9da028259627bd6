//! A newcomer's editor shows the room's text before the room's history is
//! loaded (`join.text_first`, issue 16): on the frame after the welcome,
//! read-only until the event loop's next turn loads the document, after
//! which the buffer is the document's text, edits flow, and nothing is
//! marked modified. Against a real server over real WebSockets, for both
//! of the editor's sessions (FILE over protocol 1, a bare join over 2).

use std::time::Instant;

use collab_client::Link;
use collab_tui::action::Action;
use collab_tui::app::App;
use collab_tui::keymap::Command;
use collab_tui::net::{self, Net};
use collab_tui::outside::Outside;
use collab_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::support::config;
use crate::workspace::{Editor, WITHIN, server};

/// A room long enough that its history is worth loading second.
fn long_text() -> String {
    (0..3000)
        .map(|i| format!("line {i}: fn f{i}() -> usize {{ {i} }} // héllo 🦀\n"))
        .collect()
}

/// Carol starts the room from her FILE holding `text` (protocol 1).
async fn carol_shares(url: &str, room: &str, text: &str) -> Editor {
    let mut app = App::new(
        collab_tui::app::Startup {
            server: url.into(),
            room: room.into(),
            user: "carol".into(),
            ..config("notes.txt", Some(text))
        },
        Instant::now(),
    );
    app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    let mut carol = Editor {
        out: Outside::new(Net::open(url, None).unwrap()),
        app,
    };
    net::join(&mut carol.app, &mut carol.out, WITHIN)
        .await
        .unwrap();
    carol.until("the seed", |a| a.editor.rope() == text).await;
    carol
}

/// A newcomer over protocol 1 without FILE, through the join the program
/// does before it takes over the terminal.
async fn newcomer(url: &str, room: &str, user: &str) -> Editor {
    let mut app = App::new(
        collab_tui::app::Startup {
            server: url.into(),
            room: room.into(),
            user: user.into(),
            ..config("", None)
        },
        Instant::now(),
    );
    app.update(Action::Resize {
        width: 80,
        height: 24,
    });
    let mut out = Outside::new(Net::open(url, None).unwrap());
    net::join(&mut app, &mut out, WITHIN).await.unwrap();
    Editor { app, out }
}

/// The frame the event loop draws, without the `Sync` after it.
fn frame(app: &mut App) -> String {
    app.update(Action::Frame);
    let size = app.size();
    let mut term = Terminal::new(TestBackend::new(size.width, size.height)).unwrap();
    term.draw(|f| ui::draw(app, f)).unwrap();
    format!("{}", term.backend())
}

#[tokio::test]
async fn a_newcomer_sees_the_text_before_the_history_loads_then_edits_it() {
    let url = server().await;
    let text = long_text();
    let mut carol = carol_shares(&url, "long", &text).await;

    let mut bob = newcomer(&url, "long", "bob").await;
    assert!(
        bob.app.session.is_showing_text_first(),
        "the join ends on the text, the history still to load"
    );
    assert_eq!(bob.app.editor.rope(), text.as_str());
    let screen = frame(&mut bob.app);
    assert!(screen.contains("line 0: fn f0()"), "{screen}");
    assert!(!screen.contains("[+]"), "nothing typed: {screen}");

    // The loop's next turn loads the document.
    bob.turn();
    assert!(!bob.app.session.is_showing_text_first());
    assert_eq!(*bob.app.session.link(), Link::Live);
    assert_eq!(bob.app.editor.rope(), text.as_str());
    assert_eq!(bob.app.session.text(), text);
    assert!(!bob.app.modified());
    bob.cmd(Command::DocStart);
    bob.type_str("// bob\n");
    let both = format!("// bob\n{text}");
    carol
        .until("bob's line", |a| a.editor.rope() == both.as_str())
        .await;
}

/// The text is kept until the room compacts: a newcomer after an edit is
/// shown the older text, then the document's, through the change between.
#[tokio::test]
async fn an_older_text_shown_first_ends_as_the_rooms() {
    let url = server().await;
    let text = long_text();
    let mut carol = carol_shares(&url, "long", &text).await;
    // Dan's join makes the server keep the text.
    let mut dan = newcomer(&url, "long", "dan").await;
    dan.turn();
    carol.cmd(Command::DocEnd);
    carol.type_str("carol was here\n");
    let now = format!("{text}carol was here\n");
    dan.until("carol's line", |a| a.editor.rope() == now.as_str())
        .await;

    let mut bob = newcomer(&url, "long", "bob").await;
    assert!(bob.app.session.is_showing_text_first());
    assert_eq!(bob.app.editor.rope(), text.as_str(), "the kept text");
    bob.turn();
    assert_eq!(bob.app.editor.rope(), now.as_str(), "the room's");
    assert!(!bob.app.modified());
}

/// A bare join (protocol 2) into a one-file room shows its text first too.
#[tokio::test]
async fn a_bare_join_into_a_one_file_room_sees_its_text_first() {
    let url = server().await;
    let text = long_text();
    let _carol = carol_shares(&url, "long", &text).await;
    let mut erin = Editor::join(&url, "long", "erin", None).await;
    assert!(erin.app.session.is_showing_text_first());
    assert_eq!(erin.app.editor.rope(), text.as_str());
    assert!(
        erin.notices().contains("holds one file's text"),
        "{}",
        erin.notices()
    );
    erin.turn();
    assert!(!erin.app.session.is_showing_text_first());
    assert_eq!(*erin.app.session.link(), Link::Live);
    assert_eq!(erin.app.editor.rope(), text.as_str());
    assert!(!erin.app.modified());
}
