//! A streaming listener's items, driven within the event's time-out: each one's
//! component outputs sent to the event's [`PartialSink`] (see
//! [`crate::handler::streaming`] for the rules), the last one staged as any
//! handler's outputs. The reply a client reads is `server/reply.rs`.

use futures::StreamExt;
use keepsake_shared::event::{ComponentUpdate, PartialUpdate};
use tokio::sync::mpsc;

use super::Engine;
use super::event::stage::component_update;
use crate::app::{ListenerDef, SlotDef};
use crate::error::ApiError;
use crate::handler::ErasedUpdate;
use crate::handler::streaming::MAX_STREAM_ITEMS;
use crate::handler::{ItemStream, StreamItem};

/// Where an event's partial outputs go.
pub(crate) type PartialSink = mpsc::Sender<PartialUpdate>;

impl Engine {
    /// Drives a streaming handler's items within the caller's time-out: sends each
    /// one's component outputs to `partials` (when given) and returns the last one's
    /// outputs, which the event stages as any handler's.
    pub(super) async fn drive_stream(
        &self,
        listener: &ListenerDef,
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
                let updates = self.partial_updates(listener, item.peek())?;
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
