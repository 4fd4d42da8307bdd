//! Streaming handlers over HTTP (a real server on 127.0.0.1, memory or Redis store):
//! partial outputs reach the client in order, component outputs only; the last item
//! is committed once; a client that goes away mid-stream does not take the event
//! with it (it runs on and lands, `resume.rs` gives the rest to a client that comes
//! back); an error mid-stream writes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use keepsake::components::{Button, Json, Textbox};
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::protocol::event::{EventRequest, EventResult, StreamedEvent};
use keepsake::protocol::{ComponentId, ListenerId, SessionId};
use keepsake::{Blocks, State, Streaming};
use serde_json::{Value, json};
use support::{TestServer, assert_error, component, fast_settings, listener_named, value_of};

/// Items of the slow stream, one every [`SLOW_STEP`]: long enough that a stream left
/// running after its client went away would still hold the session when the test
/// runs its next event.
const SLOW_ITEMS: u64 = 30;
const SLOW_STEP: Duration = Duration::from_millis(100);

fn counting(to: u64, step: Duration) -> impl futures::Stream<Item = u64> + Send {
    futures::stream::iter(1..=to).then(move |n| async move {
        tokio::time::sleep(step).await;
        n
    })
}

fn app() -> keepsake::App {
    let mut app = Blocks::new("streams", "Streams");
    let shown = app.add(Textbox::new().label("Shown"));
    let report = app.add(Json::new().label("Report"));
    let history = app.state(State::new(Vec::<u64>::new()));
    let changes = app.state(State::new(0u64));
    let count = app.add(Button::new("Count"));
    let fail = app.add(Button::new("Fail"));
    let slow = app.add(Button::new("Slow"));
    let read = app.add(Button::new("Read"));
    // Each item writes the state too: were partial items written, its `.change`
    // listener would run for each.
    app.click(count, history, (shown, history), |past: Vec<u64>| {
        Streaming::new(counting(5, Duration::from_millis(20)).map(move |n| {
            let mut seen = past.clone();
            seen.extend(1..=n);
            (n.to_string(), seen)
        }))
    })
    .api_name("count");
    app.click(fail, history, (shown, history), |past: Vec<u64>| {
        Streaming::fallible(counting(3, Duration::from_millis(20)).map(move |n| {
            let mut seen = past.clone();
            seen.extend((1..=n).map(|k| 100 + k));
            if n == 3 {
                Err("the stream broke".to_owned())
            } else {
                Ok((n.to_string(), seen))
            }
        }))
    })
    .api_name("fail");
    app.click(slow, history, (shown, history), |past: Vec<u64>| {
        Streaming::new(counting(SLOW_ITEMS, SLOW_STEP).map(move |n| {
            let mut seen = past.clone();
            seen.extend((1..=n).map(|k| 1000 + k));
            (n.to_string(), seen)
        }))
    })
    .api_name("slow");
    app.change(history, changes, changes, |n: u64| n + 1);
    app.click(
        read,
        (history, changes),
        report,
        |history: Vec<u64>, changes: u64| json!({ "history": history, "changes": changes }),
    )
    .api_name("read");
    app.build().unwrap()
}

/// A streamed event answer of `listener` (inputs left to the server): its lines
/// once the body ends, or its refusal.
async fn stream_event(
    server: &TestServer,
    session: &SessionId,
    listener: ListenerId,
) -> Result<Vec<StreamedEvent>, (u16, ErrorBody)> {
    server
        .stream_event("streams", session, &request(listener))
        .await
}

async fn send_streamed(
    server: &TestServer,
    session: &SessionId,
    listener: ListenerId,
) -> reqwest::Response {
    server
        .send_streamed("streams", session, &request(listener))
        .await
}

fn request(listener: ListenerId) -> EventRequest {
    EventRequest {
        listener,
        inputs: vec![Value::Null],
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    }
}

/// The stored history and how often its `.change` listener ran.
async fn stored(server: &TestServer, session: &SessionId) -> Value {
    let config = server.config("streams").await;
    let result = server
        .event(
            "streams",
            session,
            listener_named(&config, "read"),
            vec![Value::Null, Value::Null],
        )
        .await
        .unwrap();
    value_of(&result, component(&config, "Report")).unwrap()
}

fn partial_values(lines: &[StreamedEvent], shown: ComponentId) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| match line {
            StreamedEvent::Partial(partial) => Some(partial),
            _ => None,
        })
        .flat_map(|partial| {
            assert!(
                partial.updates.iter().all(|u| u.component == shown),
                "a partial carries component outputs only: {partial:?}"
            );
            partial.updates.iter().filter_map(|u| u.value.clone())
        })
        .collect()
}

fn done(lines: &[StreamedEvent]) -> &EventResult {
    match lines.last() {
        Some(StreamedEvent::Done(result)) => result,
        other => panic!("the answer ends with its result, not {other:?}"),
    }
}

#[tokio::test]
async fn config_marks_streaming_listeners() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let streams = |name| config.listeners[listener_named(&config, name).0 as usize].streams;
    assert!(streams("count") && streams("fail") && streams("slow"));
    assert!(!streams("read"));
    server.stop().await;
}

#[tokio::test]
async fn partials_arrive_in_order_and_the_last_item_is_stored_once() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let shown = component(&config, "Shown");
    let session = server.start_session("streams").await;
    let lines = stream_event(&server, &session, listener_named(&config, "count"))
        .await
        .unwrap();
    assert_eq!(
        partial_values(&lines, shown),
        ["1", "2", "3", "4", "5"].map(|s| json!(s))
    );
    let result = done(&lines);
    assert_eq!(value_of(result, shown), Some(json!("5")));
    assert_eq!(lines.len(), 6, "five partials, then the result");
    // The history holds the last item, and its `.change` listener ran once.
    assert_eq!(
        stored(&server, &session).await,
        json!({ "history": [1, 2, 3, 4, 5], "changes": 1 })
    );
    server.stop().await;
}

#[tokio::test]
async fn the_plain_route_answers_the_final_result_only() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let session = server.start_session("streams").await;
    let result = server
        .event(
            "streams",
            &session,
            listener_named(&config, "count"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    let shown: Vec<_> = result
        .updates
        .iter()
        .filter(|u| u.component == component(&config, "Shown"))
        .collect();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].value, Some(json!("5")));
    assert_eq!(
        stored(&server, &session).await,
        json!({ "history": [1, 2, 3, 4, 5], "changes": 1 })
    );
    server.stop().await;
}

#[tokio::test]
async fn a_listener_that_does_not_stream_answers_its_result_alone() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let session = server.start_session("streams").await;
    let read = EventRequest {
        inputs: vec![Value::Null, Value::Null],
        ..request(listener_named(&config, "read"))
    };
    let lines = server
        .stream_event("streams", &session, &read)
        .await
        .unwrap();
    assert_eq!(lines.len(), 1);
    let report = value_of(done(&lines), component(&config, "Report"));
    assert_eq!(report, Some(json!({ "history": [], "changes": 0 })));
    server.stop().await;
}

#[tokio::test]
async fn an_error_mid_stream_writes_nothing() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let session = server.start_session("streams").await;
    stream_event(&server, &session, listener_named(&config, "count"))
        .await
        .unwrap();
    let lines = stream_event(&server, &session, listener_named(&config, "fail"))
        .await
        .unwrap();
    assert_eq!(
        partial_values(&lines, component(&config, "Shown")),
        [json!("1"), json!("2")]
    );
    match lines.last() {
        Some(StreamedEvent::Failed(body)) => {
            assert_eq!(body.error, ErrorKind::HandlerError);
            assert_eq!(body.message, "the stream broke");
        }
        other => panic!("expected a failure last, got {other:?}"),
    }
    // The plain route fails the same way.
    let outcome = server
        .event(
            "streams",
            &session,
            listener_named(&config, "fail"),
            vec![Value::Null],
        )
        .await;
    assert_error(outcome, 422, ErrorKind::HandlerError);
    assert_eq!(
        stored(&server, &session).await,
        json!({ "history": [1, 2, 3, 4, 5], "changes": 1 })
    );
    server.stop().await;
}

#[tokio::test]
async fn an_error_before_the_stream_starts_is_a_plain_error_answer() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let unknown: SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    let outcome = stream_event(&server, &unknown, listener_named(&config, "count")).await;
    match outcome {
        Err((404, body)) => assert_eq!(body.error, ErrorKind::UnknownSession),
        other => panic!("expected 404 unknown_session, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_the_client_runs_on_and_lands() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("streams").await;
    let session = server.start_session("streams").await;
    stream_event(&server, &session, listener_named(&config, "count"))
        .await
        .unwrap();

    let response = send_streamed(&server, &session, listener_named(&config, "slow")).await;
    assert!(response.status().is_success());
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while text.matches('\n').count() < 2 {
        text.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    assert!(text.starts_with("{\"partial\""), "{text}");
    // The client goes away mid-stream (a phone in a tunnel).
    drop(body);

    // The reply runs on, and lands whole: the session's next event comes after it
    // and reads every item of it, its `.change` listener run once.
    let after = tokio::time::timeout(
        SLOW_STEP * (SLOW_ITEMS as u32) * 3,
        stored(&server, &session),
    )
    .await
    .expect("the cut stream ends in its own time");
    let mut history: Vec<u64> = (1..=5).collect();
    history.extend((1..=SLOW_ITEMS).map(|k| 1000 + k));
    assert_eq!(after, json!({ "history": history, "changes": 2 }));
    // And the session streams again.
    let lines = stream_event(&server, &session, listener_named(&config, "count"))
        .await
        .unwrap();
    assert_eq!(
        value_of(done(&lines), component(&config, "Shown")),
        Some(json!("5"))
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stream_longer_than_the_stream_timeout_fails_and_writes_nothing() {
    let settings = keepsake::Settings {
        stream_timeout: SLOW_STEP * 5,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app()]).await;
    let config = server.config("streams").await;
    let session = server.start_session("streams").await;
    let started = Instant::now();
    let lines = stream_event(&server, &session, listener_named(&config, "slow"))
        .await
        .unwrap();
    // The whole stream is bounded, not each item: every item came in time.
    assert!(started.elapsed() < SLOW_STEP * (SLOW_ITEMS as u32) / 2);
    assert!(!partial_values(&lines, component(&config, "Shown")).is_empty());
    match lines.last() {
        Some(StreamedEvent::Failed(body)) => {
            assert_eq!(body.error, ErrorKind::Timeout);
            assert!(body.message.contains("ran longer than 500ms"), "{body:?}");
        }
        other => panic!("expected a time-out last, got {other:?}"),
    }
    assert_eq!(
        stored(&server, &session).await,
        json!({ "history": [], "changes": 0 })
    );
    server.stop().await;
}
