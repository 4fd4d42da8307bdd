//! The HTTP API (JSON request/response for config, sessions and events; SSE for the
//! per-page stream) and the static client, as one axum `Router`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keepsake_shared::api::{self, Endpoint};
use keepsake_shared::config::{AppConfig, AppSummary};
use keepsake_shared::event::{EventRequest, EventResult, SessionStarted, SessionStatus};
use keepsake_shared::stream::{SSE_EVENT_NAME, ServerMessage};
use keepsake_shared::{AppId, SessionId};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Instrument;

use crate::blocks::App;
use crate::error::{ApiError, BuildError};
use crate::runtime::AppRuntime;
use crate::session::Session;
use crate::settings::Settings;

/// A server hosting one or more apps. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<ServerState>,
}

struct ServerState {
    apps: BTreeMap<AppId, Arc<AppRuntime>>,
    settings: Settings,
    shutdown: CancellationToken,
    /// Streams open on this server, against `settings.max_streams`.
    open_streams: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("apps", &self.inner.apps.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Mounts `apps` and starts their background work (expiry, eviction). Must be
    /// called within a tokio runtime.
    pub fn new(
        settings: Settings,
        apps: impl IntoIterator<Item = App>,
    ) -> Result<Self, BuildError> {
        // Before the runtimes register their counters: handles taken earlier would
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
                });
            }
            let runtime =
                AppRuntime::start(app, &settings, shutdown.clone()).map_err(|message| {
                    BuildError {
                        app: id.0.clone(),
                        message,
                    }
                })?;
            mounted.insert(id, runtime);
        }
        Ok(Server {
            inner: Arc::new(ServerState {
                apps: mounted,
                settings,
                shutdown,
                open_streams: Arc::new(AtomicUsize::new(0)),
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Ends streams and background tasks; [`run`] calls it when asked to shut down.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Starts a session of `app`, as `POST /api/apps/{app}/sessions` does.
    pub async fn start_session(&self, app: &str) -> Result<SessionStarted, ApiError> {
        let runtime = self.runtime(app)?;
        let session = runtime.create_session().await?;
        tracing::debug!(app, session = session.id.short(), "session started");
        Ok(SessionStarted {
            session_id: session.id,
            retention_secs: runtime.store.retention().as_secs(),
        })
    }

    /// Runs an event in-process, exactly as `POST .../events` does (minus HTTP).
    pub async fn run_event(
        &self,
        app: &str,
        session: &SessionId,
        request: EventRequest,
    ) -> Result<EventResult, ApiError> {
        self.runtime(app)?.run_event(session, request).await
    }

    /// Live sessions of `app`.
    pub async fn live_sessions(&self, app: &str) -> Result<u64, ApiError> {
        self.runtime(app)?.live_sessions().await
    }

    /// Processes due expiries and evictions now (the server also does it every
    /// `sweep_interval`). For benchmarks and tests.
    #[doc(hidden)]
    pub async fn sweep_now(&self) {
        for runtime in self.inner.apps.values() {
            runtime.sweep().await;
        }
    }

    fn runtime(&self, app: &str) -> Result<&Arc<AppRuntime>, ApiError> {
        self.inner
            .apps
            .get(app)
            .ok_or_else(|| ApiError::UnknownApp(app.chars().take(64).collect()))
    }
}

/// The complete router: API under `/api`, `/healthz`, and the client for every other
/// path (its `index.html` for client-side routes such as `/apps/{id}`).
///
/// Requests get tracing spans and DEBUG lines if the subscriber installed before this
/// call enables DEBUG for `keepsake` or `tower_http` (e.g. `RUST_LOG=keepsake=debug`).
pub fn app(server: &Server) -> Router {
    let settings = server.settings();
    let api = Router::new()
        .route(api::ListApps::ROUTE, get(list_apps))
        .route(api::GetConfig::ROUTE, get(get_config))
        .route(api::StartSession::ROUTE, post(start_session))
        .route(api::GetSession::ROUTE, get(get_session))
        .route(api::RunEvent::ROUTE, post(run_event))
        .route(api::STREAM_ROUTE, get(stream))
        .route("/api", get(api_not_found))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found));
    let index = settings.static_dir.join("index.html");
    if !index.exists() {
        tracing::warn!(path = %index.display(), "no built client found; the API works, pages will not");
    }
    // The build writes brotli and gzip copies of every file (scripts/install.sh); a
    // browser gets the smallest one it accepts, and the plain file otherwise.
    let client = ServeDir::new(&settings.static_dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(
            ServeFile::new(index)
                .precompressed_br()
                .precompressed_gzip(),
        );
    let router = api
        .route(api::API_DOCS_ROUTE, get(api_docs))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback_service(client)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    let router = match cors(&settings.allow_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Request spans and the DEBUG lines of each request and response cost about
    // 0.5 µs per request even when filtered out (clock reads, a body wrapper), so the
    // layer is added only if DEBUG is on for it when the router is built. Failed
    // requests are logged by `ApiError` either way.
    let trace_requests = tracing::enabled!(tracing::Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG);
    let router = if trace_requests {
        router.layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::debug_span!("request", method = %request.method(), path = %redact_path(request.uri().path()))
        }))
    } else {
        router
    };
    router.with_state(server.clone())
}

/// Cross-origin access for the configured origins only; none by default, so only
/// pages this server serves can call its API from a browser.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| match HeaderValue::from_str(origin.trim()) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(
                    origin,
                    "ignoring an allowed origin that is not a valid header value"
                );
                None
            }
        })
        .collect();
    (!allowed.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
    })
}

/// The path with session ids shortened, so full ids never reach the logs.
fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.parse::<SessionId>() {
            Ok(id) => format!("{}…", id.short()),
            Err(_) => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// How many task polls tokio's scheduler runs between two looks at the sockets (its
/// default is 61). A request that arrives meanwhile waits until the scheduler looks:
/// with 50 connections busy on one core, the cart benchmark's p99 measured 1.6 to
/// 2.5 ms at 61 (seven short runs) and 1.3 to 1.6 ms at 16 (five), interleaved, at
/// the same throughput.
pub const EVENT_INTERVAL: u32 = 16;

/// The tokio runtime `keepsake-demo` serves on: multi-threaded, with
/// [`EVENT_INTERVAL`]. Build on it (or set the interval on your own builder) to get
/// the latency the benchmarks report.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().event_interval(EVENT_INTERVAL);
    builder
}

/// Serves `server` on `listener` until `shutdown` completes, then stops taking
/// connections, ends the streams and lets running events finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    server: Server,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(&server);
    let stopper = server.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing running events");
            stopper.shutdown();
        })
        .await
}

/// JSON body extractor whose rejections are [`ApiError`]s with clear messages.
struct ApiJson<T>(T);

impl<T: DeserializeOwned> FromRequest<Server> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, server: &Server) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, server).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection, server.settings().max_body_bytes)),
        }
    }
}

fn json_rejection(rejection: JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected a JSON body with Content-Type: application/json".into())
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(format!(
            "the body does not have the expected shape: {}",
            e.body_text()
        )),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { limit }
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

fn parse_session(raw: &str) -> Result<SessionId, ApiError> {
    // A malformed id cannot have been issued by this server.
    raw.parse().map_err(|_| ApiError::UnknownSession)
}

/// The app's endpoints and how to call them (HTML).
async fn api_docs(
    State(server): State<Server>,
    Path(app): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Html<String>, ApiError> {
    let config = server.runtime(&app)?.app.config();
    // Examples use the address the reader reached us by.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .map_or_else(|| server.settings().addr.to_string(), str::to_owned);
    Ok(axum::response::Html(crate::api_docs::page(
        config,
        &format!("http://{host}"),
    )))
}

/// Liveness and a little load information: live sessions per app, and whether the
/// store answers. Always 200 while the process serves: a Redis outage is reported
/// (`"status": "degraded"`), not a reason to restart instances that recover by
/// themselves.
async fn healthz(State(server): State<Server>) -> Json<serde_json::Value> {
    let mut sessions = serde_json::Map::new();
    let mut store_error = None;
    for (id, runtime) in &server.inner.apps {
        match runtime.live_sessions().await {
            Ok(live) => {
                sessions.insert(id.0.clone(), live.into());
            }
            Err(error) => store_error = Some(error.to_string()),
        }
    }
    let store = server.settings().store_kind();
    match store_error {
        None => {
            Json(serde_json::json!({ "status": "ok", "store": store, "live_sessions": sessions }))
        }
        Some(error) => {
            Json(serde_json::json!({ "status": "degraded", "store": store, "store_error": error }))
        }
    }
}

/// Prometheus text exposition of every metric.
async fn metrics(State(server): State<Server>) -> Response {
    for (id, runtime) in &server.inner.apps {
        if let Ok(live) = runtime.live_sessions().await {
            metrics::gauge!("keepsake_live_sessions", "app" => id.0.clone()).set(live as f64);
        }
    }
    metrics::gauge!("keepsake_open_streams")
        .set(server.inner.open_streams.load(Ordering::Relaxed) as f64);
    match crate::telemetry::prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => ApiError::Internal("metrics go to the application's own recorder".into())
            .into_response(),
    }
}

async fn api_not_found() -> ApiError {
    ApiError::BadRequest("no such API endpoint".into())
}

async fn list_apps(State(server): State<Server>) -> Json<Vec<AppSummary>> {
    Json(
        server
            .inner
            .apps
            .values()
            .map(|runtime| {
                let config = runtime.app.config();
                AppSummary {
                    id: config.id.clone(),
                    title: config.title.clone(),
                    description: config.description.clone(),
                }
            })
            .collect(),
    )
}

async fn get_config(
    State(server): State<Server>,
    Path(app): Path<String>,
) -> Result<Json<AppConfig>, ApiError> {
    Ok(Json(server.runtime(&app)?.app.config().clone()))
}

async fn start_session(
    State(server): State<Server>,
    Path(app): Path<String>,
) -> Result<Json<SessionStarted>, ApiError> {
    server.start_session(&app).await.map(Json)
}

async fn get_session(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<Json<SessionStatus>, ApiError> {
    let runtime = server.runtime(&app)?;
    let id = parse_session(&session)?;
    let session = runtime.session(&id).await?;
    Ok(Json(SessionStatus {
        session_id: id,
        connected_streams: runtime.open_streams(&session).await?,
    }))
}

async fn run_event(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
    ApiJson(request): ApiJson<EventRequest>,
) -> Result<Json<EventResult>, ApiError> {
    let id = parse_session(&session)?;
    let span = tracing::debug_span!(
        "event",
        app,
        session = id.short(),
        listener = request.dependency.0
    );
    server
        .run_event(&app, &id, request)
        .instrument(span)
        .await
        .map(Json)
}

type SseStream = Sse<ReceiverStream<Result<Event, Infallible>>>;

async fn stream(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<SseStream, ApiError> {
    let runtime = server.runtime(&app)?.clone();
    let id = parse_session(&session)?;
    let session = runtime.session(&id).await?;
    let settings = server.settings();
    let total = &server.inner.open_streams;
    if total
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < settings.max_streams).then_some(open + 1)
        })
        .is_err()
    {
        return Err(ApiError::LimitExceeded(
            "the server has as many open streams as it allows; try again later".into(),
        ));
    }
    let attached = runtime
        .stream_opened(&session, settings.max_streams_per_session)
        .await;
    if !matches!(attached, Ok(true)) {
        // Give back the server-wide place taken above.
        total.fetch_sub(1, Ordering::AcqRel);
        attached?;
        return Err(ApiError::LimitExceeded(format!(
            "this session already has {} open streams, the most allowed",
            settings.max_streams_per_session
        )));
    }
    let attachment = Attachment {
        runtime,
        session,
        server_streams: total.clone(),
    };
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(pump(
        attachment,
        sender,
        server.settings().heartbeat,
        server.inner.shutdown.clone(),
    ));
    Ok(Sse::new(ReceiverStream::new(receiver)))
}

/// A page attached to a session. Dropping it detaches the page; the last one to go
/// fires the session's unload listeners.
struct Attachment {
    runtime: Arc<AppRuntime>,
    session: Arc<Session>,
    server_streams: Arc<AtomicUsize>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.server_streams.fetch_sub(1, Ordering::AcqRel);
        let runtime = self.runtime.clone();
        let session = self.session.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { runtime.stream_closed(session).await });
        }
    }
}

async fn send(sender: &mpsc::Sender<Result<Event, Infallible>>, message: &ServerMessage) -> bool {
    let event = match Event::default().event(SSE_EVENT_NAME).json_data(message) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "could not encode a stream message");
            return true;
        }
    };
    sender.send(Ok(event)).await.is_ok()
}

/// Feeds one page's stream until the page goes away, the session ends or the
/// server shuts down.
async fn pump(
    attachment: Attachment,
    sender: mpsc::Sender<Result<Event, Infallible>>,
    heartbeat: Duration,
    shutdown: CancellationToken,
) {
    let runtime = attachment.runtime.clone();
    let session = attachment.session.clone();
    let mut pushes = runtime.pushes.subscribe();
    if !send(&sender, &ServerMessage::Attached).await {
        return;
    }
    for update in runtime.bound_values().await {
        if !send(&sender, &ServerMessage::Push { update }).await {
            return;
        }
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        let alive = tokio::select! {
            _ = sender.closed() => false,
            _ = shutdown.cancelled() => false,
            _ = session.ended.cancelled() => {
                send(&sender, &ServerMessage::SessionEnded).await;
                false
            }
            _ = ticker.tick() => {
                if runtime.stream_alive(&session).await {
                    send(&sender, &ServerMessage::Heartbeat).await
                } else {
                    send(&sender, &ServerMessage::SessionEnded).await;
                    false
                }
            }
            push = pushes.recv() => match push {
                Ok(update) => send(&sender, &ServerMessage::Push { update }).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: the latest values are all that matter.
                    let mut ok = true;
                    for update in runtime.bound_values().await {
                        ok = ok && send(&sender, &ServerMessage::Push { update }).await;
                    }
                    ok
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
        if !alive {
            break;
        }
    }
    drop(attachment);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_their_session_ids() {
        let id = SessionId::from_bytes([0xcd; 16]);
        let path = format!("/api/apps/cart/sessions/{id}/events");
        let redacted = redact_path(&path);
        assert!(!redacted.contains(id.as_str()));
        assert_eq!(redacted, "/api/apps/cart/sessions/cdcdcdcd…/events");
    }
}
