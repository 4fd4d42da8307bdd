//! The Gradio-compatible door: what the official `gradio_client` (Python, and the
//! JavaScript client's same protocol, `sse_v3`) calls, under each app's URL:
//!
//! - `GET /apps/{app}/config` and `GET /apps/{app}/gradio_api/info` ([`config`]);
//! - `POST .../gradio_api/queue/join` then `GET .../gradio_api/queue/data?session_hash=`
//!   (the event's messages, [`queue`]);
//! - `POST .../gradio_api/call/{api_name}` then `GET .../call/{api_name}/{event_id}`
//!   (the two-step calls of Gradio's curl examples, [`calls`]);
//! - `POST .../gradio_api/run/{api_name}` (and `.../api/{api_name}`): one call, one
//!   JSON answer, without the queue ([`run`]).
//!
//! A call runs the listener as a page's event does, in the Keepsake session the
//! client's `session_hash` names ([`crate::doors::sessions`]): one `Client` keeps its
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
use crate::doors::endpoint::Endpoint;
use crate::doors::sessions::{check_key, keyed_session, run_fresh, run_keyed};
use crate::engine::Engine;
use crate::error::ApiError;
use crate::request::Request;
use crate::server::Server;
use keepsake_shared::event::NoticeLevel;
use keepsake_shared::event::{EventRequest, EventResult};

/// The label that keeps this door's session names apart from other doors'.
const DOOR: &str = "gradio";

/// One app behind the door.
struct AppDoor {
    engine: Arc<Engine>,
    endpoints: Vec<Endpoint>,
    config: Value,
    info: Value,
    queue: Queue,
    calls: Calls,
}

struct Door {
    server: Server,
    apps: HashMap<String, AppDoor>,
}

type Shared = Arc<Door>;

impl axum::extract::FromRef<Shared> for Server {
    fn from_ref(door: &Shared) -> Server {
        door.server.clone()
    }
}

impl Door {
    fn app(&self, app: &str) -> Result<&AppDoor, ApiError> {
        self.apps.get(app).ok_or_else(|| ApiError::unknown_app(app))
    }

    /// Runs `request` in the session `session_hash` names (started if need be), or,
    /// without one, in a fresh session of its own; a start counts against `address`.
    async fn run(
        &self,
        engine: &Engine,
        session_hash: Option<&str>,
        request: EventRequest,
        origin: Request,
    ) -> Result<EventResult, ApiError> {
        let address = origin.client_address();
        match session_hash {
            Some(key) => {
                run_keyed(
                    &self.server,
                    engine,
                    DOOR,
                    key,
                    address,
                    None,
                    request,
                    origin,
                )
                .await
            }
            None => run_fresh(&self.server, engine, address, request, origin).await,
        }
    }
}

impl AppDoor {
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

/// The door's routes for every app on `server`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(server: &Server) -> Router<S> {
    let limit = usize::try_from(server.settings().session_capacity).unwrap_or(usize::MAX);
    let apps = server
        .inner
        .apps
        .iter()
        .map(|(id, engine)| {
            let endpoints = Endpoint::all(&engine.app);
            let door = AppDoor {
                config: config::config(engine.app.config(), &endpoints),
                info: config::info(&endpoints),
                endpoints,
                engine: engine.clone(),
                queue: Queue::new(limit),
                calls: Calls::new(limit),
            };
            (id.0.clone(), door)
        })
        .collect();
    let door = Arc::new(Door {
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
        .with_state(door)
}

async fn get_config(
    State(door): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(door.app(&app)?.config.clone()))
}

async fn get_info(
    State(door): State<Shared>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(door.app(&app)?.info.clone()))
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
    State(door): State<Shared>,
    Path(app): Path<String>,
    ClientAddress(address): ClientAddress,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<Join>,
) -> Result<Json<Value>, ApiError> {
    let app_door = door.app(&app)?;
    let endpoint = app_door
        .endpoints
        .iter()
        .find(|endpoint| endpoint.dependency.0 == body.fn_index)
        .ok_or(ApiError::UnknownDependency(body.fn_index))?
        .clone();
    // The session first: a start refused (the address's allowance, capacity) is the
    // join's answer, and takes no place in the queue.
    let session = keyed_session(
        &door.server,
        &app_door.engine,
        DOOR,
        &body.session_hash,
        address,
    )
    .await?
    .id;
    let event_id = event_id();
    app_door.queue.join(&body.session_hash, &event_id)?;
    let mut completion = Completion {
        door: door.clone(),
        app,
        key: body.session_hash,
        event_id: event_id.clone(),
        started: Instant::now(),
        done: false,
    };
    tokio::spawn(async move {
        let Ok(app_door) = completion.door.app(&completion.app) else {
            return;
        };
        let starts = json!({"msg": "process_starts", "event_id": completion.event_id, "eta": null});
        app_door.queue.post(&completion.key, starts);
        let request = endpoint.request_positional(body.data);
        let outcome = match request {
            Ok(request) => {
                let door = &completion.door;
                run_keyed(
                    &door.server,
                    &app_door.engine,
                    DOOR,
                    &completion.key,
                    address,
                    Some(session),
                    request,
                    Request::new(address, headers),
                )
                .await
                .map(|result| {
                    // The listeners' notices, as Gradio's `gr.Info`/`gr.Warning` log
                    // messages, before the event's end.
                    for notice in &result.notices {
                        let level = match notice.level {
                            NoticeLevel::Info => "info",
                            NoticeLevel::Warning => "warning",
                        };
                        let log = json!({"msg": "log", "event_id": completion.event_id,
                            "log": notice.message, "level": level, "duration": null, "visible": true});
                        app_door.queue.post(&completion.key, log);
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

/// An event's last message, posted once: by the task when it ends, or, if the task
/// is dropped first (a panic, the runtime going away), as a failure, so that the
/// client's stream never waits for an event that will not end.
struct Completion {
    door: Shared,
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
                "output": { "error": crate::doors::user_message(&error), "title": "Error" },
            }),
        };
        if let Ok(app) = self.door.app(&self.app) {
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
    State(door): State<Shared>,
    Path(app): Path<String>,
    Query(query): Query<DataQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    door.app(&app)?;
    check_key(&query.session_hash)?;
    let heartbeat = door.server.settings().heartbeat;
    let key = query.session_hash;
    let stream = futures::stream::unfold(Some((door, app, key)), move |state| async move {
        let (door, app, key) = state?;
        let queue = |door: &Door| {
            door.app(&app)
                .map_or(Next::Close, |app| app.queue.next(&key))
        };
        let mut next = queue(&door);
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
                    next = queue(&door);
                    if let Next::Wait(_) = next {
                        let shutdown = door.server.inner.shutdown.clone();
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
                        next = queue(&door);
                    }
                }
            }
        };
        Some(match message {
            Some(message) => (
                Ok(Event::default().data(message.to_string())),
                Some((door, app, key)),
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
