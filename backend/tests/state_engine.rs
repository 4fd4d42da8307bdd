//! Integration tests of the state engine, against a real server on 127.0.0.1:0:
//! session, global and change semantics, expiry, eviction, ordering and unload.
// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keepsake::components::{Button, Number};
use keepsake::protocol::config::ComponentKind;
use keepsake::protocol::error::ErrorKind;
use keepsake::{Blocks, Global, State, demos};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn session_ids_are_issued_by_the_server_and_unique() {
    let server = TestServer::start(fast_settings(), vec![demos::shopping_cart().unwrap()]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let id = server.start_session("shopping-cart").await;
        assert_eq!(id.as_str().len(), 32);
        assert!(seen.insert(id), "a session id was issued twice");
    }
    // An id the server never issued is refused, whatever its form.
    let config = server.config("shopping-cart").await;
    let add = listener_named(&config, "add_items");
    let forged: keepsake::protocol::SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let outcome = server
        .event("shopping-cart", &forged, add, vec![json!([]), Value::Null])
        .await;
    let body = assert_error(outcome, 404, ErrorKind::UnknownSession);
    assert!(
        body.message.contains("start a new session"),
        "{}",
        body.message
    );
    let response = server
        .client
        .get(server.url("/api/apps/shopping-cart/sessions/not-an-id"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn sessions_are_isolated_and_change_listeners_run_on_the_server() {
    let server = TestServer::start(fast_settings(), vec![demos::shopping_cart().unwrap()]).await;
    let config = server.config("shopping-cart").await;
    let add = listener_named(&config, "add_items");
    let size = component(&config, "Cart Size");
    let (s1, s2) = (
        server.start_session("shopping-cart").await,
        server.start_session("shopping-cart").await,
    );

    let r = server
        .event(
            "shopping-cart",
            &s1,
            add,
            vec![json!(["Milk"]), Value::Null],
        )
        .await
        .unwrap();
    // The cart's `.change` listener ran in the same request and set the size.
    assert_eq!(r.ran.len(), 2, "click then cart.change: {:?}", r.ran);
    assert_eq!(value_of(&r, size), Some(json!(1.0)));
    let r = server
        .event(
            "shopping-cart",
            &s2,
            add,
            vec![json!(["Water", "Cereal"]), Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(value_of(&r, size), Some(json!(2.0)));
    let r = server
        .event(
            "shopping-cart",
            &s1,
            add,
            vec![json!(["Water"]), Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(
        value_of(&r, size),
        Some(json!(2.0)),
        "s1 sees only its own items"
    );
    server.stop().await;
}

#[tokio::test]
async fn session_values_never_leave_the_server() {
    let server = TestServer::start(fast_settings(), vec![demos::shopping_cart().unwrap()]).await;
    let config = server.config("shopping-cart").await;
    let state_ids: Vec<_> = config
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::State)
        .map(|c| c.id)
        .collect();
    assert_eq!(state_ids.len(), 1);
    for id in &state_ids {
        assert_eq!(config.components[id.0 as usize].props.value, Value::Null);
    }
    let add = listener_named(&config, "add_items");
    let size = component(&config, "Cart Size");
    let session = server.start_session("shopping-cart").await;
    // A value the client sends in the state's slot is ignored.
    let r = server
        .event(
            "shopping-cart",
            &session,
            add,
            vec![json!(["Milk"]), json!(["Injected", "Values"])],
        )
        .await
        .unwrap();
    assert_eq!(value_of(&r, size), Some(json!(1.0)));
    assert!(
        r.updates.iter().all(|u| !state_ids.contains(&u.component)),
        "{r:?}"
    );
    let text = serde_json::to_string(&r).unwrap();
    assert!(!text.contains("Milk"), "the cart's content leaked: {text}");
    server.stop().await;
}

/// An app with a list state and listeners that return it unchanged or appended.
fn change_probe() -> (keepsake::App, Arc<AtomicUsize>) {
    let fired = Arc::new(AtomicUsize::new(0));
    let mut app = Blocks::new("probe", "Probe");
    let list = app.state(State::new(vec![1, 2]));
    let same = app.add(Button::new("Same"));
    let append = app.add(Button::new("Append"));
    let equal_copy = app.add(Button::new("Equal copy"));
    let shown = app.add(Number::new().label("Length"));
    app.click(same, list, list, |list: Vec<i32>| list)
        .api_name("same");
    app.click(equal_copy, (), list, || vec![1, 2])
        .api_name("equal_copy");
    app.click(append, list, list, |mut list: Vec<i32>| {
        list.push(3);
        list
    })
    .api_name("append");
    let counter = fired.clone();
    app.change(list, list, shown, move |list: Vec<i32>| {
        counter.fetch_add(1, Ordering::SeqCst);
        list.len() as f64
    });
    (app.build().unwrap(), fired)
}

#[tokio::test]
async fn equal_values_fire_no_change_and_an_append_fires_one() {
    let (app, fired) = change_probe();
    let server = TestServer::start(fast_settings(), vec![app]).await;
    let config = server.config("probe").await;
    let session = server.start_session("probe").await;
    let length = component(&config, "Length");

    for name in ["same", "equal_copy"] {
        let r = server
            .event(
                "probe",
                &session,
                listener_named(&config, name),
                vec![Value::Null],
            )
            .await;
        let r = match r {
            Ok(r) => r,
            // `equal_copy` takes no inputs.
            Err(_) => server
                .event("probe", &session, listener_named(&config, name), vec![])
                .await
                .unwrap(),
        };
        assert_eq!(r.ran.len(), 1, "{name}: no change listener may run");
    }
    assert_eq!(fired.load(Ordering::SeqCst), 0);

    let r = server
        .event(
            "probe",
            &session,
            listener_named(&config, "append"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(r.ran.len(), 2);
    assert_eq!(value_of(&r, length), Some(json!(3.0)));
    assert_eq!(fired.load(Ordering::SeqCst), 1, "exactly one change");
    server.stop().await;
}

#[tokio::test]
async fn a_factory_default_is_called_once_per_session() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut app = Blocks::new("factory", "Factory");
    let state = app.state(State::with_factory(move || {
        counter.fetch_add(1, Ordering::SeqCst) as i64 * 100
    }));
    let button = app.add(Button::new("Read"));
    let out = app.add(Number::new().label("Out"));
    app.click(button, state, out, |v: i64| v as f64)
        .api_name("read");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("factory").await;
    let read = listener_named(&config, "read");
    let out = component(&config, "Out");
    let (s1, s2) = (
        server.start_session("factory").await,
        server.start_session("factory").await,
    );
    let first = server
        .event("factory", &s1, read, vec![Value::Null])
        .await
        .unwrap();
    let again = server
        .event("factory", &s1, read, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&first, out),
        value_of(&again, out),
        "one default per session"
    );
    let other = server
        .event("factory", &s2, read, vec![Value::Null])
        .await
        .unwrap();
    assert_ne!(value_of(&first, out), value_of(&other, out));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.stop().await;
}

/// Protects: a listener that writes a global holds it for its whole run, so
/// read-modify-write handlers never lose an update, even when the handler awaits
/// between receiving the value and returning value + 1 and events of 50 sessions run
/// truly in parallel (multi-threaded runtime). Without the lock, this loses hundreds
/// of the 1,000 increments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_of_a_global_lose_nothing() {
    let mut app = Blocks::new("counter", "Counter");
    let total = app.global(Global::new(0u64));
    let button = app.add(Button::new("Increment"));
    let read = app.add(Button::new("Read"));
    let shown = app.add(Number::new().label("Total"));
    app.click(button, total, total, |n: u64| async move {
        // Other events run meanwhile: only the global's lock keeps them from
        // reading the same value.
        tokio::time::sleep(Duration::from_millis(1)).await;
        n + 1
    })
    .api_name("increment");
    app.click(read, total, shown, |n: u64| n as f64)
        .api_name("read");
    let server = Arc::new(TestServer::start(fast_settings(), vec![app.build().unwrap()]).await);
    let config = server.config("counter").await;
    let increment = listener_named(&config, "increment");
    let mut sessions = Vec::new();
    for _ in 0..50 {
        sessions.push(server.start_session("counter").await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for session in sessions {
        let server = server.clone();
        tasks.spawn(async move {
            for _ in 0..20 {
                let r = server
                    .event("counter", &session, increment, vec![Value::Null])
                    .await
                    .unwrap();
                assert!(r.updates.is_empty(), "a global's value is never sent");
            }
        });
    }
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "1,000 increments did not finish within 60 s"
    );
    let session = server.start_session("counter").await;
    let r = server
        .event(
            "counter",
            &session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    let total = value_of(&r, component(&config, "Total")).and_then(|v| v.as_f64());
    assert_eq!(
        total,
        Some(1000.0),
        "lost updates: {} of 1000 increments",
        1000.0 - total.unwrap_or(0.0)
    );
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

#[tokio::test]
async fn one_sessions_events_run_one_at_a_time_and_sessions_run_in_parallel() {
    let running = Arc::new(Mutex::new(std::collections::HashMap::<i64, usize>::new()));
    let peak_per_session = Arc::new(AtomicUsize::new(0));
    let peak_overall = Arc::new(AtomicUsize::new(0));
    let (r, per, all) = (
        running.clone(),
        peak_per_session.clone(),
        peak_overall.clone(),
    );
    let mut app = Blocks::new("order", "Order");
    let who = app.state(State::new(0i64));
    let log = app.state(State::new(Vec::<i64>::new()));
    let tag = app.add(Number::new().label("Tag"));
    let set = app.add(Button::new("Set"));
    let go = app.add(Button::new("Go"));
    app.click(set, tag, who, |t: f64| t as i64).api_name("set");
    app.click(
        go,
        (who, log, tag),
        log,
        move |who: i64, mut log: Vec<i64>, n: f64| {
            let (r, per, all) = (r.clone(), per.clone(), all.clone());
            async move {
                {
                    let mut map = r.lock().unwrap();
                    *map.entry(who).or_default() += 1;
                    per.fetch_max(map[&who], Ordering::SeqCst);
                    all.fetch_max(map.values().sum(), Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                *r.lock().unwrap().entry(who).or_default() -= 1;
                log.push(n as i64);
                log
            }
        },
    )
    .api_name("go");
    let length = app.add(Number::new().label("Logged"));
    let check = app.add(Button::new("Check"));
    app.click(check, log, length, |log: Vec<i64>| log.len() as f64)
        .api_name("check");
    let server = Arc::new(TestServer::start(fast_settings(), vec![app.build().unwrap()]).await);
    let config = server.config("order").await;
    let mut tasks = tokio::task::JoinSet::new();
    let mut sessions = Vec::new();
    for tag in 0..4 {
        let session = server.start_session("order").await;
        server
            .event(
                "order",
                &session,
                listener_named(&config, "set"),
                vec![json!(tag)],
            )
            .await
            .unwrap();
        sessions.push(session);
        for n in 0..10 {
            let (server, session, go) = (server.clone(), session, listener_named(&config, "go"));
            tasks.spawn(async move {
                server
                    .event(
                        "order",
                        &session,
                        go,
                        vec![Value::Null, Value::Null, json!(n)],
                    )
                    .await
                    .unwrap();
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert_eq!(
        peak_per_session.load(Ordering::SeqCst),
        1,
        "one event at a time per session"
    );
    assert!(
        peak_overall.load(Ordering::SeqCst) > 1,
        "sessions ran in parallel"
    );
    for session in &sessions {
        let r = server
            .event(
                "order",
                session,
                listener_named(&config, "check"),
                vec![Value::Null],
            )
            .await
            .unwrap();
        assert_eq!(
            value_of(&r, component(&config, "Logged")),
            Some(json!(10.0)),
            "no lost update"
        );
    }
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

#[tokio::test]
async fn global_changes_are_pushed_live_to_every_open_page() {
    let server = TestServer::start(fast_settings(), vec![demos::visitor_counter().unwrap()]).await;
    let config = server.config("visitor-counter").await;
    let visit = listener_named(&config, "visit");
    let total = component(&config, "Total Visitors");
    let first = server.start_session("visitor-counter").await;
    let mut page = server.open_feed("visitor-counter", &first).await;
    let snapshot = page.next_push(WAIT).await.expect("current value on attach");
    assert_eq!(
        (snapshot.component, snapshot.value),
        (total, Some(json!("0")))
    );
    let r = server
        .event("visitor-counter", &first, visit, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(value_of(&r, total), Some(json!("1")));
    assert_eq!(
        page.next_push(WAIT).await.and_then(|u| u.value),
        Some(json!("1"))
    );
    for expected in 2..=3 {
        let other = server.start_session("visitor-counter").await;
        server
            .event("visitor-counter", &other, visit, vec![Value::Null])
            .await
            .unwrap();
        let pushed = page
            .next_push(WAIT)
            .await
            .expect("push from another session");
        assert_eq!(pushed.value, Some(json!(expected.to_string())));
    }
    server.stop().await;
}
