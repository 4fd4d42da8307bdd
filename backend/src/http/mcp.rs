//! The MCP door: an MCP server (the official SDK, `rmcp`, over streamable HTTP) at
//! `/apps/{app}/mcp` for each app. Every listener with an `api_name` is a tool: its
//! parameters are the input schema's properties (all optional: a parameter left out
//! takes its component's initial value), its description is the listener's
//! `api_description`, and its result is the object of its returned outputs by name
//! (structured content, and the same JSON as text).
//!
//! Each MCP session is a Keepsake session, named by the `Mcp-Session-Id` the SDK
//! issues through [`crate::doors::sessions`]: two `add_items` calls in one MCP
//! session grow one cart; another MCP session has its own. A client that speaks a
//! sessionless protocol version gets a fresh session per call (no state carries).
//! Starts count against the caller's address like a page's; capacity, retention and
//! the event rate are those of every session.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

use super::client_address::ClientAddress;
use crate::doors::endpoint::{Endpoint, json_schema};
use crate::doors::sessions::keyed_session;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::server::Server;

/// The label that keeps this door's session names apart from other doors'.
const DOOR: &str = "mcp";

/// The path of `app`'s MCP server.
pub(crate) fn path(app: &str) -> String {
    format!("/apps/{app}/mcp")
}

/// One app's tools, shared by every MCP session's handler.
struct AppTools {
    server: Server,
    engine: Arc<Engine>,
    endpoints: Vec<Endpoint>,
    tools: Vec<Tool>,
}

/// What serves one MCP session (the SDK makes one per session, cheaply).
#[derive(Clone)]
struct Handler(Arc<AppTools>);

/// The MCP servers of every app on `server`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(server: &Server) -> Router<S> {
    let mut router = Router::new();
    for (id, engine) in &server.inner.apps {
        let endpoints = Endpoint::all(&engine.app);
        let tools = endpoints.iter().map(tool).collect();
        let app = Arc::new(AppTools {
            server: server.clone(),
            engine: engine.clone(),
            endpoints,
            tools,
        });
        let mut config = StreamableHttpServerConfig::default()
            .with_sse_keep_alive(Some(server.settings().heartbeat))
            .with_cancellation_token(server.inner.shutdown.child_token());
        // The SDK refuses Host headers other than localhost's by default (DNS
        // rebinding protection for a server on loopback); one bound elsewhere is
        // reached by its own names.
        if !server.settings().addr.ip().is_loopback() {
            config = config.disable_allowed_hosts();
        }
        let service = StreamableHttpService::new(
            move || Ok(Handler(app.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        router = router.nest_service(&path(&id.0), service);
    }
    router
}

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
        let title = &self.0.engine.app.config().title;
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
        let outcome = run(app, endpoint, parts, request.arguments.unwrap_or_default()).await;
        Ok(match outcome {
            Ok(outputs) => CallToolResult::structured(Value::Object(outputs)),
            // A tool error the caller sees, worded as every door words it.
            Err(error) => {
                CallToolResult::error(vec![ContentBlock::text(crate::doors::user_message(&error))])
            }
        }
        .into())
    }
}

/// Runs `endpoint` with `arguments` in the session of the request's MCP session.
async fn run(
    app: &AppTools,
    endpoint: &Endpoint,
    parts: Option<&Parts>,
    arguments: JsonObject,
) -> Result<Map<String, Value>, ApiError> {
    let request = endpoint.request_named(arguments)?;
    let address = match parts {
        Some(parts) => address(parts.clone(), &app.server).await?,
        None => None,
    };
    let mcp_session = parts
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|value| value.to_str().ok());
    let session = match mcp_session {
        Some(key) => keyed_session(&app.server, &app.engine, DOOR, key, address).await?,
        None => {
            app.server.allow_start(address)?;
            app.engine.create_session().await?
        }
    };
    let result = app.engine.run_event(&session.id, request).await?;
    Ok(endpoint.named_outputs(&result))
}

/// The caller's address, as the rest of the server sees it (trusted proxies too).
async fn address(mut parts: Parts, server: &Server) -> Result<Option<IpAddr>, ApiError> {
    let ClientAddress(address) = ClientAddress::from_request_parts(&mut parts, server).await?;
    Ok(address)
}
