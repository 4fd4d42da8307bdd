//! A streamed reply: an event's answer as a stream, the partial outputs of a
//! streaming listener as they come, then the outcome, last.
//!
//! The answer owns the event's future and drives it as it is read; `replies.rs` reads
//! it in a task of its own, so the event runs on when its client goes away. Partial
//! outputs pass through a small bounded channel: the handler's stream waits when
//! they come faster than they are taken. Each message carries only what changed
//! since the last ([`Changes`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::Stream;
use keepsake_shared::SessionId;
use keepsake_shared::event::{EventRequest, EventResult, PartialUpdate};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::changes::Changes;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::handler::request::Request;

/// One message of a streamed reply, before it takes its wire form.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Component outputs of one item the listener yielded.
    Partial(PartialUpdate),
    /// The event's outcome, last.
    Done(Result<EventResult, ApiError>),
}

/// Runs a client's event and answers it as a stream: the partial outputs of a
/// streaming listener as they come, then the outcome, last. Dropping the stream
/// drops the event, which then writes nothing.
pub(super) fn answer(
    engine: Arc<Engine>,
    session: SessionId,
    mut request: EventRequest,
    origin: Request,
    span: tracing::Span,
) -> impl Stream<Item = Answer> + Send + 'static {
    let (sink, partials) = super::partials();
    let changes = Changes::new(engine.app.clone(), std::mem::take(&mut request.shown));
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
        changes,
    }
}

/// The answer stream: polls the event and hands out its partials in order, and its
/// outcome once every partial sent before it is out.
struct Answering<F> {
    event: Option<Pin<Box<F>>>,
    partials: mpsc::Receiver<PartialUpdate>,
    outcome: Option<Result<EventResult, ApiError>>,
    /// What the client holds, so each message carries only what changed.
    changes: Changes,
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
        loop {
            return match self.partials.poll_recv(cx) {
                Poll::Ready(Some(partial)) => {
                    let partial = self.changes.partial(partial);
                    if partial.updates.is_empty() {
                        // Nothing the client does not hold already.
                        continue;
                    }
                    Poll::Ready(Some(Answer::Partial(partial)))
                }
                // Every sender is gone: the event has finished (its outcome is last), or
                // it dropped the sink early and is still running (polled above, so it
                // will wake us).
                Poll::Ready(None) if self.event.is_some() => Poll::Pending,
                Poll::Ready(None) => {
                    let outcome = self.outcome.take();
                    let outcome =
                        outcome.map(|outcome| outcome.map(|done| self.changes.done(done)));
                    Poll::Ready(outcome.map(Answer::Done))
                }
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
