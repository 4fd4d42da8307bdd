//! Endings: what the engine does when the store reports that something ended, and
//! when a page goes away.
//!
//! Invariants kept here:
//! - **Every deletion calls the delete callback with the last value**: time-to-live,
//!   retention expiry and LRU eviction alike, once (the store reports each ending
//!   once, across instances too).
//! - **A slow delete callback delays nothing else**: each runs on a blocking thread
//!   of its own (at most [`DELETES_AT_ONCE`] at once; more wait their turn, as tasks,
//!   not threads), never on the loop that hands out the store's reports nor on a
//!   runtime worker; one that runs longer than `--event-timeout` is logged.
//! - An ended session is closed before its callbacks run: its streams end, its
//!   resources go, and no later event can bring its values back.
//! - Unload listeners run once, when a session's last page goes away, as an event
//!   of their own (same staging, same all-or-nothing commit).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use keepsake_shared::SessionId;

use super::Engine;
use crate::handler::request::Request;
use crate::session::{EndReason, Session};
use crate::state::DeleteCallback;
use crate::store::StoreEvent;
use crate::value::DynValue;

impl Engine {
    /// Handles one report of the store.
    pub(super) async fn on_store_event(self: &Arc<Self>, event: StoreEvent) {
        match event {
            StoreEvent::SessionEnded {
                id,
                session,
                reason,
                values,
            } => {
                // Off the events loop: closing waits for a running event of the
                // session, and pushes must not queue behind it.
                let engine = self.clone();
                tokio::spawn(async move { engine.end_session(id, session, reason, values).await });
            }
            StoreEvent::StateExpired { id, index, value } => {
                self.metrics.state_expiries.increment(1);
                tracing::debug!(session = id.short(), state = index, "state expired");
                self.delete(index, value);
            }
            StoreEvent::GlobalChanged { index, value } => self.push_bindings(index, &*value),
            StoreEvent::StopStreams { id, listeners } => {
                self.running.stop(&id, &listeners);
            }
            StoreEvent::Resubscribed => {
                // Changes made while the subscription was down were not heard.
                for update in self.bound_values().await {
                    let _ = self.pushes.send(update);
                }
            }
        }
    }

    /// A session expired or was evicted: close it, then call the delete callbacks
    /// with its last values.
    async fn end_session(
        &self,
        id: SessionId,
        session: Option<Arc<Session>>,
        reason: EndReason,
        values: Option<Vec<(u32, Box<dyn DynValue>)>>,
    ) {
        match reason {
            EndReason::Expired => self.metrics.sessions_expired.increment(1),
            EndReason::Evicted => self.metrics.sessions_evicted.increment(1),
        }
        let mut local = Vec::new();
        if let Some(session) = session {
            session.ended.cancel();
            local = session.data.lock().await.close();
        }
        for (index, value) in values.unwrap_or(local) {
            self.delete(index, value);
        }
        tracing::debug!(session = id.short(), ?reason, "session ended");
    }

    /// Calls state `index`'s delete callback with `value`, off this task (see the
    /// invariant above).
    fn delete(&self, index: u32, value: Box<dyn DynValue>) {
        let Some(callback) = self
            .app
            .states
            .get(index as usize)
            .and_then(|def| def.on_delete.clone())
        else {
            return;
        };
        let places = self.deletes.clone();
        let patience = self.limits.event_timeout;
        tokio::spawn(async move {
            let Ok(place) = places.acquire_owned().await else {
                return;
            };
            // The place is held until the callback returns, however long: the
            // blocking threads it can hold stay bounded.
            let run = tokio::task::spawn_blocking(move || {
                run_delete_callback(&callback, value);
                drop(place);
            });
            if tokio::time::timeout(patience, run).await.is_err() {
                tracing::warn!(
                    state = index,
                    ?patience,
                    "a state's delete callback is still running; other endings go on without it"
                );
            }
        });
    }

    /// The page of `session` went away: run the unload listeners once and release
    /// the session's resources. The values stay for the retention period.
    pub(crate) async fn unload(&self, session: &Arc<Session>) {
        let mut data = session.data.lock().await;
        if data.closed {
            return;
        }
        // No one asked: the request knows the session (and its key) only.
        let origin = match self.in_session(Request::default(), &session.id).await {
            Ok(origin) => origin,
            Err(error) => {
                tracing::warn!(%error, "the session's key for its unload listeners is unavailable");
                Request::default().in_session(session.id)
            }
        };
        for listener in &self.app.unload_listeners {
            let outcome = match self.listener(*listener) {
                Ok(listener) => {
                    self.run_locked(
                        session,
                        &mut data,
                        listener,
                        Vec::new(),
                        Default::default(),
                        &origin,
                        None,
                    )
                    .await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                tracing::warn!(session = session.id.short(), %error, "unload listener failed");
            }
        }
        for resource in &mut data.resources {
            *resource = None;
        }
        tracing::debug!(session = session.id.short(), "session unloaded");
    }
}

/// Most delete callbacks running at once, each on a blocking thread.
pub(super) const DELETES_AT_ONCE: usize = 16;

fn run_delete_callback(callback: &DeleteCallback, value: Box<dyn DynValue>) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| callback(value))).is_err() {
        tracing::error!("a state's delete callback panicked");
    }
}
