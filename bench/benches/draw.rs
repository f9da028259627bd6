//! Drawing one frame of the editor (collab-tui's pure `ui::draw` on
//! ratatui's TestBackend, 120x40) with a 100,000-line Rust file open,
//! loaded as a client loads it: from the welcome's snapshot.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use collab_client::TransportEvent;
use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, DocKind, Limits, Member, ServerMsg, Welcome};
use collab_tui::action::Action;
use collab_tui::app::{App, Startup};
use collab_tui::keymap::Command;
use collab_tui::theme::ColorMode;
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const LINE: &str = "    let total = items.iter().map(|x| x.price * x.count).sum::<u64>(); // sum\n";

fn member(id: u64, name: &str) -> Member {
    Member {
        id,
        name: name.into(),
        color: "#61afef".into(),
        read_only: false,
    }
}

/// An app joined to a room holding `text`, its view in the middle.
fn app_with(text: &str, file: &str) -> App {
    let mut room = SharedDoc::new();
    room.splice(0, 0, text).unwrap();
    let config = Startup {
        room: "bench".into(),
        user: "alice".into(),
        server: "ws://127.0.0.1:7878".into(),
        token: None,
        file: Some(file.into()),
        file_text: None,
        file_stamp: None,
        local_server: None,
        file_on_disk: Default::default(),
        colors: ColorMode::Mono,
        utc_offset: 0,
    };
    let mut app = App::new(config, Instant::now());
    app.update(Action::Resize {
        width: 120,
        height: 40,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    let welcome = ServerMsg::Welcome(Box::new(Welcome {
        protocol: collab_protocol::PROTOCOL_VERSION,
        you: member(1, "alice"),
        members: vec![member(1, "alice"), member(2, "bob")],
        session: "s".into(),
        peer: next_test_peer(),
        resumed: false,
        doc_kind: DocKind::Snapshot,
        doc: Base64Bytes(room.snapshot().unwrap()),
        doc_parts: 0,
        doc_updates: 0,
        version: Base64Bytes(room.version()),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: 8 << 20,
            messages_per_second: 200,
            burst: 400,
        },
    }));
    app.update(Action::Transport(TransportEvent::Message(welcome)));
    app.update(Action::Command(Command::GotoLine));
    for c in "50000".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    app
}

fn draw(c: &mut Criterion) {
    let text = LINE.repeat(100_000);
    let mut g = c.benchmark_group("draw 100k-line file 120x40");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for file in ["big.rs", "big.txt"] {
        let mut app = app_with(&text, file);
        assert!(app.editor.rope().len_lines() > 100_000);
        let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
        g.bench_function(format!("{file}: one frame"), |b| {
            b.iter(|| {
                app.update(Action::Frame);
                term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
            })
        });
        g.bench_function(format!("{file}: keystroke + line down + frame"), |b| {
            b.iter(|| {
                app.update(Action::Type('x'));
                app.update(Action::Command(Command::MoveDown));
                app.update(Action::Frame);
                term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, draw);
criterion_main!(benches);

/// A distinct peer id for every welcome a test makes, as a server gives
/// each session its own.
fn next_test_peer() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
