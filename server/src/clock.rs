//! Wall-clock time as the server hands it out: milliseconds since the Unix
//! epoch, for chat timestamps (room.rs) and the store's last-touched times
//! (`store/`). One function, so both read the same clock the same way.

/// Milliseconds since the Unix epoch (0 on a clock set before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
