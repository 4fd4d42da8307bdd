//! Browser state in a running page: it sends the sealed string it holds as the
//! input of a listener that reads the slot, in `held` for one that only writes it,
//! stores what the server answers, removes the entry on a removal, and runs the
//! slot's change listeners only when the server says the value changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use keepsake_frontend::browser_state::{MemoryStore, decode_entry, encode_entry, storage_key};
use keepsake_shared::config::{
    AppConfig, BrowserStateConfig, ButtonVariant, ComponentConfig, ComponentKind, ComponentProps,
    EventKind, LayoutNode, ListenerConfig, Trigger,
};
use keepsake_shared::event::{BrowserStateWrite, EventResult, SealedValue};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use serde_json::{Value, json};
use support::{Scripted, component, mount_app, until};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SLOT: ComponentId = ComponentId(0);
const SHOWN: ComponentId = ComponentId(1);
const SAVE: ComponentId = ComponentId(2);
const RESEAL: ComponentId = ComponentId(3);
/// Save reads and writes the browser state.
const SAVE_LISTENER: ListenerId = ListenerId(0);
/// Reseal writes it without reading it.
const RESEAL_LISTENER: ListenerId = ListenerId(1);
/// The browser state's change listener.
const ON_CHANGE: ListenerId = ListenerId(2);

/// A browser state, a JSON view, and three listeners around them.
fn login_config() -> AppConfig {
    let listener = |id, trigger: ComponentId, event, inputs, outputs| ListenerConfig {
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
        streams: false,
        cancels: Vec::new(),
        concurrent: false,
    };
    let button = |id, label| {
        component(
            id,
            ComponentKind::Button {
                variant: ButtonVariant::Secondary,
            },
            label,
            json!(label),
        )
    };
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("login".into()),
        title: "Login".into(),
        description: String::new(),
        components: vec![
            ComponentConfig {
                id: SLOT,
                kind: ComponentKind::BrowserState(BrowserStateConfig {
                    storage_key: "creds".into(),
                }),
                props: ComponentProps::default(),
            },
            component(1, ComponentKind::Json, "Shown", json!({"user": "x"})),
            button(2, "Save"),
            button(3, "Reseal"),
        ],
        layout: vec![LayoutNode::Component { id: SHOWN }],
        listeners: vec![
            listener(0, SAVE, EventKind::Click, vec![SLOT], vec![SLOT]),
            listener(1, RESEAL, EventKind::Click, vec![SHOWN], vec![SLOT]),
            listener(2, SLOT, EventKind::Change, vec![SLOT], vec![SHOWN]),
        ],
    }
}

fn writes(sealed: Option<&str>, changed: bool) -> EventResult {
    EventResult {
        browser_state: vec![BrowserStateWrite {
            component: SLOT,
            sealed: sealed.map(str::to_owned),
            changed,
        }],
        ..EventResult::default()
    }
}

#[wasm_bindgen_test]
async fn browser_state_is_sent_sealed_and_stored_as_the_server_answers() {
    let backend = Rc::new(Scripted::default());
    let store = Rc::new(MemoryStore::new());
    let key = storage_key(&AppId("login".into()), "creds");
    store.put_raw(&key, &encode_entry("sealed-A"));
    let (_root, controller) = mount_app(login_config(), backend.clone(), Box::new(store.clone()));
    let sent = |i: usize| backend.sent.borrow()[i].1.clone();
    let stored = || store.raw(&key).map(|raw| decode_entry(&raw));

    // A listener that reads the slot gets the held string as its input; the answer's
    // changed value is stored and runs the slot's change listener, which reads it.
    backend
        .answers
        .borrow_mut()
        .push_back(Ok(writes(Some("sealed-B"), true)));
    controller.click(SAVE);
    until("the change listener", || backend.sent.borrow().len() == 2).await;
    assert_eq!(sent(0).listener, SAVE_LISTENER);
    assert_eq!(sent(0).inputs, vec![json!("sealed-A")]);
    assert!(sent(0).held.is_empty(), "an input slot is not also held");
    assert_eq!(stored().as_deref(), Some("sealed-B"));
    assert_eq!(sent(1).listener, ON_CHANGE);
    assert_eq!(sent(1).inputs, vec![json!("sealed-B")]);

    // A listener that only writes the slot sends the held string in `held`. A write
    // that did not change the value (re-sealed) is stored without running listeners.
    backend
        .answers
        .borrow_mut()
        .push_back(Ok(writes(Some("sealed-C"), false)));
    controller.click(RESEAL);
    until("the re-sealed string", || {
        stored().as_deref() == Some("sealed-C")
    })
    .await;
    assert_eq!(sent(2).listener, RESEAL_LISTENER);
    assert_eq!(sent(2).inputs, vec![json!({"user": "x"})]);
    assert_eq!(
        sent(2).held,
        vec![SealedValue {
            component: SLOT,
            sealed: "sealed-B".into()
        }]
    );

    // A removal clears the entry; the page then holds nothing and sends null.
    backend
        .answers
        .borrow_mut()
        .push_back(Ok(writes(None, false)));
    controller.click(RESEAL);
    until("the removal", || stored().is_none()).await;
    assert_eq!(sent(3).held.len(), 1);
    assert_eq!(sent(3).held[0].sealed, "sealed-C");
    assert_eq!(controller.browser_states().held(SLOT), None);
    controller.click(RESEAL);
    controller.click(SAVE);
    until("two more events", || backend.sent.borrow().len() == 6).await;
    gloo_timers::future::TimeoutFuture::new(200).await;
    assert!(sent(4).held.is_empty(), "nothing held, nothing sent");
    assert_eq!(sent(5).inputs, vec![Value::Null]);
    let change_runs = backend
        .sent
        .borrow()
        .iter()
        .filter(|(_, request)| request.listener == ON_CHANGE)
        .count();
    assert_eq!(
        change_runs, 1,
        "change listeners run only for changed values"
    );
}
