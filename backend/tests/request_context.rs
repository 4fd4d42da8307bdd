//! The request context: a handler that lists `REQUEST` among its inputs sees the
//! session's short id, the client's address and the request's headers, through the
//! page API and through the Gradio-compatible bridge, and so does a `.change`
//! listener it sets off; the request is no input slot, so clients send nothing for it.
//! Its session key is the same for every event of a session (with Redis, on every
//! instance), another for every session, and says nothing of the session's id.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::components::{Button, Markdown, Textbox};
use keepsake::{Blocks, REQUEST, Request, Settings, State};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, on_redis, value_of};

/// What the handler saw, in one line.
fn seen(request: &Request) -> String {
    format!(
        "session={} address={} agent={}",
        request.session(),
        request
            .client_address()
            .map_or("none".to_owned(), |a| a.to_string()),
        request.header("x-agent").unwrap_or("none"),
    )
}

fn app() -> keepsake::App {
    let mut app = Blocks::new("who", "Who");
    let name = app.add(Textbox::new().label("Name"));
    let greeting = app.add(Markdown::new("").label("Greeting"));
    let echoed = app.add(Markdown::new("").label("Echo"));
    let last = app.state(State::new(String::new()));
    let button = app.add(Button::new("Greet"));
    app.click(
        button,
        (name, REQUEST),
        (greeting, last),
        |name: String, request: Request| {
            let line = seen(&request);
            (format!("Hello {name}: {line}"), line)
        },
    )
    .api_name("greet");
    // The `.change` listener the click sets off sees the same request.
    app.change(
        last,
        (last, REQUEST),
        echoed,
        |last: String, request: Request| format!("{last} / {}", seen(&request)),
    );
    app.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_session_address_and_headers() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("who").await;
    // The request is no input slot: the listener's inputs are the name only.
    let greet = listener_named(&config, "greet");
    let listener = config.listeners.iter().find(|d| d.id == greet).unwrap();
    assert_eq!(listener.inputs.len(), 1, "{:?}", listener.inputs);

    let session = server.start_session("who").await;
    let response = server
        .client
        .post(server.url(&format!("/api/apps/who/sessions/{session}/events")))
        .header("x-agent", "probe/1")
        .json(&json!({ "listener": greet, "inputs": ["Ada"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: keepsake::protocol::event::EventResult = response.json().await.unwrap();
    let expected = format!(
        "session={} address=127.0.0.1 agent=probe/1",
        session.short()
    );
    assert_eq!(
        value_of(&result, component(&config, "Greeting")),
        Some(Value::from(format!("Hello Ada: {expected}")))
    );
    assert_eq!(
        value_of(&result, component(&config, "Echo")),
        Some(Value::from(format!("{expected} / {expected}")))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_call_gives_its_request_too() {
    let settings = Settings {
        gradio_api: true,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app()]).await;
    let response = server
        .client
        .post(server.url("/apps/who/gradio_api/run/greet"))
        .header("x-agent", "bridge/2")
        .json(&json!({ "data": ["Bo"], "session_hash": "request-ctx-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let greeting = answer["data"][0].as_str().unwrap();
    assert!(
        greeting.starts_with("Hello Bo: session=")
            && greeting.ends_with("address=127.0.0.1 agent=bridge/2"),
        "{answer}"
    );
    server.stop().await;
}

fn keys() -> keepsake::App {
    let mut app = Blocks::new("keys", "Keys");
    let shown = app.add(Textbox::new().label("Key"));
    let button = app.add(Button::new("Key"));
    app.click(button, REQUEST, shown, |request: Request| {
        request.session_key().to_owned()
    })
    .api_name("key");
    app.build().unwrap()
}

async fn key_of(server: &TestServer, session: &keepsake::protocol::SessionId) -> String {
    let config = server.config("keys").await;
    let result = server
        .event("keys", session, listener_named(&config, "key"), Vec::new())
        .await
        .unwrap();
    let key = value_of(&result, component(&config, "Key")).unwrap();
    key.as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_key_is_the_sessions_own_and_hides_its_id() {
    // With Redis, a second instance on the same store gives the same keys.
    let settings = if on_redis() {
        Settings {
            store: std::env::var("KEEPSAKE_TEST_REDIS").unwrap(),
            store_namespace: format!("test-keys-{}", rand::random::<u64>()),
            ..fast_settings()
        }
    } else {
        fast_settings()
    };
    let server = TestServer::start(settings.clone(), vec![keys()]).await;
    let (one, two) = (
        server.start_session("keys").await,
        server.start_session("keys").await,
    );
    let key = key_of(&server, &one).await;
    assert_eq!(key.len(), 32, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert_eq!(key_of(&server, &one).await, key, "stable across events");
    assert_ne!(key_of(&server, &two).await, key, "one per session");
    for part in one.as_str().as_bytes().chunks(8) {
        let part = std::str::from_utf8(part).unwrap();
        assert!(!key.contains(part), "{key} shows {part} of the id");
    }
    if on_redis() {
        let elsewhere = TestServer::start(settings, vec![keys()]).await;
        assert_eq!(
            key_of(&elsewhere, &one).await,
            key,
            "the same on every instance"
        );
        elsewhere.stop().await;
    }
    server.stop().await;
}
