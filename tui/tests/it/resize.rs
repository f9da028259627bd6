//! Shrinking and growing the terminal never panics and never draws outside
//! the frame: random sequences of sizes (seeded, so a failure replays),
//! with the app told of each size late or not at all, as when a window
//! corner is dragged faster than the event loop reads resize events.
#![allow(clippy::unwrap_used)]

use crate::support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use collab_tui::action::Action;
use collab_tui::keymap::Command;
use collab_tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use support::*;

/// xorshift64*: a small seeded generator, enough to pick sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A screen with everything open: long text, a remote caret, the members
/// panel, the chat, a notice, and (every other run) the help or a prompt.
fn busy_app(seed: u64) -> collab_tui::app::App {
    let text: String = (1..=300)
        .map(|i| format!("line {i}: {}\n", "wide 世界 text ".repeat(i % 12)))
        .collect();
    let room = Room::new(&text);
    let mut app = joined(&room, "big.rs", 200, 60);
    msg(&mut app, room.presence(2, 5000, Some(4990)));
    msg(
        &mut app,
        chat(&bob(), "a chat line long enough to wrap on a narrow screen"),
    );
    app.update(Action::Command(Command::Chat));
    app.update(Action::Command(Command::DocEnd));
    match seed % 3 {
        0 => app.update(Action::Command(Command::Help)),
        1 => app.update(Action::Command(Command::Find)),
        _ => {}
    }
    app
}

/// One random sequence of sizes; `Err` names the step that panicked.
fn run(seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut app = busy_app(seed);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut sizes = Vec::new();
    for step in 0..24 {
        let (w, h) = match rng.below(4) {
            // Anything, down to nothing.
            0 => (rng.below(220) as u16, rng.below(70) as u16),
            // Small.
            1 => (rng.below(30) as u16, rng.below(10) as u16),
            // Dragging: a little smaller or larger than before.
            _ => {
                let s = term.backend().buffer().area;
                let dw = rng.below(21) as i32 - 14;
                let dh = rng.below(9) as i32 - 6;
                (
                    (i32::from(s.width) + dw).clamp(0, 240) as u16,
                    (i32::from(s.height) + dh).clamp(0, 80) as u16,
                )
            }
        };
        sizes.push((w, h));
        term.backend_mut().resize(w, h);
        // The app hears of the new size now, later, or not before drawing.
        if rng.below(3) == 0 {
            app.update(Action::Resize {
                width: w,
                height: h,
            });
        }
        let drawn = catch_unwind(AssertUnwindSafe(|| {
            app.update(Action::Frame);
            term.draw(|f| ui::draw(&app, f)).unwrap();
            app.update(Action::Sync);
        }));
        if drawn.is_err() {
            return Err(format!(
                "seed {seed}: drawing panicked at step {step}; sizes {sizes:?}, the app at {:?}",
                app.size()
            ));
        }
    }
    Ok(())
}

#[test]
fn no_sequence_of_sizes_panics() {
    // Quiet the panics caught above; the failure message says what happened.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failures: Vec<String> = (1..=100).filter_map(|seed| run(seed).err()).collect();
    std::panic::set_hook(hook);
    assert!(
        failures.is_empty(),
        "{} of 100 sequences panicked; first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn the_shrink_of_the_report_draws_inside_the_frame() {
    // 200x60 to 80x24 in 13 steps, the app one size behind each time,
    // the text as tall as the screen (the chat closed).
    let mut app = busy_app(2);
    app.update(Action::Command(Command::Chat));
    assert!(app.areas().chat.is_none());
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    for i in 0..=13u16 {
        let (w, h) = (200 - i * 120 / 13, 60 - i * 36 / 13);
        term.backend_mut().resize(w, h);
        app.update(Action::Frame);
        term.draw(|f| ui::draw(&app, f)).unwrap();
        app.update(Action::Resize {
            width: w,
            height: h,
        });
    }
    app.update(Action::Frame);
    term.draw(|f| ui::draw(&app, f)).unwrap();
    let screen = format!("{}", term.backend());
    assert_eq!(screen.lines().count(), 24, "{screen}");
    assert!(screen.lines().last().unwrap().contains("alice"), "{screen}");
}
