//! Rendered regions at run time (the builder side is `blocks/render.rs`): a region as
//! the plan holds it ([`RenderDef`]), one render of it ([`Rendered`]), the ids of
//! rendered components and listeners, and filling the config's regions from their
//! states' defaults. Nothing here knows the builder: a region's render function is
//! erased into a [`RenderFn`] by `Blocks::render`.
//!
//! `render` (Gradio's `@gr.render`): a region of the page laid out by a function of
//! a session state, run again whenever an event changes that state. Components made
//! in it can be wired to listeners, which capture per-item data in their closures.
//!
//! Nothing about a region is kept per session. The config carries the region
//! rendered from the state's default; an event that changes the state answers with
//! the region rendered from the value it commits (`EventResult::regions`). An event of
//! a rendered listener names the region and its component's key
//! ([`keepsake_shared::render::RenderedTarget`]); the engine renders the region again
//! from the session's current state, under the session's lock, and runs the
//! listener only if that render still has it (`engine/rendered.rs`): a click on an
//! item deleted meanwhile is refused, never given to another item.
//!
//! Ids: a rendered component's id is a hash of the region and its key, a listener's
//! of the region, its component's key, the event and its ordinal among that
//! component's listeners of that event; all have the top bit set, so they never
//! meet the config's own ids (indices), and they stay the same for the same key
//! across renders. Two keys whose hashes meet in one render take the next free id
//! (so one of them may change id between renders: an event sent with the old one
//! is then refused, never misdirected, since the key is checked too).

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use keepsake_shared::config::{ComponentConfig, EventKind, LayoutNode};
use keepsake_shared::render::RenderedRegion;
use keepsake_shared::{ComponentId, ListenerId};

use crate::app::defs::{ListenerDef, SlotDef, StateDef};
use crate::app::inline::SyncPace;
use crate::value::DynValue;

/// The top bit: every rendered id has it, no id of the config does.
const RENDERED_BIT: u32 = 1 << 31;

/// Whether `id` names a rendered component rather than one of the config's.
pub(crate) fn is_rendered_listener(id: ListenerId) -> bool {
    id.0 & RENDERED_BIT != 0
}

/// An id in the rendered range for these parts, stable across processes.
pub(crate) fn hashed_id(parts: &[&[u8]]) -> u32 {
    let mut bytes = Vec::new();
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
        bytes.extend_from_slice(&(part.len() as u32).to_le_bytes());
        bytes.extend_from_slice(part);
    }
    (xxhash_rust::xxh3::xxh3_64(&bytes) as u32) | RENDERED_BIT
}

/// The first id from `start` on (in the rendered range) that `taken` lacks.
pub(crate) fn free_id(start: u32, taken: &HashSet<u32>) -> u32 {
    let mut id = start;
    while taken.contains(&id) {
        id = id.wrapping_add(1) | RENDERED_BIT;
    }
    id
}

/// How quick a region's sync handlers have been (`app/inline.rs`), kept across renders
/// so that a quick one may run inline as the config's listeners do. One record per
/// event kind and ordinal of a component's listeners, shared by every item's: they
/// are the same code in the usual render function (one that is not shares a record
/// with a slower one at worst, and runs on the blocking threads). Bounded: past
/// [`MAX_PACES`] kinds, a listener gets a record of its own for that render.
pub(crate) type Paces = Mutex<HashMap<(EventKind, u32), Arc<SyncPace>>>;

/// How many pace records a region keeps.
const MAX_PACES: usize = 64;

/// The pace record a rendered listener shares with its kind (its event and its
/// ordinal among its component's listeners of that event), or `None` past
/// [`MAX_PACES`] kinds: it then gets a record of its own for that render.
pub(crate) fn shared_pace(paces: &Paces, event: EventKind, ordinal: u32) -> Option<Arc<SyncPace>> {
    let mut paces = paces.lock().ok()?;
    let known = paces.len() < MAX_PACES || paces.contains_key(&(event, ordinal));
    known.then(|| paces.entry((event, ordinal)).or_default().clone())
}

/// One render of a region: the wire description, and what the engine needs to run
/// its listeners.
pub(crate) struct Rendered {
    pub(crate) region: RenderedRegion,
    positions: HashMap<ComponentId, usize>,
    slots: HashMap<ComponentId, SlotDef>,
    /// Each listener by id, with the key of the component that triggers it.
    listeners: HashMap<ListenerId, (String, ListenerDef)>,
}

impl Rendered {
    /// One render: its wire description, each component's position in it, each
    /// component's slot and each listener with its component's key.
    pub(crate) fn new(
        region: RenderedRegion,
        positions: HashMap<ComponentId, usize>,
        slots: HashMap<ComponentId, SlotDef>,
        listeners: HashMap<ListenerId, (String, ListenerDef)>,
    ) -> Self {
        Rendered {
            region,
            positions,
            slots,
            listeners,
        }
    }

    pub(crate) fn slot(&self, id: ComponentId) -> Option<&SlotDef> {
        self.slots.get(&id)
    }

    pub(crate) fn component(&self, id: ComponentId) -> Option<&ComponentConfig> {
        self.region.components.get(*self.positions.get(&id)?)
    }

    /// Listener `id`, if this render has it for the component keyed `key`.
    pub(crate) fn listener(&self, id: ListenerId, key: &str) -> Option<&ListenerDef> {
        self.listeners
            .get(&id)
            .filter(|(own, _)| own == key)
            .map(|(_, def)| def)
    }
}

/// A region's render function, erased: renders region `region` from a value of its
/// state, given the number of the app's own slots and the region's pace records;
/// an error is a mistake of the function (or a value of another type).
pub(crate) type RenderFn =
    Arc<dyn Fn(&dyn DynValue, usize, &Paces) -> Result<Rendered, String> + Send + Sync>;

/// A region as the app declared it: the state it is rendered from and how.
pub(crate) struct RenderDef {
    pub(crate) region: u32,
    /// The state's index; `None` when the handle named no state of this app (which
    /// `Blocks::build` refuses).
    pub(crate) state: Option<u32>,
    render: RenderFn,
    paces: Paces,
}

impl RenderDef {
    /// Region `region`, rendered from state `state` (`None`: the handle named no
    /// state of this app, which `Blocks::build` refuses) by `render`.
    pub(crate) fn new(region: u32, state: Option<u32>, render: RenderFn) -> Self {
        RenderDef {
            region,
            state,
            render,
            paces: Mutex::default(),
        }
    }

    /// Renders the region from `value`; `app_slots` is the number of the app's own
    /// slots. A panic or a mistake of the render function is an error.
    pub(crate) fn run(&self, value: &dyn DynValue, app_slots: usize) -> Result<Rendered, String> {
        match catch_unwind(AssertUnwindSafe(|| {
            (self.render)(value, app_slots, &self.paces)
        })) {
            Ok(rendered) => rendered,
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(region = self.region, panic = %what, "a render function panicked");
                Err(format!("the render of region {} failed", self.region))
            }
        }
        .map_err(|problem| format!("region {}: {problem}", self.region))
    }
}

/// Fills each region of `layout` with its render from its state's default, as the
/// config shows it; an error names the first region that could not be rendered.
pub(crate) fn fill_regions(
    layout: &mut [LayoutNode],
    renders: &[RenderDef],
    states: &[StateDef],
    app_slots: usize,
) -> Result<(), String> {
    for node in layout {
        match node {
            LayoutNode::Render(region) => {
                let def = renders
                    .get(region.region as usize)
                    .ok_or_else(|| format!("no region {}", region.region))?;
                let state = def
                    .state
                    .and_then(|index| states.get(index as usize))
                    .ok_or_else(|| {
                        format!(
                            "region {} is rendered from a state this app did not declare",
                            def.region
                        )
                    })?;
                *region = def.run(&*(state.factory)(), app_slots)?.region;
            }
            LayoutNode::Row { children }
            | LayoutNode::Column { children }
            | LayoutNode::Tabs { children }
            | LayoutNode::Tab { children, .. }
            | LayoutNode::Accordion { children, .. } => {
                fill_regions(children, renders, states, app_slots)?;
            }
            LayoutNode::Component { .. } => {}
        }
    }
    Ok(())
}
