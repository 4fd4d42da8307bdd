//! Slider, Radio, Html and Timer: what the server accepts from a client, what it
//! sends to a page, and what `build` and `Server::new` refuse.
//!
//! A slider's bounds and a radio's choices are enforced on every input (a refused
//! value runs nothing and writes nothing); Html reaches pages only sanitised (the
//! config's props and every event's updates); a timer's tick listener is wired in
//! the config as a `tick` trigger on the timer and runs on the server like any other.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::components::{Button, Html, Number, Radio, Slider, Textbox, Timer};
use keepsake::protocol::config::{ComponentKind, EventKind, LayoutNode, Trigger};
use keepsake::protocol::error::ErrorKind;
use keepsake::{Blocks, Server, Settings, State, Update};
use serde_json::{Value, json};
use support::{TestServer, assert_error, component, fast_settings, listener_named, value_of};

/// An order form: a slider and a radio group feed a handler that counts its runs in
/// a session state, which `count` reads back.
fn order_app() -> keepsake::App {
    let mut app = Blocks::new("order", "Order");
    let quantity = app.add(Slider::new(1.0, 10.0).value(2.0).label("Quantity"));
    let size = app.add(Radio::new(["Small", "Large"]).label("Size"));
    let runs = app.state(State::new(0u32));
    let summary = app.add(Textbox::new().label("Summary"));
    let order = app.add(Button::new("Order"));
    app.click(
        order,
        (quantity, size, runs),
        (summary, runs),
        |quantity: f64, size: Option<String>, runs: u32| {
            let size = size.unwrap_or_else(|| "no size".to_owned());
            (format!("{quantity} x {size}"), runs + 1)
        },
    )
    .api_name("order");
    let runs_shown = app.add(Number::new().label("Runs"));
    let count = app.add(Button::new("Count"));
    app.click(count, runs, runs_shown, |runs: u32| f64::from(runs))
        .api_name("count");
    app.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slider_and_radio_values_are_checked_before_anything_runs() {
    let server = TestServer::start(fast_settings(), vec![order_app()]).await;
    let config = server.config("order").await;
    let (order, count) = (
        listener_named(&config, "order"),
        listener_named(&config, "count"),
    );
    let summary = component(&config, "Summary");
    let runs = component(&config, "Runs");
    let session = server.start_session("order").await;

    let quantity = component(&config, "Quantity");
    assert_eq!(
        config.components[quantity.0 as usize].kind,
        ComponentKind::Slider {
            minimum: 1.0,
            maximum: 10.0,
            step: 1.0
        }
    );
    assert_eq!(
        config.components[quantity.0 as usize].props.value,
        json!(2.0)
    );

    // Good values reach the handler, bounds included, and a radio may be unpicked.
    for (inputs, said) in [
        (vec![json!(7.5), json!("Large"), Value::Null], "7.5 x Large"),
        (vec![json!(1), json!("Small"), Value::Null], "1 x Small"),
        (vec![json!(10), Value::Null, Value::Null], "10 x no size"),
    ] {
        let result = server
            .event("order", &session, order, inputs)
            .await
            .unwrap();
        assert_eq!(value_of(&result, summary), Some(json!(said)));
    }

    // Out of range, not a number, not a choice: refused, naming the input.
    for (inputs, problem) in [
        (vec![json!(10.5), json!("Small"), Value::Null], "outside"),
        (vec![json!(0.99), json!("Small"), Value::Null], "outside"),
        (vec![json!("5"), json!("Small"), Value::Null], "number"),
        (
            vec![json!(5), json!("Medium"), Value::Null],
            "not one of the choices",
        ),
        (
            vec![json!(5), json!(["Small"]), Value::Null],
            "string choice",
        ),
    ] {
        let body = assert_error(
            server.event("order", &session, order, inputs.clone()).await,
            400,
            ErrorKind::InvalidInput,
        );
        assert!(
            body.message.contains(problem),
            "{inputs:?}: {}",
            body.message
        );
    }

    // Nothing refused ran: the handler's state counts the three good runs only.
    let result = server
        .event("order", &session, count, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(value_of(&result, runs), Some(json!(3.0)));
    server.stop().await;
}

#[test]
fn sliders_radios_and_timers_are_checked_when_built() {
    let refused = |add: &dyn Fn(&mut Blocks)| {
        let mut app = Blocks::new("bad", "Bad");
        add(&mut app);
        app.build().err().map(|e| e.to_string())
    };
    for (what, add) in [
        (
            "bounds reversed",
            Box::new(|app: &mut Blocks| {
                app.add(Slider::new(5.0, 1.0));
            }) as Box<dyn Fn(&mut Blocks)>,
        ),
        (
            "equal bounds",
            Box::new(|app: &mut Blocks| {
                app.add(Slider::new(1.0, 1.0));
            }),
        ),
        (
            "infinite bound",
            Box::new(|app: &mut Blocks| {
                app.add(Slider::new(0.0, f64::INFINITY));
            }),
        ),
        (
            "zero step",
            Box::new(|app: &mut Blocks| {
                app.add(Slider::new(0.0, 1.0).step(0.0));
            }),
        ),
        (
            "value out of range",
            Box::new(|app: &mut Blocks| {
                app.add(Slider::new(0.0, 1.0).value(2.0));
            }),
        ),
        (
            "radio value not a choice",
            Box::new(|app: &mut Blocks| {
                app.add(Radio::new(["a", "b"]).value("c"));
            }),
        ),
        (
            "timer of 0 s",
            Box::new(|app: &mut Blocks| {
                app.add(Timer::new(0.0));
            }),
        ),
        (
            "timer below the floor",
            Box::new(|app: &mut Blocks| {
                app.add(Timer::new(0.01));
            }),
        ),
        (
            "timer of NaN s",
            Box::new(|app: &mut Blocks| {
                app.add(Timer::new(f64::NAN));
            }),
        ),
    ] {
        let error = refused(&*add).unwrap_or_else(|| panic!("{what}: built"));
        assert!(error.contains("component 0"), "{what}: {error}");
    }
    // The ones that are fine.
    assert_eq!(
        refused(&|app| {
            app.add(Slider::new(-1.0, 1.0).step(0.25).value(1.0));
            app.add(Radio::new(["a", "b"]).value("b"));
            app.add(Timer::new(
                keepsake::protocol::config::MIN_TIMER_INTERVAL_SECS,
            ));
        }),
        None
    );
}

#[tokio::test]
async fn html_reaches_pages_only_sanitised() {
    let attack = "<p onclick=\"steal()\">Hi</p><script>alert(1)</script>\
                  <img src=x onerror=alert(2)><a href=\"javascript:alert(3)\">link</a>\
                  <a href=\"https://example.com\">ok</a>";
    let mut app = Blocks::new("page", "Page");
    let source = app.add(Textbox::new().label("Source"));
    let shown = app.add(Html::new(attack).label("Shown"));
    let go = app.add(Button::new("Go"));
    app.click(go, source, shown, |source: String| source)
        .api_name("go");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("page").await;
    let shown = component(&config, "Shown");
    let clean = "<p>Hi</p><img src=\"x\"><a rel=\"noopener noreferrer\">link</a>\
                 <a href=\"https://example.com\" rel=\"noopener noreferrer\">ok</a>";

    // The initial value: the source as given, the HTML cleaned.
    let props = &config.components[shown.0 as usize].props;
    assert_eq!(
        config.components[shown.0 as usize].kind,
        ComponentKind::Html
    );
    assert_eq!(props.value, json!(attack));
    assert_eq!(props.html.as_deref(), Some(clean));

    // An output: the same.
    let session = server.start_session("page").await;
    let result = server
        .event(
            "page",
            &session,
            listener_named(&config, "go"),
            vec![json!(attack)],
        )
        .await
        .unwrap();
    let update = result
        .updates
        .iter()
        .find(|u| u.component == shown)
        .unwrap();
    assert_eq!(update.value, Some(json!(attack)));
    assert_eq!(update.html.as_deref(), Some(clean));
    for gone in ["script", "onerror", "onclick", "javascript:", "alert"] {
        assert!(!clean.contains(gone));
    }

    // Styles, frames, forms and ids cannot restyle or impersonate the page.
    let sanitise = keepsake::components::sanitise_html;
    assert_eq!(
        sanitise("<div style=\"position:fixed\" class=\"banner\" id=\"ks-c0\">x</div>"),
        "<div>x</div>"
    );
    assert_eq!(
        sanitise("<style>*{display:none}</style><iframe src=\"/\"></iframe>"),
        ""
    );
    assert_eq!(
        sanitise("<form action=\"/x\"><input name=\"p\"><button>Go</button></form>"),
        "Go"
    );
    assert_eq!(sanitise("<img src=\"data:image/png;base64,AA\">"), "<img>");
    server.stop().await;
}

fn clock_app() -> keepsake::App {
    let mut app = Blocks::new("clock", "Clock");
    let timer = app.add(Timer::new(0.25).label("Clock"));
    let idle = app.add(Timer::new(0.5).active(false).label("Idle"));
    let ticks = app.state(State::new(0u64));
    let shown = app.add(Number::new().label("Ticks"));
    app.tick(timer, ticks, (ticks, shown), |n: u64| {
        (n + 1, (n + 1) as f64)
    })
    .api_name("tick");
    let stop = app.add(Button::new("Stop"));
    app.click(stop, (), (timer, idle), || {
        (
            Update::unchanged().active(false),
            Update::value(1.5).active(true),
        )
    })
    .api_name("stop");
    app.build().unwrap()
}

#[tokio::test]
async fn a_timer_is_wired_as_a_tick_trigger_and_outputs_switch_it() {
    let server = TestServer::start(fast_settings(), vec![clock_app()]).await;
    let config = server.config("clock").await;
    let timer = component(&config, "Clock");
    let idle = component(&config, "Idle");

    // The timer: its kind with its flag, its interval as the value, and no place in
    // the layout (it is not drawn).
    let declared = &config.components[timer.0 as usize];
    assert_eq!(declared.kind, ComponentKind::Timer { active: true });
    assert_eq!(declared.props.value, json!(0.25));
    assert_eq!(
        config.components[idle.0 as usize].kind,
        ComponentKind::Timer { active: false }
    );
    let placed = |id| {
        fn walk(nodes: &[LayoutNode], id: keepsake::protocol::ComponentId) -> bool {
            nodes.iter().any(|node| match node {
                LayoutNode::Component { id: placed } => *placed == id,
                LayoutNode::Render(region) => walk(&region.layout, id),
                container => walk(container.children(), id),
            })
        }
        walk(&config.layout, id)
    };
    assert!(!placed(timer) && !placed(idle));
    assert!(placed(component(&config, "Ticks")));

    // The listener: a `tick` trigger on the timer, on the wire as "tick".
    let tick = listener_named(&config, "tick");
    let listener = config.listener(tick).unwrap();
    assert_eq!(
        listener.triggers,
        vec![Trigger {
            component: Some(timer),
            event: EventKind::Tick
        }]
    );
    assert_eq!(
        serde_json::to_value(listener.triggers[0]).unwrap(),
        json!({ "component": timer.0, "event": "tick" })
    );
    assert_eq!(config.listeners(Some(timer), EventKind::Tick).count(), 1);
    let endpoint = config.endpoint("tick").unwrap();
    assert_eq!(endpoint.listener, tick);

    // Ticks run on the server, each on the session's state.
    let session = server.start_session("clock").await;
    let shown = component(&config, "Ticks");
    for n in 1..=3 {
        let result = server
            .event("clock", &session, tick, vec![Value::Null])
            .await
            .unwrap();
        assert_eq!(value_of(&result, shown), Some(json!(f64::from(n))));
    }

    // An output stops one timer and starts the other at a new interval.
    let result = server
        .event("clock", &session, listener_named(&config, "stop"), vec![])
        .await
        .unwrap();
    let update = |id| result.updates.iter().find(|u| u.component == id).unwrap();
    assert_eq!(update(timer).value, None);
    assert_eq!(update(timer).props.active, Some(false));
    assert_eq!(update(idle).value, Some(json!(1.5)));
    assert_eq!(update(idle).props.active, Some(true));
    assert_eq!(
        serde_json::to_value(&update(timer).props).unwrap(),
        json!({ "active": false })
    );
    server.stop().await;
}

#[tokio::test]
async fn timers_that_would_use_up_the_event_limit_do_not_mount() {
    let settings = |limit| Settings {
        max_events_per_second: limit,
        ..fast_settings()
    };
    // 0.25 s: four ticks a second, more than half of a limit of 6.
    let error = Server::new(settings(6), [clock_app()])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("clock") && error.contains("--max-events-per-second"),
        "{error}"
    );
    // Half of 8 is four: it fits.
    assert!(Server::new(settings(8), [clock_app()]).is_ok());

    // Two timers add up; one without a tick listener sends nothing and does not.
    let two = |listened: bool| {
        let mut app = Blocks::new("two", "Two");
        let count = app.state(State::new(0u32));
        let first = app.add(Timer::new(0.5));
        let second = app.add(Timer::new(0.5));
        app.tick(first, count, count, |n: u32| n + 1);
        if listened {
            app.tick(second, count, count, |n: u32| n + 1);
        }
        app.build().unwrap()
    };
    assert!(Server::new(settings(6), [two(true)]).is_err());
    assert!(Server::new(settings(6), [two(false)]).is_ok());
}
