//! BrowserState crypto and storage, in a real browser (headless Chromium):
//! round trip, tamper/wrong-key/truncation/foreign-slot fall back to the default and
//! clear the entry, key rotation, falsy values stored, storage failures reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keepsake_frontend::browser_state::{
    BrowserStateSlot, BrowserStates, KeyValueStore, LocalStore, MemoryStore, NONCE_LEN, ReadError,
    StorageError, WriteError, associated_data, derive_key, open, seal,
};
use keepsake_shared::config::{
    AppConfig, BrowserStateConfig, ComponentConfig, ComponentKind, ComponentProps,
};
use keepsake_shared::{AppId, ComponentId, PROTOCOL_VERSION};
use serde_json::{Value, json};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn app() -> AppId {
    AppId("login".into())
}

fn slot_config(secrets: &[&str], default: Value) -> BrowserStateConfig {
    BrowserStateConfig {
        storage_key: "creds".into(),
        secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        default,
    }
}

fn slot(secrets: &[&str]) -> BrowserStateSlot {
    BrowserStateSlot::new(&app(), &slot_config(secrets, json!(["", ""])))
}

/// Flips one bit of the decoded body of a stored value, keeping it well-formed.
fn flip_bit(stored: &str, byte: usize) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (head, body) = stored.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
    bytes[byte] ^= 0x01;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[wasm_bindgen_test]
fn round_trip_restores_the_value() {
    let slot = slot(&["correct horse battery staple, long enough secret"]);
    for value in [
        json!(["alice", "s3cret"]),
        json!({"nested": [1, 2.5, null]}),
        json!("ünïcødé ✓"),
    ] {
        let stored = slot.encode(&value).unwrap();
        assert!(stored.starts_with("v1."), "versioned format: {stored}");
        assert!(
            !stored.contains("alice"),
            "the value is not readable in storage"
        );
        assert_eq!(slot.decode(&stored).unwrap().value, value);
    }
}

#[wasm_bindgen_test]
fn every_write_uses_a_fresh_nonce() {
    let slot = slot(&["secret one, long enough to be fine"]);
    let a = slot.encode(&json!("same")).unwrap();
    let b = slot.encode(&json!("same")).unwrap();
    assert_ne!(
        a, b,
        "two writes of one value must not produce the same ciphertext"
    );
}

#[wasm_bindgen_test]
fn key_id_names_the_key_without_revealing_it() {
    let key = derive_key("a secret");
    assert_eq!(key.id().len(), 16);
    assert_eq!(
        derive_key("a secret").id(),
        key.id(),
        "derivation is deterministic"
    );
    assert_ne!(derive_key("another secret").id(), key.id());
    assert!(!format!("{key:?}").contains("a secret"));
}

#[wasm_bindgen_test]
fn tampered_ciphertext_fails_authentication() {
    let slot = slot(&["secret"]);
    let stored = slot.encode(&json!(["bob", "pw"])).unwrap();
    // Nonce, ciphertext and tag: one flipped bit anywhere is detected.
    for byte in [0, NONCE_LEN, NONCE_LEN + 3] {
        assert_eq!(
            slot.decode(&flip_bit(&stored, byte)).unwrap_err(),
            ReadError::Authentication
        );
    }
}

#[wasm_bindgen_test]
fn truncated_and_malformed_values_are_rejected() {
    let slot = slot(&["secret"]);
    let stored = slot.encode(&json!("x")).unwrap();
    let cut = &stored[..stored.len() - 4];
    assert!(matches!(
        slot.decode(cut).unwrap_err(),
        ReadError::Authentication | ReadError::BadEncoding
    ));
    let (head, _) = stored.rsplit_once('.').unwrap();
    assert_eq!(
        slot.decode(&format!("{head}.AAAA")).unwrap_err(),
        ReadError::Truncated
    );
    assert_eq!(
        slot.decode(&format!("{head}.***")).unwrap_err(),
        ReadError::BadEncoding
    );
    assert_eq!(slot.decode("v1.nodots").unwrap_err(), ReadError::Malformed);
    assert_eq!(
        slot.decode("[\"plain json\"]").unwrap_err(),
        ReadError::UnknownVersion
    );
    assert_eq!(
        slot.decode("v9.0011223344556677.AAAA").unwrap_err(),
        ReadError::UnknownVersion
    );
    assert_eq!(slot.decode("").unwrap_err(), ReadError::UnknownVersion);
}

#[wasm_bindgen_test]
fn wrong_key_is_unknown_and_a_forged_key_id_fails() {
    let writer = slot(&["old app secret"]);
    let reader = slot(&["new app secret"]);
    let stored = writer.encode(&json!("v")).unwrap();
    assert_eq!(reader.decode(&stored).unwrap_err(), ReadError::UnknownKey);
    // Relabelled with the reader's key id: the tag still does not verify.
    let forged = stored.replacen(
        writer.current_key_id().unwrap(),
        reader.current_key_id().unwrap(),
        1,
    );
    assert_eq!(
        reader.decode(&forged).unwrap_err(),
        ReadError::Authentication
    );
}

#[wasm_bindgen_test]
fn a_value_moved_to_another_slot_or_app_fails() {
    let key = derive_key("shared secret");
    let nonce = [7u8; NONCE_LEN];
    let stored = seal(&key, &nonce, &associated_data(&app(), "creds"), &json!("x")).unwrap();
    let keys = [key];
    assert!(open(&keys, &associated_data(&app(), "creds"), &stored).is_ok());
    assert_eq!(
        open(&keys, &associated_data(&app(), "other"), &stored).unwrap_err(),
        ReadError::Authentication
    );
    assert_eq!(
        open(
            &keys,
            &associated_data(&AppId("other-app".into()), "creds"),
            &stored
        )
        .unwrap_err(),
        ReadError::Authentication
    );
}

#[wasm_bindgen_test]
fn unreadable_stored_value_reads_as_default_and_is_cleared() {
    let store = MemoryStore::new();
    let slot = slot(&["secret"]);
    let good = slot.encode(&json!(["carol", "pw"])).unwrap();
    for bad in [
        flip_bit(&good, NONCE_LEN + 1),
        good[..20].to_owned(),
        "garbage".to_owned(),
    ] {
        store.put_raw(slot.key(), &bad);
        let outcome = slot.read(&store);
        assert_eq!(outcome.value, json!(["", ""]));
        assert!(outcome.discarded.is_some());
        assert_eq!(
            store.raw(slot.key()),
            None,
            "the unreadable entry is removed"
        );
    }
}

#[wasm_bindgen_test]
fn rotation_decrypts_with_an_old_secret_and_re_encrypts_with_the_newest() {
    let store = MemoryStore::new();
    let before = slot(&["secret 2024"]);
    before.write(&store, &json!(["dave", "pw"])).unwrap();
    let after = slot(&["secret 2025", "secret 2024"]);
    let outcome = after.read(&store);
    assert_eq!(outcome.value, json!(["dave", "pw"]));
    let raw = store.raw(after.key()).unwrap();
    assert!(
        raw.contains(after.current_key_id().unwrap()),
        "re-encrypted under the newest key"
    );
    // The old secret can now be dropped.
    assert_eq!(
        slot(&["secret 2025"]).read(&store).value,
        json!(["dave", "pw"])
    );
    assert_eq!(before.decode(&raw).unwrap_err(), ReadError::UnknownKey);
}

#[wasm_bindgen_test]
fn falsy_values_are_stored_too() {
    let store = MemoryStore::new();
    let slot = BrowserStateSlot::new(&app(), &slot_config(&["s"], json!("default")));
    for value in [
        json!(""),
        json!(0),
        json!(false),
        json!(null),
        json!([]),
        json!({}),
    ] {
        slot.write(&store, &value).unwrap();
        assert!(store.raw(slot.key()).is_some(), "{value} must be written");
        assert_eq!(
            slot.read(&store).value,
            value,
            "{value} reads back, not the default"
        );
    }
}

fn config_with_slot(default: Value) -> AppConfig {
    AppConfig {
        protocol_version: PROTOCOL_VERSION,
        id: app(),
        title: "t".into(),
        description: String::new(),
        components: vec![ComponentConfig {
            id: ComponentId(0),
            kind: ComponentKind::BrowserState(slot_config(&["secret"], default)),
            props: ComponentProps::default(),
        }],
        layout: vec![],
        dependencies: vec![],
    }
}

/// A store that fails like a full or disabled localStorage, shared with the test.
struct Shared(std::rc::Rc<MemoryStore>);

impl KeyValueStore for Shared {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.0.get(key)
    }
    fn set(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.0.set(key, value)
    }
    fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.0.remove(key)
    }
}

#[wasm_bindgen_test]
fn quota_exceeded_keeps_the_value_in_memory_and_reports_it() {
    let store = std::rc::Rc::new(MemoryStore::new());
    let states = BrowserStates::new(
        &config_with_slot(json!("d")),
        Box::new(Shared(store.clone())),
    );
    assert!(states.load().is_empty());
    store.fail_writes(Some(StorageError::QuotaExceeded));
    let outcome = states.set(ComponentId(0), json!("kept"));
    assert!(outcome.changed);
    assert_eq!(
        outcome.error,
        Some(WriteError::Storage(StorageError::QuotaExceeded))
    );
    assert_eq!(
        states.value(ComponentId(0)),
        Some(json!("kept")),
        "kept in memory"
    );
    store.fail_writes(None);
    assert!(
        states.set(ComponentId(0), json!("saved")).error.is_none(),
        "heals when storage does"
    );
}

#[wasm_bindgen_test]
fn unavailable_storage_reads_the_default_and_is_reported() {
    let store = std::rc::Rc::new(MemoryStore::new());
    store.fail_all(Some(StorageError::Unavailable));
    let states = BrowserStates::new(
        &config_with_slot(json!(["", ""])),
        Box::new(Shared(store.clone())),
    );
    assert_eq!(states.load(), vec![StorageError::Unavailable]);
    assert_eq!(states.value(ComponentId(0)), Some(json!(["", ""])));
    let outcome = states.set(ComponentId(0), json!(["x", "y"]));
    assert_eq!(
        outcome.error,
        Some(WriteError::Storage(StorageError::Unavailable))
    );
    assert_eq!(states.value(ComponentId(0)), Some(json!(["x", "y"])));
}

#[wasm_bindgen_test]
fn real_local_storage_round_trip_and_external_change() {
    let slot = slot(&["local secret"]);
    LocalStore.remove(slot.key()).unwrap();
    slot.write(&LocalStore, &json!(["erin", ""])).unwrap();
    assert_eq!(slot.read(&LocalStore).value, json!(["erin", ""]));

    // Another tab writes: the page picks the value up; an unreadable write is ignored.
    let states = BrowserStates::new(&config_with_slot(json!(["", ""])), Box::new(LocalStore));
    let key = states.slot(ComponentId(0)).unwrap().key().to_owned();
    let other_tab = BrowserStateSlot::new(&app(), &slot_config(&["secret"], json!(null)));
    let raw = other_tab.encode(&json!(["frank", "pw"])).unwrap();
    assert_eq!(
        states.external_change(&key, Some(&raw)),
        Some(ComponentId(0))
    );
    assert_eq!(states.value(ComponentId(0)), Some(json!(["frank", "pw"])));
    assert_eq!(
        states.external_change(&key, Some(&raw)),
        None,
        "same value: no change"
    );
    assert_eq!(states.external_change(&key, Some("tampered")), None);
    assert_eq!(
        states.external_change(&key, None),
        Some(ComponentId(0)),
        "removed: back to default"
    );
    assert_eq!(states.value(ComponentId(0)), Some(json!(["", ""])));
    LocalStore.remove(slot.key()).unwrap();
}

#[wasm_bindgen_test]
fn an_answer_computed_before_another_tabs_write_does_not_undo_it() {
    let store = std::rc::Rc::new(MemoryStore::new());
    let states = BrowserStates::new(
        &config_with_slot(json!(["", ""])),
        Box::new(Shared(store.clone())),
    );
    let key = states.slot(ComponentId(0)).unwrap().key().to_owned();
    let other_tab = BrowserStateSlot::new(&app(), &slot_config(&["secret"], json!(null)));

    // This tab sends an event having read version `read_at`; meanwhile the other tab
    // writes "carol". The answer (based on the older "c") must not overwrite it.
    let read_at = states.version();
    let newer = other_tab.encode(&json!(["carol", ""])).unwrap();
    store.put_raw(&key, &newer);
    assert_eq!(
        states.external_change(&key, Some(&newer)),
        Some(ComponentId(0))
    );
    let outcome = states.set_unless_stale(ComponentId(0), json!(["c", ""]), read_at);
    assert!(!outcome.changed);
    assert_eq!(states.value(ComponentId(0)), Some(json!(["carol", ""])));
    assert_eq!(
        store.raw(&key).as_deref(),
        Some(newer.as_str()),
        "storage keeps the newer write"
    );

    // An answer computed after it is applied; an equal value is not rewritten.
    let read_at = states.version();
    assert!(
        states
            .set_unless_stale(ComponentId(0), json!(["carol", "pw"]), read_at)
            .changed
    );
    let written = store.raw(&key).unwrap();
    assert!(!states.set(ComponentId(0), json!(["carol", "pw"])).changed);
    assert_eq!(
        store.raw(&key).unwrap(),
        written,
        "an equal value wakes no other tab"
    );
}
