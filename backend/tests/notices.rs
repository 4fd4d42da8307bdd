//! Messages to the user: a handler that takes a `Notifier` gives info and warning
//! notices that reach the page with the event's result (the event applies); those of
//! a listener that fails are dropped with its writes; a handler's `Err` fails the
//! event with its own message and writes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use keepsake::components::{Button, Markdown, Textbox};
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::NoticeLevel;
use keepsake::{Blocks, MAX_NOTICES, NOTIFY, Notifier, State};
use serde_json::{Value, json};
use support::{TestServer, assert_error, component, fast_settings, listener_named, value_of};

fn app() -> keepsake::App {
    let mut app = Blocks::new("notes", "Notes");
    let text = app.add(Textbox::new().label("Text"));
    let notes = app.state(State::new(Vec::<String>::new()));
    let count = app.add(Markdown::new("").label("Count"));
    let save = app.add(Button::new("Save"));
    app.click(
        save,
        (text, notes, NOTIFY),
        notes,
        |text: String, mut notes: Vec<String>, notify: Notifier| {
            match text.as_str() {
                "" => return Err("Write something first.".to_owned()),
                "noisy" => (0..MAX_NOTICES + 5).for_each(|i| notify.info(format!("note {i}"))),
                _ => notify.info(format!("Saved {text:?}.")),
            }
            notes.push(text);
            Ok(notes)
        },
    )
    .api_name("save");
    // The `.change` listener warns; when it fails, its warning goes with it.
    app.change(
        notes,
        (notes, NOTIFY),
        count,
        |notes: Vec<String>, notify: Notifier| {
            notify.warning(format!("{} notes kept.", notes.len()));
            if notes.last().is_some_and(|n| n == "break") {
                return Err("the counter broke".to_owned());
            }
            Ok(notes.len().to_string())
        },
    );
    app.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_reach_the_page_with_the_result_and_errors_write_nothing() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("notes").await;
    let save = listener_named(&config, "save");
    let session = server.start_session("notes").await;

    let result = server
        .event("notes", &session, save, vec![json!("milk"), Value::Null])
        .await
        .unwrap();
    let notices: Vec<_> = result
        .notices
        .iter()
        .map(|n| (n.listener, n.level, n.message.as_str()))
        .collect();
    let change = result.ran[1];
    assert_eq!(
        notices,
        vec![
            (save, NoticeLevel::Info, "Saved \"milk\"."),
            (change, NoticeLevel::Warning, "1 notes kept."),
        ]
    );
    assert_eq!(
        value_of(&result, component(&config, "Count")),
        Some(json!("1"))
    );

    // A failing `.change` listener: its warning is dropped with its output.
    let result = server
        .event("notes", &session, save, vec![json!("break"), Value::Null])
        .await
        .unwrap();
    assert_eq!(result.notices.len(), 1, "{:?}", result.notices);
    assert_eq!(result.errors.len(), 1);

    // A handler's error: the event fails with its message, and writes nothing.
    let error = assert_error(
        server
            .event("notes", &session, save, vec![json!(""), Value::Null])
            .await,
        422,
        ErrorKind::HandlerError,
    );
    assert_eq!(error.message, "Write something first.");
    let result = server
        .event("notes", &session, save, vec![json!("bread"), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, component(&config, "Count")),
        Some(json!("3"))
    );

    // At most MAX_NOTICES from one run.
    let result = server
        .event("notes", &session, save, vec![json!("noisy"), Value::Null])
        .await
        .unwrap();
    let from_save = result.notices.iter().filter(|n| n.listener == save).count();
    assert_eq!(from_save, MAX_NOTICES);
    server.stop().await;
}

/// Through the Gradio-compatible bridge, notices are Gradio's `log` messages, before
/// the event's end, as `gr.Info` gives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gradio_client_gets_the_notices_as_log_messages() {
    let settings = keepsake::Settings {
        gradio_api: true,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app()]).await;
    let config = server.config("notes").await;
    let save = listener_named(&config, "save");
    let hash = "notices-bridge-1";
    let joined = server
        .client
        .post(server.url("/apps/notes/gradio_api/queue/join"))
        .json(&json!({ "data": ["tea", null], "fn_index": save.0, "session_hash": hash }))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    // The stream ends by itself after the event (`close_stream`).
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        server
            .client
            .get(server.url(&format!(
                "/apps/notes/gradio_api/queue/data?session_hash={hash}"
            )))
            .send()
            .await
            .unwrap()
            .text(),
    )
    .await
    .unwrap()
    .unwrap();
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["msg"].as_str().unwrap(),
                m["level"].as_str().unwrap_or(""),
            )
        })
        .filter(|(msg, _)| *msg != "heartbeat")
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("estimation", ""),
            ("process_starts", ""),
            ("log", "info"),
            ("log", "warning"),
            ("process_completed", ""),
            ("close_stream", ""),
        ],
        "{messages:?}"
    );
    assert_eq!(messages[2]["log"], "Saved \"tea\".");
    server.stop().await;
}
