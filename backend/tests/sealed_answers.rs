//! Nothing the server tells a client opens a sealed browser-state value. A client with
//! no credentials goes through a full session of every demo (the app list, each
//! config, each API page, a stream, every listener a client may run) and keeps every
//! answer; with all of it, and what a browser would hold, it tries to open and to
//! forge the saved-login value. Neither works; the same attempt with the real secret
//! does, so the test can tell.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use keepsake::demos::SAVED_LOGIN_STORAGE_KEY;
use keepsake::protocol::api::{self, Endpoint};
use keepsake::protocol::config::{AppConfig, AppSummary, ComponentKind, EventKind};
use keepsake::protocol::event::{EventRequest, SealedValue};
use keepsake::protocol::{AppId, ComponentId};
use keepsake::sealing::Sealer;
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, value_of};

/// Every answer a client got, as text.
#[derive(Default)]
struct Transcript {
    bodies: Vec<String>,
}

impl Transcript {
    async fn get(&mut self, server: &TestServer, path: &str) -> String {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        let body = response.text().await.unwrap();
        self.bodies.push(body.clone());
        body
    }

    /// Every string a client could try as a secret: each JSON string, each word.
    fn candidates(&self) -> BTreeSet<String> {
        fn strings(value: &Value, out: &mut BTreeSet<String>) {
            match value {
                Value::String(s) => {
                    out.insert(s.clone());
                }
                Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
                Value::Object(map) => {
                    for (key, v) in map {
                        out.insert(key.clone());
                        strings(v, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        for body in &self.bodies {
            out.insert(body.clone());
            match serde_json::from_str::<Value>(body) {
                Ok(value) => strings(&value, &mut out),
                Err(_) => out.extend(
                    body.split(|c: char| c.is_whitespace() || "<>\"'`=".contains(c))
                        .filter(|w| !w.is_empty())
                        .map(str::to_owned),
                ),
            }
        }
        out
    }
}

/// A value a client may send for `kind`, as a page would.
fn plausible_input(kind: &ComponentKind, props_value: &Value, held: Option<&String>) -> Value {
    match kind {
        ComponentKind::Textbox { .. } => json!("alice"),
        ComponentKind::Number { .. } => json!(1),
        ComponentKind::Checkbox => json!(true),
        ComponentKind::CheckboxGroup { choices } => {
            json!(choices.iter().take(2).collect::<Vec<_>>())
        }
        ComponentKind::Dropdown {
            choices,
            multiselect,
        } => match (choices.first(), multiselect) {
            (Some(first), true) => json!([first]),
            (Some(first), false) => json!(first),
            (None, _) => Value::Null,
        },
        ComponentKind::Radio { choices } => choices.first().map_or(Value::Null, |c| json!(c)),
        ComponentKind::BrowserState(_) => held.map_or(Value::Null, |s| json!(s)),
        ComponentKind::Button { .. }
        | ComponentKind::Markdown
        | ComponentKind::Json
        | ComponentKind::Html
        | ComponentKind::Slider { .. }
        | ComponentKind::Timer { .. }
        | ComponentKind::Chatbot => props_value.clone(),
        ComponentKind::State | ComponentKind::Global => Value::Null,
    }
}

/// A full session of one app: every listener a client may run, twice, holding what
/// the server sealed the way a browser holds it. Returns what the browser holds.
async fn full_session(
    server: &TestServer,
    transcript: &mut Transcript,
    app: &str,
) -> Vec<(ComponentId, String)> {
    let config: AppConfig = serde_json::from_str(
        &transcript
            .get(server, &api::GetConfig::path(&AppId(app.into())))
            .await,
    )
    .unwrap();
    transcript
        .get(server, &api::API_DOCS_ROUTE.replace("{app}", app))
        .await;
    let session = server.start_session(app).await;
    let mut stream = server.open_feed(app, &session).await;
    let mut held: Vec<(ComponentId, String)> = Vec::new();
    for _round in 0..2 {
        for dep in &config.listeners {
            if dep.triggers.iter().all(|t| t.event == EventKind::Unload) {
                continue;
            }
            let holding = |id: &ComponentId| held.iter().find(|(c, _)| c == id).map(|(_, s)| s);
            let inputs = dep
                .inputs
                .iter()
                .map(|id| {
                    let c = config.component(*id).unwrap();
                    plausible_input(&c.kind, &c.props.value, holding(id))
                })
                .collect();
            let request = EventRequest {
                listener: dep.id,
                inputs,
                held: dep
                    .outputs
                    .iter()
                    .filter(|id| !dep.inputs.contains(id))
                    .filter_map(|id| {
                        holding(id).map(|s| SealedValue {
                            component: *id,
                            sealed: s.clone(),
                        })
                    })
                    .collect(),
                rendered: None,
                shown: Vec::new(),
            };
            let result = server
                .send_event(app, &session, &request)
                .await
                .unwrap_or_else(|(status, body)| {
                    panic!("{app} {:?}: {status} {}", dep.id, body.message)
                });
            transcript
                .bodies
                .push(serde_json::to_string(&result).unwrap());
            for write in result.browser_state {
                held.retain(|(c, _)| *c != write.component);
                if let Some(sealed) = write.sealed {
                    held.push((write.component, sealed));
                }
            }
        }
    }
    // Whatever the stream said meanwhile (it never goes quiet: heartbeats).
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Some(message) = stream.next(until - tokio::time::Instant::now()).await {
        transcript
            .bodies
            .push(serde_json::to_string(&message).unwrap());
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_a_client_is_told_opens_or_forges_a_sealed_value() {
    let settings = keepsake::Settings {
        // Hundreds of forgeries from one session, as fast as they come.
        max_events_per_second: 100_000,
        ..fast_settings()
    };
    // The secret as `keepsake-demo` makes it on a first start: random, kept in a file.
    let data_dir = std::env::temp_dir().join(format!("keepsake-sealed-{}", rand::random::<u64>()));
    let (secret, _) = keepsake::demos::kept_secret(&data_dir).unwrap();
    let demos = || keepsake::demos::all(Some(&secret)).unwrap();
    let server = TestServer::start(settings, demos()).await;
    let mut transcript = Transcript::default();
    let apps: Vec<AppSummary> =
        serde_json::from_str(&transcript.get(&server, api::ListApps::ROUTE).await).unwrap();
    assert_eq!(apps.len(), demos().len());
    let mut login_held = Vec::new();
    for app in &apps {
        let held = full_session(&server, &mut transcript, &app.id.0).await;
        if app.id.0 == "saved-login" {
            login_held = held;
        }
    }
    // The login demo left a sealed value in the "browser": its typed username.
    let [(slot, sealed)] = login_held.as_slice() else {
        panic!("the login demo stores one value, got {login_held:?}");
    };
    assert!(!sealed.contains("alice"));

    let everything = transcript.bodies.join("\n");
    assert!(!everything.contains(&secret), "the secret is never sent");
    assert!(!everything.contains("secret"), "no field even names one");

    // Every string the client saw, what it holds, and every string constant of the
    // published crates (the library once shipped the demo's secret), tried as the
    // secret.
    let mut candidates = transcript.candidates();
    candidates.insert(sealed.clone());
    let constants = published_strings();
    assert!(constants.len() > 500, "{} constants", constants.len());
    candidates.extend(constants);
    assert!(
        candidates.len() > 50,
        "a real transcript: {}",
        candidates.len()
    );
    for candidate in &candidates {
        let guess = Sealer::new("saved-login", SAVED_LOGIN_STORAGE_KEY, &[candidate]);
        assert!(
            guess.open(sealed).is_err(),
            "{candidate:?} opened the value"
        );
    }

    // Forging: a value sealed under each guess, sent as the login page would.
    let config = server.config("saved-login").await;
    let load = config
        .listeners
        .iter()
        .find(|d| d.triggers.iter().any(|t| t.event == EventKind::Load))
        .unwrap();
    let username = component(&config, "Username");
    let session = server.start_session("saved-login").await;
    let read_as = |forged: String| {
        let request = EventRequest {
            listener: load.id,
            inputs: vec![json!(forged)],
            held: vec![],
            rendered: None,
            shown: Vec::new(),
        };
        let server = &server;
        async move {
            let result = server
                .send_event("saved-login", &session, &request)
                .await
                .unwrap();
            value_of(&result, username)
        }
    };
    let forged_login = br#"["mallory","forged"]"#;
    for candidate in candidates.iter().filter(|c| c.len() >= 8).take(300) {
        let forger = Sealer::new("saved-login", SAVED_LOGIN_STORAGE_KEY, &[candidate]);
        let forged = forger.seal(0, None, forged_login).unwrap();
        assert_eq!(
            read_as(forged).await,
            Some(json!("")),
            "forged with {candidate:?}"
        );
    }
    // The control: what the browser holds reads back, and so would a value sealed
    // with the real secret.
    assert_eq!(read_as(sealed.clone()).await, Some(json!("alice")));
    let insider = Sealer::new("saved-login", SAVED_LOGIN_STORAGE_KEY, &[&secret]);
    assert_eq!(
        read_as(insider.seal(0, None, forged_login).unwrap()).await,
        Some(json!("mallory"))
    );
    let _ = slot;
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Every string literal in the sources of the published crates (`keepsake` and
/// `keepsake-shared`), roughly: the text between each pair of double quotes.
fn published_strings() -> std::collections::BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = std::collections::BTreeSet::new();
    let mut dirs = vec![root.join("src"), root.join("../shared/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.extend(text.split('"').skip(1).step_by(2).map(str::to_owned));
            }
        }
    }
    found
}
