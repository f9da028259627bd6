//! The commands' drivers, one file each (`cmd/load.rs`, `cmd/idle.rs`,
//! `cmd/ramp.rs`, `cmd/relay.rs`, `cmd/interfere.rs`), and what they share here: starting
//! collab-server (or attaching to one) and the baseline relay, and the
//! endpoints to load them at. What they print is in `report.rs`.

pub(crate) mod idle;
pub(crate) mod interfere;
pub(crate) mod load;
pub(crate) mod ramp;
pub(crate) mod relay;

use std::time::Duration;

use collab_bench::load::Endpoint;
use collab_bench::relay::RELAY_PATH;
use collab_bench::target::{self, ChildServer, InProcess, Server};

use crate::Common;

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    if !(0.0..=600.0).contains(&s) {
        return Err(format!("{what} must be between 0 and 600 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Limits to start collab-server with, so the bench's own load is never
/// refused: enough connections, rooms and members, and a rate limit above
/// the offered rate (the rate limit guards against abuse, not load).
struct Sizing {
    connections: usize,
    rooms: usize,
    users: usize,
    rate: f64,
}

fn start_collab(common: &Common, sizing: &Sizing) -> Result<Server, String> {
    let rate = (sizing.rate * 4.0).ceil().max(200.0) as u32;
    let burst = rate.saturating_mul(2).max(400);
    let max_connections = (sizing.connections + 64).max(1024);
    let max_rooms = (sizing.rooms + 16).max(256);
    let max_users = sizing.users.max(32);
    if let Some(url) = common.url.first() {
        let addr = target::loopback_addr(url)?;
        return Ok(Server::Attached {
            addr,
            pid: common.server_pid,
        });
    }
    if common.in_process {
        let config = collab_server::Config {
            max_connections,
            max_rooms,
            max_users_per_room: max_users,
            messages_per_second: rate,
            burst,
            ..collab_server::Config::default()
        };
        return InProcess::start(config, common.server_workers).map(Server::InProcess);
    }
    let bin = match &common.server_bin {
        Some(p) => p.clone(),
        None => target::default_server_bin().ok_or(
            "no collab-server next to this executable: build it with \
             `cargo build --release -p collab-bench -p collab-server`, or pass --server-bin or --url",
        )?,
    };
    let mut args: Vec<String> = [
        "--bind",
        "127.0.0.1:0",
        "--max-connections",
        &max_connections.to_string(),
        "--max-rooms",
        &max_rooms.to_string(),
        "--max-users-per-room",
        &max_users.to_string(),
        "--rate",
        &rate.to_string(),
        "--burst",
        &burst.to_string(),
        "--workers",
        &common.server_workers.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(common.server_arg.iter().cloned());
    ChildServer::spawn("collab-server", &bin, &args, common.server_cpu).map(Server::Child)
}

fn start_relay(common: &Common) -> Result<ChildServer, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let args: Vec<String> = [
        "relay",
        "--bind",
        "127.0.0.1:0",
        "--exit-on-stdin-eof",
        "--workers",
        &common.server_workers.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ChildServer::spawn("relay", &exe, &args, common.server_cpu)
}

fn collab_endpoint(server: &Server, common: &Common) -> Endpoint {
    let urls = match common.url.len() {
        0 | 1 => vec![format!(
            "ws://{}{}",
            server.addr(),
            collab_protocol::WS_PATH
        )],
        _ => common.url.clone(),
    };
    Endpoint::Collab {
        urls,
        spread: common.spread.max(1),
        token: common.token.clone(),
    }
}

fn relay_endpoint(relay: &ChildServer) -> Endpoint {
    Endpoint::Relay {
        base: format!("ws://{}{RELAY_PATH}", relay.addr),
    }
}
