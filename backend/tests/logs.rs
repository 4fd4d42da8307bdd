//! What reaches the logs: session ids only shortened, no secrets, no panic payloads
//! in answers (but in the log, for the operator). Captures the server's tracing
//! output at debug level. (A weak BrowserState secret is refused at build:
//! `browser_state.rs`.)
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use keepsake::components::{Button, Textbox};
use keepsake::{Blocks, BrowserState, demos};
use serde_json::{Value, json};
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

const SECRET: &str = "the logs test's own secret, 32 bytes or more";

fn sealed_app() -> keepsake::App {
    let mut app = Blocks::new("sealed", "Sealed");
    let stored = app.browser_state(
        BrowserState::new(String::new())
            .storage_key("k")
            .secret(SECRET),
    );
    let text = app.add(Textbox::new().label("Text"));
    let save = app.add(Button::new("Save"));
    app.click(save, text, stored, |t: String| t)
        .api_name("save");
    app.build().unwrap()
}

#[tokio::test]
async fn logs_hold_short_session_ids_and_no_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start(
        fast_settings(),
        vec![demos::shopping_cart().unwrap(), sealed_app()],
    )
    .await;
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
    let _ = server
        .event(
            "shopping-cart",
            &session,
            add,
            vec![json!("bad"), Value::Null],
        )
        .await;
    let _stream = server.open_feed("shopping-cart", &session).await;
    server.stop().await;

    let logs = captured.text();
    assert!(
        logs.contains("finished processing request"),
        "with DEBUG on when the router is built, requests are traced:\n{logs}"
    );
    assert!(
        logs.contains(session.short()),
        "requests are logged with the short id:\n{logs}"
    );
    assert!(
        !logs.contains(session.as_str()),
        "a full session id reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains(SECRET),
        "the secret itself never reaches the logs"
    );
}
