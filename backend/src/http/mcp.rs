//! The MCP bridge: an MCP server (the official SDK, `rmcp`, over streamable HTTP) at
//! `/apps/{app}/mcp` for each app. Every listener with an `api_name` is a tool: its
//! parameters are the input schema's properties (all optional: a parameter left out
//! takes its component's initial value), its description is the listener's
//! `api_description`, and its result is the object of its returned outputs by name
//! (structured content, and the same JSON as text). A streaming listener's partial
//! outputs reach a caller that asks for progress (a `progressToken`, as the SDKs'
//! progress callbacks send) as progress notifications, counted 1, 2, 3..., each
//! message the partial's outputs by name as JSON; then the result. A caller that does
//! not ask gets the result alone.
//!
//! Each MCP session is a Keepsake session, named by the `Mcp-Session-Id` the SDK
//! issues through [`crate::server::keyed`]: two `add_items` calls in one MCP
//! session grow one cart; another MCP session has its own. A request of no live MCP
//! session (a client speaking the sessionless protocol version, or naming a session
//! the SDK does not hold) gets a fresh session per call: no state carries, and no
//! name a client makes up reaches a session.
//! Starts count against the caller's address like a page's (at `initialize`, see
//! [`admit`]); capacity, retention and the event rate are those of every session.
//! The SDK's own sessions are bounded too: at most `session_capacity` live per app
//! (an idle one closes after the session retention); past that, `initialize` is
//! refused (429).

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keepsake_shared::event::{EventResult, PartialUpdate};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::SessionManager as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::client_address::ClientAddress;
use crate::bridges::endpoint::{Endpoint, json_schema};
use crate::error::ApiError;
use crate::handler::request::Request as Origin;
use crate::server::keyed::{run_fresh, run_keyed};
use crate::server::{Mounted, Server};

/// The label that keeps this bridge's session names apart from other bridges'.
const BRIDGE: &str = "mcp";

/// The path of `app`'s MCP server.
pub(crate) fn path(app: &str) -> String {
    format!("/apps/{app}/mcp")
}

/// One app's tools, shared by every MCP session's handler.
struct AppTools {
    server: Server,
    app: Mounted,
    endpoints: Vec<Endpoint>,
    tools: Vec<Tool>,
    /// The SDK's sessions of this app (to tell a live `Mcp-Session-Id` from a made-up
    /// one, and to count them).
    sessions: Arc<LocalSessionManager>,
    /// Most live MCP sessions.
    limit: usize,
}

impl axum::extract::FromRef<Arc<AppTools>> for Server {
    fn from_ref(app: &Arc<AppTools>) -> Server {
        app.server.clone()
    }
}

/// What serves MCP requests (the SDK makes one per session, and more for its own
/// look-ups: cheap, and holding nothing).
#[derive(Clone)]
struct Handler(Arc<AppTools>);

/// The MCP servers of every app on `server`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(server: &Server) -> Router<S> {
    let settings = server.settings();
    let mut router = Router::new();
    for (id, mounted) in server.apps() {
        let endpoints = Endpoint::all(mounted.app());
        let tools = endpoints.iter().map(tool).collect();
        // An MCP session lives until its client closes it or it is idle as long as a
        // Keepsake session is kept (the SDK's default, 5 minutes, would orphan carts).
        let mut sessions = LocalSessionManager::default();
        sessions.session_config.keep_alive = Some(settings.session_retention);
        let sessions = Arc::new(sessions);
        let app = Arc::new(AppTools {
            server: server.clone(),
            app: mounted.clone(),
            endpoints,
            tools,
            sessions: sessions.clone(),
            limit: usize::try_from(settings.session_capacity).unwrap_or(usize::MAX),
        });
        let mut config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(Some(settings.heartbeat))
            .with_max_request_body_bytes(settings.max_body_bytes)
            .with_cancellation_token(server.shutdown_token().child_token());
        // The SDK refuses Host headers other than localhost's by default (DNS
        // rebinding protection for a server on loopback); one bound elsewhere is
        // reached by its own names.
        if !settings.addr.ip().is_loopback() {
            config = config.disable_allowed_hosts();
        }
        let handler = app.clone();
        let service =
            StreamableHttpService::new(move || Ok(Handler(handler.clone())), sessions, config);
        let bridge = Router::new()
            .nest_service(&path(&id.0), service)
            .layer(axum::middleware::from_fn_with_state(app, admit));
        router = router.merge(bridge);
    }
    router
}

/// A request that may start an MCP session (a `POST` without `Mcp-Session-Id`: an
/// `initialize`, or a sessionless call, which runs in a session of its own) counts
/// as a session start against the caller's address, as a page's start does, and is
/// refused while the app has `session_capacity` live MCP sessions: opening sessions
/// without end neither grows the server nor locks others out for long.
async fn admit(
    State(app): State<Arc<AppTools>>,
    ClientAddress(address): ClientAddress,
    request: Request,
    next: Next,
) -> Response {
    let starts =
        request.method() == Method::POST && !request.headers().contains_key(SESSION_HEADER);
    if starts {
        if app.sessions.sessions.read().await.len() >= app.limit {
            return ApiError::LimitExceeded(format!(
                "this app has {} live MCP sessions, its most; close one or try again later",
                app.limit
            ))
            .into_response();
        }
        if let Err(refused) = app.server.allow_start(address) {
            return refused.into_response();
        }
    }
    next.run(request).await
}

/// The header the SDK names a request's MCP session by.
const SESSION_HEADER: &str = "mcp-session-id";

/// An endpoint as a tool.
fn tool(endpoint: &Endpoint) -> Tool {
    let properties: Map<String, Value> = endpoint
        .parameters()
        .map(|slot| {
            let mut schema = json_schema(&slot.kind);
            schema["title"] = json!(slot.label);
            schema["default"] = slot.default.clone();
            (slot.name.clone(), schema)
        })
        .collect();
    let returns: Map<String, Value> = endpoint
        .returns()
        .map(|slot| {
            let mut schema = json_schema(&slot.kind);
            schema["title"] = json!(slot.label);
            (slot.name.clone(), schema)
        })
        .collect();
    let object = |properties| {
        let mut schema = JsonObject::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("additionalProperties".into(), json!(false));
        Arc::new(schema)
    };
    Tool::new(
        endpoint.api_name.clone(),
        endpoint.description.clone(),
        object(properties),
    )
    .with_raw_output_schema(object(returns))
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        let title = &self.0.app.app().config().title;
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("keepsake", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Tools of the Keepsake app \"{title}\". Calls in one MCP session share its session state."
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.0.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.0.tools.iter().find(|tool| tool.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let app = &self.0;
        let Some(endpoint) = app.endpoints.iter().find(|e| e.api_name == request.name) else {
            return Err(ErrorData::invalid_params(
                format!("no tool named {:?}", request.name),
                None,
            ));
        };
        let parts = context.extensions.get::<Parts>();
        let arguments = request.arguments.unwrap_or_default();
        // A caller that asks for progress (a progress token) gets a streaming
        // listener's partial outputs as progress notifications, in order, each
        // message the outputs as the result names them; then the result.
        let outcome = match context.meta.get_progress_token() {
            Some(token) => {
                let (sink, mut partials) = crate::server::partials();
                let running = run(app, endpoint, parts, arguments, Some(sink));
                let peer = &context.peer;
                let forward = async {
                    let mut sent = 0u32;
                    // Ends when the event is over and its sender is dropped.
                    while let Some(partial) = partials.recv().await {
                        sent += 1;
                        let outputs = endpoint.named_outputs(&EventResult {
                            updates: partial.updates,
                            ..EventResult::default()
                        });
                        let mut progress =
                            ProgressNotificationParam::new(token.clone(), f64::from(sent));
                        progress.message = Some(Value::Object(outputs).to_string());
                        // A client gone is the SDK's to notice; the event goes on.
                        let _ = peer.notify_progress(progress).await;
                    }
                };
                let (outcome, ()) = tokio::join!(running, forward);
                outcome
            }
            None => run(app, endpoint, parts, arguments, None).await,
        };
        Ok(match outcome {
            Ok(outputs) => CallToolResult::structured(Value::Object(outputs)),
            // A tool error the caller sees, worded as every bridge words it.
            Err(error) => CallToolResult::error(vec![ContentBlock::text(
                crate::bridges::user_message(&error),
            )]),
        }
        .into())
    }
}

/// Runs `endpoint` with `arguments` in the Keepsake session of the request's MCP
/// session; a request of no live MCP session (a sessionless protocol version, or an
/// `Mcp-Session-Id` the SDK does not hold) runs in a fresh session of its own.
async fn run(
    app: &AppTools,
    endpoint: &Endpoint,
    parts: Option<&Parts>,
    arguments: JsonObject,
    partials: Option<mpsc::Sender<PartialUpdate>>,
) -> Result<Map<String, Value>, ApiError> {
    let request = endpoint.request_named(arguments)?;
    let named = parts
        .and_then(|parts| parts.headers.get(SESSION_HEADER))
        .and_then(|value| value.to_str().ok());
    let live = match named {
        Some(key) => app
            .sessions
            .has_session(&Arc::from(key))
            .await
            .unwrap_or(false)
            .then_some(key),
        None => None,
    };
    let origin = match parts {
        Some(parts) => Origin::new(
            address(parts.clone(), &app.server).await?,
            parts.headers.clone(),
        ),
        None => Origin::default(),
    };
    let result = match live {
        // Its start was counted by `admit`, at `initialize`.
        Some(key) => {
            run_keyed(
                &app.server,
                &app.app,
                BRIDGE,
                key,
                None,
                None,
                request,
                origin,
                partials,
            )
            .await?
        }
        None => {
            // A request without a session id was counted by `admit`; a made-up one
            // passed it uncounted: count it now.
            let uncounted = match named {
                Some(_) => origin.client_address(),
                None => None,
            };
            run_fresh(&app.server, &app.app, uncounted, request, origin, partials).await?
        }
    };
    let mut outputs = endpoint.named_outputs(&result);
    // An output the event did not set is left out (the output schema requires none).
    outputs.retain(|_, value| !value.is_null());
    Ok(outputs)
}

/// The caller's address, as the rest of the server sees it (trusted proxies too).
async fn address(mut parts: Parts, server: &Server) -> Result<Option<IpAddr>, ApiError> {
    let ClientAddress(address) = ClientAddress::from_request_parts(&mut parts, server).await?;
    Ok(address)
}
