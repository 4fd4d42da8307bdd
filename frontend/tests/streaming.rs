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
        ],
        layout: vec![
            LayoutNode::Component { id: REPLY },
            LayoutNode::Component { id: GO },
            LayoutNode::Component { id: ECHO },
        ],
        listeners: vec![
            listener(0, GO, EventKind::Click, vec![], vec![REPLY], true),
            listener(1, REPLY, EventKind::Change, vec![REPLY], vec![ECHO], false),
        ],
    }
}

fn reply(text: &str) -> Vec<ComponentUpdate> {
    vec![ComponentUpdate {
        component: REPLY,
        value: Some(json!(text)),
        html: None,
        props: PropsUpdate::default(),
    }]
}

fn shown(controller: &Controller) -> Value {
    controller.value_signal(REPLY).unwrap().get_untracked()
}

async fn settle() {
    gloo_timers::future::TimeoutFuture::new(200).await;
}

#[wasm_bindgen_test]
async fn partials_show_without_change_listeners_then_the_result_applies_once() {
    let backend = Rc::new(Scripted::default());
    backend.partials.borrow_mut().extend([
        PartialUpdate {
            updates: reply("a"),
        },
        PartialUpdate {
            updates: reply("a b"),
        },
        // As a server sends it: the last item is a partial too, then the result.
        PartialUpdate {
            updates: reply("a b c"),
        },
    ]);
    backend.answers.borrow_mut().push_back(Ok(EventResult {
        updates: reply("a b c"),
        ran: vec![ListenerId(0)],
        ..EventResult::default()
    }));
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
                error: ErrorKind::HandlerFailed,
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
