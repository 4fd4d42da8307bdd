//! Sync handlers that block, against a real server on 127.0.0.1:0: a quick handler
//! that starts blocking is sent back to the blocking threads, the event time-out
//! cuts blocking handlers off as it does async ones, and blocking handlers never
//! starve other sessions.
//!
//! Every test that could hang is bounded by `tokio::time::timeout`, so a stall is a
//! clear failure, never a stuck run.

// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keepsake::components::{Button, Number};
use keepsake::protocol::error::ErrorKind;
use keepsake::{Blocks, Settings};
use support::*;

/// The most any one test may take before it counts as hung.
const BOUND: Duration = Duration::from_secs(30);

/// Settings whose per-session rate limit never interferes with a test that sends
/// many events quickly.
fn unlimited(settings: Settings) -> Settings {
    Settings {
        max_events_per_second: 1_000_000,
        ..settings
    }
}

/// A sync handler that blocks its thread for `block`, counting its calls in `entered`.
fn blocking_app(block: Duration, entered: Arc<AtomicUsize>) -> keepsake::App {
    let mut app = Blocks::new("blocking", "Blocking");
    let slow = app.add(Button::new("Slow"));
    let quick = app.add(Button::new("Quick"));
    let out = app.add(Number::new().label("Out"));
    app.click(slow, (), out, move || {
        entered.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(block);
        1.0
    })
    .api_name("slow");
    app.click(quick, (), out, || 2.0).api_name("quick");
    app.build().unwrap()
}

fn short_timeout() -> Settings {
    Settings {
        event_timeout: Duration::from_millis(500),
        ..fast_settings()
    }
}

/// Protects: a sync handler that earned the inline path (quick many times in a row)
/// and then starts blocking holds its worker for that one run only; the engine sends
/// it back to the blocking threads, where its next blocking run is cut off at the
/// time-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_sync_handler_that_starts_blocking_is_cut_off_after_one_run() {
    let blocking = Arc::new(AtomicBool::new(false));
    let mut app = Blocks::new("turns", "Turns");
    let go = app.add(Button::new("Go"));
    let out = app.add(Number::new().label("Out"));
    let block = blocking.clone();
    app.click(go, (), out, move || {
        if block.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1500));
        }
        1.0
    })
    .api_name("go");
    let server = TestServer::start(unlimited(short_timeout()), vec![app.build().unwrap()]).await;
    let config = server.config("turns").await;
    let go = listener_named(&config, "go");
    let session = server.start_session("turns").await;
    // Quick, again and again: the handler earns the inline path.
    for _ in 0..100 {
        server
            .event("turns", &session, go, vec![])
            .await
            .expect("quick run");
    }
    blocking.store(true, Ordering::SeqCst);
    // The one run it blocks inline: it finishes, late (the documented exception).
    let started = Instant::now();
    let first = server.event("turns", &session, go, vec![]).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "{first:?}"
    );
    // From now on it runs on the blocking threads and the time-out cuts it off.
    let started = Instant::now();
    let second = server.event("turns", &session, go, vec![]).await;
    assert_error(second, 504, ErrorKind::Timeout);
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "cut off after {:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// Protects: the event timeout applies to sync handlers too. A sync handler that
/// blocks (here 3 s, with a 500 ms timeout) is cut off: the client gets 504
/// `timeout` at about the timeout, not a success once the handler returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_sync_handler_times_out_like_an_async_one() {
    let entered = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(
        short_timeout(),
        vec![blocking_app(Duration::from_secs(3), entered)],
    )
    .await;
    let config = server.config("blocking").await;
    let session = server.start_session("blocking").await;
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        BOUND,
        server.event(
            "blocking",
            &session,
            listener_named(&config, "slow"),
            vec![],
        ),
    )
    .await
    .expect("the event never answered");
    let took = started.elapsed();
    let kind = outcome
        .as_ref()
        .map(|_| "success")
        .map_err(|(status, body)| (*status, body.error));
    assert!(
        kind == Err((504, ErrorKind::Timeout)) && took <= Duration::from_millis(1500),
        "expected 504 timeout within 1.5 s (event_timeout 500 ms); got {kind:?} after {took:?}"
    );
    server.stop().await;
}

/// Protects: blocking sync handlers do not block the server's async workers. While 4
/// sessions each run a sync handler that blocks for 2 s (more than the 500 ms
/// timeout), 20 other sessions' events on a trivial listener still answer within
/// 300 ms each. The runtime has 2 worker threads, so handlers run inline on them would
/// stall every other request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_sync_handlers_do_not_starve_other_sessions() {
    const BLOCKERS: usize = 4;
    const OTHERS: usize = 20;
    let entered = Arc::new(AtomicUsize::new(0));
    let server = Arc::new(
        TestServer::start(
            unlimited(short_timeout()),
            vec![blocking_app(Duration::from_secs(2), entered.clone())],
        )
        .await,
    );
    let config = server.config("blocking").await;
    let (slow, quick) = (
        listener_named(&config, "slow"),
        listener_named(&config, "quick"),
    );
    let mut blockers = Vec::new();
    for _ in 0..BLOCKERS {
        blockers.push(server.start_session("blocking").await);
    }
    let mut others = Vec::new();
    for _ in 0..OTHERS {
        let session = server.start_session("blocking").await;
        // Warm up: the session exists and the listener works.
        server
            .event("blocking", &session, quick, vec![])
            .await
            .unwrap();
        others.push(session);
    }

    let mut slow_events = tokio::task::JoinSet::new();
    for session in blockers {
        let server = server.clone();
        slow_events.spawn(async move { server.event("blocking", &session, slow, vec![]).await });
    }
    // Wait (blocking this thread, which is the test's own and not a runtime worker)
    // until at least two handlers block at once: as many as there are workers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while entered.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the blocking handlers never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    let latencies = tokio::time::timeout(
        BOUND,
        futures::future::join_all(others.iter().map(|session| {
            let server = &server;
            async move {
                let started = Instant::now();
                let outcome = server.event("blocking", session, quick, vec![]).await;
                (outcome.map(drop), started.elapsed())
            }
        })),
    )
    .await
    .expect("the other sessions' events never answered");
    let slowest = latencies.iter().map(|(_, took)| *took).max().unwrap();
    let failed: Vec<_> = latencies.iter().filter(|(o, _)| o.is_err()).collect();
    assert!(
        failed.is_empty(),
        "other sessions' events failed: {failed:?}"
    );
    assert!(
        slowest <= Duration::from_millis(300),
        "blocking sync handlers starved other sessions: slowest of {OTHERS} trivial events took \
         {slowest:?} (limit 300 ms); all: {:?}",
        latencies.iter().map(|(_, t)| *t).collect::<Vec<_>>()
    );

    // The blocking events themselves are cut off at the timeout.
    let outcomes = tokio::time::timeout(BOUND, slow_events.join_all())
        .await
        .expect("the blocking events never answered");
    for outcome in outcomes {
        let kind = outcome.map_err(|(status, body)| (status, body.error));
        assert_eq!(kind.map(drop), Err((504, ErrorKind::Timeout)));
    }
    if let Ok(server) = Arc::try_unwrap(server) {
        server.stop().await;
    }
}
