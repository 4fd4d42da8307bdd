//! Streams as long replies need them (memory or Redis store, a real server on
//! 127.0.0.1): `--event-timeout` bounds the wait for each item, not the whole
//! stream (`--stream-timeout` bounds the whole: `streaming.rs` tries it);
//! `--max-stream-items` bounds the count; and
//! with Redis the session's lease is renewed while a stream runs, so one longer
//! than the lease still commits. Partials are coalesced to
//! `--max-partials-per-second`, a held one sent when its turn comes, the last always
//! sent. Whatever fails
//! writes nothing.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::SessionId;
use keepsake::protocol::error::ErrorKind;
use keepsake::protocol::event::{EventRequest, StreamedEvent};
use keepsake::{Blocks, Settings, State, Streaming};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, value_of};

/// Items `1..=count`, each `step` after the one before; with `pause_after`, one
/// long pause after that item.
fn items(
    count: u64,
    step: Duration,
    pause_after: Option<(u64, Duration)>,
) -> impl futures::Stream<Item = u64> + Send {
    futures::stream::iter(1..=count).then(move |n| async move {
        if !step.is_zero() {
            tokio::time::sleep(step).await;
        }
        if let Some((after, pause)) = pause_after
            && n == after + 1
        {
            tokio::time::sleep(pause).await;
        }
        n
    })
}

/// How each stream of the app runs: count, step, and an optional pause.
#[derive(Clone, Copy)]
struct Shape {
    count: u64,
    step: Duration,
    pause_after: Option<(u64, Duration)>,
}

/// One streaming listener, "run", which counts to `shape.count` into a textbox and
/// a state; "read" reports the state.
fn app(shape: Shape) -> keepsake::App {
    let mut app = Blocks::new("long", "Long streams");
    let shown = app.add(Textbox::new().label("Shown"));
    let report = app.add(Number::new().label("Report"));
    let last = app.state(State::new(0u64));
    let run = app.add(Button::new("Run"));
    let read = app.add(Button::new("Read"));
    app.click(run, (), (shown, last), move || {
        Streaming::new(
            items(shape.count, shape.step, shape.pause_after).map(|n| (n.to_string(), n)),
        )
    })
    .api_name("run");
    app.click(read, last, report, |n: u64| n as f64)
        .api_name("read");
    app.build().unwrap()
}

/// The streamed answer's lines.
async fn run(server: &TestServer, session: &SessionId) -> Vec<StreamedEvent> {
    let config = server.config("long").await;
    let request = EventRequest {
        listener: listener_named(&config, "run"),
        inputs: Vec::new(),
        held: Vec::new(),
        rendered: None,
        shown: Vec::new(),
    };
    server
        .stream_event("long", session, &request)
        .await
        .unwrap()
}

/// The state's committed value.
async fn stored(server: &TestServer, session: &SessionId) -> Value {
    let config = server.config("long").await;
    let result = server
        .event(
            "long",
            session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    value_of(&result, component(&config, "Report")).unwrap()
}

fn partials(lines: &[StreamedEvent]) -> usize {
    shown(lines).len()
}

/// The numbers the partials showed, in order.
fn shown(lines: &[StreamedEvent]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|line| match line {
            StreamedEvent::Partial(partial) => Some(partial),
            _ => None,
        })
        .flat_map(|partial| &partial.updates)
        .filter_map(|update| update.value.as_ref()?.as_str()?.parse().ok())
        .collect()
}

/// The failure the answer ends with: its kind and message.
fn failure(lines: &[StreamedEvent]) -> (ErrorKind, String) {
    match lines.last() {
        Some(StreamedEvent::Failed(body)) => (body.error, body.message.clone()),
        other => panic!("expected a failure last, got {other:?}"),
    }
}

fn committed(lines: &[StreamedEvent]) -> bool {
    matches!(lines.last(), Some(StreamedEvent::Done(_)))
}

async fn served(settings: Settings, shape: Shape) -> (TestServer, SessionId) {
    let server = TestServer::start(settings, vec![app(shape)]).await;
    let session = server.start_session("long").await;
    (server, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_twenty_thousand_items_completes_and_commits() {
    let shape = Shape {
        count: 20_000,
        step: Duration::ZERO,
        pause_after: None,
    };
    let (server, session) = served(fast_settings(), shape).await;
    let lines = run(&server, &session).await;
    assert!(committed(&lines), "{:?}", lines.last());
    let numbers = shown(&lines);
    assert!(!numbers.is_empty());
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    assert_eq!(stored(&server, &session).await, json!(20_000.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_lasting_three_event_timeouts_with_items_flowing_commits() {
    let event_timeout = Duration::from_millis(300);
    let settings = Settings {
        event_timeout,
        ..fast_settings()
    };
    // Twelve items 100 ms apart: 1.2 s, four time-outs, never a gap of one.
    let shape = Shape {
        count: 12,
        step: Duration::from_millis(100),
        pause_after: None,
    };
    let (server, session) = served(settings, shape).await;
    let started = Instant::now();
    let lines = run(&server, &session).await;
    assert!(started.elapsed() >= event_timeout * 3);
    assert!(committed(&lines), "{:?}", lines.last());
    assert_eq!(stored(&server, &session).await, json!(12.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_silent_for_longer_than_the_event_timeout_fails_and_writes_nothing() {
    let event_timeout = Duration::from_millis(300);
    let settings = Settings {
        event_timeout,
        ..fast_settings()
    };
    // Two items at once, then silence for twice the time-out.
    let shape = Shape {
        count: 3,
        step: Duration::ZERO,
        pause_after: Some((2, event_timeout * 2)),
    };
    let (server, session) = served(settings, shape).await;
    let lines = run(&server, &session).await;
    assert_eq!(partials(&lines), 2);
    let (kind, message) = failure(&lines);
    assert_eq!(kind, ErrorKind::Timeout);
    assert!(message.contains("yielded nothing for 300ms"), "{message}");
    assert_eq!(stored(&server, &session).await, json!(0.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_items_than_max_stream_items_fail_and_write_nothing() {
    let settings = Settings {
        max_stream_items: 10,
        ..fast_settings()
    };
    let exactly = Shape {
        count: 10,
        step: Duration::ZERO,
        pause_after: None,
    };
    let (server, session) = served(settings.clone(), exactly).await;
    assert!(committed(&run(&server, &session).await));
    assert_eq!(stored(&server, &session).await, json!(10.0));
    server.stop().await;

    let one_more = Shape {
        count: 11,
        ..exactly
    };
    let (server, session) = served(settings, one_more).await;
    let lines = run(&server, &session).await;
    let (kind, message) = failure(&lines);
    assert_eq!(kind, ErrorKind::LimitExceeded);
    assert!(message.contains("more than 10 items"), "{message}");
    assert_eq!(stored(&server, &session).await, json!(0.0));
    server.stop().await;
}

/// With Redis, a lease lasts `--event-timeout` + 5 s unless renewed: a stream of
/// 7 s at a 1 s time-out outlives it, and commits only because it is renewed (the
/// commit script finds a lost lease and fails the event). On memory, where nothing
/// runs out, it commits as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_the_lease_still_commits() {
    let settings = Settings {
        event_timeout: Duration::from_secs(1),
        ..fast_settings()
    };
    let shape = Shape {
        count: 28,
        step: Duration::from_millis(250),
        pause_after: None,
    };
    let (server, session) = served(settings, shape).await;
    let started = Instant::now();
    let lines = run(&server, &session).await;
    assert!(started.elapsed() > Duration::from_secs(6));
    assert!(committed(&lines), "{:?}", lines.last());
    assert_eq!(stored(&server, &session).await, json!(28.0));
    server.stop().await;
}

/// With Redis, a lease lost while a stream runs (here: taken by "another instance",
/// as if it had run out) fails the event at the next renewal, long before the stream
/// would end, and nothing is written. On memory there is no lease to lose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_lost_mid_stream_fails_the_event_at_once_and_writes_nothing() {
    let Ok(url) = std::env::var("KEEPSAKE_TEST_REDIS") else {
        return;
    };
    let namespace = format!("lost-{}", std::process::id());
    let settings = Settings {
        store: url.clone(),
        store_namespace: namespace.clone(),
        // A lease of 5.3 s, renewed every 1.77 s.
        event_timeout: Duration::from_millis(300),
        ..fast_settings()
    };
    // 40 items 100 ms apart: 4 s.
    let shape = Shape {
        count: 40,
        step: Duration::from_millis(100),
        pause_after: None,
    };
    let (server, session) = served(settings, shape).await;
    let lease = format!("{namespace}:long:lease:{}", session.as_str());
    let redis = redis::Client::open(url).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let started = Instant::now();
    let running = run(&server, &session);
    let take_over = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let taken: Option<String> = redis::cmd("SET")
            .arg(&lease)
            .arg("another instance")
            .arg("XX")
            .arg("PX")
            .arg(60_000)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(taken.as_deref(), Some("OK"), "the stream held the lease");
    };
    let (lines, ()) = tokio::join!(running, take_over);
    assert!(started.elapsed() < Duration::from_millis(3_500));
    let (kind, _) = failure(&lines);
    assert_eq!(kind, ErrorKind::LeaseLost);
    // "Another instance" lets go; the session's state is as before the stream.
    let _: i64 = redis::cmd("DEL")
        .arg(&lease)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(stored(&server, &session).await, json!(0.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_are_coalesced_to_the_rate_and_the_result_is_the_last_item() {
    let settings = Settings {
        max_partials_per_second: 10,
        ..fast_settings()
    };
    // 200 items 5 ms apart: a second's worth at 200 a second.
    let shape = Shape {
        count: 200,
        step: Duration::from_millis(5),
        pause_after: None,
    };
    let (server, session) = served(settings, shape).await;
    let started = Instant::now();
    let lines = run(&server, &session).await;
    let took = started.elapsed().as_secs_f64();
    let numbers = shown(&lines);
    // At most one partial per 100 ms, the first at once, and the last item's when
    // the stream ends; never none while it ran.
    let most = (took * 10.0).ceil() as usize + 2;
    assert!(
        (2..=most).contains(&numbers.len()),
        "{} partials in {took:.2} s",
        numbers.len()
    );
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    assert_eq!(numbers[0], 1, "the first item goes out at once");
    assert_eq!(numbers.last(), Some(&200), "the last item is always sent");
    match lines.last() {
        Some(StreamedEvent::Done(result)) => {
            let config = server.config("long").await;
            assert_eq!(
                value_of(result, component(&config, "Shown")),
                Some(json!("200"))
            );
        }
        other => panic!("expected the result last, got {other:?}"),
    }
    assert_eq!(stored(&server, &session).await, json!(200.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_partial_goes_out_when_its_turn_comes_though_the_stream_is_quiet() {
    let settings = Settings {
        max_partials_per_second: 10,
        ..fast_settings()
    };
    // Items 1 and 2 at once (2 is held: 1 was just sent), then 600 ms of quiet
    // before 3. Held until the next item, 2 would never be seen.
    let shape = Shape {
        count: 3,
        step: Duration::ZERO,
        pause_after: Some((2, Duration::from_millis(600))),
    };
    let (server, session) = served(settings, shape).await;
    let lines = run(&server, &session).await;
    assert_eq!(shown(&lines), [1, 2, 3]);
    assert!(committed(&lines));
    server.stop().await;
}
