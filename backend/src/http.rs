//! The HTTP API (JSON request/response for config, sessions and events; SSE for the
//! per-page stream) and the static client, as one axum `Router`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
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
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

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
        let shutdown = CancellationToken::new();
        let mut mounted = BTreeMap::new();
        for app in apps {
            let id = app.id().clone();
            if mounted.contains_key(&id) {
                return Err(BuildError {
                    app: id.0,
                    message: "two apps share this id".into(),
                });
            }
            mounted.insert(id, AppRuntime::start(app, &settings, shutdown.clone()));
        }
        Ok(Server {
            inner: Arc::new(ServerState {
                apps: mounted,
                settings,
                shutdown,
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

    fn runtime(&self, app: &str) -> Result<&Arc<AppRuntime>, ApiError> {
        self.inner
            .apps
            .get(&AppId(app.to_owned()))
            .ok_or_else(|| ApiError::UnknownApp(app.chars().take(64).collect()))
    }
}

/// The complete router: API under `/api`, `/healthz`, and the client for every other
/// path (its `index.html` for client-side routes such as `/apps/{id}`).
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
    let client = ServeDir::new(&settings.static_dir).fallback(ServeFile::new(index));
    api.route("/healthz", get(healthz))
        .fallback_service(client)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::info_span!("request", method = %request.method(), path = %redact_path(request.uri().path()))
        }))
        .with_state(server.clone())
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

/// Liveness and a little load information: live sessions per app.
async fn healthz(State(server): State<Server>) -> Json<serde_json::Value> {
    let sessions: serde_json::Map<String, serde_json::Value> = server
        .inner
        .apps
        .iter()
        .map(|(id, runtime)| (id.0.clone(), runtime.sessions.live_sessions().into()))
        .collect();
    Json(serde_json::json!({ "status": "ok", "live_sessions": sessions }))
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
    let runtime = server.runtime(&app)?;
    let session = runtime.sessions.create();
    tracing::debug!(app, session = session.id.short(), "session started");
    Ok(Json(SessionStarted {
        session_id: session.id.clone(),
        retention_secs: runtime.sessions.retention().as_secs(),
    }))
}

async fn get_session(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<Json<SessionStatus>, ApiError> {
    let runtime = server.runtime(&app)?;
    let id = parse_session(&session)?;
    let session = runtime.sessions.get(&id).ok_or(ApiError::UnknownSession)?;
    Ok(Json(SessionStatus {
        session_id: id,
        connected_streams: session.open_streams(),
    }))
}

async fn run_event(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
    ApiJson(request): ApiJson<EventRequest>,
) -> Result<Json<EventResult>, ApiError> {
    let runtime = server.runtime(&app)?;
    let id = parse_session(&session)?;
    let span = tracing::debug_span!(
        "event",
        app,
        session = id.short(),
        listener = request.dependency.0
    );
    let _entered = span.enter();
    runtime.run_event(&id, request).await.map(Json)
}

type SseStream = Sse<ReceiverStream<Result<Event, Infallible>>>;

async fn stream(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<SseStream, ApiError> {
    let runtime = server.runtime(&app)?.clone();
    let id = parse_session(&session)?;
    let session = runtime.sessions.get(&id).ok_or(ApiError::UnknownSession)?;
    runtime.sessions.stream_opened(&session);
    let attachment = Attachment { runtime, session };
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
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if self.runtime.sessions.stream_closed(&self.session) {
            let runtime = self.runtime.clone();
            let session = self.session.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { runtime.unload(&session).await });
            }
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
            _ = ticker.tick() => send(&sender, &ServerMessage::Heartbeat).await,
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
