//! The server's integration tests, one module per concern, each starting
//! real servers on 127.0.0.1:0 and talking to them over real WebSockets.
//!
//! They are one test binary rather than one per file: each binary links
//! loro, tokio and rustls again (about 25 MB and a link step apiece), which
//! cost CI minutes and disk. `storage.rs` stays apart because it installs a
//! process-wide tracing subscriber whose captured log it asserts on.
//! Run one module with `cargo test -p collab-server --test it rooms::`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod access;
mod bad_input;
#[cfg(all(feature = "cluster", target_os = "linux"))]
mod balancer;
mod budget;
mod closing;
#[cfg(feature = "cluster")]
mod cluster;
mod conformance;
mod contract;
mod document;
mod documented;
mod fuzz_updates;
mod half_open;
mod history;
mod lifecycle;
mod logs;
mod metrics;
mod rooms;
mod store_damage;
mod tls;
mod workspace;
