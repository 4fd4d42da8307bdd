//! Stopping running streams: a listener that `cancels` others (a Stop button) stops
//! the streams of those listeners running in its session, here and, with Redis, on
//! every instance (the notice goes over the store's events channel).
//!
//! The stop is signalled before the stopping event waits for its session: the
//! stream holds the session until it lands, so a stop that waited its turn would
//! never come. A stopped stream lands with the last item it yielded, as a finished
//! one does (what was streamed so far is kept, as chat products do), unless its
//! listener keeps nothing when stopped ([`crate::ListenerRef::discard_when_stopped`]);
//! stopped before any item, it writes nothing. Either way the event's usual rule
//! holds: all of it lands, or none.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use keepsake_shared::{ListenerId, SessionId};
use tokio_util::sync::CancellationToken;

use super::Engine;

/// Each running stream's registration number and stop token, by session and
/// listener.
type Streams = HashMap<(SessionId, ListenerId), Vec<(u64, CancellationToken)>>;

/// The streams running in this process, by session and listener.
#[derive(Default)]
pub(crate) struct Running {
    streams: Mutex<Streams>,
    next: AtomicU64,
}

/// A running stream's place in [`Running`]; leaves it when dropped.
pub(crate) struct Registered<'a> {
    running: &'a Running,
    key: (SessionId, ListenerId),
    id: u64,
    token: CancellationToken,
}

impl Registered<'_> {
    /// Cancelled when the stream is to stop.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut streams = self.running.lock();
        if let Some(tokens) = streams.get_mut(&self.key) {
            tokens.retain(|(id, _)| *id != self.id);
            if tokens.is_empty() {
                streams.remove(&self.key);
            }
        }
    }
}

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        // A panic while holding this lock leaves the map whole (each step is one
        // insert or remove): go on with it.
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a stream of `listener` in `session`.
    pub(crate) fn register(&self, session: SessionId, listener: ListenerId) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let key = (session, listener);
        self.lock()
            .entry(key)
            .or_default()
            .push((id, token.clone()));
        Registered {
            running: self,
            key,
            id,
            token,
        }
    }

    /// Stops the running streams of `listeners` in `session`; how many there were.
    pub(crate) fn stop(&self, session: &SessionId, listeners: &[ListenerId]) -> usize {
        let streams = self.lock();
        let mut stopped = 0;
        for listener in listeners {
            for (_, token) in streams.get(&(*session, *listener)).into_iter().flatten() {
                token.cancel();
                stopped += 1;
            }
        }
        stopped
    }
}

impl Engine {
    /// Stops the streams of `listener` in `session` running in this process (a
    /// reply nobody reads any more, `server/replies.rs`). A session runs one stream
    /// of a listener at a time (it holds the session), unless the listener is
    /// `concurrent`: then its other streams in the session stop too.
    pub(crate) fn stop_here(&self, session: &SessionId, listener: ListenerId) {
        let stopped = self.running.stop(session, &[listener]);
        tracing::debug!(session = %session.short(), stopped, "an abandoned reply stopped");
    }

    /// Stops the streams of `listeners` running in `session`, on this instance and
    /// (with Redis) on the others.
    pub(super) async fn stop_streams(&self, session: &SessionId, listeners: &[ListenerId]) {
        let stopped = self.running.stop(session, listeners);
        tracing::debug!(session = %session.short(), stopped, "stop requested");
        if let Err(error) = self.store.announce_stop(session, listeners).await {
            tracing::warn!(%error, "the stop could not be announced to other instances");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_reaches_the_named_listeners_streams_of_that_session_only() {
        let running = Running::default();
        let (one, two) = (
            SessionId::from_bytes([1; 16]),
            SessionId::from_bytes([2; 16]),
        );
        let target = running.register(one, ListenerId(0));
        let other_listener = running.register(one, ListenerId(1));
        let other_session = running.register(two, ListenerId(0));
        assert_eq!(running.stop(&one, &[ListenerId(0)]), 1);
        assert!(target.token().is_cancelled());
        assert!(!other_listener.token().is_cancelled());
        assert!(!other_session.token().is_cancelled());
        // A stream that ended leaves: a later stop finds nothing.
        drop(target);
        assert_eq!(running.stop(&one, &[ListenerId(0)]), 0);
        assert!(running.lock().contains_key(&(one, ListenerId(1))));
        drop((other_listener, other_session));
        assert!(running.lock().is_empty());
    }
}
