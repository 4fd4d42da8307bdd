//! Streaming listeners' partial answers: shown as they arrive, then put back before
//! the final result is applied as any event's is.
//!
//! A partial update sets a component's value and server-rendered HTML only (props
//! stay), and runs no change listener: it previews what the listener is writing. The
//! first value each component had is kept; once the answer is over (done or failed)
//! those are put back, so the final result's updates compare against what the page
//! showed before the event (change listeners run as for any event) and a failed
//! event leaves the page as the server left it: unchanged.

use keepsake_shared::event::{EventRequest, EventResult, PartialUpdate};
use keepsake_shared::{ComponentId, SessionId};
use leptos::prelude::*;
use serde_json::Value;

use super::Controller;
use crate::api::ClientError;

/// What each previewed component showed before the stream: its value and HTML.
pub(super) type Previewed = Vec<(ComponentId, Option<Value>, Option<String>)>;

impl Controller {
    /// Sends an event of a streaming listener: its partial updates previewed as
    /// they come, then put back before the final result is returned.
    pub(super) async fn send_streamed(
        &self,
        session: &SessionId,
        request: EventRequest,
    ) -> Result<EventResult, ClientError> {
        let weak = self.weak.clone();
        let on_partial = Box::new(move |partial: PartialUpdate| {
            if let Some(controller) = weak.upgrade() {
                controller.preview(partial);
            }
        });
        let result = self
            .backend
            .run_event_streamed(&self.config.id, session, request, on_partial)
            .await;
        self.end_preview();
        result
    }

    /// Shows one partial update.
    fn preview(&self, partial: PartialUpdate) {
        for update in partial.updates {
            let id = update.component;
            let value = self.slots.value(id);
            let html = self.slots.html(id);
            {
                let mut previewed = self.previewed.borrow_mut();
                if !previewed.iter().any(|(seen, _, _)| *seen == id) {
                    previewed.push((
                        id,
                        value.map(|s| s.get_untracked()),
                        html.map(|s| s.get_untracked()),
                    ));
                }
            }
            if let (Some(new), Some(signal)) = (update.value, value) {
                signal.set(new);
            }
            if let (Some(new), Some(signal)) = (update.html, html) {
                signal.set(new);
            }
        }
    }

    /// Puts back what the previewed components showed before the stream.
    fn end_preview(&self) {
        let previewed = std::mem::take(&mut *self.previewed.borrow_mut());
        for (id, value, html) in previewed {
            if let (Some(old), Some(signal)) = (value, self.slots.value(id)) {
                signal.set(old);
            }
            if let (Some(old), Some(signal)) = (html, self.slots.html(id)) {
                signal.set(old);
            }
        }
    }
}
