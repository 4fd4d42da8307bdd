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
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use keepsake_shared::config::{ComponentConfig, EventKind, LayoutNode};
use keepsake_shared::render::RenderedRegion;
use keepsake_shared::{ComponentId, ListenerId};
use serde::Serialize;

use crate::Blocks;
use crate::components::Component;
use crate::handler::{Handler, Inputs, Outputs};
use crate::handles::{Changeable, Clickable, EventTrigger, Handle, StateHandle, Submittable};
use crate::layout::LayoutStack;
use crate::listener::Listeners;
use crate::pace::SyncPace;
use crate::plan::defs::{ListenerDef, SlotDef, StateDef};
use crate::state::StateType;
use crate::value::{self, DynValue};

/// The top bit: every rendered id has it, no id of the config does.
const RENDERED_BIT: u32 = 1 << 31;

/// Whether `id` names a rendered component rather than one of the config's.
pub(crate) fn is_rendered_listener(id: ListenerId) -> bool {
    id.0 & RENDERED_BIT != 0
}

/// An id in the rendered range for these parts, stable across processes.
fn hashed_id(parts: &[&[u8]]) -> u32 {
    let mut bytes = Vec::new();
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
        bytes.extend_from_slice(&(part.len() as u32).to_le_bytes());
        bytes.extend_from_slice(part);
    }
    (xxhash_rust::xxh3::xxh3_64(&bytes) as u32) | RENDERED_BIT
}

/// The first id from `start` on (in the rendered range) that `taken` lacks.
fn free_id(start: u32, taken: &HashSet<u32>) -> u32 {
    let mut id = start;
    while taken.contains(&id) {
        id = id.wrapping_add(1) | RENDERED_BIT;
    }
    id
}

/// What a region's render function lays out: components in rows and columns, and
/// listeners of those components. Handed to the function given to
/// [`Blocks::render`].
///
/// Listeners are typed as [`Blocks`]' are; they may read and write the app's own
/// slots (states, globals, components declared outside the region) and this
/// region's components. Each is triggered by one of this region's components.
pub struct Render<'a> {
    region: u32,
    /// How many slots the app's config has: ids below are the app's own.
    app_slots: usize,
    components: Vec<ComponentConfig>,
    slots: Vec<SlotDef>,
    positions: HashMap<ComponentId, usize>,
    keys: HashSet<String>,
    layout: LayoutStack,
    listeners: Listeners,
    /// Each listener's trigger: its component's key and the event.
    triggers: Vec<(String, EventKind)>,
    listener_ids: HashSet<u32>,
    component_ids: HashSet<u32>,
    /// The first mistake of the render function, which fails the render.
    problem: Option<String>,
    /// The region's records of how quick its sync handlers have been.
    paces: &'a Paces,
}

/// How quick a region's sync handlers have been (`pace.rs`), kept across renders
/// so that a quick one may run inline as the config's listeners do. One record per
/// event kind and ordinal of a component's listeners, shared by every item's: they
/// are the same code in the usual render function (one that is not shares a record
/// with a slower one at worst, and runs on the blocking threads). Bounded: past
/// [`MAX_PACES`] kinds, a listener gets a record of its own for that render.
type Paces = Mutex<HashMap<(EventKind, u32), Arc<SyncPace>>>;

/// How many pace records a region keeps.
const MAX_PACES: usize = 64;

impl std::fmt::Debug for Render<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Render")
            .field("region", &self.region)
            .field("components", &self.components.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Render<'a> {
    fn new(region: u32, app_slots: usize, paces: &'a Paces) -> Self {
        Render {
            region,
            app_slots,
            components: Vec::new(),
            slots: Vec::new(),
            positions: HashMap::new(),
            keys: HashSet::new(),
            layout: LayoutStack::default(),
            listeners: Listeners::default(),
            triggers: Vec::new(),
            listener_ids: HashSet::new(),
            component_ids: HashSet::new(),
            problem: None,
            paces,
        }
    }

    fn fail(&mut self, problem: String) {
        self.problem.get_or_insert(problem);
    }

    /// Places a component in the current row or column. Its key
    /// (`.key(...)` on the component) names it across renders; give one made from
    /// the item it shows (an id, not a position), so that its listeners stay that
    /// item's. Without one, its key is its position in the render (`#0`, `#1`...).
    /// Two components of one render may not share a key.
    pub fn add<C: Component>(&mut self, component: C) -> Handle<C>
    where
        C::Value: Serialize,
    {
        let (kind, mut props) = component.into_config();
        let key = props
            .key
            .clone()
            .unwrap_or_else(|| format!("#{}", self.components.len()));
        if !self.keys.insert(key.clone()) {
            self.fail(format!("two components share the key {key:?}"));
        }
        let start = hashed_id(&[&self.region.to_le_bytes(), b"component", key.as_bytes()]);
        let id = ComponentId(free_id(start, &self.component_ids));
        self.component_ids.insert(id.0);
        props.key = Some(key);
        props.html = crate::components::rendered_html(&kind, &props.value);
        self.positions.insert(id, self.components.len());
        self.components.push(ComponentConfig { id, kind, props });
        self.slots.push(SlotDef::Client {
            decode: value::decode_json::<C::Value>,
            encode: value::encode_json::<C::Value>,
        });
        self.layout.push(LayoutNode::Component { id });
        Handle {
            id,
            _type: PhantomData,
        }
    }

    fn container(
        &mut self,
        build: impl FnOnce(&mut Self),
        wrap: impl FnOnce(Vec<LayoutNode>) -> LayoutNode,
    ) {
        LayoutStack::within(self, |render| &mut render.layout, build, wrap);
    }

    /// Lays out what `build` adds side by side.
    pub fn row(&mut self, build: impl FnOnce(&mut Self)) {
        self.container(build, |children| LayoutNode::Row { children });
    }

    /// Lays out what `build` adds one under the other.
    pub fn column(&mut self, build: impl FnOnce(&mut Self)) {
        self.container(build, |children| LayoutNode::Column { children });
    }

    /// Runs `handler` when `target`, a component of this render, is clicked.
    pub fn click<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Clickable,
        inputs: I,
        outputs: O,
        handler: H,
    ) {
        self.on(target.clicked(), inputs, outputs, handler);
    }

    /// Runs `handler` when the value of `target`, a component of this render,
    /// changes.
    pub fn change<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Changeable,
        inputs: I,
        outputs: O,
        handler: H,
    ) {
        self.on(target.changed(), inputs, outputs, handler);
    }

    /// Runs `handler` when Enter is pressed in `target`, a textbox of this render.
    pub fn submit<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Submittable,
        inputs: I,
        outputs: O,
        handler: H,
    ) {
        self.on(target.submitted(), inputs, outputs, handler);
    }

    fn on<I, O, H, M>(&mut self, trigger: EventTrigger, inputs: I, outputs: O, handler: H)
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        let position = trigger
            .0
            .component
            .and_then(|id| self.positions.get(&id).copied());
        let Some(key) = position.and_then(|at| self.components[at].props.key.clone()) else {
            self.fail(
                "a listener in a render must be triggered by a component of that render".into(),
            );
            return;
        };
        let event = trigger.0.event;
        let ordinal = self
            .triggers
            .iter()
            .filter(|(k, e)| *k == key && *e == event)
            .count() as u32;
        self.listeners.register([trigger], inputs, outputs, handler);
        let start = hashed_id(&[
            &self.region.to_le_bytes(),
            b"listener",
            key.as_bytes(),
            event.as_str().as_bytes(),
            &ordinal.to_le_bytes(),
        ]);
        let id = free_id(start, &self.listener_ids);
        self.listener_ids.insert(id);
        self.triggers.push((key, event));
        let Some(def) = self.listeners.defs.last_mut() else {
            return;
        };
        def.config.id = ListenerId(id);
        if let Ok(mut paces) = self.paces.lock() {
            let known = paces.len() < MAX_PACES || paces.contains_key(&(event, ordinal));
            if known {
                def.pace = paces.entry((event, ordinal)).or_default().clone();
            }
        }
        let foreign = def
            .config
            .inputs
            .iter()
            .chain(&def.config.outputs)
            .find(|slot| (slot.0 as usize) >= self.app_slots && !self.positions.contains_key(slot))
            .copied();
        if let Some(slot) = foreign {
            self.fail(format!(
                "a listener in region {} names slot {}, which is neither the app's nor this render's",
                self.region, slot.0
            ));
        }
    }

    fn finish(self) -> Result<Rendered, String> {
        if let Some(problem) = self.problem {
            return Err(problem);
        }
        let layout = self.layout.finish();
        let defs = self.listeners.defs;
        let region = RenderedRegion {
            region: self.region,
            components: self.components,
            layout,
            listeners: defs.iter().map(|d| d.config.clone()).collect(),
        };
        let slots = region
            .components
            .iter()
            .map(|c| c.id)
            .zip(self.slots)
            .collect();
        let listeners = defs
            .into_iter()
            .zip(self.triggers)
            .map(|(def, (key, _))| (def.config.id, (key, def)))
            .collect();
        Ok(Rendered {
            positions: self.positions,
            region,
            slots,
            listeners,
        })
    }
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

type RenderFn = Arc<dyn Fn(&dyn DynValue, &mut Render<'_>) -> bool + Send + Sync>;

/// A region as the app declared it: the state it is rendered from and how.
pub(crate) struct RenderDef {
    pub(crate) region: u32,
    /// The state's index; `None` when the handle named no state of this app (which
    /// [`Blocks::build`] refuses).
    pub(crate) state: Option<u32>,
    render: RenderFn,
    paces: Paces,
}

impl RenderDef {
    /// Renders the region from `value`; `app_slots` is the number of the app's own
    /// slots. A panic or a mistake of the render function is an error.
    pub(crate) fn run(&self, value: &dyn DynValue, app_slots: usize) -> Result<Rendered, String> {
        let mut render = Render::new(self.region, app_slots, &self.paces);
        match catch_unwind(AssertUnwindSafe(|| (self.render)(value, &mut render))) {
            Ok(true) => render.finish(),
            Ok(false) => Err("the region's state has an unexpected type".into()),
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

impl Blocks {
    /// A region laid out by `build` from the value of session state `state`, here in
    /// the current row or column, run again whenever an event changes the state
    /// (Gradio's `@gr.render`). The components `build` adds can be wired to
    /// listeners, which capture per-item data in their closures.
    ///
    /// `build` must depend on the state's value alone: the server keeps nothing
    /// of a region per session, and runs `build` again on the session's current
    /// value to find the listener an event names. If that render no longer has it
    /// (its item was deleted meanwhile), the event is refused and changes nothing.
    ///
    /// ```
    /// use keepsake::{Blocks, State};
    /// use keepsake::components::{Button, Checkbox, Textbox};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, PartialEq, Serialize, Deserialize)]
    /// struct Item { id: u64, text: String, done: bool }
    ///
    /// let mut app = Blocks::new("todo", "To-do");
    /// let items = app.state(State::new(Vec::<Item>::new()));
    /// let text = app.add(Textbox::new().label("New item"));
    /// let add = app.add(Button::new("Add"));
    /// app.click(add, (text, items), items, |text: String, mut items: Vec<Item>| {
    ///     let id = items.iter().map(|i| i.id + 1).max().unwrap_or(0);
    ///     items.push(Item { id, text, done: false });
    ///     items
    /// });
    /// app.render(items, move |list: &Vec<Item>, r| {
    ///     for item in list {
    ///         let id = item.id;
    ///         r.row(|r| {
    ///             // Keys made from the item's id: its listeners stay its own.
    ///             let done = r.add(Checkbox::new().value(item.done).label(&item.text)
    ///                 .key(format!("done-{id}")));
    ///             let delete = r.add(Button::new("Delete").key(format!("delete-{id}")));
    ///             r.change(done, (done, items), items, move |done: bool, mut items: Vec<Item>| {
    ///                 items.iter_mut().filter(|i| i.id == id).for_each(|i| i.done = done);
    ///                 items
    ///             });
    ///             r.click(delete, items, items, move |mut items: Vec<Item>| {
    ///                 items.retain(|i| i.id != id);
    ///                 items
    ///             });
    ///         });
    ///     }
    /// });
    /// let app = app.build()?;
    /// # Ok::<(), keepsake::BuildError>(())
    /// ```
    pub fn render<T: StateType>(
        &mut self,
        state: StateHandle<T>,
        build: impl Fn(&T, &mut Render<'_>) + Send + Sync + 'static,
    ) {
        let region = self.renders.len() as u32;
        let state = match self.slots.get(state.id.0 as usize) {
            Some(SlotDef::State(index)) => Some(*index),
            _ => None,
        };
        let render: RenderFn = Arc::new(move |value: &dyn DynValue, render: &mut Render<'_>| {
            let Some(value) = value.as_any().downcast_ref::<T>() else {
                return false;
            };
            build(value, render);
            true
        });
        self.renders.push(RenderDef {
            region,
            state,
            render,
            paces: Mutex::default(),
        });
        self.layout.push(LayoutNode::Render(RenderedRegion {
            region,
            ..RenderedRegion::default()
        }));
    }
}
