//! What only the Redis store has to show: values stored by another version of the
//! app, Redis going away and coming back, a lost lease, and endings that run once
//! although several instances sweep. Each test starts its own redis-server on a free
//! loopback port. (The rest of the suite runs against Redis too: see scripts/test.)

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::SessionId;
use keepsake::protocol::error::ErrorKind;
use keepsake::{App, Blocks, Settings, State};
use serde_json::{Value, json};
use support::{
    RedisProcess, TestServer, component, eventually, fast_settings, listener_named, value_of,
};

fn on(redis: &RedisProcess, namespace: &str) -> Settings {
    Settings {
        store: redis.url(),
        store_namespace: namespace.into(),
        ..fast_settings()
    }
}

/// Version 0 of an app keeps a note as text.
fn notes_v0() -> App {
    let mut app = Blocks::new("notes", "Notes");
    let input = app.add(Textbox::new().label("Input"));
    let save = app.add(Button::new("Save"));
    let read = app.add(Button::new("Read"));
    let shown = app.add(Textbox::new().label("Shown"));
    let note = app.state(State::new(String::new()));
    app.click(save, input, note, |text: String| text)
        .api_name("save");
    app.click(read, note, shown, |note: String| note)
        .api_name("read");
    app.build().unwrap()
}

/// Version 1 keeps it as a number, with or without a migration from version 0.
fn notes_v1(migrate: bool) -> App {
    let mut app = Blocks::new("notes", "Notes");
    let read = app.add(Button::new("Read"));
    let shown = app.add(Number::new().label("Shown"));
    let mut note = State::new(0u64).version(1);
    if migrate {
        note = note.migrate(|from, stored: Value| {
            (from == 0)
                .then(|| stored.as_str()?.trim().parse().ok())
                .flatten()
        });
    }
    let note = app.state(note);
    app.click(read, note, shown, |note: u64| note as f64)
        .api_name("read");
    app.build().unwrap()
}

async fn read(server: &TestServer, session: &SessionId) -> Value {
    let config = server.config("notes").await;
    let result = server
        .event(
            "notes",
            session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    value_of(&result, component(&config, "Shown")).unwrap()
}

#[tokio::test]
async fn values_stored_by_another_version_are_migrated_or_reset_never_misread() {
    let redis = RedisProcess::start();
    let v0 = TestServer::start(on(&redis, "versions"), vec![notes_v0()]).await;
    let config = v0.config("notes").await;
    let save = listener_named(&config, "save");
    let (migrated, reset) = (
        v0.start_session("notes").await,
        v0.start_session("notes").await,
    );
    for (session, text) in [(&migrated, "41"), (&reset, "seven")] {
        v0.event("notes", session, save, vec![json!(text)])
            .await
            .unwrap();
    }
    v0.stop().await;

    // The new version of the app, on the same Redis: sessions survive the deploy.
    let v1 = TestServer::start(on(&redis, "versions"), vec![notes_v1(true)]).await;
    assert_eq!(read(&v1, &migrated).await, json!(41.0), "migrated");
    // The migration cannot read "seven": the default, not an error or a misread.
    assert_eq!(read(&v1, &reset).await, json!(0.0), "reset to the default");
    v1.stop().await;

    // Without the migration the migrated value still reads: it was stored again in
    // version 1 by the event that migrated it.
    let v1 = TestServer::start(on(&redis, "versions"), vec![notes_v1(false)]).await;
    assert_eq!(read(&v1, &migrated).await, json!(41.0));
    v1.stop().await;
}

fn counter_app() -> App {
    let mut app = Blocks::new("counter", "Counter");
    let bump = app.add(Button::new("Bump"));
    let shown = app.add(Number::new().label("Count"));
    let count = app.state(State::new(0u32));
    app.click(bump, count, (count, shown), |n: u32| {
        (n + 1, f64::from(n + 1))
    })
    .api_name("bump");
    app.build().unwrap()
}

async fn bump(server: &TestServer, session: &SessionId) -> Result<Value, (u16, ErrorKind)> {
    let config = server.config("counter").await;
    server
        .event(
            "counter",
            session,
            listener_named(&config, "bump"),
            vec![Value::Null],
        )
        .await
        .map(|result| value_of(&result, component(&config, "Count")).unwrap())
        .map_err(|(status, body)| (status, body.error))
}

#[tokio::test]
async fn redis_away_gives_a_clear_error_and_the_server_recovers_by_itself() {
    let mut redis = RedisProcess::start();
    let server = TestServer::start(on(&redis, "outage"), vec![counter_app()]).await;
    let session = server.start_session("counter").await;
    assert_eq!(bump(&server, &session).await, Ok(json!(1.0)));

    redis.kill();
    assert_eq!(
        bump(&server, &session).await,
        Err((503, ErrorKind::StoreUnavailable))
    );
    let health = server.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    let refused = server
        .client
        .post(server.url("/api/apps/counter/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);

    // Back, with what it had written: the session and its count are intact.
    redis.restart();
    let mut last = None;
    for _ in 0..100 {
        last = Some(bump(&server, &session).await);
        if last.as_ref().is_some_and(Result::is_ok) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        last,
        Some(Ok(json!(2.0))),
        "recovered, nothing lost or doubled"
    );
    assert_eq!(server.health().await["status"], "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_a_clear_error_and_writes_nothing() {
    let redis = RedisProcess::start();
    let mut app = Blocks::new("slow", "Slow");
    let bump = app.add(Button::new("Bump"));
    let shown = app.add(Number::new().label("Count"));
    let count = app.state(State::new(0u32));
    app.click(bump, count, (count, shown), |n: u32| async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        (n + 1, f64::from(n + 1))
    })
    .api_name("bump");
    let server = TestServer::start(on(&redis, "lease"), vec![app.build().unwrap()]).await;
    let config = server.config("slow").await;
    let bump = listener_named(&config, "bump");
    let shown = component(&config, "Count");
    let session = server.start_session("slow").await;

    let running = {
        let base = server.base.clone();
        tokio::spawn(async move {
            TestServer::external(base)
                .event("slow", &session, bump, vec![Value::Null])
                .await
        })
    };
    // While the handler sleeps, its lease disappears (as if it had run out and
    // another instance had taken the session).
    let lease = format!("lease:slow:lease:{}", session.as_str());
    let mut deleted = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if redis.command(&["DEL", &lease]).as_deref() == Some(":1") {
            deleted = true;
            break;
        }
    }
    assert!(deleted, "the event took its lease");
    let (status, body) = running.await.unwrap().unwrap_err();
    assert_eq!(
        (status, body.error),
        (409, ErrorKind::LeaseLost),
        "{}",
        body.message
    );

    let result = server
        .event("slow", &session, bump, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, shown),
        Some(json!(1.0)),
        "the lost write left no trace"
    );
    server.stop().await;
}

#[tokio::test]
async fn endings_run_their_delete_callbacks_once_however_many_instances_sweep() {
    let redis = RedisProcess::start();
    let deleted = Arc::new(AtomicUsize::new(0));
    let app = |deleted: Arc<AtomicUsize>| {
        let mut app = Blocks::new("ttl", "TTL");
        let bump = app.add(Button::new("Bump"));
        let count = app.state(
            State::new(0u32)
                .time_to_live(Duration::from_millis(300))
                .on_delete(move |_| {
                    deleted.fetch_add(1, Ordering::SeqCst);
                }),
        );
        app.click(bump, count, count, |n: u32| n + 1)
            .api_name("bump");
        app.build().unwrap()
    };
    let settings = || Settings {
        session_retention: Duration::from_millis(600),
        ..on(&redis, "endings")
    };
    let instances = [
        TestServer::start(settings(), vec![app(deleted.clone())]).await,
        TestServer::start(settings(), vec![app(deleted.clone())]).await,
        TestServer::start(settings(), vec![app(deleted.clone())]).await,
    ];
    let config = instances[0].config("ttl").await;
    let bump = listener_named(&config, "bump");
    let sessions = 30;
    for n in 0..sessions {
        let instance = &instances[n % instances.len()];
        let session = instance.start_session("ttl").await;
        let other = &instances[(n + 1) % instances.len()];
        other
            .event("ttl", &session, bump, vec![Value::Null])
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(10), "every value's callback", || {
        deleted.load(Ordering::SeqCst) >= sessions
    })
    .await;
    // The sessions themselves expire too; their values are already gone.
    let health = || async { instances[0].health().await["live_sessions"]["ttl"].clone() };
    for _ in 0..100 {
        if health().await == json!(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(health().await, json!(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(deleted.load(Ordering::SeqCst), sessions, "once each");
    for instance in instances {
        instance.stop().await;
    }
}
