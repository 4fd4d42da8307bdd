//! Globals as an event sees them.
//!
//! Invariants kept here:
//! - **Writers lock every global they may write, up front, in index order**: the plan
//!   lists, for each listener, the globals it and the `.change` listeners it can set
//!   off may write ([`crate::app::ListenerDef::globals_written`]). The event takes
//!   this process's writer lock of each, in that order, then the store's lock of all
//!   of them at once (with Redis, in the script that takes the session's lease: one
//!   round trip), before any handler runs, and holds them to its commit. The store
//!   takes its locks all or none and waits for none while holding any, so two
//!   events never wait on each other in a cycle, and a read-modify-write never loses
//!   an update.
//! - **The next writer starts as soon as the commit cannot be overtaken**: with
//!   Redis, once the commit script is on its way; Redis runs one connection's
//!   commands in order, so the next writer's locking script reads what the commit
//!   wrote. The wait for the commit's reply is no longer part of every writer's turn
//!   ([`crate::store::Store::commit`]).
//! - **Readers never wait for writers**: a global an event only reads is its last
//!   committed value ([`crate::store::Store::read_global`]), taken without any writer
//!   lock. (Before, a read locked the global like a write: two listeners that each
//!   wrote one global and read the other deadlocked.)
//! - The writer locks are this process's queue: with Redis, one instance's writers
//!   wait here rather than poll Redis for the same lock.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::ApiError;
use crate::session::{Session, SessionData};
use crate::store::{GlobalHold, GlobalWrites, Lease, Store, StoreError, WriterLocks};
use crate::value::DynValue;

/// This process's writer lock of each global of an app.
pub(crate) struct GlobalWriters {
    writers: Vec<Arc<Mutex<()>>>,
}

/// The globals an event holds, with their values as the event has left them.
pub(crate) struct HeldGlobals {
    held: Vec<Held>,
    hold: Option<GlobalHold>,
}

struct Held {
    index: u32,
    /// Taken by [`HeldGlobals::take_commit`], for the store to let go.
    writer: Option<OwnedMutexGuard<()>>,
    value: Box<dyn DynValue>,
    changed: bool,
}

impl GlobalWriters {
    pub(crate) fn new(count: usize) -> Self {
        GlobalWriters {
            writers: (0..count).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }

    /// Begins an event in the store ([`Store::begin`]): first this process's writer
    /// locks of globals `indices` (sorted), then the store's lease of the session and
    /// its locks of those globals, in one step, waiting at most `wait` in all.
    pub(crate) async fn begin(
        &self,
        store: &Store,
        session: &Session,
        data: &mut SessionData,
        indices: &[u32],
        wait: Duration,
    ) -> Result<(Lease, HeldGlobals), ApiError> {
        let begun = async {
            let mut writers = Vec::with_capacity(indices.len());
            for &index in indices {
                let writer = self
                    .writers
                    .get(index as usize)
                    .ok_or_else(|| ApiError::Internal(format!("no global {index}")))?;
                writers.push(writer.clone().lock_owned().await);
            }
            let (lease, values, hold) = store.begin(session, data, indices, wait).await?;
            Ok::<_, ApiError>((writers, lease, values, hold))
        };
        let (writers, lease, values, hold) = if indices.is_empty() && !store.waits_to_begin() {
            // Nothing to wait for (no writer lock, no lease): no time-out to set, which
            // would cost a timer entry and a clock read on every such event.
            begun.await?
        } else {
            tokio::time::timeout(wait, begun)
                .await
                .map_err(|_| ApiError::from(StoreError::Busy(wait)))??
        };
        let held = indices
            .iter()
            .zip(writers)
            .zip(values)
            .map(|((&index, writer), value)| Held {
                index,
                writer: Some(writer),
                value,
                changed: false,
            })
            .collect();
        let globals = HeldGlobals {
            held,
            hold: Some(hold),
        };
        Ok((lease, globals))
    }
}

impl HeldGlobals {
    /// None held: for an event that writes no global and holds no lease.
    pub(crate) fn none() -> Self {
        HeldGlobals {
            held: Vec::new(),
            hold: None,
        }
    }

    /// The value of `index` as this event sees it, if the event holds it.
    pub(crate) fn value(&self, index: u32) -> Option<&dyn DynValue> {
        self.held
            .iter()
            .find(|held| held.index == index)
            .map(|held| &*held.value)
    }

    /// Sets a held global for the commit (an equal value changes nothing).
    pub(crate) fn set(&mut self, index: u32, value: Box<dyn DynValue>) -> Result<(), ApiError> {
        let held = self
            .held
            .iter_mut()
            .find(|held| held.index == index)
            .ok_or_else(|| {
                ApiError::Internal(format!("global {index} written without its lock"))
            })?;
        if !held.value.eq_dyn(&*value) {
            held.value = value;
            held.changed = true;
        }
        Ok(())
    }

    /// The store's hold on these globals (with Redis, their locks), if any.
    pub(crate) fn store_hold(&self) -> Option<&GlobalHold> {
        self.hold.as_ref()
    }

    /// What the commit writes: the changed globals, the store's hold on them, and
    /// this process's writer locks, which the store lets go as soon as no later
    /// writer can overtake the commit ([`crate::store::Store::commit`]).
    pub(crate) fn take_commit(&mut self) -> (GlobalWrites, GlobalHold, WriterLocks) {
        let changed = self
            .held
            .iter()
            .filter(|held| held.changed)
            .map(|held| (held.index, held.value.clone_boxed()))
            .collect();
        let writers = self.held.iter_mut().filter_map(|held| held.writer.take());
        (
            changed,
            self.hold.take().unwrap_or(GlobalHold::none()),
            WriterLocks::new(writers.collect()),
        )
    }
}
