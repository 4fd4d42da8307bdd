//! What an event holds in Redis between loading and committing: its session's lease
//! and the locks of the globals it may write. Each is given back by the commit
//! script; dropped without one (the event failed, or its future was dropped because
//! the client went away), it is given back in the background, so the next event of
//! the session does not wait for the lease to run out.

use std::sync::Arc;

use keepsake_shared::SessionId;

use super::RedisStore;

/// A session's lease: the token `lease:{id}` holds while this event runs.
pub(crate) struct RedisLease {
    pub(super) store: Arc<RedisStore>,
    pub(super) id: SessionId,
    pub(super) token: String,
    /// False once the commit script took it back.
    pub(super) held: bool,
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        if self.held {
            let store = self.store.clone();
            let (id, token) = (self.id, std::mem::take(&mut self.token));
            spawn(async move { store.release(Some((&id, &token)), None).await });
        }
    }
}

/// The locks of an event's globals: one token in every `glock:{index}` it took.
pub(crate) struct RedisGlobalHold {
    pub(super) store: Arc<RedisStore>,
    pub(super) token: String,
    pub(super) indices: Vec<u32>,
    /// False once the commit script took them back.
    pub(super) held: bool,
}

impl Drop for RedisGlobalHold {
    fn drop(&mut self) {
        if self.held && !self.indices.is_empty() {
            let store = self.store.clone();
            let token = std::mem::take(&mut self.token);
            let indices = std::mem::take(&mut self.indices);
            spawn(async move { store.release(None, Some((&token, &indices))).await });
        }
    }
}

fn spawn(release: impl std::future::Future<Output = ()> + Send + 'static) {
    // Outside a runtime (a test dropping a store), the lease runs out by itself.
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(release);
    }
}

/// A random token naming one holder of a lease or lock.
pub(super) fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
