//! The API's handlers: each parses its request, calls the [`Server`] and answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keepsake_shared::SessionId;
use keepsake_shared::config::{AppConfig, AppSummary};
use keepsake_shared::event::{EventRequest, EventResult, SessionStarted, SessionStatus};
use tracing::Instrument;

use super::client_address::ClientAddress;
use super::csp;
use super::json::ApiJson;
use crate::error::ApiError;
use crate::handler::request::Request;
use crate::server::Server;

/// A session id from a path. A malformed one cannot have been issued by this server.
pub(super) fn parse_session(raw: &str) -> Result<SessionId, ApiError> {
    raw.parse().map_err(|_| ApiError::UnknownSession)
}

/// The app's endpoints and how to call them (HTML).
pub(super) async fn api_docs(
    State(server): State<Server>,
    Path(app): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<axum::response::Response, ApiError> {
    let plan = server.mounted(&app)?.app();
    // Examples use the address the reader reached us by.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .map_or_else(|| server.settings().addr.to_string(), str::to_owned);
    let bridges = crate::api_docs::Bridges {
        gradio: server.settings().gradio_api,
        mcp: server.settings().mcp,
    };
    let page = axum::response::Html(crate::api_docs::page(
        plan,
        &format!("http://{host}"),
        bridges,
    ));
    // A strict policy of its own (the page is no client page), unless policies are off.
    let policy = (!server.settings().content_security_policy.trim().is_empty())
        .then(super::csp::api_page_policy)
        .and_then(|policy| axum::http::HeaderValue::from_str(&policy).ok());
    Ok(match policy {
        Some(policy) => ([(header::CONTENT_SECURITY_POLICY, policy)], page).into_response(),
        None => page.into_response(),
    })
}

/// Liveness and a little load information: live sessions per app, and whether the
/// store answers. Always 200 while the process serves: a Redis outage is reported
/// (`"status": "degraded"`), not a reason to restart instances that recover by
/// themselves.
pub(super) async fn healthz(State(server): State<Server>) -> Json<serde_json::Value> {
    let mut sessions = serde_json::Map::new();
    let mut store_error = None;
    for (id, app) in server.apps() {
        match app.live_sessions().await {
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
pub(super) async fn metrics(State(server): State<Server>) -> Response {
    for (id, app) in server.apps() {
        if let Ok(live) = app.live_sessions().await {
            metrics::gauge!("keepsake_live_sessions", "app" => id.0.clone()).set(live as f64);
        }
    }
    metrics::gauge!("keepsake_open_feeds").set(server.open_feeds() as f64);
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

/// A browser's report of a Content-Security-Policy violation: counted and logged,
/// answered with 204. A body over [`csp::REPORT_LIMIT`] or one that is not a report
/// changes nothing.
pub(super) async fn csp_report(
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit: csp::REPORT_LIMIT,
        },
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let violations = csp::parse_reports(content_type, &body).map_err(ApiError::BadRequest)?;
    csp::record(&violations);
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn api_not_found() -> ApiError {
    ApiError::BadRequest("no such API endpoint".into())
}

pub(super) async fn list_apps(State(server): State<Server>) -> Json<Vec<AppSummary>> {
    Json(
        server
            .apps()
            .map(|(_, app)| {
                let config = app.app().config();
                AppSummary {
                    id: config.id.clone(),
                    title: config.title.clone(),
                    description: config.description.clone(),
                }
            })
            .collect(),
    )
}

pub(super) async fn get_config(
    State(server): State<Server>,
    Path(app): Path<String>,
) -> Result<Json<AppConfig>, ApiError> {
    Ok(Json(server.mounted(&app)?.app().config().clone()))
}

pub(super) async fn start_session(
    State(server): State<Server>,
    Path(app): Path<String>,
    ClientAddress(address): ClientAddress,
) -> Result<Json<SessionStarted>, ApiError> {
    match address {
        Some(address) => server.start_session_for(&app, address).await,
        None => server.start_session(&app).await,
    }
    .map(Json)
}

pub(super) async fn get_session(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<Json<SessionStatus>, ApiError> {
    server.mounted(&app)?;
    let id = parse_session(&session)?;
    Ok(Json(server.session_status(&app, &id).await?))
}

pub(super) async fn run_event(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
    http_request: axum::extract::Request,
) -> Result<Json<EventResult>, ApiError> {
    let (id, request, origin) = event_request(&server, &app, &session, http_request).await?;
    let span = event_span(&app, &id, &request);
    server
        .run_event_from(&app, &id, request, origin)
        .instrument(span)
        .await
        .map(Json)
}

/// An event's session, request and origin, from its path and HTTP request.
pub(super) async fn event_request(
    server: &Server,
    app: &str,
    session: &str,
    http_request: axum::extract::Request,
) -> Result<(SessionId, EventRequest, Request), ApiError> {
    let id = parse_session(session)?;
    // The request's address and headers are copied for the handlers only if one of
    // the app's listeners takes them.
    let (mut parts, body) = http_request.into_parts();
    let origin = if server.mounted(app)?.app().takes_request {
        let ClientAddress(address) = ClientAddress::from_request_parts(&mut parts, server).await?;
        Request::new(address, parts.headers.clone())
    } else {
        Request::default()
    };
    let ApiJson(request) = ApiJson::<EventRequest>::from_request(
        axum::extract::Request::from_parts(parts, body),
        server,
    )
    .await?;
    Ok((id, request, origin))
}

pub(super) fn event_span(app: &str, id: &SessionId, request: &EventRequest) -> tracing::Span {
    tracing::debug_span!(
        "event",
        app,
        session = id.short(),
        listener = request.listener.0
    )
}
