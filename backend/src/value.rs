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
/// handler gets its own copy) and comparable (to decide whether `.change` fires).
pub trait DynValue: Any + Send + Sync {
    fn clone_boxed(&self) -> Box<dyn DynValue>;
    /// Equality across the erasure: false when the types differ.
    fn eq_dyn(&self, other: &dyn DynValue) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> AnyValue;
}

impl<T: Clone + PartialEq + Send + Sync + 'static> DynValue for T {
    fn clone_boxed(&self) -> Box<dyn DynValue> {
        Box::new(self.clone())
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

/// Turns a handler's output back into a stored value of type `T`.
pub(crate) fn into_stored<T: Clone + PartialEq + Send + Sync + 'static>(
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
    }
}
