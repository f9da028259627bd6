//! `collab-bench idle`: hold many joined, silent connections to
//! collab-server (then to the relay) and read the server's memory, once
//! per room size (rooms of 2, 4 and 20 by default), each against a fresh
//! server so that its "empty" reading is one.

use std::time::Duration;

use collab_bench::idle::{IdleOutcome, IdleSpec, run_idle};
use collab_bench::target;

use super::{Sizing, collab_endpoint, relay_endpoint, secs, start_collab, start_relay};
use crate::{IdleArgs, report};

/// One room size's run.
pub(crate) struct SizeRun {
    pub(crate) users_per_room: usize,
    pub(crate) collab: IdleOutcome,
    /// How the server ran (pid, pinning), for the report.
    pub(crate) server: String,
}

pub(crate) async fn idle(args: IdleArgs) -> Result<(), String> {
    let common = &args.common;
    let k = args.connections as usize;
    let my_limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    if (my_limit as usize) < k + 64 {
        return Err(format!(
            "the open-files limit is {my_limit}, too low for {k} connections: raise it (ulimit -n)"
        ));
    }
    let sizes: Vec<usize> = args.users_per_room.iter().map(|&u| u as usize).collect();
    let Some(&headline) = sizes.first() else {
        return Err("--users-per-room needs at least one size".into());
    };
    let base = IdleSpec {
        connections: k,
        users_per_room: headline,
        concurrency: args.concurrency.clamp(1, 1024),
        settle: Duration::from_secs(1),
        hold: secs(args.hold, "--hold")?,
        setup_limit: Duration::from_secs(180),
        tag: "idle".into(),
        label: "collab idle".into(),
        progress: !common.quiet,
    };
    let mut runs = Vec::new();
    for &upr in &sizes {
        let spec = IdleSpec {
            users_per_room: upr,
            tag: format!("idle{upr}"),
            label: format!("collab idle, rooms of {upr}"),
            ..base.clone()
        };
        let server = start_collab(
            common,
            &Sizing {
                connections: k,
                rooms: k.div_ceil(upr),
                users: upr,
                rate: 1.0,
            },
        )?;
        if let Some(pid) = server.pid()
            && let Some(limit) = target::nofile_soft_limit(pid)
            && (limit as usize) < k + 64
        {
            eprintln!(
                "collab-bench: the server's open-files soft limit is {limit}: it cannot hold {k} connections"
            );
        }
        // Let a freshly started server settle before reading "empty".
        tokio::time::sleep(Duration::from_millis(300)).await;
        let collab = run_idle(&collab_endpoint(&server, common), &spec, server.pid()).await;
        runs.push(SizeRun {
            users_per_room: upr,
            collab,
            server: server.describe(),
        });
        // Stopped before the next size starts its own.
        drop(server);
    }
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let spec = IdleSpec {
            label: format!("relay idle, rooms of {headline}"),
            ..base.clone()
        };
        Some(run_idle(&relay_endpoint(&relay), &spec, Some(relay.pid)).await)
    };
    report::print_idle(common, k, &runs, baseline.as_ref());
    Ok(())
}
