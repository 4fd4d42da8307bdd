//! The native Rust client (`keepsake-shared`, feature `client`) and the endpoints page,
//! against a real server: list apps and endpoints, call endpoints within a session,
//! read outputs by label, get typed errors.
#![allow(clippy::unwrap_used)]

mod support;

use keepsake::demos;
use keepsake::protocol::error::ErrorKind;
use keepsake_shared::client::{Client, ClientError};
use serde_json::{Value, json};
use support::*;

#[tokio::test]
async fn the_client_lists_endpoints_and_calls_them_in_a_session() {
    let server = TestServer::start(
        fast_settings(),
        vec![
            demos::shopping_cart().unwrap(),
            demos::visitor_counter().unwrap(),
        ],
    )
    .await;
    let client = Client::new(server.base.clone());
    let apps = client.apps().await.unwrap();
    assert_eq!(apps.len(), 2);

    let cart = client.app("shopping-cart").await.unwrap();
    let add = cart
        .config()
        .endpoint("add_items")
        .expect("add_items endpoint");
    let names: Vec<&str> = add.inputs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Items", "state"]);
    assert_eq!(add.inputs[0].value_type, "array of strings");

    let session = cart.start_session().await.unwrap();
    let outputs = session
        .call("add_items", vec![json!(["Milk"]), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        outputs.get("Cart Size"),
        Some(&json!(1.0)),
        "the change listener's output comes back"
    );
    let outputs = session
        .call("add_items", vec![json!(["Water", "Cereal"]), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        outputs.get("Cart Size"),
        Some(&json!(3.0)),
        "the session keeps its cart"
    );
    let other = cart.start_session().await.unwrap();
    let outputs = other
        .call("add_items", vec![json!(["Milk"]), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        outputs.get("Cart Size"),
        Some(&json!(1.0)),
        "another session has its own"
    );

    let error = session.call("no_such_endpoint", vec![]).await.unwrap_err();
    assert!(matches!(error, ClientError::UnknownEndpoint(_)));
    let error = session
        .call("add_items", vec![json!("Milk")])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::InvalidInput));
    assert!(error.to_string().contains("input"), "{error}");
    let error = client.app("nope").await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::UnknownApp));
    server.stop().await;
}

#[tokio::test]
async fn the_endpoints_page_lists_every_endpoint_and_how_to_call_it() {
    let server = TestServer::start(fast_settings(), vec![demos::shopping_cart().unwrap()]).await;
    let response = server
        .client
        .get(server.url("/apps/shopping-cart/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert!(html.contains("<code>add_items</code>"));
    assert!(html.contains("Items") && html.contains("array of strings"));
    assert!(
        html.contains("curl -X POST http://127.0.0.1:"),
        "curl example with this server's address"
    );
    assert!(html.contains("/api/apps/shopping-cart/sessions/$SESSION/events"));
    assert!(html.contains("session.call(\"add_items\""), "Rust example");
    let missing = server
        .client
        .get(server.url("/apps/nope/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}
