//! Timer ticks (`ComponentKind::Timer`): the page runs a timer's `tick` listeners
//! every interval while it is active (the clock itself is the view's:
//! `crate::timer`).
//!
//! A tick never piles up: while a tick listener of the timer is waiting in the queue
//! or on its way, the next tick is skipped, so a slow listener (or a slow network)
//! makes the timer tick less often, never queue events. A tick listener's job is
//! quiet: it shows no "Running…" (it would flash, and be announced, every interval)
//! and does not clear an error the user's own action left.

use keepsake_shared::config::EventKind;
use keepsake_shared::{ComponentId, ListenerId};
use leptos::prelude::WithUntracked as _;

use super::{Controller, PageHandle};

impl Controller {
    /// `timer`'s interval has passed: run its tick listeners, unless it is stopped
    /// or one of them is still queued or running.
    pub fn tick(&self, timer: ComponentId) {
        let active = self
            .slots
            .props(timer)
            .is_some_and(|p| p.with_untracked(|p| p.active));
        if !active || self.fatal.get() {
            return;
        }
        let listeners: Vec<ListenerId> = self
            .config
            .listeners(Some(timer), EventKind::Tick)
            .map(|d| d.id)
            .collect();
        let pending = |id: &ListenerId| {
            self.current.get() == Some(*id)
                || self.beside_current.get() == Some(*id)
                || self.queue.borrow().iter().any(|j| j.listener == *id)
                || self.beside.borrow().iter().any(|j| j.listener == *id)
        };
        if listeners.iter().any(pending) {
            return;
        }
        self.fire(Some(timer), EventKind::Tick, 0);
    }

    /// Whether `listener` runs on timers' ticks only (its jobs are quiet).
    pub(super) fn is_quiet(&self, listener: ListenerId) -> bool {
        self.config.listener(listener).is_some_and(|d| {
            !d.triggers.is_empty() && d.triggers.iter().all(|t| t.event == EventKind::Tick)
        })
    }

    /// Whether a job that is not quiet is running or waiting: what "Running…" shows.
    pub(super) fn user_job_pending(&self) -> bool {
        self.current.get().is_some_and(|id| !self.is_quiet(id))
            || self
                .queue
                .borrow()
                .iter()
                .any(|job| !self.is_quiet(job.listener))
    }
}

impl PageHandle {
    pub fn tick(self, timer: ComponentId) {
        if let Some(c) = self.get() {
            c.tick(timer);
        }
    }
}
