//! Chained listeners (`.then`, `.success`): the server runs those that read only
//! server-side values within the event of the listener they follow, in declaration
//! order, `.then` whatever the outcome and `.success` only after a success; a failed
//! one leaves out its own writes only; those reading page values are left to the
//! page; a global a chained listener writes is locked with the event's others.
//! Runs on memory and, in the test command, on Redis.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keepsake::components::{Button, Markdown, Textbox};
use keepsake::{Blocks, Global, State};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, value_of};

/// A log state; "Go" appends "click" (or fails on demand), then:
/// `.then(a)` appends "then", `.success(b)` on that appends "success" (or fails when
/// asked), `.then(c)` after `b` appends "after-b", and "Shown" shows the log.
fn app() -> keepsake::App {
    let mut app = Blocks::new("chain", "Chain");
    let log = app.state(State::new(Vec::<String>::new()));
    let fail = app.state(State::new(String::new()));
    let mode = app.add(Textbox::new().label("Mode"));
    let shown = app.add(Markdown::new("").label("Shown"));
    let go = app.add(Button::new("Go"));
    app.click(
        go,
        (mode, log),
        (log, fail),
        |mode: String, mut log: Vec<String>| {
            if mode == "fail-click" {
                return Err("the click failed".to_owned());
            }
            log.push("click".into());
            Ok((log, mode))
        },
    )
    .api_name("go")
    .then((log, fail), log, |mut log: Vec<String>, _fail: String| {
        log.push("then".into());
        log
    })
    .success((log, fail), log, |mut log: Vec<String>, fail: String| {
        if fail == "fail-success" {
            return Err("the success listener failed".to_owned());
        }
        log.push("success".into());
        Ok(log)
    })
    .then(log, (log, shown), |mut log: Vec<String>| {
        log.push("after-success".into());
        let line = log.join(",");
        (log, line)
    });
    // Reads a page value: the page runs it, not the server.
    app.click(go, log, log, |log: Vec<String>| log)
        .then(mode, shown, |mode: String| mode);
    let show = app.add(Button::new("Show"));
    app.click(show, log, shown, |log: Vec<String>| log.join(","))
        .api_name("show");
    app.build().unwrap()
}

async fn shown(server: &TestServer, session: &keepsake::protocol::SessionId) -> Value {
    let config = server.config("chain").await;
    let result = server
        .event(
            "chain",
            session,
            listener_named(&config, "show"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    value_of(&result, component(&config, "Shown")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_chains_in_order_in_one_round_trip() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("chain").await;
    let go = listener_named(&config, "go");
    // The chained listeners are in the config, after the click, run by the server;
    // the one reading the textbox is left to the page.
    let chained: Vec<_> = config.listeners.iter().filter_map(|d| d.after).collect();
    assert_eq!(chained.len(), 4, "{chained:?}");
    assert_eq!(chained.iter().filter(|a| a.by_server).count(), 3);
    assert!(chained[0].listener == go && !chained[0].success_only);
    assert!(chained[1].success_only);

    let session = server.start_session("chain").await;
    let result = server
        .event("chain", &session, go, vec![json!("ok"), Value::Null])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, component(&config, "Shown")),
        Some(json!("click,then,success,after-success"))
    );
    let ran: Vec<u32> = result.ran.iter().map(|d| d.0).collect();
    assert_eq!(
        ran,
        vec![go.0, go.0 + 1, go.0 + 2, go.0 + 3],
        "declaration order"
    );
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_chained_listener_leaves_out_its_own_writes_and_skips_its_successors() {
    let server = TestServer::start(fast_settings(), vec![app()]).await;
    let config = server.config("chain").await;
    let go = listener_named(&config, "go");
    let session = server.start_session("chain").await;
    let result = server
        .event(
            "chain",
            &session,
            go,
            vec![json!("fail-success"), Value::Null],
        )
        .await
        .unwrap();
    // `.success` failed: recorded, its write left out; the `.then` after it ran.
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    assert_eq!(result.errors[0].listener.0, go.0 + 2);
    assert!(
        result.errors[0]
            .error
            .message
            .contains("the success listener failed")
    );
    assert_eq!(
        shown(&server, &session).await,
        json!("click,then,after-success")
    );

    // The click itself fails: nothing is written and the server runs no follower
    // (the page runs the `.then` ones, as events of their own).
    let other = server.start_session("chain").await;
    let outcome = server
        .event("chain", &other, go, vec![json!("fail-click"), Value::Null])
        .await;
    assert!(outcome.is_err());
    assert_eq!(shown(&server, &other).await, json!(""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_written_by_a_chained_listener_is_locked_with_the_event() {
    let mut app = Blocks::new("count", "Count");
    let total = app.global(Global::new(0u64));
    let seen = app.add(Markdown::new("").label("Seen"));
    let go = app.add(Button::new("Go"));
    app.click(go, (), seen, || "clicked".to_owned())
        .api_name("go")
        .then(total, total, |total: u64| async move {
            // Another event gets its turn between the read and the write.
            tokio::time::sleep(Duration::from_millis(1)).await;
            total + 1
        });
    let shown = app.add(Markdown::new("").label("Total"));
    let read = app.add(Button::new("Read"));
    app.click(read, total, shown, |total: u64| total.to_string())
        .api_name("read");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("count").await;
    let go = listener_named(&config, "go");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let session = server.start_session("count").await;
        let (client, base) = (server.client.clone(), server.url(""));
        tasks.spawn(async move {
            for _ in 0..10 {
                let response = client
                    .post(format!("{base}/api/apps/count/sessions/{session}/events"))
                    .json(&json!({ "listener": go, "inputs": [] }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let session = server.start_session("count").await;
    let result = server
        .event(
            "count",
            &session,
            listener_named(&config, "read"),
            vec![Value::Null],
        )
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, component(&config, "Total")),
        Some(json!("100"))
    );
    server.stop().await;
}

/// The page runs the chained listeners the server leaves to it, as events of their
/// own; those after an unload listener are the server's alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_may_run_a_chained_listener_but_not_one_after_unload() {
    let mut app = Blocks::new("pages", "Pages");
    let name = app.add(Textbox::new().label("Name"));
    let shown = app.add(Markdown::new("").label("Shown"));
    let count = app.state(State::new(0u32));
    let go = app.add(Button::new("Go"));
    app.click(go, (), (), || ())
        .then(name, shown, |name: String| name);
    app.unload(count, count, |n: u32| n + 1)
        .then(count, count, |n: u32| n + 1);
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let config = server.config("pages").await;
    let session = server.start_session("pages").await;
    let page_run = config.listeners[1].id;
    let result = server
        .event("pages", &session, page_run, vec![json!("Ada")])
        .await
        .unwrap();
    assert_eq!(
        value_of(&result, component(&config, "Shown")),
        Some(json!("Ada"))
    );
    let after_unload = config.listeners[3].id;
    let outcome = server
        .event("pages", &session, after_unload, vec![Value::Null])
        .await;
    assert_eq!(outcome.unwrap_err().0, 400);
    server.stop().await;
}

#[test]
fn a_chain_after_unload_may_not_need_a_page() {
    let mut app = Blocks::new("gone", "Gone");
    let name = app.add(Textbox::new().label("Name"));
    let log = app.state(State::new(0u32));
    app.unload(log, log, |n: u32| n + 1)
        .then(name, log, |_name: String| 0u32);
    let error = app.build().unwrap_err();
    assert!(
        error.to_string().contains("follows an unload listener"),
        "{error}"
    );
}
