//! `collab-bench ramp`: load phases at a rising rate per user until
//! latency breaks, against collab-server and then the relay; the knee is
//! the last rate that held.

use std::time::Duration;

use collab_bench::load::{Endpoint, Outcome, Spec, run_phase};

use super::{Sizing, collab_endpoint, relay_endpoint, secs, start_collab, start_relay};
use crate::RampArgs;
use crate::report::{self, us};

pub(crate) struct Step {
    pub(crate) rate: f64,
    pub(crate) outcome: Outcome,
    pub(crate) ok: bool,
}

fn step_ok(o: &Outcome, limit_us: f64) -> bool {
    o.latency_us(0.99) <= limit_us
        && o.errors.total() == 0
        && o.sends_per_sec() >= 0.9 * o.offered_sends_per_sec()
}

async fn ramp_one(
    endpoint: &Endpoint,
    pid: Option<u32>,
    args: &RampArgs,
    label: &str,
) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    let mut rate = args.start_rate.clamp(0.01, args.max_rate);
    let mut past_knee = 0;
    for i in 0..args.max_steps.clamp(1, 64) {
        let spec = Spec {
            rooms: args.rooms as usize,
            users: args.users as usize,
            rate,
            warmup: Duration::from_secs(1),
            duration: secs(args.step_secs, "--step-secs")?.max(Duration::from_millis(200)),
            drain: Duration::from_secs(2),
            tag: format!("ramp{i}"),
            connect_concurrency: 64,
            label: format!("{label} {rate:.0}/s"),
            progress: !args.common.quiet,
            typing: args.typing,
        };
        let outcome = run_phase(endpoint, &spec, pid).await?;
        let ok = step_ok(&outcome, args.p99_limit_us);
        if !args.common.quiet {
            eprintln!(
                "[{label}] rate {rate:.0}/s per user: p99 {} sends/s {:.0} deliveries/s {:.0} errors {} -> {}",
                us(outcome.latency_us(0.99)),
                outcome.sends_per_sec(),
                outcome.deliveries_per_sec(),
                outcome.errors.describe(),
                if ok { "ok" } else { "broken" }
            );
        }
        steps.push(Step { rate, outcome, ok });
        if !ok {
            past_knee += 1;
            if past_knee > args.overload_steps {
                break;
            }
        }
        if rate >= args.max_rate {
            break;
        }
        rate = (rate * args.factor.max(1.05)).min(args.max_rate);
    }
    Ok(steps)
}

pub(crate) fn knee(steps: &[Step]) -> Option<&Step> {
    steps.iter().take_while(|s| s.ok).last()
}

pub(crate) async fn ramp(args: RampArgs) -> Result<(), String> {
    let common = &args.common;
    let server = start_collab(
        common,
        &Sizing {
            connections: (args.rooms * args.users) as usize,
            rooms: args.rooms as usize,
            users: args.users as usize,
            rate: args.max_rate,
        },
    )?;
    let collab = ramp_one(
        &collab_endpoint(&server, common),
        server.pid(),
        &args,
        "collab",
    )
    .await?;
    let baseline = if common.no_baseline {
        None
    } else {
        let relay = start_relay(common)?;
        Some(ramp_one(&relay_endpoint(&relay), Some(relay.pid), &args, "relay").await?)
    };
    report::print_ramp(&args, &server, &collab, baseline.as_deref());
    Ok(())
}
