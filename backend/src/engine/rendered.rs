//! Events and rendered regions ([`crate::Blocks::render`]): running a listener of a
//! rendered component, and the regions an event's answer carries.
//!
//! Nothing of a region is kept per session. An event of a rendered listener names
//! the region and its component's key; under the session's lock, with its lease,
//! the region is rendered again from the session's current state, and the listener
//! runs only if that render has it for that key: a stale event (its item deleted
//! meanwhile) is refused before anything is touched, and never reaches another
//! item's listener. Its inputs are then checked by kind, as any event's.
//!
//! Which globals a rendered listener may write is known only once it is found, so it
//! is found under the lease alone first; if it may write globals, the lease is given
//! back and taken again with their locks (in index order, as every event takes
//! them), and the region is rendered again from what was loaded then.

use keepsake_shared::SessionId;
use keepsake_shared::event::{EventRequest, EventResult};
use keepsake_shared::render::{RenderedRegion, RenderedTarget};

use super::Engine;
use super::browser::BrowserSeen;
use super::event::Run;
use crate::app::region::{RenderDef, Rendered, is_rendered_listener};
use crate::app::{ListenerDef, SlotDef};
use crate::error::ApiError;
use crate::handler::request::Request;
use crate::session::SessionData;
use crate::value::DynValue;

/// How many times a rendered listener is looked for before the globals it may write
/// are all locked (twice at most, unless another instance keeps changing the state).
const MAX_ATTEMPTS: usize = 3;

impl Engine {
    /// Runs an event of a rendered listener (see the module's comment).
    pub(super) async fn run_rendered(
        &self,
        session_id: &SessionId,
        target: RenderedTarget,
        mut request: EventRequest,
        origin: Request,
        mut partials: Option<super::streamed::PartialSink>,
    ) -> Result<EventResult, ApiError> {
        let gone = || ApiError::RenderedListenerGone {
            region: target.region,
            key: target.key.chars().take(64).collect(),
        };
        if !is_rendered_listener(request.listener) {
            return Err(ApiError::UnknownListener(request.listener.0));
        }
        let def = self
            .app
            .renders
            .get(target.region as usize)
            .ok_or_else(gone)?;
        let session = self.rated_session(session_id).await?;
        let mut data = session.data.lock().await;
        if data.closed {
            return Err(ApiError::UnknownSession);
        }
        let origin = self.in_session(origin, session_id).await?;
        let wait = self.limits.event_timeout;
        let mut globals = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            let begun = self
                .writers
                .begin(&self.store, &session, &mut data, &globals, wait)
                .await?;
            let rendered = self.render_current(def, &data)?;
            let listener = rendered
                .listener(request.listener, &target.key)
                .ok_or_else(gone)?;
            let needed = self.globals_of(listener);
            if !needed.iter().all(|global| globals.contains(global)) {
                // Given back as it drops; taken again with the locks.
                drop(begun);
                globals = needed;
                continue;
            }
            let mut browser = BrowserSeen::default();
            let inputs = std::mem::take(&mut request.inputs);
            let client_values = self
                .decode_inputs(listener, inputs, &mut browser, Some(&rendered))
                .await?;
            self.note_held(listener, std::mem::take(&mut request.held), &mut browser)
                .await?;
            let run = Run {
                listener,
                client_values,
                browser,
                origin: &origin,
                rendered: Some(&rendered),
                partials: partials.take(),
            };
            return self.run_begun(&session, &mut data, begun, run).await;
        }
        Err(ApiError::Internal(
            "the globals a rendered listener may write kept changing; try again".into(),
        ))
    }

    /// The region rendered from the session's current value of its state.
    fn render_current(&self, def: &RenderDef, data: &SessionData) -> Result<Rendered, ApiError> {
        let index = def
            .state
            .ok_or_else(|| ApiError::Internal(format!("region {} has no state", def.region)))?;
        let stored = data.states.get(index as usize).and_then(Option::as_ref);
        let rendered = match stored {
            Some(stored) => def.run(&*stored.value, self.app.slots.len()),
            None => {
                let state = self
                    .app
                    .states
                    .get(index as usize)
                    .ok_or_else(|| ApiError::Internal(format!("no state {index}")))?;
                def.run(&*(state.factory)(), self.app.slots.len())
            }
        };
        rendered.map_err(ApiError::HandlerFailed)
    }

    /// Every global an event of rendered listener `listener` may write: its own
    /// global outputs and those of the `.change` listeners of its state outputs.
    fn globals_of(&self, listener: &ListenerDef) -> Vec<u32> {
        let mut globals = Vec::new();
        for output in &listener.config.outputs {
            match self.app.slot(*output) {
                Some(SlotDef::Global(index)) => globals.push(*index),
                Some(SlotDef::State(index)) => {
                    let changed = self.app.state_change_listeners.get(*index as usize);
                    for id in changed.into_iter().flatten() {
                        if let Some(dep) = self.app.listener(*id) {
                            globals.extend_from_slice(&dep.globals_written);
                        }
                    }
                }
                _ => {}
            }
        }
        globals.sort_unstable();
        globals.dedup();
        globals
    }

    /// The regions whose state the event changed (`staged` against the session's
    /// values before it), rendered from the new values. A failed render fails the
    /// event.
    pub(super) fn rerender(
        &self,
        data: &SessionData,
        staged: &[(u32, Box<dyn DynValue>, usize)],
    ) -> Result<Vec<RenderedRegion>, ApiError> {
        let mut regions = Vec::new();
        for def in &self.app.renders {
            let Some(index) = def.state else { continue };
            let Some((_, value, _)) = staged.iter().find(|(i, _, _)| *i == index) else {
                continue;
            };
            if !self.stored_equals(data, index, &**value) {
                let rendered = def
                    .run(&**value, self.app.slots.len())
                    .map_err(ApiError::HandlerFailed)?;
                regions.push(rendered.region);
            }
        }
        Ok(regions)
    }
}
