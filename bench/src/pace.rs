//! The writers' clock: one thread that wakes each user's writer at its
//! send time, to tens of microseconds rather than tokio's millisecond.
//!
//! Tokio's timer has a 1 ms grid: every deadline that falls in the same
//! millisecond fires together, so writers paced by `tokio::time::interval`
//! sent in bursts (at 4,000 sends/s, ~4 at the top of every millisecond),
//! and each burst queued on the server's core: the last of it waited for
//! the others, which inflated the very latency the bench measures. Real
//! keystrokes from hundreds of people are not synchronised to a grid.
//!
//! The [`Schedule`] spreads every user of every room evenly over one
//! period: consecutive sends are `period / users` apart, and the users of a
//! room are `period / users_per_room` apart (rooms interleave). The pacer
//! ([`run`]) sleeps until the next send time (`std::thread::sleep`, with
//! the thread's timer slack lowered to [`TIMER_SLACK_NS`]) and calls `wake`
//! for that user. It stops by itself at the end of sending, or when told
//! to.
//!
//! It does not spin before a send time: on the 2-vCPU VM of BENCHMARKS.md
//! a sleep wakes ~40 µs late (the idle vCPU's wake-up), a 20 µs spin did
//! not make the sends themselves (after the runtime thread wakes and the
//! keystroke is made) measurably more punctual, and a spin takes the
//! bench's only core from the runtime thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The pacer thread's timer slack (the kernel may defer a sleep's wake-up
/// by up to this to batch it with others; 50 µs by default).
pub const TIMER_SLACK_NS: u64 = 1_000;

/// The pacer sleeps at most this long at once, so a stop is seen soon.
const MAX_SLEEP: Duration = Duration::from_millis(10);

/// When every user sends: user `i` (room `i / users_per_room`) at
/// `t0 + phase(i) + m * period` for m = 0, 1, ...
#[derive(Debug, Clone)]
pub struct Schedule {
    t0: Instant,
    period_ns: u64,
    /// Slot in the cycle -> user.
    order: Vec<usize>,
}

impl Schedule {
    /// `rooms` rooms of `users_per_room` users each.
    pub fn new(t0: Instant, period: Duration, rooms: usize, users_per_room: usize) -> Self {
        let n = rooms * users_per_room;
        let mut order = vec![0; n];
        for i in 0..n {
            if let Some(o) = order.get_mut(Self::slot_of(rooms, users_per_room, i)) {
                *o = i;
            }
        }
        Self {
            t0,
            period_ns: u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1),
            order,
        }
    }

    /// User `i`'s slot in the cycle: place-in-room major, room minor, so
    /// consecutive slots are different rooms and a room's users are
    /// `period / users_per_room` apart.
    fn slot_of(rooms: usize, users_per_room: usize, i: usize) -> usize {
        (i % users_per_room) * rooms + i / users_per_room
    }

    pub fn users(&self) -> usize {
        self.order.len()
    }

    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// The `k`th send of the run (in time order), from `t0`, in ns.
    pub fn offset_ns(&self, k: u64) -> u64 {
        let n = self.order.len().max(1) as u128;
        u64::try_from(u128::from(k) * u128::from(self.period_ns) / n).unwrap_or(u64::MAX)
    }

    /// Who makes the `k`th send.
    pub fn user(&self, k: u64) -> Option<usize> {
        let n = self.order.len().max(1) as u64;
        self.order.get((k % n) as usize).copied()
    }

    /// User `i`'s first send time, from `t0`.
    pub fn phase(&self, rooms: usize, users_per_room: usize, i: usize) -> Duration {
        Duration::from_nanos(self.offset_ns(Self::slot_of(rooms, users_per_room, i) as u64))
    }

    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// The first `k` whose send time is at or after `t0 + at_ns`.
    fn first_at(&self, at_ns: u64) -> u64 {
        let n = self.order.len().max(1) as u128;
        let p = u128::from(self.period_ns);
        // ceil(at * n / p), then step past rounding.
        let mut k = u64::try_from((u128::from(at_ns) * n).div_ceil(p)).unwrap_or(u64::MAX);
        while k > 0 && self.offset_ns(k - 1) >= at_ns {
            k -= 1;
        }
        while self.offset_ns(k) < at_ns {
            k += 1;
        }
        k
    }
}

/// What the pacer measured.
#[derive(Debug, Clone)]
pub struct PacerStats {
    /// Wake-up minus send time, ns, of the sends scheduled in the window.
    pub wake: Histogram<u64>,
    /// Sends the pacer called `wake` for.
    pub woken: u64,
    /// Sends skipped because the pacer itself was more than a period
    /// late (each user still got its latest one).
    pub dropped: u64,
    /// The pacer thread's CPU seconds from the window's first send to
    /// its end (10 ms resolution).
    pub cpu_secs: Option<f64>,
}

/// Paces sends by `schedule` until `end` (exclusive) or until `stop`:
/// calls `wake(user, send time from t0 in ns)` at each send time. Blocks
/// the calling thread; returns what it measured. Wake-ups of sends in
/// `[window_start, end)` are measured.
pub fn run(
    schedule: &Schedule,
    window_start: Instant,
    end: Instant,
    stop: &AtomicBool,
    mut wake: impl FnMut(usize, u64),
) -> PacerStats {
    lower_timer_slack();
    let mut stats = PacerStats {
        wake: crate::load::new_histogram(),
        woken: 0,
        dropped: 0,
        cpu_secs: None,
    };
    let mut cpu_at_start = None;
    let t0 = schedule.t0();
    let period = schedule.period();
    let mut k = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let offset = schedule.offset_ns(k);
        let due = t0 + Duration::from_nanos(offset);
        if due >= end {
            break;
        }
        let woke = Instant::now();
        if due > woke {
            std::thread::sleep((due - woke).min(MAX_SLEEP));
            continue;
        }
        let late = woke - due;
        if late > period {
            // More than a period behind: the missed sends collapse into
            // each user's latest, as a late tick is skipped, not queued.
            let behind = woke.saturating_duration_since(t0).saturating_sub(period);
            let next = schedule.first_at(u64::try_from(behind.as_nanos()).unwrap_or(u64::MAX));
            if next > k {
                stats.dropped += next - k;
                k = next;
                continue;
            }
        }
        if let Some(user) = schedule.user(k) {
            wake(user, offset);
            stats.woken += 1;
        }
        if due >= window_start {
            if cpu_at_start.is_none() {
                cpu_at_start = Some(crate::procfs::thread_cpu_seconds());
            }
            let _ = stats
                .wake
                .record(u64::try_from(late.as_nanos()).unwrap_or(u64::MAX));
        }
        k += 1;
    }
    if let Some(Some(c0)) = cpu_at_start {
        stats.cpu_secs = crate::procfs::thread_cpu_seconds().map(|c1| (c1 - c0).max(0.0));
    }
    stats
}

/// Lowers this thread's timer slack to [`TIMER_SLACK_NS`] (Linux); the
/// default 50 µs lets the kernel wake a sleep that much late.
fn lower_timer_slack() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(TIMER_SLACK_NS));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_evenly_spread_over_one_period() {
        let period = Duration::from_millis(100);
        for (rooms, upr) in [(100, 4), (3, 7), (1, 2), (5, 1)] {
            let n = rooms * upr;
            let s = Schedule::new(Instant::now(), period, rooms, upr);
            assert_eq!(s.users(), n);
            let mut phases: Vec<u64> = (0..n)
                .map(|i| s.phase(rooms, upr, i).as_nanos() as u64)
                .collect();
            // Within one period, and the kth send is user(k)'s phase.
            assert!(phases.iter().all(|&p| p < 100_000_000));
            for k in 0..n as u64 {
                let u = s.user(k).unwrap();
                assert_eq!(s.phase(rooms, upr, u).as_nanos() as u64, s.offset_ns(k));
            }
            phases.sort_unstable();
            phases.dedup();
            assert_eq!(phases.len(), n, "distinct");
            // Consecutive sends are period / n apart (to the ns).
            let gap = 100_000_000 / n as u64;
            for w in phases.windows(2) {
                assert!((w[1] - w[0]).abs_diff(gap) <= 1, "{rooms}x{upr}: {w:?}");
            }
            assert!((100_000_000 - phases[n - 1]).abs_diff(gap) <= 1);
            // A room's users are period / upr apart.
            for r in 0..rooms {
                let mut p: Vec<u64> = (0..upr)
                    .map(|u| s.phase(rooms, upr, r * upr + u).as_nanos() as u64)
                    .collect();
                p.sort_unstable();
                for w in p.windows(2) {
                    assert!((w[1] - w[0]).abs_diff(100_000_000 / upr as u64) <= 1);
                }
            }
            // Later cycles repeat the first, one period on.
            assert_eq!(s.offset_ns(n as u64 + 3), s.offset_ns(3) + 100_000_000);
            assert_eq!(s.user(n as u64 + 3), s.user(3));
        }
    }

    #[test]
    fn first_at_finds_the_first_send_at_or_after() {
        let s = Schedule::new(Instant::now(), Duration::from_millis(7), 3, 3);
        for at in [0, 1, 777_777, 777_778, 7_000_000, 123_456_789] {
            let k = s.first_at(at);
            assert!(s.offset_ns(k) >= at);
            assert!(k == 0 || s.offset_ns(k - 1) < at);
        }
    }

    /// 8 users at 50 sends/s each for 200 ms: each is woken about 10
    /// times, and the pacer returns by itself at the end.
    #[test]
    fn the_pacer_wakes_each_user_once_a_period_and_ends_by_itself() {
        let t0 = Instant::now() + Duration::from_millis(5);
        let s = Schedule::new(t0, Duration::from_millis(20), 4, 2);
        let end = t0 + Duration::from_millis(200);
        let stop = AtomicBool::new(false);
        let mut counts = [0u32; 8];
        // Returns (after its last send, before `end`) without a stop.
        let stats = run(&s, t0, end, &stop, |u, _| counts[u] += 1);
        let total: u32 = counts.iter().sum();
        assert_eq!(u64::from(total), stats.woken);
        // 80 sends in all, unless the machine stalled the thread for more
        // than a period (then each user still gets its latest).
        assert_eq!(stats.woken + stats.dropped, 80);
        if stats.dropped == 0 {
            assert_eq!(counts, [10; 8]);
        } else {
            assert!(counts.iter().all(|&c| c <= 10), "{counts:?}");
        }
    }

    #[test]
    fn the_pacer_stops_when_told() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Duration::from_secs(1), 2, 2);
        let stop = AtomicBool::new(true);
        let mut woken = 0;
        let stats = run(&s, t0, t0 + Duration::from_secs(600), &stop, |_, _| {
            woken += 1
        });
        assert_eq!((woken, stats.woken), (0, 0));
    }
}
