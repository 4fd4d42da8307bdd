//! `POST .../events/stream` ([`keepsake_shared::api::RunEventStreamed`]): an event's
//! answer as newline-delimited JSON, one [`keepsake_shared::event::StreamedEvent`] a
//! line, written as the listener yields (`Server::run_event_streamed`,
//! `server/replies.rs`), with the reply's id in [`api::REPLY_HEADER`]; and `POST
//! .../replies/{reply}` ([`api::ResumeReply`]), the rest of it after a dropped
//! connection. The event runs on whether the body is read or not.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use keepsake_shared::ReplyId;
use keepsake_shared::api;
use keepsake_shared::event::Resume;

use super::json::ApiJson;
use super::routes::{event_request, event_span, parse_session};
use crate::error::ApiError;
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
    // An error before the first line is answered as the plain route answers it (its
    // status, `Retry-After`), so clients treat both routes' refusals alike.
    let streamed = server
        .run_event_streamed(&app, id, request, origin, span)
        .await?;
    let mut response = lines(streamed.lines);
    response.headers_mut().insert(
        HeaderName::from_static(api::REPLY_HEADER),
        HeaderValue::from(streamed.id.0),
    );
    Ok(response)
}

pub(super) async fn resume_reply(
    State(server): State<Server>,
    Path((app, session, reply)): Path<(String, String, String)>,
    ApiJson(resume): ApiJson<Resume>,
) -> Result<Response, ApiError> {
    let session = parse_session(&session)?;
    let reply: ReplyId = reply
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{reply:?} is not a reply's id")))?;
    let rest = server
        .resume_reply(&app, session, reply, resume.after)
        .await?;
    Ok(lines(rest))
}

/// An answer whose body is `lines`, as they come.
fn lines(lines: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(NDJSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(lines.map(Ok::<_, Infallible>)),
    )
        .into_response()
}
