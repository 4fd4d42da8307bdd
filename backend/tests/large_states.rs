//! Session states held in a `keepsake::List`, against a real server on 127.0.0.1:0
//! (and on Redis when the suite runs there): the engine's guarantees hold for it as
//! for any value, although it measures and compares a `List` without walking it.
#![allow(clippy::unwrap_used)]

mod support;

use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::SessionId;
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::EventResult;
use keepsake::{Blocks, List, Settings, State};
use serde_json::{Value, json};
use support::*;

/// A log: "append" adds the text, "fill" makes it that many items long, "set_last"
/// replaces the last item, "same" returns it as it is, "fail" changes it and fails.
/// Its `.change` listener shows the length in "Length".
fn log_app() -> keepsake::App {
    let mut app = Blocks::new("log", "Log");
    let log = app.state(State::new(List::<String>::new()));
    let text = app.add(Textbox::new().label("Text"));
    let count = app.add(Number::new().label("Count"));
    let length = app.add(Number::new().label("Length"));
    let buttons: Vec<_> = ["Append", "Fill", "Set last", "Same", "Fail"]
        .into_iter()
        .map(|label| app.add(Button::new(label)))
        .collect();
    app.click(
        buttons[0],
        (log, text),
        log,
        |mut log: List<String>, text: String| {
            log.push_back(text);
            log
        },
    )
    .api_name("append");
    app.click(buttons[1], count, log, |n: f64| {
        (0..n as usize)
            .map(|i| format!("item {i:04}"))
            .collect::<List<String>>()
    })
    .api_name("fill");
    app.click(
        buttons[2],
        (log, text),
        log,
        |mut log: List<String>, text: String| {
            let last = log.len().saturating_sub(1);
            log.set(last, text);
            log
        },
    )
    .api_name("set_last");
    app.click(buttons[3], log, log, |log: List<String>| log)
        .api_name("same");
    app.click(
        buttons[4],
        log,
        log,
        |mut log: List<String>| -> Result<List<String>, String> {
            log.push_back("never stored".into());
            Err("failed after changing its copy".into())
        },
    )
    .api_name("fail");
    app.change(log, log, length, |log: List<String>| log.len() as f64);
    app.build().unwrap()
}

struct Log {
    server: TestServer,
    session: SessionId,
    config: keepsake::protocol::config::AppConfig,
}

impl Log {
    async fn start(settings: Settings) -> Log {
        let server = TestServer::start(settings, vec![log_app()]).await;
        let session = server.start_session("log").await;
        let config = server.config("log").await;
        Log {
            server,
            session,
            config,
        }
    }

    async fn run(
        &self,
        listener: &str,
        argument: Value,
    ) -> Result<EventResult, (u16, keepsake::protocol::error::ErrorBody)> {
        let id = listener_named(&self.config, listener);
        let inputs = match listener {
            "append" | "set_last" => vec![Value::Null, argument],
            "fill" => vec![argument],
            _ => vec![Value::Null],
        };
        self.server.event("log", &self.session, id, inputs).await
    }

    /// Runs `listener`; the length its `.change` listener showed, if it ran.
    async fn changed(&self, listener: &str, argument: Value) -> Option<usize> {
        let result = self.run(listener, argument).await.unwrap();
        let length = component(&self.config, "Length");
        value_of(&result, length).map(|v| v.as_f64().unwrap() as usize)
    }
}

#[tokio::test]
async fn change_fires_exactly_when_a_list_states_content_changed() {
    let log = Log::start(fast_settings()).await;
    assert_eq!(log.changed("append", json!("a")).await, Some(1));
    assert_eq!(log.changed("same", Value::Null).await, None);
    assert_eq!(log.changed("set_last", json!("a")).await, None, "same item");
    assert_eq!(log.changed("set_last", json!("b")).await, Some(1));

    // Several chunks: one item changed to another of the same length, deep inside
    // the last chunk the copy shares with the stored list.
    assert_eq!(log.changed("fill", json!(300)).await, Some(300));
    assert_eq!(log.changed("set_last", json!("item 0299")).await, None);
    assert_eq!(log.changed("set_last", json!("item 9999")).await, Some(300));
    assert_eq!(log.changed("set_last", json!("item 9999")).await, None);
    assert_eq!(log.changed("fill", json!(300)).await, Some(300), "rebuilt");
    assert_eq!(
        log.changed("fill", json!(300)).await,
        None,
        "equal, not shared"
    );
    log.server.stop().await;
}

#[tokio::test]
async fn a_list_state_over_the_limit_is_refused_and_left_unchanged() {
    let settings = Settings {
        max_state_bytes: 200,
        ..fast_settings()
    };
    let log = Log::start(settings).await;
    assert_eq!(log.changed("append", json!("short")).await, Some(1));
    // 2 + 7 ("short") + 1 + 188 + 2 quotes = 200: just within.
    let fits = "x".repeat(188);
    assert_eq!(log.changed("append", json!(fits)).await, Some(2));
    assert_error(
        log.run("append", json!("y")).await,
        413,
        ErrorKind::StateTooLarge,
    );
    // Replacing the long item with a shorter one fits again; the refused one never
    // landed.
    assert_eq!(log.changed("set_last", json!("z")).await, Some(2));
    assert_eq!(log.changed("append", json!("w")).await, Some(3));
    log.server.stop().await;
}

#[tokio::test]
async fn a_listener_that_fails_after_changing_its_list_writes_nothing() {
    let log = Log::start(fast_settings()).await;
    assert_eq!(log.changed("fill", json!(100)).await, Some(100));
    assert_error(
        log.run("fail", Value::Null).await,
        422,
        ErrorKind::HandlerError,
    );
    assert_eq!(log.changed("append", json!("next")).await, Some(101));
    log.server.stop().await;
}
