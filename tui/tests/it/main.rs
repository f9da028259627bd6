//! The editor's in-process tests: screens drawn on ratatui's `TestBackend`
//! (insta snapshots) and an `App` kept in sync with a real server; the
//! editor's figures are collab-bench's `editor` bench. `e2e_tmux.rs` stays a
//! binary of its own: it drives real collab-tui processes and should not
//! share the cores with these tests' threads.
//!
//! One test binary rather than one per file: each binary links loro,
//! ratatui and tokio again (about 25 MB and a link step apiece), which cost
//! CI minutes and disk. Run one module with `cargo test -p collab-tui --test it screen::`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod chat;
mod editing;
mod effects;
mod follow;
mod paste;
mod resize;
mod saving;
mod scheme;
mod screen;
mod sync;
mod text_first;
mod workspace;
mod workspace_disk;
mod workspace_screen;
