//! Browser state sealed by the server: what a browser holds opens only on the server
//! that sealed it, for the slot and app it was sealed for; everything else reads as
//! the default and is removed. Each test drives a real server over HTTP, as a page
//! (or someone with a copy of its localStorage) would.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keepsake::components::{Button, Checkbox, Textbox};
use keepsake::protocol::event::{BrowserStateWrite, EventRequest, EventResult, SealedValue};
use keepsake::protocol::{ComponentId, ListenerId, SessionId};
use keepsake::sealing::Sealer;
use keepsake::{App, Blocks, BrowserState, Changeable, Submittable};
use serde_json::{Value, json};
use support::{TestServer, component, fast_settings, listener_named, value_of};

const SECRET: &str = "vault secret: thirty-two bytes or more, fixed for tests";
const OLD_SECRET: &str = "the previous vault secret, just as long and as fixed";

/// A small app with two browser states: a note (string) and a flag (bool).
struct Vault<'a> {
    id: &'a str,
    secrets: &'a [&'a str],
    fixed: bool,
    max_age: Option<Duration>,
}

impl Vault<'_> {
    fn build(&self) -> App {
        let mut app = Blocks::new(self.id, "Vault");
        let text = app.add(Textbox::new().label("Text"));
        let shown = app.add(Textbox::new().label("Shown"));
        let flag_box = app.add(Checkbox::new().label("Flag"));
        let show_flag = app.add(Button::new("Show flag"));
        let mut note = BrowserState::new("default note".to_owned());
        let mut flag = BrowserState::new(true);
        if self.fixed {
            note = note.storage_key("note").secrets(self.secrets.to_vec());
            flag = flag.storage_key("flag").secrets(self.secrets.to_vec());
        }
        if let Some(age) = self.max_age {
            note = note.max_age(age);
        }
        let note = app.browser_state(note);
        let flag = app.browser_state(flag);
        app.on([text.changed()], text, note, |text: String| text)
            .api_name("save");
        app.on([text.submitted()], note, shown, |note: String| note)
            .api_name("show");
        app.on([flag_box.changed()], flag_box, flag, |on: bool| on)
            .api_name("set_flag");
        app.click(show_flag, flag, shown, |on: bool| on.to_string())
            .api_name("show_flag");
        app.build().unwrap()
    }
}

fn fixed(id: &str) -> App {
    Vault {
        id,
        secrets: &[SECRET],
        fixed: true,
        max_age: None,
    }
    .build()
}

fn unfixed(id: &str) -> App {
    Vault {
        id,
        secrets: &[],
        fixed: false,
        max_age: None,
    }
    .build()
}

/// One session of one app on one server.
struct Page<'a> {
    server: &'a TestServer,
    app: String,
    session: SessionId,
    config: keepsake::protocol::config::AppConfig,
}

impl<'a> Page<'a> {
    async fn open(server: &'a TestServer, app: &str) -> Page<'a> {
        Page {
            server,
            app: app.to_owned(),
            session: server.start_session(app).await,
            config: server.config(app).await,
        }
    }

    fn dep(&self, name: &str) -> ListenerId {
        listener_named(&self.config, name)
    }

    async fn run(&self, name: &str, inputs: Vec<Value>, held: Vec<SealedValue>) -> EventResult {
        self.try_run(name, inputs, held)
            .await
            .unwrap_or_else(|(status, body)| panic!("{name}: {status} {}", body.message))
    }

    async fn try_run(
        &self,
        name: &str,
        inputs: Vec<Value>,
        held: Vec<SealedValue>,
    ) -> Result<EventResult, (u16, keepsake::protocol::error::ErrorBody)> {
        let request = EventRequest {
            listener: self.dep(name),
            inputs,
            held,
            rendered: None,
            shown: Vec::new(),
        };
        self.server
            .send_event(&self.app, &self.session, &request)
            .await
    }

    /// Saves `text` in the note; returns the sealed string the server gave.
    async fn save(&self, text: &str) -> String {
        let result = self.run("save", vec![json!(text)], vec![]).await;
        let write = only_write(&result);
        assert!(write.changed);
        write.sealed.clone().expect("a sealed value")
    }

    /// What the app reads from `sealed` (or null) in the note, and what it answers.
    async fn show(&self, sealed: Value) -> (String, EventResult) {
        let result = self.run("show", vec![sealed], vec![]).await;
        let shown = value_of(&result, component(&self.config, "Shown")).unwrap();
        (shown.as_str().unwrap().to_owned(), result)
    }

    fn note(&self) -> ComponentId {
        self.config.listeners[self.dep("save").0 as usize].outputs[0]
    }
}

fn only_write(result: &EventResult) -> &BrowserStateWrite {
    assert_eq!(result.browser_state.len(), 1, "{result:?}");
    &result.browser_state[0]
}

/// Asserts the answer read the default and told the client to remove what it held.
fn assert_removed(shown: &str, result: &EventResult, default: &str) {
    assert_eq!(shown, default);
    let write = only_write(result);
    assert_eq!((write.sealed.as_deref(), write.changed), (None, false));
}

fn flip(sealed: &str, at_from_end: usize) -> String {
    let mut bytes = sealed.as_bytes().to_vec();
    let i = bytes.len() - at_from_end;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_round_trips_sealed_and_an_equal_value_is_not_rewritten() {
    let server = TestServer::start(fast_settings(), vec![fixed("vault")]).await;
    let page = Page::open(&server, "vault").await;
    let sealed = page.save("hello there").await;
    assert!(sealed.starts_with("v2."), "{sealed}");
    assert!(!sealed.contains("hello"), "sealed, not in clear: {sealed}");

    let (shown, result) = page.show(json!(sealed)).await;
    assert_eq!(shown, "hello there");
    assert!(result.browser_state.is_empty(), "read only: {result:?}");

    // The same text again, with what the page holds: nothing to rewrite.
    let held = vec![SealedValue {
        component: page.note(),
        sealed: sealed.clone(),
    }];
    let again = page
        .run("save", vec![json!("hello there")], held.clone())
        .await;
    assert!(again.browser_state.is_empty(), "{again:?}");
    // The default, with nothing said of what the page holds: the server cannot know
    // the page holds something else, so it writes.
    let unknown = page.run("save", vec![json!("default note")], vec![]).await;
    assert!(only_write(&unknown).changed, "{unknown:?}");
    // Another text: sealed again, a fresh string.
    let changed = page.run("save", vec![json!("bye")], held).await;
    let write = only_write(&changed);
    assert!(write.changed);
    assert_ne!(write.sealed.as_deref(), Some(sealed.as_str()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_truncated_and_garbage_values_read_as_the_default_and_are_removed() {
    let server = TestServer::start(fast_settings(), vec![fixed("vault")]).await;
    let page = Page::open(&server, "vault").await;
    let sealed = page.save("top secret note").await;
    let mut bad: Vec<String> = (1..sealed.len() - 20)
        .step_by(7)
        .map(|at| flip(&sealed, at))
        .collect();
    bad.extend([
        sealed[..sealed.len() / 2].to_owned(),
        sealed[..sealed.len() - 1].to_owned(),
        format!("{sealed}A"),
        "garbage".to_owned(),
        String::new(),
        // The earlier, client-side format.
        "v1.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
    ]);
    for value in bad {
        let (shown, result) = page.show(json!(value)).await;
        assert_removed(&shown, &result, "default note");
    }
    // A sealed slot takes a string or null; anything else is a bad request that
    // changes nothing.
    let refused = page.try_run("show", vec![json!(42)], vec![]).await;
    support::assert_error(
        refused,
        400,
        keepsake::protocol::error::ErrorKind::InvalidInput,
    );
    let (shown, _) = page.show(json!(sealed)).await;
    assert_eq!(shown, "top secret note");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_moved_to_another_slot_or_app_does_not_open() {
    let server =
        TestServer::start(fast_settings(), vec![fixed("vault"), fixed("vault-copy")]).await;
    let page = Page::open(&server, "vault").await;
    let sealed = page.save("false").await;
    // The flag slot, same app, same secret.
    let result = page.run("show_flag", vec![json!(sealed)], vec![]).await;
    let shown = value_of(&result, component(&page.config, "Shown")).unwrap();
    assert_removed(shown.as_str().unwrap(), &result, "true");
    // The note slot of another app with the same secret.
    let other = Page::open(&server, "vault-copy").await;
    let (shown, result) = other.show(json!(sealed)).await;
    assert_removed(&shown, &result, "default note");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_sealed_with_any_other_key_do_not_open() {
    let server = TestServer::start(fast_settings(), vec![fixed("vault")]).await;
    let page = Page::open(&server, "vault").await;
    let genuine = page.save("genuine").await;
    let key_id = genuine.split('.').nth(1).unwrap().to_owned();
    for guess in ["", "vault", "note", "default note", "secret", &SECRET[1..]] {
        let forger = Sealer::new("vault", "note", &[guess]);
        let forged = forger.seal(0, None, br#""forged""#).unwrap();
        let (shown, result) = page.show(json!(forged)).await;
        assert_removed(&shown, &result, "default note");
        // The genuine key id on a forged body: still no.
        let body = forged.rsplit('.').next().unwrap();
        let (shown, result) = page.show(json!(format!("v2.{key_id}.{body}"))).await;
        assert_removed(&shown, &result, "default note");
    }
    // The control: with the real secret, the same forgery would be read.
    let insider = Sealer::new("vault", "note", &[SECRET]);
    let (shown, _) = page
        .show(json!(insider.seal(0, None, br#""forged""#).unwrap()))
        .await;
    assert_eq!(shown, "forged", "the test can tell an open from a refusal");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_reads_old_values_and_seals_them_again_with_the_newest_secret() {
    let vault = |secrets| Vault {
        id: "vault",
        secrets,
        fixed: true,
        max_age: None,
    };
    let before = TestServer::start(fast_settings(), vec![vault(&[OLD_SECRET]).build()]).await;
    let old = Page::open(&before, "vault")
        .await
        .save("kept across rotation")
        .await;
    before.stop().await;

    let rotating =
        TestServer::start(fast_settings(), vec![vault(&[SECRET, OLD_SECRET]).build()]).await;
    let page = Page::open(&rotating, "vault").await;
    let (shown, result) = page.show(json!(old)).await;
    assert_eq!(shown, "kept across rotation");
    let write = only_write(&result);
    assert!(!write.changed, "the value did not change, only its sealing");
    let resealed = write.sealed.clone().unwrap();
    assert_ne!(resealed.split('.').nth(1), old.split('.').nth(1));
    // Resealed: read without another write.
    let (_, again) = page.show(json!(resealed)).await;
    assert!(again.browser_state.is_empty());
    rotating.stop().await;

    let after = TestServer::start(fast_settings(), vec![vault(&[SECRET]).build()]).await;
    let page = Page::open(&after, "vault").await;
    assert_eq!(page.show(json!(resealed)).await.0, "kept across rotation");
    let (shown, result) = page.show(json!(old)).await;
    assert_removed(&shown, &result, "default note");
    after.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_past_its_max_age_reads_as_the_default() {
    let app = Vault {
        id: "vault",
        secrets: &[SECRET],
        fixed: true,
        max_age: Some(Duration::from_secs(1)),
    }
    .build();
    let server = TestServer::start(fast_settings(), vec![app]).await;
    let page = Page::open(&server, "vault").await;
    let sealed = page.save("short-lived").await;
    assert_eq!(page.show(json!(sealed)).await.0, "short-lived");
    // Expiry is in whole seconds: two are past it whatever the rounding.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (shown, result) = page.show(json!(sealed)).await;
    assert_removed(&shown, &result, "default note");
    server.stop().await;
}

fn profile(id: &str, version: u32, migrate: bool) -> App {
    let mut app = Blocks::new(id, "Profile");
    let text = app.add(Textbox::new().label("Text"));
    let shown = app.add(Textbox::new().label("Shown"));
    if version == 0 {
        let name = app.browser_state(
            BrowserState::new(String::new())
                .storage_key("profile")
                .secret(SECRET),
        );
        app.on([text.changed()], text, name, |t: String| t)
            .api_name("save");
        app.on([text.submitted()], name, shown, |n: String| n)
            .api_name("show");
    } else {
        // Version 1: a list of names.
        let mut state = BrowserState::new(vec!["nobody".to_owned()])
            .storage_key("profile")
            .secret(SECRET)
            .version(1);
        if migrate {
            state = state.migrate(|version, old| match (version, old) {
                (0, Value::String(name)) => Some(vec![name]),
                _ => None,
            });
        }
        let names = app.browser_state(state);
        app.on([text.submitted()], names, shown, |n: Vec<String>| {
            n.join("+")
        })
        .api_name("show");
    }
    app.build().unwrap()
}

/// The same slot, its type changed without a version bump.
fn reshaped(id: &str) -> App {
    let mut app = Blocks::new(id, "Profile");
    let text = app.add(Textbox::new().label("Text"));
    let shown = app.add(Textbox::new().label("Shown"));
    let count = app.browser_state(
        BrowserState::new(7u32)
            .storage_key("profile")
            .secret(SECRET),
    );
    app.on([text.submitted()], count, shown, |n: u32| n.to_string())
        .api_name("show");
    app.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_version_is_migrated_or_reads_as_the_default_never_an_error() {
    let v0 = TestServer::start(fast_settings(), vec![profile("profile", 0, false)]).await;
    let sealed = Page::open(&v0, "profile").await.save("alice").await;
    v0.stop().await;

    let v1 = TestServer::start(fast_settings(), vec![profile("profile", 1, true)]).await;
    let page = Page::open(&v1, "profile").await;
    let (shown, result) = page.show(json!(sealed)).await;
    assert_eq!(shown, "alice");
    let write = only_write(&result);
    assert!(!write.changed);
    let migrated = write.sealed.clone().unwrap();
    let (shown, again) = page.show(json!(migrated)).await;
    assert_eq!(shown, "alice");
    assert!(again.browser_state.is_empty(), "stored under version 1 now");
    v1.stop().await;

    let no_migration = TestServer::start(fast_settings(), vec![profile("profile", 1, false)]).await;
    let page = Page::open(&no_migration, "profile").await;
    let (shown, result) = page.show(json!(sealed)).await;
    assert_removed(&shown, &result, "nobody");
    no_migration.stop().await;

    let reshaped = TestServer::start(fast_settings(), vec![reshaped("profile")]).await;
    let page = Page::open(&reshaped, "profile").await;
    let (shown, result) = page.show(json!(sealed)).await;
    assert_removed(&shown, &result, "7");
    // After the removal, the page sends nothing and works.
    assert_eq!(page.show(Value::Null).await.0, "7");
    reshaped.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falsy_values_are_stored_like_any_other() {
    let server = TestServer::start(fast_settings(), vec![fixed("vault")]).await;
    let page = Page::open(&server, "vault").await;
    let result = page.run("set_flag", vec![json!(false)], vec![]).await;
    let sealed = only_write(&result).sealed.clone().unwrap();
    let result = page.run("show_flag", vec![json!(sealed)], vec![]).await;
    assert_eq!(
        value_of(&result, component(&page.config, "Shown")),
        Some(json!("false"))
    );
    let empty = page.save("").await;
    assert_eq!(page.show(json!(empty)).await.0, "");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_values_with_fixed_keys_and_loses_them_without() {
    let apps = || vec![fixed("vault"), unfixed("vault-ephemeral")];
    let first = TestServer::start(fast_settings(), apps()).await;
    let kept = Page::open(&first, "vault").await.save("survives").await;
    let lost = Page::open(&first, "vault-ephemeral")
        .await
        .save("gone")
        .await;
    let ephemeral = Page::open(&first, "vault-ephemeral").await;
    assert_eq!(ephemeral.show(json!(lost)).await.0, "gone", "while it runs");
    first.stop().await;

    let second = TestServer::start(fast_settings(), apps()).await;
    assert_eq!(
        Page::open(&second, "vault").await.show(json!(kept)).await.0,
        "survives"
    );
    let page = Page::open(&second, "vault-ephemeral").await;
    let (shown, result) = page.show(json!(lost)).await;
    assert_removed(&shown, &result, "default note");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_redis_share_random_keys_and_other_namespaces_do_not() {
    let redis = support::RedisProcess::start();
    let on = |namespace: &str| keepsake::Settings {
        store: redis.url(),
        store_namespace: namespace.to_owned(),
        ..fast_settings()
    };
    let a = TestServer::start(on("shared"), vec![unfixed("vault")]).await;
    let b = TestServer::start(on("shared"), vec![unfixed("vault")]).await;
    let elsewhere = TestServer::start(on("other"), vec![unfixed("vault")]).await;
    // Both sides at once, the first time: the seed is made once, whoever asks first.
    let (page_a, page_b) = tokio::join!(Page::open(&a, "vault"), Page::open(&b, "vault"));
    let (from_a, from_b) = tokio::join!(page_a.save("from a"), page_b.save("from b"));
    for _ in 0..5 {
        assert_eq!(page_b.show(json!(from_a)).await.0, "from a");
        assert_eq!(page_a.show(json!(from_b)).await.0, "from b");
    }
    let page = Page::open(&elsewhere, "vault").await;
    let (shown, result) = page.show(json!(from_a)).await;
    assert_removed(&shown, &result, "default note");
    a.stop().await;
    b.stop().await;
    elsewhere.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_listener_or_its_cascade_writes_is_compared_with_what_the_page_holds() {
    // A state whose `.change` listener (run by the server) writes the note.
    let mut app = Blocks::new("cascade", "Cascade");
    let text = app.add(Textbox::new().label("Text"));
    let shown = app.add(Textbox::new().label("Shown"));
    let draft = app.state(keepsake::State::new(String::new()));
    let note = app.browser_state(
        BrowserState::new("default note".to_owned())
            .storage_key("note")
            .secret(SECRET),
    );
    app.on([text.changed()], text, draft, |t: String| t)
        .api_name("save");
    app.change(draft, draft, note, |d: String| d);
    app.on([text.submitted()], note, shown, |n: String| n)
        .api_name("show");
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;
    let page = Page::open(&server, "cascade").await;
    let note_id = page.config.listeners[page.dep("show").0 as usize].inputs[0];

    let first = page.run("save", vec![json!("kept")], vec![]).await;
    let sealed = only_write(&first).sealed.clone().unwrap();
    assert!(only_write(&first).changed);
    // The same text again from a fresh session: the cascade writes "kept" again,
    // which the page holds: nothing to write.
    let page = Page::open(&server, "cascade").await;
    let held = vec![SealedValue {
        component: note_id,
        sealed: sealed.clone(),
    }];
    let again = page.run("save", vec![json!("kept")], held).await;
    assert!(again.browser_state.is_empty(), "{again:?}");
    // Without `held` the server cannot know: it writes what the cascade wrote.
    let page = Page::open(&server, "cascade").await;
    let unknown = page.run("save", vec![json!("kept")], vec![]).await;
    assert!(only_write(&unknown).changed);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unnamed_slot_does_not_open_a_value_of_another_type_or_default_on_one_redis() {
    // With Redis the random seed outlives restarts; a slot named by its position
    // must not read what a different slot held there before the app changed.
    let redis = support::RedisProcess::start();
    let settings = keepsake::Settings {
        store: redis.url(),
        store_namespace: "deploys".to_owned(),
        ..fast_settings()
    };
    let app = |default: &str| {
        let mut app = Blocks::new("slots", "Slots");
        let text = app.add(Textbox::new().label("Text"));
        let shown = app.add(Textbox::new().label("Shown"));
        let note = app.browser_state(BrowserState::new(default.to_owned()));
        app.on([text.changed()], text, note, |t: String| t)
            .api_name("save");
        app.on([text.submitted()], note, shown, |n: String| n)
            .api_name("show");
        app.build().unwrap()
    };
    let before = TestServer::start(settings.clone(), vec![app("first")]).await;
    let sealed = Page::open(&before, "slots").await.save("old value").await;
    before.stop().await;
    // The same app again (a restart): the value is read.
    let same = TestServer::start(settings.clone(), vec![app("first")]).await;
    assert_eq!(
        Page::open(&same, "slots").await.show(json!(sealed)).await.0,
        "old value"
    );
    same.stop().await;
    // Another slot in that position: not read.
    let changed = TestServer::start(settings, vec![app("second")]).await;
    let page = Page::open(&changed, "slots").await;
    let (shown, result) = page.show(json!(sealed)).await;
    assert_removed(&shown, &result, "second");
    changed.stop().await;
}
