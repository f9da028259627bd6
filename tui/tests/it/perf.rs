//! Figures for the report (ignored by default; run with
//! `cargo test --release -p collab-tui --test it perf:: -- --ignored --nocapture --test-threads 1`):
//! opening a 10 MB file through the replica, editing it, and the keystroke
//! time of a 100k-line file, plain and with highlighting.
//!
//! A keystroke is timed as the user sees it: the key's action, the frame's
//! preparation and the draw. The update to the server is made after the
//! frame is on screen (`Action::Sync`); its cost is printed apart.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::time::{Duration, Instant};

use collab_tui::action::Action;
use collab_tui::app::App;
use collab_tui::keymap::Command;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;

const LINE: &str = "    let total = items.iter().map(|x| x.price * x.count).sum::<u64>(); // sum\n";

struct Times(Vec<Duration>);

impl std::fmt::Display for Times {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut v = self.0.clone();
        v.sort();
        let n = u32::try_from(v.len()).unwrap().max(1);
        let mean = v.iter().sum::<Duration>() / n;
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        write!(
            f,
            "mean {mean:?}, median {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    }
}

/// Types `keys` (a `\n` is Enter), timing each keystroke to the drawn
/// frame, and the sync after it.
fn type_keys(app: &mut App, term: &mut Terminal<TestBackend>, keys: &str) -> (Times, Times) {
    let (mut key, mut sync) = (Vec::new(), Vec::new());
    for c in keys.chars() {
        let t0 = Instant::now();
        if c == '\n' {
            app.update(Action::Command(Command::Newline));
        } else {
            app.update(Action::Type(c));
        }
        app.update(Action::Frame);
        term.draw(|f| collab_tui::ui::draw(app, f)).unwrap();
        key.push(t0.elapsed());
        let t1 = Instant::now();
        app.update(Action::Sync);
        let _ = app.take_orders();
        sync.push(t1.elapsed());
    }
    (Times(key), Times(sync))
}

#[test]
#[ignore = "measurement, run with --release"]
fn ten_megabyte_file_opens_and_edits_fast() {
    let text = LINE.repeat(10_000_000 / LINE.len());
    let room = Room::new(&text);
    let t0 = Instant::now();
    let mut app = joined(&room, "big.rs", 120, 40);
    let joined_in = t0.elapsed();
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    app.update(Action::Frame);
    term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
    let first_frame = t0.elapsed();
    assert_eq!(app.editor.rope().len_bytes(), text.len());

    let t1 = Instant::now();
    app.update(Action::Command(Command::DocEnd));
    app.update(Action::Frame);
    term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
    let jump = t1.elapsed();
    let (key, sync) = type_keys(&mut app, &mut term, "edit at the end\n// and more\n");
    let (mid_key, mid_sync) = {
        app.update(Action::Command(Command::GotoLine));
        for c in "60000".chars() {
            app.update(Action::Type(c));
        }
        app.update(Action::Command(Command::Submit));
        type_keys(&mut app, &mut term, "let x = 1;\nlet y = \"two\";\n")
    };
    println!(
        "10 MB ({} lines, 120x40, Rust): welcome imported in {joined_in:?}, first frame at {first_frame:?}; \
         jump to the end + frame in {jump:?}",
        app.editor.rope().len_lines()
    );
    println!("  keystroke at the end (to the drawn frame): {key}");
    println!("  sync after it (the update's export):       {sync}");
    println!("  keystroke in the middle:                   {mid_key}");
    println!("  sync after it:                             {mid_sync}");
}

#[test]
#[ignore = "measurement, run with --release"]
fn keystroke_time_of_a_100k_line_plain_file() {
    keystroke_time("big.txt");
}

#[test]
#[ignore = "measurement, run with --release"]
fn keystroke_time_of_a_100k_line_rust_file() {
    keystroke_time("big.rs");
}

fn keystroke_time(file: &str) {
    let text = LINE.repeat(100_000);
    let room = Room::new(&text);
    let mut app = joined(&room, file, 120, 40);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    // In the middle: each keystroke moves down a line and types, so the
    // view scrolls and a new line comes into view now and then.
    app.update(Action::Command(Command::GotoLine));
    for c in "50000".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    app.update(Action::Frame);
    term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
    let n = 200;
    let (mut key, mut sync) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t0 = Instant::now();
        app.update(Action::Command(Command::MoveDown));
        app.update(Action::Type('x'));
        app.update(Action::Frame);
        term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
        key.push(t0.elapsed());
        let t1 = Instant::now();
        app.update(Action::Sync);
        let _ = app.take_orders();
        sync.push(t1.elapsed());
    }
    // Plain typing on one line, then Enter (the lines below move).
    let (typing, typing_sync) = type_keys(&mut app, &mut term, "let s = \"abc\"; /* c */\n");
    // Bob types 1000 lines above the view: each of his keys is a frame.
    let mut room = room;
    let at = room
        .doc
        .text()
        .lines()
        .take(app.view.top - 1000)
        .map(|l| l.chars().count() + 1)
        .sum::<usize>()
        + 4;
    let mut remote = Vec::new();
    for (i, c) in "bob types".chars().enumerate() {
        let update = room.edit(2, at + i, 0, &c.to_string());
        let t0 = Instant::now();
        msg(&mut app, update);
        app.update(Action::Frame);
        term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
        remote.push(t0.elapsed());
    }
    println!("100k lines, 120x40, {file}:");
    println!(
        "  down + keystroke, to the drawn frame ({n}): {}",
        Times(key)
    );
    println!(
        "  sync after it:                              {}",
        Times(sync)
    );
    println!("  typing a line + Enter:                      {typing}");
    println!("  sync after it:                              {typing_sync}");
    println!(
        "  a peer's keystroke 1000 lines above:        {}",
        Times(remote)
    );
}
