//! Per-connection inbound byte budget: a token bucket of bytes that the
//! connection's reader spends on every message it reads.
//!
//! The message rate limit ([`crate::rate_limit`]) counts events, not their
//! size: one member pasting 1 MiB frames back to back (40 MiB/s on
//! loopback) keeps the server's core busy importing and relaying them, and
//! every other room's keystrokes wait behind that work. So a connection
//! also has a budget of bytes: a burst (at least one frame of the largest
//! size) and a refill rate. A message is read while the budget is above
//! zero and charged in full, which may take it below zero; then the reader
//! stops reading that socket until it has refilled. Nothing is refused or
//! lost: TCP holds the member's later frames (backpressure), and they are
//! read, in order, as the budget comes back. Other connections are not
//! touched: each has its own bucket and task.

// tokio's clock, so tests can pause and advance it.
use tokio::time::{Duration, Instant};

/// One connection's byte budget.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    /// Bytes the connection may still read; negative once a message took
    /// more than was left (a debt, paid back by the refill).
    tokens: f64,
    last: Instant,
    /// Bytes per second.
    rate: f64,
    /// The most the bucket holds.
    burst: f64,
}

impl ByteBudget {
    /// A full bucket of `burst` bytes, refilled at `rate` bytes a second
    /// (both at least 1).
    pub(crate) fn new(rate: usize, burst: usize, now: Instant) -> Self {
        Self {
            tokens: burst.max(1) as f64,
            last: now,
            rate: rate.max(1) as f64,
            burst: burst.max(1) as f64,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Spends `bytes` (a message just read).
    pub(crate) fn charge(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    /// When the connection may read again: `None` while the budget is
    /// above zero (read now), else the instant it will be.
    pub(crate) fn resume_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.tokens > 0.0 {
            return None;
        }
        // Just past zero: a whole nanosecond more than the debt's time.
        let wait = Duration::from_secs_f64(-self.tokens / self.rate) + Duration::from_nanos(1);
        Some(now + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_burst_is_read_at_once_then_the_debt_waits_for_the_refill() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(MIB, 2 * MIB, t0);
        assert_eq!(b.resume_at(t0), None);
        b.charge(MIB, t0);
        assert_eq!(b.resume_at(t0), None, "a MiB of the burst is left");
        // The second takes the last of the burst, the third goes over:
        // it is read in full (nothing is cut), and it is a debt.
        b.charge(MIB, t0);
        let at = b.resume_at(t0).expect("the budget is spent");
        assert!(at - t0 <= Duration::from_millis(1), "{:?}", at - t0);
        b.charge(MIB, at);
        let at = b.resume_at(at).expect("a MiB of debt");
        let waited = at - t0;
        assert!(
            waited >= Duration::from_millis(999) && waited <= Duration::from_millis(1001),
            "{waited:?}"
        );
        assert_eq!(b.resume_at(at), None, "readable once the debt is paid");
    }

    #[test]
    fn an_idle_connection_refills_only_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(MIB, 2 * MIB, t0);
        let later = t0 + Duration::from_secs(3600);
        b.charge(2 * MIB, later);
        b.charge(1, later);
        assert!(b.resume_at(later).is_some(), "an hour idle is no credit");
    }
}
