//! Gradio's queue-free call, `POST .../gradio_api/run/{api_name}` (and its older
//! spelling `.../gradio_api/api/{api_name}`): one request, one answer, no event
//! stream. Gradio serves it for apps that open their API (`queue(api_open=True)`)
//! and for events without the queue; scripts and load tools use it because it is a
//! plain JSON round trip.
//!
//! The body is the same as a `queue/join`'s, `{"data": [...], "session_hash": ...}`:
//! `data` holds one value per input, `null` for state slots, and the answer's
//! `data` one value per output, as a `process_completed` message holds them. A
//! `session_hash` names the client's session, as `queue/join`'s does; without one,
//! the call runs in a session of its own. What the request gets wrong is a 4xx
//! answer; a handler's error is Gradio's 500 with `{"error": message}`.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::client_address::ClientAddress;
use super::super::json::ApiJson;
use super::Shared;
use crate::error::ApiError;
use crate::handler::request::Request;

#[derive(Deserialize)]
pub(super) struct RunBody {
    data: Vec<serde_json::Value>,
    #[serde(default)]
    session_hash: Option<String>,
}

pub(super) async fn run(
    State(bridge): State<Shared>,
    Path((app, api_name)): Path<(String, String)>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let app_bridge = bridge.app(&app)?;
    let endpoint = app_bridge.endpoint_named(&api_name)?;
    let request = endpoint.request_positional(body.data)?;
    let app = &app_bridge.app;
    let origin = Request::new(address, headers);
    let outcome = bridge
        .run(app, body.session_hash.as_deref(), request, origin)
        .await;
    match outcome {
        Ok(result) => Ok(Json(json!({
            "data": endpoint.output_values(&result),
            "is_generating": false,
            "duration": started.elapsed().as_secs_f64(),
        }))
        .into_response()),
        // Refused input, limits, an unknown session: the request's own answer.
        Err(error) if !crate::bridges::listener_failed(&error) => Err(error),
        // The listener failed: nothing was written, and the client gets its message
        // the way Gradio words a failed direct call.
        Err(error) => Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": crate::bridges::user_message(&error) })),
        )
            .into_response()),
    }
}
