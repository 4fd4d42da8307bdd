//! What an event holds in Redis between loading and committing: its session's lease
//! and the locks of the globals it may write. Each is given back by the commit
//! script; dropped without one (the event failed, or its future was dropped because
//! the client went away), it is given back in the background, so the next event of
//! the session does not wait for the lease to run out. While the event runs, a
//! [`Renewal`] keeps them: a lease sized once would run out under a long stream.

use std::sync::Arc;
use std::time::Instant;

use keepsake_shared::SessionId;

use super::{RedisStore, StoreError, millis};

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

impl RedisLease {
    /// What renews this lease, and the locks of `globals` (taken under the same
    /// token), while the event runs.
    pub(crate) fn renewal(&self, globals: Option<&RedisGlobalHold>) -> Renewal {
        Renewal {
            store: self.store.clone(),
            id: self.id,
            token: self.token.clone(),
            indices: globals.map(|hold| hold.indices.clone()).unwrap_or_default(),
        }
    }
}

/// Renews an event's lease and global locks, a third of the lease before each
/// would run out, for as long as the event runs (it is dropped with the event).
pub(crate) struct Renewal {
    store: Arc<RedisStore>,
    id: SessionId,
    token: String,
    indices: Vec<u32>,
}

impl Renewal {
    /// Renews until the hold is found lost (another instance took it after it ran
    /// out), or Redis has not answered for a whole lease (then it may have run
    /// out): returns why. Never returns while the hold is kept.
    pub(crate) async fn run(self) -> StoreError {
        let lease = self.store.lease;
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(lease / 3).await;
            let mut invocation = self.store.scripts.renew.prepare_invoke();
            invocation
                .arg(&self.store.prefix)
                .arg(self.id.as_str())
                .arg(&self.token)
                .arg(millis(lease));
            for index in &self.indices {
                invocation.arg(index);
            }
            let reply: Result<i64, _> = invocation.invoke_async(&mut self.store.connection()).await;
            match reply {
                Ok(1) => renewed = Instant::now(),
                Ok(_) => return StoreError::LeaseLost,
                Err(error) if renewed.elapsed() >= lease => return error.into(),
                Err(error) => tracing::debug!(%error, "could not renew a lease; trying again"),
            }
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
