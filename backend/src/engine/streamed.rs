//! Streamed answers: a streaming listener's partial outputs on their way to the
//! client while its event runs (see [`crate::streaming`] for the rules).
//!
//! The event is not a task of its own: the answer stream owns its future and drives
//! it as the client reads, so a client that goes away drops the event like any
//! dropped request (nothing committed; the session's lock, this process's writer
//! locks and, with Redis, the lease and global locks given back on drop). Partial
//! outputs pass through a small bounded channel: a client that reads slowly makes the
//! handler's stream wait rather than the server buffer without end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::stream::Stream;
use keepsake_shared::SessionId;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult, PartialUpdate};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Engine;
use super::event::stage::component_update;
use crate::error::ApiError;
use crate::handler::ErasedUpdate;
use crate::handler::{ItemStream, StreamItem};
use crate::plan::{DependencyDef, SlotDef};
use crate::request::Request;
use crate::streaming::MAX_STREAM_ITEMS;

/// Where an event's partial outputs go.
pub(crate) type PartialSink = mpsc::Sender<PartialUpdate>;

/// How many partial answers may wait for a slow client before the handler's stream
/// waits for it.
const PARTIALS_BUFFERED: usize = 8;

/// One message of a streamed answer, before it takes its wire form.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Component outputs of one item the listener yielded.
    Partial(PartialUpdate),
    /// The event's outcome, last.
    Done(Result<EventResult, ApiError>),
}

impl Engine {
    /// Drives a streaming handler's items within the caller's time-out: sends each
    /// one's component outputs to `partials` (when given) and returns the last one's
    /// outputs, which the event stages as any handler's.
    pub(super) async fn drive_stream(
        &self,
        dependency: &DependencyDef,
        mut items: ItemStream,
        partials: Option<&PartialSink>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let mut last: Option<Box<dyn StreamItem>> = None;
        let mut count = 0;
        while let Some(item) = items.next().await {
            let item = item.map_err(|error| ApiError::HandlerFailed(error.0))?;
            count += 1;
            if count > MAX_STREAM_ITEMS {
                return Err(ApiError::LimitExceeded(format!(
                    "the handler's stream yielded more than {MAX_STREAM_ITEMS} items; nothing was changed"
                )));
            }
            if let Some(sink) = partials {
                let updates = self.partial_updates(dependency, item.peek())?;
                // A receiver gone means the client went away: this future is being
                // dropped with it, so there is nothing to tell.
                if !updates.is_empty() {
                    let _ = sink.send(PartialUpdate { updates }).await;
                }
            }
            last = Some(item);
        }
        last.map(StreamItem::into_outputs).ok_or_else(|| {
            ApiError::HandlerFailed("the handler's stream ended without any output".into())
        })
    }

    /// The component outputs of one item, encoded as an event's updates are; states,
    /// globals and browser states are left out (never sent, not written).
    fn partial_updates(
        &self,
        dependency: &DependencyDef,
        outputs: Vec<ErasedUpdate>,
    ) -> Result<Vec<ComponentUpdate>, ApiError> {
        let mut updates = Vec::new();
        for (id, output) in dependency.config.outputs.iter().zip(outputs) {
            let SlotDef::Client { encode, .. } = self.slot(*id)? else {
                continue;
            };
            let html_of = |id, value: &_| self.app.html_of(id, value);
            updates.extend(component_update(*id, *encode, output, html_of)?);
        }
        Ok(updates)
    }
}

/// Runs a client's event and answers it as a stream: the partial outputs of a
/// streaming listener as they come, then the outcome, last. Dropping the stream
/// drops the event.
pub(crate) fn answer(
    engine: Arc<Engine>,
    session: SessionId,
    request: EventRequest,
    origin: Request,
    span: tracing::Span,
) -> impl Stream<Item = Answer> + Send + 'static {
    let (sink, partials) = mpsc::channel(PARTIALS_BUFFERED);
    let event = async move {
        engine
            .run_event_with(&session, request, origin, Some(sink))
            .await
    }
    .instrument(span);
    Answering {
        event: Some(Box::pin(event)),
        partials,
        outcome: None,
    }
}

/// The answer stream: polls the event and hands out its partials in order, and its
/// outcome once every partial sent before it is out.
struct Answering<F> {
    event: Option<Pin<Box<F>>>,
    partials: mpsc::Receiver<PartialUpdate>,
    outcome: Option<Result<EventResult, ApiError>>,
}

impl<F: Future<Output = Result<EventResult, ApiError>>> Stream for Answering<F> {
    type Item = Answer;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        if let Some(event) = self.event.as_mut()
            && let Poll::Ready(outcome) = event.as_mut().poll(cx)
        {
            self.event = None;
            self.outcome = Some(outcome);
        }
        match self.partials.poll_recv(cx) {
            Poll::Ready(Some(partial)) => Poll::Ready(Some(Answer::Partial(partial))),
            // Every sender is gone: the event has finished (its outcome is last), or
            // it dropped the sink early and is still running (polled above, so it
            // will wake us).
            Poll::Ready(None) if self.event.is_some() => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(self.outcome.take().map(Answer::Done)),
            Poll::Pending => Poll::Pending,
        }
    }
}
