//! Document work runs below the runtime's workers, as the CPU sees it.
//!
//! A paste's import, a compaction, a snapshot for the store and a stored
//! room's decoding run on tokio's blocking pool (`room/document.rs`,
//! `store/`), so they never hold a worker. But on a small machine (two
//! cores, or a server pinned to one) the thread doing them shares a core
//! with the workers, and a worker woken by another room's keystroke waits
//! for that thread's time slice: about 5 ms under Linux's scheduler, 15
//! times a quiet room's p99 (BENCHMARKS.md, "Interference"). So a thread
//! lowers its own priority to nice 19 the first time it does document work:
//! a woken worker then runs at once, and the document work gets what the
//! workers leave (all of an idle core). One room's paste waits for the
//! relay of every other room, never the other way round.
//!
//! Linux sets a nice value per thread (`setpriority` on the thread's id);
//! other systems apply it to the whole process, so there nothing is done.
//!
//! Nice 19 shares the core fairly but does not preempt: under EEVDF with
//! `PREEMPT_NONE` (Linux 6.6 on) a worker woken while a nice-19 thread runs
//! waits for that thread's slice, 1 to 2 ms (BENCHMARKS.md, issue 16: the
//! store's commit each flush window gave p99 with `--data-dir` about 7
//! times the memory-only p99). The store thread therefore runs under
//! `SCHED_IDLE` ([`idle`]): the kernel preempts such a thread as soon as a
//! normal one wakes on its core. It is for the store thread alone: the
//! blocking pool also runs short work that is no document work (a load's
//! hand-off to the store), and an idle-policy thread gets almost nothing of
//! a saturated core. The store can wait: its rooms' changes sit in the
//! inbox meanwhile, and docs/storage.md promises durability within a flush
//! interval only on a core with time to spare.

/// The nice value of threads that do document work (the lowest priority).
const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's priority once (a blocking-pool thread about
/// to do document work). Never fails: without it, work only competes
/// with the workers as before.
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
            let me = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(me), BACKGROUND_NICE) {
                tracing::debug!(error = %e, "could not lower a document thread's priority");
            }
        });
    }
}

/// Puts the calling thread (the store thread) under `SCHED_IDLE`, and at
/// nice 19 where that is refused (a seccomp filter, another kernel). Never
/// fails: without either, the thread competes with the workers as before.
/// Unprivileged threads may always lower themselves to `SCHED_IDLE`.
pub(crate) fn idle() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        // The crate sets the policy, then nice 0 (the priority it reads
        // for SCHED_IDLE); a thread at a higher nice may not go back to 0,
        // so only the policy says whether it worked.
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if !is_idle() {
            tracing::debug!("could not put the store thread under SCHED_IDLE: nice 19 instead");
        }
        // Ignored by the kernel under SCHED_IDLE; the fallback otherwise.
        background();
    }
}

/// Whether the calling thread runs under `SCHED_IDLE`.
#[cfg(target_os = "linux")]
fn is_idle() -> bool {
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
    matches!(
        thread_priority::thread_schedule_policy(),
        Ok(ThreadSchedulePolicy::Normal(
            NormalThreadSchedulePolicy::Idle
        ))
    )
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The calling thread, and only it, runs at nice 19 afterwards.
    #[test]
    fn lowers_the_calling_thread_only() {
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

    /// The store thread's policy: SCHED_IDLE for the calling thread only.
    #[test]
    fn idle_puts_the_calling_thread_only_under_sched_idle() {
        assert!(
            !super::is_idle(),
            "the test thread starts under SCHED_OTHER"
        );
        let idle = std::thread::spawn(|| {
            super::idle();
            super::idle();
            super::is_idle()
        })
        .join()
        .ok();
        assert_eq!(idle, Some(true));
        assert!(!super::is_idle());
    }
}
