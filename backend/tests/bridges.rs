//! The bridges for other clients (the Gradio-compatible API and MCP), spoken by hand
//! on the wire: sessions named by a client reach nothing else, obey the same start
//! limit, capacity and retention as a page's, and bad input through either bridge is
//! refused with the same message and changes nothing. (The real clients,
//! `gradio_client` and the MCP SDK, are driven by `e2e/tests/clients.rs`.) Runs on
//! memory and, in the test command, on Redis.

#![allow(clippy::unwrap_used)]

#[path = "support/bridges.rs"]
mod bridges_support;
mod support;

use std::time::Duration;

use bridges_support::*;
use keepsake::{Settings, demos};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, value_of};

/// The attack: a Gradio client names its session after a page's session id (or any
/// name another client uses on another bridge). It gets a session of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_chosen_name_reaches_only_its_own_session() {
    let server = start(fast_settings()).await;
    let config = server.config(CART).await;
    let (add, cart_size) = (
        listener_named(&config, "add_items"),
        component(&config, "Cart Size"),
    );
    let page = server.start_session(CART).await;
    for _ in 0..2 {
        server
            .event(CART, &page, add, vec![json!(["Milk"]), Value::Null])
            .await
            .unwrap();
    }
    // The page's own id, as a session_hash: a fresh cart, not the page's (size 2).
    assert_eq!(
        size(gradio(&server, page.as_str(), json!([["Milk"], null])).await),
        json!(1.0)
    );
    assert_eq!(
        size(gradio(&server, page.as_str(), json!([["Milk"], null])).await),
        json!(2.0)
    );
    let result = server
        .event(CART, &page, add, vec![json!(["Milk"]), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, cart_size),
        Some(json!(3.0)),
        "the page's cart was reached"
    );

    // An MCP session has its own cart, whatever the Gradio bridge's clients are called.
    let mut mcp = Mcp::open(&server).await;
    assert_eq!(
        mcp.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 1.0}))
    );
    assert_eq!(
        size(gradio(&server, &mcp.session.clone(), json!([["Milk"], null])).await),
        json!(1.0)
    );
    assert_eq!(
        mcp.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 2.0}))
    );

    // A name too short to be a secret, or with characters outside the set, is refused.
    for bad in ["short", "no spaces here", "../../../etc", &"x".repeat(129)] {
        let (status, _) = gradio(&server, bad, json!([["Milk"], null]))
            .await
            .unwrap_err();
        assert_eq!(status, 400, "{bad:?}");
    }
    server.stop().await;
}

/// Bridge sessions start, count and end as a page's: the start limit per address, the
/// capacity (the least recently used is evicted) and the retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_sessions_obey_the_start_limit_capacity_and_retention() {
    let limited = Settings {
        max_session_starts_per_minute: 3,
        ..fast_settings()
    };
    let server = start(limited).await;
    for n in 0..3 {
        assert_eq!(
            size(gradio(&server, &format!("client-{n:04}"), json!([["Milk"], null])).await),
            json!(1.0)
        );
    }
    // The join itself is refused (nothing is queued for it).
    let (status, refused) = gradio(&server, "client-0003", json!([["Milk"], null]))
        .await
        .unwrap_err();
    assert_eq!(status, 429);
    assert!(refused.contains("too many sessions"), "{refused}");
    // A session that lives is no start: it goes on.
    assert_eq!(
        size(gradio(&server, "client-0000", json!([["Milk"], null])).await),
        json!(2.0)
    );
    server.stop().await;

    let small = Settings {
        session_capacity: 2,
        session_retention: Duration::from_millis(400),
        ..fast_settings()
    };
    let server = start(small).await;
    for name in ["client-aaaa", "client-bbbb"] {
        assert_eq!(
            size(gradio(&server, name, json!([["Milk"], null])).await),
            json!(1.0)
        );
    }
    // A third evicts the least recently used (aaaa): its cart starts again.
    assert_eq!(
        size(gradio(&server, "client-cccc", json!([["Milk"], null])).await),
        json!(1.0)
    );
    assert_eq!(
        size(gradio(&server, "client-aaaa", json!([["Milk"], null])).await),
        json!(1.0)
    );
    // And after the retention, a session is gone.
    assert_eq!(
        size(gradio(&server, "client-aaaa", json!([["Milk"], null])).await),
        json!(2.0)
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(
        size(gradio(&server, "client-aaaa", json!([["Milk"], null])).await),
        json!(1.0)
    );
    server.stop().await;
}

/// A barrage of bad values through both bridges: each refused, with the same message
/// by either bridge, and the cart as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_alike_by_both_bridges_and_changes_nothing() {
    let server = start(fast_settings()).await;
    let hash = "barrage-client-1";
    assert_eq!(
        size(gradio(&server, hash, json!([["Milk"], null])).await),
        json!(1.0)
    );
    let mut mcp = Mcp::open(&server).await;
    assert_eq!(
        mcp.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 1.0}))
    );

    let bad_items = [
        json!(["Nope"]),
        json!("Milk"),
        json!(5),
        json!(true),
        json!({"Milk": 1}),
        json!([["Milk"]]),
        json!([null]),
        json!(["Milk", 7]),
        json!(["x".repeat(10_000)]),
        json!([["Cereal", "Milk"], "Water"]),
    ];
    for items in &bad_items {
        let gradio_error = gradio(&server, hash, json!([items, null]))
            .await
            .unwrap()
            .unwrap_err();
        let mcp_error = mcp.call(json!({ "items": items })).await.unwrap_err();
        assert_eq!(
            gradio_error, mcp_error,
            "the bridges word {items} differently"
        );
        assert!(gradio_error.contains("Items"), "{gradio_error}");
    }
    // Shapes only one bridge has.
    for data in [
        json!([]),
        json!([["Milk"]]),
        json!([["Milk"], null, null]),
        json!("Milk"),
    ] {
        match gradio(&server, hash, data.clone()).await {
            Ok(outcome) => assert!(outcome.is_err(), "{data} was taken"),
            Err((status, _)) => assert_eq!(status, 400, "{data}"),
        }
    }
    for arguments in [
        json!({"bogus": 1}),
        json!({"items": ["Milk"], "more": true}),
    ] {
        let error = mcp.call(arguments).await.unwrap_err();
        assert!(error.contains("no parameter"), "{error}");
    }
    for body in [
        json!({}),
        json!({"data": [], "fn_index": 99, "session_hash": hash}),
        json!({"data": 1}),
    ] {
        let status = server
            .client
            .post(server.url(&format!("/apps/{CART}/gradio_api/queue/join")))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_client_error(), "{body} answered {status}");
    }
    // Nothing changed: each cart goes on from one.
    assert_eq!(
        size(gradio(&server, hash, json!([["Milk"], null])).await),
        json!(2.0)
    );
    assert_eq!(
        mcp.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 2.0}))
    );
    server.stop().await;
}

async fn endpoints_page(server: &TestServer) -> String {
    let page = server.client.get(server.url(&format!("/apps/{CART}/api")));
    page.send().await.unwrap().text().await.unwrap()
}

/// The endpoints page shows each open bridge with this server's URLs; a bridge left
/// closed is neither shown nor served.
#[tokio::test]
async fn the_endpoints_page_shows_the_open_bridges_and_closed_bridges_are_not_served() {
    let server = start(fast_settings()).await;
    let page = endpoints_page(&server).await;
    let app_url = server.url(&format!("/apps/{CART}/"));
    for expected in [
        format!("Client(&quot;{app_url}&quot;)"),
        "client.predict(items=[&quot;Cereal&quot;], api_name=&quot;/add_items&quot;)".to_owned(),
        format!("Client.connect(&quot;{app_url}&quot;)"),
        format!("curl -X POST {app_url}gradio_api/call/add_items"),
        format!("streamable_http_client(&quot;{app_url}mcp&quot;)"),
        "call_tool(&quot;add_items&quot;, {&quot;items&quot;: [&quot;Cereal&quot;]})".to_owned(),
        "Adds the chosen items to this session&#39;s cart".to_owned(),
    ] {
        assert!(page.contains(&expected), "the page lacks {expected}");
    }
    server.stop().await;

    let closed = TestServer::start(fast_settings(), vec![demos::shopping_cart().unwrap()]).await;
    let page = endpoints_page(&closed).await;
    assert!(!page.contains("gradio_client") && !page.contains("/mcp"));
    for path in ["/config", "/gradio_api/info", "/mcp"] {
        let response = closed
            .client
            .post(closed.url(&format!("/apps/{CART}{path}")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            !response.status().is_success()
                || response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
            "{path} is served with the bridge closed"
        );
    }
    closed.stop().await;
}

/// Opening MCP sessions without end cannot grow the server without end, nor lock
/// others out: each `initialize` counts as a session start against the caller's
/// address, at most `session_capacity` MCP sessions live at once, and a closed one
/// gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sessions_count_as_starts_and_are_bounded() {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "one-too-many", "version": "0"}}});
    let server = start(Settings {
        max_session_starts_per_minute: 2,
        ..fast_settings()
    })
    .await;
    let _first = Mcp::open(&server).await;
    let _second = Mcp::open(&server).await;
    let refused = Mcp::send(&server, None, init.clone()).await;
    assert_eq!(refused.status(), 429, "a third start this minute was taken");
    server.stop().await;

    let server = start(Settings {
        session_capacity: 2,
        ..fast_settings()
    })
    .await;
    let first = Mcp::open(&server).await;
    let mut second = Mcp::open(&server).await;
    let refused = Mcp::send(&server, None, init.clone()).await;
    assert_eq!(refused.status(), 429, "a third session was opened");
    assert!(refused.text().await.unwrap().contains("live MCP sessions"));
    // Calls of live sessions go on.
    assert_eq!(
        second.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 1.0}))
    );
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !Mcp::send(&server, None, init.clone())
        .await
        .status()
        .is_success()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed session's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// The attack: a request of MCP's sessionless protocol version that names a session
/// id of its own choosing. It reaches no session: each such call runs alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_made_up_mcp_session_id_reaches_no_session() {
    let server = start(fast_settings()).await;
    let mut sizes = Vec::new();
    for id in 1..=2 {
        // A complete request of the sessionless version (its `_meta` and headers).
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "add_items", "arguments": {"items": ["Milk"]},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                          "io.modelcontextprotocol/clientCapabilities": {}}}});
        let response = server
            .client
            .post(server.url(&format!("/apps/{CART}/mcp")))
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", "chosen-by-the-caller")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "add_items")
            .json(&call)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let answer = sse_data(response, |m| m.get("id").is_some())
            .await
            .pop()
            .unwrap();
        sizes.push(answer["result"]["structuredContent"]["cart_size"].clone());
    }
    // Each call runs in a fresh session: the name grew no cart.
    assert_eq!(sizes, [json!(1.0), json!(1.0)]);
    server.stop().await;
}

/// MCP's bodies are held to `--max-body-bytes` as every other request is.
#[tokio::test]
async fn mcp_bodies_obey_the_body_limit() {
    let server = start(Settings {
        max_body_bytes: 4096,
        ..fast_settings()
    })
    .await;
    let mut mcp = Mcp::open(&server).await;
    let big = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "add_items", "arguments": {"items": ["x".repeat(8192)]}}});
    let response = Mcp::send(&server, Some(&mcp.session.clone()), big).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        mcp.call(json!({"items": ["Milk"]})).await,
        Ok(json!({"cart_size": 1.0}))
    );
    server.stop().await;
}

/// A Gradio client's event stream ends when the server stops, even while one of
/// its events still runs (graceful shutdown waits for no stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gradio_event_stream_ends_when_the_server_stops() {
    use keepsake::components::{Button, Number};
    let mut app = keepsake::Blocks::new("slow", "Slow");
    let go = app.add(Button::new("Go"));
    let shown = app.add(Number::new().label("Shown"));
    app.click(go, (), shown, || async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        1.0
    })
    .api_name("slow");
    let settings = Settings {
        gradio_api: true,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![app.build().unwrap()]).await;
    let join = server
        .client
        .post(server.url("/apps/slow/gradio_api/queue/join"))
        .json(&json!({"data": [], "fn_index": 0, "session_hash": "waits-for-ever"}))
        .send()
        .await
        .unwrap();
    assert_eq!(join.status(), 200);
    let stream = server
        .client
        .get(server.url("/apps/slow/gradio_api/queue/data?session_hash=waits-for-ever"))
        .send()
        .await
        .unwrap();
    let reader = tokio::spawn(sse_data(stream, |m| m["msg"] == "close_stream"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Fails (after 10 s) if the stream holds the shutdown up.
    server.stop().await;
    let messages = reader.await.unwrap();
    assert_eq!(
        messages.last().map(|m| m["msg"].clone()),
        Some(json!("close_stream"))
    );
}

/// A two-step call whose request is wrong is answered at once (400), and nothing is
/// kept for a later `GET`.
#[tokio::test]
async fn a_wrong_two_step_call_is_its_own_answer() {
    let server = start(fast_settings()).await;
    for data in [json!([]), json!([["Nope"]]), json!([["Milk"], null])] {
        let response = server
            .client
            .post(server.url(&format!("/apps/{CART}/gradio_api/call/add_items")))
            .json(&json!({ "data": data }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{data}");
    }
    server.stop().await;
}
