//! Where session values and globals are kept: in this process ([`memory`], the
//! default) or in Redis ([`redis`], `--store redis://...`), chosen at start-up.
//!
//! The engine ([`crate::runtime`]) runs events the same way over both. It works on a
//! [`crate::session::SessionData`] under the session's fair mutex; the memory store
//! keeps the values there, the Redis store fills it from Redis when an event starts
//! (taking the session's lease) and writes the changed values back when it ends.

pub(crate) mod memory;
pub(crate) mod redis;

use std::sync::Arc;

/// What asking a store to attach one more stream to a session gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamOpened {
    Attached,
    /// The session has as many streams as it may.
    Full,
    /// The session ended (expired or evicted) before the stream could attach.
    UnknownSession,
}

/// The store an app's runtime uses.
pub(crate) enum Store {
    Memory(memory::MemoryStore),
    Redis(Arc<redis::RedisStore>),
}

impl Store {
    pub(crate) fn retention(&self) -> std::time::Duration {
        match self {
            Store::Memory(store) => store.retention(),
            Store::Redis(store) => store.retention(),
        }
    }
}
