//! Per-state time-to-live for the memory store: one `DelayQueue` of (session, state)
//! timers, reset whenever the state is written again. When one fires, the value is
//! taken out of the session (if it was not written since) and reported to the engine
//! as [`StoreEvent::StateExpired`], which calls the delete callback.
//!
//! Why a task with a queue rather than a timer per write: a write only sends a
//! message, and a state written on every event resets one entry instead of piling up
//! sleeping tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use keepsake_shared::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;

use super::{StoreEvent, StoreEvents};
use crate::session::Session;

struct TtlRequest {
    session: Weak<Session>,
    state: u32,
    ttl: Duration,
}

/// The timers of one app's states.
pub(super) struct TtlTimers {
    requests: mpsc::UnboundedSender<TtlRequest>,
    /// Taken by `start`.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<TtlRequest>>>,
    events: StoreEvents,
}

impl TtlTimers {
    pub(super) fn new(events: StoreEvents) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        TtlTimers {
            requests,
            receiver: Mutex::new(Some(receiver)),
            events,
        }
    }

    /// (Re)starts state `state`'s timer in `session`.
    pub(super) fn schedule(&self, session: &Arc<Session>, state: u32, ttl: Duration) {
        let _ = self.requests.send(TtlRequest {
            session: Arc::downgrade(session),
            state,
            ttl,
        });
    }

    pub(super) fn start(&self, shutdown: CancellationToken) {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(receiver) = receiver {
            tokio::spawn(run(receiver, self.events.clone(), shutdown));
        }
    }
}

async fn run(
    mut requests: mpsc::UnboundedReceiver<TtlRequest>,
    events: StoreEvents,
    shutdown: CancellationToken,
) {
    let mut queue: DelayQueue<(Weak<Session>, SessionId, u32, Duration)> = DelayQueue::new();
    let mut keys = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => {
                let Some(request) = request else { return };
                let Some(session) = request.session.upgrade() else { continue };
                let key = (session.id, request.state);
                match keys.get(&key) {
                    Some(existing) => queue.reset(existing, request.ttl),
                    None => {
                        let entry = queue.insert(
                            (request.session, session.id, request.state, request.ttl),
                            request.ttl,
                        );
                        keys.insert(key, entry);
                    }
                }
            }
            Some(expired) = futures::future::poll_fn(|cx| queue.poll_expired(cx)) => {
                let (session, id, state, ttl) = expired.into_inner();
                keys.remove(&(id, state));
                if let Some(session) = session.upgrade() {
                    // Off this loop: the session may be running a long event.
                    tokio::spawn(expire(session, state, ttl, events.clone()));
                }
            }
        }
    }
}

/// Takes state `index` out of `session` unless it was written within `ttl`.
async fn expire(session: Arc<Session>, index: u32, ttl: Duration, events: StoreEvents) {
    let mut data = session.data.lock().await;
    if data.closed {
        return;
    }
    let Some(slot) = data.states.get_mut(index as usize) else {
        return;
    };
    let due = slot.as_ref().is_some_and(|s| s.written_at.elapsed() >= ttl);
    if due && let Some(stored) = slot.take() {
        data.state_bytes = data.state_bytes.saturating_sub(stored.bytes);
        let _ = events.send(StoreEvent::StateExpired {
            id: session.id,
            index,
            value: stored.value,
        });
    }
}
