//! Streaming listeners' partial answers: shown as they arrive, then put back before
//! the final result is applied as any event's is.
//!
//! A streamed answer carries changes, not copies ([`keepsake_shared::diff`]): the
//! request names what the page shows of the listener's outputs ([`Shown`]), and each
//! message is made whole again ([`Holding`]) from what came before it. The final
//! result's updates are relative to the last partial (an output the answer previewed
//! that the result names without a value keeps the previewed one).
//!
//! A partial update sets a component's value and server-rendered HTML only (props
//! stay), and runs no change listener: it previews what the listener is writing. The
//! first value each component had is kept; once the answer is over (done or failed)
//! those are put back, so the final result's updates compare against what the page
//! showed before the event (change listeners run as for any event) and a failed
//! event leaves the page as the server left it: unchanged.

use std::cell::RefCell;
use std::rc::Rc;

use keepsake_shared::diff::Shown;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult, PartialUpdate};
use keepsake_shared::holding::Holding;
use keepsake_shared::{ComponentId, SessionId};
use leptos::prelude::*;
use serde_json::Value;

use super::Controller;
use crate::api::ClientError;

/// What each previewed component showed before the stream: its value, HTML and
/// items' HTML.
pub(super) type Previewed = Vec<(
    ComponentId,
    Option<Value>,
    Option<String>,
    Option<Vec<String>>,
)>;

impl Controller {
    /// Sends an event of a streaming listener: its partial updates previewed as
    /// they come, then put back before the final result is returned (made whole).
    pub(super) async fn send_streamed(
        &self,
        session: &SessionId,
        mut request: EventRequest,
    ) -> Result<EventResult, ClientError> {
        let holding = Rc::new(RefCell::new(Holding::default()));
        if request.rendered.is_none() {
            request.shown = self.shown(&request, &mut holding.borrow_mut());
        }
        let weak = self.weak.clone();
        let partials = holding.clone();
        let on_partial = Box::new(move |mut partial: PartialUpdate| {
            if let Some(controller) = weak.upgrade() {
                whole(&mut partials.borrow_mut(), &mut partial.updates);
                controller.preview(partial);
            }
        });
        let result = self
            .backend
            .run_event_streamed(&self.config.id, session, request, on_partial)
            .await
            .map(|mut result| {
                whole(&mut holding.borrow_mut(), &mut result.updates);
                result
            });
        self.end_preview();
        result
    }

    /// What the page shows of the listener's outputs, named for the request and
    /// held as the changes' starting point.
    fn shown(&self, request: &EventRequest, holding: &mut Holding) -> Vec<Shown> {
        let Some(listener) = self.config.listener(request.listener) else {
            return Vec::new();
        };
        let mut shown = Vec::new();
        for &id in &listener.outputs {
            let Some(value) = self.slots.value(id).map(|s| s.get_untracked()) else {
                continue;
            };
            let items = self
                .slots
                .items(id)
                .map(|s| s.get_untracked())
                .unwrap_or_default();
            shown.push(Shown::of(id, &value));
            holding.show(id, value, items);
        }
        shown
    }

    /// Shows one partial update (made whole).
    fn preview(&self, partial: PartialUpdate) {
        for update in partial.updates {
            let id = update.component;
            let value = self.slots.value(id);
            let html = self.slots.html(id);
            let items = self.slots.items(id);
            {
                let mut previewed = self.previewed.borrow_mut();
                if !previewed.iter().any(|(seen, ..)| *seen == id) {
                    previewed.push((
                        id,
                        value.map(|s| s.get_untracked()),
                        html.map(|s| s.get_untracked()),
                        items.map(|s| s.get_untracked()),
                    ));
                }
            }
            if let (Some(new), Some(signal)) = (&update.value, items) {
                super::set_items(signal, &update.items, new);
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
        for (id, value, html, items) in previewed {
            if let (Some(old), Some(signal)) = (value, self.slots.value(id)) {
                signal.set(old);
            }
            if let (Some(old), Some(signal)) = (html, self.slots.html(id)) {
                signal.set(old);
            }
            if let (Some(old), Some(signal)) = (items, self.slots.items(id)) {
                signal.set(old);
            }
        }
    }
}

/// Makes a streamed message's updates whole; an update whose changes do not apply
/// to what the page holds (which the server never sends) is left out.
fn whole(holding: &mut Holding, updates: &mut Vec<ComponentUpdate>) {
    updates.retain_mut(|update| holding.resolve(update).is_ok());
}
