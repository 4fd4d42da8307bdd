//! Gradio's two-step calls, as its curl examples use them:
//! `POST .../call/{api_name}` with `{"data": [parameters...]}` runs the listener and
//! answers `{"event_id": ...}`; `GET .../call/{api_name}/{event_id}` answers the
//! outcome once as server-sent events: `event: complete` with the outputs, or
//! `event: error` with the message.
//!
//! `data` holds the parameters only (no `null`s for state slots), and the answer
//! the returned outputs only. What the request gets wrong (its shape, a value, a
//! limit) is the `POST`'s own answer, kept nowhere. A body with a
//! `session_hash` runs in that client's session, as `queue/join` does; without one,
//! each call gets a session of its own. Outcomes wait at most
//! [`OUTCOME_KEPT_FOR`] for their `GET`, and at most `limit` at once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::client_address::ClientAddress;
use super::super::json::ApiJson;
use super::Shared;
use crate::error::ApiError;
use crate::handler::request::Request;

/// How long an outcome waits for its `GET`.
pub(crate) const OUTCOME_KEPT_FOR: Duration = Duration::from_secs(60);

/// An outcome waiting for its `GET`: when it was made, the endpoint's name (which
/// the `GET` must repeat), and the outputs or the error's message.
type Waiting = (Instant, String, Result<Vec<Value>, String>);

/// One app's outcomes waiting for their `GET`, by event id.
pub(crate) struct Calls {
    outcomes: Mutex<HashMap<String, Waiting>>,
    limit: usize,
}

impl Calls {
    pub(crate) fn new(limit: usize) -> Self {
        Calls {
            outcomes: Mutex::new(HashMap::new()),
            limit: limit.max(1),
        }
    }

    /// Refuses a call while `limit` outcomes wait (after dropping the expired).
    fn make_room(&self) -> Result<(), ApiError> {
        let mut outcomes = self.lock();
        if outcomes.len() >= self.limit {
            outcomes.retain(|_, (at, _, _)| at.elapsed() < OUTCOME_KEPT_FOR);
            if outcomes.len() >= self.limit {
                return Err(ApiError::AtCapacity);
            }
        }
        Ok(())
    }

    /// Keeps an outcome for its `GET`, unless `limit` wait (others made room
    /// meanwhile): then the call's answer says so, and the outcome is not kept.
    fn keep(
        &self,
        event_id: &str,
        api_name: String,
        outcome: Result<Vec<Value>, String>,
    ) -> Result<(), ApiError> {
        let mut outcomes = self.lock();
        if outcomes.len() >= self.limit {
            return Err(ApiError::AtCapacity);
        }
        outcomes.insert(event_id.to_owned(), (Instant::now(), api_name, outcome));
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Waiting>> {
        self.outcomes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Deserialize)]
pub(super) struct CallBody {
    data: Vec<Value>,
    #[serde(default)]
    session_hash: Option<String>,
}

pub(super) async fn start(
    State(bridge): State<Shared>,
    Path((app, api_name)): Path<(String, String)>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CallBody>,
) -> Result<Json<Value>, ApiError> {
    let app_bridge = bridge.app(&app)?;
    let endpoint = app_bridge.endpoint_named(&api_name)?;
    // What the request gets wrong is its answer (400), not an outcome kept for later.
    let request = endpoint.request_parameters(body.data)?;
    app_bridge.calls.make_room()?;
    let app = &app_bridge.app;
    let origin = Request::new(address, headers);
    let outcome = bridge
        .run(app, body.session_hash.as_deref(), request, origin)
        .await;
    let outcome = match outcome {
        // The returned outputs only, as `data` held the parameters only.
        Ok(result) => Ok(endpoint.returned_values(&result)),
        // Refused input, limits, an unknown session: the request's answer.
        Err(error) if !crate::bridges::listener_failed(&error) => return Err(error),
        Err(error) => Err(crate::bridges::user_message(&error)),
    };
    let event_id = super::event_id();
    app_bridge.calls.keep(&event_id, api_name, outcome)?;
    Ok(Json(json!({ "event_id": event_id })))
}

pub(super) async fn result(
    State(bridge): State<Shared>,
    Path((app, api_name, event_id)): Path<(String, String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let app_bridge = bridge.app(&app)?;
    let outcome = {
        let mut outcomes = app_bridge.calls.lock();
        match outcomes.get(&event_id) {
            Some((at, name, _)) if *name == api_name && at.elapsed() < OUTCOME_KEPT_FOR => {
                outcomes.remove(&event_id).map(|(_, _, outcome)| outcome)
            }
            _ => None,
        }
    }
    .ok_or_else(|| {
        ApiError::BadRequest(format!(
            "no outcome of `{api_name}` waits under this event id (each is given once, within {} s)",
            OUTCOME_KEPT_FOR.as_secs()
        ))
    })?;
    let event = match outcome {
        Ok(data) => Event::default()
            .event("complete")
            .data(Value::from(data).to_string()),
        Err(message) => Event::default()
            .event("error")
            .data(Value::from(message).to_string()),
    };
    Ok(Sse::new(futures::stream::iter([Ok(event)])))
}
