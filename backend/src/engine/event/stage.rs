//! Staging: a listener's outputs checked (encoded, typed, within the session's size
//! limit) and, only if all pass, added to the event's working set; and the working
//! set's view of each state (staged, stored, or its default).

use std::time::Instant;

use keepsake_shared::ComponentId;
use keepsake_shared::event::ComponentUpdate;
use serde_json::Value;

use super::Event;
use crate::app::defs::Encode;
use crate::app::{ListenerDef, SlotDef};
use crate::components::Rendering;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::handler::ErasedUpdate;
use crate::session::{SessionData, StoredState};
use crate::value::DynValue;

impl Event<'_> {
    /// Checks a listener's outputs and, only if all pass, adds them to the working
    /// set. Returns the states whose content changed. `render`: whether component
    /// outputs get their HTML here (a streamed answer's reply renders its own).
    pub(super) fn stage(
        &mut self,
        listener: &ListenerDef,
        outputs: Vec<ErasedUpdate>,
        render: bool,
    ) -> Result<Vec<u32>, ApiError> {
        let engine = self.engine;
        if outputs.len() != listener.config.outputs.len() {
            return Err(ApiError::Internal(
                "handler returned a wrong number of outputs".into(),
            ));
        }
        let mut updates = Vec::new();
        let mut new_states = Vec::new();
        let mut new_globals = Vec::new();
        let mut new_browser = Vec::new();
        for (id, output) in listener.config.outputs.iter().zip(outputs) {
            let ErasedUpdate { value, props } = output;
            match self.slot(*id)? {
                SlotDef::Client { encode, .. } => {
                    let update = ErasedUpdate { value, props };
                    let rendered = |id, value: &_| match render {
                        true => self.rendered_of(id, value),
                        false => Rendering::Nothing,
                    };
                    updates.extend(component_update(*id, *encode, &update, rendered)?);
                }
                SlotDef::State(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.states[*index as usize];
                        let value = (def.accept)(value).ok_or_else(|| {
                            ApiError::Internal("state output of unexpected type".into())
                        })?;
                        // Compared before it is measured: a value equal to the
                        // event's current one has that one's size, known already.
                        let changed = !self.current_equals(*index, &*value);
                        let bytes = match self.known_bytes(*index) {
                            Some(bytes) if !changed => bytes,
                            _ => value.encoded_len(),
                        };
                        new_states.push((*index, value, bytes, changed));
                    }
                }
                SlotDef::Browser(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.browser_states[*index as usize];
                        let json = (def.encode)(&*value).map_err(|e| {
                            ApiError::HandlerFailed(format!(
                                "output for browser state {} could not be encoded: {e}",
                                id.0
                            ))
                        })?;
                        new_browser.push((*index, json));
                    }
                }
                SlotDef::Global(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.globals[*index as usize];
                        let value = (def.accept)(value).ok_or_else(|| {
                            ApiError::Internal("global output of unexpected type".into())
                        })?;
                        new_globals.push((*index, value));
                    }
                }
            }
        }

        // The session's state must stay within its size limit.
        let mut state_bytes = self.state_bytes;
        for (index, _, bytes, _) in &new_states {
            state_bytes = state_bytes.saturating_sub(self.current_bytes(*index)) + bytes;
        }
        let limit = engine.limits.max_state_bytes;
        if state_bytes > limit {
            return Err(ApiError::StateTooLarge {
                size: state_bytes,
                limit,
            });
        }
        for (index, _) in &new_globals {
            if self.globals.value(*index).is_none() {
                return Err(ApiError::Internal(format!(
                    "global {index} written without its lock"
                )));
            }
        }

        // Everything checked: the outputs join the working set.
        self.state_bytes = state_bytes;
        for (index, value) in new_globals {
            self.globals.set(index, value)?;
        }
        for (index, json) in new_browser {
            self.browser.write(index, json);
        }
        let mut changed = Vec::new();
        for (index, value, bytes, differs) in new_states {
            if differs {
                changed.push(index);
            }
            match self.states.iter().position(|(i, _, _)| *i == index) {
                Some(at) => self.states[at] = (index, value, bytes),
                None => self.states.push((index, value, bytes)),
            }
        }
        self.result.updates.extend(updates);
        Ok(changed)
    }

    /// A copy of state `index` as the event sees it: staged, stored, or the default
    /// (made once per session, on first use).
    pub(super) fn state(&mut self, index: u32) -> Result<Box<dyn DynValue>, ApiError> {
        if let Some((_, value, _)) = self.staged(index) {
            return Ok(value.clone_boxed());
        }
        let def = self
            .engine
            .app
            .states
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index}")))?;
        let slot = self
            .data
            .states
            .get_mut(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index} in session")))?;
        if slot.is_none() {
            self.defaults.push(index);
        }
        let stored = slot.get_or_insert_with(|| StoredState {
            value: (def.factory)(),
            written_at: Instant::now(),
            bytes: 0,
        });
        Ok(stored.value.clone_boxed())
    }

    /// State `index` as this event has written it, if it has: value and JSON size.
    fn staged(&self, index: u32) -> Option<&(u32, Box<dyn DynValue>, usize)> {
        self.states.iter().find(|(i, _, _)| *i == index)
    }

    /// The size of state `index` as the event sees it, if it was measured: staged,
    /// or stored by a write (a default the event made has none yet).
    fn known_bytes(&self, index: u32) -> Option<usize> {
        match self.staged(index) {
            Some((_, _, bytes)) => Some(*bytes),
            None => self
                .data
                .states
                .get(index as usize)
                .and_then(Option::as_ref)
                .map(|s| s.bytes)
                // 0 marks a default not yet written (no encoding is 0 bytes long).
                .filter(|bytes| *bytes > 0),
        }
    }

    fn current_bytes(&self, index: u32) -> usize {
        match self.staged(index) {
            Some((_, _, bytes)) => *bytes,
            None => self
                .data
                .states
                .get(index as usize)
                .and_then(Option::as_ref)
                .map_or(0, |s| s.bytes),
        }
    }

    /// Whether `value` equals state `index` as the event sees it (its default if it
    /// has none yet).
    fn current_equals(&self, index: u32, value: &dyn DynValue) -> bool {
        if let Some((_, staged, _)) = self.staged(index) {
            return staged.eq_dyn(value);
        }
        self.engine.stored_equals(self.data, index, value)
    }
}

impl Engine {
    /// Whether `value` equals state `index` as the session has it stored (its default
    /// if it has none yet): what an event's staged value is compared with to tell
    /// whether the event changed the state.
    pub(in crate::engine) fn stored_equals(
        &self,
        data: &SessionData,
        index: u32,
        value: &dyn DynValue,
    ) -> bool {
        match data.states.get(index as usize).and_then(Option::as_ref) {
            Some(stored) => stored.value.eq_dyn(value),
            None => self
                .app
                .states
                .get(index as usize)
                .is_some_and(|state| (state.factory)().eq_dyn(value)),
        }
    }
}

/// A component output as a page receives it: encoded, with the HTML the server makes
/// for kinds it renders (`rendered`); `None` when it changes nothing. Staged outputs
/// and a streaming listener's partial ones take the same form (read by reference:
/// a partial's outputs are kept for the next, or for the result).
pub(in crate::engine) fn component_update(
    id: ComponentId,
    encode: Encode,
    ErasedUpdate { value, props }: &ErasedUpdate,
    rendered: impl Fn(ComponentId, &Value) -> Rendering,
) -> Result<Option<ComponentUpdate>, ApiError> {
    let value = value.as_deref().map(encode).transpose().map_err(|e| {
        ApiError::HandlerFailed(format!(
            "output for component {} could not be encoded: {e}",
            id.0
        ))
    })?;
    if value.is_none() && props.is_empty() {
        return Ok(None);
    }
    let props = props.clone();
    Ok(Some(match value {
        Some(value) => rendered(id, &value).update(id, value, props),
        None => ComponentUpdate {
            component: id,
            value: None,
            html: None,
            edits: Vec::new(),
            items: Vec::new(),
            props,
        },
    }))
}
