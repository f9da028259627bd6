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
}
