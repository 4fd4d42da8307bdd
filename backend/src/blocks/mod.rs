//! The app builder, after Gradio's `Blocks`: components in rows and columns, states,
//! globals, browser states, resources and event listeners. [`Blocks::build`] checks
//! the wiring and freezes it into an [`App`] (see [`crate::app`]) that a server mounts.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;

use keepsake_shared::config::{
    AppConfig, BrowserStateConfig, ComponentConfig, ComponentKind, ComponentProps, EventKind,
    LayoutNode,
};
use keepsake_shared::{AppId, ComponentId, PROTOCOL_VERSION};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::app::region::RenderDef;
use crate::app::{App, BrowserStateDef, GlobalDef, Render, SlotDef, StateDef};
use crate::blocks::declared::{
    BrowserStateHandle, GlobalHandle, Handle, ResourceHandle, StateHandle,
};
use crate::blocks::layout::LayoutStack;
use crate::components::Component;
use crate::error::BuildError;
use crate::state::{BrowserState, Global, Resource, ResourceFactory, State, StateType};
use crate::value::{self, DynValue};

pub(crate) mod declared;
mod events;
pub(crate) mod layout;
pub(crate) mod listener;
pub(crate) mod render;

/// Secrets shorter than this are accepted but warned about.
pub const MIN_SECRET_BYTES: usize = 32;

/// Builds an app: add components, states and listeners, then [`Blocks::build`] it
/// and mount the [`App`] on a [`crate::Server`].
///
/// ```
/// use keepsake::Blocks;
/// use keepsake::components::{Button, Markdown, Textbox};
///
/// let mut app = Blocks::new("greeter", "Greeter").description("Says hello.");
/// app.add(Markdown::new("Type a name, then press **Greet** or Enter."));
/// let name = app.add(Textbox::new().label("Name").placeholder("Ada"));
/// let greet = app.add(Button::new("Greet").primary());
/// let greeting = app.add(Textbox::new().label("Greeting").interactive(false));
/// // The handler's types follow the wiring: a Textbox gives and takes a String.
/// app.click(greet, name, greeting, |name: String| format!("Hello, {name}!"))
///     .api_name("greet");
/// app.submit(name, name, greeting, |name: String| format!("Hello, {name}!"));
///
/// let app = app.build()?;
/// assert_eq!(app.id().0, "greeter");
/// assert_eq!(app.config().endpoints()[0].api_name, "greet");
///
/// // `build` checks the wiring; an id that cannot be part of a URL is refused.
/// assert!(Blocks::new("Greeter!", "Greeter").build().is_err());
/// # Ok::<(), keepsake::BuildError>(())
/// ```
pub struct Blocks {
    id: String,
    title: String,
    description: String,
    components: Vec<ComponentConfig>,
    pub(crate) slots: Vec<SlotDef>,
    states: Vec<StateDef>,
    globals: Vec<GlobalDef>,
    browser_states: Vec<BrowserStateDef>,
    resources: Vec<ResourceFactory>,
    listeners: Listeners,
    /// Open containers; the first is the page's top-level column.
    pub(crate) layout: LayoutStack,
    /// Regions rendered from state ([`Blocks::render`], in `render.rs`).
    pub(crate) renders: Vec<RenderDef>,
    /// Mistakes found while declaring (a weak secret, a secret that would be
    /// ignored): `build` refuses the app with the first, rather than warn in a log a
    /// developer may never see.
    mistakes: Vec<String>,
}

pub use self::listener::ListenerRef;
use self::listener::Listeners;

impl Blocks {
    /// `id` names the app in URLs (`/apps/{id}`); `title` is shown to people.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Blocks {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            components: Vec::new(),
            slots: Vec::new(),
            states: Vec::new(),
            globals: Vec::new(),
            browser_states: Vec::new(),
            resources: Vec::new(),
            listeners: Listeners::default(),
            layout: LayoutStack::default(),
            renders: Vec::new(),
            mistakes: Vec::new(),
        }
    }

    /// A sentence shown on the start page.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    fn push_slot(
        &mut self,
        kind: ComponentKind,
        mut props: ComponentProps,
        slot: SlotDef,
    ) -> ComponentId {
        let id = ComponentId(self.components.len() as u32);
        crate::components::render_props(&kind, &mut props);
        let rendered = kind.is_rendered();
        self.components.push(ComponentConfig { id, kind, props });
        self.slots.push(slot);
        if rendered {
            self.layout.push(LayoutNode::Component { id });
        }
        id
    }

    /// Places a component in the current row or column.
    pub fn add<C: Component>(&mut self, component: C) -> Handle<C>
    where
        C::Value: Serialize,
    {
        let (kind, props) = component.into_config();
        let slot = SlotDef::Client {
            decode: value::decode_json::<C::Value>,
            encode: value::encode_json::<C::Value>,
        };
        Handle {
            id: self.push_slot(kind, props, slot),
            _type: PhantomData,
        }
    }

    fn container(
        &mut self,
        build: impl FnOnce(&mut Self),
        wrap: impl FnOnce(Vec<LayoutNode>) -> LayoutNode,
    ) {
        LayoutStack::within(self, |blocks| &mut blocks.layout, build, wrap);
    }

    /// Lays out what `build` adds side by side.
    pub fn row(&mut self, build: impl FnOnce(&mut Self)) {
        self.container(build, |children| LayoutNode::Row { children });
    }

    /// Lays out what `build` adds one under the other.
    pub fn column(&mut self, build: impl FnOnce(&mut Self)) {
        self.container(build, |children| LayoutNode::Column { children });
    }

    /// Tabs: `build` adds each with [`Blocks::tab`]; the first is shown at first.
    /// Components in hidden tabs keep their values and take part in events.
    ///
    /// ```
    /// use keepsake::Blocks;
    /// use keepsake::components::{Markdown, Textbox};
    ///
    /// let mut app = Blocks::new("tabs", "Tabs");
    /// app.tabs(|app| {
    ///     app.tab("Write", |app| {
    ///         app.add(Textbox::new().label("Text"));
    ///     });
    ///     app.tab("About", |app| {
    ///         app.add(Markdown::new("Made with Keepsake."));
    ///     });
    /// });
    /// app.accordion("Details", false, |app| {
    ///     app.add(Markdown::new("Shown when opened."));
    /// });
    /// # app.build().unwrap();
    /// ```
    pub fn tabs(&mut self, build: impl FnOnce(&mut Self)) {
        self.container(build, |children| LayoutNode::Tabs { children });
    }

    /// One tab, inside [`Blocks::tabs`] (elsewhere, [`Blocks::build`] refuses it):
    /// `label` on its button, what `build` adds in it.
    pub fn tab(&mut self, label: impl Into<String>, build: impl FnOnce(&mut Self)) {
        let label = label.into();
        self.container(build, |children| LayoutNode::Tab { label, children });
    }

    /// A section under `label` that people open and close (`open`: at first).
    pub fn accordion(
        &mut self,
        label: impl Into<String>,
        open: bool,
        build: impl FnOnce(&mut Self),
    ) {
        let label = label.into();
        self.container(build, |children| LayoutNode::Accordion {
            label,
            open,
            children,
        });
    }

    /// Declares a session state.
    pub fn state<T: StateType>(&mut self, state: State<T>) -> StateHandle<T> {
        let index = self.states.len() as u32;
        let id = self.push_slot(
            ComponentKind::State,
            ComponentProps::default(),
            SlotDef::State(index),
        );
        let parts = state.into_parts();
        self.states.push(StateDef {
            component: id,
            factory: parts.factory,
            time_to_live: parts.time_to_live,
            on_delete: parts.on_delete,
            accept: value::into_stored::<T>,
            codec: parts.codec,
        });
        StateHandle {
            id,
            _type: PhantomData,
        }
    }

    /// Declares a global value.
    pub fn global<T: StateType>(&mut self, global: Global<T>) -> GlobalHandle<T> {
        let index = self.globals.len() as u32;
        let id = self.push_slot(
            ComponentKind::Global,
            ComponentProps::default(),
            SlotDef::Global(index),
        );
        let codec = global.codec();
        self.globals.push(GlobalDef {
            initial: Box::new(global.initial),
            accept: value::into_stored::<T>,
            codec,
            bindings: Vec::new(),
        });
        GlobalHandle {
            id,
            _type: PhantomData,
        }
    }

    /// Shows a global on every connected page: whenever it changes, `render` turns
    /// it into the component's new value and the server pushes that to every stream.
    pub fn bind<T: StateType, C: Component>(
        &mut self,
        global: GlobalHandle<T>,
        component: Handle<C>,
        render: impl Fn(&T) -> C::Value + Send + Sync + 'static,
    ) where
        C::Value: Serialize,
    {
        let Some(SlotDef::Global(index)) = self.slots.get(global.id.0 as usize) else {
            return;
        };
        let render: Render = Arc::new(move |value: &dyn DynValue| {
            let value = value.as_any().downcast_ref::<T>()?;
            serde_json::to_value(render(value)).ok()
        });
        if let Some(def) = self.globals.get_mut(*index as usize) {
            def.bindings.push((component.id, render));
        }
    }

    /// Declares a browser state. Only its storage key reaches the client; its
    /// secrets, keys and default stay on the server.
    pub fn browser_state<T>(&mut self, state: BrowserState<T>) -> BrowserStateHandle<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let default = serde_json::to_value(&state.default).unwrap_or(Value::Null);
        let id = ComponentId(self.components.len() as u32);
        // Unnamed slots get a name from their position: with random keys per start
        // (below), an earlier run's value under that name does not open, and each
        // restart overwrites the same entry instead of leaving one behind.
        let fixed_key = state.storage_key.is_some();
        let storage_key = state
            .storage_key
            .unwrap_or_else(|| format!("browser-state-{}", id.0));
        if state.secrets.iter().any(String::is_empty) {
            // Anyone can derive keys from an empty secret (as from a missing
            // environment variable read with `unwrap_or_default`).
            self.mistakes.push(
                "a BrowserState secret is empty: anyone could forge its values (read the secret from the environment, and fail if it is missing)".into(),
            );
        } else if let Some(weak) = state.secrets.iter().find(|s| s.len() < MIN_SECRET_BYTES) {
            // The length only: the secret itself never reaches a message.
            self.mistakes.push(format!(
                "a BrowserState secret is {} bytes long: one that short can be guessed, and whoever guesses it opens and forges the values; use at least {MIN_SECRET_BYTES} random bytes, read from the environment",
                weak.len()
            ));
        }
        let secrets = match (fixed_key, state.secrets.is_empty()) {
            (true, false) => Some(state.secrets),
            (false, false) => {
                self.mistakes.push(
                    "a BrowserState has a secret but no storage key: the secret would be ignored and its values lost at every restart; give it a storage key too (or no secret)".into(),
                );
                None
            }
            (_, true) => None,
        };
        // Keys from the random seed are bound to the slot's name and also to its type
        // and default: with Redis the seed outlives restarts, and a slot named by
        // its position must not open a value another slot had there before a change
        // of the app.
        let binding = format!("{}\0{default}", std::any::type_name::<T>());
        self.browser_states.push(BrowserStateDef {
            component: id,
            storage_key: storage_key.clone(),
            binding,
            secrets,
            default,
            max_age: state.max_age,
            version: state.version,
            migration: state.migration,
            decode: value::decode_json::<T>,
            encode: value::encode_json::<T>,
        });
        let kind = ComponentKind::BrowserState(BrowserStateConfig { storage_key });
        let slot = SlotDef::Browser((self.browser_states.len() - 1) as u32);
        BrowserStateHandle {
            id: self.push_slot(kind, ComponentProps::default(), slot),
            _type: PhantomData,
        }
    }

    /// Declares a per-session resource.
    pub fn resource<T: Send + 'static>(&mut self, resource: Resource<T>) -> ResourceHandle<T> {
        self.resources.push(resource.into_factory());
        ResourceHandle {
            id: (self.resources.len() - 1) as u32,
            _type: PhantomData,
        }
    }

    /// Checks the wiring and freezes the app.
    pub fn build(mut self) -> Result<App, BuildError> {
        let fail = |message: String| BuildError {
            app: self.id.clone(),
            message,
        };
        let id_ok = !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !id_ok {
            return Err(fail(
                "the id must be non-empty lowercase letters, digits and '-'".into(),
            ));
        }
        let server_side = |id: &ComponentId| {
            self.components
                .get(id.0 as usize)
                .is_some_and(|c| c.kind.is_server_side())
        };
        if let Some(mistake) = self.mistakes.first() {
            return Err(fail(mistake.clone()));
        }
        for c in &self.components {
            crate::components::check_declared(&c.kind, &c.props.value)
                .map_err(|problem| fail(format!("component {}: {problem}", c.id.0)))?;
        }
        let mut storage_keys = HashSet::new();
        for browser in &self.browser_states {
            if browser.storage_key.is_empty() {
                return Err(fail("a BrowserState storage key must not be empty".into()));
            }
            if !storage_keys.insert(browser.storage_key.as_str()) {
                return Err(fail(format!(
                    "two BrowserStates share the storage key {:?}",
                    browser.storage_key
                )));
            }
        }
        let mut api_names = HashSet::new();
        for dep in &self.listeners.defs {
            let config = &dep.config;
            for id in config.inputs.iter().chain(&config.outputs) {
                if self.components.get(id.0 as usize).is_none() {
                    return Err(fail(format!(
                        "listener {} names unknown slot {}",
                        config.id.0, id.0
                    )));
                }
            }
            let server_triggered = config.triggers.iter().any(|t| {
                t.event == EventKind::Unload
                    || (t.event == EventKind::Change
                        && t.component.is_some_and(|c| {
                            matches!(self.slots.get(c.0 as usize), Some(SlotDef::State(_)))
                        }))
            });
            if server_triggered && !config.inputs.iter().all(server_side) {
                return Err(fail(format!(
                    "listener {} is run by the server (state change or unload) but reads a value only the client holds",
                    config.id.0
                )));
            }
            let unload = config.triggers.iter().any(|t| t.event == EventKind::Unload);
            if unload && !config.outputs.iter().all(server_side) {
                return Err(fail(format!(
                    "unload listener {} writes a component, but no page is left to show it",
                    config.id.0
                )));
            }
            for stopped in &config.cancels {
                let streams = self
                    .listeners
                    .defs
                    .get(stopped.0 as usize)
                    .map(|d| d.config.streams);
                if streams != Some(true) || *stopped == config.id {
                    return Err(fail(format!(
                        "listener {} cancels listener {}, which is not another streaming listener of this app: only a stream can be stopped",
                        config.id.0, stopped.0
                    )));
                }
            }
            if let Some(name) = &config.api_name {
                // A URL segment (`.../call/{api_name}`) and an MCP tool name.
                let word = (1..=64).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !word {
                    return Err(fail(format!(
                        "the api name {name:?} must be 1 to 64 ASCII letters, digits, '_' or '-'"
                    )));
                }
                if unload {
                    return Err(fail(format!(
                        "unload listener {} has the api name {name:?}, but only the server runs it",
                        config.id.0
                    )));
                }
                if !api_names.insert(name.clone()) {
                    return Err(fail(format!("two listeners share the api name {name:?}")));
                }
            }
        }
        if let Some(problem) = crate::blocks::layout::misplaced_tab(self.layout.top(), false) {
            return Err(fail(problem));
        }
        // The config shows each region as rendered from its state's default.
        let slots = self.slots.len();
        crate::app::region::fill_regions(self.layout.top(), &self.renders, &self.states, slots)
            .map_err(fail)?;
        // A chained listener runs in its predecessor's event if the server holds all
        // it reads; after an unload listener, no page is left to run or show it.
        let mut listeners = self.listeners.defs;
        for index in 0..listeners.len() {
            let Some(after) = listeners[index].config.after else {
                continue;
            };
            let config = &listeners[index].config;
            let by_server = config.inputs.iter().all(server_side);
            let mut root = after.listener;
            while let Some(before) = listeners.get(root.0 as usize).and_then(|d| d.config.after) {
                root = before.listener;
            }
            let after_unload = listeners.get(root.0 as usize).is_some_and(|d| {
                d.config
                    .triggers
                    .iter()
                    .any(|t| t.event == EventKind::Unload)
            });
            if after_unload && !(by_server && config.outputs.iter().all(server_side)) {
                return Err(fail(format!(
                    "listener {} follows an unload listener, so only the server can run it, but it reads or writes a value only a page holds",
                    config.id.0
                )));
            }
            if let Some(after) = &mut listeners[index].config.after {
                after.by_server = by_server;
            }
        }
        let config = AppConfig {
            protocol_version: PROTOCOL_VERSION,
            id: AppId(self.id),
            title: self.title,
            description: self.description,
            components: self.components,
            layout: self.layout.finish(),
            listeners: listeners.iter().map(|d| d.config.clone()).collect(),
        };
        let mut app = App::freeze(
            config,
            self.slots,
            self.states,
            self.globals,
            self.browser_states,
            self.resources,
            listeners,
        );
        app.renders = self.renders;
        Ok(app)
    }
}
