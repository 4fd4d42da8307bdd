//! What a client sent with an event, checked and decoded before anything is
//! touched: its input values, and the browser states it holds (opened into the
//! event's [`BrowserSeen`]).

use keepsake_shared::event::SealedValue;
use serde_json::Value;

use super::Engine;
use super::browser::{BrowserSeen, browser_index};
use crate::app::region::Rendered;
use crate::app::{ListenerDef, SlotDef};
use crate::components::validate_input;
use crate::error::ApiError;
use crate::value::AnyValue;

impl Engine {
    /// Checks and decodes what a client sent, before anything is touched; opens the
    /// browser states it sent into `browser`. A rendered listener's inputs may be
    /// components of its region's render (`rendered`).
    pub(super) async fn decode_inputs(
        &self,
        listener: &ListenerDef,
        inputs: Vec<Value>,
        browser: &mut BrowserSeen,
        rendered: Option<&Rendered>,
    ) -> Result<Vec<Option<AnyValue>>, ApiError> {
        let expected = &listener.config.inputs;
        if inputs.len() != expected.len() {
            return Err(ApiError::InvalidInput(format!(
                "listener {} takes {} input value(s), got {}",
                listener.config.id.0,
                expected.len(),
                inputs.len()
            )));
        }
        let mut decoded = Vec::with_capacity(inputs.len());
        for (position, (id, value)) in expected.iter().zip(inputs).enumerate() {
            let (component, slot) =
                match rendered.and_then(|r| Some((r.component(*id)?, r.slot(*id)?))) {
                    Some(found) => found,
                    None => (
                        self.app
                            .config
                            .component(*id)
                            .ok_or_else(|| ApiError::Internal(format!("no slot {}", id.0)))?,
                        self.slot(*id)?,
                    ),
                };
            // The name is only formatted for an error: most inputs are valid.
            let invalid = |e: String| {
                let name = match &component.props.label {
                    Some(label) => label.clone(),
                    None => format!("{} {}", component.kind.name(), id.0),
                };
                ApiError::InvalidInput(format!("input {position} ({name}): {e}"))
            };
            decoded.push(match slot {
                SlotDef::Client { decode, .. } => {
                    validate_input(&component.kind, &value).map_err(invalid)?;
                    Some(decode(value).map_err(invalid)?)
                }
                SlotDef::Browser(index) => {
                    let sealers = self.sealers().await?;
                    Some(
                        browser
                            .input(self, sealers, *index, value)
                            .map_err(invalid)?,
                    )
                }
                // Server-side slots: whatever the client sent is ignored.
                SlotDef::State(_) | SlotDef::Global(_) => None,
            });
        }
        Ok(decoded)
    }

    /// Opens what the client holds for browser states the listener does not read (it,
    /// or a state `.change` listener run after it, may write them). A slot the client
    /// says nothing of is unknown: whatever is written to it is sent.
    pub(super) async fn note_held(
        &self,
        listener: &ListenerDef,
        held: Vec<SealedValue>,
        browser: &mut BrowserSeen,
    ) -> Result<(), ApiError> {
        if held.is_empty() {
            return Ok(());
        }
        let sealers = self.sealers().await?;
        for SealedValue { component, sealed } in &held {
            let index = browser_index(self, *component).ok_or_else(|| {
                ApiError::InvalidInput(format!(
                    "held names component {}, which is not a browser state",
                    component.0
                ))
            })?;
            // An input says the same, and was opened already.
            if !listener.config.inputs.contains(component) {
                browser.held(self, sealers, index, sealed)?;
            }
        }
        Ok(())
    }
}
