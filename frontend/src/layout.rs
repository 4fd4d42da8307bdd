//! The layout around the component views: rows, columns, tabs and accordions.
//!
//! Tabs follow the WAI-ARIA tabs pattern (a `tablist` of `tab` buttons, each
//! controlling its `tabpanel`); hidden panels stay in the page, so their components
//! keep their values and take part in events. An accordion is a `<details>`
//! element, which browsers make keyboard- and screen-reader-accessible themselves.
//! A rendered region is drawn from its current contents, which the controller
//! replaces when an event's answer brings a new render.

use std::rc::Rc;

use keepsake_shared::ComponentId;
use keepsake_shared::config::LayoutNode;
use leptos::prelude::*;
use wasm_bindgen::JsCast as _;

use crate::components::component_view;
use crate::controller::{Controller, PageHandle};

/// The layout of the whole app: an implicit column. Rendered components that the
/// layout forgets are appended at the end rather than silently dropped.
pub fn layout_view(controller: &Rc<Controller>, page: PageHandle) -> AnyView {
    let config = controller.config();
    let mut placed = Vec::new();
    collect_placed(&config.layout, &mut placed);
    let mut children = nodes_view(controller, page, &config.layout);
    for component in &config.components {
        if component.kind.is_rendered() && !placed.contains(&component.id) {
            children.push(component_view(controller, page, component.id));
        }
    }
    view! { <div class="layout column">{children}</div> }.into_any()
}

fn collect_placed(nodes: &[LayoutNode], placed: &mut Vec<ComponentId>) {
    for node in nodes {
        // A region's components are not the config's.
        if let LayoutNode::Component { id } = node {
            placed.push(*id);
        }
        collect_placed(node.children(), placed);
    }
}

fn nodes_view(controller: &Rc<Controller>, page: PageHandle, nodes: &[LayoutNode]) -> Vec<AnyView> {
    nodes
        .iter()
        .map(|node| node_view(controller, page, node))
        .collect()
}

fn node_view(controller: &Rc<Controller>, page: PageHandle, node: &LayoutNode) -> AnyView {
    match node {
        LayoutNode::Row { children } => {
            let children = nodes_view(controller, page, children);
            view! { <div class="row">{children}</div> }.into_any()
        }
        LayoutNode::Column { children } | LayoutNode::Tab { children, .. } => {
            let children = nodes_view(controller, page, children);
            view! { <div class="column">{children}</div> }.into_any()
        }
        LayoutNode::Tabs { children } => tabs_view(controller, page, children),
        LayoutNode::Accordion {
            label,
            open,
            children,
        } => {
            let children = nodes_view(controller, page, children);
            view! {
                <details class="accordion" open=*open>
                    <summary>{label.clone()}</summary>
                    <div class="column">{children}</div>
                </details>
            }
            .into_any()
        }
        LayoutNode::Component { id } => component_view(controller, page, *id),
        LayoutNode::Render(region) => region_view(controller, page, region.region),
    }
}

/// A region rendered from session state: drawn from the controller's copy of its
/// contents, and again whenever an event's answer brings a new render of it.
fn region_view(controller: &Rc<Controller>, page: PageHandle, region: u32) -> AnyView {
    let Some(contents) = controller.region_signal(region) else {
        return ().into_any();
    };
    let children = move || {
        let Some(controller) = page.get() else {
            return Vec::new();
        };
        keep_focus();
        contents.with(|r| nodes_view(&controller, page, &r.layout))
    };
    view! { <div class="column region">{children}</div> }.into_any()
}

/// A new render of a region reuses its elements by position, not by key: after an
/// item moved or one before it left, the element that had the keyboard focus (the
/// checkbox just ticked) shows another item, or is gone and the focus falls back to
/// the page. A keyboard user would act on the wrong item, or lose their place. The
/// focused element's like in the new render has its id (the same key gives the same
/// component id), so once the new render is in the page the focus goes to it, if it
/// is still on the reused element or on nothing.
fn keep_focus() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Some(before) = document.active_element() else {
        return;
    };
    let id = before.id();
    if id.is_empty() {
        return;
    }
    request_animation_frame(move || {
        let Some(like) = document.get_element_by_id(&id) else {
            return;
        };
        let moved = match document.active_element() {
            None => true,
            Some(now) if now == like => false,
            Some(now) => now == before || document.body().is_some_and(|body| *body == now),
        };
        if let (true, Ok(like)) = (moved, like.dyn_into::<web_sys::HtmlElement>()) {
            let _ = like.focus();
        }
    });
}

/// A tab list and its panels; the first tab is selected at first.
fn tabs_view(controller: &Rc<Controller>, page: PageHandle, tabs: &[LayoutNode]) -> AnyView {
    // Ids unique within the page, for the tabs' ARIA wiring.
    thread_local!(static NEXT: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    let group = NEXT.with(|next| {
        let group = next.get();
        next.set(group + 1);
        group
    });
    let selected = RwSignal::new(0usize);
    let buttons: Vec<AnyView> = tabs
        .iter()
        .enumerate()
        .map(|(index, tab)| {
            let label = match tab {
                LayoutNode::Tab { label, .. } => label.clone(),
                _ => String::new(),
            };
            let tab_id = format!("ks-tabs{group}-tab{index}");
            let panel_id = format!("ks-tabs{group}-panel{index}");
            view! {
                <button type="button" role="tab" id=tab_id aria-controls=panel_id
                    class="tab" class:selected=move || selected.get() == index
                    aria-selected=move || if selected.get() == index { "true" } else { "false" }
                    tabindex=move || if selected.get() == index { "0" } else { "-1" }
                    on:click=move |_| selected.set(index)>
                    {label}
                </button>
            }
            .into_any()
        })
        .collect();
    let panels: Vec<AnyView> = tabs
        .iter()
        .enumerate()
        .map(|(index, tab)| {
            let tab_id = format!("ks-tabs{group}-tab{index}");
            let panel_id = format!("ks-tabs{group}-panel{index}");
            let content = node_view(controller, page, tab);
            view! {
                <div role="tabpanel" id=panel_id aria-labelledby=tab_id class="tab-panel"
                    hidden=move || selected.get() != index>
                    {content}
                </div>
            }
            .into_any()
        })
        .collect();
    view! {
        <div class="tabs">
            <div role="tablist" class="tab-list">{buttons}</div>
            {panels}
        </div>
    }
    .into_any()
}
