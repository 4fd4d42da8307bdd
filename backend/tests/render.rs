//! Regions rendered from session state (`Blocks::render`): the config shows the
//! region rendered from the state's default; an event that changes the state answers
//! with the region rendered again; listeners of rendered components reach the item
//! they were made for; a stale event (its item deleted meanwhile) or one naming
//! another item's key is refused and writes nothing; rendered components' values
//! are checked by kind. Runs on memory and, in the test command, on Redis.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::components::{Button, Checkbox, Markdown, Textbox};
use keepsake::protocol::config::{AppConfig, ComponentConfig, EventKind, LayoutNode};
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::{EventRequest, EventResult};
use keepsake::protocol::render::{RenderedRegion, RenderedTarget};
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Blocks, Global, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::{TestServer, assert_error, component, fast_settings, listener_named, value_of};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    id: u64,
    text: String,
    done: bool,
}

/// A to-do list starting with "Milk": "Add" appends the "New item" text, "Show"
/// shows the list as text. Each item is a row of a checkbox labelled with its text
/// and a "Delete <text>" button, keyed by the item's id; deleting also counts in a
/// global (so a rendered listener locks a global).
fn app() -> keepsake::App {
    let mut app = Blocks::new("todo", "To-do");
    let items = app.state(State::new(vec![Item {
        id: 0,
        text: "Milk".into(),
        done: false,
    }]));
    let deleted = app.global(Global::new(0u64));
    let text = app.add(Textbox::new().label("New item"));
    let add = app.add(Button::new("Add"));
    let shown = app.add(Markdown::new("").label("Shown"));
    app.click(
        add,
        (text, items),
        items,
        |text: String, mut items: Vec<Item>| {
            let id = items.iter().map(|i| i.id + 1).max().unwrap_or(0);
            items.push(Item {
                id,
                text,
                done: false,
            });
            items
        },
    )
    .api_name("add");
    let show = app.add(Button::new("Show"));
    app.click(
        show,
        (items, deleted),
        shown,
        |items: Vec<Item>, deleted: u64| {
            let list: Vec<String> = items
                .iter()
                .map(|i| format!("{}{}", i.text, if i.done { "+" } else { "" }))
                .collect();
            format!("{} deleted:{deleted}", list.join(","))
        },
    )
    .api_name("show");
    app.render(items, move |list: &Vec<Item>, r| {
        for item in list {
            let id = item.id;
            r.row(|r| {
                let done = r.add(
                    Checkbox::new()
                        .value(item.done)
                        .label(&item.text)
                        .key(format!("done-{id}")),
                );
                let delete = r.add(
                    Button::new("Delete")
                        .label(format!("Delete {}", item.text))
                        .key(format!("delete-{id}")),
                );
                r.change(
                    done,
                    (done, items),
                    items,
                    move |done: bool, mut items: Vec<Item>| {
                        for item in items.iter_mut().filter(|i| i.id == id) {
                            item.done = done;
                        }
                        items
                    },
                );
                r.click(
                    delete,
                    (items, deleted),
                    (items, deleted),
                    move |mut items: Vec<Item>, deleted: u64| {
                        items.retain(|i| i.id != id);
                        (items, deleted + 1)
                    },
                );
            });
        }
    });
    app.build().unwrap()
}

/// The region the config shows.
fn config_region(config: &AppConfig) -> RenderedRegion {
    fn find(nodes: &[LayoutNode]) -> Option<&RenderedRegion> {
        nodes.iter().find_map(|node| match node {
            LayoutNode::Render(region) => Some(region),
            LayoutNode::Row { children } | LayoutNode::Column { children } => find(children),
            _ => None,
        })
    }
    find(&config.layout)
        .cloned()
        .expect("a region in the layout")
}

/// The region an event's answer carries.
fn answered_region(result: &EventResult) -> RenderedRegion {
    assert_eq!(result.regions.len(), 1, "one region re-rendered");
    result.regions[0].clone()
}

fn labelled<'a>(region: &'a RenderedRegion, label: &str) -> &'a ComponentConfig {
    region
        .components
        .iter()
        .find(|c| c.props.label.as_deref() == Some(label))
        .unwrap_or_else(|| panic!("no rendered component labelled {label:?}"))
}

/// The labels of the region's checkboxes with their values, in order.
fn checkboxes(region: &RenderedRegion) -> Vec<(String, Value)> {
    region
        .components
        .iter()
        .filter(|c| c.kind == keepsake::protocol::config::ComponentKind::Checkbox)
        .map(|c| (c.props.label.clone().unwrap(), c.props.value.clone()))
        .collect()
}

/// The request for `event` on the component labelled `label` in `region`.
fn rendered_request(
    region: &RenderedRegion,
    label: &str,
    event: EventKind,
    inputs: Vec<Value>,
) -> EventRequest {
    let component = labelled(region, label);
    let listener: ListenerId = region
        .listeners
        .iter()
        .find(|d| {
            d.triggers
                .iter()
                .any(|t| t.component == Some(component.id) && t.event == event)
        })
        .unwrap_or_else(|| panic!("no {event:?} listener on {label:?}"))
        .id;
    EventRequest {
        listener,
        inputs,
        held: Vec::new(),
        rendered: Some(RenderedTarget {
            region: region.region,
            key: component.props.key.clone().unwrap(),
        }),
        shown: Vec::new(),
    }
}

async fn add(server: &TestServer, session: &SessionId, text: &str) -> EventResult {
    let config = server.config("todo").await;
    server
        .event(
            "todo",
            session,
            listener_named(&config, "add"),
            vec![json!(text), Value::Null],
        )
        .await
        .unwrap()
}

async fn shown(server: &TestServer, session: &SessionId) -> Value {
    let config = server.config("todo").await;
    let result = server
        .event(
            "todo",
            session,
            listener_named(&config, "show"),
            vec![Value::Null, Value::Null],
        )
        .await
        .unwrap();
    assert!(result.regions.is_empty(), "no state changed: no region");
    value_of(&result, component(&config, "Shown")).unwrap()
}

#[tokio::test]
async fn the_config_shows_the_region_rendered_from_the_default() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("todo").await;
    let region = config_region(&config);
    assert_eq!(checkboxes(&region), vec![("Milk".into(), json!(false))]);
    let delete = labelled(&region, "Delete Milk");
    assert_eq!(delete.props.key.as_deref(), Some("delete-0"));
    assert_eq!(region.listeners.len(), 2, "a change and a click listener");
    // Rendered ids never meet the config's own.
    for c in &region.components {
        assert!(config.component(c.id).is_none(), "{c:?}");
    }
    for d in &region.listeners {
        assert!(config.listener(d.id).is_none(), "{d:?}");
    }

    // A session's first render, after a change, keeps the ids of "Milk"'s row.
    let session = server.start_session("todo").await;
    let after = answered_region(&add(&server, &session, "Eggs").await);
    assert_eq!(
        checkboxes(&after),
        vec![("Milk".into(), json!(false)), ("Eggs".into(), json!(false))]
    );
    assert_eq!(labelled(&after, "Delete Milk").id, delete.id);
    assert_eq!(
        after.listeners[..2],
        region.listeners[..],
        "the same listeners for the same keys"
    );
    server.stop().await;
}

#[tokio::test]
async fn listeners_of_rendered_components_reach_their_own_item() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let session = server.start_session("todo").await;
    add(&server, &session, "Eggs").await;
    let region = answered_region(&add(&server, &session, "Tea").await);
    assert_eq!(checkboxes(&region).len(), 3);

    // Delete the middle one: Eggs goes, Milk and Tea stay.
    let delete = rendered_request(
        &region,
        "Delete Eggs",
        EventKind::Click,
        vec![Value::Null, Value::Null],
    );
    let result = server.send_event("todo", &session, &delete).await.unwrap();
    let region = answered_region(&result);
    assert_eq!(
        checkboxes(&region),
        vec![("Milk".into(), json!(false)), ("Tea".into(), json!(false))]
    );

    // Tick the last one: Tea is done, Milk is not.
    let tick = rendered_request(
        &region,
        "Tea",
        EventKind::Change,
        vec![json!(true), Value::Null],
    );
    let result = server.send_event("todo", &session, &tick).await.unwrap();
    assert_eq!(
        checkboxes(&answered_region(&result)),
        vec![("Milk".into(), json!(false)), ("Tea".into(), json!(true))]
    );
    assert_eq!(shown(&server, &session).await, json!("Milk,Tea+ deleted:1"));

    // Another session has its own list.
    let other = server.start_session("todo").await;
    assert_eq!(shown(&server, &other).await, json!("Milk deleted:1"));
    server.stop().await;
}

#[tokio::test]
async fn a_stale_event_is_refused_and_writes_nothing() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let session = server.start_session("todo").await;
    let region = answered_region(&add(&server, &session, "Eggs").await);
    let delete = rendered_request(
        &region,
        "Delete Eggs",
        EventKind::Click,
        vec![Value::Null, Value::Null],
    );
    let tick = rendered_request(
        &region,
        "Eggs",
        EventKind::Change,
        vec![json!(true), Value::Null],
    );
    // Eggs' listener named with Milk's key: refused, never run for either.
    let mut misdirected = delete.clone();
    misdirected.rendered.as_mut().unwrap().key = "delete-0".into();
    assert_error(
        server.send_event("todo", &session, &misdirected).await,
        404,
        ErrorKind::UnknownListener,
    );
    assert_eq!(shown(&server, &session).await, json!("Milk,Eggs deleted:0"));
    server.send_event("todo", &session, &delete).await.unwrap();

    // A double click on Delete, then a tick of the deleted item: both refused.
    for stale in [&delete, &tick] {
        let body = assert_error(
            server.send_event("todo", &session, stale).await,
            404,
            ErrorKind::UnknownListener,
        );
        assert!(body.message.contains("no longer has"), "{}", body.message);
    }
    // An unknown region.
    let mut nowhere = delete.clone();
    nowhere.rendered.as_mut().unwrap().region = 7;
    assert_error(
        server.send_event("todo", &session, &nowhere).await,
        404,
        ErrorKind::UnknownListener,
    );
    // Nothing was written: one deletion counted, Milk untouched.
    assert_eq!(shown(&server, &session).await, json!("Milk deleted:1"));
    server.stop().await;
}

#[tokio::test]
async fn a_state_change_answers_with_the_region_rendered_again() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let session = server.start_session("todo").await;
    let result = add(&server, &session, "Eggs").await;
    let region = answered_region(&result);
    assert_eq!(region.region, 0);
    assert_eq!(
        region.components.len(),
        4,
        "two rows of checkbox and button"
    );
    assert_eq!(region.listeners.len(), 4);
    assert!(matches!(
        &region.layout[..],
        [LayoutNode::Row { .. }, LayoutNode::Row { .. }]
    ));

    // Ticking to the value it has changes nothing: no region in the answer.
    let untick = rendered_request(
        &region,
        "Milk",
        EventKind::Change,
        vec![json!(false), Value::Null],
    );
    let result = server.send_event("todo", &session, &untick).await.unwrap();
    assert!(result.regions.is_empty(), "{result:?}");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_on_a_rendered_component_is_rejected() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let session = server.start_session("todo").await;
    let config = server.config("todo").await;
    let region = config_region(&config);
    for inputs in [
        vec![json!("yes"), Value::Null],
        vec![json!(1), Value::Null],
        vec![json!(true)],
    ] {
        let tick = rendered_request(&region, "Milk", EventKind::Change, inputs);
        assert_error(
            server.send_event("todo", &session, &tick).await,
            400,
            ErrorKind::InvalidInput,
        );
    }
    // A rendered listener's id without its region and key is no listener of the app.
    let mut bare = rendered_request(
        &region,
        "Milk",
        EventKind::Change,
        vec![json!(true), Value::Null],
    );
    bare.rendered = None;
    assert_error(
        server.send_event("todo", &session, &bare).await,
        404,
        ErrorKind::UnknownListener,
    );
    assert_eq!(shown(&server, &session).await, json!("Milk deleted:0"));
    server.stop().await;
}

#[test]
fn a_render_with_two_components_of_one_key_does_not_build() {
    let mut app = Blocks::new("twice", "Twice");
    let items = app.state(State::new(vec![1u32, 2]));
    app.render(items, |list: &Vec<u32>, r| {
        for _ in list {
            r.add(Button::new("Same").key("same"));
        }
    });
    let error = app.build().unwrap_err();
    assert!(error.to_string().contains("share the key"), "{error}");
}

/// Names in a state; each is a row of a "Greet <name>" button and a Markdown
/// greeting it writes (a rendered listener writing a rendered component). A name
/// "boom" makes the render panic.
fn greeter() -> keepsake::App {
    let mut app = Blocks::new("greeter", "Greeter");
    let names = app.state(State::new(vec!["Ada".to_owned()]));
    let name = app.add(Textbox::new().label("Name"));
    let add = app.add(Button::new("Add"));
    app.click(
        add,
        (name, names),
        names,
        |name: String, mut names: Vec<String>| {
            names.push(name);
            names
        },
    )
    .api_name("add");
    let shown = app.add(Textbox::new().label("Names"));
    let show = app.add(Button::new("Show"));
    app.click(show, names, shown, |names: Vec<String>| names.join(","))
        .api_name("show");
    app.render(names, |names: &Vec<String>, r| {
        for name in names {
            assert!(name != "boom", "a render that fails");
            r.row(|r| {
                let greet = r.add(
                    Button::new("Greet")
                        .label(format!("Greet {name}"))
                        .key(format!("greet-{name}")),
                );
                let greeting = r.add(
                    Markdown::new("")
                        .label(format!("Greeting {name}"))
                        .key(format!("greeting-{name}")),
                );
                let name = name.clone();
                r.click(greet, (), greeting, move || format!("Hello, **{name}**!"));
            });
        }
    });
    app.build().unwrap()
}

#[tokio::test]
async fn a_rendered_listener_writes_a_rendered_component_and_a_failed_render_writes_nothing() {
    let server = TestServer::start(fast_settings(), vec![greeter()]).await;
    let session = server.start_session("greeter").await;
    let config = server.config("greeter").await;
    let region = config_region(&config);
    let greet = rendered_request(&region, "Greet Ada", EventKind::Click, vec![]);
    let result = server
        .send_event("greeter", &session, &greet)
        .await
        .unwrap();
    let greeting = labelled(&region, "Greeting Ada").id;
    let update = result
        .updates
        .iter()
        .find(|u| u.component == greeting)
        .expect("the rendered Markdown's update");
    assert_eq!(update.value, Some(json!("Hello, **Ada**!")));
    assert_eq!(
        update.html.as_deref(),
        Some("<p>Hello, <strong>Ada</strong>!</p>\n"),
        "rendered by the server, as any Markdown value"
    );
    assert!(result.regions.is_empty(), "no state changed");

    // The render of the new value panics: the event fails, nothing is written.
    let add = listener_named(&config, "add");
    let failed = server
        .event("greeter", &session, add, vec![json!("boom"), Value::Null])
        .await;
    assert_error(failed, 500, ErrorKind::HandlerFailed);
    let show = listener_named(&config, "show");
    let result = server
        .event("greeter", &session, show, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, component(&config, "Names")),
        Some(json!("Ada"))
    );
    server.stop().await;
}
