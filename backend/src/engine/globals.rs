//! Globals as an event sees them.
//!
//! Invariants kept here:
//! - **Writers lock every global they may write, up front, in index order**: the plan
//!   lists, for each listener, the globals it and the `.change` listeners it can set
//!   off may write ([`crate::plan::DependencyDef::globals_written`]). The event takes
//!   this process's writer lock of each, in that order, then the store's lock of all
//!   of them at once, before any handler runs, and holds them to its commit. Nothing
//!   else is locked while an event holds globals, so two events never wait on each
//!   other in a cycle, and a read-modify-write never loses an update.
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
use crate::store::{GlobalHold, GlobalWrites, Store, StoreError};
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
    _writer: OwnedMutexGuard<()>,
    value: Box<dyn DynValue>,
    changed: bool,
}

impl GlobalWriters {
    pub(crate) fn new(count: usize) -> Self {
        GlobalWriters {
            writers: (0..count).map(|_| Arc::new(Mutex::new(()))).collect(),
        }
    }

    /// Locks globals `indices` (sorted), here and in the store, waiting at most
    /// `wait` in all.
    pub(crate) async fn lock(
        &self,
        store: &Store,
        indices: &[u32],
        wait: Duration,
    ) -> Result<HeldGlobals, ApiError> {
        if indices.is_empty() {
            return Ok(HeldGlobals {
                held: Vec::new(),
                hold: None,
            });
        }
        let locked = async {
            let mut writers = Vec::with_capacity(indices.len());
            for &index in indices {
                let writer = self
                    .writers
                    .get(index as usize)
                    .ok_or_else(|| ApiError::Internal(format!("no global {index}")))?;
                writers.push(writer.clone().lock_owned().await);
            }
            let (values, hold) = store.lock_globals(indices, wait).await?;
            Ok::<_, ApiError>((writers, values, hold))
        };
        let (writers, values, hold) = tokio::time::timeout(wait, locked)
            .await
            .map_err(|_| ApiError::from(StoreError::Busy(wait)))??;
        let held = indices
            .iter()
            .zip(writers)
            .zip(values)
            .map(|((&index, writer), value)| Held {
                index,
                _writer: writer,
                value,
                changed: false,
            })
            .collect();
        Ok(HeldGlobals {
            held,
            hold: Some(hold),
        })
    }
}

impl HeldGlobals {
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

    /// What the commit writes: the changed globals, and the store's hold on them.
    /// The writer locks go when `self` does, after the commit.
    pub(crate) fn take_commit(&mut self) -> (GlobalWrites, GlobalHold) {
        let changed = self
            .held
            .iter()
            .filter(|held| held.changed)
            .map(|held| (held.index, held.value.clone_boxed()))
            .collect();
        (changed, self.hold.take().unwrap_or(GlobalHold::none()))
    }
}
