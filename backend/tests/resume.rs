//! A dropped connection loses nothing, on the memory store or Redis, a real server on
//! 127.0.0.1: a client that comes back for a streamed reply
//! (`POST .../replies/{reply}`, the lines after those it holds) gets each line
//! exactly once, and the words it shows are the reply's, none lost or doubled; Stop
//! stops a reply whose client is away, and the client that comes back sees it end;
//! with Redis, another instance gives the rest; a reply is kept for the resume window
//! after it ended, then forgotten; a resume that names what does not exist is refused
//! clearly; a listener that stops when abandoned is stopped once nobody has read its
//! reply for the window, and only then.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures::StreamExt;
use keepsake::components::{Button, Textbox};
use keepsake::protocol::api::{self, Endpoint as _};
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::protocol::event::{EventRequest, Resume, StreamedEvent};
use keepsake::protocol::holding::Holding;
use keepsake::protocol::{AppId, ReplyId, SessionId};
use keepsake::{Blocks, Settings, State, Streaming};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, on_redis, value_of};

/// The reply: 60 words, 20 ms apart.
const WORDS: usize = 60;
const STEP: Duration = Duration::from_millis(20);

/// The "big" reply: 200 values of 100 KB, 20 MB of lines, past the 16 MiB a reply
/// keeps for resuming.
const BIG_ITEMS: usize = 200;
const BIG_BYTES: usize = 100 * 1024;

fn words(n: usize) -> String {
    (1..=n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "tell" streams the words into a textbox and a state; "stop" stops it; "read"
/// reports the state.
fn app() -> keepsake::App {
    let mut app = Blocks::new("story", "Story");
    let reply = app.add(Textbox::new().label("Reply"));
    let report = app.add(Textbox::new().label("Report"));
    let kept = app.state(State::new(String::from("nothing yet")));
    let (tell, stop, read) = (
        app.add(Button::new("Tell")),
        app.add(Button::new("Stop")),
        app.add(Button::new("Read")),
    );
    let told = app
        .click(tell, (), (reply, kept), telling)
        .api_name("tell")
        .id();
    let tell_while_read = app.add(Button::new("Tell while read"));
    app.click(tell_while_read, (), (reply, kept), telling)
        .api_name("tell_while_read")
        .stop_when_abandoned();
    // Large values that do not grow by appending: each line carries one whole.
    let big = app.add(Button::new("Big"));
    app.click(big, (), reply, || {
        Streaming::new(futures::stream::iter(0..BIG_ITEMS).then(|n| async move {
            tokio::task::yield_now().await;
            char::from(b'a' + (n % 26) as u8)
                .to_string()
                .repeat(BIG_BYTES)
        }))
    })
    .api_name("big");
    app.click(stop, (), (), || ())
        .cancels([told])
        .api_name("stop");
    app.click(read, kept, report, |kept: String| kept)
        .api_name("read");
    app.build().unwrap()
}

fn telling() -> Streaming<(String, String)> {
    Streaming::new(futures::stream::iter(1..=WORDS).then(|n| async move {
        tokio::time::sleep(STEP).await;
        (words(n), words(n))
    }))
}

fn request(server: &keepsake::protocol::config::AppConfig, name: &str) -> EventRequest {
    EventRequest {
        listener: listener_named(server, name),
        inputs: Vec::new(),
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    }
}

/// Starts "tell" and reads `lines` whole lines of its answer, then drops the
/// connection: the reply's id and the lines read.
async fn tell_and_cut(
    server: &TestServer,
    session: &SessionId,
    lines: usize,
) -> (ReplyId, Vec<String>) {
    cut(server, session, "tell", lines).await
}

/// Starts `listener` and reads `lines` whole lines of its answer, then drops the
/// connection: the reply's id and the lines read.
async fn cut(
    server: &TestServer,
    session: &SessionId,
    listener: &str,
    lines: usize,
) -> (ReplyId, Vec<String>) {
    let config = server.config("story").await;
    let response = server
        .send_streamed("story", session, &request(&config, listener))
        .await;
    assert!(response.status().is_success());
    let reply: ReplyId = response.headers()[api::REPLY_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while text.matches('\n').count() < lines {
        text.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    // Whole lines only: what came after the last newline is lost with the
    // connection, as a page loses it.
    let read: Vec<String> = text
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(str::to_owned)
        .collect();
    drop(body);
    (reply, read)
}

/// `POST .../replies/{reply}` with `after`: the lines, or the refusal.
async fn resume(
    server: &TestServer,
    session: &SessionId,
    reply: ReplyId,
    after: usize,
) -> Result<Vec<String>, (u16, ErrorBody)> {
    let path = api::ResumeReply::path(&(AppId("story".into()), *session, reply));
    let response = reqwest::Client::new()
        .post(server.url(&path))
        .json(&Resume {
            after: after as u64,
        })
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err((status, response.json().await.unwrap()));
    }
    let body = response.text().await.unwrap();
    Ok(body.split_inclusive('\n').map(str::to_owned).collect())
}

/// What a page shows after applying `lines` in order, as it applies them: each
/// shown value of the reply, and the outcome's.
fn shown(server_config: &keepsake::protocol::config::AppConfig, lines: &[String]) -> Vec<Value> {
    let reply = component(server_config, "Reply");
    let mut holding = Holding::default();
    let mut seen = Vec::new();
    for line in lines {
        let updates = match serde_json::from_str(line).unwrap() {
            StreamedEvent::Partial(partial) => partial.updates,
            StreamedEvent::Done(result) => result.updates,
            StreamedEvent::Failed(error) => panic!("the reply failed: {error:?}"),
        };
        for mut update in updates {
            holding.resolve(&mut update).expect("changes that apply");
            if update.component == reply {
                seen.push(update.value.unwrap());
            }
        }
    }
    seen
}

/// Settings for instances that share one Redis namespace (the suite's Redis, a
/// namespace of the test's own): what one seals or keeps, the others read.
fn shared_redis() -> Settings {
    Settings {
        store: std::env::var("KEEPSAKE_TEST_REDIS").unwrap(),
        store_namespace: format!("test-resume-{}", rand::random::<u64>()),
        ..fast_settings()
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_comes_back_gets_each_line_once() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("story").await;
    let session = server.start_session("story").await;

    let (reply, before) = tell_and_cut(&server, &session, 5).await;
    // Away for a while: the reply runs on meanwhile.
    tokio::time::sleep(STEP * 10).await;
    let rest = resume(&server, &session, reply, before.len())
        .await
        .unwrap();
    let mut read = before.clone();
    read.extend(rest);

    // Each word once, in order, and the last line is the outcome.
    let values = shown(&config, &read);
    let expected: Vec<Value> = (1..=WORDS).map(|n| json!(words(n))).collect();
    assert_eq!(values[..values.len() - 1], expected[..]);
    assert_eq!(values.last(), Some(&json!(words(WORDS))));
    assert!(read.last().unwrap().starts_with("{\"done\""));
    // As the reply was sent: the lines cut and resumed are the answer's own.
    let whole = resume(&server, &session, reply, 0).await.unwrap();
    assert_eq!(read, whole);
    // Resuming at its end gives nothing more.
    assert_eq!(
        resume(&server, &session, reply, whole.len()).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(stored(&server, &session).await, json!(words(WORDS)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_stops_a_reply_whose_client_is_away() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("story").await;
    let session = server.start_session("story").await;

    let (reply, before) = tell_and_cut(&server, &session, 5).await;
    server
        .event(
            "story",
            &session,
            listener_named(&config, "stop"),
            Vec::new(),
        )
        .await
        .unwrap();
    let rest = tokio::time::timeout(
        STEP * (WORDS as u32) / 2,
        resume(&server, &session, reply, before.len()),
    )
    .await
    .expect("a stopped reply ends at once")
    .unwrap();
    let mut read = before;
    read.extend(rest);
    let values = shown(&config, &read);
    let last = values.last().unwrap().as_str().unwrap().to_owned();
    let count = last.split_whitespace().count();
    assert!((5..WORDS).contains(&count), "stopped after {count} words");
    assert_eq!(last, words(count));
    // What was streamed is what landed.
    assert_eq!(stored(&server, &session).await, json!(last));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_what_is_not_there_is_refused() {
    let settings = Settings {
        resume_window: Duration::from_millis(300),
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app()]).await;
    let session = server.start_session("story").await;
    let other = server.start_session("story").await;

    let (reply, _) = tell_and_cut(&server, &session, 2).await;
    let refused = |outcome: Result<Vec<String>, (u16, ErrorBody)>| match outcome {
        Err((status, body)) => (status, body.error),
        Ok(lines) => panic!("resumed: {lines:?}"),
    };
    assert_eq!(
        refused(resume(&server, &session, ReplyId(12345), 0).await),
        (404, ErrorKind::UnknownReply)
    );
    // Another session's reply is not this one's.
    assert_eq!(
        refused(resume(&server, &other, reply, 0).await),
        (404, ErrorKind::UnknownReply)
    );
    assert_eq!(
        refused(resume(&server, &session, reply, 10_000).await),
        (400, ErrorKind::BadRequest)
    );
    // After it ended, it is kept for the window, then forgotten.
    let whole = resume(&server, &session, reply, 0).await.unwrap();
    assert!(whole.last().unwrap().starts_with("{\"done\""));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        refused(resume(&server, &session, reply, 0).await),
        (404, ErrorKind::UnknownReply)
    );
    server.stop().await;
}

/// With Redis, a page that comes back through another instance (a balancer that
/// does not keep it on one) gets the rest from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instance_gives_the_rest() {
    if !on_redis() {
        // In memory, a reply lives on its own instance only.
        return;
    }
    let settings = shared_redis();
    let first = TestServer::start(settings.clone(), vec![app()]).await;
    let second = TestServer::start(settings, vec![app()]).await;
    let config = first.config("story").await;
    let session = first.start_session("story").await;

    let (reply, before) = tell_and_cut(&first, &session, 5).await;
    let rest = resume(&second, &session, reply, before.len())
        .await
        .unwrap();
    let mut read = before;
    read.extend(rest);
    let values = shown(&config, &read);
    let expected: Vec<Value> = (1..=WORDS).map(|n| json!(words(n))).collect();
    assert_eq!(values[..values.len() - 1], expected[..]);
    assert!(read.last().unwrap().starts_with("{\"done\""));
    // Line for line what the first instance sent.
    assert_eq!(read, resume(&first, &session, reply, 0).await.unwrap());
    assert_eq!(stored(&second, &session).await, json!(words(WORDS)));
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_nobody_reads_is_stopped_when_its_listener_says_so() {
    let settings = Settings {
        resume_window: Duration::from_millis(200),
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app()]).await;
    let config = server.config("story").await;

    // Read to the end (longer than the window): not abandoned, it lands whole.
    let session = server.start_session("story").await;
    let lines = server
        .stream_event("story", &session, &request(&config, "tell_while_read"))
        .await
        .unwrap();
    assert!(matches!(lines.last(), Some(StreamedEvent::Done(_))));
    assert_eq!(stored(&server, &session).await, json!(words(WORDS)));

    // Left after five lines: stopped a window later, what it streamed kept. The
    // session's next event waits for it, so it reads the stopped reply.
    let session = server.start_session("story").await;
    cut(&server, &session, "tell_while_read", 5).await;
    let kept = stored(&server, &session).await;
    let count = kept.as_str().unwrap().split_whitespace().count();
    assert!(
        (5..WORDS).contains(&count),
        "an abandoned reply ran on to {count} words"
    );
    assert_eq!(kept, json!(words(count)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_keeps_its_last_sixteen_mebibytes_and_says_so_past_them() {
    // With Redis, a second instance reads the store's copy: it keeps the same lines.
    let settings = if on_redis() {
        shared_redis()
    } else {
        fast_settings()
    };
    let server = TestServer::start(settings.clone(), vec![app()]).await;
    let elsewhere = if on_redis() {
        Some(TestServer::start(settings, vec![app()]).await)
    } else {
        None
    };
    let session = server.start_session("story").await;
    let (reply, read) = cut(&server, &session, "big", 1).await;
    // Until it has ended: its last lines are all there.
    let whole_tail = loop {
        match resume(&server, &session, reply, BIG_ITEMS).await {
            Ok(lines) if !lines.is_empty() => break lines,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    assert!(whole_tail.last().unwrap().starts_with("{\"done\""));
    for instance in std::iter::once(&server).chain(&elsewhere) {
        // A client still at its first line is told it fell too far behind.
        match resume(instance, &session, reply, read.len()).await {
            Err((404, body)) => {
                assert_eq!(body.error, ErrorKind::UnknownReply);
                assert!(body.message.contains("no longer kept"), "{}", body.message);
            }
            other => panic!("resumed from the first line: {other:?}"),
        }
        // A client a few lines behind gets them: the newest are kept.
        let tail = resume(instance, &session, reply, BIG_ITEMS - 10)
            .await
            .unwrap();
        assert_eq!(tail.len(), 11);
        let kept: usize = tail.iter().map(String::len).sum();
        assert!(kept > 10 * BIG_BYTES);
    }
    server.stop().await;
    if let Some(elsewhere) = elsewhere {
        elsewhere.stop().await;
    }
}

/// With Redis, a line is in the store before any reader sees it: a client that read
/// a line on one instance and comes back through another at once is never told it
/// holds more lines than the reply has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_read_on_one_instance_is_there_on_another_at_once() {
    if !on_redis() {
        // In memory, a reply lives on its own instance only.
        return;
    }
    let settings = shared_redis();
    let first = TestServer::start(settings.clone(), vec![app()]).await;
    let second = TestServer::start(settings, vec![app()]).await;
    for lines in 1..=8 {
        let session = first.start_session("story").await;
        let (reply, before) = cut(&first, &session, "tell", lines).await;
        let rest = resume(&second, &session, reply, before.len()).await;
        assert!(rest.is_ok(), "after {lines} lines: {rest:?}");
    }
    first.stop().await;
    second.stop().await;
}
