//! A timer in the page: not drawn, it sends its tick listener's event every interval
//! while active, never a second one while the first is on its way, shows no
//! "Running…" for it, and stops when an output turns it off.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use keepsake_frontend::browser_state::MemoryStore;
use keepsake_shared::config::{
    AppConfig, ComponentKind, EventKind, LayoutNode, ListenerConfig, Trigger,
};
use keepsake_shared::event::{ComponentUpdate, PropsUpdate};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use serde_json::json;
use support::{Scripted, component, mount_app};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TIMER: ComponentId = ComponentId(0);
const TICKS: ComponentId = ComponentId(1);

/// A timer every 50 ms whose tick listener writes a number.
fn clock_config() -> AppConfig {
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId("clock".into()),
        title: "Clock".into(),
        description: String::new(),
        components: vec![
            component(
                0,
                ComponentKind::Timer { active: true },
                "Clock",
                json!(0.05),
            ),
            component(
                1,
                ComponentKind::Number {
                    minimum: None,
                    maximum: None,
                    step: None,
                },
                "Ticks",
                json!(0),
            ),
        ],
        layout: vec![LayoutNode::Component { id: TICKS }],
        listeners: vec![ListenerConfig {
            id: ListenerId(0),
            triggers: vec![Trigger {
                component: Some(TIMER),
                event: EventKind::Tick,
            }],
            inputs: vec![],
            outputs: vec![TICKS],
            api_name: None,
            description: None,
            after: None,
            streams: false,
            cancels: Vec::new(),
            concurrent: false,
        }],
    }
}

#[wasm_bindgen_test]
async fn ticks_never_pile_up_run_quietly_and_stop_when_turned_off() {
    let backend = Rc::new(Scripted::default());
    // Each tick takes about 330 ms to answer: six intervals.
    backend.extra_delay_ms.set(300);
    let (root, controller) = mount_app(
        clock_config(),
        backend.clone(),
        Box::new(MemoryStore::new()),
    );
    // Only the number is drawn.
    assert_eq!(root.query_selector_all(".component").unwrap().length(), 1);

    for _ in 0..50 {
        TimeoutFuture::new(20).await;
        assert!(
            !root.text_content().unwrap_or_default().contains("Running"),
            "a tick shows no running indicator"
        );
    }
    // One second: twenty intervals, but at most one tick on its way at a time.
    let sent = backend.sent.borrow().len();
    assert!((2..=4).contains(&sent), "{sent} ticks sent in one second");
    assert!(
        backend
            .sent
            .borrow()
            .iter()
            .all(|(_, r)| r.listener == ListenerId(0))
    );

    // An output turns the timer off: after the tick on its way, nothing more.
    controller.apply_update(
        ComponentUpdate {
            component: TIMER,
            value: None,
            html: None,
            edits: Vec::new(),
            items: Vec::new(),
            props: PropsUpdate {
                active: Some(false),
                ..PropsUpdate::default()
            },
        },
        0,
    );
    TimeoutFuture::new(400).await;
    let stopped = backend.sent.borrow().len();
    // Nothing was waiting in the queue behind the tick on its way.
    assert!(
        stopped <= sent + 1,
        "ticks piled up: {stopped} sent, {sent} a moment ago"
    );
    TimeoutFuture::new(500).await;
    assert_eq!(backend.sent.borrow().len(), stopped, "no tick once stopped");

    // Turned on again, at a new interval, it ticks again.
    controller.apply_update(
        ComponentUpdate {
            component: TIMER,
            value: Some(json!(0.1)),
            html: None,
            edits: Vec::new(),
            items: Vec::new(),
            props: PropsUpdate {
                active: Some(true),
                ..PropsUpdate::default()
            },
        },
        0,
    );
    backend.extra_delay_ms.set(0);
    TimeoutFuture::new(500).await;
    assert!(backend.sent.borrow().len() >= stopped + 2, "ticking again");
}

#[wasm_bindgen_test]
async fn a_tick_failing_again_leaves_its_error_banner_as_it_is() {
    use keepsake_frontend::api::ClientError;
    use keepsake_shared::error::{ErrorBody, ErrorKind};

    let backend = Rc::new(Scripted::default());
    for _ in 0..40 {
        backend
            .answers
            .borrow_mut()
            .push_back(Err(ClientError::Server(ErrorBody {
                error: ErrorKind::HandlerError,
                message: "the sensor is offline".into(),
            })));
    }
    let (root, _controller) = mount_app(
        clock_config(),
        backend.clone(),
        Box::new(MemoryStore::new()),
    );
    let banner = || root.query_selector("[role=alert] .banner.error").unwrap();
    support::until("the error banner", || banner().is_some()).await;
    // The same banner stays: re-rendering it at every tick would make a screen
    // reader announce the alert again, and take the focus off its button.
    banner().unwrap().set_attribute("data-seen", "").unwrap();
    let failed = backend.sent.borrow().len();
    TimeoutFuture::new(500).await;
    assert!(
        backend.sent.borrow().len() >= failed + 3,
        "the ticks went on failing"
    );
    let shown = banner().unwrap();
    assert!(
        shown.has_attribute("data-seen"),
        "the banner was rendered again"
    );
    assert!(
        shown
            .text_content()
            .unwrap()
            .contains("the sensor is offline")
    );
}
