//! Integration tests of a session's life, against a real server on 127.0.0.1:0:
//! per-state time-to-live, LRU capacity with delete callbacks, unload and resources,
//! expiry after retention, graceful shutdown.
// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::error::ErrorKind;
use keepsake::{Blocks, Resource, Settings, Shared, State, demos};
use serde_json::{Value, json};
use support::*;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn time_to_live_deletes_the_value_and_calls_back_with_the_last_one() {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = deleted.clone();
    let mut app = Blocks::new("ttl", "TTL");
    let note = app.state(
        State::new(String::new())
            .time_to_live(Duration::from_millis(300))
            .on_delete(move |last: String| sink.lock().unwrap().push(last)),
    );
    let text = app.add(Textbox::new().label("Text"));
    let save = app.add(Button::new("Save"));
    let read = app.add(Button::new("Read"));
    app.click(save, text, note, |t: String| t).api_name("save");
    app.click(read, note, text, |n: String| n).api_name("read");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("ttl").await;
    let text_id = component(&config, "Text");
    let session = server.start_session("ttl").await;
    server
        .event(
            "ttl",
            &session,
            listener_named(&config, "save"),
            vec![json!("first")],
        )
        .await
        .unwrap();
    server
        .event(
            "ttl",
            &session,
            listener_named(&config, "save"),
            vec![json!("last")],
        )
        .await
        .unwrap();
    eventually(WAIT, "the delete callback", || {
        !deleted.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *deleted.lock().unwrap(),
        vec!["last".to_owned()],
        "called once, with the last value"
    );
    let r = server
        .event(
            "ttl",
            &session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(
        value_of(&r, text_id),
        Some(json!("")),
        "back to the default"
    );
    server.stop().await;
}

#[tokio::test]
async fn lru_capacity_gives_gradios_sequence_and_calls_delete_callbacks() {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = deleted.clone();
    let mut app = Blocks::new("lru", "LRU");
    let count =
        app.state(State::new(0i64).on_delete(move |last: i64| sink.lock().unwrap().push(last)));
    let bump = app.add(Button::new("Bump"));
    let shown = app.add(Number::new().label("Before"));
    app.click(bump, count, (count, shown), |n: i64| (n + 1, n as f64))
        .api_name("bump");
    let settings = Settings {
        session_capacity: 2,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app.build().unwrap()]).await;
    let config = server.config("lru").await;
    let bump = listener_named(&config, "bump");
    let before = component(&config, "Before");

    let mut s1 = server.start_session("lru").await;
    let s2 = server.start_session("lru").await;
    let mut seen = Vec::new();
    let mut s3 = None;
    for who in ["S1", "S2", "S1", "S2", "S3", "S2", "S1"] {
        let session = match who {
            "S1" => s1,
            "S2" => s2,
            _ => *s3.get_or_insert(server.start_session("lru").await),
        };
        let outcome = server.event("lru", &session, bump, vec![Value::Null]).await;
        let result = match outcome {
            Ok(result) => result,
            Err((404, body)) if body.error == ErrorKind::UnknownSession => {
                // Evicted: the client is told, starts a new session and retries.
                assert_eq!(who, "S1", "only S1 is least recently used when S3 arrives");
                s1 = server.start_session("lru").await;
                server
                    .event("lru", &s1, bump, vec![Value::Null])
                    .await
                    .unwrap()
            }
            Err(other) => panic!("unexpected error {other:?}"),
        };
        seen.push(value_of(&result, before).and_then(|v| v.as_f64()).unwrap() as i64);
    }
    assert_eq!(seen, vec![0, 0, 1, 1, 0, 2, 0]);
    eventually(WAIT, "delete callbacks of evicted sessions", || {
        deleted.lock().unwrap().contains(&2)
    })
    .await;
    server.stop().await;
}

/// A resource that counts how many are alive.
struct Connection {
    alive: Arc<AtomicUsize>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn unload_runs_once_on_disconnect_and_releases_resources() {
    let unloads = Arc::new(AtomicUsize::new(0));
    let alive = Arc::new(AtomicUsize::new(0));
    let (u, a) = (unloads.clone(), alive.clone());
    let mut app = Blocks::new("unload", "Unload");
    let visits = app.state(State::new(0u32));
    let connection = app.resource(Resource::new(move || {
        a.fetch_add(1, Ordering::SeqCst);
        Connection { alive: a.clone() }
    }));
    let button = app.add(Button::new("Use"));
    let out = app.add(Number::new().label("Visits"));
    app.click(
        button,
        (visits, connection),
        (visits, out),
        |v: u32, c: Shared<Connection>| {
            drop(c);
            (v + 1, f64::from(v + 1))
        },
    )
    .api_name("use");
    app.unload(visits, (), move |_v: u32| {
        u.fetch_add(1, Ordering::SeqCst);
    });
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("unload").await;
    let session = server.start_session("unload").await;
    let mut stream = server.open_feed("unload", &session).await;
    assert_eq!(
        stream.next(WAIT).await,
        Some(keepsake::protocol::feed::FeedMessage::Attached)
    );
    let r = server
        .event(
            "unload",
            &session,
            listener_named(&config, "use"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(value_of(&r, component(&config, "Visits")), Some(json!(1.0)));
    assert_eq!(
        alive.load(Ordering::SeqCst),
        1,
        "one resource for the session"
    );
    assert_eq!(unloads.load(Ordering::SeqCst), 0);

    drop(stream);
    eventually(WAIT, "unload after disconnect", || {
        unloads.load(Ordering::SeqCst) == 1
    })
    .await;
    eventually(WAIT, "resource released", || {
        alive.load(Ordering::SeqCst) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(unloads.load(Ordering::SeqCst), 1, "unload runs once");

    // Reconnecting within the retention keeps the session and its values.
    let _stream = server.open_feed("unload", &session).await;
    let r = server
        .event(
            "unload",
            &session,
            listener_named(&config, "use"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(value_of(&r, component(&config, "Visits")), Some(json!(2.0)));
    server.stop().await;
}

#[tokio::test]
async fn a_session_expires_after_retention_only_once_its_page_is_gone() {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = deleted.clone();
    let mut app = Blocks::new("retention", "Retention");
    let count = app.state(State::new(0u32).on_delete(move |v: u32| sink.lock().unwrap().push(v)));
    let button = app.add(Button::new("Bump"));
    app.click(button, count, count, |n: u32| n + 1)
        .api_name("bump");
    let settings = Settings {
        session_retention: Duration::from_millis(400),
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app.build().unwrap()]).await;
    let config = server.config("retention").await;
    let bump = listener_named(&config, "bump");
    let session = server.start_session("retention").await;
    let stream = server.open_feed("retention", &session).await;
    server
        .event("retention", &session, bump, vec![Value::Null])
        .await
        .unwrap();
    // With the page open the session outlives its retention.
    tokio::time::sleep(Duration::from_millis(900)).await;
    server
        .event("retention", &session, bump, vec![Value::Null])
        .await
        .unwrap();
    drop(stream);
    eventually(WAIT, "expiry after the page left", || {
        deleted.lock().unwrap().as_slice() == [2]
    })
    .await;
    let outcome = server
        .event("retention", &session, bump, vec![Value::Null])
        .await;
    assert_error(outcome, 404, ErrorKind::UnknownSession);
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_open_feeds() {
    let server = TestServer::start(fast_settings(), vec![demos::visitor_counter().unwrap()]).await;
    let session = server.start_session("visitor-counter").await;
    let _page = server.open_feed("visitor-counter", &session).await;
    // `stop` asserts the server finishes within its deadline despite the open stream.
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_delete_callback_does_not_delay_other_endings() {
    // A "slow" value's callback takes four seconds (a slow disk, a remote call);
    // any other is recorded at once.
    const SLOW: Duration = Duration::from_secs(4);
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let sink = deleted.clone();
    let mut app = Blocks::new("slow-delete", "Slow delete");
    let note = app.state(
        State::new(String::new())
            .time_to_live(Duration::from_millis(200))
            .on_delete(move |last: String| {
                if last == "slow" {
                    std::thread::sleep(SLOW);
                }
                sink.lock().unwrap().push(last);
            }),
    );
    let text = app.add(Textbox::new().label("Text"));
    let save = app.add(Button::new("Save"));
    app.click(save, text, note, |t: String| t).api_name("save");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("slow-delete").await;
    let save = listener_named(&config, "save");
    let (first, second) = (
        server.start_session("slow-delete").await,
        server.start_session("slow-delete").await,
    );
    let started = std::time::Instant::now();
    server
        .event("slow-delete", &first, save, vec![json!("slow")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server
        .event("slow-delete", &second, save, vec![json!("quick")])
        .await
        .unwrap();
    // The second ending is not kept waiting behind the first one's callback.
    eventually(SLOW / 2, "the quick delete callback", || {
        deleted.lock().unwrap().contains(&"quick".to_owned())
    })
    .await;
    assert!(started.elapsed() < SLOW);
    // The slow one still runs to its end, once.
    eventually(SLOW * 2, "the slow delete callback", || {
        deleted.lock().unwrap().contains(&"slow".to_owned())
    })
    .await;
    assert_eq!(deleted.lock().unwrap().len(), 2);
    server.stop().await;
}
