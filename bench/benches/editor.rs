//! The editor's own costs (collab-tui's pure `App::update` and `ui::draw`
//! on ratatui's TestBackend, 120x40), with the file loaded as a client
//! loads it: from the welcome's snapshot.
//!
//! - a 100,000-line file, plain and highlighted Rust: one frame; a
//!   keystroke and a line down to the drawn frame; the update sent after
//!   the frame (`Action::Sync`, the document's export: after drawing, so a
//!   keystroke shows without waiting for it); a peer's keystroke 1000 lines
//!   above the view, to the drawn frame;
//! - a 10 MB Rust file: joining (the welcome's snapshot imported, the
//!   first frame drawn); a jump to the end; a keystroke at the end to the
//!   drawn frame, and the update after it.
//!
//! A keystroke is timed as the user sees it: the key's action, the frame's
//! preparation and the draw. These were `#[ignore]`d tests that printed
//! figures (`tui/tests/it/perf.rs`) until issue 19.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use collab_client::TransportEvent;
use collab_doc::SharedDoc;
use collab_protocol::{Base64Bytes, DocKind, Limits, Member, ServerMsg, Welcome};
use collab_tui::action::Action;
use collab_tui::app::{App, Startup};
use collab_tui::keymap::Command;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
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

fn welcome(room: &SharedDoc) -> ServerMsg {
    ServerMsg::Welcome(Box::new(Welcome {
        protocol: collab_protocol::PROTOCOL_VERSION,
        you: member(1, "alice"),
        members: vec![member(1, "alice"), member(2, "bob")],
        session: "s".into(),
        peer: next_test_peer(),
        resumed: false,
        doc_kind: DocKind::Snapshot,
        doc: Base64Bytes(room.snapshot().unwrap()),
        doc_encoding: None,
        doc_parts: 0,
        doc_updates: 0,
        text: None,
        version: Base64Bytes(room.version()),
        limits: Limits {
            max_frame_bytes: 1 << 20,
            max_doc_bytes: 64 << 20,
            messages_per_second: 200,
            burst: 400,
        },
    }))
}

/// An app joined by `welcome`, as alice editing `file`, bob in the room.
fn join(welcome: ServerMsg, file: &str) -> App {
    let config = Startup {
        file: Some(file.into()),
        ..Startup::joining("ws://127.0.0.1:7878", "bench", "alice")
    };
    let mut app = App::new(config, Instant::now());
    app.update(Action::Resize {
        width: 120,
        height: 40,
    });
    app.update(Action::Transport(TransportEvent::Connected));
    app.update(Action::Transport(TransportEvent::Message(welcome)));
    app
}

fn goto_line(app: &mut App, line: usize) {
    app.update(Action::Command(Command::GotoLine));
    for c in line.to_string().chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
}

fn draw_frame(app: &mut App, term: &mut Terminal<TestBackend>) {
    app.update(Action::Frame);
    term.draw(|f| collab_tui::ui::draw(app, f)).unwrap();
}

/// Times only the update sent after each keystroke (`Action::Sync`).
fn sync_after_keystrokes(app: &mut App, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        app.update(Action::Type('x'));
        let t0 = Instant::now();
        app.update(Action::Sync);
        total += t0.elapsed();
        black_box(app.take_orders());
    }
    total
}

fn hundred_thousand_lines(c: &mut Criterion) {
    let mut room = SharedDoc::new();
    room.splice(0, 0, &LINE.repeat(100_000)).unwrap();
    let mut g = c.benchmark_group("draw 100k-line file 120x40");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for file in ["big.rs", "big.txt"] {
        let mut app = join(welcome(&room), file);
        goto_line(&mut app, 50_000);
        assert!(app.editor.rope().len_lines() > 100_000);
        let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
        g.bench_function(format!("{file}: one frame"), |b| {
            b.iter(|| draw_frame(&mut app, &mut term))
        });
        g.bench_function(format!("{file}: keystroke + line down + frame"), |b| {
            b.iter(|| {
                app.update(Action::Type('x'));
                app.update(Action::Command(Command::MoveDown));
                draw_frame(&mut app, &mut term);
            })
        });
        g.bench_function(format!("{file}: sync after a keystroke"), |b| {
            b.iter_custom(|iters| sync_after_keystrokes(&mut app, iters))
        });
        let _ = app.take_orders();
        // Bob types 1000 lines above the view: each of his keys is a frame.
        // His document is the room's, which alice's typing never reached:
        // his keys are concurrent with hers, as on a live server.
        let mut bob = SharedDoc::from_snapshot(&room.snapshot().unwrap()).unwrap();
        let at = LINE.chars().count() * (app.view.top - 1000) + 4;
        g.bench_function(
            format!("{file}: a peer's keystroke 1000 lines above + frame"),
            |b| {
                b.iter_batched(
                    || {
                        bob.mark_all_sent();
                        bob.splice(at, 0, "b").unwrap();
                        ServerMsg::Update {
                            from: 2,
                            data: Base64Bytes(bob.take_local_update().unwrap()),
                        }
                    },
                    |update| {
                        app.update(Action::Transport(TransportEvent::Message(update)));
                        draw_frame(&mut app, &mut term);
                    },
                    BatchSize::SmallInput,
                )
            },
        );
    }
    g.finish();
}

fn ten_megabytes(c: &mut Criterion) {
    let mut room = SharedDoc::new();
    room.splice(0, 0, &LINE.repeat(10_000_000 / LINE.len()))
        .unwrap();
    let welcome = welcome(&room);
    let mut g = c.benchmark_group("10 MB Rust file 120x40");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("join: welcome imported + first frame", |b| {
        b.iter_batched(
            || welcome.clone(),
            |welcome| {
                let mut app = join(welcome, "big.rs");
                let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
                draw_frame(&mut app, &mut term);
                app
            },
            BatchSize::PerIteration,
        )
    });
    let mut app = join(welcome.clone(), "big.rs");
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    draw_frame(&mut app, &mut term);
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    g.bench_function("jump to the end (from the start) + frame", |b| {
        b.iter(|| {
            app.update(Action::Command(Command::DocStart));
            app.update(Action::Command(Command::DocEnd));
            draw_frame(&mut app, &mut term);
        })
    });
    g.bench_function("keystroke at the end + frame", |b| {
        b.iter(|| {
            app.update(Action::Type('x'));
            draw_frame(&mut app, &mut term);
        })
    });
    g.bench_function("sync after a keystroke at the end", |b| {
        b.iter_custom(|iters| sync_after_keystrokes(&mut app, iters))
    });
    g.finish();
}

criterion_group!(benches, hundred_thousand_lines, ten_megabytes);
criterion_main!(benches);

/// A distinct peer id for every welcome, as a server gives each session
/// its own.
fn next_test_peer() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
