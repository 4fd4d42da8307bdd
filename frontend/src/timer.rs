//! The clock of each timer (`ComponentKind::Timer`): not drawn, but mounted with the
//! app's view, so it runs while the page shows the app and stops with it.
//!
//! Each timer that has tick listeners gets an effect that follows its interval (its
//! value, in seconds) and its `active` flag: while active, a `setInterval` (gloo's
//! `Interval`) asks the controller to tick; a new interval or flag replaces it, and
//! dropping it (the effect re-running or going away) clears it. Whether a tick
//! actually runs is the controller's call ([`Controller::tick`]: not while the
//! previous tick is on its way).

use std::rc::Rc;

use gloo_timers::callback::Interval;
use keepsake_shared::config::{ComponentKind, EventKind, MIN_TIMER_INTERVAL_SECS};
use leptos::prelude::*;

use crate::controller::{Controller, PageHandle};

/// Starts the clocks of the app's timers; draws nothing.
pub fn timers_view(controller: &Rc<Controller>, page: PageHandle) -> impl IntoView {
    let timers = controller
        .config()
        .components
        .iter()
        .filter(|c| matches!(c.kind, ComponentKind::Timer { .. }))
        .filter(|c| controller.has_listeners(c.id, EventKind::Tick));
    for timer in timers {
        let id = timer.id;
        let (Some(value), Some(props)) = (controller.value_signal(id), controller.props_signal(id))
        else {
            continue;
        };
        Effect::new(move |previous: Option<Option<Interval>>| {
            // The old clock stops before a new one starts.
            drop(previous);
            let seconds = value.with(|v| v.as_f64()).unwrap_or(0.0);
            let active = props.with(|p| p.active);
            // Out-of-range intervals (an output may set any) tick at the floor;
            // `as` saturates for huge ones.
            let millis = (seconds.max(MIN_TIMER_INTERVAL_SECS) * 1000.0) as u32;
            active.then(|| Interval::new(millis, move || page.tick(id)))
        });
    }
}
