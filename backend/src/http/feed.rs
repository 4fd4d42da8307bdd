//! One page's feed as Server-Sent Events: each [`FeedMessage`] of the page's
//! attachment (`Server::attach_page`, `server/page.rs`, which keeps the limits and
//! the lifecycle) as one event named [`SSE_EVENT_NAME`].

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use futures::{Stream, StreamExt};
use keepsake_shared::feed::{FeedMessage, SSE_EVENT_NAME};
use tokio_stream::wrappers::ReceiverStream;

use super::routes::parse_session;
use crate::error::ApiError;
use crate::server::Server;

pub(super) async fn feed(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let id = parse_session(&session)?;
    let messages = server.attach_page(&app, &id).await?;
    let events =
        ReceiverStream::new(messages).filter_map(|message| async move { event(&message).map(Ok) });
    Ok(Sse::new(events))
}

/// A message as an SSE event (none if it cannot be written, which is logged).
fn event(message: &FeedMessage) -> Option<Event> {
    match Event::default().event(SSE_EVENT_NAME).json_data(message) {
        Ok(event) => Some(event),
        Err(error) => {
            tracing::error!(%error, "could not encode a feed message");
            None
        }
    }
}
