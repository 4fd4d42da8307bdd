//! Stop (a listener that `cancels` a streaming one), on the memory store or Redis, a
//! real server on 127.0.0.1: a stopped reply lands with what it streamed so far (or,
//! for a listener that discards when stopped, nothing); the Stop is not stuck behind
//! the stream it stops; with Redis, a Stop sent to another instance stops it too. A
//! listener that touches no session value runs while a stream holds the session.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use keepsake::components::{Button, Textbox};
use keepsake::protocol::SessionId;
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::{EventRequest, StreamedEvent};
use keepsake::protocol::holding::Holding;
use keepsake::{Blocks, Settings, State, Streaming};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, on_redis, value_of};

/// The words of the reply: 200 of them, 25 ms apart (five seconds in all).
const WORDS: usize = 200;

fn words(n: usize) -> String {
    (1..=n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "tell" streams the words into a textbox and a state; "stop" stops it; "read"
/// reports the state.
fn app(discard: bool) -> keepsake::App {
    let mut app = Blocks::new("story", "Story");
    let reply = app.add(Textbox::new().label("Reply"));
    let report = app.add(Textbox::new().label("Report"));
    let kept = app.state(State::new(String::from("nothing yet")));
    let (tell, stop, read) = (
        app.add(Button::new("Tell")),
        app.add(Button::new("Stop")),
        app.add(Button::new("Read")),
    );
    let telling = app
        .click(tell, (), (reply, kept), || {
            Streaming::new(futures::stream::iter(1..=WORDS).then(|n| async move {
                tokio::time::sleep(Duration::from_millis(25)).await;
                (words(n), words(n))
            }))
        })
        .api_name("tell");
    let telling = if discard {
        telling.discard_when_stopped()
    } else {
        telling
    }
    .id();
    app.click(stop, (), (), || ())
        .cancels([telling])
        .api_name("stop");
    app.click(read, kept, report, |kept: String| kept)
        .api_name("read");
    // Touches no session value: runs beside a stream.
    let count = app.add(Button::new("Count"));
    app.click(count, reply, report, |reply: String| {
        reply.split_whitespace().count().to_string()
    })
    .api_name("count");
    app.build().unwrap()
}

fn request(server_config: &keepsake::protocol::config::AppConfig, name: &str) -> EventRequest {
    EventRequest {
        listener: listener_named(server_config, name),
        inputs: Vec::new(),
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    }
}

/// Starts "tell" on `teller`, waits for `partials` partials, sends "stop" to
/// `stopper`, and returns the answer's last line (made whole), how long the stop
/// took to answer, and how long the stream took to end after it.
async fn tell_then_stop(
    teller: &TestServer,
    stopper: &TestServer,
    session: &SessionId,
    partials: usize,
) -> (StreamedEvent, Duration, Duration) {
    let config = teller.config("story").await;
    let response = teller
        .send_streamed("story", session, &request(&config, "tell"))
        .await;
    assert!(response.status().is_success());
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    let mut lines = Vec::new();
    let mut stopped_at = None;
    let mut stop_took = Duration::ZERO;
    let mut holding = Holding::default();
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.unwrap());
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let mut line: StreamedEvent = serde_json::from_slice(&line).unwrap();
            match &mut line {
                StreamedEvent::Partial(partial) => partial
                    .updates
                    .iter_mut()
                    .for_each(|u| holding.resolve(u).unwrap()),
                StreamedEvent::Done(result) => result
                    .updates
                    .iter_mut()
                    .for_each(|u| holding.resolve(u).unwrap()),
                StreamedEvent::Failed(_) => {}
            }
            lines.push(line);
        }
        if stopped_at.is_none() && lines.len() >= partials {
            let started = Instant::now();
            let stop = stopper
                .event(
                    "story",
                    session,
                    listener_named(&config, "stop"),
                    Vec::new(),
                )
                .await;
            assert!(stop.is_ok(), "the stop failed: {stop:?}");
            stop_took = started.elapsed();
            stopped_at = Some(Instant::now());
        }
    }
    let ended = stopped_at.map(|at| at.elapsed()).unwrap_or_default();
    (lines.pop().unwrap(), stop_took, ended)
}

async fn stored(server: &TestServer, session: &SessionId) -> Value {
    let config = server.config("story").await;
    let result = server
        .event(
            "story",
            session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    value_of(&result, component(&config, "Report")).unwrap()
}

/// The reply the final line shows.
fn final_reply(
    line: &StreamedEvent,
    server_config: &keepsake::protocol::config::AppConfig,
) -> Value {
    match line {
        StreamedEvent::Done(result) => value_of(result, component(server_config, "Reply")).unwrap(),
        other => panic!("the stream did not land: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_reply_lands_with_what_it_streamed_so_far() {
    let server = TestServer::start(fast_settings(), vec![app(false)]).await;
    let config = server.config("story").await;
    let session = server.start_session("story").await;
    let (last, stop_took, ended) = tell_then_stop(&server, &server, &session, 5).await;
    let reply = final_reply(&last, &config);
    let text = reply.as_str().unwrap();
    let count = text.split(' ').count();
    assert!(
        (5..WORDS / 2).contains(&count) && text == words(count),
        "the stopped reply: {text:?}"
    );
    // The state holds exactly the reply the page was shown last.
    assert_eq!(stored(&server, &session).await, reply);
    // Neither the stop nor the end of the stream waited for the rest of it (about
    // four seconds more).
    assert!(
        stop_took < Duration::from_secs(2),
        "the stop took {stop_took:?}"
    );
    assert!(
        ended < Duration::from_secs(2),
        "the stream ended {ended:?} after the stop"
    );
    // A stop with no stream running stops nothing and fails nothing.
    let again = server
        .event(
            "story",
            &session,
            listener_named(&config, "stop"),
            Vec::new(),
        )
        .await;
    assert!(again.is_ok());
    assert_eq!(stored(&server, &session).await, reply);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_discards_when_stopped_writes_nothing() {
    let server = TestServer::start(fast_settings(), vec![app(true)]).await;
    let session = server.start_session("story").await;
    let (last, _, ended) = tell_then_stop(&server, &server, &session, 5).await;
    match last {
        StreamedEvent::Failed(error) => assert_eq!(error.error, ErrorKind::Stopped),
        other => panic!("a discarded reply landed: {other:?}"),
    }
    assert!(ended < Duration::from_secs(2));
    assert_eq!(stored(&server, &session).await, json!("nothing yet"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_sent_to_another_instance_stops_the_stream() {
    let Ok(redis) = std::env::var("KEEPSAKE_TEST_REDIS") else {
        assert!(!on_redis());
        // One process, one instance: nothing to try on the memory store.
        return;
    };
    let settings = || Settings {
        store: redis.clone(),
        store_namespace: format!("stop-{}", std::process::id()),
        ..fast_settings()
    };
    let teller = TestServer::start(settings(), vec![app(false)]).await;
    let stopper = TestServer::start(settings(), vec![app(false)]).await;
    let config = teller.config("story").await;
    let session = teller.start_session("story").await;
    let (last, _, ended) = tell_then_stop(&teller, &stopper, &session, 5).await;
    let reply = final_reply(&last, &config);
    assert!(
        reply.as_str().unwrap().split(' ').count() < WORDS / 2,
        "{reply}"
    );
    assert!(
        ended < Duration::from_secs(2),
        "the stream ended {ended:?} after the stop"
    );
    assert_eq!(stored(&stopper, &session).await, reply);
    teller.stop().await;
    stopper.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_touching_no_session_value_runs_while_a_stream_holds_the_session() {
    let server = TestServer::start(fast_settings(), vec![app(false)]).await;
    let config = server.config("story").await;
    assert!(config.listeners[listener_named(&config, "count").0 as usize].concurrent);
    assert!(!config.listeners[listener_named(&config, "read").0 as usize].concurrent);
    let session = server.start_session("story").await;
    let response = server
        .send_streamed("story", &session, &request(&config, "tell"))
        .await;
    let mut body = response.bytes_stream();
    // The stream is under way (its first lines are in).
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"{\"partial\""), "{first:?}");
    let started = Instant::now();
    let counted = server
        .event(
            "story",
            &session,
            listener_named(&config, "count"),
            vec![json!("one two three")],
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        value_of(&counted, component(&config, "Report")),
        Some(json!("3"))
    );
    // The stream had about five seconds to go.
    assert!(
        took < Duration::from_secs(1),
        "the listener waited {took:?}"
    );
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the stream was over before the listener ran"
    );
    let last = rest
        .split(|b| *b == b'\n')
        .rfind(|line| !line.is_empty())
        .unwrap();
    assert!(last.starts_with(b"{\"done\""));
    server.stop().await;
}

#[test]
fn only_a_streaming_listener_can_be_stopped() {
    let mut app = Blocks::new("bad", "Bad");
    let out = app.add(Textbox::new());
    let go = app.add(Button::new("Go"));
    let plain = app.click(go, (), out, || String::from("done")).id();
    app.click(go, (), (), || ()).cancels([plain]);
    let error = app.build().unwrap_err();
    assert!(
        error.to_string().contains("only a stream can be stopped"),
        "{error}"
    );
}
