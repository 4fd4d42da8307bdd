//! Browser state: values an app keeps in this browser's localStorage, encrypted and
//! authenticated so that the page can tell whether what it reads back is its own.
//!
//! The format and crypto are plain functions ([`derive_key`], [`seal`], [`open`]) so
//! they can be tested without a DOM. Storage sits behind [`KeyValueStore`]: the real
//! [`LocalStore`] and a [`MemoryStore`] that tests can make fail on purpose.
//! [`BrowserStates`] ties both together for one page: it holds the current value of
//! every browser-state slot in memory (so a page keeps working when storage does not),
//! reads and writes the stored copies and interprets other tabs' `storage` events.
//!
//! Stored format: `v1.{key_id}.{base64url(nonce || ciphertext || tag)}` where
//! `key_id` is the hex of the first 8 bytes of SHA-256 of the AES key. The key id
//! lets a reader pick the right secret during a rotation without revealing the key.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use keepsake_shared::config::BrowserStateConfig;
use keepsake_shared::{AppId, ComponentId};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Version tag of the stored format.
pub const FORMAT_VERSION: &str = "v1";
/// HKDF salt: binds derived keys to this purpose and format version.
pub const HKDF_SALT: &[u8] = b"keepsake/browser-state/v1";
/// HKDF info: binds derived keys to the cipher they are used with.
pub const HKDF_INFO: &[u8] = b"aes-256-gcm";
/// Length of an AES-GCM nonce (96 bits).
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;
/// Length of a key id, in bytes (written as twice as many hex digits).
pub const KEY_ID_LEN: usize = 8;

/// An AES-256-GCM key derived from one app secret, with its public id.
#[derive(Clone)]
pub struct DerivedKey {
    key: [u8; 32],
    id: String,
}

impl DerivedKey {
    /// Hex id of the key: names the key in stored values without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for DerivedKey {
    // Key material must never reach logs or panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivedKey({})", self.id)
    }
}

/// Derives the AES-256-GCM key for `secret` (HKDF-SHA256) and its id.
pub fn derive_key(secret: &str) -> DerivedKey {
    let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret.as_bytes());
    let mut key = [0u8; 32];
    // HKDF-SHA256 can produce up to 255 * 32 bytes; 32 is always valid.
    hkdf.expand(HKDF_INFO, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let digest = Sha256::digest(key);
    DerivedKey {
        key,
        id: hex(&digest[..KEY_ID_LEN]),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The localStorage key of a slot: namespaced by app so apps never share values.
pub fn storage_key(app: &AppId, storage_key: &str) -> String {
    format!("keepsake:{app}:{storage_key}")
}

/// Associated data: authenticates where a value belongs, so a ciphertext copied to
/// another key or another app fails to decrypt.
pub fn associated_data(app: &AppId, storage_key: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(16 + app.0.len() + storage_key.len());
    ad.extend_from_slice(b"keepsake/v1\0");
    ad.extend_from_slice(app.0.as_bytes());
    ad.push(0);
    ad.extend_from_slice(storage_key.as_bytes());
    ad
}

/// Why a stored value could not be read. Messages name no secret and no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("unknown format version")]
    UnknownVersion,
    #[error("malformed value")]
    Malformed,
    #[error("value is not valid base64url")]
    BadEncoding,
    #[error("value is truncated")]
    Truncated,
    #[error("value was encrypted with a key this app no longer has")]
    UnknownKey,
    #[error("value failed authentication (edited, or moved from another key)")]
    Authentication,
    #[error("decrypted value is not valid JSON")]
    InvalidJson,
}

/// Why a value could not be encrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("no secret is configured for this browser state")]
    NoKey,
    #[error("the browser could not provide random numbers")]
    NoRandomness,
    #[error("the value could not be encrypted")]
    Encryption,
}

/// Encrypts `value` (its JSON text) under `key` with `nonce`, in the stored format.
pub fn seal(
    key: &DerivedKey,
    nonce: &[u8; NONCE_LEN],
    associated_data: &[u8],
    value: &Value,
) -> Result<String, SealError> {
    let plaintext = value.to_string();
    let cipher = Aes256Gcm::new(&key.key.into());
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: associated_data,
            },
        )
        .map_err(|_| SealError::Encryption)?;
    let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    body.extend_from_slice(nonce);
    body.extend_from_slice(&ciphertext);
    Ok(format!(
        "{FORMAT_VERSION}.{}.{}",
        key.id,
        URL_SAFE_NO_PAD.encode(body)
    ))
}

/// A successfully read value and which key (index into the list) decrypted it.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub value: Value,
    pub key_index: usize,
}

/// Decrypts a stored value with whichever of `keys` its key id names.
pub fn open(
    keys: &[DerivedKey],
    associated_data: &[u8],
    stored: &str,
) -> Result<Opened, ReadError> {
    let mut parts = stored.splitn(3, '.');
    let (Some(version), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(if stored.starts_with(FORMAT_VERSION) {
            ReadError::Malformed
        } else {
            ReadError::UnknownVersion
        });
    };
    if version != FORMAT_VERSION {
        return Err(ReadError::UnknownVersion);
    }
    if key_id.len() != KEY_ID_LEN * 2 {
        return Err(ReadError::Malformed);
    }
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| ReadError::BadEncoding)?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(ReadError::Truncated);
    }
    let key_index = keys
        .iter()
        .position(|key| key.id == key_id)
        .ok_or(ReadError::UnknownKey)?;
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(&keys[key_index].key.into());
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: associated_data,
            },
        )
        .map_err(|_| ReadError::Authentication)?;
    // Through `&str`, like every other JSON the client reads: one instance of the
    // JSON parser instead of a second one for byte slices.
    let text = std::str::from_utf8(&plaintext).map_err(|_| ReadError::InvalidJson)?;
    let value = serde_json::from_str(text).map_err(|_| ReadError::InvalidJson)?;
    Ok(Opened { value, key_index })
}

/// A fresh random nonce from Web Crypto.
pub fn random_nonce() -> Result<[u8; NONCE_LEN], SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    let crypto = web_sys::window()
        .and_then(|window| window.crypto().ok())
        .ok_or(SealError::NoRandomness)?;
    crypto
        .get_random_values_with_u8_array(&mut nonce)
        .map_err(|_| SealError::NoRandomness)?;
    Ok(nonce)
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

/// A string key-value store: localStorage, or memory in tests.
pub trait KeyValueStore {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError>;
    fn set(&self, key: &str, value: &str) -> Result<(), StorageError>;
    fn remove(&self, key: &str) -> Result<(), StorageError>;
}

/// The window's localStorage. Looked up on each call: it may be unavailable (privacy
/// settings, sandboxed frames) and every failure must be an error, not a panic.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalStore;

impl LocalStore {
    fn storage() -> Result<web_sys::Storage, StorageError> {
        web_sys::window()
            .and_then(|window| window.local_storage().ok().flatten())
            .ok_or(StorageError::Unavailable)
    }
}

fn storage_error(error: wasm_bindgen::JsValue) -> StorageError {
    use wasm_bindgen::JsCast as _;
    match error.dyn_ref::<web_sys::DomException>() {
        // Browsers disagree on the name; Firefox used its own for years.
        Some(e) if e.name() == "QuotaExceededError" || e.name() == "NS_ERROR_DOM_QUOTA_REACHED" => {
            StorageError::QuotaExceeded
        }
        Some(e) if e.name() == "SecurityError" => StorageError::Unavailable,
        Some(e) => StorageError::Other(e.name()),
        None => StorageError::Other("unexpected error".into()),
    }
}

impl KeyValueStore for LocalStore {
    fn get(&self, key: &str) -> Result<Option<String>, StorageError> {
        Self::storage()?.get_item(key).map_err(storage_error)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StorageError> {
        Self::storage()?.set_item(key, value).map_err(storage_error)
    }

    fn remove(&self, key: &str) -> Result<(), StorageError> {
        Self::storage()?.remove_item(key).map_err(storage_error)
    }
}

/// An in-memory store for tests, which can be told to fail like a real one.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RefCell<BTreeMap<String, String>>,
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

    /// The raw stored entries, for inspection.
    pub fn raw(&self, key: &str) -> Option<String> {
        self.entries.borrow().get(key).cloned()
    }

    /// Stores a raw entry without any check, as another program could.
    pub fn put_raw(&self, key: &str, value: &str) {
        self.entries
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
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
        Ok(self.entries.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.failure()?;
        if let Some(error) = self.fail_writes.borrow().clone() {
            return Err(error);
        }
        self.entries
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn remove(&self, key: &str) -> Result<(), StorageError> {
        self.failure()?;
        self.entries.borrow_mut().remove(key);
        Ok(())
    }
}

/// Why a value could not be saved. The value is still kept in memory for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// One browser-state slot: where and how its value is stored.
#[derive(Debug, Clone)]
pub struct BrowserStateSlot {
    key: String,
    associated_data: Vec<u8>,
    /// Newest first: encrypt with the first, decrypt with any.
    keys: Vec<DerivedKey>,
    default: Value,
}

/// What reading a slot found.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutcome {
    pub value: Value,
    /// A stored value that was unreadable and has been removed.
    pub discarded: Option<ReadError>,
    /// Storage refused to be read, or to take a rotated or cleared value.
    pub storage_error: Option<StorageError>,
}

impl BrowserStateSlot {
    pub fn new(app: &AppId, config: &BrowserStateConfig) -> Self {
        BrowserStateSlot {
            key: storage_key(app, &config.storage_key),
            associated_data: associated_data(app, &config.storage_key),
            keys: config.secrets.iter().map(|s| derive_key(s)).collect(),
            default: config.default.clone(),
        }
    }

    /// The full localStorage key.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn default_value(&self) -> &Value {
        &self.default
    }

    /// Id of the key new values are encrypted with.
    pub fn current_key_id(&self) -> Option<&str> {
        self.keys.first().map(DerivedKey::id)
    }

    /// Decrypts a raw stored value (no storage access).
    pub fn decode(&self, raw: &str) -> Result<Opened, ReadError> {
        open(&self.keys, &self.associated_data, raw)
    }

    /// Encrypts a value with the newest key and the given nonce (no storage access).
    pub fn encode_with_nonce(
        &self,
        value: &Value,
        nonce: &[u8; NONCE_LEN],
    ) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::NoKey)?;
        seal(key, nonce, &self.associated_data, value)
    }

    /// Encrypts a value with the newest key and a fresh random nonce.
    pub fn encode(&self, value: &Value) -> Result<String, SealError> {
        self.encode_with_nonce(value, &random_nonce()?)
    }

    /// Reads the stored value. Anything unreadable yields the default and is removed;
    /// a value under an older secret is re-encrypted under the newest one.
    pub fn read(&self, store: &dyn KeyValueStore) -> ReadOutcome {
        let mut outcome = ReadOutcome {
            value: self.default.clone(),
            discarded: None,
            storage_error: None,
        };
        let raw = match store.get(&self.key) {
            Ok(Some(raw)) => raw,
            Ok(None) => return outcome,
            Err(error) => {
                outcome.storage_error = Some(error);
                return outcome;
            }
        };
        match self.decode(&raw) {
            Ok(opened) => {
                if opened.key_index > 0 {
                    // Rotation: from now on only the newest secret is needed.
                    if let Err(WriteError::Storage(error)) = self.write(store, &opened.value) {
                        outcome.storage_error = Some(error);
                    }
                }
                outcome.value = opened.value;
            }
            Err(error) => {
                warn(&format!(
                    "Keepsake: the stored browser state \"{}\" was unreadable ({error}); using its default value",
                    self.key
                ));
                outcome.discarded = Some(error);
                if let Err(error) = store.remove(&self.key) {
                    outcome.storage_error = Some(error);
                }
            }
        }
        outcome
    }

    /// Encrypts and stores `value`. Every value is stored, falsy ones included.
    pub fn write(&self, store: &dyn KeyValueStore, value: &Value) -> Result<(), WriteError> {
        let sealed = self.encode(value)?;
        store.set(&self.key, &sealed)?;
        Ok(())
    }
}

/// Logs a warning to the browser console. Callers pass no secrets and no values.
pub fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}

/// What setting a browser-state value did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetOutcome {
    /// The in-memory value is different from before (its change listeners should run).
    pub changed: bool,
    /// The value could not be saved; it is kept in memory for this page only.
    pub error: Option<WriteError>,
}

/// The browser-state slots of one page and their current values.
pub struct BrowserStates {
    store: Box<dyn KeyValueStore>,
    slots: HashMap<ComponentId, (BrowserStateSlot, RefCell<Value>)>,
    /// Bumped whenever another tab changes a slot; see [`BrowserStates::version`].
    external_version: Cell<u64>,
}

impl fmt::Debug for BrowserStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserStates")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl BrowserStates {
    /// The slots of an app's config, with their defaults as values until [`Self::load`].
    pub fn new(config: &keepsake_shared::config::AppConfig, store: Box<dyn KeyValueStore>) -> Self {
        let slots = config
            .components
            .iter()
            .filter_map(|component| match &component.kind {
                keepsake_shared::config::ComponentKind::BrowserState(bs) => {
                    let slot = BrowserStateSlot::new(&config.id, bs);
                    let value = RefCell::new(slot.default.clone());
                    Some((component.id, (slot, value)))
                }
                _ => None,
            })
            .collect();
        BrowserStates {
            store,
            slots,
            external_version: Cell::new(0),
        }
    }

    pub fn store(&self) -> &dyn KeyValueStore {
        self.store.as_ref()
    }

    pub fn contains(&self, id: ComponentId) -> bool {
        self.slots.contains_key(&id)
    }

    pub fn slot(&self, id: ComponentId) -> Option<&BrowserStateSlot> {
        self.slots.get(&id).map(|(slot, _)| slot)
    }

    /// Reads every slot from storage. Returns the storage errors met (deduplicated).
    pub fn load(&self) -> Vec<StorageError> {
        let mut errors = Vec::new();
        for (slot, value) in self.slots.values() {
            let outcome = slot.read(self.store.as_ref());
            *value.borrow_mut() = outcome.value;
            if let Some(error) = outcome.storage_error
                && !errors.contains(&error)
            {
                errors.push(error);
            }
        }
        errors
    }

    /// The current value of a slot (what an event sends for it).
    pub fn value(&self, id: ComponentId) -> Option<Value> {
        self.slots.get(&id).map(|(_, value)| value.borrow().clone())
    }

    /// How many times other tabs have changed this page's browser states. An event
    /// answer computed from values read before another tab's change must not
    /// overwrite that change (see [`BrowserStates::set_unless_stale`]).
    pub fn version(&self) -> u64 {
        self.external_version.get()
    }

    /// Sets a slot's value: in memory always, in storage when possible. A value equal
    /// to the current one is not written again: storage holds it already, and a
    /// rewrite (a fresh nonce, so a new string) would wake every other tab for nothing.
    pub fn set(&self, id: ComponentId, new: Value) -> SetOutcome {
        let Some((slot, value)) = self.slots.get(&id) else {
            return SetOutcome::default();
        };
        if *value.borrow() == new {
            return SetOutcome::default();
        }
        let error = slot.write(self.store.as_ref(), &new).err();
        *value.borrow_mut() = new;
        SetOutcome {
            changed: true,
            error,
        }
    }

    /// [`BrowserStates::set`], unless another tab changed a browser state since
    /// `read_at` (a [`BrowserStates::version`] taken when the event's inputs were
    /// read): that answer was computed from stale values, and writing it would undo
    /// the other tab's newer write (and the two tabs could echo stale values at each
    /// other). The newer value stays; its change listeners are already queued.
    pub fn set_unless_stale(&self, id: ComponentId, new: Value, read_at: u64) -> SetOutcome {
        if self.version() != read_at {
            return SetOutcome::default();
        }
        self.set(id, new)
    }

    /// Interprets another tab's change of `key` (a `storage` event). Returns the slot
    /// whose value changed, if any. Unreadable values are ignored here: the tab that
    /// wrote them, or the next page load, deals with them, and fighting over the
    /// entry between tabs would help no one.
    pub fn external_change(&self, key: &str, new_raw: Option<&str>) -> Option<ComponentId> {
        let (id, (slot, value)) = self.slots.iter().find(|(_, (slot, _))| slot.key == key)?;
        let new = match new_raw {
            None => slot.default.clone(),
            Some(raw) => match slot.decode(raw) {
                Ok(opened) => opened.value,
                Err(error) => {
                    warn(&format!(
                        "Keepsake: another tab stored an unreadable value for \"{key}\" ({error}); ignored"
                    ));
                    return None;
                }
            },
        };
        if *value.borrow() == new {
            return None;
        }
        *value.borrow_mut() = new;
        self.external_version.set(self.external_version.get() + 1);
        Some(*id)
    }
}
