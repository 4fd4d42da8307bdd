//! Sessions: where each session's state values live, and how sessions end.
//!
//! The store is a `moka` cache with strict LRU eviction (the session capacity) and a
//! per-entry expiry: a session with an open stream never expires; one without expires
//! `retention` after its last use. moka keeps expiries in a timer wheel, so the sweep's
//! cost grows with what expires, not with how many sessions are alive. Ended sessions
//! (expired or evicted) are handed to the app runtime, which calls the states' delete
//! callbacks — Gradio skips them on eviction; we do not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use keepsake_shared::SessionId;
use moka::notification::RemovalCause;
use moka::policy::{EvictionPolicy, Expiry};
use moka::sync::Cache;
use rand::RngCore;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::StoredResource;
use crate::value::DynValue;

/// One session. Events lock `data`; tokio's mutex is fair, so a session's events run
/// one at a time in arrival order while other sessions run in parallel.
pub(crate) struct Session {
    pub(crate) id: SessionId,
    pub(crate) data: tokio::sync::Mutex<SessionData>,
    /// Open streams (pages) attached to this session.
    streams: AtomicU32,
    /// Cancelled when the session expires or is evicted, to close its streams.
    pub(crate) ended: CancellationToken,
    /// Events per second this session may send.
    pub(crate) rate: governor::DefaultDirectRateLimiter,
}

impl Session {
    pub(crate) fn open_streams(&self) -> u32 {
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

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    Expired,
    Evicted,
}

pub(crate) type EndedSessions = mpsc::UnboundedReceiver<(Arc<Session>, EndReason)>;

struct RetentionExpiry {
    retention: Duration,
}

impl RetentionExpiry {
    fn ttl(&self, session: &Session) -> Option<Duration> {
        (session.open_streams() == 0).then_some(self.retention)
    }
}

impl Expiry<SessionId, Arc<Session>> for RetentionExpiry {
    fn expire_after_create(
        &self,
        _: &SessionId,
        session: &Arc<Session>,
        _: Instant,
    ) -> Option<Duration> {
        self.ttl(session)
    }

    fn expire_after_read(
        &self,
        _: &SessionId,
        session: &Arc<Session>,
        _: Instant,
        _: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        self.ttl(session)
    }

    fn expire_after_update(
        &self,
        _: &SessionId,
        session: &Arc<Session>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.ttl(session)
    }
}

/// All live sessions of one app.
pub(crate) struct SessionStore {
    cache: Cache<SessionId, Arc<Session>>,
    retention: Duration,
    state_count: usize,
    resource_count: usize,
    events_per_second: governor::Quota,
}

impl SessionStore {
    pub(crate) fn new(
        capacity: u64,
        retention: Duration,
        events_per_second: u32,
        state_count: usize,
        resource_count: usize,
    ) -> (Self, EndedSessions) {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        let cache = Cache::builder()
            .max_capacity(capacity)
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(RetentionExpiry { retention })
            .eviction_listener(move |_id, session: Arc<Session>, cause| {
                let reason = match cause {
                    RemovalCause::Expired => EndReason::Expired,
                    RemovalCause::Size => EndReason::Evicted,
                    // Explicit removals and replacements are not endings we cause.
                    RemovalCause::Explicit | RemovalCause::Replaced => return,
                };
                // The receiver lives as long as the runtime; if it is gone, so is the app.
                let _ = ended_tx.send((session, reason));
            })
            .build();
        let events_per_second = governor::Quota::per_second(
            std::num::NonZeroU32::new(events_per_second).unwrap_or(std::num::NonZeroU32::MIN),
        );
        let store = SessionStore {
            cache,
            retention,
            state_count,
            resource_count,
            events_per_second,
        };
        (store, ended_rx)
    }

    pub(crate) fn retention(&self) -> Duration {
        self.retention
    }

    /// Starts a session under a fresh id: 128 bits from the OS-seeded CSPRNG.
    pub(crate) fn create(&self) -> Arc<Session> {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = SessionId::from_bytes(bytes);
        let session = Arc::new(Session {
            id: id.clone(),
            data: tokio::sync::Mutex::new(SessionData {
                states: std::iter::repeat_with(|| None)
                    .take(self.state_count)
                    .collect(),
                resources: std::iter::repeat_with(|| None)
                    .take(self.resource_count)
                    .collect(),
                state_bytes: 0,
                closed: false,
            }),
            streams: AtomicU32::new(0),
            ended: CancellationToken::new(),
            rate: governor::RateLimiter::direct(self.events_per_second),
        });
        self.cache.insert(id, session.clone());
        // Apply the capacity now, so that the least recently used session is the one
        // evicted (moka otherwise batches this work).
        self.cache.run_pending_tasks();
        session
    }

    /// A live session; counts as a use (LRU order, retention clock).
    pub(crate) fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        self.cache.get(id)
    }

    /// A page attaches a stream, unless the session already has `limit` open: then
    /// `false` and nothing changes. Counting and checking are one atomic step, so
    /// concurrent attaches cannot overshoot the limit. While a stream is open the
    /// session does not expire.
    pub(crate) fn stream_opened(&self, session: &Session, limit: u32) -> bool {
        let attached = session
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .is_ok();
        if attached {
            // Re-evaluates the entry's expiry (none while a stream is open).
            let _ = self.cache.get(&session.id);
        }
        attached
    }

    /// A stream ended. Returns true if it was the session's last one.
    pub(crate) fn stream_closed(&self, session: &Session) -> bool {
        let last = session.streams.fetch_sub(1, Ordering::AcqRel) == 1;
        // Starts the retention clock.
        let _ = self.cache.get(&session.id);
        last
    }

    /// Processes expiries and evictions that are due.
    pub(crate) fn sweep(&self) {
        self.cache.run_pending_tasks();
    }

    pub(crate) fn live_sessions(&self) -> u64 {
        self.cache.entry_count()
    }
}
