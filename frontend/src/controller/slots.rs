//! The page's component signals: those of the config's components, made once, and
//! those of rendered regions' components, which come and go as the server renders a
//! region again (an event's `regions`).
//!
//! A rendered component keeps its id for the same key across renders, so a component
//! that stays keeps its signals (its view is drawn again, from them); its value and
//! properties become the new render's. Signals of components that left stay
//! allocated until the page goes (they belong to no view any more): cheap, and no
//! view still being torn down can read a disposed signal.

use std::cell::RefCell;
use std::collections::HashMap;

use keepsake_shared::config::{
    AppConfig, ComponentConfig, ComponentKind, EventKind, LayoutNode, ListenerConfig,
};
use keepsake_shared::render::{RenderedRegion, RenderedTarget};
use keepsake_shared::{ComponentId, ListenerId};
use leptos::prelude::*;
use serde_json::Value;

/// The displayed properties of a rendered component.
#[derive(Debug, Clone, PartialEq)]
pub struct Props {
    pub label: Option<String>,
    pub info: Option<String>,
    pub visible: bool,
    /// Resolved: the config's value, or the client's default for the component.
    pub interactive: bool,
    /// Choices of a checkbox group, dropdown or radio group (empty for other kinds).
    pub choices: Vec<String>,
    /// Whether a timer ticks (`false` for other kinds).
    pub active: bool,
}

/// Every drawn component's signals, and each region's contents.
pub(super) struct Slots {
    values: RefCell<HashMap<ComponentId, RwSignal<Value>>>,
    props: RefCell<HashMap<ComponentId, RwSignal<Props>>>,
    /// The HTML of each component the server renders whole (Markdown, Html).
    html: RefCell<HashMap<ComponentId, RwSignal<String>>>,
    /// The HTML of each item of the components the server renders per item (a
    /// Chatbot's messages).
    items: RefCell<HashMap<ComponentId, RwSignal<Vec<String>>>>,
    /// Each region's current contents, which its layout view draws.
    regions: HashMap<u32, RwSignal<RenderedRegion>>,
}

impl Slots {
    pub(super) fn new(config: &AppConfig) -> Self {
        let mut slots = Slots {
            values: RefCell::default(),
            props: RefCell::default(),
            html: RefCell::default(),
            items: RefCell::default(),
            regions: HashMap::new(),
        };
        for component in config.components.iter().filter(|c| c.kind.is_page_value()) {
            slots.set(component, &config.listeners);
        }
        let mut regions = Vec::new();
        collect_regions(&config.layout, &mut regions);
        for region in regions {
            for component in &region.components {
                slots.set(component, &region.listeners);
            }
            slots
                .regions
                .insert(region.region, RwSignal::new(region.clone()));
        }
        slots
    }

    /// Makes `component`'s signals, or gives the ones it has its new value and
    /// properties (`listeners`: the listeners that may read or trigger it).
    fn set(&self, component: &ComponentConfig, listeners: &[ListenerConfig]) {
        let id = component.id;
        let is_input = listeners.iter().any(|d| d.inputs.contains(&id));
        let has_triggers = listeners
            .iter()
            .any(|d| d.triggers.iter().any(|t| t.component == Some(id)));
        let choices = match &component.kind {
            ComponentKind::CheckboxGroup { choices }
            | ComponentKind::Dropdown { choices, .. }
            | ComponentKind::Radio { choices } => choices.clone(),
            _ => Vec::new(),
        };
        let active = matches!(component.kind, ComponentKind::Timer { active: true });
        let props = Props {
            label: component.props.label.clone(),
            info: component.props.info.clone(),
            visible: component.props.visible,
            interactive: component
                .props
                .interactive
                .unwrap_or(is_input || has_triggers),
            choices,
            active,
        };
        let value = component.props.value.clone();
        match self.values.borrow_mut().entry(id) {
            std::collections::hash_map::Entry::Occupied(signal) => {
                if signal.get().with_untracked(|current| *current != value) {
                    signal.get().set(value);
                }
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(RwSignal::new(value));
            }
        }
        match self.props.borrow_mut().entry(id) {
            std::collections::hash_map::Entry::Occupied(signal) => {
                if signal.get().with_untracked(|current| *current != props) {
                    signal.get().set(props);
                }
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(RwSignal::new(props));
            }
        }
        if matches!(component.kind, ComponentKind::Chatbot) {
            let rendered = component.props.items.clone();
            match self.items.borrow_mut().entry(id) {
                std::collections::hash_map::Entry::Occupied(signal) => signal.get().set(rendered),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(RwSignal::new(rendered));
                }
            }
        }
        if matches!(
            component.kind,
            ComponentKind::Markdown | ComponentKind::Html
        ) {
            let rendered = component.props.html.clone().unwrap_or_default();
            match self.html.borrow_mut().entry(id) {
                std::collections::hash_map::Entry::Occupied(signal) => signal.get().set(rendered),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(RwSignal::new(rendered));
                }
            }
        }
    }

    pub(super) fn value(&self, id: ComponentId) -> Option<RwSignal<Value>> {
        self.values.borrow().get(&id).copied()
    }

    pub(super) fn props(&self, id: ComponentId) -> Option<RwSignal<Props>> {
        self.props.borrow().get(&id).copied()
    }

    pub(super) fn html(&self, id: ComponentId) -> Option<RwSignal<String>> {
        self.html.borrow().get(&id).copied()
    }

    pub(super) fn items(&self, id: ComponentId) -> Option<RwSignal<Vec<String>>> {
        self.items.borrow().get(&id).copied()
    }

    pub(super) fn region(&self, region: u32) -> Option<RwSignal<RenderedRegion>> {
        self.regions.get(&region).copied()
    }

    /// Replaces a region's contents with a new render of it.
    pub(super) fn set_region(&self, new: RenderedRegion) {
        let Some(signal) = self.regions.get(&new.region) else {
            return;
        };
        for component in &new.components {
            self.set(component, &new.listeners);
        }
        signal.set(new);
    }

    /// A rendered component's config, from its region's current render.
    pub(super) fn component(&self, id: ComponentId) -> Option<ComponentConfig> {
        self.regions
            .values()
            .find_map(|region| region.with_untracked(|r| r.component(id).cloned()))
    }

    /// A rendered listener, as its region's current render has it, with what an
    /// event of it names: the region and its component's key.
    pub(super) fn listener(&self, id: ListenerId) -> Option<(ListenerConfig, RenderedTarget)> {
        self.regions.values().find_map(|region| {
            region.with_untracked(|r| {
                let listener = r.listeners.iter().find(|d| d.id == id)?;
                let trigger = listener.triggers.first()?.component?;
                let key = r.component(trigger)?.props.key.clone()?;
                Some((
                    listener.clone(),
                    RenderedTarget {
                        region: r.region,
                        key,
                    },
                ))
            })
        })
    }

    /// The rendered listeners of `event` on rendered component `component`.
    pub(super) fn listeners(&self, component: ComponentId, event: EventKind) -> Vec<ListenerId> {
        self.regions
            .values()
            .flat_map(|region| {
                region.with_untracked(|r| {
                    r.listeners
                        .iter()
                        .filter(|d| {
                            d.triggers
                                .iter()
                                .any(|t| t.component == Some(component) && t.event == event)
                        })
                        .map(|d| d.id)
                        .collect::<Vec<_>>()
                })
            })
            .collect()
    }
}

fn collect_regions<'a>(nodes: &'a [LayoutNode], regions: &mut Vec<&'a RenderedRegion>) {
    for node in nodes {
        if let LayoutNode::Render(region) = node {
            regions.push(region);
        }
        collect_regions(node.children(), regions);
    }
}
