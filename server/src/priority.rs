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
//! is only for work nothing waits on. Heavy work under a lock the relay
//! takes (a paste's import, a rejoiner's catch-up, a seed, a newcomer's
//! welcome), a stored room's load and the store thread (which reads a
//! room for every joiner) are never idle: in idle class, on a server whose
//! core was busy with other processes, rooms stopped relaying (their
//! document lock held by a starved thread: 1% of a core used, p99 of
//! seconds) and joins to stored rooms timed out (BENCHMARKS.md, "Issue
//! 16", item 5).
//!
//! Heavy work someone waits for is between the two ([`heavy`]): a stored
//! room's load takes a quarter of a second of CPU or more, and a paste's
//! import several ms, and at the workers' priority a member who joins a
//! heavy room again and again, or pastes in room after room, kept the
//! workers' core busy (a quiet room's keystroke p99 3 to 5 times its quiet
//! value, BENCHMARKS.md, "Interference"). So it runs at nice 10 in the
//! normal class: against a busy worker it gets about a tenth of the core
//! (weight 110 against 1024), so a keystroke's worker goes first, but it
//! is never starved the way an idle-class thread is. Only the room whose
//! lock it holds waits for it.
//!
//! Linux cannot raise a thread's priority back without privileges, so a
//! lowered thread is never one of tokio's blocking pool, which every other
//! piece of blocking work reuses: [`background`] hands its job to one
//! thread of its own, started on first use and kept, and [`heavy`] gives
//! each job a thread of its own. Other systems apply a nice value to the
//! whole process, so there nothing is lowered.
//!
//! One thread, not one per job: a lowered thread that holds a lock a worker
//! needs (the allocator's arena lock, which a worker takes to free what a
//! compaction allocated) runs only when nothing else wants the core. With a
//! thread per job, 50 rooms compacting at once made 50 idle-class threads
//! that shared that spare time, so the holder got a fiftieth of it and a
//! worker waited in `__lll_lock_wait_private` for 0.2 to 0.3 s while the
//! core was half idle (50 rooms x 4 at 40/s: keystroke p99 of 80 to 340
//! ms; BENCHMARKS.md, "Issue 16"). With one, the holder is the only thread
//! that wakes when a worker blocks on it. Jobs queue behind each other;
//! nothing waits on them but the room that asked (a member pasting
//! megabytes during a compaction, `Room::doc_with_room_for`).

use std::sync::OnceLock;
use std::thread::Thread;

use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

/// The nice value of threads that do background work (the lowest priority).
const BACKGROUND_NICE: i32 = 19;

/// The nice value of threads that do heavy work someone waits for.
const HEAVY_NICE: i32 = 10;

/// How far below the workers a thread runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Nice 10, normal class: work someone waits for, but that should
    /// yield to the workers (a stored room's load, a paste's import).
    Heavy,
    /// `SCHED_IDLE` and nice 19: work nothing waits on (compactions).
    Background,
}

/// The background work was lost (its thread panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lost;

/// A job for the background thread.
type Job = Box<dyn FnOnce() + Send>;

/// The background thread's queue and the thread to wake, `None` when it
/// could not be started. Handing a job over takes no lock the thread
/// holds: the queue is lock-free for its sender, and the thread sleeps in
/// `std::thread::park`, which `unpark` wakes with an atomic and a futex
/// wake (a channel with a blocking receiver keeps a mutex for its sleeper,
/// and a worker once waited 59 ms on it for the lowered thread).
static QUEUE: OnceLock<Option<(UnboundedSender<Job>, Thread)>> = OnceLock::new();

/// Starts the background thread: lowered once, then runs jobs in order. A
/// job that panics loses its own result (its sender is dropped), not the
/// thread.
fn start() -> Option<(UnboundedSender<Job>, Thread)> {
    let (tx, mut rx) = unbounded_channel::<Job>();
    let handle = std::thread::Builder::new()
        .name("collab-background".into())
        .spawn(move || {
            lower_this_thread(Level::Background);
            loop {
                match rx.try_recv() {
                    Ok(job) => {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                    Err(tokio::sync::mpsc::error::TryRecvError::Empty) => std::thread::park(),
                    Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
        })
        .ok()?;
    Some((tx, handle.thread().clone()))
}

/// Runs `work` on the background thread, at the lowest priority, after the
/// jobs queued before it, and returns its result. Only for work nothing
/// waits on and that holds no lock the relay or a join takes (see the
/// module documentation). When the thread cannot be started the work runs
/// on tokio's blocking pool at normal priority.
pub(crate) async fn background<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Lost> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    let job = match QUEUE.get_or_init(start) {
        Some((queue, thread)) => match queue.send(job) {
            Ok(()) => {
                thread.unpark();
                None
            }
            Err(refused) => Some(refused.0),
        },
        None => Some(job),
    };
    if let Some(job) = job {
        tracing::debug!("no thread for background work: it runs on the blocking pool");
        tokio::task::spawn_blocking(job);
    }
    rx.await.map_err(|_| Lost)
}

/// Runs `work`, heavy work someone waits for (a stored room's load, or
/// document work under one room's lock: `room::document::run`), on a
/// thread of its own at nice 10 and returns its result: below the
/// workers, never starved (see the module documentation). A thread per
/// job, not the background thread: someone waits for it, so it queues
/// behind nothing, and at nice 10 a lowered thread holding a lock a
/// worker needs still gets its share of the core. It must hold no lock
/// other rooms' relay takes. When no thread can be started it runs on
/// tokio's blocking pool at normal priority.
pub(crate) async fn heavy<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Lost> {
    // The closure is lost with a thread that cannot start: kept here to
    // run it elsewhere then.
    let job = std::sync::Arc::new(parking_lot::Mutex::new(Some(work)));
    let mine = std::sync::Arc::clone(&job);
    let spawned = std::thread::Builder::new()
        .name("collab-heavy".into())
        .spawn(move || {
            lower_this_thread(Level::Heavy);
            let work = mine.lock().take();
            work.map(|work| work())
        });
    match spawned {
        // Awaited from the blocking pool, so the runtime knows blocking
        // work is under way (tokio's paused clock in tests does not run
        // ahead of it, as it would for a thread it does not know).
        Ok(thread) => match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(Some(done))) => Ok(done),
            _ => Err(Lost),
        },
        Err(_) => {
            tracing::debug!("no thread for heavy work: it runs on the blocking pool");
            let work = job.lock().take().ok_or(Lost)?;
            tokio::task::spawn_blocking(work).await.map_err(|_| Lost)
        }
    }
}

/// Lowers the calling thread's priority for good to `level`:
/// `SCHED_IDLE` where the kernel allows it (any user may lower its own
/// threads) and nice 19 for background work, nice 10 for a load. Never
/// raises a thread already lower (a server run under `nice`). Never
/// fails: without it, work only competes with the workers.
fn lower_this_thread(level: Level) {
    #[cfg(target_os = "linux")]
    {
        let nice = match level {
            Level::Heavy => HEAVY_NICE,
            Level::Background => {
                // First: setting the policy also sets the nice value to
                // its default, which the lines after lower again.
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

    /// Every room's background work runs on one thread, so a lowered
    /// thread holding a lock a worker waits for never shares the spare
    /// time with other lowered threads (the module documentation). Jobs
    /// from many tasks at once all land on it, and a panicking job loses
    /// only its own result.
    #[test]
    fn background_jobs_share_one_thread_that_outlives_a_panic() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let threads = rt.block_on(async {
            let jobs = (0..32).map(|_| {
                tokio::spawn(super::background(|| {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                    std::thread::current().id()
                }))
            });
            let mut ids = Vec::new();
            for job in jobs {
                ids.push(job.await.unwrap().unwrap());
            }
            let lost = super::background(|| -> u8 { panic!("a job that fails") }).await;
            assert_eq!(lost, Err(super::Lost));
            ids.push(
                super::background(|| std::thread::current().id())
                    .await
                    .unwrap(),
            );
            ids
        });
        assert!(
            threads.iter().all(|t| *t == threads[0]),
            "background work ran on {} threads",
            threads
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
        assert_ne!(threads[0], std::thread::current().id());
    }

    /// Heavy work runs at nice 10 in the normal class (never idle:
    /// someone waits for it), on a thread of its own; the pool keeps its
    /// priority.
    #[test]
    fn heavy_work_runs_at_nice_10_in_the_normal_class() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap();
        let before = (policy(), nice());
        let (loading, pool) = rt.block_on(async {
            let loading = super::heavy(|| (policy(), nice())).await.unwrap();
            let pool = tokio::task::spawn_blocking(|| (policy(), nice()))
                .await
                .unwrap();
            (loading, pool)
        });
        assert_ne!(loading.0, Some(idle()), "a load in the idle class");
        assert_eq!(loading.0, before.0);
        assert_eq!(pool, before, "the blocking pool's thread was lowered");
        if before.1.unwrap_or(0) >= super::HEAVY_NICE {
            eprintln!("already at nice {:?}: the test cannot tell", before.1);
            return;
        }
        assert_eq!(loading.1, Some(super::HEAVY_NICE));
    }
}
