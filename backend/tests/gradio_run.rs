//! Gradio's queue-free call, `POST .../gradio_api/run/{api_name}`, spoken on the wire:
//! it runs in the session its `session_hash` names (the same one `queue/join` reaches),
//! a call without one gets a session of its own, bad input is a 4xx that changes
//! nothing, and a handler's error is Gradio's 500 with the message. Runs on memory
//! and, in the test command, on Redis.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::{Settings, demos};
use serde_json::{Value, json};
use support::{TestServer, fast_settings};

const CART: &str = "shopping-cart";

async fn start() -> TestServer {
    let settings = Settings {
        gradio_api: true,
        ..fast_settings()
    };
    TestServer::start(settings, vec![demos::shopping_cart().unwrap()]).await
}

/// One queue-free call: the answer's status and body.
async fn run(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = server
        .client
        .post(server.url(&format!("/apps/{CART}/gradio_api/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The cart size a successful call answered (outputs: the cart state, then "Cart Size").
async fn add(server: &TestServer, hash: Option<&str>, items: Value) -> Value {
    let mut body = json!({ "data": [items, null] });
    if let Some(hash) = hash {
        body["session_hash"] = hash.into();
    }
    let (status, answer) = run(server, "run/add_items", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["is_generating"], false);
    assert_eq!(answer["data"][0], Value::Null, "state stays on the server");
    answer["data"][1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_free_call_runs_in_the_session_its_hash_names() {
    let server = start().await;
    assert_eq!(
        add(&server, Some("run-client-1"), json!(["Milk", "Water"])).await,
        2.0
    );
    assert_eq!(
        add(&server, Some("run-client-1"), json!(["Milk"])).await,
        3.0
    );
    // Another name, another cart; no name, a cart per call.
    assert_eq!(
        add(&server, Some("run-client-2"), json!(["Milk"])).await,
        1.0
    );
    assert_eq!(add(&server, None, json!(["Milk"])).await, 1.0);
    assert_eq!(add(&server, None, json!(["Milk"])).await, 1.0);
    // Gradio's older spelling reaches the same session.
    let (status, answer) = run(
        &server,
        "api/add_items",
        json!({ "data": [["Cereal"], null], "session_hash": "run-client-1" }),
    )
    .await;
    assert_eq!((status, answer["data"][1].clone()), (200, json!(4.0)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_queue_free_call_is_refused_and_changes_nothing() {
    let server = start().await;
    let hash = "run-client-3";
    assert_eq!(add(&server, Some(hash), json!(["Milk"])).await, 1.0);
    for (path, data) in [
        ("run/add_items", json!([["Nope"], null])),
        ("run/add_items", json!([])),
        ("run/add_items", json!(["Milk", null])),
        ("run/no_such_endpoint", json!([["Milk"], null])),
    ] {
        let (status, answer) =
            run(&server, path, json!({ "data": data, "session_hash": hash })).await;
        assert_eq!(status, 400, "{path} {data}: {answer}");
    }
    let (status, _) = run(
        &server,
        "run/add_items",
        json!({ "data": [["Milk"], null], "session_hash": "short" }),
    )
    .await;
    assert_eq!(status, 400, "a session_hash too short to name a session");
    // The handler refuses (the cart holds at most 100 items): Gradio's 500 with the
    // handler's own message, and the cart as it was.
    let many = vec!["Milk"; 100];
    let (status, answer) = run(
        &server,
        "run/add_items",
        json!({ "data": [many, null], "session_hash": hash }),
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        answer["error"],
        "The cart holds at most 100 items; it has 1."
    );
    assert_eq!(add(&server, Some(hash), json!(["Milk"])).await, 2.0);
    server.stop().await;
}
