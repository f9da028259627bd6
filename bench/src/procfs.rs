//! CPU time and resident memory of a process, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux). Every reader returns `None` where `/proc`
//! is missing or a field does not parse, so the bench still runs (without
//! those figures) elsewhere.

use std::sync::OnceLock;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we know).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|t| *t > 0.0)
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds used so far by every thread of `pid`
/// (fields 14 and 15 of `/proc/<pid>/stat`, 10 ms resolution).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_in(&format!("/proc/{pid}/stat"))
}

/// User + system CPU seconds used so far by the calling thread
/// (`/proc/thread-self/stat`, 10 ms resolution).
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_seconds_in("/proc/thread-self/stat")
}

fn cpu_seconds_in(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces:
    // count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state), so field N is rest[N - 3].
    let utime: f64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: f64 = fields.get(15 - 3)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`, `RssAnon`, ...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident set size of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// Open file descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

/// The machine, for the report: CPUs online and the CPU model.
pub fn machine() -> (usize, String) {
    // Not available_parallelism: that counts only the CPUs this process
    // may run on, one once the bench has pinned itself.
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = info.lines().filter(|l| l.starts_with("processor")).count();
    let cpus = if cpus > 0 {
        cpus
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_string(), |(_, m)| m.trim().to_string());
    (cpus, model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_seconds(me).is_some());
            assert!(rss_kib(me).is_some_and(|k| k > 0));
            assert!(open_fds(me).is_some_and(|n| n > 0));
        }
    }
}
