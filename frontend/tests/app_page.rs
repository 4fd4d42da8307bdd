//! The generic client in a real browser: it renders an app from its config with
//! accessible names, runs an event through a scripted backend, applies the outputs,
//! shows the running indicator and errors, and recovers from an expired session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use keepsake_frontend::api::{ClientError, decode};
use keepsake_frontend::app_page::{OUTDATED, app_page_with};
use keepsake_frontend::browser_state::MemoryStore;
use keepsake_frontend::controller::{Controller, SESSION_RESTARTED};
use keepsake_shared::config::{
    AppConfig, ButtonVariant, ComponentConfig, ComponentKind, ComponentProps, EventKind,
    LayoutNode, ListenerConfig, Trigger,
};
use keepsake_shared::error::{ErrorBody, ErrorKind};
use keepsake_shared::event::{ComponentUpdate, EventResult, PropsUpdate};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use leptos::prelude::GetUntracked as _;
use serde_json::{Value, json};
use support::{Scripted, Shared, component, document, mount_app, until};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ITEMS: ComponentId = ComponentId(0);
const ADD: ComponentId = ComponentId(1);
const SIZE: ComponentId = ComponentId(2);
const CART: ComponentId = ComponentId(3);

/// The shopping cart's shape: items, a button, a cart size and a session state.
fn cart_config() -> AppConfig {
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("cart".into()),
        title: "Cart".into(),
        description: "test".into(),
        components: vec![
            component(
                0,
                ComponentKind::CheckboxGroup {
                    choices: vec!["Milk".into(), "Water".into()],
                },
                "Items",
                json!([]),
            ),
            component(
                1,
                ComponentKind::Button {
                    variant: ButtonVariant::Primary,
                },
                "Add Items",
                json!("Add Items"),
            ),
            component(
                2,
                ComponentKind::Number {
                    minimum: None,
                    maximum: None,
                    step: None,
                },
                "Cart Size",
                json!(0),
            ),
            ComponentConfig {
                id: CART,
                kind: ComponentKind::State,
                props: ComponentProps::default(),
            },
        ],
        layout: vec![LayoutNode::Row {
            children: vec![
                LayoutNode::Component { id: ITEMS },
                LayoutNode::Component { id: SIZE },
            ],
        }],
        listeners: vec![ListenerConfig {
            id: ListenerId(0),
            triggers: vec![Trigger {
                component: Some(ADD),
                event: EventKind::Click,
            }],
            inputs: vec![ITEMS, CART],
            outputs: vec![SIZE],
            api_name: None,
            description: None,
            after: None,
            streams: false,
            cancels: Vec::new(),
            concurrent: false,
        }],
    }
}

fn size_update(n: u32) -> EventResult {
    EventResult {
        updates: vec![ComponentUpdate {
            component: SIZE,
            value: Some(json!(n)),
            html: None,
            edits: Vec::new(),
            items: Vec::new(),
            props: PropsUpdate::default(),
        }],
        ran: vec![ListenerId(0)],
        errors: vec![],
        browser_state: vec![],
        notices: vec![],
        regions: vec![],
    }
}

/// Mounts the cart app in a fresh container and starts it.
fn mount(backend: Rc<Scripted>) -> (web_sys::HtmlElement, Rc<Controller>) {
    mount_app(cart_config(), backend, Box::new(MemoryStore::new()))
}

/// Mounts the whole app page (config request included) in a fresh container.
fn mount_page(backend: Rc<Scripted>) -> web_sys::HtmlElement {
    backend
        .config
        .borrow_mut()
        .get_or_insert_with(|| Ok(cart_config()));
    let container: web_sys::HtmlElement =
        document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&container).unwrap();
    let handle = leptos::mount::mount_to(container.clone(), move || {
        app_page_with(
            AppId("cart".into()),
            Rc::new(Shared(backend)),
            Box::new(MemoryStore::new()),
        )
    });
    handle.forget();
    container
}

/// The text of the first `role=alert` element with text, if any.
fn alert_text(root: &web_sys::HtmlElement) -> Option<String> {
    let alerts = root.query_selector_all("[role=alert]").unwrap();
    (0..alerts.length())
        .filter_map(|i| alerts.item(i).unwrap().text_content())
        .find(|text| !text.trim().is_empty())
}

/// The control a `<label>` with this text points to.
fn labelled(root: &web_sys::HtmlElement, text: &str) -> web_sys::HtmlElement {
    let labels = root.query_selector_all("label[for]").unwrap();
    for i in 0..labels.length() {
        let label: web_sys::Element = labels.item(i).unwrap().unchecked_into();
        if label.text_content().unwrap_or_default().trim() == text {
            let id = label.get_attribute("for").unwrap();
            // Ids repeat across the containers of earlier tests: look inside this one.
            return root
                .query_selector(&format!("#{id}"))
                .unwrap()
                .unwrap()
                .unchecked_into();
        }
    }
    panic!("no control labelled {text:?}");
}

fn button(root: &web_sys::HtmlElement, text: &str) -> web_sys::HtmlElement {
    let buttons = root.query_selector_all("button").unwrap();
    (0..buttons.length())
        .map(|i| {
            buttons
                .item(i)
                .unwrap()
                .unchecked_into::<web_sys::HtmlElement>()
        })
        .find(|b| b.text_content().unwrap_or_default().trim() == text)
        .unwrap_or_else(|| panic!("no button {text:?}"))
}

fn input_value(element: &web_sys::HtmlElement) -> String {
    element.unchecked_ref::<web_sys::HtmlInputElement>().value()
}

#[wasm_bindgen_test]
async fn renders_every_control_with_an_accessible_name() {
    let (root, _controller) = mount(Rc::new(Scripted::default()));
    assert_eq!(
        root.query_selector("h1")
            .unwrap()
            .unwrap()
            .text_content()
            .unwrap(),
        "Cart"
    );
    let size = labelled(&root, "Cart Size");
    assert_eq!(size.get_attribute("type").as_deref(), Some("number"));
    until("the initial value", || input_value(&size) == "0").await;
    let legend = root.query_selector("fieldset legend").unwrap().unwrap();
    assert_eq!(legend.text_content().unwrap(), "Items");
    assert_eq!(
        root.query_selector_all("fieldset input[type=checkbox]")
            .unwrap()
            .length(),
        2
    );
    let add = button(&root, "Add Items");
    assert!(!add.unchecked_ref::<web_sys::HtmlButtonElement>().disabled());
    // The session state is not rendered.
    assert_eq!(root.query_selector_all(".component").unwrap().length(), 3);
}

#[wasm_bindgen_test]
async fn a_click_sends_the_inputs_and_applies_the_outputs() {
    let backend = Rc::new(Scripted::default());
    backend.answers.borrow_mut().push_back(Ok(size_update(1)));
    let (root, _controller) = mount(backend.clone());
    let milk: web_sys::HtmlElement = root
        .query_selector("input[value=Milk]")
        .unwrap()
        .unwrap()
        .unchecked_into();
    milk.click();
    button(&root, "Add Items").click();
    // The running indicator shows while the event is in flight.
    until("the running indicator", || {
        root.text_content().unwrap_or_default().contains("Running")
    })
    .await;
    let size = labelled(&root, "Cart Size");
    until("the cart size output", || input_value(&size) == "1").await;
    until("the indicator to go away", || {
        !root.text_content().unwrap_or_default().contains("Running")
    })
    .await;
    let sent = backend.sent.borrow();
    assert_eq!(sent.len(), 1);
    // The state's slot is sent as null: session values never come from the client.
    assert_eq!(sent[0].1.inputs, vec![json!(["Milk"]), Value::Null]);
}

#[wasm_bindgen_test]
async fn a_failed_event_shows_a_readable_error() {
    let backend = Rc::new(Scripted::default());
    backend
        .answers
        .borrow_mut()
        .push_back(Err(ClientError::Server(ErrorBody {
            error: ErrorKind::HandlerError,
            message: "the handler of listener 0 failed: out of stock".into(),
        })));
    let (root, _controller) = mount(backend);
    button(&root, "Add Items").click();
    until("the error banner", || {
        root.query_selector("[role=alert] .banner.error")
            .unwrap()
            .is_some_and(|e| {
                e.text_content()
                    .unwrap_or_default()
                    .contains("out of stock")
            })
    })
    .await;
}

#[wasm_bindgen_test]
async fn an_expired_session_is_replaced_and_the_event_retried() {
    let backend = Rc::new(Scripted::default());
    backend
        .answers
        .borrow_mut()
        .push_back(Err(ClientError::Server(ErrorBody {
            error: ErrorKind::UnknownSession,
            message: "unknown session; start a new one".into(),
        })));
    backend.answers.borrow_mut().push_back(Ok(size_update(5)));
    let (root, controller) = mount(backend.clone());
    until("a session", || controller.session().is_some()).await;
    let first = controller.session().unwrap();
    button(&root, "Add Items").click();
    let size = labelled(&root, "Cart Size");
    until("the retried event's output", || input_value(&size) == "5").await;
    assert!(
        root.text_content().unwrap().contains(SESSION_RESTARTED),
        "the user is told"
    );
    let sent = backend.sent.borrow();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].0, first);
    assert_ne!(sent[1].0, first, "the retry runs on the new session");
    assert!(
        root.query_selector("[role=alert] .banner.error")
            .unwrap()
            .is_none()
    );
}

#[wasm_bindgen_test]
async fn a_number_field_takes_what_the_browser_parsed_and_ignores_half_typed_text() {
    let (root, controller) = mount(Rc::new(Scripted::default()));
    let size = labelled(&root, "Cart Size");
    until("the initial value", || input_value(&size) == "0").await;
    let field = size.unchecked_ref::<web_sys::HtmlInputElement>();
    let value = controller.value_signal(SIZE).unwrap();
    let type_in = |text: &str| {
        field.set_value(text);
        let event = web_sys::Event::new("input").unwrap();
        field.dispatch_event(&event).unwrap();
    };
    type_in("12.5");
    assert_eq!(value.get_untracked(), json!(12.5));
    type_in("-3e2");
    assert_eq!(value.get_untracked(), json!(-300.0));
    // Text the browser cannot read as a number (a number field sanitises it to "")
    // keeps the last good value instead of sending 0 or null.
    type_in("1e");
    assert_eq!(value.get_untracked(), json!(-300.0));
    type_in("");
    assert_eq!(value.get_untracked(), json!(-300.0));
}

#[wasm_bindgen_test]
async fn a_server_speaking_another_protocol_version_gets_a_reload_notice() {
    let backend = Rc::new(Scripted::default());
    let mut config = cart_config();
    config.protocol_version = PROTOCOL_VERSION + 1;
    *backend.config.borrow_mut() = Some(Ok(config));
    let root = mount_page(backend.clone());
    until("the reload notice", || {
        alert_text(&root).is_some_and(|text| text.contains(OUTDATED))
    })
    .await;
    let alert = root.query_selector("[role=alert]").unwrap().unwrap();
    let reload = button(alert.unchecked_ref(), "Reload");
    assert_eq!(reload.get_attribute("type").as_deref(), Some("button"));
    // Give a wrongly started page time to show itself.
    gloo_timers::future::TimeoutFuture::new(200).await;
    assert_eq!(*backend.sessions.borrow(), 0, "no session was started");
    assert!(backend.sent.borrow().is_empty(), "no event was run");
    assert!(
        root.query_selector("h1").unwrap().is_none(),
        "no app header"
    );
    assert_eq!(root.query_selector_all(".component").unwrap().length(), 0);
    assert_eq!(root.query_selector_all("input").unwrap().length(), 0);
}

#[wasm_bindgen_test]
async fn a_server_speaking_the_clients_protocol_version_runs_the_app() {
    let backend = Rc::new(Scripted::default());
    let root = mount_page(backend.clone());
    until("the app header", || {
        root.query_selector("h1")
            .unwrap()
            .is_some_and(|h| h.text_content().unwrap_or_default() == "Cart")
    })
    .await;
    until("a session", || *backend.sessions.borrow() == 1).await;
    assert_eq!(root.query_selector_all(".component").unwrap().length(), 3);
    assert!(
        alert_text(&root).is_none(),
        "no notice: {:?}",
        alert_text(&root)
    );
}

#[wasm_bindgen_test]
async fn a_config_that_no_longer_decodes_gets_the_same_notice() {
    // A newer server whose component kinds changed shape.
    let mut newer = serde_json::to_value(cart_config()).unwrap();
    newer["protocol_version"] = json!(PROTOCOL_VERSION + 1);
    newer["components"][2]["kind"] = json!({"type": "number", "minimum": null});
    let answer = decode::<AppConfig>(&newer.to_string());
    assert_eq!(answer, Err(ClientError::Outdated(PROTOCOL_VERSION + 1)));
    // The same answer claiming this page's version is a plain decode error, as is an
    // answer that is no config at all.
    newer["protocol_version"] = json!(PROTOCOL_VERSION);
    assert!(matches!(
        decode::<AppConfig>(&newer.to_string()),
        Err(ClientError::Decode(_))
    ));
    assert!(matches!(
        decode::<AppConfig>("<html>Bad gateway</html>"),
        Err(ClientError::Decode(_))
    ));

    let backend = Rc::new(Scripted::default());
    *backend.config.borrow_mut() = Some(answer);
    let root = mount_page(backend.clone());
    until("the reload notice", || {
        alert_text(&root).is_some_and(|text| text.contains(OUTDATED))
    })
    .await;
    gloo_timers::future::TimeoutFuture::new(100).await;
    assert_eq!(*backend.sessions.borrow(), 0, "no session was started");
    assert!(
        root.query_selector("h1").unwrap().is_none(),
        "no app header"
    );
}

#[wasm_bindgen_test]
async fn markdown_shows_the_html_the_server_rendered() {
    const NOTE: ComponentId = ComponentId(0);
    let mut note = component(0, ComponentKind::Markdown, "Note", json!("**Hi** <b>"));
    note.props.html = Some("<p><strong>Hi</strong> &lt;b&gt;</p>".into());
    let config = AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("note".into()),
        title: "Note".into(),
        description: String::new(),
        components: vec![note],
        layout: vec![LayoutNode::Component { id: NOTE }],
        listeners: vec![],
    };
    let (root, controller) = mount_app(
        config,
        Rc::new(Scripted::default()),
        Box::new(MemoryStore::new()),
    );
    let prose = root.query_selector(".prose").unwrap().unwrap();
    // Leptos marks where the (empty) children would go with a comment.
    let shown = || prose.inner_html().replace("<!---->", "");
    for _ in 0..50 {
        if !shown().is_empty() {
            break;
        }
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
    assert_eq!(shown(), "<p><strong>Hi</strong> &lt;b&gt;</p>");
    controller.apply_update(
        ComponentUpdate {
            component: NOTE,
            value: Some(json!("*new*")),
            html: Some("<p><em>new</em></p>".into()),
            edits: Vec::new(),
            items: Vec::new(),
            props: PropsUpdate::default(),
        },
        0,
    );
    until("the new HTML", || {
        prose.inner_html() == "<p><em>new</em></p>"
    })
    .await;
    assert_eq!(
        controller.value_signal(NOTE).unwrap().get_untracked(),
        json!("*new*")
    );
}
