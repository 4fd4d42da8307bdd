//! Production limits, security rules and operations endpoints, each against a real
//! server on 127.0.0.1:0: state size, event rate, stream count, CORS, content-type
//! sniffing, session ids only as issued, `/healthz`, `/metrics`, and a graceful
//! shutdown that lets running events finish.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keepsake::components::{Button, Number, Textbox};
use keepsake::protocol::SessionId;
use keepsake::protocol::error::ErrorKind;
use keepsake::{Blocks, Settings, State, demos};
use serde_json::{Value, json};
use support::*;

/// A notebook: "Append" adds the textbox's text to a session list; "Count" shows its
/// length; "Slow" takes a while before adding one entry.
fn notebook() -> keepsake::App {
    let mut app = Blocks::new("notebook", "Notebook");
    let notes = app.state(State::new(Vec::<String>::new()));
    let text = app.add(Textbox::new().label("Text"));
    let count = app.add(Number::new().label("Count"));
    let append = app.add(Button::new("Append"));
    let slow = app.add(Button::new("Slow"));
    app.click(
        append,
        (notes, text),
        (notes, count),
        |mut notes: Vec<String>, text: String| {
            notes.push(text);
            let len = notes.len() as f64;
            (notes, len)
        },
    )
    .api_name("append");
    app.click(
        slow,
        notes,
        (notes, count),
        |mut notes: Vec<String>| async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            notes.push("slow".into());
            let len = notes.len() as f64;
            (notes, len)
        },
    )
    .api_name("slow");
    app.build().unwrap()
}

async fn append(
    server: &TestServer,
    session: &SessionId,
    text: &str,
) -> Result<keepsake::protocol::event::EventResult, (u16, keepsake::protocol::error::ErrorBody)> {
    let config = server.config("notebook").await;
    server
        .event(
            "notebook",
            session,
            listener_named(&config, "append"),
            vec![Value::Null, json!(text)],
        )
        .await
}

#[tokio::test]
async fn a_state_larger_than_the_limit_is_refused_and_left_unchanged() {
    let settings = Settings {
        max_state_bytes: 200,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![notebook()]).await;
    let config = server.config("notebook").await;
    let count = component(&config, "Count");
    let session = server.start_session("notebook").await;
    let r = append(&server, &session, "short").await.unwrap();
    assert_eq!(value_of(&r, count), Some(json!(1.0)));

    let body = assert_error(
        append(&server, &session, &"x".repeat(300)).await,
        413,
        ErrorKind::StateTooLarge,
    );
    assert!(
        body.message.contains("200"),
        "names the limit: {}",
        body.message
    );
    assert!(!body.message.contains("xxxx"), "never echoes the value");

    // Unchanged: the next small note is the second, not the third.
    let r = append(&server, &session, "ok").await.unwrap();
    assert_eq!(value_of(&r, count), Some(json!(2.0)));
    server.stop().await;
}

#[tokio::test]
async fn a_session_sending_too_many_events_is_slowed_down_alone() {
    let settings = Settings {
        max_events_per_second: 5,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![notebook()]).await;
    let config = server.config("notebook").await;
    let count = component(&config, "Count");
    let noisy = server.start_session("notebook").await;
    let quiet = server.start_session("notebook").await;

    let mut accepted = 0;
    let mut refused = 0;
    for _ in 0..20 {
        match append(&server, &noisy, "n").await {
            Ok(_) => accepted += 1,
            Err((status, body)) => {
                assert_eq!((status, body.error), (429, ErrorKind::LimitExceeded));
                assert!(
                    body.message.contains("5 events per second"),
                    "{}",
                    body.message
                );
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "a burst of 20 beyond 5/s must be refused in part"
    );
    assert!(
        accepted >= 5,
        "the allowed burst goes through (accepted {accepted})"
    );

    // Other sessions are not affected, and refused events changed nothing.
    let r = append(&server, &quiet, "q").await.unwrap();
    assert_eq!(value_of(&r, count), Some(json!(1.0)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = append(&server, &noisy, "n").await.unwrap();
    assert_eq!(value_of(&r, count), Some(json!(f64::from(accepted + 1))));
    server.stop().await;
}

#[tokio::test]
async fn feeds_are_limited_per_session_and_per_server() {
    let settings = Settings {
        max_feeds_per_session: 2,
        max_feeds: 3,
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![notebook()]).await;
    let path = |s: &SessionId| format!("/api/apps/notebook/sessions/{s}/feed");
    let first = server.start_session("notebook").await;
    let _a = server.open_feed("notebook", &first).await;
    let _b = server.open_feed("notebook", &first).await;
    let response = server
        .client
        .get(server.url(&path(&first)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "a third stream for one session");
    let body: keepsake::protocol::error::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error, ErrorKind::LimitExceeded);

    let second = server.start_session("notebook").await;
    let c = server.open_feed("notebook", &second).await;
    let third = server.start_session("notebook").await;
    let response = server
        .client
        .get(server.url(&path(&third)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "a fourth stream on the server");

    // A closed stream frees its place.
    drop(c);
    let mut reopened = false;
    for _ in 0..50 {
        let response = server
            .client
            .get(server.url(&path(&third)))
            .send()
            .await
            .unwrap();
        if response.status().is_success() {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reopened, "the place of a closed stream is given to another");
    server.stop().await;
}

#[tokio::test]
async fn only_issued_session_ids_are_accepted() {
    let server = TestServer::start(fast_settings(), vec![notebook()]).await;
    let issued = server.start_session("notebook").await;
    // Well-formed but never issued, and malformed: both are unknown sessions, and
    // neither creates state under the id the client chose.
    let forged: SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
    for id in [forged.as_str(), "not-a-session", "../../etc/passwd"] {
        let response = server
            .client
            .post(server.url(&format!("/api/apps/notebook/sessions/{id}/events")))
            .json(&json!({"listener": 0, "inputs": [null, "x"]}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: keepsake::protocol::error::ErrorBody = response.json().await.unwrap();
        assert!(status == 404 || status == 400, "{id}: {status}");
        if status == 404 {
            assert_eq!(body.error, ErrorKind::UnknownSession);
            assert!(body.message.contains("new session"), "{}", body.message);
        }
    }
    let response = server
        .client
        .get(server.url(&format!("/api/apps/notebook/sessions/{forged}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "the forged id did not become a session"
    );
    // Ids are 128 random bits: many sessions never share one.
    let mut ids = std::collections::HashSet::new();
    ids.insert(issued);
    for _ in 0..200 {
        assert!(ids.insert(server.start_session("notebook").await));
    }
    server.stop().await;
}

#[tokio::test]
async fn cors_is_closed_by_default_and_open_to_configured_origins() {
    let server = TestServer::start(fast_settings(), vec![notebook()]).await;
    let response = server
        .client
        .request(
            reqwest::Method::OPTIONS,
            server.url("/api/apps/notebook/sessions"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let response = server
        .client
        .get(server.url("/api/apps"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(
        response.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    server.stop().await;

    let settings = Settings {
        allow_origins: vec!["https://app.example".into()],
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![notebook()]).await;
    let preflight = |origin: &'static str| {
        server
            .client
            .request(
                reqwest::Method::OPTIONS,
                server.url("/api/apps/notebook/sessions"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://app.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    server.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics_report_sessions_events_and_errors() {
    let server = TestServer::start(
        fast_settings(),
        vec![notebook(), demos::shopping_cart().unwrap()],
    )
    .await;
    let session = server.start_session("notebook").await;
    append(&server, &session, "a").await.unwrap();
    append(&server, &session, "b").await.unwrap();
    let _ = server
        .event(
            "notebook",
            &session,
            keepsake::protocol::ListenerId(42),
            vec![],
        )
        .await;

    let health = server.health().await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["live_sessions"]["notebook"], 1);
    assert_eq!(health["live_sessions"]["shopping-cart"], 0);

    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let sample = |name: &str, labels: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(name) && line.contains(labels))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no sample {name}{{{labels}}} in\n{text}"))
    };
    assert!(sample("keepsake_events_total", r#"app="notebook",outcome="ok""#) >= 2.0);
    assert!(sample("keepsake_errors_total", r#"kind="unknown_listener""#) >= 1.0);
    assert_eq!(sample("keepsake_live_sessions", r#"app="notebook""#), 1.0);
    assert!(
        text.contains("keepsake_event_duration_seconds_bucket"),
        "latency histogram"
    );
    // Metrics carry no session ids.
    assert!(!text.contains(session.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_running_events() {
    let server = TestServer::start(fast_settings(), vec![notebook()]).await;
    let config = server.config("notebook").await;
    let count = component(&config, "Count");
    let session = server.start_session("notebook").await;
    let request = {
        let client = server.client.clone();
        let url = server.url(&format!("/api/apps/notebook/sessions/{session}/events"));
        let slow = listener_named(&config, "slow");
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"listener": slow, "inputs": [null]}))
                .send()
                .await
        })
    };
    // Let the slow handler start, then stop the server while it runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = server.base.clone();
    server.stop().await;
    let response = request
        .await
        .unwrap()
        .expect("the running event got its answer");
    assert_eq!(response.status(), 200);
    let result: keepsake::protocol::event::EventResult = response.json().await.unwrap();
    assert_eq!(value_of(&result, count), Some(json!(1.0)));
    // And the server no longer takes requests.
    assert!(reqwest::get(format!("{base}/healthz")).await.is_err());
}

/// The client's files go out precompressed: brotli or gzip when the browser accepts
/// it and the build wrote that copy, the plain file otherwise; client-side routes get
/// `index.html` the same way.
#[tokio::test]
async fn client_files_are_served_precompressed_when_accepted() {
    let dir = std::env::temp_dir().join(format!("keepsake-static-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in [
        ("index.html", "plain index"),
        ("index.html.gz", "gzip index"),
        ("index.html.br", "brotli index"),
        ("app.js", "plain js"),
        ("app.js.br", "brotli js"),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    let settings = Settings {
        static_dir: Some(dir.clone()),
        ..fast_settings()
    };
    let server = TestServer::start(settings, vec![notebook()]).await;
    let get = |path: &'static str, accept: &'static str| {
        let request = server.client.get(server.url(path));
        let request = if accept.is_empty() {
            request
        } else {
            request.header("accept-encoding", accept)
        };
        async move {
            let response = request.send().await.unwrap();
            let encoding = response
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_owned());
            (encoding, response.text().await.unwrap())
        }
    };
    let br = Some("br".to_owned());
    let gzip = Some("gzip".to_owned());
    assert_eq!(
        get("/app.js", "gzip, br").await,
        (br.clone(), "brotli js".into())
    );
    assert_eq!(get("/app.js", "gzip").await, (None, "plain js".into()));
    assert_eq!(get("/app.js", "").await, (None, "plain js".into()));
    assert_eq!(
        get("/apps/notebook", "gzip").await,
        (gzip, "gzip index".into())
    );
    assert_eq!(
        get("/apps/notebook", "br").await,
        (br, "brotli index".into())
    );
    assert_eq!(get("/", "").await, (None, "plain index".into()));
    server.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
