//! Background document work runs below the runtime's workers, as the CPU
//! sees it; work that anyone waits for does not.
//!
//! A compaction has nobody waiting for it and holds no lock: the relay and
//! joins go on while it runs (`collab_doc::CompactionJob`). On a small
//! machine (two cores, or a server pinned to one) the thread doing it
//! shares a core with the workers, and a worker woken by a keystroke would
//! wait for that thread's time slice: about 5 ms under Linux's scheduler,
//! 15 times a quiet room's p99 (BENCHMARKS.md, "Interference"). So it runs
//! in the lowest class, `SCHED_IDLE` (and nice 19 where that is refused):
//! a woken worker preempts it at once.
//!
//! Idle class is starvation by design: the thread gets about 0.3% of a
//! core that any normal thread keeps busy (weight 3 against 1024). So it
//! is only for work nothing waits on. Work under a lock the relay takes (a
//! paste's import, a rejoiner's catch-up, a seed), a stored room's load
//! and the store thread (which reads a room for every joiner) run at
//! normal priority: in idle class, on a server whose core was busy with
//! other processes, rooms stopped relaying (their document lock held by a
//! starved thread: 1% of a core used, p99 of seconds) and joins to stored
//! rooms timed out (BENCHMARKS.md, "Issue 16", item 5).
//!
//! A stored room's load is between the two: its joiner waits for it, but
//! a heavy room takes a quarter of a second of CPU or more, and a member
//! who joins it again and again kept the workers' core busy at their
//! priority (a quiet room's keystroke p99 5.3 times its quiet value,
//! BENCHMARKS.md, "Interference"). So it runs at nice 10 in the normal
//! class ([`load`]): against a busy worker it gets about a tenth of the
//! core (weight 110 against 1024), so a keystroke's worker goes first,
//! but it is never starved the way an idle-class thread is.
//!
//! Linux cannot raise a thread's priority back without privileges, so a
//! lowered thread is never one of tokio's blocking pool, which every other
//! piece of blocking work reuses: [`background`] and [`load`] give each
//! job a thread of its own. Other systems apply a nice value to the whole
//! process, so there nothing is lowered.

/// The nice value of threads that do background work (the lowest priority).
const BACKGROUND_NICE: i32 = 19;

/// The nice value of threads that load a stored room (`Level::Load`).
const LOAD_NICE: i32 = 10;

/// How far below the workers a job's thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Nice 10, normal class: work a joiner waits for, but that should
    /// yield to the workers (a stored room's load).
    Load,
    /// `SCHED_IDLE` and nice 19: work nothing waits on (compactions).
    Background,
}

impl Level {
    fn thread_name(self) -> &'static str {
        match self {
            Level::Load => "collab-load",
            Level::Background => "collab-background",
        }
    }
}

/// The background work was lost (its thread panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lost;

/// Runs `work` on a thread of its own at the lowest priority and returns
/// its result. Only for work nothing waits on and that holds no lock the
/// relay or a join takes (see the module documentation). When no thread
/// can be started it runs on tokio's blocking pool at normal priority.
pub(crate) async fn background<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Lost> {
    on_own_thread(Level::Background, work).await
}

/// Runs `work`, a stored room's load, on a thread of its own at nice 10
/// and returns its result: below the workers, never starved (see the
/// module documentation). It must hold no lock the relay takes. When no
/// thread can be started it runs on tokio's blocking pool at normal
/// priority.
pub(crate) async fn load<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Lost> {
    on_own_thread(Level::Load, work).await
}

async fn on_own_thread<R: Send + 'static>(
    level: Level,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Lost> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let work = std::sync::Arc::new(parking_lot::Mutex::new(Some((work, tx))));
    let job = std::sync::Arc::clone(&work);
    let spawned = std::thread::Builder::new()
        .name(level.thread_name().into())
        .spawn(move || {
            lower_this_thread(level);
            if let Some((work, tx)) = job.lock().take() {
                let _ = tx.send(work());
            }
        });
    if spawned.is_err() {
        tracing::debug!(
            ?level,
            "no thread for the work: it runs on the blocking pool"
        );
        if let Some((work, tx)) = work.lock().take() {
            tokio::task::spawn_blocking(move || {
                let _ = tx.send(work());
            });
        }
    }
    rx.await.map_err(|_| Lost)
}

/// Lowers the calling thread's priority for good to `level`:
/// `SCHED_IDLE` where the kernel allows it (any user may lower its own
/// threads) and nice 19 for background work, nice 10 for a load. Never
/// fails: without it, work only competes with the workers.
fn lower_this_thread(level: Level) {
    #[cfg(target_os = "linux")]
    {
        let nice = match level {
            Level::Load => LOAD_NICE,
            Level::Background => {
                // First: setting the policy also sets the nice value to
                // its default, which the line after lowers again.
                use thread_priority::{
                    NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
                    set_thread_priority_and_policy, thread_native_id,
                };
                if let Err(e) = set_thread_priority_and_policy(
                    thread_native_id(),
                    ThreadPriority::Min,
                    ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                ) {
                    tracing::debug!(error = ?e, "could not put a background thread in SCHED_IDLE");
                }
                BACKGROUND_NICE
            }
        };
        let me = rustix::thread::gettid();
        // Never raised: a thread already lower (the server run under
        // `nice`) stays where it is.
        let now = rustix::process::getpriority_process(Some(me)).unwrap_or(0);
        if now < nice
            && let Err(e) = rustix::process::setpriority_process(Some(me), nice)
        {
            tracing::debug!(error = %e, ?level, "could not lower a thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = level;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    fn idle() -> ThreadSchedulePolicy {
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
    }

    fn policy() -> Option<ThreadSchedulePolicy> {
        thread_priority::unix::thread_schedule_policy().ok()
    }

    fn nice() -> Option<i32> {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
    }

    /// Background work runs in SCHED_IDLE at nice 19; the caller, and the
    /// blocking pool's thread after it, keep their priority (one thread
    /// in the pool: before, the work lowered a pool thread for good, and
    /// the next piece of blocking work, a paste under the room's lock or
    /// a joiner's load, ran starved on it).
    #[test]
    fn background_work_lowers_only_a_thread_of_its_own() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let before = (policy(), nice());
        assert_ne!(before.0, Some(idle()), "the test thread starts idle");
        let (lowered, pool) = rt.block_on(async {
            let lowered = super::background(|| (policy(), nice())).await.unwrap();
            let pool = tokio::task::spawn_blocking(|| (policy(), nice()))
                .await
                .unwrap();
            (lowered, pool)
        });
        assert_eq!(lowered.0, Some(idle()));
        assert_eq!(pool.0, before.0, "the blocking pool's thread was lowered");
        assert_eq!((policy(), nice()), before);
        if before.1.unwrap_or(0) >= super::BACKGROUND_NICE {
            // Tests run under `nice -n 19`: nothing lower to observe.
            eprintln!("already at nice {:?}: the test cannot tell", before.1);
            return;
        }
        assert_eq!(lowered.1, Some(super::BACKGROUND_NICE));
        assert_eq!(pool.1, before.1);
    }

    /// A load runs at nice 10 in the normal class (never idle: its joiner
    /// waits for it), on a thread of its own; the pool keeps its priority.
    #[test]
    fn a_load_runs_at_nice_10_in_the_normal_class() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let before = (policy(), nice());
        let (loading, pool) = rt.block_on(async {
            let loading = super::load(|| (policy(), nice())).await.unwrap();
            let pool = tokio::task::spawn_blocking(|| (policy(), nice()))
                .await
                .unwrap();
            (loading, pool)
        });
        assert_ne!(loading.0, Some(idle()), "a load in the idle class");
        assert_eq!(loading.0, before.0);
        assert_eq!(pool, before, "the blocking pool's thread was lowered");
        if before.1.unwrap_or(0) >= super::LOAD_NICE {
            eprintln!("already at nice {:?}: the test cannot tell", before.1);
            return;
        }
        assert_eq!(loading.1, Some(super::LOAD_NICE));
    }
}
