//! Document work runs below the runtime's workers, as the CPU sees it.
//!
//! A paste's import, a compaction, a snapshot for the store and a stored
//! room's decoding run on tokio's blocking pool (`room/document.rs`,
//! `store/`), so they never hold a worker. But on a small machine (two
//! cores, or a server pinned to one) the thread doing them shares a core
//! with the workers, and a worker woken by another room's keystroke waits
//! for that thread's time slice: about 5 ms under Linux's scheduler, 15
//! times a quiet room's p99 (BENCHMARKS.md, "Interference"). So a thread
//! lowers its own priority the first time it does document work: a woken
//! worker then runs at once, and the document work gets what the workers
//! leave (all of an idle core). One room's paste waits for the relay of
//! every other room, never the other way round.
//!
//! Lowest is `SCHED_IDLE`: the thread runs only when nothing of normal
//! priority on its core wants to, and a normal thread that wakes preempts
//! it at once. Nice 19 alone is still a normal thread, one with a small
//! share: a woken worker may wait for the scheduler's next tick. Both are
//! set: `SCHED_IDLE` where the kernel allows it (any user may lower its
//! own threads), nice 19 in any case (a system without `SCHED_IDLE`, and
//! the same order of threads either way). Idle-class work is not starved
//! for good: the kernel still gives it a minimal share.
//!
//! Linux sets both per thread (on the thread's id); other systems apply a
//! nice value to the whole process, so there nothing is done.

/// The nice value of threads that do document work (the lowest priority).
const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's priority once (a blocking-pool thread about
/// to do document work, the store's thread). Never fails: without it,
/// work only competes with the workers as before.
pub(crate) fn background() {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        thread_local! {
            static LOWERED: Cell<bool> = const { Cell::new(false) };
        }
        LOWERED.with(|lowered| {
            if lowered.replace(true) {
                return;
            }
            // First: setting the policy also sets the nice value to its
            // default, which the line after lowers again.
            use thread_priority::{
                NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
                set_thread_priority_and_policy, thread_native_id,
            };
            if let Err(e) = set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            ) {
                tracing::debug!(error = ?e, "could not put a document thread in SCHED_IDLE");
            }
            let me = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(me), BACKGROUND_NICE) {
                tracing::debug!(error = %e, "could not lower a document thread's priority");
            }
        });
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    /// The calling thread, and only it, runs in SCHED_IDLE at nice 19
    /// afterwards.
    #[test]
    fn lowers_the_calling_thread_only() {
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        let policy = || thread_priority::unix::thread_schedule_policy().ok();
        let policy_before = policy();
        assert_ne!(policy_before, Some(idle), "the test thread starts idle");
        let lowered = std::thread::spawn(move || {
            super::background();
            super::background();
            policy()
        })
        .join()
        .ok()
        .flatten();
        assert_eq!(lowered, Some(idle));
        assert_eq!(policy(), policy_before);
        let me = rustix::thread::gettid();
        let before = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
        if before >= super::BACKGROUND_NICE {
            // Tests run under `nice -n 19`: nothing lower to observe.
            eprintln!("already at nice {before}: the test cannot tell");
            return;
        }
        let nice = std::thread::spawn(|| {
            super::background();
            super::background();
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
        })
        .join()
        .ok()
        .and_then(Result::ok);
        assert_eq!(nice, Some(super::BACKGROUND_NICE));
        let after = rustix::process::getpriority_process(Some(me));
        assert_eq!(after.ok(), Some(before));
    }
}
