//! Where a sync handler runs: on tokio's blocking threads, or inline on the worker.
//!
//! A sync handler may block (a file, a database, a long computation), so it runs on
//! the blocking threads, where the event time-out cuts it off and it holds up no
//! other session. But handing work to another thread and back costs far more than a
//! quick handler itself: with the cart demo, server on one core, running every sync
//! handler on the blocking threads took Keepsake from 90% of bare axum's throughput
//! to 34–41%. So a handler earns the inline path:
//!
//! - on the blocking threads, a run is *quick* if its thread spent at most [`QUICK`]
//!   of CPU time and never waited (no voluntary context switch, from
//!   `getrusage(RUSAGE_THREAD)`: being preempted by other threads does not count
//!   against it, sleeping or waiting on I/O does); elsewhere than Linux, if it took at
//!   most [`QUICK`] of wall time;
//! - after [`PROVEN`] quick runs in a row it runs inline; any other run (or a panic)
//!   starts the count again;
//! - an inline run longer than [`BLOCKED`] marks it as blocking: it runs on the
//!   blocking threads from then on, and a warning is logged;
//! - one run of a handler at a time is inline; a run that starts while another is
//!   inline goes to the blocking threads.
//!
//! The one case this does not cut off: a handler that was quick [`PROVEN`] times in a
//! row and then blocks holds one worker for that one run (its event still lands
//! whole or not at all; the answer comes when the handler returns). Its runs that
//! start meanwhile, and every later one, are cut off at the time-out.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A run on the blocking threads that costs at most this counts towards inline.
pub(crate) const QUICK: Duration = Duration::from_micros(100);
/// Quick runs in a row before a handler runs inline.
pub(crate) const PROVEN: u32 = 64;
/// An inline run longer than this (wall time, so preemption on a busy machine must
/// not be mistaken for blocking) sends the handler to the blocking threads for good.
pub(crate) const BLOCKED: Duration = Duration::from_millis(10);

/// The recent pace of one listener's sync handler.
#[derive(Debug, Default)]
pub(crate) struct SyncPace {
    quick_runs: AtomicU32,
    blocked: AtomicBool,
    /// A run is inline now: at most one is, so a handler that starts blocking
    /// holds one worker, not every worker its concurrent runs reach.
    running_inline: AtomicBool,
}

/// The right to run inline, held for one run.
pub(crate) struct InlineRun<'a>(&'a SyncPace);

impl Drop for InlineRun<'_> {
    fn drop(&mut self) {
        self.0.running_inline.store(false, Ordering::Release);
    }
}

impl SyncPace {
    /// Whether the next run may be inline (proven quick, never blocked).
    pub(crate) fn inline(&self) -> bool {
        !self.blocked.load(Ordering::Relaxed) && self.quick_runs.load(Ordering::Relaxed) >= PROVEN
    }

    /// The right to run inline now, if the handler has earned it and no other run
    /// of it is inline.
    pub(crate) fn try_inline(&self) -> Option<InlineRun<'_>> {
        (self.inline() && !self.running_inline.swap(true, Ordering::Acquire))
            .then_some(InlineRun(self))
    }

    /// Records a run on the blocking threads: quick, or not (or a panic: `None`).
    pub(crate) fn ran_blocking(&self, quick: Option<bool>) {
        if quick == Some(true) {
            let _ = self
                .quick_runs
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < PROVEN).then_some(n + 1)
                });
        } else {
            self.quick_runs.store(0, Ordering::Relaxed);
        }
    }

    /// Records an inline run's wall time (`None`: it panicked). Returns true if the
    /// run showed that the handler blocks.
    pub(crate) fn ran_inline(&self, took: Option<Duration>) -> bool {
        match took {
            Some(took) if took <= BLOCKED => false,
            Some(_) => {
                self.blocked.store(true, Ordering::Relaxed);
                true
            }
            None => {
                self.quick_runs.store(0, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Runs `run` on this (blocking) thread and says whether it was quick.
pub(crate) fn measured<T>(run: impl FnOnce() -> T) -> (T, bool) {
    let before = usage::now();
    let started = Instant::now();
    let outcome = run();
    let wall = started.elapsed();
    let quick = match (before, usage::now()) {
        (Some(before), Some(after)) => {
            after.cpu.saturating_sub(before.cpu) <= QUICK && after.waits == before.waits
        }
        _ => wall <= QUICK,
    };
    (outcome, quick)
}

/// This thread's CPU time and voluntary context switches.
mod usage {
    use std::time::Duration;

    pub(super) struct Usage {
        pub(super) cpu: Duration,
        pub(super) waits: std::ffi::c_long,
    }

    #[cfg(target_os = "linux")]
    pub(super) fn now() -> Option<Usage> {
        use nix::sys::resource::{UsageWho, getrusage};
        let usage = getrusage(UsageWho::RUSAGE_THREAD).ok()?;
        let micros = |t: nix::sys::time::TimeVal| {
            Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
        };
        Some(Usage {
            cpu: micros(usage.user_time()) + micros(usage.system_time()),
            waits: usage.voluntary_context_switches(),
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn now() -> Option<Usage> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handler_earns_the_inline_path_and_loses_it_for_good_by_blocking() {
        let pace = SyncPace::default();
        for _ in 0..PROVEN - 1 {
            pace.ran_blocking(Some(true));
        }
        assert!(!pace.inline(), "not yet proven");
        // A run that was not quick, or a panic, starts the count again.
        pace.ran_blocking(Some(false));
        for _ in 0..PROVEN - 1 {
            pace.ran_blocking(Some(true));
        }
        pace.ran_blocking(None);
        assert!(!pace.inline());
        for _ in 0..PROVEN {
            pace.ran_blocking(Some(true));
        }
        assert!(pace.inline());
        // Inline and merely preempted: stays inline.
        assert!(!pace.ran_inline(Some(BLOCKED)));
        assert!(pace.inline());
        // Inline and blocking: never inline again, however quick afterwards.
        assert!(pace.ran_inline(Some(BLOCKED * 2)));
        for _ in 0..PROVEN * 2 {
            pace.ran_blocking(Some(true));
        }
        assert!(!pace.inline());
    }

    #[test]
    fn one_run_at_a_time_is_inline() {
        let pace = SyncPace::default();
        assert!(pace.try_inline().is_none(), "not proven");
        for _ in 0..PROVEN {
            pace.ran_blocking(Some(true));
        }
        let first = pace.try_inline().expect("proven");
        assert!(pace.try_inline().is_none(), "another run is inline");
        drop(first);
        assert!(pace.try_inline().is_some());
    }

    #[test]
    fn sleeping_is_not_quick_however_short_and_spinning_briefly_is() {
        let ((), quick) = measured(|| std::thread::sleep(Duration::from_micros(20)));
        assert!(!quick, "a sleep is a wait");
        let ((), quick) = measured(|| {
            std::hint::black_box((0..1_000u64).sum::<u64>());
        });
        assert!(quick);
        // Spin until this thread has used half a millisecond of CPU (by its own
        // account, so that being preempted by a busy machine cannot shorten it).
        let cpu = || usage::now().map_or(Duration::ZERO, |u| u.cpu);
        let ((), quick) = measured(|| {
            let (started, spun) = (Instant::now(), cpu());
            while cpu().saturating_sub(spun) < QUICK * 5 && started.elapsed() < QUICK * 50 {
                std::hint::black_box(0);
            }
        });
        assert!(!quick, "half a millisecond of CPU is not quick");
    }
}
