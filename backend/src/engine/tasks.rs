//! The engine's background loops. Each holds a `Weak` reference, so an engine that
//! is dropped is not kept alive by its own tasks, and each ends with `shutdown`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Engine;
use crate::store::StoreEvent;

pub(super) fn spawn(
    engine: &Arc<Engine>,
    events: mpsc::UnboundedReceiver<StoreEvent>,
    sweep_every: Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(store_events(
        Arc::downgrade(engine),
        events,
        shutdown.clone(),
    ));
    tokio::spawn(sweep(Arc::downgrade(engine), sweep_every, shutdown));
}

/// Hands what the store reports to the engine, in order.
async fn store_events(
    engine: Weak<Engine>,
    mut events: mpsc::UnboundedReceiver<StoreEvent>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        let (Some(event), Some(engine)) = (event, engine.upgrade()) else {
            return;
        };
        engine.on_store_event(event).await;
    }
}

/// Ends what is due, every `every` (`Settings::validate` refuses zero).
async fn sweep(engine: Weak<Engine>, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                let Some(engine) = engine.upgrade() else { return };
                engine.sweep().await;
            }
        }
    }
}
