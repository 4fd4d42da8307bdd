//! The store seam: where session values and globals are kept, in this process
//! ([`memory`], the default) or in Redis ([`redis`], `--store redis://...`), chosen at
//! start-up. The engine calls the methods of [`Store`] and never asks which one it is.
//!
//! What the seam promises, whichever store is behind it:
//! - values cross it decoded: codecs, envelopes and migrations stay inside the store;
//! - an event's writes, session values and globals together, land in one step
//!   ([`Store::commit`]) or not at all; dropping a [`Lease`] or [`GlobalHold`] without
//!   committing gives it back;
//! - everything that ends (a session's retention, an eviction, a state's time-to-live)
//!   and every global change is reported once, as a [`StoreEvent`], on the channel the
//!   engine handed to [`Store::open`];
//! - capacity eviction takes the least recently used session without an open page,
//!   and when every session has one, [`Store::create`] refuses with
//!   [`StoreError::AtCapacity`] rather than evict anybody.

pub(crate) mod memory;
mod memory_ttl;
pub(crate) mod redis;

use std::sync::Arc;
use std::time::Duration;

use keepsake_shared::SessionId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::session::{EndReason, Session, SessionData};
use crate::settings::Settings;
use crate::value::{Codec, Decoded, DynValue};

/// Why a store operation failed. `From<StoreError> for ApiError` lives in
/// `error.rs`: storage knows nothing of HTTP.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{0}")]
    Unavailable(String),
    #[error("unknown session")]
    UnknownSession,
    #[error("lease lost")]
    LeaseLost,
    #[error("locked by another instance for {0:?}")]
    Busy(Duration),
    #[error("every session has an open page")]
    AtCapacity,
    #[error("a value could not be encoded: {0}")]
    Encode(String),
}

/// What asking a store to attach one more stream to a session gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FeedOpened {
    Attached,
    /// The session has as many streams as it may.
    Full,
    /// The session ended (expired or evicted) before the stream could attach.
    UnknownSession,
}

/// What the store tells the engine, on the channel given to [`Store::open`].
pub(crate) enum StoreEvent {
    /// A session expired or was evicted. `session` is this process's handle, if it
    /// has one. `values` are its last values as a store outside this process held
    /// them, or `None` when they are the session's own data (the memory store): a
    /// copy an event loaded from Redis is not a value of the session.
    SessionEnded {
        id: SessionId,
        session: Option<Arc<Session>>,
        reason: EndReason,
        values: Option<Vec<(u32, Box<dyn DynValue>)>>,
    },
    /// A state's time-to-live ran out; `value` is its last value.
    StateExpired {
        id: SessionId,
        index: u32,
        value: Box<dyn DynValue>,
    },
    /// A global changed (here or on another instance).
    GlobalChanged {
        index: u32,
        value: Box<dyn DynValue>,
    },
    /// Changes may have been missed (the Redis subscription was re-established).
    Resubscribed,
    /// Another instance was asked to stop these listeners' streams in a session.
    StopStreams {
        id: SessionId,
        listeners: Vec<keepsake_shared::ListenerId>,
    },
}

pub(crate) type StoreEvents = mpsc::UnboundedSender<StoreEvent>;

/// An event's hold on its session, from [`Store::begin`] to [`Store::commit`]. With
/// Redis it is the session's lease; dropped without a commit, it is given back.
pub(crate) struct Lease {
    redis: Option<redis::RedisLease>,
    /// States read in an older version and migrated: stored again by the commit.
    pub(crate) migrated: Vec<u32>,
}

impl Lease {
    /// What keeps this hold, and the store's hold on the event's globals, while the
    /// event runs: with Redis, renewals of the lease and locks (sized once, they
    /// would run out under a stream of minutes); in memory, nothing to do.
    pub(crate) fn keep(&self, globals: Option<&GlobalHold>) -> Keep {
        Keep(
            self.redis
                .as_ref()
                .map(|lease| lease.renewal(globals.and_then(|hold| hold.redis.as_ref()))),
        )
    }
}

/// See [`Lease::keep`].
pub(crate) struct Keep(Option<redis::Renewal>);

impl Keep {
    /// Runs `work` (the event's listeners) while keeping the hold: with Redis, beside
    /// the renewals, failing at once with why if the hold is found lost; in memory,
    /// `work` alone (no timer, nothing polled beside it on every event).
    pub(crate) async fn during<T>(
        self,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, StoreError> {
        match self.0 {
            None => Ok(work.await),
            Some(renewal) => tokio::select! {
                done = work => Ok(done),
                lost = renewal.run() => Err(lost),
            },
        }
    }
}

/// The store's part of the locks on the globals an event writes (the engine holds
/// this process's writer locks). Dropped without a commit, it is given back.
pub(crate) struct GlobalHold {
    redis: Option<redis::RedisGlobalHold>,
}

impl GlobalHold {
    /// Nothing held in the store (the memory store, or an event writing no global).
    pub(crate) fn none() -> Self {
        GlobalHold { redis: None }
    }
}

/// What an event writes: its session's states (index, value, JSON size), the
/// defaults it made (stored so a factory runs once per session), and the globals it
/// changed.
#[derive(Default)]
pub(crate) struct Commit {
    pub(crate) states: Vec<(u32, Box<dyn DynValue>, usize)>,
    pub(crate) defaults: Vec<u32>,
    pub(crate) globals: GlobalWrites,
}

/// Globals an event changed: index and new value.
pub(crate) type GlobalWrites = Vec<(u32, Box<dyn DynValue>)>;

/// The store an app's engine uses. One per app, so the size of its variants does
/// not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
    Memory(memory::MemoryStore),
    Redis(Arc<redis::RedisStore>),
}

impl Store {
    /// The store `settings` name, for `app`. Background work starts with
    /// [`Store::start`].
    pub(crate) fn open(
        app: Arc<App>,
        settings: &Settings,
        events: StoreEvents,
    ) -> Result<Store, String> {
        let sessions = SessionShape {
            state_count: app.states.len(),
            resource_count: app.resources.len(),
            events_per_second: governor::Quota::per_second(
                std::num::NonZeroU32::new(settings.max_events_per_second)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            ),
        };
        if settings.store == "memory" {
            Ok(Store::Memory(memory::MemoryStore::new(
                app, settings, sessions, events,
            )))
        } else if settings.store.starts_with("redis://") || settings.store.starts_with("rediss://")
        {
            let store = redis::RedisStore::open(app, settings, sessions, events)?;
            Ok(Store::Redis(Arc::new(store)))
        } else {
            Err(format!(
                "unknown store {:?}: use `memory` or a redis:// URL",
                settings.store
            ))
        }
    }

    /// Starts the store's background work (time-to-live timers in memory, the events
    /// channel with Redis); it ends with `shutdown`.
    pub(crate) fn start(&self, shutdown: CancellationToken) {
        match self {
            Store::Memory(store) => store.start(shutdown),
            Store::Redis(store) => {
                tokio::spawn(store.clone().listen(shutdown));
            }
        }
    }

    pub(crate) fn retention(&self) -> Duration {
        match self {
            Store::Memory(store) => store.retention(),
            Store::Redis(store) => store.retention(),
        }
    }

    /// Starts a session under `id`, evicting the least recently used session
    /// without an open page if the capacity is reached.
    pub(crate) async fn create(&self, id: SessionId) -> Result<Arc<Session>, StoreError> {
        match self {
            Store::Memory(store) => store.create(id),
            Store::Redis(store) => store.create(id).await,
        }
    }

    /// A live session (a use: LRU order and retention clock move).
    pub(crate) async fn session(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.get(id)),
            Store::Redis(store) => store.get(id).await,
        }
    }

    /// Open streams of a session, on every instance.
    pub(crate) async fn open_feeds(&self, session: &Session) -> Result<u32, StoreError> {
        match self {
            Store::Memory(_) => Ok(session.open_feeds()),
            Store::Redis(store) => store.open_feeds(&session.id).await,
        }
    }

    /// The random seed of the app's browser-state keys where the app fixed none:
    /// fresh per process in memory (values from before a restart read as the
    /// default); shared through Redis by every instance on its namespace. The engine
    /// asks once.
    pub(crate) async fn browser_seed(&self) -> Result<[u8; 32], StoreError> {
        match self {
            Store::Memory(_) => Ok(rand::random()),
            Store::Redis(store) => store.browser_seed().await,
        }
    }

    pub(crate) async fn live_sessions(&self) -> Result<u64, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.live_sessions()),
            Store::Redis(store) => store.live_sessions().await,
        }
    }

    /// A page attaches a stream, unless the session has `limit` open already. While
    /// a page is attached, its session neither expires nor is evicted.
    pub(crate) async fn feed_opened(
        &self,
        session: &Session,
        limit: u32,
    ) -> Result<FeedOpened, StoreError> {
        match self {
            Store::Memory(store) => Ok(store.feed_opened(session, limit)),
            Store::Redis(store) => store.feed_opened(session, limit).await,
        }
    }

    /// A stream's heartbeat; false if the session is gone.
    pub(crate) async fn feed_alive(&self, session: &Session) -> bool {
        match self {
            Store::Memory(_) => true,
            Store::Redis(store) => store.feed_alive(&session.id).await,
        }
    }

    /// A stream ended; true if it was the session's last one.
    pub(crate) async fn feed_closed(&self, session: &Session) -> bool {
        match self {
            Store::Memory(store) => store.feed_closed(session),
            Store::Redis(store) => store.feed_closed(session).await,
        }
    }

    /// Tells the other instances to stop the streams of `listeners` in `session`
    /// (this one stops its own): with Redis, a notice on the events channel; in
    /// memory there are none.
    pub(crate) async fn announce_stop(
        &self,
        session: &SessionId,
        listeners: &[keepsake_shared::ListenerId],
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.announce_stop(session, listeners).await,
        }
    }

    /// Keeps line `number` (from 1) of a streamed reply where other instances can
    /// read it ([`Store::reply_lines`]), for `keep`, forgetting the lines before line
    /// `dropped + 1` if given: with Redis; in memory the running instance's own copy
    /// is the only one, and this does nothing.
    pub(crate) async fn keep_reply_line(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
        line: (u64, &bytes::Bytes),
        dropped: Option<u64>,
        keep: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => {
                store
                    .keep_reply_line(session, reply, line, dropped, keep)
                    .await
            }
        }
    }

    /// Keeps a running reply's lines for `keep` more (with Redis; in memory nothing
    /// to do).
    pub(crate) async fn renew_reply(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
        keep: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.renew_reply(session, reply, keep).await,
        }
    }

    /// Forgets a reply's lines (with Redis: a copy that missed a line or a renewal
    /// must not be read; `server/replies.rs` calls it when either failed).
    pub(crate) async fn forget_reply(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.forget_reply(session, reply).await,
        }
    }

    /// Notes, for `keep`, that a client reads a reply through this instance (with
    /// Redis; in memory a reply is read where it runs).
    pub(crate) async fn note_reply_read(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
        keep: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(_) => Ok(()),
            Store::Redis(store) => store.note_reply_read(session, reply, keep).await,
        }
    }

    /// Whether a client read a reply through another instance lately.
    pub(crate) async fn reply_read_elsewhere(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(_) => Ok(false),
            Store::Redis(store) => store.reply_read_elsewhere(session, reply).await,
        }
    }

    /// The lines of a reply kept by [`Store::keep_reply_line`] after the first
    /// `after`, and the numbers of its first and last lines kept; `None` when the
    /// store holds no such reply (always, in memory).
    pub(crate) async fn reply_lines(
        &self,
        session: &SessionId,
        reply: keepsake_shared::ReplyId,
        after: u64,
    ) -> Result<Option<(Vec<bytes::Bytes>, (u64, u64))>, StoreError> {
        match self {
            Store::Memory(_) => Ok(None),
            Store::Redis(store) => store.reply_lines(session, reply, after).await,
        }
    }

    /// Ends what is due now: sessions past their retention (and, with Redis, states
    /// past their time-to-live; in memory those have timers).
    pub(crate) async fn sweep(&self) {
        match self {
            Store::Memory(store) => {
                store.sweep();
            }
            Store::Redis(store) => store.sweep().await,
        }
    }

    /// Whether [`Store::begin`] may wait (for another instance's lease or lock):
    /// with Redis; in memory it returns at once.
    pub(crate) fn waits_to_begin(&self) -> bool {
        matches!(self, Store::Redis(_))
    }

    /// Before an event: with Redis, takes the session's lease and the store's locks
    /// of globals `indices` (sorted) in one step, waiting up to `wait` while another
    /// instance's event holds one, and loads the session's values into `data`.
    /// Returns those globals' values; this process's writers of them are already
    /// queued by the engine.
    pub(crate) async fn begin(
        &self,
        session: &Session,
        data: &mut SessionData,
        indices: &[u32],
        wait: Duration,
    ) -> Result<(Lease, Vec<Box<dyn DynValue>>, GlobalHold), StoreError> {
        match self {
            Store::Memory(store) => Ok((
                Lease {
                    redis: None,
                    migrated: Vec::new(),
                },
                store.globals(indices),
                GlobalHold::none(),
            )),
            Store::Redis(store) => store.begin(session, data, indices, wait).await,
        }
    }

    /// A global's last committed value. Never waits for a writer.
    pub(crate) async fn read_global(&self, index: u32) -> Result<Box<dyn DynValue>, StoreError> {
        match self {
            Store::Memory(store) => store.read_global(index),
            Store::Redis(store) => store.read_global(index).await,
        }
    }

    /// Writes everything an event changed, in one step: all of it or none of it.
    /// Gives back the lease and the global locks either way. `writers`, this
    /// process's writer locks of the globals, go as soon as the next writer can no
    /// longer overtake this commit: after it (memory), or once it is on its way to
    /// Redis, which runs one connection's commands in order.
    pub(crate) async fn commit(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        lease: Lease,
        commit: Commit,
        globals: GlobalHold,
        writers: WriterLocks,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(store) => {
                store.commit(session, data, commit);
                writers.release();
                Ok(())
            }
            Store::Redis(store) => {
                store
                    .commit(session, data, lease, commit, globals, writers)
                    .await
            }
        }
    }
}

/// What every session of an app is made of.
#[derive(Clone, Copy)]
pub(crate) struct SessionShape {
    pub(crate) state_count: usize,
    pub(crate) resource_count: usize,
    pub(crate) events_per_second: governor::Quota,
}

impl SessionShape {
    pub(crate) fn new_session(&self, id: SessionId) -> Arc<Session> {
        Arc::new(Session::new(
            id,
            self.state_count,
            self.resource_count,
            self.events_per_second,
        ))
    }
}

/// Counts of stored values read in another version, for `/metrics`.
pub(crate) struct StoredValueMetrics {
    stale: metrics::Counter,
    migrated: metrics::Counter,
    app: String,
}

impl StoredValueMetrics {
    pub(crate) fn new(app: &str) -> Self {
        StoredValueMetrics {
            stale: metrics::counter!("keepsake_stored_values_total", "app" => app.to_owned(), "outcome" => "stale"),
            migrated: metrics::counter!("keepsake_stored_values_total", "app" => app.to_owned(), "outcome" => "migrated"),
            app: app.to_owned(),
        }
    }

    /// Reads a stored envelope as the declared type: through the migration if it was
    /// stored by another version (`true` beside it), or `None` (use the default) if
    /// it cannot be read.
    pub(crate) fn read(
        &self,
        codec: &Codec,
        envelope: &str,
        what: &str,
    ) -> Option<(Box<dyn DynValue>, bool)> {
        match codec.decode(envelope) {
            Decoded::Current(value) => Some((value, false)),
            Decoded::Migrated(value) => {
                self.migrated.increment(1);
                Some((value, true))
            }
            Decoded::Stale { reason } => {
                self.stale.increment(1);
                tracing::warn!(
                    app = self.app,
                    kind = what,
                    r#type = codec.type_name,
                    %reason,
                    "stored value is of another version and no migration took it; using the default"
                );
                None
            }
        }
    }
}

/// This process's writer locks of the globals an event holds (taken by the engine,
/// `engine::globals`): whoever holds them is the only writer of those globals in
/// this process. The store lets them go as soon as no later writer can overtake the
/// commit ([`Store::commit`]).
pub(crate) struct WriterLocks(Vec<tokio::sync::OwnedMutexGuard<()>>);

impl WriterLocks {
    pub(crate) fn new(locks: Vec<tokio::sync::OwnedMutexGuard<()>>) -> Self {
        WriterLocks(locks)
    }

    /// Lets the next writer of this process in.
    pub(crate) fn release(self) {
        drop(self.0);
    }
}
