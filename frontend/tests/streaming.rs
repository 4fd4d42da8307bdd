//! A streaming listener's answer in the page: partial updates show as they come and
//! run no change listener; the final result is applied as any event's (its change
//! listeners run once); a failed stream puts back what the page showed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use keepsake_frontend::browser_state::MemoryStore;
use keepsake_frontend::controller::Controller;
use keepsake_shared::config::{
    AppConfig, ButtonVariant, ComponentKind, EventKind, LayoutNode, ListenerConfig, Trigger,
};
use keepsake_shared::error::{ErrorBody, ErrorKind};
use keepsake_shared::event::{ComponentUpdate, EventResult, PartialUpdate, PropsUpdate};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use leptos::prelude::GetUntracked as _;
use serde_json::{Value, json};
use support::{Scripted, component, mount_app, until};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const REPLY: ComponentId = ComponentId(0);
const GO: ComponentId = ComponentId(1);
const ECHO: ComponentId = ComponentId(2);
const STOP: ComponentId = ComponentId(3);
const COUNT: ComponentId = ComponentId(4);

/// "Go" streams into "Reply"; the page runs "Reply"'s change listener into "Echo".
fn config() -> AppConfig {
    let textbox = ComponentKind::Textbox {
        input_type: keepsake_shared::config::TextboxType::Text,
        lines: 1,
        placeholder: None,
    };
    let listener = |id, trigger, event, inputs, outputs, streams| ListenerConfig {
        id: ListenerId(id),
        triggers: vec![Trigger {
            component: Some(trigger),
            event,
        }],
        inputs,
        outputs,
        api_name: None,
        description: None,
        after: None,
        streams,
        cancels: Vec::new(),
        concurrent: false,
    };
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("stream".into()),
        title: "Stream".into(),
        description: "test".into(),
        components: vec![
            component(0, textbox.clone(), "Reply", json!("")),
            component(
                1,
                ComponentKind::Button {
                    variant: ButtonVariant::Primary,
                },
                "Go",
                json!("Go"),
            ),
            component(2, textbox, "Echo", json!("")),
            component(
                3,
                ComponentKind::Button {
                    variant: ButtonVariant::Secondary,
                },
                "Stop",
                json!("Stop"),
            ),
            component(
                4,
                ComponentKind::Button {
                    variant: ButtonVariant::Secondary,
                },
                "Count",
                json!("Count"),
            ),
        ],
        layout: vec![
            LayoutNode::Component { id: REPLY },
            LayoutNode::Component { id: GO },
            LayoutNode::Component { id: ECHO },
            LayoutNode::Component { id: STOP },
            LayoutNode::Component { id: COUNT },
        ],
        listeners: vec![
            listener(0, GO, EventKind::Click, vec![], vec![REPLY], true),
            listener(1, REPLY, EventKind::Change, vec![REPLY], vec![ECHO], false),
            ListenerConfig {
                cancels: vec![ListenerId(0)],
                ..listener(2, STOP, EventKind::Click, vec![], vec![], false)
            },
            ListenerConfig {
                concurrent: true,
                ..listener(3, COUNT, EventKind::Click, vec![], vec![ECHO], false)
            },
        ],
    }
}

fn reply(text: &str) -> Vec<ComponentUpdate> {
    vec![ComponentUpdate {
        component: REPLY,
        value: Some(json!(text)),
        html: None,
        edits: Vec::new(),
        items: Vec::new(),
        props: PropsUpdate::default(),
    }]
}

/// "Reply" as a streamed answer sends it after its first value: the edits from the
/// value sent before (or nothing: the last partial's value is final).
fn appended(text: &str) -> Vec<ComponentUpdate> {
    use keepsake_shared::diff::{Action, Edit};
    vec![ComponentUpdate {
        component: REPLY,
        value: None,
        html: None,
        edits: if text.is_empty() {
            Vec::new()
        } else {
            vec![Edit(Action::Append, Vec::new(), json!(text))]
        },
        items: Vec::new(),
        props: PropsUpdate::default(),
    }]
}

fn shown(controller: &Controller) -> Value {
    controller.value_signal(REPLY).unwrap().get_untracked()
}

/// A backend that streams `partials` (each one partial's updates) to the first
/// streamed event, then answers `result` (by listener 0).
fn streaming(partials: Vec<Vec<ComponentUpdate>>, result: Vec<ComponentUpdate>) -> Rc<Scripted> {
    let backend = Rc::new(Scripted::default());
    backend.partials.borrow_mut().extend(
        partials
            .into_iter()
            .map(|updates| PartialUpdate { updates }),
    );
    backend.answers.borrow_mut().push_back(Ok(EventResult {
        updates: result,
        ran: vec![ListenerId(0)],
        ..EventResult::default()
    }));
    backend
}

/// The five partials of a reply growing word by word, "a" to "a b c d e".
fn five_words() -> Vec<Vec<ComponentUpdate>> {
    ["a", "a b", "a b c", "a b c d", "a b c d e"]
        .map(reply)
        .into()
}

async fn settle() {
    gloo_timers::future::TimeoutFuture::new(200).await;
}

#[wasm_bindgen_test]
async fn partials_show_without_change_listeners_then_the_result_applies_once() {
    // As a server sends it: the last item is a partial too, then the result.
    let backend = streaming(
        vec![reply("a"), reply("a b"), reply("a b c")],
        reply("a b c"),
    );
    let (_root, controller) = mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    controller.click(GO);
    until("a partial reply", || shown(&controller) == json!("a b")).await;
    assert_eq!(
        backend.sent.borrow().len(),
        1,
        "a partial runs no change listener"
    );
    until("the final reply", || shown(&controller) == json!("a b c")).await;
    // The result comes after the last partial, equal to it: its change listener
    // still runs, as it would for the same answer without partials.
    until("the result", || backend.sent.borrow().len() == 2).await;
    settle().await;
    let sent = backend.sent.borrow();
    assert_eq!(
        *backend.streamed.borrow(),
        1,
        "only the streaming listener streams"
    );
    assert_eq!(sent.len(), 2, "the change listener ran once: {sent:?}");
    assert_eq!(sent[1].1.listener, ListenerId(1));
    assert_eq!(sent[1].1.inputs, vec![json!("a b c")]);
}

#[wasm_bindgen_test]
async fn changes_are_applied_to_what_the_page_shows_and_the_result_to_the_last_partial() {
    // The result equals the last partial: it names the output, with no change.
    let backend = streaming(
        vec![appended("a"), appended(" b"), appended(" c")],
        appended(""),
    );
    let (_root, controller) = mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    controller.click(GO);
    until("a partial reply", || shown(&controller) == json!("a b")).await;
    until("the result", || backend.sent.borrow().len() == 2).await;
    settle().await;
    assert_eq!(shown(&controller), json!("a b c"));
    let sent = backend.sent.borrow();
    // The page named what it showed (an empty reply), so the first partial could be
    // a change too.
    let request = &sent[0].1;
    assert_eq!(request.shown.len(), 1, "{request:?}");
    assert_eq!(request.shown[0].component, REPLY);
    assert_eq!(request.shown[0].len, 0);
    assert_eq!(sent[1].1.listener, ListenerId(1));
    assert_eq!(sent[1].1.inputs, vec![json!("a b c")]);
}

#[wasm_bindgen_test]
async fn a_stop_is_sent_at_once_not_after_the_stream_it_stops() {
    let backend = streaming(five_words(), reply("a b c d e"));
    let (_root, controller) = mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    controller.click(GO);
    until("a partial reply", || shown(&controller) == json!("a")).await;
    // Queued behind the stream, another Go is dropped by the Stop; the Stop itself
    // goes while the stream is still coming in.
    controller.click(GO);
    controller.click(STOP);
    until("the stop", || backend.sent.borrow().len() == 2).await;
    assert_ne!(
        shown(&controller),
        json!("a b c d e"),
        "the stop waited for the stream"
    );
    assert_eq!(backend.sent.borrow()[1].1.listener, ListenerId(2));
    until("the result", || shown(&controller) == json!("a b c d e")).await;
    settle().await;
    let sent = backend.sent.borrow();
    assert!(
        sent.iter()
            .filter(|(_, r)| r.listener == ListenerId(0))
            .count()
            == 1,
        "the queued Go was sent: {sent:?}"
    );
}

#[wasm_bindgen_test]
async fn a_listener_touching_no_session_value_is_not_held_behind_a_stream() {
    let backend = streaming(five_words(), reply("a b c d e"));
    let (_root, controller) = mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    controller.click(GO);
    until("a partial reply", || shown(&controller) == json!("a")).await;
    controller.click(COUNT);
    until("the count", || backend.sent.borrow().len() == 2).await;
    assert_ne!(
        shown(&controller),
        json!("a b c d e"),
        "the count waited for the stream"
    );
    assert_eq!(backend.sent.borrow()[1].1.listener, ListenerId(3));
    until("the result", || shown(&controller) == json!("a b c d e")).await;
}

/// What the page names of a transcript is what the server computes of it (the
/// same figure as `keepsake_shared::diff`'s native test): otherwise every first
/// partial would carry the whole conversation again.
#[wasm_bindgen_test]
fn the_digest_a_page_names_is_the_servers() {
    let transcript = r#"[{"content":"**hi** \u201cthere\u201d","role":"user"},{"content":"Hello, 1.5 é","role":"assistant"}]"#;
    let shown: Value = serde_json::from_str(transcript).unwrap();
    let named = keepsake_shared::diff::Shown::of(REPLY, &shown);
    assert_eq!(named.digest, "bd5a440d276e15df");
    assert_eq!(named.base_in(&shown), Some(shown));
}

#[wasm_bindgen_test]
async fn a_failed_stream_puts_back_what_the_page_showed() {
    let backend = Rc::new(Scripted::default());
    backend.partials.borrow_mut().push_back(PartialUpdate {
        updates: reply("half"),
    });
    backend
        .answers
        .borrow_mut()
        .push_back(Err(keepsake_frontend::api::ClientError::Server(
            ErrorBody {
                error: ErrorKind::HandlerError,
                message: "the stream broke".into(),
            },
        )));
    let (_root, controller) = mount_app(config(), backend.clone(), Box::new(MemoryStore::new()));
    controller.click(GO);
    until("the partial reply", || shown(&controller) == json!("half")).await;
    until("the reply put back", || shown(&controller) == json!("")).await;
    settle().await;
    assert_eq!(
        backend.sent.borrow().len(),
        1,
        "nothing changed: no change listener"
    );
    assert_eq!(
        controller.status.error.get_untracked().as_deref(),
        Some("the stream broke")
    );
}
