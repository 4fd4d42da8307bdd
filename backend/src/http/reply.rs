//! `POST .../events/stream` ([`keepsake_shared::api::RunEventStreamed`]): an event's
//! answer as newline-delimited JSON, one [`StreamedEvent`] a line, written as the
//! listener yields (`Server::run_event_streamed`, `server/reply.rs`). The body drives the event: a
//! client that goes away drops it, and nothing of it is written.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use keepsake_shared::event::StreamedEvent;

use super::routes::{event_request, event_span};
use crate::error::ApiError;
use crate::server::Answer;
use crate::server::Server;

/// The media type of the answer: one JSON document a line.
pub(crate) const NDJSON: &str = "application/x-ndjson";

pub(super) async fn run_event_streamed(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
    http_request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (id, request, origin) = event_request(&server, &app, &session, http_request).await?;
    let span = event_span(&app, &id, &request);
    let mut answer = Box::pin(server.run_event_streamed(&app, id, request, origin, span)?);
    // An error before the first line is answered as the plain route answers it (its
    // status, `Retry-After`), so clients treat both routes' refusals alike.
    let first = match answer.next().await {
        Some(Answer::Done(Err(error))) => return Err(error),
        Some(first) => first,
        None => return Err(ApiError::Internal("an event answered nothing".into())),
    };
    let lines = futures::stream::once(async move { first })
        .chain(answer)
        .map(|message| Ok::<_, Infallible>(line(message)));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(NDJSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}

/// One message as a line of JSON.
fn line(message: Answer) -> Bytes {
    let message = match message {
        Answer::Partial(partial) => StreamedEvent::Partial(partial),
        Answer::Done(Ok(result)) => StreamedEvent::Done(result),
        Answer::Done(Err(error)) => {
            let body = error.body();
            // Counted and logged as the plain route's failures are (the response
            // itself is not used: the status has gone out already).
            drop(error.into_response());
            StreamedEvent::Failed(body)
        }
    };
    let mut line = serde_json::to_vec(&message).unwrap_or_else(|error| {
        // Every field is a plain JSON type; this cannot fail, but says so if it does.
        let body = ApiError::Internal(format!("an answer could not be written: {error}")).body();
        serde_json::to_vec(&StreamedEvent::Failed(body)).unwrap_or_default()
    });
    line.push(b'\n');
    Bytes::from(line)
}
