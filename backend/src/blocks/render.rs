//! The builder side of rendered regions: [`Render`], what a region's render function
//! lays out, and `Blocks::render`. How a region runs (its ids, its renders, the
//! config's first render) is `app/region.rs`; the rules are in its doc comment.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;

use keepsake_shared::config::{ComponentConfig, EventKind, LayoutNode};
use keepsake_shared::render::RenderedRegion;
use keepsake_shared::{ComponentId, ListenerId};
use serde::Serialize;

use super::Blocks;
use super::declared::{Changeable, Clickable, EventTrigger, Handle, StateHandle, Submittable};
use super::layout::LayoutStack;
use super::listener::Listeners;
use crate::app::defs::SlotDef;
use crate::app::region::{Paces, RenderDef, RenderFn, Rendered, free_id, hashed_id, shared_pace};
use crate::components::Component;
use crate::handler::{Handler, Inputs, Outputs};
use crate::state::StateType;
use crate::value::{self, DynValue};

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
        crate::components::render_props(&kind, &mut props);
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
        if let Some(pace) = shared_pace(self.paces, event, ordinal) {
            def.pace = pace;
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

    pub(crate) fn finish(self) -> Result<Rendered, String> {
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
        Ok(Rendered::new(region, self.positions, slots, listeners))
    }
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
        let render: RenderFn = Arc::new(move |value: &dyn DynValue, app_slots, paces| {
            let Some(value) = value.as_any().downcast_ref::<T>() else {
                return Err("the region's state has an unexpected type".into());
            };
            let mut render = Render::new(region, app_slots, paces);
            build(value, &mut render);
            render.finish()
        });
        self.renders.push(RenderDef::new(region, state, render));
        self.layout.push(LayoutNode::Render(RenderedRegion {
            region,
            ..RenderedRegion::default()
        }));
    }
}
