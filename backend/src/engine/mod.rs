//! The engine: runs one mounted app's events against its sessions and globals,
//! through the store seam ([`crate::store::Store`]), never knowing which store it is.
//!
//! Its rooms:
//! - [`event`]: one event, from inputs to commit (gather, call, stage, commit);
//! - [`browser`]: the event's browser states: opened from what the client sent,
//!   sealed into what goes back;
//! - [`globals`]: how events lock the globals they write and read the others;
//! - [`endings`]: what happens when the store ends something (expiry, eviction,
//!   time-to-live), unload, and the delete callbacks;
//! - [`tasks`]: the background loops (the sweep, the store's events).

mod browser;
mod call;
mod endings;
mod event;
mod globals;
mod inputs;
mod rendered;
mod stops;
pub(crate) mod streamed;
mod tasks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keepsake_shared::SessionId;
use keepsake_shared::event::ComponentUpdate;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use self::globals::GlobalWriters;
use crate::app::App;
use crate::error::ApiError;
use crate::handler::request::Request;
use crate::session::Session;
use crate::settings::Settings;
use crate::store::{FeedOpened, Store};
use crate::value::DynValue;

/// A mounted app: its plan, its store, and what its events need.
pub(crate) struct Engine {
    pub(crate) app: Arc<App>,
    pub(crate) store: Store,
    writers: GlobalWriters,
    /// Updates of bound globals, fanned out to every open stream.
    pub(crate) pushes: broadcast::Sender<ComponentUpdate>,
    limits: Limits,
    metrics: Metrics,
    /// The browser states' keys, by index; derived on first use ([`browser`]).
    sealers: tokio::sync::OnceCell<Vec<crate::sealing::Sealer>>,
    /// The store's random seed, asked for once: the root of the browser states'
    /// random keys and of the session names of other clients' bridges.
    seed: tokio::sync::OnceCell<[u8; 32]>,
    /// The streams running here, for listeners that stop them.
    running: stops::Running,
    /// Places for delete callbacks running at once ([`endings::DELETES_AT_ONCE`]).
    deletes: Arc<tokio::sync::Semaphore>,
}

/// The settings an event is held to.
struct Limits {
    event_timeout: Duration,
    stream_timeout: Duration,
    max_stream_items: usize,
    /// The shortest time between two partials of one stream.
    partial_interval: Duration,
    max_state_bytes: usize,
    max_events_per_second: u32,
}

/// This app's metric handles, registered once.
struct Metrics {
    app: String,
    events_ok: metrics::Counter,
    event_duration: metrics::Histogram,
    sessions_expired: metrics::Counter,
    sessions_evicted: metrics::Counter,
    state_expiries: metrics::Counter,
}

impl Metrics {
    fn new(app: &str) -> Self {
        let app = app.to_owned();
        Metrics {
            events_ok: metrics::counter!("keepsake_events_total", "app" => app.clone(), "outcome" => "ok"),
            event_duration: metrics::histogram!("keepsake_event_duration_seconds", "app" => app.clone()),
            sessions_expired: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "expired"),
            sessions_evicted: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "evicted"),
            state_expiries: metrics::counter!("keepsake_state_expiries_total", "app" => app.clone()),
            app,
        }
    }

    fn event_finished<T>(&self, started: Instant, outcome: &Result<T, ApiError>) {
        self.event_duration.record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(_) => self.events_ok.increment(1),
            Err(error) => metrics::counter!(
                "keepsake_events_total",
                "app" => self.app.clone(),
                "outcome" => error.kind().as_str()
            )
            .increment(1),
        }
    }
}

impl Engine {
    /// Mounts `app` on the configured store and starts its background work (which
    /// ends with `shutdown`).
    pub(crate) fn start(
        app: App,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, String> {
        let app = Arc::new(app);
        let (events, events_rx) = mpsc::unbounded_channel();
        let store = Store::open(app.clone(), settings, events)?;
        let engine = Arc::new(Engine {
            metrics: Metrics::new(&app.config.id.0),
            writers: GlobalWriters::new(app.globals.len()),
            limits: Limits {
                event_timeout: settings.event_timeout,
                stream_timeout: settings.stream_timeout,
                max_stream_items: settings.max_stream_items,
                partial_interval: Duration::from_secs(1) / settings.max_partials_per_second.max(1),
                max_state_bytes: settings.max_state_bytes,
                max_events_per_second: settings.max_events_per_second,
            },
            app,
            store,
            pushes: broadcast::channel(256).0,
            sealers: tokio::sync::OnceCell::new(),
            seed: tokio::sync::OnceCell::new(),
            running: stops::Running::default(),
            deletes: Arc::new(tokio::sync::Semaphore::new(endings::DELETES_AT_ONCE)),
        });
        engine.store.start(shutdown.clone());
        tasks::spawn(&engine, events_rx, settings.sweep_interval, shutdown);
        Ok(engine)
    }

    /// Starts a session: 128 bits from the OS-seeded CSPRNG name it.
    pub(crate) async fn create_session(&self) -> Result<Arc<Session>, ApiError> {
        let id = SessionId::from_bytes(rand::random());
        Ok(self.store.create(id).await?)
    }

    /// The session named `id`, started if it is not live (idempotent: two callers
    /// racing to start the same id get the same session). `allow_start` runs only
    /// when a start is needed, and may refuse it (a per-client start limit).
    pub(crate) async fn session_or_start(
        &self,
        id: SessionId,
        allow_start: impl FnOnce() -> Result<(), ApiError>,
    ) -> Result<Arc<Session>, ApiError> {
        if let Some(session) = self.store.session(&id).await? {
            return Ok(session);
        }
        allow_start()?;
        Ok(self.store.create(id).await?)
    }

    /// The store's random seed (random per process in memory, shared by every
    /// instance through Redis), fetched on first use.
    pub(crate) async fn seed(&self) -> Result<&[u8; 32], ApiError> {
        Ok(self
            .seed
            .get_or_try_init(|| async { self.store.browser_seed().await })
            .await?)
    }

    /// `origin` in `session`: with the session's key when the app's handlers take
    /// the request (no key derived per event otherwise).
    pub(crate) async fn in_session(
        &self,
        origin: Request,
        session: &SessionId,
    ) -> Result<Request, ApiError> {
        let origin = origin.in_session(*session);
        if !self.app.takes_request {
            return Ok(origin);
        }
        Ok(origin.with_key(self.seed().await?))
    }

    /// A live session (a use: it moves in the LRU order and its retention restarts).
    pub(crate) async fn session(&self, id: &SessionId) -> Result<Arc<Session>, ApiError> {
        self.store
            .session(id)
            .await?
            .ok_or(ApiError::UnknownSession)
    }

    /// Open streams of a session, on every instance.
    pub(crate) async fn open_feeds(&self, session: &Session) -> Result<u32, ApiError> {
        Ok(self.store.open_feeds(session).await?)
    }

    pub(crate) async fn live_sessions(&self) -> Result<u64, ApiError> {
        Ok(self.store.live_sessions().await?)
    }

    /// A page attaches a stream: `Ok(false)` if the session has as many as allowed,
    /// `UnknownSession` if it ended since the caller looked it up.
    pub(crate) async fn feed_opened(
        &self,
        session: &Session,
        limit: u32,
    ) -> Result<bool, ApiError> {
        match self.store.feed_opened(session, limit).await? {
            FeedOpened::Attached => Ok(true),
            FeedOpened::Full => Ok(false),
            FeedOpened::UnknownSession => Err(ApiError::UnknownSession),
        }
    }

    /// A stream's heartbeat; false if the session is gone.
    pub(crate) async fn feed_alive(&self, session: &Session) -> bool {
        self.store.feed_alive(session).await
    }

    /// A stream ended; runs the unload listeners if it was the session's last one.
    pub(crate) async fn feed_closed(&self, session: Arc<Session>) {
        if self.store.feed_closed(&session).await {
            self.unload(&session).await;
        }
    }

    /// Processes due expiries and evictions now.
    pub(crate) async fn sweep(&self) {
        self.store.sweep().await;
    }

    fn bound_updates(&self, index: u32, value: &dyn DynValue) -> Vec<ComponentUpdate> {
        self.app.globals[index as usize]
            .bindings
            .iter()
            .filter_map(|(component, render)| {
                let value = render(value)?;
                let rendering = self.app.rendered(*component, &value);
                Some(rendering.update(*component, value, Default::default()))
            })
            .collect()
    }

    fn push_bindings(&self, index: u32, value: &dyn DynValue) {
        for update in self.bound_updates(index, value) {
            // No receiver means no page is open: nothing to do.
            let _ = self.pushes.send(update);
        }
    }

    /// The current value of every bound global, for a stream that just attached or
    /// fell behind.
    pub(crate) async fn bound_values(&self) -> Vec<ComponentUpdate> {
        let mut updates = Vec::new();
        for (index, def) in self.app.globals.iter().enumerate() {
            if def.bindings.is_empty() {
                continue;
            }
            match self.store.read_global(index as u32).await {
                Ok(value) => updates.extend(self.bound_updates(index as u32, &*value)),
                Err(error) => tracing::debug!(%error, "could not read a bound global"),
            }
        }
        updates
    }
}
