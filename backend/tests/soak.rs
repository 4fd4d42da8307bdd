//! Soak: for a bounded time, many clients create sessions, use them (events, some with
//! a stream open) and abandon them, against a real server. No request may fail, every
//! abandoned session must expire, and the heap must come back to its baseline: state
//! that expired is really freed. Heap bytes are counted by a counting allocator.
#![allow(clippy::unwrap_used)]

mod support;

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cap::Cap;
use keepsake::{Settings, demos};
use serde_json::{Value, json};
use support::*;

#[global_allocator]
static HEAP: Cap<System> = Cap::new(System, usize::MAX);

/// How long clients keep coming.
const SOAK: Duration = Duration::from_secs(30);
/// Clients at the same time.
const CLIENTS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_created_used_and_abandoned_leave_nothing_behind() {
    let settings = Settings {
        session_retention: Duration::from_millis(300),
        max_events_per_second: 10_000,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![demos::shopping_cart().unwrap()]).await;
    let config = server.config("shopping-cart").await;
    let add = listener_named(&config, "add_items");
    let size = component(&config, "Cart Size");

    // Warm up (connection pool, metrics, lazily built tables), then take the baseline.
    for _ in 0..50 {
        let s = server.start_session("shopping-cart").await;
        server
            .event("shopping-cart", &s, add, vec![json!(["Milk"]), Value::Null])
            .await
            .unwrap();
    }
    wait_for_no_sessions(&server).await;
    let baseline = HEAP.allocated();

    let server = Arc::new(server);
    let events = Arc::new(AtomicU64::new(0));
    let sessions = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + SOAK;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (server, events, sessions) = (server.clone(), events.clone(), sessions.clone());
        clients.spawn(async move {
            let mut round = 0usize;
            while Instant::now() < deadline {
                round += 1;
                let session = server.start_session("shopping-cart").await;
                sessions.fetch_add(1, Ordering::Relaxed);
                // Every third client keeps a page open while it works.
                let stream = if (client + round).is_multiple_of(3) {
                    Some(server.open_feed("shopping-cart", &session).await)
                } else {
                    None
                };
                let items = 1 + (client + round) % 10;
                for n in 1..=items {
                    let result = server
                        .event(
                            "shopping-cart",
                            &session,
                            add,
                            vec![json!(["Milk", "Water"]), Value::Null],
                        )
                        .await
                        .unwrap_or_else(|(status, body)| panic!("event failed: {status} {body}"));
                    assert_eq!(value_of(&result, size), Some(json!((2 * n) as f64)));
                    events.fetch_add(1, Ordering::Relaxed);
                }
                drop(stream);
            }
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.unwrap();
    }
    let peak_sessions = sessions.load(Ordering::Relaxed);
    // The clients' pooled connections (and the server's side of them) are the test's,
    // not state: close them, as the baseline had one connection.
    let mut server = Arc::into_inner(server).expect("clients done");
    server.client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_for_no_sessions(&server).await;
    let after = HEAP.allocated();
    eprintln!(
        "soak: {peak_sessions} sessions, {} events in {SOAK:?}; heap {baseline} B before, {after} B after",
        events.load(Ordering::Relaxed)
    );
    assert!(
        peak_sessions > 1_000,
        "the soak ran for real ({peak_sessions} sessions)"
    );
    // Some slack for allocator-owned caches, connection buffers and metric series;
    // a leak of ~30 B per session or event (one latency sample each) exceeds it.
    let slack = 256 * 1024;
    assert!(
        after <= baseline + slack,
        "heap did not return to baseline: {baseline} B before, {after} B after"
    );
    server.stop().await;
}

async fn wait_for_no_sessions(server: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let health = server.health().await;
        if health["live_sessions"]["shopping-cart"] == 0 {
            // Reading the metrics folds pending latency samples into their buckets,
            // as the server's periodic upkeep would a few seconds later.
            server
                .client
                .get(server.url("/metrics"))
                .send()
                .await
                .unwrap();
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sessions did not expire: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
