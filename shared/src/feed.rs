//! The server stream: one Server-Sent-Events stream per open page.
//!
//! Its lifetime is the client's presence: while it is open the session never
//! expires; when it ends the server fires `unload` and starts the retention clock.

use serde::{Deserialize, Serialize};

use crate::event::ComponentUpdate;

/// Name of the SSE `event:` field used for every message (the data is JSON).
pub const SSE_EVENT_NAME: &str = "keepsake";

/// One message on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedMessage {
    /// First message: the stream is attached to the session.
    Attached,
    /// Sent periodically so both sides notice a dead connection.
    Heartbeat,
    /// A global value bound to a component changed; apply the update.
    Push {
        /// The new value (and properties) of the bound component.
        update: ComponentUpdate,
    },
    /// The session is gone (expired or evicted); start a new one.
    SessionEnded,
}
