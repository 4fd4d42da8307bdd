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

use crate::config::{ComponentConfig, DependencyConfig, LayoutNode};

/// What one render of a region lays out: in the config (rendered from the state's
/// default) as [`LayoutNode::Render`], and in an event's answer
/// ([`crate::event::EventResult::regions`]) whenever the event changed the state the
/// region is rendered from; the page replaces the region's contents with it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RenderedRegion {
    /// Which region of the app (in the order the app declared them).
    pub region: u32,
    /// The components the render made; each has a key
    /// ([`crate::config::ComponentProps::key`]).
    pub components: Vec<ComponentConfig>,
    /// How they are laid out (an implicit column).
    pub layout: Vec<LayoutNode>,
    /// The listeners of the region's components; each is triggered by one of them.
    pub dependencies: Vec<DependencyConfig>,
}

impl RenderedRegion {
    /// The component of this region with this id.
    pub fn component(&self, id: crate::ComponentId) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.id == id)
    }
}

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
