//! Browser states in an event: what a client sends is opened, what handlers write is
//! noted, and what goes back is sealed ([`crate::sealing`]).
//!
//! Invariants kept here:
//! - **A handler only ever sees a browser-state value this server sealed for that
//!   slot of this app, or the default.** Anything else (edited, truncated, sealed
//!   under another key, for another slot or app, expired, or of a shape the app no
//!   longer reads) reads as the default, and the answer tells the client to remove
//!   it, so it is not sent again.
//! - **An equal value is not sealed again**: a write that leaves a value as the client
//!   holds it produces no [`BrowserStateWrite`] (no needless storage write, no echo
//!   between tabs), unless the value needs new sealing (opened with an older secret,
//!   or migrated from an older version), and then it is marked unchanged.
//! - The keys are derived once per engine; random ones come from the store's seed, so
//!   every instance on one Redis namespace seals and opens alike.

use std::time::{SystemTime, UNIX_EPOCH};

use keepsake_shared::ComponentId;
use keepsake_shared::event::BrowserStateWrite;
use serde_json::Value;

use super::Engine;
use crate::app::BrowserStateDef;
use crate::error::ApiError;
use crate::sealing::{OpenError, Sealer};
use crate::value::AnyValue;

/// What becomes of the value the client holds, if no handler writes the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Good as it is.
    Keep,
    /// Readable, but to be sealed again: opened with an older secret, or migrated.
    Reseal,
    /// Unreadable: the client removes it.
    Remove,
}

/// One browser-state slot as the event knows it.
struct Seen {
    index: u32,
    /// The value the client holds (the default if it holds none or a bad one);
    /// `None` when the client did not say (a slot written by a listener the server ran).
    held: Option<Value>,
    expires_at: Option<u64>,
    fate: Fate,
    /// The newest value a listener of the event wrote.
    written: Option<Value>,
}

impl Seen {
    /// Slot `index` at its default: the client holds nothing (`Keep`) or nothing good
    /// (`Remove`).
    fn default_of(index: u32, def: &BrowserStateDef, fate: Fate) -> Seen {
        Seen {
            index,
            held: Some(def.default.clone()),
            expires_at: None,
            fate,
            written: None,
        }
    }
}

/// The browser-state slots an event has opened and written.
#[derive(Default)]
pub(super) struct BrowserSeen {
    slots: Vec<Seen>,
}

/// Unix seconds now.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Engine {
    /// The sealers of the app's browser states, by index, derived on first use (after
    /// the store gave the random seed, if a slot needs one).
    pub(super) async fn sealers(&self) -> Result<&[Sealer], ApiError> {
        let sealers = self
            .sealers
            .get_or_try_init(|| async {
                let defs = &self.app.browser_states;
                let seed = if defs.iter().any(|def| def.secrets.is_none()) {
                    Some(*self.seed().await?)
                } else {
                    None
                };
                let app = self.app.config.id.0.as_str();
                let sealers = defs
                    .iter()
                    .map(|def| match (&def.secrets, &seed) {
                        (Some(secrets), _) => Sealer::new(app, &def.storage_key, secrets),
                        (None, Some(seed)) => {
                            let material = [seed.as_slice(), def.binding.as_bytes()].concat();
                            Sealer::new(app, &def.storage_key, &[material])
                        }
                        // A seed is fetched whenever a slot has no secrets.
                        (None, None) => Sealer::new::<&[u8]>(app, &def.storage_key, &[]),
                    })
                    .collect::<Vec<_>>();
                Ok::<_, ApiError>(sealers)
            })
            .await?;
        Ok(sealers)
    }

    fn browser_def(&self, index: u32) -> Result<&BrowserStateDef, ApiError> {
        self.app
            .browser_states
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no browser state {index}")))
    }

    fn rejected(&self, reason: &'static str) {
        metrics::counter!(
            "keepsake_browser_state_rejected_total",
            "app" => self.app.config.id.0.clone(),
            "reason" => reason
        )
        .increment(1);
    }

    /// Opens what a client holds for browser state `index`: the value's JSON, its
    /// expiry, and what becomes of it. What does not open reads as the default.
    fn open_held(&self, index: u32, sealers: &[Sealer], sealed: &str) -> Result<Seen, ApiError> {
        let def = self.browser_def(index)?;
        let sealer = sealers
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no keys for browser state {index}")))?;
        let default = |fate| Seen::default_of(index, def, fate);
        let opened = match sealer.open(sealed) {
            Ok(opened) => opened,
            Err(error) => {
                self.rejected(match error {
                    OpenError::UnknownFormat | OpenError::Malformed | OpenError::Truncated => {
                        "malformed"
                    }
                    OpenError::UnknownKey => "unknown_key",
                    OpenError::Authentication => "authentication",
                });
                return Ok(default(Fate::Remove));
            }
        };
        // Past its expiry second: never early, at most a second late.
        if opened.expires_at.is_some_and(|at| now() > at) {
            self.rejected("expired");
            return Ok(default(Fate::Remove));
        }
        let Ok(json) = serde_json::from_slice::<Value>(&opened.json) else {
            self.rejected("malformed");
            return Ok(default(Fate::Remove));
        };
        let (value, fate) = if opened.version == def.version {
            let fate = if opened.key_index > 0 {
                Fate::Reseal
            } else {
                Fate::Keep
            };
            (json, fate)
        } else {
            match def.migration.as_ref().and_then(|m| m(opened.version, json)) {
                Some(migrated) => (migrated, Fate::Reseal),
                None => {
                    self.rejected("old_version");
                    return Ok(default(Fate::Remove));
                }
            }
        };
        Ok(Seen {
            index,
            held: Some(value),
            expires_at: opened.expires_at,
            fate,
            written: None,
        })
    }
}

impl BrowserSeen {
    fn record(&mut self, seen: Seen) {
        match self.slots.iter_mut().find(|s| s.index == seen.index) {
            Some(slot) => *slot = seen,
            None => self.slots.push(seen),
        }
    }

    /// A listener input from browser state `index`: `raw` is what the client sent
    /// (a sealed string, or null for none). Returns the value for the handler.
    pub(super) fn input(
        &mut self,
        engine: &Engine,
        sealers: &[Sealer],
        index: u32,
        raw: Value,
    ) -> Result<AnyValue, String> {
        let def = engine.browser_def(index).map_err(|e| e.to_string())?;
        let mut seen = match raw {
            Value::Null => Seen::default_of(index, def, Fate::Keep),
            Value::String(sealed) => engine
                .open_held(index, sealers, &sealed)
                .map_err(|e| e.to_string())?,
            _ => {
                return Err("expected the sealed string an earlier answer gave, or null".to_owned());
            }
        };
        let value = seen.held.clone().unwrap_or(Value::Null);
        let decoded = match (def.decode)(value) {
            Ok(decoded) => decoded,
            // Sealed by this app, under this version, but of a shape the type no
            // longer reads: the default, never a page stuck on errors.
            Err(_) => {
                engine.rejected("old_shape");
                seen = Seen::default_of(index, def, Fate::Remove);
                (def.decode)(def.default.clone()).map_err(|e| {
                    format!("the default of browser state {index} does not decode: {e}")
                })?
            }
        };
        self.record(seen);
        Ok(decoded)
    }

    /// What the client holds for browser state `index`, which the listener does not
    /// read.
    pub(super) fn held(
        &mut self,
        engine: &Engine,
        sealers: &[Sealer],
        index: u32,
        sealed: &str,
    ) -> Result<(), ApiError> {
        let seen = engine.open_held(index, sealers, sealed)?;
        self.record(seen);
        Ok(())
    }

    /// A listener wrote `value` (its JSON) to browser state `index`.
    pub(super) fn write(&mut self, index: u32, value: Value) {
        match self.slots.iter_mut().find(|s| s.index == index) {
            Some(slot) => slot.written = Some(value),
            None => self.slots.push(Seen {
                index,
                held: None,
                expires_at: None,
                fate: Fate::Keep,
                written: Some(value),
            }),
        }
    }

    /// Whether anything was opened or written.
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// What the client must store: new values sealed, values needing new sealing
    /// sealed again, unreadable ones removed; nothing for the rest.
    pub(super) fn finish(
        self,
        engine: &Engine,
        sealers: &[Sealer],
    ) -> Result<Vec<BrowserStateWrite>, ApiError> {
        let mut writes = Vec::new();
        for seen in self.slots {
            let def = engine.browser_def(seen.index)?;
            let sealer = sealers
                .get(seen.index as usize)
                .ok_or_else(|| ApiError::Internal("no browser-state keys".into()))?;
            let seal = |value: &Value, expires_at: Option<u64>| {
                let json = serde_json::to_vec(value)
                    .map_err(|e| ApiError::Internal(format!("browser state encoding: {e}")))?;
                sealer
                    .seal(def.version, expires_at, &json)
                    .ok_or_else(|| ApiError::Internal("browser state sealing failed".into()))
            };
            let write = |sealed, changed| BrowserStateWrite {
                component: def.component,
                sealed,
                changed,
            };
            let unchanged = match (&seen.written, &seen.held) {
                (Some(new), Some(held)) => new == held,
                (Some(_), None) => false,
                (None, _) => true,
            };
            // A new value lives `max_age` from now (rounded up to whole seconds); a
            // resealed one keeps its expiry, or gets one if `max_age` is newer.
            let fresh_expiry = def.max_age.map(|age| {
                let secs = age.as_secs() + u64::from(age.subsec_nanos() > 0);
                now().saturating_add(secs.max(1))
            });
            if !unchanged {
                let new = seen.written.as_ref().unwrap_or(&Value::Null);
                writes.push(write(Some(seal(new, fresh_expiry)?), true));
                continue;
            }
            match seen.fate {
                Fate::Keep => {}
                Fate::Reseal => {
                    let held = seen.held.as_ref().unwrap_or(&def.default);
                    let expires_at = match (seen.expires_at, fresh_expiry) {
                        (Some(old), Some(fresh)) => Some(old.min(fresh)),
                        (old, fresh) => old.or(fresh),
                    };
                    writes.push(write(Some(seal(held, expires_at)?), false));
                }
                Fate::Remove => writes.push(write(None, false)),
            }
        }
        Ok(writes)
    }
}

/// The index of browser state `id` in the app, if it is one.
pub(super) fn browser_index(engine: &Engine, id: ComponentId) -> Option<u32> {
    match engine.app.slot(id) {
        Some(crate::app::SlotDef::Browser(index)) => Some(*index),
        _ => None,
    }
}
