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
//! [`Update::active`] starts or stops it (Gradio's `return gr.Timer(active=False)`).

use keepsake_shared::config::{
    AppConfig, ComponentKind, ComponentProps, EventKind, MIN_TIMER_INTERVAL_SECS,
};
use serde_json::Value;

use super::{Component, with_value};
use crate::blocks::{Blocks, ListenerRef};
use crate::handler::{EventTrigger, Handle, Handler, Inputs, Outputs, Update};

/// Periodic events: the page runs the timer's [`Blocks::tick`] listeners every
/// `seconds` while it is active (Gradio's `gr.Timer`).
///
/// [`Blocks::build`] refuses an interval that is not a number of seconds of at least
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
    /// start it later with [`Update::active`].
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

/// Components whose ticks can run a listener ([`Blocks::tick`]).
pub trait Tickable: Copy {
    /// The tick event of this component.
    fn ticked(&self) -> EventTrigger;
}

impl Tickable for Handle<Timer> {
    fn ticked(&self) -> EventTrigger {
        EventTrigger::new(Some(self.id), EventKind::Tick)
    }
}

impl Blocks {
    /// Runs `handler` every time `timer` ticks (Gradio's `timer.tick`): every
    /// interval while a page shows the app and the timer is active. See [`Timer`].
    ///
    /// ```
    /// use keepsake::Blocks;
    /// use keepsake::components::{Markdown, Timer};
    /// use keepsake::protocol::config::EventKind;
    ///
    /// let mut app = Blocks::new("now", "Now");
    /// let every_second = app.add(Timer::new(1.0));
    /// let clock = app.add(Markdown::new("").label("Time"));
    /// // No inputs: the handler takes no arguments.
    /// app.tick(every_second, (), clock, || {
    ///     let secs = std::time::SystemTime::now()
    ///         .duration_since(std::time::UNIX_EPOCH)
    ///         .map_or(0, |d| d.as_secs());
    ///     format!("**{secs}** seconds since 1970")
    /// })
    /// .api_name("now");
    /// let app = app.build()?;
    /// let listener = &app.config().dependencies[0];
    /// assert_eq!(listener.triggers[0].event, EventKind::Tick);
    /// assert_eq!(listener.triggers[0].event.as_str(), "tick");
    /// # Ok::<(), keepsake::BuildError>(())
    /// ```
    pub fn tick<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        timer: impl Tickable,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on([timer.ticked()], inputs, outputs, handler)
    }
}

impl<T> Update<T> {
    /// Starts (`true`) or stops (`false`) a [`Timer`] output; other components
    /// ignore it.
    pub fn active(mut self, active: bool) -> Self {
        self.props.active = Some(active);
        self
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
