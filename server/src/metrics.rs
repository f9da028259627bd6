//! The server's counters, served as Prometheus text at `GET /metrics`.
//!
//! Every counter is an atomic, bumped with `Relaxed` ordering: nothing on
//! the hot path takes a lock. The text format (version 0.0.4) is written by
//! hand: it is a few lines per metric, and the usual crates keep
//! histograms and labelled families behind locks.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use collab_protocol::ErrorCode;

/// Upper bounds of the update apply time histogram, seconds.
const APPLY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// Why a connection was refused before it could join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server has `max_connections` already.
    MaxConnections,
    /// This IP address has `max_connections_per_ip` already.
    MaxConnectionsPerIp,
    /// This IP address has `max_half_open_per_ip` connections still in
    /// their handshake: closed unanswered.
    HalfOpenPerIp,
    /// The oldest connection still in its handshake, closed to make room
    /// for a new one past `max_half_open`.
    HalfOpenEvicted,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::MaxConnections,
        Refusal::MaxConnectionsPerIp,
        Refusal::HalfOpenPerIp,
        Refusal::HalfOpenEvicted,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::MaxConnectionsPerIp => "max_connections_per_ip",
            Refusal::HalfOpenPerIp => "half_open_per_ip",
            Refusal::HalfOpenEvicted => "half_open_evicted",
        }
    }
}

/// A histogram of durations with fixed buckets, all atomics.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; APPLY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = APPLY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(APPLY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = APPLY_BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        // The count is the buckets' total, so the exposition stays
        // consistent even while observations race with the scrape.
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Everything counted, for the life of the server.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    connections_accepted: AtomicU64,
    connections_open: AtomicU64,
    connections_refused: [AtomicU64; Refusal::ALL.len()],
    joins: AtomicU64,
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    updates_applied: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    update_apply: Histogram,
    http_requests: AtomicU64,
}

impl Metrics {
    /// A TCP connection was accepted (and counts as open until
    /// [`Self::connection_closed`]).
    pub(crate) fn connection_opened(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, why: Refusal) {
        let i = Refusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.connections_refused[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn joined(&self) {
        self.joins.fetch_add(1, Ordering::Relaxed);
    }

    /// A data message (text or binary) of `bytes` came in.
    pub(crate) fn message_in(&self, bytes: usize) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An event of `bytes` went out.
    pub(crate) fn message_out(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An error event with `code` was sent (or a refusal was decided).
    pub(crate) fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An update was imported into a room's document in `took`.
    pub(crate) fn update_applied(&self, took: Duration) {
        self.updates_applied.fetch_add(1, Ordering::Relaxed);
        self.update_apply.observe(took);
    }

    pub(crate) fn http_request(&self) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition; `rooms` is read by the caller.
    pub(crate) fn render(&self, rooms: usize) -> String {
        let mut out = String::with_capacity(4096);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut simple = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        simple(
            "collab_connections_accepted_total",
            "counter",
            "TCP connections accepted.",
            load(&self.connections_accepted),
        );
        simple(
            "collab_connections_open",
            "gauge",
            "Connections open now (joined or not).",
            load(&self.connections_open),
        );
        simple("collab_rooms", "gauge", "Rooms alive now.", rooms as u64);
        simple(
            "collab_joins_total",
            "counter",
            "Successful joins (resumed sessions included).",
            load(&self.joins),
        );
        simple(
            "collab_messages_received_total",
            "counter",
            "WebSocket data messages received from clients.",
            load(&self.messages_in),
        );
        simple(
            "collab_received_bytes_total",
            "counter",
            "Bytes of data messages received from clients.",
            load(&self.bytes_in),
        );
        simple(
            "collab_messages_sent_total",
            "counter",
            "Events sent to clients.",
            load(&self.messages_out),
        );
        simple(
            "collab_sent_bytes_total",
            "counter",
            "Bytes of events sent to clients.",
            load(&self.bytes_out),
        );
        simple(
            "collab_updates_applied_total",
            "counter",
            "Document updates handled (imported, resent or refused as invalid or too large).",
            load(&self.updates_applied),
        );
        simple(
            "collab_http_requests_total",
            "counter",
            "Plain HTTP requests answered (health, metrics, 404, 426).",
            load(&self.http_requests),
        );
        let name = "collab_connections_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Connections refused before joining, by limit."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, r) in Refusal::ALL.iter().enumerate() {
            let v = load(&self.connections_refused[i]);
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {v}", r.label());
        }
        let name = "collab_errors_total";
        let _ = writeln!(out, "# HELP {name} Error events sent to clients, by code.");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            let v = load(&self.errors[i]);
            let _ = writeln!(out, "{name}{{code=\"{}\"}} {v}", code.as_str());
        }
        self.update_apply.render(
            &mut out,
            "collab_update_apply_seconds",
            "Time to import one update into a room's document.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.update_applied(Duration::from_micros(10));
        m.update_applied(Duration::from_millis(3));
        m.update_applied(Duration::from_secs(2));
        let text = m.render(0);
        assert!(text.contains("collab_update_apply_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("collab_update_apply_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("collab_update_apply_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(text.contains("collab_update_apply_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("collab_update_apply_seconds_count 3\n"));
        m.error(ErrorCode::ReadOnly);
        m.refused(Refusal::MaxConnectionsPerIp);
        let text = m.render(2);
        assert!(text.contains("collab_errors_total{code=\"read_only\"} 1\n"));
        assert!(
            text.contains(
                "collab_connections_refused_total{reason=\"max_connections_per_ip\"} 1\n"
            )
        );
        assert!(text.contains("collab_rooms 2\n"));
    }
}
