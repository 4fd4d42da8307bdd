//! Attaching listeners: the events an app reacts to (clicks, changes, Enter, timer
//! ticks, page loads and unloads), each a shorthand for [`Blocks::on`].

use keepsake_shared::config::EventKind;

use super::Blocks;
use crate::blocks::declared::{Changeable, Clickable, EventTrigger, Submittable, Tickable};
use crate::blocks::listener::ListenerRef;
use crate::handler::{Handler, Inputs, Outputs};

impl Blocks {
    /// Registers a listener for any of `triggers`.
    pub fn on<I, O, H, M>(
        &mut self,
        triggers: impl IntoIterator<Item = EventTrigger>,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_>
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        let id = self.listeners.register(triggers, inputs, outputs, handler);
        ListenerRef::new(&mut self.listeners, id)
    }

    /// Runs `handler` when `target` is clicked.
    pub fn click<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Clickable,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on([target.clicked()], inputs, outputs, handler)
    }

    /// Runs `handler` when `target`'s value changes. For a session state, the server
    /// runs it itself after any event that changed the state's content.
    pub fn change<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Changeable,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on([target.changed()], inputs, outputs, handler)
    }

    /// Runs `handler` when Enter is pressed in `target`.
    pub fn submit<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        target: impl Submittable,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on([target.submitted()], inputs, outputs, handler)
    }

    /// Runs `handler` when a page loads (after its session started).
    pub fn load<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on(
            [EventTrigger::new(None, EventKind::Load)],
            inputs,
            outputs,
            handler,
        )
    }

    /// Runs `handler` when a page goes away (its stream ended). It may read and write
    /// server-side values only: there is no page left to update.
    pub fn unload<I: Inputs, O: Outputs, H: Handler<I::Values, O, M>, M>(
        &mut self,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'_> {
        self.on(
            [EventTrigger::new(None, EventKind::Unload)],
            inputs,
            outputs,
            handler,
        )
    }

    /// Runs `handler` every time `timer` ticks (Gradio's `timer.tick`): every
    /// interval while a page shows the app and the timer is active. See [`crate::components::Timer`].
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
    /// let listener = &app.config().listeners[0];
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
