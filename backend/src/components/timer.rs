//! [`Timer`]: periodic events (Gradio's `gr.Timer`), and its `tick` listener.
//!
//! A timer is not drawn: the page that shows the app runs it. While the page is open
//! and the timer is active, the page sends a `tick` event every interval; the
//! listener runs on the server like any other (inputs read when the event is sent,
//! one event at a time per session). A tick is skipped while the timer's previous
//! tick event is still on its way, so a slow listener never piles events up. Ticks
//! run quietly: the page shows no "Running…" for them.
//!
//! The timer's value is its interval in seconds; whether it ticks is its `active`
//! flag. A listener changes either through an output: a new value sets the interval,
//! [`Update::active`](crate::Update::active) starts or stops it (Gradio's `return gr.Timer(active=False)`).

use keepsake_shared::config::{
    AppConfig, ComponentKind, ComponentProps, EventKind, MIN_TIMER_INTERVAL_SECS,
};
use serde_json::Value;

use super::{Component, with_value};

/// Periodic events: the page runs the timer's [`Blocks::tick`](crate::Blocks::tick) listeners every
/// `seconds` while it is active (Gradio's `gr.Timer`).
///
/// [`Blocks::build`](crate::Blocks::build) refuses an interval that is not a number of seconds of at least
/// [`MIN_TIMER_INTERVAL_SECS`], and [`crate::Server::new`] an app whose timers together
/// would tick more than half as often as [`crate::Settings::max_events_per_second`]
/// allows a session (the other half is left to the user's own events). An interval an
/// output sets later is not checked by the server: a page never ticks faster than
/// [`MIN_TIMER_INTERVAL_SECS`], and the session's event limit still applies.
///
/// ```
/// use keepsake::{Blocks, State, Update};
/// use keepsake::components::{Button, Number, Timer};
///
/// let mut app = Blocks::new("clock", "Clock");
/// let timer = app.add(Timer::new(0.5));
/// let count = app.state(State::new(0u64));
/// let shown = app.add(Number::new().label("Ticks"));
/// app.tick(timer, count, (count, shown), |n: u64| (n + 1, (n + 1) as f64));
/// // A listener stops the timer by turning its `active` flag off.
/// let stop = app.add(Button::new("Stop"));
/// app.click(stop, (), timer, || Update::unchanged().active(false));
/// app.build()?;
///
/// // Too short an interval is a build error.
/// let mut bad = Blocks::new("bad", "Bad");
/// bad.add(Timer::new(0.0));
/// assert!(bad.build().is_err());
/// # Ok::<(), keepsake::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Timer {
    props: ComponentProps,
    active: bool,
}

impl Timer {
    /// A timer ticking every `seconds` (at least [`MIN_TIMER_INTERVAL_SECS`]),
    /// active from the start.
    pub fn new(seconds: f64) -> Self {
        Timer {
            props: with_value(Value::from(seconds)),
            active: true,
        }
    }
    /// Whether it ticks from the start (default: `true`); a listener's output can
    /// start it later with [`Update::active`](crate::Update::active).
    pub fn active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }
    /// A name for the timer, used by API clients when it is an input or output (it
    /// is never shown on the page).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.props.label = Some(label.into());
        self
    }
}

impl Component for Timer {
    /// The interval, in seconds.
    type Value = f64;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (
            ComponentKind::Timer {
                active: self.active,
            },
            self.props,
        )
    }
}

/// A timer's interval as declared: a number of seconds, not below the floor.
pub(super) fn check_interval(value: &Value) -> Result<(), String> {
    match value.as_f64() {
        Some(seconds) if seconds >= MIN_TIMER_INTERVAL_SECS && seconds.is_finite() => Ok(()),
        _ => Err(format!(
            "a Timer's interval must be a number of seconds, at least {MIN_TIMER_INTERVAL_SECS} (got {value})"
        )),
    }
}

/// Whether an app's timers leave a session events for anything else: together they
/// may tick at most half as often as `max_events_per_second` allows. Timers without
/// a tick listener send nothing and do not count.
pub(crate) fn check_rate(config: &AppConfig, max_events_per_second: u32) -> Result<(), String> {
    let ticks_per_second: f64 = config
        .components
        .iter()
        .filter(|c| matches!(c.kind, ComponentKind::Timer { .. }))
        .filter(|c| {
            config
                .listeners(Some(c.id), EventKind::Tick)
                .next()
                .is_some()
        })
        .filter_map(|c| c.props.value.as_f64())
        .map(|seconds| 1.0 / seconds.max(MIN_TIMER_INTERVAL_SECS))
        .sum();
    let allowed = f64::from(max_events_per_second) / 2.0;
    if ticks_per_second > allowed {
        return Err(format!(
            "its timers together tick {ticks_per_second:.1} times a second, more than half of the {max_events_per_second} events a second a session may send (--max-events-per-second): lengthen their intervals or raise the limit"
        ));
    }
    Ok(())
}
