//! Bad input gets a clear 4xx and changes nothing; failing handlers fail only their
//! event. Against a real server on 127.0.0.1:0.
// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::{Blocks, HandlerError, Settings, State, demos};
use serde_json::{Value, json};
use support::*;

async fn cart_size(server: &TestServer, session: &keepsake::protocol::SessionId) -> Value {
    let config = server.config("shopping-cart").await;
    // An unchanged cart fires no change listener (so reports no size): add one Water
    // and read the size the change listener reports.
    let add = listener_named(&config, "add_items");
    let r = server
        .event("shopping-cart", session, add, vec![json!([]), Value::Null])
        .await
        .expect("empty add succeeds");
    assert!(r.updates.is_empty(), "adding nothing changes nothing");
    let r = server
        .event(
            "shopping-cart",
            session,
            add,
            vec![json!(["Water"]), Value::Null],
        )
        .await
        .expect("add succeeds");
    value_of(&r, component(&config, "Cart Size")).expect("size")
}

async fn post_raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, ErrorBody) {
    let response = server
        .client
        .post(server.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON error body"))
}

#[tokio::test]
async fn malformed_requests_get_clear_errors_and_change_no_state() {
    let settings = Settings {
        max_body_bytes: 4096,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![demos::shopping_cart().unwrap()]).await;
    let config = server.config("shopping-cart").await;
    let add = listener_named(&config, "add_items");
    let session = server.start_session("shopping-cart").await;
    server
        .event(
            "shopping-cart",
            &session,
            add,
            vec![json!(["Milk"]), Value::Null],
        )
        .await
        .unwrap();
    let path = format!("/api/apps/shopping-cart/sessions/{session}/events");

    let (status, body) = post_raw(
        &server,
        &path,
        "application/json",
        b"{\"listener\": 0, ".to_vec(),
    )
    .await;
    assert_eq!((status, body.error), (400, ErrorKind::BadRequest));
    assert!(body.message.contains("malformed JSON"), "{}", body.message);

    let (status, body) = post_raw(
        &server,
        &path,
        "text/plain",
        br#"{"listener":0,"inputs":[]}"#.to_vec(),
    )
    .await;
    assert_eq!((status, body.error), (400, ErrorKind::BadRequest));
    assert!(body.message.contains("Content-Type"), "{}", body.message);

    let (status, body) = post_raw(
        &server,
        &path,
        "application/json",
        br#"{"listener":"zero"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, body.error),
        (400, ErrorKind::BadRequest),
        "{}",
        body.message
    );

    let oversized =
        serde_json::to_vec(&json!({"listener": 0, "inputs": [vec!["Milk"; 2000], null]})).unwrap();
    let (status, body) = post_raw(&server, &path, "application/json", oversized).await;
    assert_eq!((status, body.error), (413, ErrorKind::PayloadTooLarge));
    assert!(body.message.contains("4096"), "{}", body.message);

    let outcome = server
        .event(
            "shopping-cart",
            &session,
            keepsake::protocol::ListenerId(99),
            vec![],
        )
        .await;
    assert_error(outcome, 404, ErrorKind::UnknownListener);

    let outcome = server
        .event("shopping-cart", &session, add, vec![json!(["Milk"])])
        .await;
    let body = assert_error(outcome, 400, ErrorKind::InvalidInput);
    assert!(
        body.message.contains("2 input value(s), got 1"),
        "{}",
        body.message
    );

    let outcome = server
        .event(
            "shopping-cart",
            &session,
            add,
            vec![json!("Milk"), Value::Null],
        )
        .await;
    let body = assert_error(outcome, 400, ErrorKind::InvalidInput);
    assert!(
        body.message.contains("Items"),
        "names the input: {}",
        body.message
    );

    let outcome = server
        .event(
            "shopping-cart",
            &session,
            add,
            vec![json!(["Caviar"]), Value::Null],
        )
        .await;
    let body = assert_error(outcome, 400, ErrorKind::InvalidInput);
    assert!(
        body.message.contains("not one of the choices"),
        "{}",
        body.message
    );

    let response = server
        .client
        .get(server.url("/api/apps/nope/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = server
        .client
        .get(server.url("/api/no/such/endpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // After all of that, the cart holds exactly Milk (+ the Water the probe adds).
    assert_eq!(cart_size(&server, &session).await, json!(2.0));
    server.stop().await;
}

fn faulty_app() -> keepsake::App {
    let mut app = Blocks::new("faulty", "Faulty");
    let count = app.state(State::new(0i64));
    let shown = app.add(Number::new().label("Count"));
    let bump = app.add(Button::new("Bump"));
    let panic = app.add(Button::new("Panic"));
    let refuse = app.add(Button::new("Refuse"));
    let slow = app.add(Button::new("Slow"));
    let reason = app.add(Textbox::new().label("Reason"));
    app.click(bump, count, (count, shown), |n: i64| {
        (n + 1, (n + 1) as f64)
    })
    .api_name("bump");
    app.click(panic, count, count, |n: i64| -> i64 {
        if n >= 0 {
            panic!("the handler blew up with a secret: hunter2");
        }
        n
    })
    .api_name("panic");
    app.click(refuse, (count, reason), count, |n: i64, reason: String| {
        if reason.is_empty() {
            Ok(n + 100)
        } else {
            Err(HandlerError(format!("refused: {reason}")))
        }
    })
    .api_name("refuse");
    app.click(slow, count, count, |n: i64| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        n + 1000
    })
    .api_name("slow");
    app.build().unwrap()
}

#[tokio::test]
async fn failing_handlers_fail_only_their_event_and_change_nothing() {
    let settings = Settings {
        // Sync handlers run on the blocking pool while the time-out runs, and with
        // RUST_BACKTRACE=1 the panic hook symbolises a backtrace before the panic
        // reaches the engine: 300 ms was not always enough for that.
        event_timeout: Duration::from_secs(3),
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![faulty_app()]).await;
    let config = server.config("faulty").await;
    let session = server.start_session("faulty").await;
    let count = component(&config, "Count");
    let bump = listener_named(&config, "bump");
    let r = server
        .event("faulty", &session, bump, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(value_of(&r, count), Some(json!(1.0)));

    let outcome = server
        .event(
            "faulty",
            &session,
            listener_named(&config, "panic"),
            vec![Value::Null],
        )
        .await;
    let body = assert_error(outcome, 500, ErrorKind::HandlerFailed);
    assert!(
        !body.message.contains("hunter2"),
        "panic payloads stay in the server log"
    );

    let outcome = server
        .event(
            "faulty",
            &session,
            listener_named(&config, "refuse"),
            vec![Value::Null, json!("no stock")],
        )
        .await;
    // The handler's own error is the app speaking (422), told apart from the panic
    // above (500): a monitor counts only the fault.
    let body = assert_error(outcome, 422, ErrorKind::HandlerError);
    assert!(
        body.message.contains("refused: no stock"),
        "{}",
        body.message
    );

    let outcome = server
        .event(
            "faulty",
            &session,
            listener_named(&config, "slow"),
            vec![Value::Null],
        )
        .await;
    assert_error(outcome, 504, ErrorKind::Timeout);

    // The server still serves, and the state is as the last successful event left it.
    let r = server
        .event("faulty", &session, bump, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(value_of(&r, count), Some(json!(2.0)));
    let other = server.start_session("faulty").await;
    let r = server
        .event("faulty", &other, bump, vec![Value::Null])
        .await
        .unwrap();
    assert_eq!(value_of(&r, count), Some(json!(1.0)));
    server.stop().await;
}

#[tokio::test]
async fn build_rejects_wiring_the_server_cannot_run() {
    let mut app = Blocks::new("bad", "Bad");
    let state = app.state(State::new(0i64));
    let text = app.add(Textbox::new().label("Text"));
    // A state's change listener runs on the server, which never has the textbox's value.
    app.change(state, text, text, |t: String| t);
    let error = app.build().unwrap_err();
    assert!(error.message.contains("only the client holds"), "{error}");

    let mut app = Blocks::new("bad2", "Bad");
    let text = app.add(Textbox::new().label("Text"));
    app.unload((), text, || "bye".to_owned());
    assert!(app.build().is_err(), "unload cannot write a component");

    assert!(Blocks::new("Not An Id", "x").build().is_err());

    // An api_name is a URL segment and an MCP tool name: a short word, no spaces or
    // slashes; and an unload listener is run by the server alone, never called.
    for bad in [
        "",
        "add items",
        "add/items",
        "../x",
        &"x".repeat(65),
        "ümlaut",
    ] {
        let mut app = Blocks::new("bad3", "Bad");
        let go = app.add(Button::new("Go"));
        let shown = app.add(Textbox::new().label("Shown"));
        app.click(go, (), shown, || "x".to_owned()).api_name(bad);
        let error = app.build().unwrap_err();
        assert!(error.message.contains("api name"), "{bad:?}: {error}");
    }
    let mut app = Blocks::new("bad4", "Bad");
    let state = app.state(State::new(0i64));
    app.unload((), state, || 1i64).api_name("on_unload");
    let error = app.build().unwrap_err();
    assert!(error.message.contains("api name"), "{error}");

    let duplicate = keepsake::Server::new(
        Settings::default(),
        [
            demos::shopping_cart().unwrap(),
            demos::shopping_cart().unwrap(),
        ],
    );
    assert!(duplicate.is_err());
}

#[test]
fn build_rejects_tabs_out_of_place() {
    let mut app = Blocks::new("tabs1", "Bad");
    app.tab("Lost", |app| {
        app.add(Textbox::new().label("Text"));
    });
    let error = app.build().unwrap_err();
    assert!(error.message.contains("not inside `tabs`"), "{error}");

    let mut app = Blocks::new("tabs2", "Bad");
    app.tabs(|app| {
        app.add(Textbox::new().label("Text"));
    });
    let error = app.build().unwrap_err();
    assert!(error.message.contains("only tabs"), "{error}");

    let mut app = Blocks::new("tabs3", "Good");
    app.tabs(|app| {
        app.tab("One", |app| {
            app.add(Textbox::new().label("Text"));
        });
    });
    assert!(app.build().is_ok());
}
