//! What registering a listener returns: a handle to name it for API clients and to
//! chain listeners after it (`.then`, `.success`, as in Gradio).
//!
//! A chained listener has no trigger of its own: it runs once the listener it follows
//! has finished (`.then`: whatever the outcome; `.success`: only if it succeeded).
//! If it reads only server-side values (states, globals), the server runs it in the
//! same event, in the same round trip; its outputs and errors join that event's
//! result, and it lands with that event or, if it fails, is left out alone, as a
//! `.change` listener is. Otherwise the page runs it as an event of its own once it
//! has applied the result of the one it follows (`After::by_server`, decided by
//! [`crate::Blocks::build`]).

use std::sync::Arc;

use keepsake_shared::ListenerId;
use keepsake_shared::config::{After, ListenerConfig};

use crate::app::defs::{ErasedHandler, ListenerDef};
use crate::blocks::declared::EventTrigger;
use crate::handler::{Handler, HandlerError, Inputs, Outputs, SlotRef};
use crate::value::AnyValue;

/// The listeners an app's builder registered, in order (their ids are positions).
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) defs: Vec<ListenerDef>,
}

impl Listeners {
    /// Registers a listener for any of `triggers`; returns its id.
    pub(crate) fn register<I, O, H, M>(
        &mut self,
        triggers: impl IntoIterator<Item = EventTrigger>,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerId
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        let input_refs = inputs.slot_refs();
        let wire_inputs = input_refs
            .iter()
            .filter_map(|slot| match slot {
                SlotRef::Wire(id) => Some(*id),
                SlotRef::Resource(_) | SlotRef::Request | SlotRef::Notifier => None,
            })
            .collect();
        let id = ListenerId(self.defs.len() as u32);
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |values: Vec<AnyValue>| {
            let args = I::from_erased(values)
                .ok_or_else(|| HandlerError("internal error: inputs of unexpected types".into()))?;
            Ok(handler.clone().call(args))
        });
        self.defs.push(ListenerDef {
            config: ListenerConfig {
                id,
                triggers: triggers.into_iter().map(|t| t.0).collect(),
                inputs: wire_inputs,
                outputs: outputs.component_ids(),
                api_name: None,
                description: None,
                after: None,
                streams: H::STREAMS,
                cancels: Vec::new(),
                // Decided by `App::new`, which sees every slot.
                concurrent: false,
            },
            inputs: input_refs,
            handler: erased,
            globals_written: Vec::new(),
            pace: Arc::default(),
            keeps_when_stopped: true,
            stops_when_abandoned: false,
        });
        id
    }

    /// The config of listener `id` (one registered here).
    fn config(&mut self, id: ListenerId) -> &mut ListenerConfig {
        match self.defs.get_mut(id.0 as usize) {
            Some(dep) => &mut dep.config,
            None => unreachable!("listener ids come from this builder"),
        }
    }
}

/// Returned by listener registrations, to name the listener for API clients and to
/// chain others after it.
pub struct ListenerRef<'a> {
    listeners: &'a mut Listeners,
    id: ListenerId,
}

impl std::fmt::Debug for ListenerRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRef").field("id", &self.id).finish()
    }
}

impl<'a> ListenerRef<'a> {
    pub(crate) fn new(listeners: &'a mut Listeners, id: ListenerId) -> Self {
        ListenerRef { listeners, id }
    }

    /// The name API clients call this listener by: 1 to 64 ASCII letters, digits,
    /// `_` or `-`, unique in the app (checked by [`crate::Blocks::build`]). Unload
    /// listeners have none: only the server runs them.
    pub fn api_name(self, name: impl Into<String>) -> Self {
        self.listeners.config(self.id).api_name = Some(name.into());
        self
    }

    /// What the listener does, in a sentence or two, for API clients: shown on the
    /// endpoints page and in Gradio's API info, and the description of its MCP tool.
    pub fn api_description(self, text: impl Into<String>) -> Self {
        self.listeners.config(self.id).description = Some(text.into());
        self
    }

    /// Makes this listener a Stop: its events stop the running streams of
    /// `listeners` in the same session (Gradio's `cancels`). A stopped stream lands
    /// with what it yielded so far, as a finished one does, unless its listener says
    /// otherwise ([`ListenerRef::discard_when_stopped`]). The stop does not wait for
    /// the stream to let go of the session, and the page sends it at once, ahead of
    /// anything it has queued. Each listener named must stream
    /// ([`crate::Blocks::build`] checks).
    ///
    /// ```
    /// use keepsake::{Blocks, State, Streaming};
    /// use keepsake::components::{Button, Textbox};
    ///
    /// let mut app = Blocks::new("story", "Story");
    /// let story = app.add(Textbox::new().label("Story"));
    /// let (go, stop) = (app.add(Button::new("Tell")), app.add(Button::new("Stop")));
    /// let telling = app
    ///     .click(go, (), story, || {
    ///         let words = ["Once", " upon", " a", " time"];
    ///         Streaming::new(futures::stream::iter((1..=4).map(move |n| words[..n].concat())))
    ///     })
    ///     .id();
    /// app.click(stop, (), (), || ()).cancels([telling]);
    /// app.build()?;
    /// # Ok::<(), keepsake::BuildError>(())
    /// ```
    pub fn cancels(self, listeners: impl IntoIterator<Item = ListenerId>) -> Self {
        self.listeners.config(self.id).cancels.extend(listeners);
        self
    }

    /// When a Stop stops this listener's stream, nothing of it is written (by
    /// default what it yielded so far lands, as a finished stream's last item does).
    pub fn discard_when_stopped(self) -> Self {
        if let Some(def) = self.listeners.defs.get_mut(self.id.0 as usize) {
            def.keeps_when_stopped = false;
        }
        self
    }

    /// A streamed reply of this listener whose page left (closed, or its connection
    /// lost) and did not come back within [`crate::Settings::resume_window`] is
    /// stopped, as a Stop stops it (what it yielded lands, unless
    /// [`ListenerRef::discard_when_stopped`]). By default such a reply runs on and
    /// lands as any event does: the user finds it in the history.
    pub fn stop_when_abandoned(self) -> Self {
        if let Some(def) = self.listeners.defs.get_mut(self.id.0 as usize) {
            def.stops_when_abandoned = true;
        }
        self
    }

    /// The listener's id in the app's config: what an
    /// [`keepsake_shared::event::EventRequest`] names to run it.
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// Runs `handler` after this listener has finished, whether it succeeded or
    /// failed (Gradio's `.then`). Returns the new listener, to chain further.
    ///
    /// ```
    /// use keepsake::{Blocks, State};
    /// use keepsake::components::{Button, Markdown};
    ///
    /// let mut app = Blocks::new("steps", "Steps");
    /// let log = app.state(State::new(Vec::<String>::new()));
    /// let shown = app.add(Markdown::new(""));
    /// let go = app.add(Button::new("Go"));
    /// app.click(go, log, log, |mut log: Vec<String>| {
    ///     log.push("saved".into());
    ///     log
    /// })
    /// // Reads only a state: the server runs it in the same round trip.
    /// .success(log, shown, |log: Vec<String>| log.join(", "));
    /// # app.build().unwrap();
    /// ```
    pub fn then<I, O, H, M>(self, inputs: I, outputs: O, handler: H) -> ListenerRef<'a>
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        self.chain(false, inputs, outputs, handler)
    }

    /// Runs `handler` after this listener has finished, only if it succeeded
    /// (Gradio's `.success`). Returns the new listener, to chain further.
    pub fn success<I, O, H, M>(self, inputs: I, outputs: O, handler: H) -> ListenerRef<'a>
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        self.chain(true, inputs, outputs, handler)
    }

    fn chain<I, O, H, M>(
        self,
        success_only: bool,
        inputs: I,
        outputs: O,
        handler: H,
    ) -> ListenerRef<'a>
    where
        I: Inputs,
        O: Outputs,
        H: Handler<I::Values, O, M>,
    {
        let after = self.id;
        let listeners = self.listeners;
        let id = listeners.register([], inputs, outputs, handler);
        listeners.config(id).after = Some(After {
            listener: after,
            success_only,
            // Decided by `Blocks::build`, which sees every slot.
            by_server: false,
        });
        ListenerRef::new(listeners, id)
    }
}
