//! `collab-bench interfere`: a quiet room's keystroke latency, first
//! alone, then while a disturbance runs against the same server in other
//! rooms (or as a flood of unfinished connections); the report puts the
//! two side by side as ratios. For `heavy-load` the server first runs with
//! a data directory of the bench's own to store the heavy room, and is
//! restarted on it before both phases, so its joins are loads.

use std::path::PathBuf;
use std::time::Duration;

use collab_bench::interfere::{
    self, CLIENT_FRAME_BUDGET, Disturb, DisturbSpec, DisturbStats, HeavyRoom, PastingPair, Payload,
};
use collab_bench::load::{Outcome, Spec, Typing, run_phase};
use collab_bench::procfs;
use collab_bench::target::Server;
use collab_doc::SharedDoc;

use super::{Sizing, collab_endpoint, secs, start_collab};
use crate::{Common, InterfereArgs, report};

/// One phase's figures: the quiet room's, the probe's and the
/// disturbance's, and the server's peak RSS so far.
pub(crate) struct Phase {
    pub(crate) outcome: Outcome,
    pub(crate) stats: DisturbStats,
    pub(crate) rss_hwm_kib: Option<u64>,
}

pub(crate) struct Run {
    pub(crate) quiet: Phase,
    pub(crate) disturbed: Phase,
    pub(crate) heavy: Option<HeavyRoom>,
    /// Bytes of the bomb, or of each paste part, as sent.
    pub(crate) payload_bytes: Vec<usize>,
}

/// A directory of the bench's, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!("collab-bench-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn payload(args: &InterfereArgs) -> Result<(Payload, Vec<usize>), String> {
    Ok(match args.disturb {
        Disturb::SnapshotBomb => {
            let mut doc = SharedDoc::new();
            doc.splice(0, 0, "x").map_err(|e| e.to_string())?;
            let keystroke = doc.take_local_update().unwrap_or_default();
            let snapshot = interfere::snapshot_bomb(args.bomb_text_kib.saturating_mul(1024))?;
            let sizes = vec![snapshot.len()];
            (
                Payload::Bomb {
                    keystroke,
                    snapshot,
                },
                sizes,
            )
        }
        Disturb::Paste => {
            let round = PastingPair::new()
                .next_round(args.paste_kib.saturating_mul(1024), CLIENT_FRAME_BUDGET)?;
            let sizes = round.paste_parts.iter().map(Vec::len).collect();
            (Payload::Paste(round), sizes)
        }
        Disturb::HeavyLoad => (Payload::HeavyLoad, Vec::new()),
        Disturb::HalfOpen => (
            Payload::HalfOpen(interfere::FloodSpec {
                connections: args.half_open as usize,
                addresses: args.half_open_addresses as usize,
                drip_every: Duration::from_millis(500),
                reopen_after: Duration::from_secs(1),
                opens_per_slot: 1000,
            }),
            Vec::new(),
        ),
    })
}

pub(crate) async fn interfere(args: InterfereArgs) -> Result<(), String> {
    let mut common = args.common.clone();
    let spec = Spec {
        rooms: 1,
        users: args.users as usize,
        rate: args.rate.clamp(0.01, 10_000.0),
        warmup: secs(args.warmup, "--warmup")?,
        duration: secs(args.duration, "--duration")?.max(Duration::from_millis(100)),
        drain: Duration::from_secs(3),
        tag: "interfere-quiet".into(),
        connect_concurrency: 8,
        label: "quiet".into(),
        progress: !common.quiet,
        typing: Typing::Turns,
    };
    let external = !common.url.is_empty() || common.in_process;
    // Declared before the server, so dropped after it stopped.
    let mut _data_dir = None;
    match args.disturb {
        Disturb::HeavyLoad => {
            if external {
                return Err(
                    "--disturb heavy-load restarts the server: not with --url or --in-process"
                        .into(),
                );
            }
            if common
                .server_arg
                .iter()
                .any(|a| a.starts_with("--memory") || a.starts_with("--data-dir"))
            {
                return Err("--disturb heavy-load gives the server a data directory of its own: drop --memory and --data-dir".into());
            }
            let dir = TempDir::new("heavy")?;
            common
                .server_arg
                .push(format!("--data-dir={}", dir.0.display()));
            _data_dir = Some(dir);
        }
        Disturb::HalfOpen if !external => {
            // The flood comes from 127.0.0.2..: cap each such address as
            // the server caps a remote one.
            common.server_arg.push("--cap-loopback-per-ip".into());
        }
        _ => {}
    }
    let (payload, payload_bytes) = payload(&args)?;
    let sizing = Sizing {
        connections: spec.users + 16,
        rooms: 16,
        users: spec.users,
        rate: spec.rate,
    };
    let mut server = start_collab(&common, &sizing)?;
    let mut heavy = None;
    if args.disturb == Disturb::HeavyLoad {
        if !common.quiet {
            eprintln!(
                "[prepare] storing {} pastes of {} KiB, each concurrent with a typed line",
                args.heavy_pastes, args.heavy_paste_kib
            );
        }
        heavy = Some(
            interfere::prepare_heavy(
                &collab_endpoint(&server, &common),
                args.heavy_pastes,
                args.heavy_paste_kib.saturating_mul(1024),
                CLIENT_FRAME_BUDGET,
                Duration::from_secs(600),
            )
            .await?,
        );
        // A clean stop flushes the store; the new process loads from it.
        drop(server);
        server = start_collab(&common, &sizing)?;
    }
    let disturb = DisturbSpec {
        payload: Payload::None,
        max_rounds: args.max_rounds.clamp(1, 100_000),
        round_timeout: Duration::from_secs(120),
        pause: Duration::from_millis(if args.disturb == Disturb::HeavyLoad {
            200
        } else {
            20
        }),
        probe_every: Duration::from_millis(args.probe_every_ms.clamp(10, 10_000)),
        tag: "interfere".into(),
    };
    let quiet = phase(&server, &common, &spec, disturb.clone()).await?;
    let disturbed = phase(
        &server,
        &common,
        &Spec {
            tag: "interfere-disturbed".into(),
            label: format!("during {}", args.disturb.name()),
            ..spec.clone()
        },
        DisturbSpec { payload, ..disturb },
    )
    .await?;
    let run = Run {
        quiet,
        disturbed,
        heavy,
        payload_bytes,
    };
    report::print_interfere(&common, &server, &args, &spec, &run);
    drop(server);
    Ok(())
}

async fn phase(
    server: &Server,
    common: &Common,
    spec: &Spec,
    disturb: DisturbSpec,
) -> Result<Phase, String> {
    let endpoint = collab_endpoint(server, common);
    let lead = !matches!(disturb.payload, Payload::None);
    let running = interfere::start(endpoint.clone(), server.addr(), disturb)?;
    if lead {
        // Under way before the quiet room's typists join.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let outcome = run_phase(&endpoint, spec, server.pid()).await;
    let stats = running.stop().await?;
    let outcome = outcome?;
    Ok(Phase {
        outcome,
        stats,
        rss_hwm_kib: server.pid().and_then(|p| procfs::status_kib(p, "VmHWM")),
    })
}
