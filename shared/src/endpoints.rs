//! What API clients see of an app's listeners: the endpoints (listeners with an
//! `api_name`), each with its input and output slots described.

use serde::{Deserialize, Serialize};

use crate::ComponentId;
use crate::ListenerId;
use crate::config::AppConfig;

/// One slot of an API endpoint, for documentation and API clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSlot {
    /// The slot's component (or state slot).
    pub component: ComponentId,
    /// The component's label, or its kind when it has none.
    pub name: String,
    /// The component's kind, as [`crate::config::ComponentKind::name`] spells it (e.g. `"number"`).
    pub kind: String,
    /// The JSON a caller sends (inputs) or receives (outputs).
    pub value_type: String,
}

/// A listener that API clients may call by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    /// The name callers use (see [`crate::config::ListenerConfig::api_name`]).
    pub api_name: String,
    /// The listener it runs.
    pub listener: ListenerId,
    /// What a call sends, one value per slot, in this order.
    pub inputs: Vec<EndpointSlot>,
    /// What the listener writes, in the order of its results.
    pub outputs: Vec<EndpointSlot>,
}

impl AppConfig {
    /// The listeners with an `api_name`, with their inputs and outputs described.
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        let slot = |id: &ComponentId| {
            let component = self.component(*id);
            EndpointSlot {
                component: *id,
                name: component
                    .and_then(|c| c.props.label.clone())
                    .unwrap_or_else(|| component.map_or("?", |c| c.kind.name()).to_owned()),
                kind: component.map_or("?", |c| c.kind.name()).to_owned(),
                value_type: component.map_or("?", |c| c.kind.value_type()).to_owned(),
            }
        };
        self.listeners
            .iter()
            .filter_map(|d| {
                Some(EndpointInfo {
                    api_name: d.api_name.clone()?,
                    listener: d.id,
                    inputs: d.inputs.iter().map(slot).collect(),
                    outputs: d.outputs.iter().map(slot).collect(),
                })
            })
            .collect()
    }

    /// The endpoint called `api_name`.
    pub fn endpoint(&self, api_name: &str) -> Option<EndpointInfo> {
        self.endpoints()
            .into_iter()
            .find(|e| e.api_name == api_name)
    }
}
