//! A streaming listener's items, driven within the stream's limits: each one's
//! component outputs sent to the event's [`PartialSink`] (see
//! [`crate::Streaming`] for the rules), the last one staged as any handler's
//! outputs. The reply a client reads is `server/reply.rs`.
//!
//! Two clocks bound a stream, so a long reply that keeps coming is served and a
//! stuck one is not: `event_timeout` between two items (and before the first),
//! `stream_timeout` for the whole of it, the sending of partials included (a client
//! that stops reading must not hold the session forever). Partials are coalesced to
//! at most `max_partials_per_second` (the last item always sent): a model yielding
//! hundreds of tokens a second
//! would otherwise cost a message, an encoding and a Markdown pass per token.

use futures::StreamExt;
use keepsake_shared::event::{ComponentUpdate, PartialUpdate};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::event::stage::component_update;
use crate::app::{ListenerDef, SlotDef};
use crate::components::Rendering;
use crate::error::ApiError;
use crate::handler::ErasedUpdate;
use crate::handler::ItemStream;

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
        stop: Option<&CancellationToken>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let whole = self.limits.stream_timeout;
        let deadline = Instant::now() + whole;
        let drive = self.drive_items(listener, items, partials, stop);
        match tokio::time::timeout_at(deadline, drive).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ApiError::StreamTooLong(whole)),
        }
    }

    async fn drive_items(
        &self,
        listener: &ListenerDef,
        mut items: ItemStream,
        partials: Option<&PartialSink>,
        stop: Option<&CancellationToken>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let gap = self.limits.event_timeout;
        let most = self.limits.max_stream_items;
        let every = self.limits.partial_interval;
        // The last item's outputs: partials are encoded from them by reference, and
        // the event stages them when the stream ends.
        let mut last: Option<Vec<ErasedUpdate>> = None;
        let mut count = 0;
        let mut item_due = Instant::now() + gap;
        // Coalescing: a partial goes out at most once per `every`; an item that comes
        // sooner is held (only the latest), and sent when its time comes even if the
        // stream is quiet by then. The final result always carries the last item.
        let mut send_due = Instant::now();
        let mut held = false;
        let stopped = async {
            match stop {
                Some(stop) => stop.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopped);
        loop {
            let next = tokio::time::timeout_at(item_due, items.next());
            // `Next` is cancel-safe: no item is lost by dropping it.
            let next = tokio::select! {
                biased;
                () = &mut stopped => {
                    if listener.keeps_when_stopped && last.is_some() {
                        break;
                    }
                    return Err(ApiError::Stopped);
                }
                next = next => next,
                () = tokio::time::sleep_until(send_due), if held && partials.is_some() => {
                    if let Some(sink) = partials {
                        let updates = self.partial_updates(listener, last.as_deref().unwrap_or_default())?;
                        send(sink, updates).await;
                    }
                    send_due = Instant::now() + every;
                    held = false;
                    continue;
                }
            };
            let item = match next {
                Err(_) => return Err(ApiError::StreamStalled(gap)),
                Ok(None) => break,
                Ok(Some(item)) => item.map_err(|error| ApiError::HandlerError(error.0))?,
            };
            item_due = Instant::now() + gap;
            count += 1;
            if count > most {
                return Err(ApiError::LimitExceeded(format!(
                    "the handler's stream yielded more than {most} items (--max-stream-items); nothing was changed"
                )));
            }
            last = Some(item.into_outputs());
            if let Some(sink) = partials {
                if Instant::now() >= send_due {
                    let updates =
                        self.partial_updates(listener, last.as_deref().unwrap_or_default())?;
                    send(sink, updates).await;
                    send_due = Instant::now() + every;
                    held = false;
                } else {
                    held = true;
                }
            }
        }
        // The last item is always sent as a partial too (as Gradio sends every
        // item): a client iterating partials ends on the reply it gets as result.
        if let (Some(sink), true, Some(outputs)) = (partials, held, last.as_deref()) {
            send(sink, self.partial_updates(listener, outputs)?).await;
        }
        last.ok_or_else(|| {
            ApiError::HandlerFailed("the handler's stream ended without any output".into())
        })
    }

    /// The component outputs of one item, encoded as an event's updates are; states,
    /// globals and browser states are left out (never sent, not written).
    fn partial_updates(
        &self,
        listener: &ListenerDef,
        outputs: &[ErasedUpdate],
    ) -> Result<Vec<ComponentUpdate>, ApiError> {
        let mut updates = Vec::new();
        for (id, output) in listener.config.outputs.iter().zip(outputs) {
            let SlotDef::Client { encode, .. } = self.slot(*id)? else {
                continue;
            };
            // Not rendered here: the reply renders only what changed since the last
            // partial (`server/reply.rs`), and the bridges need no HTML.
            let unrendered = |_, _: &_| Rendering::Nothing;
            updates.extend(component_update(*id, *encode, output, unrendered)?);
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
