//! Sessions and events: what a client sends to run a listener and what comes back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorBody;
use crate::{ComponentId, DependencyId, SessionId};

/// Answer to "start a session": a fresh id issued by the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStarted {
    pub session_id: SessionId,
    /// How long the server keeps the session after the client's stream ends.
    pub retention_secs: u64,
}

/// Answer to "is my session still alive?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStatus {
    pub session_id: SessionId,
    pub connected_streams: u32,
}

/// Run one event listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRequest {
    pub dependency: DependencyId,
    /// One value per input slot of the listener, in order. Browser-state slots carry
    /// the value the client holds; server-side slots (state, global) carry anything,
    /// conventionally `null`, which the server ignores.
    pub inputs: Vec<Value>,
}

/// The outcome of an event: the listener's outputs followed by the outputs of every
/// listener the server ran because a session state changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventResult {
    /// Updates in the order they were produced; later ones win.
    pub updates: Vec<ComponentUpdate>,
    /// Listeners run, the requested one first, then `.change` listeners of states.
    pub ran: Vec<DependencyId>,
    /// Failures of `.change` listeners the server ran after the requested listener
    /// succeeded (that listener's own writes stand; the failed one's do not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ListenerError>,
}

/// A listener that failed while the server ran it as a consequence of an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListenerError {
    pub dependency: DependencyId,
    pub error: ErrorBody,
}

/// A new value and/or new properties for one component.
///
/// Never addresses a state or global slot: those values stay on the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentUpdate {
    pub component: ComponentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "PropsUpdate::is_empty")]
    pub props: PropsUpdate,
}

/// Properties an output may change, each optional.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PropsUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<String>>,
}

impl PropsUpdate {
    pub fn is_empty(&self) -> bool {
        self == &PropsUpdate::default()
    }
}
