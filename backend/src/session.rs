//! Sessions as the engine sees them, whichever store keeps their values.
//!
//! A [`Session`] is this process's handle on one session: the fair mutex that orders
//! its events, its rate limiter, its resources and the token that closes its streams.
//! The memory store keeps the values themselves in [`SessionData`]; the Redis store
//! loads them into it for each event and writes the changed ones back.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use keepsake_shared::SessionId;
use tokio_util::sync::CancellationToken;

use crate::state::StoredResource;
use crate::value::DynValue;

/// One session. Events lock `data`; tokio's mutex is fair, so a session's events run
/// one at a time in arrival order while other sessions run in parallel.
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) data: tokio::sync::Mutex<SessionData>,
    /// Open streams (pages) attached to this session through this process.
    pub(crate) streams: AtomicU32,
    /// Cancelled when the session expires or is evicted, to close its streams.
    pub(crate) ended: CancellationToken,
    /// Events per second this session may send.
    pub(crate) rate: EventRate,
}

/// A session's events-per-second limiter, on std's monotonic clock. Governor's default
/// clock (quanta) reads CPUID and calibrates for every limiter built: with one limiter
/// per session that was 4% of the server's CPU under load, and it made each idle
/// session bigger.
pub(crate) type EventRate = governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    governor::clock::MonotonicClock,
    governor::middleware::NoOpMiddleware<Instant>,
>;

impl Session {
    pub(crate) fn new(
        id: SessionId,
        state_count: usize,
        resource_count: usize,
        events_per_second: governor::Quota,
    ) -> Self {
        Session {
            id,
            data: tokio::sync::Mutex::new(SessionData {
                states: std::iter::repeat_with(|| None).take(state_count).collect(),
                resources: std::iter::repeat_with(|| None)
                    .take(resource_count)
                    .collect(),
                state_bytes: 0,
                closed: false,
            }),
            streams: AtomicU32::new(0),
            ended: CancellationToken::new(),
            rate: EventRate::direct_with_clock(events_per_second, governor::clock::MonotonicClock),
        }
    }

    pub(crate) fn open_feeds(&self) -> u32 {
        self.streams.load(Ordering::Acquire)
    }
}

/// A stored state value and when it was last written.
pub(crate) struct StoredState {
    pub(crate) value: Box<dyn DynValue>,
    pub(crate) written_at: Instant,
    /// Size of its JSON encoding when written (0 for a default not yet written).
    pub(crate) bytes: usize,
}

/// The values of one session, indexed like the app's states and resources.
pub(crate) struct SessionData {
    pub(crate) states: Vec<Option<StoredState>>,
    pub(crate) resources: Vec<Option<StoredResource>>,
    /// Sum of `bytes` over `states`, checked against the per-session limit.
    pub(crate) state_bytes: usize,
    /// Set once the session has ended; later events must not resurrect values.
    pub(crate) closed: bool,
}

impl SessionData {
    /// Empties the session: its values (for the delete callbacks) and resources go,
    /// and no later event may bring values back.
    pub(crate) fn close(&mut self) -> Vec<(u32, Box<dyn DynValue>)> {
        self.closed = true;
        self.state_bytes = 0;
        for resource in &mut self.resources {
            *resource = None;
        }
        self.states
            .iter_mut()
            .enumerate()
            .filter_map(|(index, slot)| Some((index as u32, slot.take()?.value)))
            .collect()
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    Expired,
    Evicted,
}
