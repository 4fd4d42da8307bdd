//! Type-erased values: how the engine stores and moves values whose types only the
//! app author's code knows.
//!
//! Typing happens at the edges (the `Blocks` builder and the handler wrappers, see
//! [`crate::handler`]); in between, values travel as `Box<dyn Any>`. A downcast can
//! only fail if the builder paired a slot with the wrong type, which is a bug in this
//! crate, reported as an internal error rather than a panic.

use std::any::Any;

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
}

impl<T: Clone + PartialEq + serde::Serialize + Send + Sync + 'static> DynValue for T {
    fn clone_boxed(&self) -> Box<dyn DynValue> {
        Box::new(self.clone())
    }

    fn encoded_len(&self) -> usize {
        let mut counter = ByteCounter(0);
        // A value that cannot be encoded counts as nothing; it cannot be stored
        // elsewhere either, which the store reports when it tries.
        match serde_json::to_writer(&mut counter, self) {
            Ok(()) => counter.0,
            Err(_) => 0,
        }
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
pub(crate) fn encode_json<T: serde::Serialize + 'static>(
    value: AnyValue,
) -> Result<serde_json::Value, String> {
    let value = value
        .downcast::<T>()
        .map_err(|_| "output of an unexpected type".to_owned())?;
    serde_json::to_value(&*value).map_err(|e| e.to_string())
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
}
