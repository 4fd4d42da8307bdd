//! The Gradio-compatible bridge: what the official `gradio_client` (Python, and the
//! JavaScript client's same protocol, `sse_v3`) calls, under each app's URL:
//!
//! - `GET /apps/{app}/config` and `GET /apps/{app}/gradio_api/info` ([`config`]);
//! - `POST .../gradio_api/queue/join` then `GET .../gradio_api/queue/data?session_hash=`
//!   (the event's messages, [`queue`]; a streaming listener's partials as
//!   `process_generating`, which `submit()` iterates);
//! - `POST .../gradio_api/call/{api_name}` then `GET .../call/{api_name}/{event_id}`
//!   (the two-step calls of Gradio's curl examples, [`calls`]);
//! - `POST .../gradio_api/run/{api_name}` (and `.../api/{api_name}`): one call, one
//!   JSON answer, without the queue ([`run`]).
//!
//! A call runs the listener as a page's event does, in the Keepsake session the
//! client's `session_hash` names ([`crate::server::keyed`]): one `Client` keeps its
//! cart across calls, another `Client` has its own.

mod calls;
mod config;
mod queue;
mod run;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use self::calls::Calls;
use self::queue::{Next, Queue};
use super::client_address::ClientAddress;
use super::json::ApiJson;
use crate::bridges::endpoint::Endpoint;
use crate::error::ApiError;
use crate::handler::request::Request;
use crate::server::keyed::{check_key, keyed_session, run_fresh, run_keyed};
use crate::server::{Mounted, Server};
use keepsake_shared::diff;
use keepsake_shared::event::NoticeLevel;
use keepsake_shared::event::{EventRequest, EventResult, PartialUpdate};
use tokio::sync::mpsc;

/// The label that keeps this bridge's session names apart from other bridges'.
const BRIDGE: &str = "gradio";

/// One app behind the bridge.
struct AppBridge {
    app: Mounted,
    endpoints: Vec<Endpoint>,
    config: Value,
    info: Value,
    queue: Queue,
    calls: Calls,
}

struct Bridge {
    server: Server,
    apps: HashMap<String, AppBridge>,
}

type Shared = Arc<Bridge>;

impl axum::extract::FromRef<Shared> for Server {
    fn from_ref(bridge: &Shared) -> Server {
        bridge.server.clone()
    }
}

impl Bridge {
    fn app(&self, app: &str) -> Result<&AppBridge, ApiError> {
        self.apps.get(app).ok_or_else(|| ApiError::unknown_app(app))
    }

    /// Runs `request` in the session `session_hash` names (started if need be), or,
    /// without one, in a fresh session of its own; a start counts against `address`.
    async fn run(
        &self,
        app: &Mounted,
        session_hash: Option<&str>,
        request: EventRequest,
        origin: Request,
    ) -> Result<EventResult, ApiError> {
        let address = origin.client_address();
        match session_hash {
            Some(key) => {
                run_keyed(
                    &self.server,
                    app,
                    BRIDGE,
                    key,
                    address,
                    None,
                    request,
                    origin,
                    None,
                )
                .await
            }
            None => run_fresh(&self.server, app, address, request, origin, None).await,
        }
    }
}

impl AppBridge {
    /// The endpoint called `api_name`.
    fn endpoint_named(&self, api_name: &str) -> Result<&Endpoint, ApiError> {
        self.endpoints
            .iter()
            .find(|endpoint| endpoint.api_name == api_name)
            .ok_or_else(|| {
                ApiError::BadRequest(format!("this app has no endpoint named {api_name:?}"))
            })
    }
}

/// The bridge's routes for every app on `server`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(server: &Server) -> Router<S> {
    let limit = usize::try_from(server.settings().session_capacity).unwrap_or(usize::MAX);
    let apps = server
        .apps()
        .map(|(id, app)| {
            let endpoints = Endpoint::all(app.app());
            let bridge = AppBridge {
                config: config::config(app.app().config(), &endpoints),
                info: config::info(&endpoints),
                endpoints,
                app: app.clone(),
                queue: Queue::new(limit),
                calls: Calls::new(limit),
            };
            (id.0.clone(), bridge)
        })
        .collect();
    let bridge = Arc::new(Bridge {
        server: server.clone(),
        apps,
    });
    let api = "/apps/{app}/gradio_api";
    Router::new()
        .route("/apps/{app}/config", get(get_config))
        .route(&format!("{api}/info"), get(get_info))
        .route(&format!("{api}/queue/join"), post(join))
        .route(&format!("{api}/queue/data"), get(data))
        .route(&format!("{api}/call/{{api_name}}"), post(calls::start))
        .route(
            &format!("{api}/call/{{api_name}}/{{event_id}}"),
            get(calls::result),
        )
        .route(&format!("{api}/run/{{api_name}}"), post(run::run))
        .route(&format!("{api}/api/{{api_name}}"), post(run::run))
        .route(&format!("{api}/cancel"), post(cancel))
        .route(&format!("{api}/reset"), post(cancel))
        .with_state(bridge)
}

async fn get_config(
    State(bridge): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(bridge.app(&app)?.config.clone()))
}

async fn get_info(
    State(bridge): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(bridge.app(&app)?.info.clone()))
}

/// Events are all-or-nothing and short: one that started finishes. A cancel is
/// answered, and changes nothing.
async fn cancel() -> Json<Value> {
    Json(json!({ "success": false }))
}

/// The body of `queue/join` (what `gradio_client` sends; other fields are ignored).
#[derive(Deserialize)]
struct Join {
    data: Vec<Value>,
    fn_index: u32,
    session_hash: String,
}

async fn join(
    State(bridge): State<Shared>,
    Path(app): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Join>,
) -> Result<Json<Value>, ApiError> {
    let app_bridge = bridge.app(&app)?;
    let endpoint = app_bridge
        .endpoints
        .iter()
        .find(|endpoint| endpoint.listener.0 == body.fn_index)
        .ok_or(ApiError::UnknownListener(body.fn_index))?
        .clone();
    // The session first: a start refused (the address's allowance, capacity) is the
    // join's answer, and takes no place in the queue.
    let session = keyed_session(
        &bridge.server,
        &app_bridge.app,
        BRIDGE,
        &body.session_hash,
        address,
    )
    .await?
    .id;
    let event_id = event_id();
    app_bridge.queue.join(&body.session_hash, &event_id)?;
    let mut completion = Completion {
        bridge: bridge.clone(),
        app,
        key: body.session_hash,
        event_id: event_id.clone(),
        started: Instant::now(),
        done: false,
    };
    tokio::spawn(async move {
        let Ok(app_bridge) = completion.bridge.app(&completion.app) else {
            return;
        };
        let starts = json!({"msg": "process_starts", "event_id": completion.event_id, "eta": null});
        app_bridge.queue.post(&completion.key, starts);
        let request = endpoint.request_positional(body.data);
        let outcome = match request {
            Ok(request) => {
                let bridge = &completion.bridge;
                let (sink, partials) = crate::server::partials();
                let running = run_keyed(
                    &bridge.server,
                    &app_bridge.app,
                    BRIDGE,
                    &completion.key,
                    address,
                    Some(session),
                    request,
                    Request::new(address, headers),
                    Some(sink),
                );
                let generating = |message| app_bridge.queue.post(&completion.key, message);
                let forward =
                    forward_partials(&endpoint, &completion.event_id, partials, generating);
                let (outcome, ()) = tokio::join!(running, forward);
                outcome.map(|result| {
                    // The listeners' notices, as Gradio's `gr.Info`/`gr.Warning` log
                    // messages, before the event's end.
                    for notice in &result.notices {
                        let level = match notice.level {
                            NoticeLevel::Info => "info",
                            NoticeLevel::Warning => "warning",
                        };
                        let log = json!({"msg": "log", "event_id": completion.event_id,
                            "log": notice.message, "level": level, "duration": null, "visible": true});
                        app_bridge.queue.post(&completion.key, log);
                    }
                    endpoint.output_values(&result)
                })
            }
            Err(error) => Err(error),
        };
        completion.finish(outcome);
    });
    Ok(Json(json!({ "event_id": event_id })))
}

/// A streaming listener's partial outputs as Gradio's `process_generating` messages
/// (protocol `sse_v3`, what `gradio_client`'s `submit()` iterates): the first
/// carries one value per output, each later one a diff per output in Gradio's own
/// format ([`diff`]: a growing reply sends its new words) against what the client
/// holds; an output a partial did not set stays as it was. Ends when the event is
/// over.
async fn forward_partials(
    endpoint: &Endpoint,
    event_id: &str,
    mut partials: mpsc::Receiver<PartialUpdate>,
    post: impl Fn(Value),
) {
    // What the client holds for each output, once the first partial is out.
    let mut held: Option<Vec<Value>> = None;
    while let Some(partial) = partials.recv().await {
        let values = endpoint.output_values(&EventResult {
            updates: partial.updates,
            ..EventResult::default()
        });
        let data: Vec<Value> = match &mut held {
            None => {
                held = Some(values.clone());
                values
            }
            Some(held) => held
                .iter_mut()
                .zip(values)
                .map(|(held, value)| match value {
                    // Not set by this partial: unchanged.
                    Value::Null => json!([]),
                    value => {
                        let edits = diff::diff(held, &value);
                        *held = value;
                        json!(edits)
                    }
                })
                .collect(),
        };
        post(json!({
            "msg": "process_generating", "event_id": event_id, "success": true,
            "output": { "data": data, "is_generating": true },
        }));
    }
}

/// An event's last message, posted once: by the task when it ends, or, if the task
/// is dropped first (a panic, the runtime going away), as a failure, so that the
/// client's stream never waits for an event that will not end.
struct Completion {
    bridge: Shared,
    app: String,
    key: String,
    event_id: String,
    started: Instant,
    done: bool,
}

impl Completion {
    fn finish(&mut self, outcome: Result<Vec<Value>, ApiError>) {
        self.done = true;
        let message = match outcome {
            Ok(data) => json!({
                "msg": "process_completed", "event_id": self.event_id, "success": true,
                "output": { "data": data, "is_generating": false, "duration": self.started.elapsed().as_secs_f64() },
            }),
            Err(error) => json!({
                "msg": "process_completed", "event_id": self.event_id, "success": false,
                "output": { "error": crate::bridges::user_message(&error), "title": "Error" },
            }),
        };
        if let Ok(app) = self.bridge.app(&self.app) {
            app.queue.complete(&self.key, message);
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Err(ApiError::Internal(
                "the event was abandoned; nothing was changed".into(),
            )));
        }
    }
}

#[derive(Deserialize)]
struct DataQuery {
    session_hash: String,
}

/// The client's messages as server-sent events, `data: {json}` each; a
/// `heartbeat` message while nothing comes (Gradio's clients take only `data:`
/// lines, so no comment keep-alives), `close_stream` at the end.
async fn data(
    State(bridge): State<Shared>,
    Path(app): Path<String>,
    Query(query): Query<DataQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    bridge.app(&app)?;
    check_key(&query.session_hash)?;
    let heartbeat = bridge.server.settings().heartbeat;
    let key = query.session_hash;
    let stream = futures::stream::unfold(Some((bridge, app, key)), move |state| async move {
        let (bridge, app, key) = state?;
        let queue = |bridge: &Bridge| {
            bridge
                .app(&app)
                .map_or(Next::Close, |app| app.queue.next(&key))
        };
        let mut next = queue(&bridge);
        let message = loop {
            match next {
                Next::Send(message) => break Some(message),
                Next::Close => break None,
                Next::Wait(arrived) => {
                    let arrival = arrived.notified();
                    tokio::pin!(arrival);
                    // Registered before looking again: a message posted in between
                    // wakes it.
                    arrival.as_mut().enable();
                    next = queue(&bridge);
                    if let Next::Wait(_) = next {
                        let shutdown = bridge.server.shutdown_token().clone();
                        tokio::select! {
                            // The server stops: the stream ends (its events finish,
                            // as every running event does).
                            () = shutdown.cancelled() => break None,
                            arrived = tokio::time::timeout(heartbeat, arrival) => {
                                if arrived.is_err() {
                                    break Some(json!({ "msg": "heartbeat" }));
                                }
                            }
                        }
                        next = queue(&bridge);
                    }
                }
            }
        };
        Some(match message {
            Some(message) => (
                Ok(Event::default().data(message.to_string())),
                Some((bridge, app, key)),
            ),
            None => {
                let close = json!({ "msg": "close_stream", "event_id": null });
                (Ok(Event::default().data(close.to_string())), None)
            }
        })
    });
    Ok(Sse::new(stream))
}

/// A fresh event id: 128 random bits, hex.
fn event_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
