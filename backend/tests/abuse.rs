//! A hostile client must not be able to evict everybody: session starts are limited
//! per client address, and capacity eviction never takes a session whose page is open.
//! Runs against the store the suite is given (memory, or Redis).

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::StreamExt;
use keepsake::protocol::api::{self, Endpoint};
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::protocol::{AppId, SessionId};
use keepsake::{Settings, demos};
use serde_json::json;
use support::{TestServer, component, fast_settings, listener_named, value_of};

const CART: &str = "shopping-cart";

/// Starts `count` sessions from `client`, 16 at a time; returns how many were
/// started and the refusals' statuses, kinds and `Retry-After` headers.
async fn start_many(
    server: &TestServer,
    client: &reqwest::Client,
    count: usize,
    forwarded_for: Option<&str>,
) -> (usize, Vec<(u16, ErrorKind, Option<String>)>) {
    let url = server.url(&api::StartSession::path(&AppId(CART.into())));
    let outcomes: Vec<_> = futures::stream::iter(0..count)
        .map(|_| {
            let mut request = client.post(&url);
            if let Some(forwarded) = forwarded_for {
                request = request.header("x-forwarded-for", forwarded);
            }
            async move {
                let response = request.send().await.expect("start request");
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                if status == 200 {
                    None
                } else {
                    let body: ErrorBody = response.json().await.expect("error body");
                    Some((status, body.error, retry_after))
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let refused: Vec<_> = outcomes.into_iter().flatten().collect();
    (count - refused.len(), refused)
}

/// A page: a session with an open stream and one item in its cart.
async fn open_page(server: &TestServer) -> (SessionId, support::MessageStream) {
    let session = server.start_session(CART).await;
    let stream = server.open_feed(CART, &session).await;
    let config = server.config(CART).await;
    let add = listener_named(&config, "add_items");
    let result = server
        .event(CART, &session, add, vec![json!(["Milk"]), json!(null)])
        .await
        .expect("the page's first add");
    assert_eq!(
        value_of(&result, component(&config, "Cart Size")),
        Some(json!(1.0))
    );
    (session, stream)
}

async fn cart_size_after_one_more(server: &TestServer, session: &SessionId) -> serde_json::Value {
    let config = server.config(CART).await;
    let add = listener_named(&config, "add_items");
    let result = server
        .event(CART, session, add, vec![json!(["Water"]), json!(null)])
        .await
        .expect("the page's session is still there");
    value_of(&result, component(&config, "Cart Size")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_thousand_starts_from_one_address_leave_an_open_page_alone() {
    // The default limits: 10,000 sessions, 120 starts a minute per address.
    let settings = Settings {
        sweep_interval: Duration::from_millis(50),
        ..Settings::default()
    };
    let server = TestServer::start(settings, vec![demos::shopping_cart().expect("demo")]).await;
    let (page, _stream) = open_page(&server).await;

    let (started, refused) = start_many(&server, &server.client, 11_000, None).await;
    // The page's own start counted too; a little refills while the loop runs.
    assert!(
        started <= 125,
        "{started} sessions started from one address"
    );
    assert!(
        started >= 100,
        "only {started} started: the limit is 120 a minute"
    );
    let (status, kind, retry_after) = refused.first().cloned().expect("refusals");
    assert_eq!((status, kind), (429, ErrorKind::LimitExceeded));
    let retry_after: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );

    // Another address still gets sessions.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .expect("client");
    let (started, refused) = start_many(&server, &other, 5, None).await;
    assert_eq!((started, refused.len()), (5, 0));

    // The open page's cart is intact.
    assert_eq!(cart_size_after_one_more(&server, &page).await, json!(2.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_evicts_closed_pages_only_and_then_refuses() {
    // No start limit to speak of: capacity alone must protect open pages.
    let settings = Settings {
        session_capacity: 50,
        max_session_starts_per_minute: 1_000_000,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![demos::shopping_cart().expect("demo")]).await;
    let (page, _stream) = open_page(&server).await;
    let (started, refused) = start_many(&server, &server.client, 11_000, None).await;
    assert_eq!((started, refused.len()), (11_000, 0), "{refused:?}");
    assert_eq!(cart_size_after_one_more(&server, &page).await, json!(2.0));

    // Fill every place with open pages: the next start is refused, nobody evicted.
    let mut pages = Vec::new();
    for _ in 0..49 {
        let session = server.start_session(CART).await;
        pages.push(server.open_feed(CART, &session).await);
    }
    let (started, refused) = start_many(&server, &server.client, 3, None).await;
    assert_eq!(started, 0);
    for (status, kind, retry_after) in &refused {
        assert_eq!((*status, *kind), (503, ErrorKind::AtCapacity));
        assert!(retry_after.is_some());
    }
    assert_eq!(cart_size_after_one_more(&server, &page).await, json!(3.0));

    // A page closes: its session can make room again.
    drop(pages.pop());
    let mut freed = false;
    for _ in 0..50 {
        let (started, _) = start_many(&server, &server.client, 1, None).await;
        if started == 1 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        freed,
        "the closed page's session was never evicted for a new one"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let limited = |trusted: bool| Settings {
        max_session_starts_per_minute: 10,
        trusted_proxies: if trusted {
            vec!["127.0.0.1/32".parse().expect("net")]
        } else {
            Vec::new()
        },
        ..fast_settings()
    };
    // Not trusted: the header is the client's own invention and changes nothing.
    let server =
        TestServer::start(limited(false), vec![demos::shopping_cart().expect("demo")]).await;
    let (first, _) = start_many(&server, &server.client, 15, Some("10.0.0.1")).await;
    let (second, _) = start_many(&server, &server.client, 5, Some("10.0.0.2")).await;
    assert!(first <= 11 && second == 0, "{first} then {second}");
    server.stop().await;

    // Behind a trusted proxy: each forwarded client has its own allowance.
    let server =
        TestServer::start(limited(true), vec![demos::shopping_cart().expect("demo")]).await;
    let (first, _) = start_many(&server, &server.client, 15, Some("10.0.0.1")).await;
    let (second, _) = start_many(&server, &server.client, 5, Some("10.0.0.2")).await;
    // A hop the proxy appended after a client's own (forged) entry: the proxy's
    // view, the last untrusted hop, is what counts.
    let (forged, _) = start_many(&server, &server.client, 5, Some("10.0.0.9, 10.0.0.1")).await;
    assert!(first <= 11, "{first}");
    assert_eq!(second, 5);
    assert_eq!(forged, 0, "a forged first hop bought a fresh allowance");
    server.stop().await;
}
