//! Edges of the state engine that need real interleaving to show: two globals locked
//! in opposite orders (sync handlers that block: `blocking_handlers.rs`), an event whose globals and session
//! values must be written together or not at all (Redis), and one session driven
//! through two instances at once (Redis).
//!
//! Every test that could hang is bounded by `tokio::time::timeout`, so a deadlock or a
//! stall is a clear failure, never a stuck run. Servers bind 127.0.0.1 only; the Redis
//! tests start a redis-server of their own on a free loopback port.

// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keepsake::components::{Button, Number};
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::{ListenerId, SessionId};
use keepsake::{Blocks, Global, Settings, State};
use serde_json::{Value, json};
use support::*;

/// The most any one test may take before it counts as hung.
const BOUND: Duration = Duration::from_secs(30);

/// Settings whose per-session rate limit never interferes with a test that sends
/// many events quickly.
fn unlimited(settings: Settings) -> Settings {
    Settings {
        max_events_per_second: 1_000_000,
        ..settings
    }
}

/// Runs the read listener `api_name` (no client inputs besides server-side slots)
/// and returns the values it shows on the components labelled `labels`.
async fn read_numbers(
    server: &TestServer,
    app: &str,
    session: &SessionId,
    api_name: &str,
    inputs: usize,
    labels: &[&str],
) -> Vec<Option<Value>> {
    let config = server.config(app).await;
    let result = server
        .event(
            app,
            session,
            listener_named(&config, api_name),
            vec![Value::Null; inputs],
        )
        .await
        .unwrap_or_else(|e| panic!("read listener {api_name} failed: {e:?}"));
    labels
        .iter()
        .map(|label| value_of(&result, component(&config, label)))
        .collect()
}

// ---------------------------------------------------------------------------------
// 1. Two globals, each written by one listener and read by the other.
// ---------------------------------------------------------------------------------

/// Protects: a listener that writes global A and reads global B, running alongside a
/// listener that writes B and reads A, never deadlocks (A lock-order inversion
/// between "locked for writing" and "locked briefly to read" would hang both, and
/// with them every later event touching A or B), and neither loses an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listeners_writing_one_global_and_reading_another_never_deadlock() {
    const SESSIONS: usize = 40;
    const EVENTS_PER_SESSION: usize = 50; // 2,000 in total, half X and half Y.

    let mut app = Blocks::new("pair", "Pair");
    let a = app.global(Global::new(0u64));
    let b = app.global(Global::new(0u64));
    let x = app.add(Button::new("X"));
    let y = app.add(Button::new("Y"));
    let read = app.add(Button::new("Read"));
    let shown_a = app.add(Number::new().label("A"));
    let shown_b = app.add(Number::new().label("B"));
    // X: writes A, reads B. Y: writes B, reads A. Both await inside.
    app.click(x, (a, b), a, |a: u64, _b: u64| async move {
        tokio::task::yield_now().await;
        a + 1
    })
    .api_name("x");
    app.click(y, (b, a), b, |b: u64, _a: u64| async move {
        tokio::task::yield_now().await;
        b + 1
    })
    .api_name("y");
    app.click(read, (a, b), (shown_a, shown_b), |a: u64, b: u64| {
        (a as f64, b as f64)
    })
    .api_name("read");
    let server =
        Arc::new(TestServer::start(unlimited(fast_settings()), vec![app.build().unwrap()]).await);
    let config = server.config("pair").await;
    let (x, y) = (listener_named(&config, "x"), listener_named(&config, "y"));

    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        sessions.push(server.start_session("pair").await);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, session) in sessions.into_iter().enumerate() {
        let (server, done) = (server.clone(), done.clone());
        tasks.spawn(async move {
            for k in 0..EVENTS_PER_SESSION {
                // Half the sessions start with X, half with Y; each alternates.
                let listener = if (n + k) % 2 == 0 { x } else { y };
                server
                    .event("pair", &session, listener, vec![Value::Null, Value::Null])
                    .await
                    .unwrap_or_else(|e| panic!("event {k} of session {n} failed: {e:?}"));
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    join_within(
        tasks,
        &done,
        SESSIONS * EVENTS_PER_SESSION,
        "deadlock: events",
    )
    .await;

    let reader = server.start_session("pair").await;
    let values = tokio::time::timeout(
        BOUND,
        read_numbers(&server, "pair", &reader, "read", 2, &["A", "B"]),
    )
    .await
    .expect("reading A and B hung");
    let half = (SESSIONS * EVENTS_PER_SESSION / 2) as f64;
    assert_eq!(
        values,
        vec![Some(json!(half)), Some(json!(half))],
        "A counts X's events and B counts Y's, exactly"
    );
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------
// 2. Redis: an event's global and session writes are all applied or none.
// ---------------------------------------------------------------------------------

fn on(redis: &RedisProcess, namespace: &str) -> Settings {
    Settings {
        store: redis.url(),
        store_namespace: namespace.into(),
        ..fast_settings()
    }
}

/// A state type that serde_json cannot encode once it holds an entry (map keys must
/// be strings): its size counts as 0 in memory, and it fails to encode for Redis.
type Unencodable = HashMap<Vec<u8>, u8>;

/// Protects (Redis): nothing is written unless the whole event can be. A listener
/// writes a global and a session state; the state cannot be encoded for Redis. The
/// event fails, and the global keeps its value (it must not be committed before the
/// session's values are known to be storable).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_an_event_whose_state_cannot_be_stored_leaves_globals_unchanged() {
    let redis = RedisProcess::start();
    let mut app = Blocks::new("poison", "Poison");
    let total = app.global(Global::new(0u64));
    let bad = app.state(State::new(Unencodable::new()));
    let go = app.add(Button::new("Go"));
    let read = app.add(Button::new("Read"));
    let shown = app.add(Number::new().label("Total"));
    app.click(go, total, (total, bad), |n: u64| {
        (n + 1, Unencodable::from([(vec![1u8], 1u8)]))
    })
    .api_name("go");
    app.click(read, total, shown, |n: u64| n as f64)
        .api_name("read");
    let server = TestServer::start(on(&redis, "poison"), vec![app.build().unwrap()]).await;
    let config = server.config("poison").await;
    let session = server.start_session("poison").await;

    let outcome = tokio::time::timeout(
        BOUND,
        server.event(
            "poison",
            &session,
            listener_named(&config, "go"),
            vec![Value::Null],
        ),
    )
    .await
    .expect("the event never answered");
    let body = assert_error(outcome, 500, ErrorKind::HandlerFailed);
    assert!(body.message.contains("encoded"), "{}", body.message);

    let other = server.start_session("poison").await;
    let values = tokio::time::timeout(
        BOUND,
        read_numbers(&server, "poison", &other, "read", 1, &["Total"]),
    )
    .await
    .expect("reading the global hung");
    assert_eq!(
        values,
        vec![Some(json!(0.0))],
        "half-applied event: the failed event's global write was committed"
    );
    server.stop().await;
}

/// Protects (Redis): an event whose session lease was lost while its handler ran
/// writes nothing at all, globals included. The handler waits until the test has
/// deleted the session's lease key (as if it had run out and another instance had
/// taken the session), then returns a new global and a new state: the event fails
/// with 409 `lease_lost`, and neither value is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_an_event_that_lost_its_lease_leaves_globals_unchanged() {
    let redis = RedisProcess::start();
    let entered = Arc::new(tokio::sync::Notify::new());
    let go_on = Arc::new(tokio::sync::Notify::new());
    let (e, g) = (entered.clone(), go_on.clone());
    let mut app = Blocks::new("lease", "Lease");
    let total = app.global(Global::new(0u64));
    let count = app.state(State::new(0u32));
    let go = app.add(Button::new("Go"));
    let read = app.add(Button::new("Read"));
    let shown_total = app.add(Number::new().label("Total"));
    let shown_count = app.add(Number::new().label("Count"));
    app.click(go, (total, count), (total, count), move |n: u64, c: u32| {
        let (entered, go_on) = (e.clone(), g.clone());
        async move {
            entered.notify_one();
            go_on.notified().await;
            (n + 1, c + 1)
        }
    })
    .api_name("go");
    app.click(
        read,
        (total, count),
        (shown_total, shown_count),
        |n: u64, c: u32| (n as f64, f64::from(c)),
    )
    .api_name("read");
    let settings = Settings {
        event_timeout: Duration::from_secs(10),
        ..on(&redis, "lease")
    };
    let server = Arc::new(TestServer::start(settings, vec![app.build().unwrap()]).await);
    let config = server.config("lease").await;
    let session = server.start_session("lease").await;

    let running = {
        let (server, go) = (server.clone(), listener_named(&config, "go"));
        tokio::spawn(async move {
            server
                .event("lease", &session, go, vec![Value::Null, Value::Null])
                .await
        })
    };
    tokio::time::timeout(BOUND, entered.notified())
        .await
        .expect("the handler never started");
    // `{namespace}:{app}:lease:{session}`: see backend/src/store/redis.rs.
    let lease = format!("lease:lease:lease:{}", session.as_str());
    assert_eq!(
        redis.command(&["DEL", &lease]).as_deref(),
        Some(":1"),
        "the running event holds the session's lease"
    );
    go_on.notify_one();
    let outcome = tokio::time::timeout(BOUND, running)
        .await
        .expect("the event never answered")
        .unwrap();
    assert_error(outcome, 409, ErrorKind::LeaseLost);

    let values = tokio::time::timeout(
        BOUND,
        read_numbers(&server, "lease", &session, "read", 2, &["Total", "Count"]),
    )
    .await
    .expect("reading the values hung");
    assert_eq!(
        values,
        vec![Some(json!(0.0)), Some(json!(0.0))],
        "[global, state] after an event that lost its lease: nothing may be written"
    );
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}

// ---------------------------------------------------------------------------------
// 3. Redis: one session driven through two instances at once.
// ---------------------------------------------------------------------------------

/// Protects (Redis): events of one session sent concurrently through two instances
/// (same Redis, same namespace) run one at a time across instances and lose nothing:
/// 200 adds from 20 tasks, alternating instances, leave exactly 200 items.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_one_session_through_two_instances_loses_no_event() {
    const TASKS: usize = 20;
    const ADDS_PER_TASK: usize = 10;
    let redis = RedisProcess::start();
    let cart_app = || {
        let mut app = Blocks::new("cart", "Cart");
        let cart = app.state(State::new(Vec::<String>::new()));
        let add = app.add(Button::new("Add"));
        let size = app.add(Button::new("Size"));
        let shown = app.add(Number::new().label("Cart Size"));
        app.click(add, cart, cart, |mut cart: Vec<String>| {
            cart.push("item".into());
            cart
        })
        .api_name("add");
        app.click(size, cart, shown, |cart: Vec<String>| cart.len() as f64)
            .api_name("size");
        app.build().unwrap()
    };
    let settings = || unlimited(on(&redis, "contention"));
    let instances = Arc::new([
        TestServer::start(settings(), vec![cart_app()]).await,
        TestServer::start(settings(), vec![cart_app()]).await,
    ]);
    let config = instances[0].config("cart").await;
    let add: ListenerId = listener_named(&config, "add");
    let session = instances[0].start_session("cart").await;

    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let (instances, done) = (instances.clone(), done.clone());
        tasks.spawn(async move {
            for k in 0..ADDS_PER_TASK {
                let instance = &instances[(t + k) % 2];
                instance
                    .event("cart", &session, add, vec![Value::Null])
                    .await
                    .unwrap_or_else(|e| panic!("add {k} of task {t} failed: {e:?}"));
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    join_within(tasks, &done, TASKS * ADDS_PER_TASK, "adds").await;
    for instance in instances.iter() {
        let size = tokio::time::timeout(
            BOUND,
            read_numbers(instance, "cart", &session, "size", 1, &["Cart Size"]),
        )
        .await
        .expect("reading the cart hung");
        assert_eq!(
            size,
            vec![Some(json!((TASKS * ADDS_PER_TASK) as f64))],
            "every add counted once"
        );
    }
    if let Ok(instances) = Arc::try_unwrap(instances) {
        for instance in instances {
            instance.stop().await;
        }
    }
}

/// Waits for every task, failing with how many of `expected` steps finished if they
/// do not all finish within `BOUND` (a hang becomes a failure, not a stuck run).
async fn join_within(
    mut tasks: tokio::task::JoinSet<()>,
    done: &AtomicUsize,
    expected: usize,
    what: &str,
) {
    let finished = tokio::time::timeout(BOUND, async {
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "{what}: only {} of {expected} finished within {BOUND:?}",
        done.load(Ordering::SeqCst)
    );
}

/// Protects (Redis): an event gives back every global lock it took, including those
/// of globals it could have written but did not change. Before, the commit script
/// deleted only the changed globals' locks: the others stayed locked until they ran
/// out (the event time-out + 5 s), and every writer of them waited and failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_an_event_that_leaves_a_global_unchanged_gives_its_lock_back() {
    let redis = RedisProcess::start();
    let mut app = Blocks::new("locks", "Locks");
    let total = app.global(Global::new(0u64));
    let tally = app.state(State::new(0u64));
    let peek = app.add(Button::new("Peek"));
    let add = app.add(Button::new("Add"));
    let shown = app.add(Number::new().label("Total"));
    // May write the global, but leaves it as it is (and changes the session's tally,
    // so the commit script runs).
    app.click(peek, (total, tally), (total, tally), |n: u64, t: u64| {
        (n, t + 1)
    })
    .api_name("peek");
    app.click(add, total, (total, shown), |n: u64| (n + 1, (n + 1) as f64))
        .api_name("add");
    let settings = Settings {
        event_timeout: Duration::from_secs(2),
        ..on(&redis, "locks")
    };
    let server = TestServer::start(settings, vec![app.build().unwrap()]).await;
    let config = server.config("locks").await;
    let session = server.start_session("locks").await;
    server
        .event(
            "locks",
            &session,
            listener_named(&config, "peek"),
            vec![Value::Null, Value::Null],
        )
        .await
        .expect("peek");
    let started = Instant::now();
    let added = server
        .event(
            "locks",
            &session,
            listener_named(&config, "add"),
            vec![Value::Null],
        )
        .await
        .expect("the global's lock was given back");
    assert_eq!(
        value_of(&added, component(&config, "Total")),
        Some(json!(1.0))
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    server.stop().await;
}
