//! [`Server`]: the mounted apps and everything that runs them in this process, with no
//! HTTP in it. It is the one way in: the HTTP adapter (`http/`), the bridges for
//! other clients and in-process callers (tests, benchmarks, an embedding program)
//! all go through its methods, never to the engine.
//!
//! Its rooms: `page.rs` (a page attached to its session: the feed, its limits and
//! lifecycle), `reply.rs` (an event answered as a stream), `keyed.rs` (sessions
//! named by a bridge's client).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use keepsake_shared::event::{
    EventRequest, EventResult, PartialUpdate, SessionStarted, SessionStatus,
};
use keepsake_shared::{AppId, ReplyId, SessionId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::engine::Engine;
use crate::engine::streamed::PartialSink;
use crate::error::{ApiError, BuildError, StartError};
use crate::handler::request::Request;
use crate::settings::Settings;

mod changes;
pub(crate) mod keyed;
mod page;
mod replies;
mod reply;

/// Session starts per client address (GCRA, keyed by address), on std's clock.
type StartLimiter = governor::RateLimiter<
    IpAddr,
    governor::state::keyed::HashMapStateStore<IpAddr>,
    MonotonicClock,
    governor::middleware::NoOpMiddleware<Instant>,
>;

/// A server hosting one or more apps. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerState>,
}

struct ServerState {
    apps: BTreeMap<AppId, Mounted>,
    settings: Settings,
    shutdown: CancellationToken,
    /// Feeds open on this server, against `settings.max_feeds`.
    open_feeds: Arc<AtomicUsize>,
    starts: StartLimiter,
    /// Streamed replies, running or kept for resuming.
    replies: Arc<replies::Replies>,
}

/// One mounted app, as the adapters reach it: its plan, and the events run in it.
/// Cheap to clone; what runs it stays behind the [`Server`].
#[derive(Clone)]
pub(crate) struct Mounted(Arc<Engine>);

impl Mounted {
    /// The app's plan (its config, listeners, endpoints).
    pub(crate) fn app(&self) -> &App {
        &self.0.app
    }

    /// Runs an event in `session`, as [`Server::run_event_from`] does, sending a
    /// streaming listener's partial outputs to `partials` (if given) as they come.
    pub(crate) async fn run_event(
        &self,
        session: &SessionId,
        request: EventRequest,
        origin: Request,
        partials: Option<PartialSink>,
    ) -> Result<EventResult, ApiError> {
        self.0
            .run_event_with(session, request, origin, partials)
            .await
    }

    /// Live sessions of the app.
    pub(crate) async fn live_sessions(&self) -> Result<u64, ApiError> {
        self.0.live_sessions().await
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("apps", &self.inner.apps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Checks `settings`, mounts `apps` and starts their background work (expiry,
    /// eviction). Must be called within a tokio runtime.
    ///
    /// Serve it with [`crate::run`], or call it in process as below.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keepsake::components::{Button, Number};
    /// use keepsake::protocol::event::EventRequest;
    /// use keepsake::{Blocks, Server, Settings, State};
    /// use serde_json::{Value, json};
    ///
    /// let mut app = Blocks::new("counter", "Counter");
    /// let clicks = app.state(State::new(0.0));
    /// let button = app.add(Button::new("Click me"));
    /// let shown = app.add(Number::new().label("Clicks"));
    /// let listener = app
    ///     .click(button, clicks, (clicks, shown), |n: f64| (n + 1.0, n + 1.0))
    ///     .id();
    /// let settings = Settings {
    ///     session_retention: Duration::from_secs(10 * 60),
    ///     ..Settings::default()
    /// };
    ///
    /// tokio::runtime::Runtime::new()?.block_on(async {
    ///     let server = Server::new(settings, [app.build()?])?;
    ///     // As `POST /api/apps/counter/sessions`, then `.../events` twice, would.
    ///     let session = server.start_session("counter").await?.session_id;
    ///     let click = EventRequest {
    ///         listener: listener,
    ///         // One value per input; the state's is held by the server.
    ///         inputs: vec![Value::Null],
    ///         held: Vec::new(),
    ///         rendered: None,
    ///         shown: Vec::new(),
    ///     };
    ///     server.run_event("counter", &session, click.clone()).await?;
    ///     let result = server.run_event("counter", &session, click).await?;
    ///     assert_eq!(result.updates[0].component, shown.id());
    ///     assert_eq!(result.updates[0].value, Some(json!(2.0)));
    ///     server.shutdown();
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(
        settings: Settings,
        apps: impl IntoIterator<Item = App>,
    ) -> Result<Self, StartError> {
        settings.validate()?;
        // Before the engines register their counters: handles taken earlier would
        // record into nothing.
        crate::telemetry::prometheus();
        let shutdown = CancellationToken::new();
        tokio::spawn(crate::telemetry::upkeep(shutdown.clone()));
        let mut mounted = BTreeMap::new();
        for app in apps {
            let id = app.id().clone();
            if mounted.contains_key(&id) {
                return Err(BuildError {
                    app: id.0,
                    message: "two apps share this id".into(),
                }
                .into());
            }
            crate::components::check_timer_rate(app.config(), settings.max_events_per_second)
                .map_err(|message| BuildError {
                    app: id.0.clone(),
                    message,
                })?;
            let engine = Engine::start(app, &settings, shutdown.clone()).map_err(|message| {
                StartError::Store {
                    app: id.0.clone(),
                    message,
                }
            })?;
            mounted.insert(id, Mounted(engine));
        }
        let per_minute = std::num::NonZeroU32::new(settings.max_session_starts_per_minute)
            .unwrap_or(std::num::NonZeroU32::MIN);
        let starts = StartLimiter::hashmap_with_clock(
            governor::Quota::per_minute(per_minute),
            MonotonicClock,
        );
        let replies = Arc::new(replies::Replies::new(&settings, shutdown.clone()));
        let server = Server {
            inner: Arc::new(ServerState {
                apps: mounted,
                replies,
                settings,
                shutdown,
                open_feeds: Arc::new(AtomicUsize::new(0)),
                starts,
            }),
        };
        tokio::spawn(forget_quiet_addresses(
            Arc::downgrade(&server.inner),
            server.inner.shutdown.clone(),
        ));
        Ok(server)
    }

    /// The settings it was started with.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Ends streams and background tasks; [`crate::run`] calls it when asked to shut
    /// down.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Starts a session of `app` for this process (no per-address limit: the caller
    /// is trusted code, not a client).
    pub async fn start_session(&self, app: &str) -> Result<SessionStarted, ApiError> {
        let engine = self.engine(app)?;
        let session = engine.create_session().await?;
        tracing::debug!(app, session = session.id.short(), "session started");
        Ok(SessionStarted {
            session_id: session.id,
            retention_secs: engine.store.retention().as_secs(),
        })
    }

    /// Starts a session of `app` for a client at `address`, as `POST
    /// /api/apps/{app}/sessions` does: each address (each /64, for IPv6) may start
    /// `max_session_starts_per_minute` sessions a minute.
    pub async fn start_session_for(
        &self,
        app: &str,
        address: IpAddr,
    ) -> Result<SessionStarted, ApiError> {
        self.engine(app)?;
        self.allow_start(Some(address))?;
        self.start_session(app).await
    }

    /// Counts a session start against `address`'s allowance (none for trusted code):
    /// `TooManySessionStarts` once it has started `max_session_starts_per_minute` in
    /// the last minute.
    pub(crate) fn allow_start(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(address) = address else {
            return Ok(());
        };
        match self.inner.starts.check_key(&client_key(address)) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(ApiError::TooManySessionStarts {
                retry_after: not_until.wait_time_from(MonotonicClock.now()),
            }),
        }
    }

    /// Runs an event in-process, exactly as `POST .../events` does (minus HTTP):
    /// handlers that take the [`Request`] see no address and no headers.
    pub async fn run_event(
        &self,
        app: &str,
        session: &SessionId,
        request: EventRequest,
    ) -> Result<EventResult, ApiError> {
        self.run_event_from(app, session, request, Request::default())
            .await
    }

    /// As [`Server::run_event`], for the request `origin` (the client's address and
    /// headers, which handlers that take the [`Request`] see).
    pub async fn run_event_from(
        &self,
        app: &str,
        session: &SessionId,
        request: EventRequest,
        origin: Request,
    ) -> Result<EventResult, ApiError> {
        self.engine(app)?.run_event(session, request, origin).await
    }

    /// Live sessions of `app`.
    pub async fn live_sessions(&self, app: &str) -> Result<u64, ApiError> {
        self.engine(app)?.live_sessions().await
    }

    /// Processes due expiries and evictions now, as the server does every
    /// [`Settings::sweep_interval`]: for tests, benchmarks and programs that embed the
    /// server and want endings (delete callbacks, unload) at a moment of their own.
    pub async fn sweep_now(&self) {
        for app in self.inner.apps.values() {
            app.0.sweep().await;
        }
    }

    /// App `app`, as the adapters reach it.
    pub(crate) fn mounted(&self, app: &str) -> Result<&Mounted, ApiError> {
        self.inner
            .apps
            .get(app)
            .ok_or_else(|| ApiError::unknown_app(app))
    }

    /// Every mounted app, in id order.
    pub(crate) fn apps(&self) -> impl Iterator<Item = (&AppId, &Mounted)> {
        self.inner.apps.iter()
    }

    /// Cancelled when the server shuts down: what serves long-lived requests
    /// (streams of the bridges) ends with it.
    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// The status of session `session` of `app`: the feeds open to it on every
    /// instance (a use of the session, as any look-up is).
    pub(crate) async fn session_status(
        &self,
        app: &str,
        session: &SessionId,
    ) -> Result<SessionStatus, ApiError> {
        let engine = self.engine(app)?;
        let live = engine.session(session).await?;
        Ok(SessionStatus {
            session_id: *session,
            connected_feeds: engine.open_feeds(&live).await?,
        })
    }

    /// Runs an event and answers it as a stream of lines (a streaming listener's
    /// partial outputs as they come, then the outcome), kept for resuming
    /// (`replies.rs`): the event runs on whether its reader stays or not. An error
    /// before the first line is returned as such.
    pub(crate) async fn run_event_streamed(
        &self,
        app: &str,
        session: SessionId,
        request: EventRequest,
        origin: Request,
        span: tracing::Span,
    ) -> Result<
        replies::Streamed<impl futures::Stream<Item = bytes::Bytes> + Send + 'static>,
        ApiError,
    > {
        let engine = self.engine(app)?.clone();
        let listener = request.listener;
        let abandoned = engine
            .app
            .listeners
            .get(listener.0 as usize)
            .is_some_and(|def| def.stops_when_abandoned)
            .then_some(listener);
        let answer = reply::answer(engine.clone(), session, request, origin, span);
        self.inner
            .replies
            .start(engine, session, answer, abandoned)
            .await
    }

    /// The lines of a streamed reply after the first `after`, then the rest as they
    /// come ([`keepsake_shared::api::ResumeReply`]).
    pub(crate) async fn resume_reply(
        &self,
        app: &str,
        session: SessionId,
        reply: ReplyId,
        after: u64,
    ) -> Result<impl futures::Stream<Item = bytes::Bytes> + Send + 'static, ApiError> {
        let engine = self.engine(app)?;
        self.inner
            .replies
            .resume(engine, session, reply, after)
            .await
    }

    /// Waits until the streamed replies running in this process have finished and
    /// landed; [`crate::run`] calls it on shutdown, after the last connection.
    pub async fn finish_replies(&self) {
        self.inner.replies.finish().await;
    }

    fn engine(&self, app: &str) -> Result<&Arc<Engine>, ApiError> {
        Ok(&self.mounted(app)?.0)
    }
}

/// How many partial answers may wait for a slow client before the handler's stream
/// waits for it.
const PARTIALS_BUFFERED: usize = 8;

/// Where an event's partial outputs go and where its reader takes them: for a
/// streamed reply, and for the bridges that pass partials on (Gradio's
/// `process_generating`, MCP's progress).
pub(crate) fn partials() -> (PartialSink, mpsc::Receiver<PartialUpdate>) {
    mpsc::channel(PARTIALS_BUFFERED)
}

/// Whom a start is counted against: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's network: a client there can use any of its 2^64 addresses).
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !((1u128 << 64) - 1),
        )),
    }
}

/// Drops the start limiter's memory of addresses that have been quiet for a
/// minute, so that it holds only the addresses seen recently.
async fn forget_quiet_addresses(state: std::sync::Weak<ServerState>, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                let Some(state) = state.upgrade() else { return };
                state.starts.retain_recent();
                state.starts.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("address");
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().expect("address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("address");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        assert_eq!(client_key(v4), v4);
    }
}
