//! BrowserState storage in a real browser (headless Chromium): sealed strings are
//! held and stored as the server sent them, removals clear the entry, storage
//! failures keep the page working and are reported (the real localStorage included,
//! without a panic), other tabs' changes are taken, a stale answer does not undo
//! them, and an identical string is never rewritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::rc::Rc;

use keepsake_frontend::browser_state::{
    BrowserStates, KeyValueStore, LocalStore, MemoryStore, StorageError, decode_entry,
    encode_entry, storage_key,
};
use keepsake_shared::config::{
    AppConfig, BrowserStateConfig, ComponentConfig, ComponentKind, ComponentProps, ListenerConfig,
};
use keepsake_shared::event::{BrowserStateWrite, SealedValue};
use keepsake_shared::{AppId, ComponentId, ListenerId, PROTOCOL_VERSION};
use serde_json::{Value, json};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SLOT: ComponentId = ComponentId(0);
const OTHER: ComponentId = ComponentId(1);

/// An app with two browser-state slots, under a per-test app id so tests that use
/// the real localStorage do not see each other's entries.
fn config(app: &str) -> AppConfig {
    let slot = |id, key: &str| ComponentConfig {
        id: ComponentId(id),
        kind: ComponentKind::BrowserState(BrowserStateConfig {
            storage_key: key.into(),
        }),
        props: ComponentProps::default(),
    };
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: AppId(app.into()),
        title: "t".into(),
        description: String::new(),
        components: vec![slot(0, "creds"), slot(1, "theme")],
        layout: vec![],
        listeners: vec![],
    }
}

fn memory_states(app: &str) -> (Rc<MemoryStore>, BrowserStates) {
    let store = Rc::new(MemoryStore::new());
    let states = BrowserStates::new(&config(app), Box::new(store.clone()));
    (store, states)
}

fn key(app: &str, storage_key_: &str) -> String {
    storage_key(&AppId(app.into()), storage_key_)
}

#[wasm_bindgen_test]
fn stored_strings_are_held_and_sent_verbatim() {
    let (store, states) = memory_states("held");
    assert_eq!(states.key(SLOT), Some("keepsake:held:creds"));
    store.put_raw(&key("held", "creds"), &encode_entry("v1.k1.c2VhbGVk"));
    assert!(states.load().is_empty());
    assert_eq!(states.held(SLOT).as_deref(), Some("v1.k1.c2VhbGVk"));
    assert_eq!(states.input(SLOT), json!("v1.k1.c2VhbGVk"));
    // A slot with no entry holds nothing and sends null (its default on the server).
    assert_eq!(states.held(OTHER), None);
    assert_eq!(states.input(OTHER), Value::Null);
}

#[wasm_bindgen_test]
fn an_entry_not_written_by_keepsake_is_sent_as_it_is() {
    // Edited by hand: not a JSON string. The client does not judge it; the server
    // rejects it and answers with a removal.
    for raw in [
        "v1.k1.edited",
        "{\"not\": \"ours\"}",
        "null",
        "",
        "\"unterminated",
    ] {
        assert_eq!(decode_entry(raw), raw);
        let (store, states) = memory_states("edited");
        store.put_raw(&key("edited", "creds"), raw);
        states.load();
        assert_eq!(
            states.input(SLOT),
            json!(raw),
            "{raw:?} is sent as a string"
        );
    }
    assert_eq!(decode_entry("\"a \\\"quoted\\\" one\""), "a \"quoted\" one");
}

#[wasm_bindgen_test]
fn a_write_is_stored_as_sent_and_a_removal_clears_the_entry() {
    let (store, states) = memory_states("write");
    let entry = key("write", "creds");
    let outcome = states.set(SLOT, Some("v1.k1.first".into()));
    assert!(outcome.replaced);
    assert_eq!(outcome.error, None);
    assert_eq!(store.raw(&entry), Some(encode_entry("v1.k1.first")));
    assert_eq!(store.get(&entry).unwrap().as_deref(), Some("v1.k1.first"));

    let outcome = states.set(SLOT, None);
    assert!(outcome.replaced, "removing a held string is a change");
    assert_eq!(store.raw(&entry), None, "the entry is removed");
    assert_eq!(states.input(SLOT), Value::Null);
    assert_eq!(
        store.raw(&key("write", "theme")),
        None,
        "other slots untouched"
    );
}

#[wasm_bindgen_test]
fn falsy_looking_strings_are_strings_like_any_other() {
    let (store, states) = memory_states("falsy");
    for sealed in ["", "0", "false", "null", "[]", "{}", "\"\""] {
        assert!(states.set(SLOT, Some(sealed.into())).replaced, "{sealed:?}");
        assert_eq!(
            states.input(SLOT),
            json!(sealed),
            "{sealed:?} sent as a string"
        );
        let raw = store.raw(&key("falsy", "creds"));
        assert_eq!(raw, Some(encode_entry(sealed)), "{sealed:?} stored");
        // And read back as the same string by a fresh page.
        let reloaded = BrowserStates::new(&config("falsy"), Box::new(store.clone()));
        reloaded.load();
        assert_eq!(reloaded.held(SLOT).as_deref(), Some(sealed));
    }
}

#[wasm_bindgen_test]
fn an_identical_string_is_not_written_again() {
    let (store, states) = memory_states("same");
    let entry = key("same", "creds");
    assert!(states.set(SLOT, Some("v1.k1.same".into())).replaced);
    // Storage now refuses writes: a second write of the same string must not even
    // be tried (it would wake every other tab for nothing).
    store.fail_writes(Some(StorageError::Other("written twice".into())));
    assert_eq!(
        states.set(SLOT, Some("v1.k1.same".into())),
        Default::default()
    );
    store.fail_all(Some(StorageError::Other("removed twice".into())));
    assert!(states.set(SLOT, None).replaced);
    assert_eq!(states.set(SLOT, None), Default::default());
    store.fail_all(None);
    store.fail_writes(None);
    assert_eq!(
        store.raw(&entry),
        Some(encode_entry("v1.k1.same")),
        "the failed removal left the entry"
    );
}

#[wasm_bindgen_test]
fn quota_exceeded_keeps_the_string_in_memory_and_reports_it() {
    let (store, states) = memory_states("quota");
    assert!(states.load().is_empty());
    store.fail_writes(Some(StorageError::QuotaExceeded));
    let outcome = states.set(SLOT, Some("v1.k1.kept".into()));
    assert!(outcome.replaced);
    assert_eq!(outcome.error, Some(StorageError::QuotaExceeded));
    assert_eq!(states.input(SLOT), json!("v1.k1.kept"), "kept in memory");
    assert_eq!(store.raw(&key("quota", "creds")), None);
    store.fail_writes(None);
    let outcome = states.set(SLOT, Some("v1.k1.saved".into()));
    assert_eq!(outcome.error, None, "heals when storage does");
    assert_eq!(
        store.raw(&key("quota", "creds")),
        Some(encode_entry("v1.k1.saved"))
    );
}

#[wasm_bindgen_test]
fn unavailable_storage_reads_nothing_and_is_reported_once() {
    let (store, states) = memory_states("unavailable");
    store.put_raw(&key("unavailable", "creds"), &encode_entry("v1.k1.x"));
    store.fail_all(Some(StorageError::Unavailable));
    assert_eq!(states.load(), vec![StorageError::Unavailable]);
    assert_eq!(states.input(SLOT), Value::Null);
    let outcome = states.set(SLOT, Some("v1.k1.y".into()));
    assert_eq!(outcome.error, Some(StorageError::Unavailable));
    assert_eq!(
        states.input(SLOT),
        json!("v1.k1.y"),
        "the page keeps working"
    );
}

#[wasm_bindgen_test]
fn an_answer_applies_its_writes_and_reports_which_values_changed() {
    let (store, states) = memory_states("apply");
    states.set(OTHER, Some("v1.k1.theme".into()));
    let applied = states.apply(
        vec![
            BrowserStateWrite {
                component: SLOT,
                sealed: Some("v1.k1.new".into()),
                changed: true,
            },
            // Re-sealed under a new key: stored, but no change listener runs.
            BrowserStateWrite {
                component: OTHER,
                sealed: Some("v2.k2.theme".into()),
                changed: false,
            },
        ],
        states.version(),
    );
    assert_eq!(applied.changed, vec![SLOT]);
    assert_eq!(applied.error, None);
    assert_eq!(
        store.raw(&key("apply", "theme")),
        Some(encode_entry("v2.k2.theme"))
    );
    // A removed bad value: removed quietly.
    let applied = states.apply(
        vec![BrowserStateWrite {
            component: OTHER,
            sealed: None,
            changed: false,
        }],
        states.version(),
    );
    assert!(applied.changed.is_empty());
    assert_eq!(store.raw(&key("apply", "theme")), None);
    // The first storage failure is reported.
    store.fail_writes(Some(StorageError::QuotaExceeded));
    let applied = states.apply(
        vec![BrowserStateWrite {
            component: SLOT,
            sealed: Some("v1.k1.newer".into()),
            changed: true,
        }],
        states.version(),
    );
    assert_eq!(applied.changed, vec![SLOT]);
    assert_eq!(applied.error, Some(StorageError::QuotaExceeded));
}

#[wasm_bindgen_test]
fn held_lists_every_slot_the_listener_does_not_read_that_holds_a_string() {
    let (_store, states) = memory_states("heldfor");
    let listener = |inputs: Vec<ComponentId>, outputs: Vec<ComponentId>| ListenerConfig {
        id: ListenerId(0),
        triggers: vec![],
        inputs,
        outputs,
        api_name: None,
        description: None,
        after: None,
        streams: false,
        cancels: Vec::new(),
        concurrent: false,
    };
    states.set(SLOT, Some("v1.k1.creds".into()));
    states.set(OTHER, Some("v1.k1.theme".into()));
    assert_eq!(
        states.held_for(&listener(vec![SLOT], vec![SLOT, OTHER])),
        vec![SealedValue {
            component: OTHER,
            sealed: "v1.k1.theme".into()
        }],
        "a slot the listener reads is sent as an input, not in `held`"
    );
    assert_eq!(
        states.held_for(&listener(vec![], vec![])),
        vec![
            SealedValue {
                component: SLOT,
                sealed: "v1.k1.creds".into()
            },
            SealedValue {
                component: OTHER,
                sealed: "v1.k1.theme".into()
            }
        ],
        "a listener the server runs after this one may write any slot"
    );
    states.set(OTHER, None);
    assert!(
        states
            .held_for(&listener(vec![SLOT], vec![OTHER]))
            .is_empty(),
        "a slot holding nothing is left out"
    );
}

#[wasm_bindgen_test]
fn real_local_storage_round_trip_and_external_change() {
    allow_storage();
    let entry = key("real", "creds");
    LocalStore.remove(&entry).unwrap();
    let states = BrowserStates::new(&config("real"), Box::new(LocalStore));
    assert!(states.load().is_empty());
    assert_eq!(states.held(SLOT), None);
    assert!(states.set(SLOT, Some("v1.k1.erin".into())).replaced);
    let local = LocalStore::storage().unwrap();
    assert_eq!(
        local.get_item(&entry).unwrap().as_deref(),
        Some("\"v1.k1.erin\""),
        "stored as a JSON string"
    );
    let reloaded = BrowserStates::new(&config("real"), Box::new(LocalStore));
    assert!(reloaded.load().is_empty());
    assert_eq!(reloaded.held(SLOT).as_deref(), Some("v1.k1.erin"));

    // Another tab writes: a storage event carries the raw entry.
    let raw = encode_entry("v1.k1.frank");
    assert_eq!(states.external_change(&entry, Some(&raw)), Some(SLOT));
    assert_eq!(states.input(SLOT), json!("v1.k1.frank"));
    assert_eq!(states.version(), 1);
    assert_eq!(
        states.external_change(&entry, Some(&raw)),
        None,
        "the same string: no change"
    );
    assert_eq!(
        states.external_change("keepsake:real:unknown", Some(&raw)),
        None
    );
    assert_eq!(
        states.external_change(&entry, Some("edited by hand")),
        Some(SLOT),
        "whatever the other tab stored is held, for the server to judge"
    );
    assert_eq!(states.input(SLOT), json!("edited by hand"));
    assert_eq!(
        states.external_change(&entry, None),
        Some(SLOT),
        "removed: holds nothing"
    );
    assert_eq!(states.input(SLOT), Value::Null);
    assert_eq!(states.version(), 3);

    // A removal write removes the real entry.
    assert!(reloaded.set(SLOT, None).replaced);
    assert_eq!(local.get_item(&entry).unwrap(), None);
}

#[wasm_bindgen_test]
fn a_storage_event_from_another_tab_is_taken() {
    allow_storage();
    let states = BrowserStates::new(&config("event"), Box::new(LocalStore));
    let entry = key("event", "theme");
    let init = web_sys::StorageEventInit::new();
    init.set_key(Some(&entry));
    init.set_new_value(Some(&encode_entry("v1.k1.dark")));
    init.set_storage_area(Some(&LocalStore::storage().unwrap()));
    let event = web_sys::StorageEvent::new_with_event_init_dict("storage", &init).unwrap();
    assert_eq!(states.storage_event(&event), vec![OTHER]);
    assert_eq!(states.input(OTHER), json!("v1.k1.dark"));

    // sessionStorage is another area: ignored.
    let session = web_sys::window()
        .unwrap()
        .session_storage()
        .unwrap()
        .unwrap();
    init.set_new_value(Some(&encode_entry("v1.k1.light")));
    init.set_storage_area(Some(&session));
    let event = web_sys::StorageEvent::new_with_event_init_dict("storage", &init).unwrap();
    assert!(states.storage_event(&event).is_empty());

    // localStorage.clear(): no key, every slot that held something holds nothing.
    let cleared = web_sys::StorageEventInit::new();
    cleared.set_storage_area(Some(&LocalStore::storage().unwrap()));
    let event = web_sys::StorageEvent::new_with_event_init_dict("storage", &cleared).unwrap();
    assert_eq!(states.storage_event(&event), vec![OTHER]);
    assert_eq!(states.input(OTHER), Value::Null);
}

/// Runs `body` with `window.localStorage` throwing `SecurityError`, as in a
/// sandboxed frame or with storage blocked, then lets storage be used again.
fn with_storage_forbidden(body: impl FnOnce()) {
    allow_storage();
    js_sys::Function::new_no_args(
        "window.__keepsakeSavedStorage = Object.getOwnPropertyDescriptor(window, 'localStorage'); \
         Object.defineProperty(window, 'localStorage', { configurable: true, \
           get() { throw new DOMException('The operation is insecure.', 'SecurityError'); } });",
    )
    .call0(&wasm_bindgen::JsValue::NULL)
    .unwrap();
    body();
    allow_storage();
}

/// Undoes [`with_storage_forbidden`]. Every test of the real localStorage calls it
/// first: a failed assertion aborts a test without unwinding, so the forbidding test's
/// own call may not have run.
fn allow_storage() {
    js_sys::Function::new_no_args(
        "const saved = window.__keepsakeSavedStorage; \
         if (saved) { Object.defineProperty(window, 'localStorage', saved); \
           delete window.__keepsakeSavedStorage; }",
    )
    .call0(&wasm_bindgen::JsValue::NULL)
    .unwrap();
}

#[wasm_bindgen_test]
fn forbidden_local_storage_is_reported_not_a_panic() {
    let entry = key("forbidden", "creds");
    with_storage_forbidden(|| {
        assert!(
            web_sys::window().unwrap().local_storage().is_err(),
            "the test really forbids storage"
        );
        assert_eq!(LocalStore::storage().err(), Some(StorageError::Unavailable));
        assert_eq!(LocalStore.get(&entry), Err(StorageError::Unavailable));
        assert_eq!(LocalStore.set(&entry, "v1"), Err(StorageError::Unavailable));
        assert_eq!(LocalStore.remove(&entry), Err(StorageError::Unavailable));
        let states = BrowserStates::new(&config("forbidden"), Box::new(LocalStore));
        assert_eq!(states.load(), vec![StorageError::Unavailable]);
        let outcome = states.set(SLOT, Some("v1.k1.kept".into()));
        assert_eq!(outcome.error, Some(StorageError::Unavailable));
        assert_eq!(states.input(SLOT), json!("v1.k1.kept"));
    });
    assert!(
        LocalStore::storage().is_ok(),
        "restored for the other tests"
    );
}

#[wasm_bindgen_test]
fn a_full_local_storage_is_reported_as_quota_exceeded() {
    allow_storage();
    let entry = key("full", "creds");
    // More than any browser's localStorage quota (5 to 10 MB per origin).
    let huge = "x".repeat(12 * 1024 * 1024);
    assert_eq!(
        LocalStore.set(&entry, &huge),
        Err(StorageError::QuotaExceeded)
    );
    assert_eq!(LocalStore.get(&entry), Ok(None));
}

#[wasm_bindgen_test]
fn an_answer_computed_before_another_tabs_write_does_not_undo_it() {
    let (store, states) = memory_states("stale");
    let entry = key("stale", "creds");

    // This tab sends an event having read version `read_at`; meanwhile the other tab
    // writes. The answer (computed from the older string) must not overwrite it.
    let read_at = states.version();
    let newer = encode_entry("v1.k1.carol");
    store.put_raw(&entry, &newer);
    assert_eq!(states.external_change(&entry, Some(&newer)), Some(SLOT));
    let outcome = states.set_unless_stale(SLOT, Some("v1.k1.c".into()), read_at);
    assert!(!outcome.replaced);
    let applied = states.apply(
        vec![BrowserStateWrite {
            component: SLOT,
            sealed: None,
            changed: true,
        }],
        read_at,
    );
    assert!(
        applied.changed.is_empty(),
        "no listener for a dropped write"
    );
    assert_eq!(states.input(SLOT), json!("v1.k1.carol"));
    assert_eq!(
        store.raw(&entry).as_deref(),
        Some(newer.as_str()),
        "storage keeps the newer write"
    );

    // An answer computed after it is applied.
    let read_at = states.version();
    assert!(
        states
            .set_unless_stale(SLOT, Some("v1.k1.carol-pw".into()), read_at)
            .replaced
    );
    assert_eq!(store.raw(&entry), Some(encode_entry("v1.k1.carol-pw")));
}
