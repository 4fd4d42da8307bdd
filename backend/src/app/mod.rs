//! The frozen plan of an app: what [`crate::Blocks::build`] produces and the engine
//! runs. Nothing here changes after start-up; the builder ([`crate::blocks`]) is the
//! only place that makes one.
//!
//! Besides the wire config, the plan holds what only the server knows: how each slot
//! is read and written, the handlers, and what follows from the wiring, computed once
//! (which listeners a state's `.change` triggers, and every global an event may
//! write, so the engine can lock them all up front, in one order).

use keepsake_shared::ListenerId;
use keepsake_shared::config::{AppConfig, EventKind, Trigger};
use keepsake_shared::{AppId, ComponentId};
use serde_json::Value;

use crate::app::region::RenderDef;
use crate::components::Rendering;
use crate::handler::SlotRef;
use crate::state::ResourceFactory;

pub(crate) mod defs;
pub(crate) mod inline;
pub(crate) mod region;

pub(crate) use defs::{BrowserStateDef, GlobalDef, ListenerDef, Render, SlotDef, StateDef};

/// A built app: its wire config plus everything the engine needs to run it.
pub struct App {
    pub(crate) config: AppConfig,
    pub(crate) slots: Vec<SlotDef>,
    pub(crate) states: Vec<StateDef>,
    pub(crate) globals: Vec<GlobalDef>,
    pub(crate) browser_states: Vec<BrowserStateDef>,
    pub(crate) resources: Vec<ResourceFactory>,
    pub(crate) listeners: Vec<ListenerDef>,
    /// For each state, the listeners its `.change` triggers.
    pub(crate) state_change_listeners: Vec<Vec<ListenerId>>,
    pub(crate) unload_listeners: Vec<ListenerId>,
    /// For each listener, the listeners chained after it (`.then`, `.success`), in
    /// the order they were declared.
    pub(crate) followers: Vec<Vec<ListenerId>>,
    /// Whether some listener takes the [`crate::Request`]: if none does, the HTTP
    /// layer does not copy each event's headers for it.
    pub(crate) takes_request: bool,
    /// Regions rendered from state ([`crate::Blocks::render`]), by region number.
    pub(crate) renders: Vec<RenderDef>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.config.id)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Freezes a checked wiring: derives the `.change` and unload listener lists and
    /// each listener's written globals.
    pub(crate) fn freeze(
        mut config: AppConfig,
        slots: Vec<SlotDef>,
        states: Vec<StateDef>,
        globals: Vec<GlobalDef>,
        browser_states: Vec<BrowserStateDef>,
        resources: Vec<ResourceFactory>,
        mut listeners: Vec<ListenerDef>,
    ) -> App {
        let state_change_listeners: Vec<Vec<ListenerId>> = states
            .iter()
            .map(|state| {
                listeners
                    .iter()
                    .filter(|dep| {
                        dep.config.triggers.contains(&Trigger {
                            component: Some(state.component),
                            event: EventKind::Change,
                        })
                    })
                    .map(|dep| dep.config.id)
                    .collect()
            })
            .collect();
        let unload_listeners = listeners
            .iter()
            .filter(|dep| {
                dep.config
                    .triggers
                    .iter()
                    .any(|t| t.event == EventKind::Unload)
            })
            .map(|dep| dep.config.id)
            .collect();
        let written: Vec<Vec<u32>> = (0..listeners.len())
            .map(|start| globals_reachable(start, &listeners, &slots, &state_change_listeners))
            .collect();
        for (dep, globals) in listeners.iter_mut().zip(written) {
            dep.globals_written = globals;
        }
        // Events that read and write no session value need not wait for the
        // session's others (a stream may hold it for minutes).
        let concurrent: Vec<bool> = (0..listeners.len())
            .map(|start| {
                listeners[start].globals_written.is_empty()
                    && cascade(start, &listeners, &slots, &state_change_listeners)
                        .into_iter()
                        .all(|listener| touches_no_session(&listeners[listener], &slots))
            })
            .collect();
        for (index, concurrent) in concurrent.into_iter().enumerate() {
            listeners[index].config.concurrent = concurrent;
            if let Some(wire) = config.listeners.get_mut(index) {
                wire.concurrent = concurrent;
            }
        }
        let mut followers = vec![Vec::new(); listeners.len()];
        for dep in &listeners {
            if let Some(after) = dep.config.after
                && let Some(list) = followers.get_mut(after.listener.0 as usize)
            {
                list.push(dep.config.id);
            }
        }
        let takes_request = listeners
            .iter()
            .any(|dep| dep.inputs.contains(&SlotRef::Request));
        App {
            config,
            slots,
            states,
            globals,
            browser_states,
            resources,
            listeners,
            state_change_listeners,
            unload_listeners,
            followers,
            takes_request,
            // Set by the builder, after.
            renders: Vec::new(),
        }
    }

    /// The config clients receive.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The id the app is mounted under (`/apps/{id}`).
    pub fn id(&self) -> &AppId {
        &self.config.id
    }

    pub(crate) fn slot(&self, id: ComponentId) -> Option<&SlotDef> {
        self.slots.get(id.0 as usize)
    }

    /// The HTML sent with a new `value` of component `id`: `Some` for Markdown
    /// components, which the server renders ([`crate::components::markdown_to_html`]).
    pub(crate) fn rendered(&self, id: ComponentId, value: &Value) -> Rendering {
        match self.config.component(id) {
            Some(component) => crate::components::rendered(&component.kind, value),
            None => Rendering::Nothing,
        }
    }

    pub(crate) fn listener(&self, id: ListenerId) -> Option<&ListenerDef> {
        self.listeners.get(id.0 as usize)
    }

    /// Listener `id` and every listener an event of it may run after it (the
    /// `.change` listeners of its state outputs and the chained listeners the server
    /// runs, transitively), `id` first; empty for an unknown id.
    pub(crate) fn cascade(&self, id: ListenerId) -> Vec<ListenerId> {
        if self.listener(id).is_none() {
            return Vec::new();
        }
        cascade(
            id.0 as usize,
            &self.listeners,
            &self.slots,
            &self.state_change_listeners,
        )
        .into_iter()
        .map(|listener| ListenerId(listener as u32))
        .collect()
    }
}

/// The globals listener `start` writes, and those of every listener its event may
/// run after it ([`cascade`]), sorted.
/// Whether `listener` reads and writes no session value: no state, no resource.
fn touches_no_session(listener: &ListenerDef, slots: &[SlotDef]) -> bool {
    let is_state = |id: &ComponentId| matches!(slots.get(id.0 as usize), Some(SlotDef::State(_)));
    !listener.config.outputs.iter().any(is_state)
        && listener.inputs.iter().all(|input| match input {
            SlotRef::Wire(id) => !is_state(id),
            SlotRef::Resource(_) => false,
            SlotRef::Request | SlotRef::Notifier => true,
        })
        && !listener
            .config
            .triggers
            .iter()
            .any(|t| t.event == EventKind::Unload)
}

fn globals_reachable(
    start: usize,
    listeners: &[ListenerDef],
    slots: &[SlotDef],
    state_change_listeners: &[Vec<ListenerId>],
) -> Vec<u32> {
    let mut globals: Vec<u32> = cascade(start, listeners, slots, state_change_listeners)
        .into_iter()
        .flat_map(|listener| &listeners[listener].config.outputs)
        .filter_map(|output| match slots.get(output.0 as usize) {
            Some(SlotDef::Global(index)) => Some(*index),
            _ => None,
        })
        .collect();
    globals.sort_unstable();
    globals.dedup();
    globals
}

/// Listener `start` and every listener its event may run after it: the `.change`
/// listeners its state outputs can set off and the chained listeners the server runs
/// (`After::by_server`), transitively (a graph walk, each listener visited once),
/// `start` first.
fn cascade(
    start: usize,
    listeners: &[ListenerDef],
    slots: &[SlotDef],
    state_change_listeners: &[Vec<ListenerId>],
) -> Vec<usize> {
    let mut visited = vec![start];
    let mut seen = vec![false; listeners.len()];
    let mut pending = vec![start];
    seen[start] = true;
    while let Some(next) = pending.pop() {
        let changed = listeners[next]
            .config
            .outputs
            .iter()
            .filter_map(|output| match slots.get(output.0 as usize) {
                Some(SlotDef::State(index)) => state_change_listeners.get(*index as usize),
                _ => None,
            })
            .flatten()
            .map(|listener| listener.0 as usize);
        // The chained listeners the server runs within the same event.
        let chained = listeners.iter().filter_map(|dep| match dep.config.after {
            Some(after) if after.by_server && after.listener.0 as usize == next => {
                Some(dep.config.id.0 as usize)
            }
            _ => None,
        });
        for listener in changed.chain(chained).collect::<Vec<_>>() {
            if listener < seen.len() && !seen[listener] {
                seen[listener] = true;
                visited.push(listener);
                pending.push(listener);
            }
        }
    }
    visited
}
