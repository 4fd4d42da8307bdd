//! Type-erased values: how the engine stores and moves values whose types only the
//! app author's code knows.
//!
//! Typing happens at the edges (the `Blocks` builder and the handler wrappers, see
//! [`crate::handler`]); in between, values travel as `Box<dyn Any>`. A downcast can
//! only fail if the builder paired a slot with the wrong type, which is a bug in this
//! crate, reported as an internal error rather than a panic.

use std::any::Any;
use std::cell::Cell;

/// A value in transit between the engine and a handler.
pub(crate) type AnyValue = Box<dyn Any + Send>;

/// A value the engine keeps (session state, global): it must be clonable (each
/// handler gets its own copy), comparable (to decide whether `.change` fires) and
/// serialisable (to measure it against the per-session limit, and to store it
/// outside the process).
pub trait DynValue: Any + Send + Sync {
    fn clone_boxed(&self) -> Box<dyn DynValue>;
    /// Size of the value's JSON encoding, without allocating it.
    fn encoded_len(&self) -> usize;
    /// Equality across the erasure: false when the types differ.
    fn eq_dyn(&self, other: &dyn DynValue) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> AnyValue;
    /// The value as JSON, for a store outside the process.
    fn to_json(&self) -> Result<serde_json::Value, String>;
}

impl<T: Clone + PartialEq + serde::Serialize + Send + Sync + 'static> DynValue for T {
    fn clone_boxed(&self) -> Box<dyn DynValue> {
        Box::new(self.clone())
    }

    fn encoded_len(&self) -> usize {
        encoded_len_of(self)
    }

    fn eq_dyn(&self, other: &dyn DynValue) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> AnyValue {
        self
    }

    fn to_json(&self) -> Result<serde_json::Value, String> {
        serde_json::to_value(self).map_err(|e| e.to_string())
    }
}

thread_local! {
    /// While [`encoded_len_of`] counts a value on this thread: the sizes that values
    /// which know their own ([`crate::List`]) gave instead of being encoded, and how
    /// many of them stood in as `null`.
    static KNOWN_SIZES: Cell<Option<KnownSizes>> = const { Cell::new(None) };
}

#[derive(Clone, Copy, Default)]
struct KnownSizes {
    bytes: usize,
    stand_ins: usize,
}

/// The length of `value`'s JSON encoding, without allocating it. A value inside it
/// that knows its own size (a [`crate::List`]) is not encoded: it gives its size
/// through [`known_size`] and is written as `null` (4 bytes, taken off again), so a
/// state holding a long list is measured in the time its other parts take.
pub(crate) fn encoded_len_of<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    /// Puts back what was there before, even if a `Serialize` panics: left set, it
    /// would turn every later encoding's lists on this thread into `null`s.
    struct Restore(Option<KnownSizes>);
    impl Drop for Restore {
        fn drop(&mut self) {
            KNOWN_SIZES.set(self.0);
        }
    }

    let restore = Restore(KNOWN_SIZES.replace(Some(KnownSizes::default())));
    let mut counter = ByteCounter(0);
    let written = serde_json::to_writer(&mut counter, value);
    let known = KNOWN_SIZES.get().unwrap_or_default();
    drop(restore);
    // A value that cannot be encoded counts as nothing; it cannot be stored
    // elsewhere either, which the store reports when it tries.
    match written {
        Ok(()) => (counter.0 + known.bytes).saturating_sub(4 * known.stand_ins),
        Err(_) => 0,
    }
}

/// Called by a value that knows the length of its JSON encoding (`bytes`) as it is
/// serialised: true while [`encoded_len_of`] is measuring on this thread, and then
/// the value must serialise as a unit (`null`) and nothing else; false for every
/// real encoding, which must then be written in full.
pub(crate) fn known_size(bytes: usize) -> bool {
    KNOWN_SIZES.with(|known| match known.get() {
        Some(mut sizes) => {
            sizes.bytes += bytes;
            sizes.stand_ins += 1;
            known.set(Some(sizes));
            true
        }
        None => false,
    })
}

/// A writer that only counts.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Turns a handler's output back into a stored value of type `T`.
pub(crate) fn into_stored<T: Clone + PartialEq + serde::Serialize + Send + Sync + 'static>(
    value: AnyValue,
) -> Option<Box<dyn DynValue>> {
    value
        .downcast::<T>()
        .ok()
        .map(|boxed| boxed as Box<dyn DynValue>)
}

/// Decodes a client's JSON value as a `T`.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned + Send + 'static>(
    value: serde_json::Value,
) -> Result<AnyValue, String> {
    serde_json::from_value::<T>(value)
        .map(|v| Box::new(v) as AnyValue)
        .map_err(|e| e.to_string())
}

/// Encodes a handler's output of type `T` as JSON for the client.
/// By reference: a streaming handler's partials are encoded from the item the
/// engine keeps, without a copy of it.
pub(crate) fn encode_json<T: serde::Serialize + 'static>(
    value: &(dyn std::any::Any + Send),
) -> Result<serde_json::Value, String> {
    let value = value
        .downcast_ref::<T>()
        .ok_or_else(|| "output of an unexpected type".to_owned())?;
    serde_json::to_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_sees_through_the_erasure() {
        let a: Box<dyn DynValue> = Box::new(vec![1, 2]);
        let b = a.clone_boxed();
        assert!(a.eq_dyn(&*b));
        assert!(!a.eq_dyn(&vec![1, 2, 3]));
        assert!(!a.eq_dyn(&"other type"));
        assert_eq!(a.encoded_len(), "[1,2]".len());
    }

    fn migrate_from_text(version: u32, data: serde_json::Value) -> Option<Box<dyn DynValue>> {
        (version == 1)
            .then(|| data.as_str().and_then(|s| s.parse::<u64>().ok()))
            .flatten()
            .map(|n| Box::new(n) as Box<dyn DynValue>)
    }

    #[test]
    fn envelopes_round_trip_and_detect_a_changed_type() {
        let v1 = Codec::new::<String>(1, None);
        let stored = v1.encode(&"41".to_owned()).expect("encodes");
        assert!(matches!(v1.decode(&stored), Decoded::Current(v) if v.eq_dyn(&"41".to_owned())));

        // Version 2 holds a number; without a migration the old text is stale.
        let v2 = Codec::new::<u64>(2, None);
        assert!(matches!(v2.decode(&stored), Decoded::Stale { .. }));
        let v2 = Codec::new::<u64>(2, Some(std::sync::Arc::new(migrate_from_text)));
        assert!(matches!(v2.decode(&stored), Decoded::Migrated(v) if v.eq_dyn(&41u64)));

        // Same version, but the type changed without a version bump: still detected.
        let undeclared = Codec::new::<u64>(1, None);
        assert!(matches!(undeclared.decode(&stored), Decoded::Stale { .. }));
        // Garbage is stale too, never a panic.
        assert!(matches!(v1.decode("not json"), Decoded::Stale { .. }));
    }
}

/// A migration: turns a value stored by an earlier version of the app (its declared
/// version and its JSON) into the current type, or `None` to fall back to the default.
pub(crate) type Migration =
    std::sync::Arc<dyn Fn(u32, serde_json::Value) -> Option<Box<dyn DynValue>> + Send + Sync>;

/// How a state's or global's values are written to a store outside the process and
/// read back: a versioned serde envelope, so that a value written by an earlier
/// version of the app is recognised rather than misread.
#[derive(Clone)]
pub(crate) struct Codec {
    /// The version the app declares for this value's type (0 unless declared).
    pub(crate) version: u32,
    /// For diagnostics only: `type_name` is not stable across compilers, so a
    /// different name alone is not treated as a type change.
    pub(crate) type_name: &'static str,
    decode: fn(serde_json::Value) -> Result<Box<dyn DynValue>, String>,
    pub(crate) migration: Option<Migration>,
}

/// What reading a stored value found.
pub(crate) enum Decoded {
    /// Written by this version of the app.
    Current(Box<dyn DynValue>),
    /// Written by another version (or no longer readable as the declared type), and
    /// turned into the current type by the app's migration.
    Migrated(Box<dyn DynValue>),
    /// Written by another version and not migrated: the caller uses the default.
    Stale { reason: String },
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "v")]
    version: u32,
    #[serde(rename = "t", borrow)]
    type_name: std::borrow::Cow<'a, str>,
    #[serde(rename = "d")]
    data: serde_json::Value,
}

fn decode_boxed<T: serde::de::DeserializeOwned + DynValue>(
    value: serde_json::Value,
) -> Result<Box<dyn DynValue>, String> {
    serde_json::from_value::<T>(value)
        .map(|v| Box::new(v) as Box<dyn DynValue>)
        .map_err(|e| e.to_string())
}

impl Codec {
    pub(crate) fn new<T: serde::de::DeserializeOwned + DynValue>(
        version: u32,
        migration: Option<Migration>,
    ) -> Self {
        Codec {
            version,
            type_name: std::any::type_name::<T>(),
            decode: decode_boxed::<T>,
            migration,
        }
    }

    pub(crate) fn encode(&self, value: &dyn DynValue) -> Result<String, String> {
        let envelope = Envelope {
            version: self.version,
            type_name: self.type_name.into(),
            data: value.to_json()?,
        };
        serde_json::to_string(&envelope).map_err(|e| e.to_string())
    }

    pub(crate) fn decode(&self, stored: &str) -> Decoded {
        let envelope: Envelope<'_> = match serde_json::from_str(stored) {
            Ok(envelope) => envelope,
            Err(error) => {
                return Decoded::Stale {
                    reason: format!("not a Keepsake value envelope: {error}"),
                };
            }
        };
        let reason = if envelope.version == self.version {
            match (self.decode)(envelope.data.clone()) {
                Ok(value) => return Decoded::Current(value),
                Err(error) => format!(
                    "stored as {} (version {}) but no longer reads as {}: {error}",
                    envelope.type_name, envelope.version, self.type_name
                ),
            }
        } else {
            format!(
                "stored by version {} of the app, which declares version {}",
                envelope.version, self.version
            )
        };
        match self
            .migration
            .as_ref()
            .and_then(|migrate| migrate(envelope.version, envelope.data))
        {
            Some(value) => Decoded::Migrated(value),
            None => Decoded::Stale { reason },
        }
    }
}
