//! Regions of a page laid out by a function of session state (Gradio's
//! `@gr.render`): what the config and event answers carry of them, and how an event
//! names a listener of a rendered component.
//!
//! A region's components and listeners have ids of their own (never one of the
//! static config's), stable for the same component key across re-renders. The
//! server keeps nothing about a region per session: an event of a rendered listener
//! names the region and the component's key ([`RenderedTarget`]), and the server
//! renders the region again from the session's current state to find it.

use serde::{Deserialize, Serialize};

pub use crate::config::RenderedRegion;

/// Sent with an event of a rendered listener: the region and the key of the
/// component that triggered it. The server runs the listener only if the region,
/// rendered again from the session's current state, still has it for that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedTarget {
    /// The region ([`RenderedRegion::region`]).
    pub region: u32,
    /// The key of the component whose event it is.
    pub key: String,
}
