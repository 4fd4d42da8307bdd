//! A region rendered from state, in the client: drawn from the config, its
//! components' events sent with the region and the component's key, and replaced by
//! the new render an answer brings (keeping the signals of a component whose key
//! stays).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use keepsake_frontend::browser_state::MemoryStore;
use keepsake_shared::config::{
    AppConfig, ButtonVariant, ComponentConfig, ComponentKind, ComponentProps, EventKind,
    LayoutNode, ListenerConfig, Trigger,
};
use keepsake_shared::event::EventResult;
use keepsake_shared::render::{RenderedRegion, RenderedTarget};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use leptos::prelude::GetUntracked as _;
use serde_json::{Value, json};
use std::rc::Rc;
use support::{Scripted, mount_app, until};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ITEMS: ComponentId = ComponentId(0);
/// Rendered ids have the top bit set.
const RENDERED: u32 = 1 << 31;

fn checkbox(id: u32, label: &str, key: &str, checked: bool) -> ComponentConfig {
    ComponentConfig {
        id: ComponentId(RENDERED | id),
        kind: ComponentKind::Checkbox,
        props: ComponentProps {
            label: Some(label.into()),
            value: json!(checked),
            key: Some(key.into()),
            ..ComponentProps::default()
        },
    }
}

fn delete(id: u32, item: &str, key: &str) -> ComponentConfig {
    ComponentConfig {
        id: ComponentId(RENDERED | id),
        kind: ComponentKind::Button {
            variant: ButtonVariant::Stop,
        },
        props: ComponentProps {
            label: Some(format!("Delete {item}")),
            value: json!("Delete"),
            key: Some(key.into()),
            ..ComponentProps::default()
        },
    }
}

fn listener(id: u32, component: u32, event: EventKind, inputs: Vec<ComponentId>) -> ListenerConfig {
    ListenerConfig {
        id: ListenerId(RENDERED | id),
        triggers: vec![Trigger {
            component: Some(ComponentId(RENDERED | component)),
            event,
        }],
        inputs,
        outputs: vec![ITEMS],
        api_name: None,
        description: None,
        after: None,
        streams: false,
        cancels: Vec::new(),
        concurrent: false,
    }
}

/// Rows of a checkbox and a "Delete <item>" button for `items` (id, text, done).
fn region(items: &[(u32, &str, bool)]) -> RenderedRegion {
    let mut region = RenderedRegion::default();
    for &(id, text, done) in items {
        let (check, button) = (id * 10, id * 10 + 1);
        region
            .components
            .push(checkbox(check, text, &format!("done-{id}"), done));
        region
            .components
            .push(delete(button, text, &format!("delete-{id}")));
        region.layout.push(LayoutNode::Row {
            children: vec![
                LayoutNode::Component {
                    id: ComponentId(RENDERED | check),
                },
                LayoutNode::Component {
                    id: ComponentId(RENDERED | button),
                },
            ],
        });
        region.listeners.push(listener(
            check,
            check,
            EventKind::Change,
            vec![ComponentId(RENDERED | check), ITEMS],
        ));
        region
            .listeners
            .push(listener(button, button, EventKind::Click, vec![ITEMS]));
    }
    region
}

fn config() -> AppConfig {
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("todo".into()),
        title: "To-do".into(),
        description: "test".into(),
        components: vec![ComponentConfig {
            id: ITEMS,
            kind: ComponentKind::State,
            props: ComponentProps::default(),
        }],
        layout: vec![LayoutNode::Render(region(&[
            (1, "Milk", false),
            (2, "Eggs", false),
        ]))],
        listeners: vec![],
    }
}

/// The labels of the region's checkboxes with whether each is ticked, in order.
fn shown(container: &web_sys::HtmlElement) -> Vec<(String, bool)> {
    let labels = container.query_selector_all(".region label.check").unwrap();
    (0..labels.length())
        .filter_map(|i| labels.item(i))
        .map(|node| {
            let label: web_sys::Element = node.unchecked_into();
            let input: web_sys::HtmlInputElement = label
                .query_selector("input")
                .unwrap()
                .unwrap()
                .unchecked_into();
            (
                label.text_content().unwrap().trim().to_owned(),
                input.checked(),
            )
        })
        .collect()
}

fn delete_button(container: &web_sys::HtmlElement, item: &str) -> Option<web_sys::HtmlElement> {
    container
        .query_selector(&format!("button[aria-label='Delete {item}']"))
        .unwrap()
        .map(wasm_bindgen::JsCast::unchecked_into)
}

#[wasm_bindgen_test]
async fn a_region_is_drawn_its_events_name_their_item_and_answers_replace_it() {
    let backend = Rc::new(Scripted::default());
    // Deleting Milk: the new render has Eggs alone, ticked meanwhile elsewhere.
    backend.answers.borrow_mut().push_back(Ok(EventResult {
        ran: vec![ListenerId(RENDERED | 11)],
        regions: vec![region(&[(2, "Eggs", true)])],
        ..EventResult::default()
    }));
    let (container, controller) =
        mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    assert_eq!(
        shown(&container),
        vec![("Milk".into(), false), ("Eggs".into(), false)]
    );
    let eggs = ComponentId(RENDERED | 20);
    let eggs_value = controller
        .value_signal(eggs)
        .expect("Eggs' checkbox signal");

    delete_button(&container, "Milk")
        .expect("Milk's delete button")
        .click();
    until("the new render", || shown(&container).len() == 1).await;
    assert_eq!(shown(&container), vec![("Eggs".into(), true)]);
    assert!(delete_button(&container, "Milk").is_none());
    assert!(delete_button(&container, "Eggs").is_some());
    // The component whose key stayed kept its signal, with the new render's value.
    assert_eq!(controller.value_signal(eggs), Some(eggs_value));
    assert_eq!(eggs_value.get_untracked(), json!(true));

    let (_, request) = backend
        .sent
        .borrow()
        .last()
        .cloned()
        .expect("the click was sent");
    assert_eq!(request.listener, ListenerId(RENDERED | 11));
    assert_eq!(
        request.rendered,
        Some(RenderedTarget {
            region: 0,
            key: "delete-1".into()
        })
    );
    assert_eq!(
        request.inputs,
        vec![Value::Null],
        "the state's value stays on the server"
    );

    // Unticking Eggs sends its value, named by Eggs' key.
    let input: web_sys::HtmlInputElement = container
        .query_selector(".region input[type=checkbox]")
        .unwrap()
        .unwrap()
        .unchecked_into();
    input.click();
    until("the change event", || backend.sent.borrow().len() == 2).await;
    let (_, request) = backend.sent.borrow().last().cloned().unwrap();
    assert_eq!(request.listener, ListenerId(RENDERED | 20));
    assert_eq!(request.inputs, vec![json!(false), Value::Null]);
    assert_eq!(request.rendered.as_ref().unwrap().key, "done-2");
}
