//! The HTTP adapter: the JSON API (config, sessions, events), each page's feed as
//! Server-Sent Events, the bridges for other clients, and the static client, as one
//! axum `Router` over a [`Server`]. Handlers are thin: they parse, call the
//! [`Server`] (never the engine: `scripts/structure` fails if a file here imports
//! it), and answer; every failure is an [`ApiError`], whose one `IntoResponse` makes
//! the JSON error body.
//!
//! Rooms: [`routes`] (the handlers), [`json`] (the body extractor), [`feed`] (a
//! page's feed as SSE), [`reply`] (a streamed reply as NDJSON), [`client_address`]
//! (who is asking, behind trusted proxies), [`client_files`] (the browser client,
//! built into the binary), [`csp`] (the pages' Content-Security-Policy and its
//! violation reports), `gradio` (the Gradio-compatible API) and `mcp` (MCP).

mod client_address;
mod client_files;
mod csp;
mod feed;
mod gradio;
mod json;
#[cfg(feature = "mcp")]
mod mcp;
mod reply;
mod routes;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use keepsake_shared::SessionId;
use keepsake_shared::api::{self, Endpoint};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::server::Server;

/// The complete router: API under `/api`, `/healthz`, and the client for every other
/// path (its `index.html` for client-side routes such as `/apps/{id}`), served with
/// the `Content-Security-Policy` of the settings, whose `script-src` gets the hash of
/// the inline script of the `index.html` read now.
///
/// Requests get tracing spans and DEBUG lines if the subscriber installed before this
/// call enables DEBUG for `keepsake` or `tower_http` (e.g. `RUST_LOG=keepsake=debug`).
pub fn app(server: &Server) -> Router {
    let settings = server.settings();
    let api = Router::new()
        .route(api::ListApps::ROUTE, get(routes::list_apps))
        .route(api::GetConfig::ROUTE, get(routes::get_config))
        .route(api::StartSession::ROUTE, post(routes::start_session))
        .route(api::GetSession::ROUTE, get(routes::get_session))
        .route(api::RunEvent::ROUTE, post(routes::run_event))
        .route(
            api::RunEventStreamed::ROUTE,
            post(reply::run_event_streamed),
        )
        .route(api::ResumeReply::ROUTE, post(reply::resume_reply))
        .route(api::FEED_ROUTE, get(feed::feed))
        .route(
            csp::REPORT_ROUTE,
            post(routes::csp_report).layer(DefaultBodyLimit::max(csp::REPORT_LIMIT)),
        )
        .route("/api", get(routes::api_not_found))
        .route(
            "/api/{*rest}",
            get(routes::api_not_found).post(routes::api_not_found),
        );
    // The client built into the binary, unless a directory overrides it (client
    // development: rebuild the client without rebuilding the server).
    let (client, index_html) = match &settings.static_dir {
        None => {
            let index_html = client_files::index_html().unwrap_or_else(|| {
                tracing::warn!(
                    "this binary was built without its browser client; the API works, pages will not"
                );
                Vec::new()
            });
            (Router::new().fallback(client_files::serve), index_html)
        }
        Some(dir) => {
            let index = dir.join("index.html");
            let index_html = std::fs::read(&index).unwrap_or_else(|_| {
                tracing::warn!(path = %index.display(), "no built client found; the API works, pages will not");
                Vec::new()
            });
            // The build writes brotli and gzip copies of every file (scripts/install.sh);
            // a browser gets the smallest one it accepts, and the plain file otherwise.
            let files = ServeDir::new(dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(
                    ServeFile::new(index)
                        .precompressed_br()
                        .precompressed_gzip(),
                );
            (Router::new().fallback_service(files), index_html)
        }
    };
    // The policy, with the hash of the bootstrap script of the index.html served now.
    let policy = csp::header_value(&settings.content_security_policy, &index_html);
    // Registered at zero, so that /metrics shows it before the first report.
    metrics::counter!(csp::VIOLATIONS_METRIC).increment(0);
    let client = client.layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        policy,
    ));
    let router = api
        .route(api::API_DOCS_ROUTE, get(routes::api_docs))
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .merge(bridges(server))
        .merge(client);
    // Request spans and the DEBUG lines of each request and response cost about
    // 0.5 µs per request even when filtered out (clock reads, a body wrapper), so the
    // layer is added only if DEBUG is on for it when the router is built. Failed
    // requests are logged by `ApiError` either way.
    let trace_requests = tracing::enabled!(tracing::Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG);
    let trace = trace_requests.then(|| {
        TraceLayer::new_for_http().make_span_with(|request: &Request| {
            tracing::debug_span!("request", method = %request.method(), path = %redact_path(request.uri().path()))
        })
    });
    // The layers every route gets, outermost first, given as one: each
    // `Router::layer` call wraps every route in a boxed service of its own, which
    // each request clones and goes through.
    let common = (
        SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        DefaultBodyLimit::max(settings.max_body_bytes),
    );
    let router = match (trace, cors(&settings.allow_origins)) {
        (None, None) => router.layer(common),
        (None, Some(cors)) => router.layer((cors, common)),
        (Some(trace), None) => router.layer((trace, common)),
        (Some(trace), Some(cors)) => router.layer((trace, cors, common)),
    };
    router.with_state(server.clone())
}

/// The bridges for other clients that the settings open: the Gradio-compatible API
/// ([`gradio`]) and MCP ([`mcp`]).
fn bridges(server: &Server) -> Router<Server> {
    let mut bridges = Router::new();
    if server.settings().gradio_api {
        bridges = bridges.merge(gradio::router(server));
    }
    // Without the feature, `Settings::validate` refused `mcp` at start-up.
    #[cfg(feature = "mcp")]
    if server.settings().mcp {
        bridges = bridges.merge(mcp::router(server));
    }
    bridges
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
            // A streamed answer's id, which a page needs to resume it.
            .expose_headers([HeaderName::from_static(api::REPLY_HEADER)])
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
///
/// To serve [`app`] yourself, give axum each connection's address
/// (`into_make_service_with_connect_info::<SocketAddr>()`), as this does: without it
/// session starts cannot be limited per client, and are not.
pub async fn run(
    listener: tokio::net::TcpListener,
    server: Server,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(&server);
    let stopper = server.clone();
    // No Nagle: a stream's answer goes out in several writes (an MCP answer: its
    // opening event, the result, the end), and Nagle held each last small write until
    // the client's delayed ACK, 40 ms later: MCP calls on a kept-alive connection
    // took 44 ms (bridges_bench, one worker) where a page's event takes 0.07 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot turn Nagle's algorithm off on a connection");
        }
    });
    // With each connection's peer address, which limits session starts per client.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing running events");
        stopper.shutdown();
    })
    .await?;
    // The last connection has gone; replies whose pages left run on: let them land.
    server.finish_replies().await;
    Ok(())
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
