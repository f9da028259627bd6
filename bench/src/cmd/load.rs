//! `collab-bench load`: one phase of typing against collab-server, then
//! the same phase against the bare relay as a baseline.

use std::time::Duration;

use collab_bench::load::{Spec, run_phase};

use super::{Sizing, collab_endpoint, relay_endpoint, secs, start_collab, start_relay};
use crate::{LoadArgs, report};

pub(crate) async fn load(args: LoadArgs) -> Result<(), String> {
    let common = &args.common;
    let spec = Spec {
        rooms: args.rooms as usize,
        users: args.users as usize,
        rate: args.rate.clamp(0.01, 100_000.0),
        warmup: secs(args.warmup, "--warmup")?,
        duration: secs(args.duration, "--duration")?.max(Duration::from_millis(100)),
        drain: Duration::from_secs(3),
        tag: "load".into(),
        connect_concurrency: 64,
        label: "collab".into(),
        progress: !common.quiet,
        typing: args.typing,
    };
    let server = start_collab(
        common,
        &Sizing {
            connections: spec.rooms * spec.users,
            rooms: spec.rooms,
            users: spec.users,
            rate: spec.rate,
        },
    )?;
    let collab = run_phase(&collab_endpoint(&server, common), &spec, server.pid()).await?;
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        let spec = Spec {
            label: "relay".into(),
            ..spec.clone()
        };
        let out = run_phase(&relay_endpoint(&relay), &spec, Some(relay.pid)).await?;
        Some(out)
    };
    report::print_load(common, &server, &spec, &collab, baseline.as_ref());
    drop(server);
    Ok(())
}
