//! `collab-bench idle`: hold many joined, silent connections to
//! collab-server (then to the relay) and read the server's memory.

use std::time::Duration;

use collab_bench::idle::{IdleSpec, run_idle};
use collab_bench::target;

use super::{Sizing, collab_endpoint, relay_endpoint, secs, start_collab, start_relay};
use crate::{IdleArgs, report};

pub(crate) async fn idle(args: IdleArgs) -> Result<(), String> {
    let common = &args.common;
    let k = args.connections as usize;
    let upr = args.users_per_room as usize;
    let my_limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(0);
    if (my_limit as usize) < k + 64 {
        return Err(format!(
            "the open-files limit is {my_limit}, too low for {k} connections: raise it (ulimit -n)"
        ));
    }
    let spec = IdleSpec {
        connections: k,
        users_per_room: upr,
        concurrency: args.concurrency.clamp(1, 1024),
        settle: Duration::from_secs(1),
        hold: secs(args.hold, "--hold")?,
        setup_limit: Duration::from_secs(180),
        tag: "idle".into(),
        label: "collab idle".into(),
        progress: !common.quiet,
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
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let spec = IdleSpec {
            label: "relay idle".into(),
            ..spec.clone()
        };
        Some(run_idle(&relay_endpoint(&relay), &spec, Some(relay.pid)).await)
    };
    report::print_idle(common, &server, k, upr, &collab, baseline.as_ref());
    Ok(())
}
