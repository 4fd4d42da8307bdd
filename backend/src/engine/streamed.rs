//! A streaming listener's items, driven within the stream's limits: each one's
//! component outputs sent to the event's [`PartialSink`] (see
//! [`crate::Streaming`] for the rules), the last one staged as any handler's
//! outputs. The reply a client reads is `server/reply.rs`.
//!
//! Two clocks bound a stream, so a long reply that keeps coming is served and a
//! stuck one is not: `event_timeout` between two items (and before the first),
//! `stream_timeout` for the whole of it, the sending of partials included (a client
//! that stops reading must not hold the session forever). Partials are coalesced to
//! at most `max_partials_per_second`: a model yielding hundreds of tokens a second
//! would otherwise cost a message, an encoding and a Markdown pass per token.

use futures::StreamExt;
use keepsake_shared::event::{ComponentUpdate, PartialUpdate};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Engine;
use super::event::stage::component_update;
use crate::app::{ListenerDef, SlotDef};
use crate::error::ApiError;
use crate::handler::ErasedUpdate;
use crate::handler::{ItemStream, StreamItem};

/// Where an event's partial outputs go.
pub(crate) type PartialSink = mpsc::Sender<PartialUpdate>;

impl Engine {
    /// Drives a streaming handler's items: sends each one's component outputs to
    /// `partials` (when given) and returns the last one's outputs, which the event
    /// stages as any handler's. Fails, with nothing written, when an item is later
    /// than `event_timeout`, the whole stream longer than `stream_timeout`, or there
    /// are more than `max_stream_items` items.
    pub(super) async fn drive_stream(
        &self,
        listener: &ListenerDef,
        items: ItemStream,
        partials: Option<&PartialSink>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let whole = self.limits.stream_timeout;
        let deadline = Instant::now() + whole;
        match tokio::time::timeout_at(deadline, self.drive_items(listener, items, partials)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::StreamTooLong(whole)),
        }
    }

    async fn drive_items(
        &self,
        listener: &ListenerDef,
        mut items: ItemStream,
        partials: Option<&PartialSink>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let gap = self.limits.event_timeout;
        let most = self.limits.max_stream_items;
        let every = self.limits.partial_interval;
        let mut last: Option<Box<dyn StreamItem>> = None;
        let mut count = 0;
        let mut item_due = Instant::now() + gap;
        // Coalescing: a partial goes out at most once per `every`; an item that comes
        // sooner is held (only the latest), and sent when its time comes even if the
        // stream is quiet by then. The final result always carries the last item.
        let mut send_due = Instant::now();
        let mut held = false;
        loop {
            let next = tokio::time::timeout_at(item_due, items.next());
            let next = match (partials, held) {
                (Some(sink), true) => {
                    tokio::select! {
                        biased;
                        next = next => next,
                        () = tokio::time::sleep_until(send_due) => {
                            // `Next` is cancel-safe: no item is lost by dropping it.
                            let updates = self.partial_of(listener, last.as_deref())?;
                            send(sink, updates).await;
                            send_due = Instant::now() + every;
                            held = false;
                            continue;
                        }
                    }
                }
                _ => next.await,
            };
            let item = match next {
                Err(_) => return Err(ApiError::StreamStalled(gap)),
                Ok(None) => break,
                Ok(Some(item)) => item.map_err(|error| ApiError::HandlerFailed(error.0))?,
            };
            item_due = Instant::now() + gap;
            count += 1;
            if count > most {
                return Err(ApiError::LimitExceeded(format!(
                    "the handler's stream yielded more than {most} items (--max-stream-items); nothing was changed"
                )));
            }
            last = Some(item);
            if let Some(sink) = partials {
                if Instant::now() >= send_due {
                    let updates = self.partial_of(listener, last.as_deref())?;
                    send(sink, updates).await;
                    send_due = Instant::now() + every;
                    held = false;
                } else {
                    held = true;
                }
            }
        }
        last.map(StreamItem::into_outputs).ok_or_else(|| {
            ApiError::HandlerFailed("the handler's stream ended without any output".into())
        })
    }

    /// `item`'s component outputs, for a partial (none without an item).
    fn partial_of(
        &self,
        listener: &ListenerDef,
        item: Option<&dyn StreamItem>,
    ) -> Result<Vec<ComponentUpdate>, ApiError> {
        match item {
            Some(item) => self.partial_updates(listener, item.peek()),
            None => Ok(Vec::new()),
        }
    }

    /// The component outputs of one item, encoded as an event's updates are; states,
    /// globals and browser states are left out (never sent, not written).
    fn partial_updates(
        &self,
        listener: &ListenerDef,
        outputs: Vec<ErasedUpdate>,
    ) -> Result<Vec<ComponentUpdate>, ApiError> {
        let mut updates = Vec::new();
        for (id, output) in listener.config.outputs.iter().zip(outputs) {
            let SlotDef::Client { encode, .. } = self.slot(*id)? else {
                continue;
            };
            let html_of = |id, value: &_| self.app.html_of(id, value);
            updates.extend(component_update(*id, *encode, output, html_of)?);
        }
        Ok(updates)
    }
}

/// Sends a partial of `updates`, if there are any. A receiver gone means the client
/// went away: the event's future is being dropped with it, so there is nothing to
/// tell.
async fn send(sink: &PartialSink, updates: Vec<ComponentUpdate>) {
    if !updates.is_empty() {
        let _ = sink.send(PartialUpdate { updates }).await;
    }
}
