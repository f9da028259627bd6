//! Per-connection token bucket with flood detection.
//!
//! Over the rate, an event is refused and the client told `rate_limited`,
//! at most once a second so the answer never amplifies the flood (except
//! a refused `update`, answered each time with its seq by the connection:
//! its sender waits for that answer). Only a
//! sustained flood (too many refusals, or refusals for too long without a
//! one-second pause) removes the connection: a burst of typing never does.

use std::time::Duration;

// tokio's clock, so tests can pause and advance it (start_paused) rather
// than sleep and accept a range.
use tokio::time::Instant;

/// What to do with one incoming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Drop the event; `notify` says whether to send `rate_limited` now.
    Refuse {
        notify: bool,
    },
    /// The flood went on too long: remove the connection.
    Disconnect,
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
    max_refused: u32,
    max_flood: Duration,
    /// The current flood: when it started, its last refusal, refusals.
    flood: Option<(Instant, Instant, u32)>,
    last_notice: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32, max_refused: u32, max_flood: Duration) -> Self {
        Self {
            tokens: f64::from(burst),
            last: Instant::now(),
            rate: f64::from(rate),
            burst: f64::from(burst),
            max_refused,
            max_flood,
            flood: None,
            last_notice: None,
        }
    }

    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        let (start, refused) = match self.flood {
            Some((start, last, refused))
                if now.saturating_duration_since(last) < Duration::from_secs(1) =>
            {
                (start, refused + 1)
            }
            _ => (now, 1),
        };
        self.flood = Some((start, now, refused));
        if refused > self.max_refused || now.saturating_duration_since(start) > self.max_flood {
            return Verdict::Disconnect;
        }
        let notify = self
            .last_notice
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if notify {
            self.last_notice = Some(now);
        }
        Verdict::Refuse { notify }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_refusals_notify_once_a_second() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10, 5, 100, Duration::from_secs(5));
        for _ in 0..5 {
            assert_eq!(rl.check(t0), Verdict::Allow);
        }
        assert_eq!(rl.check(t0), Verdict::Refuse { notify: true });
        assert_eq!(rl.check(t0), Verdict::Refuse { notify: false });
        // 100 ms later one token is back.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(rl.check(t1), Verdict::Allow);
        assert_eq!(rl.check(t1), Verdict::Refuse { notify: false });
        let t2 = t0 + Duration::from_millis(1050);
        assert_eq!(rl.check(t2), Verdict::Allow);
    }

    #[test]
    fn a_sustained_flood_disconnects() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(10, 1, 3, Duration::from_secs(5));
        assert_eq!(rl.check(t0), Verdict::Allow);
        for _ in 0..3 {
            assert!(matches!(rl.check(t0), Verdict::Refuse { .. }));
        }
        assert_eq!(rl.check(t0), Verdict::Disconnect);
    }

    #[test]
    fn a_long_flood_disconnects_but_a_pause_forgives() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1, 1, u32::MAX, Duration::from_secs(2));
        assert_eq!(rl.check(t0), Verdict::Allow);
        assert!(matches!(rl.check(t0), Verdict::Refuse { .. }));
        // A pause of more than a second ends the flood.
        let t1 = t0 + Duration::from_millis(1500);
        assert_eq!(rl.check(t1), Verdict::Allow);
        let mut t = t1;
        let mut last = Verdict::Allow;
        for _ in 0..40 {
            t += Duration::from_millis(100);
            last = rl.check(t);
            if last == Verdict::Disconnect {
                break;
            }
        }
        assert_eq!(last, Verdict::Disconnect);
    }
}
