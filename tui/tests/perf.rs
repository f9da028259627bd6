//! Figures for the report (ignored by default; run with
//! `cargo test --release -p collab-tui --test perf -- --ignored --nocapture`):
//! opening a 10 MB file through the replica, editing it, and the frame time
//! of a 100k-line file with highlighting.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Instant;

use collab_tui::action::Action;
use collab_tui::keymap::Command;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;

const LINE: &str = "    let total = items.iter().map(|x| x.price * x.count).sum::<u64>(); // sum\n";

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
    for c in "edit at the end".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Frame);
    term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
    let edit = t1.elapsed();
    println!(
        "10 MB ({} lines): welcome imported in {joined_in:?}, first frame at {first_frame:?}; \
         jump to end + 15 keystrokes + frame in {edit:?}",
        app.editor.rope().len_lines()
    );
}

#[test]
#[ignore = "measurement, run with --release"]
fn frame_time_of_a_100k_line_file() {
    for file in ["big.txt", "big.rs"] {
        frame_time(file);
    }
}

fn frame_time(file: &str) {
    let text = LINE.repeat(100_000);
    let room = Room::new(&text);
    let mut app = joined(&room, file, 120, 40);
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    // Scroll through the middle: each frame highlights the new window.
    app.update(Action::Command(Command::GotoLine));
    for c in "50000".chars() {
        app.update(Action::Type(c));
    }
    app.update(Action::Command(Command::Submit));
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        app.update(Action::Command(Command::MoveDown));
        app.update(Action::Type('x'));
        app.update(Action::Frame);
        term.draw(|f| collab_tui::ui::draw(&app, f)).unwrap();
    }
    let per = t0.elapsed() / n;
    println!("100k lines, 120x40, {file}: {per:?} per keystroke + frame (mean of {n})");
}
