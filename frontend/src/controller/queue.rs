//! The event queue: one listener's event at a time, in the order asked, so answers
//! apply in that order; beside it, in an order of its own, the lane of listeners
//! whose events touch no session value (`concurrent`: the server runs them beside
//! a stream, so the page need not hold them behind it); a Stop (`cancels`) skips
//! both and drops what waits of the listeners it stops.

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use keepsake_shared::config::{ComponentKind, EventKind};
use keepsake_shared::event::EventRequest;
use keepsake_shared::{ComponentId, ListenerId, SessionId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use super::{Controller, MAX_CHAIN_DEPTH};
use crate::browser_state::warn;

/// One queued run of a listener.
#[derive(Debug, Clone, Copy)]
pub(super) struct Job {
    pub(super) listener: ListenerId,
    /// How many change listeners led to this one (0: a user action, load or push).
    pub(super) depth: u8,
    /// Already retried after starting a new session.
    pub(super) retried: bool,
}

impl Controller {
    /// Queues every listener of `event` on `component`.
    pub(super) fn fire(&self, component: Option<ComponentId>, event: EventKind, depth: u8) {
        let mut listeners: Vec<ListenerId> = self
            .config
            .listeners(component, event)
            .map(|d| d.id)
            .collect();
        if let Some(component) = component {
            listeners.extend(self.slots.listeners(component, event));
        }
        for listener in listeners {
            self.enqueue(listener, depth, event == EventKind::Change);
        }
    }

    pub(super) fn enqueue(&self, listener: ListenerId, depth: u8, coalesce: bool) {
        if depth > MAX_CHAIN_DEPTH {
            warn(&format!(
                "Keepsake: listener {} not run: more than {MAX_CHAIN_DEPTH} change listeners triggered each other",
                listener.0
            ));
            return;
        }
        let (stops, concurrent) = self
            .config
            .listener(listener)
            .map(|l| (l.cancels.clone(), l.concurrent))
            .unwrap_or_default();
        if !stops.is_empty() {
            // A Stop goes at once: the stream it stops is the job being sent, and
            // what waits behind it of the listeners it stops is dropped.
            self.queue
                .borrow_mut()
                .retain(|job| !stops.contains(&job.listener));
            if let Some(this) = self.rc() {
                let job = Job {
                    listener,
                    depth,
                    retried: false,
                };
                spawn_local(async move { this.run_job(job).await });
            }
            return;
        }
        if concurrent {
            let mut beside = self.beside.borrow_mut();
            if coalesce && beside.iter().any(|job| job.listener == listener) {
                return;
            }
            beside.push_back(Job {
                listener,
                depth,
                retried: false,
            });
            drop(beside);
            if !self.beside_running.get()
                && let Some(this) = self.rc()
            {
                self.beside_running.set(true);
                spawn_local(this.run_beside());
            }
            return;
        }
        {
            let mut queue = self.queue.borrow_mut();
            // Inputs are read when a job is sent, so a waiting duplicate would only
            // send the same values again.
            if coalesce && queue.iter().any(|job| job.listener == listener) {
                return;
            }
            queue.push_back(Job {
                listener,
                depth,
                retried: false,
            });
        }
        if !self.is_quiet(listener) {
            self.status.running.set(true);
        }
        if !self.queue_running.get()
            && let Some(this) = self.rc()
        {
            self.queue_running.set(true);
            spawn_local(this.run_queue());
        }
    }

    pub(super) async fn run_queue(self: Rc<Self>) {
        loop {
            let job = self.queue.borrow_mut().pop_front();
            let Some(job) = job else { break };
            self.current.set(Some(job.listener));
            self.status.running.set(self.user_job_pending());
            self.run_job(job).await;
            self.current.set(None);
        }
        self.queue_running.set(false);
        self.status.running.set(false);
    }

    /// Runs the jobs of listeners that touch no session value, in order, beside the
    /// queue's.
    pub(super) async fn run_beside(self: Rc<Self>) {
        loop {
            let job = self.beside.borrow_mut().pop_front();
            let Some(job) = job else { break };
            self.beside_current.set(Some(job.listener));
            self.run_job(job).await;
            self.beside_current.set(None);
        }
        self.beside_running.set(false);
    }

    /// Waits for a usable session; `None` when the app cannot run at all.
    pub(super) async fn usable_session(&self) -> Option<(SessionId, u32)> {
        loop {
            if self.fatal.get() {
                return None;
            }
            if !self.restarting.get()
                && let Some(session) = self.session()
            {
                return Some((session, self.generation.get()));
            }
            TimeoutFuture::new(50).await;
        }
    }

    pub(super) fn input_value(&self, id: ComponentId) -> Value {
        match self.config.component(id).map(|c| &c.kind) {
            Some(ComponentKind::BrowserState(_)) => self.browser.input(id),
            // The server ignores them; their values never leave it.
            Some(kind) if kind.is_server_side() => Value::Null,
            // The config's components and rendered ones.
            _ => self
                .slots
                .value(id)
                .map(|s| s.get_untracked())
                .unwrap_or(Value::Null),
        }
    }

    pub(super) async fn run_job(self: &Rc<Self>, mut job: Job) {
        // A rendered listener as its region's current render has it: gone when its
        // item was removed since the job was queued.
        let found;
        let (listener, rendered) = match self.config.listener(job.listener) {
            Some(listener) => (listener, None),
            None => {
                let Some((listener, target)) = self.slots.listener(job.listener) else {
                    return;
                };
                found = listener;
                (&found, Some(target))
            }
        };
        loop {
            let Some((session, generation)) = self.usable_session().await else {
                return;
            };
            let read_at = self.browser.version();
            let request = EventRequest {
                listener: job.listener,
                inputs: listener
                    .inputs
                    .iter()
                    .map(|&id| self.input_value(id))
                    .collect(),
                held: self.browser.held_for(listener),
                rendered: rendered.clone(),
                shown: Vec::new(),
            };
            // A streaming listener's answer comes in parts, previewed as they come.
            let result = if listener.streams {
                self.send_streamed(&session, request).await
            } else {
                let app = &self.config.id;
                self.backend.run_event(app, &session, request).await
            };
            match result {
                Ok(result) => {
                    // A user's new action clears the last failure; what follows
                    // it (a chained listener after a failure) leaves it shown.
                    if job.depth == 0 && !self.is_quiet(job.listener) {
                        self.status.error.set(None);
                    }
                    let ran = result.ran.clone();
                    let failed: Vec<ListenerId> =
                        result.errors.iter().map(|e| e.listener).collect();
                    self.apply_result(result, job.depth, read_at);
                    // The chained listeners the server left to the page: after those
                    // that ran, and `.then` ones after those that failed.
                    for id in ran {
                        self.run_followers(id, true, false, job.depth);
                    }
                    for id in failed {
                        self.run_followers(id, false, false, job.depth);
                    }
                    return;
                }
                Err(error) if error.is_unknown_session() && !job.retried => {
                    job.retried = true;
                    if !self.clone().restart_session(generation).await {
                        self.show_error(&error);
                        return;
                    }
                }
                Err(error) => {
                    self.show_error(&error);
                    // The server ran nothing of it: its `.then` listeners are the
                    // page's to run, all of them.
                    self.run_followers(job.listener, false, true, job.depth);
                    return;
                }
            }
        }
    }

    /// Queues the listeners chained after `listener`: `.success` ones only if it
    /// `succeeded`; those the server runs itself only if it ran none (`all`).
    pub(super) fn run_followers(
        &self,
        listener: ListenerId,
        succeeded: bool,
        all: bool,
        depth: u8,
    ) {
        let followers: Vec<ListenerId> = self
            .config
            .followers(listener)
            .filter(|dep| {
                dep.after.is_some_and(|after| {
                    (all || !after.by_server) && (succeeded || !after.success_only)
                })
            })
            .map(|dep| dep.id)
            .collect();
        for follower in followers {
            self.enqueue(follower, depth + 1, false);
        }
    }
}
