//! Browser state: values an app keeps in this browser's localStorage, sealed by the
//! server (encrypted and authenticated with keys only the server holds).
//!
//! The page holds no key and never sees a value: per browser-state slot it holds one
//! opaque sealed string, sends it with every event that reads the slot (or, in
//! [`EventRequest::held`](keepsake_shared::event::EventRequest::held), writes it
//! without reading it), and stores what the server answers
//! ([`BrowserStateWrite`]). It never judges a string beyond "is it a string I can
//! send": one that is not what the server sealed (edited by hand, truncated, under a
//! retired key) is sent all the same, and the server answers with its removal.
//!
//! [`BrowserStates`] holds the page's sealed strings in memory, so a page keeps
//! working when storage does not, and reads, writes and removes the stored copies
//! behind [`KeyValueStore`]: the real [`LocalStore`] (gloo-storage) or a
//! [`MemoryStore`] that tests can make fail on purpose. Other tabs' writes arrive as
//! `storage` events ([`BrowserStates::storage_event`]).
//!
//! Stored format: the entry `keepsake:{app}:{storage_key}` holds the sealed string
//! as a JSON string (`"…"`), the form gloo-storage writes. An entry is read back with
//! [`decode_entry`]: a JSON string gives its content; anything else (not written by
//! Keepsake) is taken as it is and sent to the server like any other string. The same
//! rule reads a `storage` event's new value, which is the raw entry.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_storage::Storage as _;
use keepsake_shared::ComponentId;
use keepsake_shared::config::{AppConfig, ComponentKind, ListenerConfig};
use keepsake_shared::event::{BrowserStateWrite, SealedValue};
use serde_json::Value;

/// The localStorage key of a slot: namespaced by app so apps never share values.
pub fn storage_key(app: &keepsake_shared::AppId, storage_key: &str) -> String {
    format!("keepsake:{app}:{storage_key}")
}

/// A stored entry for a sealed string: the string as JSON, as gloo-storage writes it.
pub fn encode_entry(sealed: &str) -> String {
    Value::String(sealed.to_owned()).to_string()
}

/// The sealed string in a stored entry. An entry that is not a JSON string was not
/// written by Keepsake; it is kept as it is, for the server to reject.
pub fn decode_entry(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(sealed)) => sealed,
        _ => raw.to_owned(),
    }
}

/// Why the browser's storage refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("browser storage is unavailable")]
    Unavailable,
    #[error("browser storage is full")]
    QuotaExceeded,
    #[error("browser storage failed: {0}")]
    Other(String),
}

impl StorageError {
    /// The error for a JavaScript exception's `name`. Browsers disagree on the name of
    /// a full storage; Firefox used its own for years.
    pub fn from_name(name: &str) -> Self {
        match name {
            "QuotaExceededError" | "NS_ERROR_DOM_QUOTA_REACHED" => StorageError::QuotaExceeded,
            "SecurityError" => StorageError::Unavailable,
            other => StorageError::Other(other.to_owned()),
        }
    }

    fn from_js(error: &wasm_bindgen::JsValue) -> Self {
        // Read as a property, not through `instanceof`: whatever was thrown, its name
        // is what tells a full storage from a forbidden one.
        let name = js_sys::Reflect::get(error, &"name".into())
            .ok()
            .and_then(|name| name.as_string());
        match name {
            Some(name) => Self::from_name(&name),
            None => StorageError::Other("unexpected error".into()),
        }
    }
}

impl From<gloo_storage::errors::StorageError> for StorageError {
    fn from(error: gloo_storage::errors::StorageError) -> Self {
        match error {
            gloo_storage::errors::StorageError::JsError(error) => Self::from_name(&error.name),
            other => StorageError::Other(other.to_string()),
        }
    }
}

/// A store of sealed strings: localStorage, or memory in tests. `get` gives back the
/// string `set` was given (see [`decode_entry`] for entries written by others).
pub trait KeyValueStore {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    fn set(&self, key: &str, sealed: &str) -> Result<(), StorageError>;
    fn remove(&self, key: &str) -> Result<(), StorageError>;
}

/// A store shared with whoever else holds it (tests keep a handle to inspect it).
impl<S: KeyValueStore + ?Sized> KeyValueStore for Rc<S> {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, sealed: &str) -> Result<(), StorageError> {
        (**self).set(key, sealed)
    }
    fn remove(&self, key: &str) -> Result<(), StorageError> {
        (**self).remove(key)
    }
}

/// The window's localStorage, through gloo-storage.
///
/// gloo-storage's `LocalStorage::raw()`, behind all its calls, panics when the page
/// may not use storage (privacy settings, sandboxed frames: `SecurityError`), and its
/// `get` and `delete` panic if `getItem` or `removeItem` throw (Firefox has, on a
/// damaged profile). So every call first asks [`LocalStore::storage`], which cannot
/// panic; writes then go through gloo's `set` (its JSON encoding is the stored format,
/// and it returns the browser's exception as an error); reads and removals use the
/// storage object that check returned, whose exceptions are errors too.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalStore;

impl LocalStore {
    /// The localStorage object, or why this page may not use it. Never panics.
    pub fn storage() -> Result<web_sys::Storage, StorageError> {
        let window = web_sys::window().ok_or(StorageError::Unavailable)?;
        match window.local_storage() {
            Ok(Some(storage)) => Ok(storage),
            // Whatever the getter threw (`SecurityError` in Chromium), the page may not
            // use storage: no name here could mean anything else.
            Ok(None) | Err(_) => Err(StorageError::Unavailable),
        }
    }
}

impl KeyValueStore for LocalStore {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        let raw = Self::storage()?
            .get_item(key)
            .map_err(|error| StorageError::from_js(&error))?;
        Ok(raw.as_deref().map(decode_entry))
    }

    fn set(&self, key: &str, sealed: &str) -> Result<(), StorageError> {
        Self::storage()?;
        gloo_storage::LocalStorage::set(key, sealed)?;
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StorageError> {
        Self::storage()?
            .remove_item(key)
            .map_err(|error| StorageError::from_js(&error))
    }
}

/// An in-memory store for tests, which can be told to fail like a real one. Entries
/// are kept in the stored format, as localStorage would hold them.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<Vec<(String, String)>>,
    fail_writes: RefCell<Option<StorageError>>,
    fail_all: RefCell<Option<StorageError>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every `set` fail with `error` (e.g. quota exceeded); `None` heals it.
    pub fn fail_writes(&self, error: Option<StorageError>) {
        *self.fail_writes.borrow_mut() = error;
    }

    /// Makes every operation fail with `error` (e.g. storage unavailable).
    pub fn fail_all(&self, error: Option<StorageError>) {
        *self.fail_all.borrow_mut() = error;
    }

    /// The raw stored entry, for inspection.
    pub fn raw(&self, key: &str) -> Option<String> {
        let entries = self.entries.borrow();
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Stores a raw entry without any check, as another program could.
    pub fn put_raw(&self, key: &str, raw: &str) {
        let mut entries = self.entries.borrow_mut();
        entries.retain(|(k, _)| k != key);
        entries.push((key.to_owned(), raw.to_owned()));
    }

    fn failure(&self) -> Result<(), StorageError> {
        match self.fail_all.borrow().clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        self.failure()?;
        Ok(self.raw(key).as_deref().map(decode_entry))
    }

    fn set(&self, key: &str, sealed: &str) -> Result<(), StorageError> {
        self.failure()?;
        if let Some(error) = self.fail_writes.borrow().clone() {
            return Err(error);
        }
        self.put_raw(key, &encode_entry(sealed));
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.failure()?;
        self.entries.borrow_mut().retain(|(k, _)| k != key);
        Ok(())
    }
}

/// Logs a warning to the browser console. Callers pass no sealed strings.
pub fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}

/// What storing a slot's new sealed string did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetOutcome {
    /// The held string was replaced. False for a stale answer, an unknown slot, or the
    /// string the slot holds already.
    pub replaced: bool,
    /// Storage refused the write or removal; the page holds the new string anyway.
    pub error: Option<StorageError>,
}

/// What applying an event answer's browser-state writes did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// Slots whose value changed: their change listeners should run.
    pub changed: Vec<ComponentId>,
    /// The first storage failure met, if any.
    pub error: Option<StorageError>,
}

/// One browser-state slot: its localStorage key and the sealed string held.
struct Slot {
    id: ComponentId,
    key: String,
    held: RefCell<Option<String>>,
}

/// The browser-state slots of one page and the sealed strings it holds for them.
pub struct BrowserStates {
    store: Box<dyn KeyValueStore>,
    slots: Vec<Slot>,
    /// Bumped whenever another tab changes a slot; see [`BrowserStates::version`].
    external_version: Cell<u64>,
}

impl std::fmt::Debug for BrowserStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserStates")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl BrowserStates {
    /// The slots of an app's config, holding nothing until [`Self::load`].
    pub fn new(config: &AppConfig, store: Box<dyn KeyValueStore>) -> Self {
        let slots = config
            .components
            .iter()
            .filter_map(|component| match &component.kind {
                ComponentKind::BrowserState(bs) => Some(Slot {
                    id: component.id,
                    key: storage_key(&config.id, &bs.storage_key),
                    held: RefCell::new(None),
                }),
                _ => None,
            })
            .collect();
        BrowserStates {
            store,
            slots,
            external_version: Cell::new(0),
        }
    }

    fn slot(&self, id: ComponentId) -> Option<&Slot> {
        self.slots.iter().find(|slot| slot.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn contains(&self, id: ComponentId) -> bool {
        self.slot(id).is_some()
    }

    /// The full localStorage key of a slot.
    pub fn key(&self, id: ComponentId) -> Option<&str> {
        self.slot(id).map(|slot| slot.key.as_str())
    }

    /// Reads every slot's stored string. Returns the storage errors met, each once.
    pub fn load(&self) -> Vec<StorageError> {
        let mut errors = Vec::new();
        for slot in &self.slots {
            let held = match self.store.get(&slot.key) {
                Ok(held) => held,
                Err(error) => {
                    if !errors.contains(&error) {
                        errors.push(error);
                    }
                    None
                }
            };
            *slot.held.borrow_mut() = held;
        }
        errors
    }

    /// The sealed string held for a slot.
    pub fn held(&self, id: ComponentId) -> Option<String> {
        self.slot(id).and_then(|slot| slot.held.borrow().clone())
    }

    /// What an event sends for a browser-state input: the held string, or `null`
    /// when the page holds none (the slot reads as its default on the server).
    pub fn input(&self, id: ComponentId) -> Value {
        self.held(id).map_or(Value::Null, Value::String)
    }

    /// The strings held for every slot `listener` does not read: the listener, or a
    /// state `.change` listener the server runs after it, may write any of them, and
    /// the server compares what they write with what the page holds (an equal value
    /// is not written again). Slots holding nothing are left out: for them the server
    /// always sends what is written.
    pub fn held_for(&self, listener: &ListenerConfig) -> Vec<SealedValue> {
        self.slots
            .iter()
            .filter(|slot| !listener.inputs.contains(&slot.id))
            .filter_map(|slot| {
                slot.held.borrow().clone().map(|sealed| SealedValue {
                    component: slot.id,
                    sealed,
                })
            })
            .collect()
    }

    /// How many times other tabs have changed this page's browser states. An event
    /// answer computed from strings read before another tab's change must not
    /// overwrite that change (see [`BrowserStates::set_unless_stale`]).
    pub fn version(&self) -> u64 {
        self.external_version.get()
    }

    /// Holds `sealed` for a slot (`None`: holds nothing) and stores it, or removes the
    /// entry, when storage lets it. The string the slot holds already is not written
    /// again: storage has it, and a rewrite would wake every other tab for nothing.
    pub fn set(&self, id: ComponentId, sealed: Option<String>) -> SetOutcome {
        let Some(slot) = self.slot(id) else {
            return SetOutcome::default();
        };
        if *slot.held.borrow() == sealed {
            return SetOutcome::default();
        }
        let stored = match &sealed {
            Some(sealed) => self.store.set(&slot.key, sealed),
            None => self.store.remove(&slot.key),
        };
        *slot.held.borrow_mut() = sealed;
        SetOutcome {
            replaced: true,
            error: stored.err(),
        }
    }

    /// [`BrowserStates::set`], unless another tab changed a browser state since
    /// `read_at` (a [`BrowserStates::version`] taken when the event's inputs were
    /// read): that answer was computed from stale strings, and storing it would undo
    /// the other tab's newer write (and the two tabs could echo stale values at each
    /// other). The newer string stays; its change listeners are already queued.
    pub fn set_unless_stale(
        &self,
        id: ComponentId,
        sealed: Option<String>,
        read_at: u64,
    ) -> SetOutcome {
        if self.version() != read_at {
            return SetOutcome::default();
        }
        self.set(id, sealed)
    }

    /// Applies an event answer's writes (dropped if stale, see
    /// [`BrowserStates::set_unless_stale`]). A slot's change listeners run only when
    /// the server says its value changed: a re-sealed or removed bad string is stored
    /// quietly.
    pub fn apply(&self, writes: Vec<BrowserStateWrite>, read_at: u64) -> Applied {
        let mut applied = Applied::default();
        for write in writes {
            let outcome = self.set_unless_stale(write.component, write.sealed, read_at);
            if outcome.replaced && write.changed {
                applied.changed.push(write.component);
            }
            if applied.error.is_none() {
                applied.error = outcome.error;
            }
        }
        applied
    }

    /// Takes another tab's change of `key` (`new_raw`: the raw entry, `None` when it
    /// was removed). Returns the slot whose held string changed, if any: the page
    /// runs its change listeners. Nothing is written back: the other tab did.
    pub fn external_change(&self, key: &str, new_raw: Option<&str>) -> Option<ComponentId> {
        let slot = self.slots.iter().find(|slot| slot.key == key)?;
        let new = new_raw.map(decode_entry);
        if *slot.held.borrow() == new {
            return None;
        }
        *slot.held.borrow_mut() = new;
        self.external_version.set(self.external_version.get() + 1);
        Some(slot.id)
    }

    /// Takes a `storage` event: another tab of this browser changed localStorage.
    /// Returns the slots whose held string changed.
    pub fn storage_event(&self, event: &web_sys::StorageEvent) -> Vec<ComponentId> {
        // sessionStorage events are none of our business.
        if let (Some(area), Ok(local)) = (event.storage_area(), LocalStore::storage())
            && area != local
        {
            return Vec::new();
        }
        match event.key() {
            Some(key) => self
                .external_change(&key, event.new_value().as_deref())
                .into_iter()
                .collect(),
            // `localStorage.clear()`: every slot holds nothing.
            None => self
                .slots
                .iter()
                .filter_map(|slot| self.external_change(&slot.key, None))
                .collect(),
        }
    }
}
