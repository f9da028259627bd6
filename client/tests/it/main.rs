//! The client library's integration tests: replicas on their own, and live
//! clients through a real server on 127.0.0.1:0 (sync, offline merge,
//! random schedules that must converge, real editing traces).
//!
//! One test binary rather than one per file: each binary links loro and
//! tokio again (about 25 MB and a link step apiece), which cost CI minutes
//! and disk. Run one module with `cargo test -p collab-client --test it sync::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod convergence;
mod paste;
mod refusals;
mod replica;
mod session;
mod sync;
mod text_first;
mod traces;
mod workspace;
