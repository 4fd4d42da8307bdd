//! Running one event: gather the inputs, call the handler, stage its outputs, run the
//! `.change` listeners of the states it changed, render again the regions whose state
//! changed ([`super::rendered`]), then commit everything in one store step.
//!
//! Invariants kept here:
//! - **Nothing is written unless the listener succeeded**: inputs are validated
//!   before the session is touched; a handler's outputs are encoded, type-checked and
//!   size-checked before they join the event's working set; the working set reaches
//!   the store only through [`crate::store::Store::commit`], which writes all of it
//!   (session values and globals) or none. A panic, an error or a time-out fails only
//!   that event. A `.change` listener that fails adds its error to the result and
//!   writes nothing; what the listeners before it did still lands.
//! - **One event at a time per session, in arrival order**: the session's data sits
//!   behind a fair tokio mutex, held for the whole event including its `.change`
//!   listeners. Sessions run in parallel.
//! - **Session and global values never leave the server**: only component outputs
//!   become `ComponentUpdate`s, and browser-state outputs leave sealed
//!   ([`super::browser`]); a value a client sends in a state or global slot is
//!   ignored ([`Engine::decode_inputs`]).
//! - Lock order: session mutex, then this process's writer locks of the globals the
//!   event may write, then (with Redis) the session's lease together with the
//!   store's locks of those globals ([`super::globals`]); never the other way round.
//!   Holding writer locks, an event may wait for its session's lease while another
//!   instance's event of that session runs: that event takes its locks all or none,
//!   so it never waits for ours.

use std::sync::Arc;
use std::time::Instant;

use keepsake_shared::ListenerId;
use keepsake_shared::SessionId;
use keepsake_shared::config::EventKind;
use keepsake_shared::event::{EventRequest, EventResult, ListenerError, Notice};

use super::Engine;
use super::browser::BrowserSeen;
use super::globals::HeldGlobals;
use super::streamed::PartialSink;
use crate::app::region::Rendered;
use crate::app::{ListenerDef, SlotDef};
use crate::error::ApiError;
use crate::handler::SlotRef;
use crate::handler::notice::Notifier;
use crate::handler::request::Request;
use crate::session::{Session, SessionData};
use crate::store::{Commit, Lease};
use crate::value::{AnyValue, DynValue};

pub(super) mod stage;

/// How many rounds of state `.change` listeners one event may cause (a listener that
/// changes a state whose listener changes it back would otherwise never end).
const MAX_CHANGE_DEPTH: u32 = 8;

/// One event's working set: what it has read and staged, not yet committed.
struct Event<'a> {
    engine: &'a Engine,
    data: &'a mut SessionData,
    /// States written by the event's listeners: the newest value of each, with the
    /// size of its JSON encoding.
    states: Vec<(u32, Box<dyn DynValue>, usize)>,
    /// States whose default the event made.
    defaults: Vec<u32>,
    /// The session's size if the event commits.
    state_bytes: usize,
    globals: HeldGlobals,
    /// Browser states opened from the request and written by listeners.
    browser: BrowserSeen,
    /// The request behind the event, for handlers that take it.
    origin: &'a Request,
    /// The region render whose listener the event runs, for its slots.
    rendered: Option<&'a Rendered>,
    /// Where the requested listener's partial outputs go, if it streams and the
    /// client asked for them ([`super::streamed`]).
    partials: Option<PartialSink>,
    result: EventResult,
}

/// What an event runs once it has its lease: the listener, the values the client
/// sent, the browser states seen, and for a rendered listener its region's render.
pub(super) struct Run<'a> {
    pub(super) listener: &'a ListenerDef,
    pub(super) client_values: Vec<Option<AnyValue>>,
    pub(super) browser: BrowserSeen,
    pub(super) origin: &'a Request,
    pub(super) rendered: Option<&'a Rendered>,
    /// Where a streaming listener's partial outputs go ([`super::streamed`]).
    pub(super) partials: Option<PartialSink>,
}

impl Engine {
    /// The live session `session_id`, if it may send another event now.
    pub(super) async fn rated_session(
        &self,
        session_id: &SessionId,
    ) -> Result<Arc<Session>, ApiError> {
        let session = self.session(session_id).await?;
        if session.rate.check().is_err() {
            return Err(ApiError::LimitExceeded(format!(
                "this session sent more than {} events per second; slow down",
                self.limits.max_events_per_second
            )));
        }
        Ok(session)
    }

    /// Runs a client's event: validates the inputs (before touching anything), then
    /// runs the listener and the `.change` listeners of the states it changed.
    pub(crate) async fn run_event(
        &self,
        session_id: &SessionId,
        request: EventRequest,
        origin: Request,
    ) -> Result<EventResult, ApiError> {
        self.run_event_with(session_id, request, origin, None).await
    }

    /// As [`Engine::run_event`], sending a streaming listener's partial outputs to
    /// `partials` as they come.
    pub(crate) async fn run_event_with(
        &self,
        session_id: &SessionId,
        request: EventRequest,
        origin: Request,
        partials: Option<PartialSink>,
    ) -> Result<EventResult, ApiError> {
        let started = Instant::now();
        let outcome = self
            .run_client_event(session_id, request, origin, partials)
            .await;
        self.metrics.event_finished(started, &outcome);
        outcome
    }

    async fn run_client_event(
        &self,
        session_id: &SessionId,
        mut request: EventRequest,
        origin: Request,
        partials: Option<PartialSink>,
    ) -> Result<EventResult, ApiError> {
        if let Some(target) = request.rendered.take() {
            return self
                .run_rendered(session_id, target, request, origin, partials)
                .await;
        }
        let listener = self.listener(request.listener)?;
        // Unload listeners, and those chained after them, are the server's to run. (A
        // chained listener has no trigger of its own: it counts as its first's.)
        let mut first = listener;
        while let Some(after) = first.config.after {
            first = self.listener(after.listener)?;
        }
        let triggers = &first.config.triggers;
        if !triggers.is_empty() && triggers.iter().all(|t| t.event == EventKind::Unload) {
            return Err(ApiError::InvalidInput(
                "unload listeners are run by the server when a page goes away".into(),
            ));
        }
        let mut browser = BrowserSeen::default();
        let client_values = self
            .decode_inputs(listener, request.inputs, &mut browser, None)
            .await?;
        self.note_held(listener, request.held, &mut browser).await?;
        let session = self.rated_session(session_id).await?;
        if !listener.config.cancels.is_empty() {
            // Before waiting for the session, which the stream holds until it lands.
            self.stop_streams(session_id, &listener.config.cancels)
                .await;
        }
        let origin = self.in_session(origin, session_id).await?;
        if listener.config.concurrent {
            let run = Run {
                listener,
                client_values,
                browser,
                origin: &origin,
                rendered: None,
                partials,
            };
            return self.run_beside(run).await;
        }
        let mut data = session.data.lock().await;
        if data.closed {
            return Err(ApiError::UnknownSession);
        }
        self.run_locked(
            &session,
            &mut data,
            listener,
            client_values,
            browser,
            &origin,
            partials,
        )
        .await
    }

    /// Runs `listener` (and what it sets off) on a session whose data the caller
    /// has locked, and commits the event.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is a distinct part of the event; a struct would only rename them"
    )]
    pub(super) async fn run_locked(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        listener: &ListenerDef,
        client_values: Vec<Option<AnyValue>>,
        browser: BrowserSeen,
        origin: &Request,
        partials: Option<PartialSink>,
    ) -> Result<EventResult, ApiError> {
        let wait = self.limits.event_timeout;
        let begun = self
            .writers
            .begin(&self.store, session, data, &listener.globals_written, wait)
            .await?;
        let run = Run {
            listener,
            client_values,
            browser,
            origin,
            rendered: None,
            partials,
        };
        self.run_begun(session, data, begun, run).await
    }

    /// Runs an event whose session lease and global locks are taken (`begun`), and
    /// commits it.
    pub(super) async fn run_begun(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        (lease, globals): (Lease, HeldGlobals),
        run: Run<'_>,
    ) -> Result<EventResult, ApiError> {
        let (mut event, listener, client_values) = Event::begin(self, data, globals, run);
        // With Redis, the lease and the locks are renewed while the listeners run (a
        // stream may run for minutes); were they lost, the commit could not land, so
        // the event fails at once. On failure, they are given back as they drop.
        let keep = lease.keep(event.globals.store_hold());
        keep.during(event.execute(listener, client_values, 0))
            .await??;
        // Before the commit: a render that fails fails the event.
        event.result.regions = self.rerender(event.data, &event.states)?;
        // Sealed before the commit: if sealing failed, nothing would land.
        event.seal_browser_states().await?;
        let (global_writes, hold, writers) = event.globals.take_commit();
        let commit = Commit {
            states: event.states,
            defaults: event.defaults,
            globals: global_writes,
        };
        let result = event.result;
        self.store
            .commit(session, event.data, lease, commit, hold, writers)
            .await?;
        Ok(result)
    }

    /// Runs an event that reads and writes no session value
    /// ([`keepsake_shared::config::ListenerConfig::concurrent`]) beside the session's
    /// others: no session lock, no lease, no global to hold, nothing to commit.
    async fn run_beside(&self, run: Run<'_>) -> Result<EventResult, ApiError> {
        // Nothing of the session is read or written: an empty stand-in.
        let mut none = SessionData {
            states: Vec::new(),
            resources: Vec::new(),
            state_bytes: 0,
            closed: false,
        };
        let (mut event, listener, client_values) =
            Event::begin(self, &mut none, HeldGlobals::none(), run);
        event.execute(listener, client_values, 0).await?;
        event.seal_browser_states().await?;
        Ok(event.result)
    }

    pub(super) fn listener(&self, id: ListenerId) -> Result<&ListenerDef, ApiError> {
        self.app.listener(id).ok_or(ApiError::UnknownListener(id.0))
    }

    pub(super) fn slot(&self, id: keepsake_shared::ComponentId) -> Result<&SlotDef, ApiError> {
        self.app
            .slot(id)
            .ok_or_else(|| ApiError::Internal(format!("no slot {}", id.0)))
    }
}

impl<'a> Event<'a> {
    /// The event of `run` on `data`, holding `globals`; with the listener to run
    /// and the values the client sent.
    fn begin(
        engine: &'a Engine,
        data: &'a mut SessionData,
        globals: HeldGlobals,
        run: Run<'a>,
    ) -> (Self, &'a ListenerDef, Vec<Option<AnyValue>>) {
        let event = Event {
            engine,
            state_bytes: data.state_bytes,
            data,
            states: Vec::new(),
            defaults: Vec::new(),
            globals,
            browser: run.browser,
            origin: run.origin,
            rendered: run.rendered,
            partials: run.partials,
            result: EventResult::default(),
        };
        (event, run.listener, run.client_values)
    }

    /// Seals into the result what the event wrote to browser states.
    async fn seal_browser_states(&mut self) -> Result<(), ApiError> {
        let browser = std::mem::take(&mut self.browser);
        if !browser.is_empty() {
            let sealers = self.engine.sealers().await?;
            self.result.browser_state = browser.finish(self.engine, sealers)?;
        }
        Ok(())
    }

    /// How slot `id` is read and written: the app's, or the rendered region's.
    fn slot(&self, id: keepsake_shared::ComponentId) -> Result<&'a SlotDef, ApiError> {
        match self.rendered.and_then(|r| r.slot(id)) {
            Some(slot) => Ok(slot),
            None => self.engine.slot(id),
        }
    }

    /// What is rendered with a new value of component `id` (see [`crate::App::rendered`]).
    fn rendered_of(
        &self,
        id: keepsake_shared::ComponentId,
        value: &serde_json::Value,
    ) -> crate::components::Rendering {
        match self.rendered.and_then(|r| r.component(id)) {
            Some(component) => crate::components::rendered(&component.kind, value),
            None => self.engine.app.rendered(id, value),
        }
    }

    /// Runs one listener, stages its outputs into the working set, then runs the
    /// listeners of the states it changed. Errors of the listener itself are returned
    /// (and nothing of it is staged); errors of follow-up listeners are collected in
    /// the result.
    fn execute<'b>(
        &'b mut self,
        listener: &'b ListenerDef,
        mut client_values: Vec<Option<AnyValue>>,
        depth: u32,
    ) -> futures::future::BoxFuture<'b, Result<(), ApiError>> {
        Box::pin(async move {
            let engine = self.engine;
            let mut args: Vec<AnyValue> = Vec::with_capacity(listener.inputs.len());
            let mut wire_position = 0;
            let mut notifier = None;
            for input in &listener.inputs {
                let value = match input {
                    SlotRef::Resource(index) => engine.resource(self.data, *index)?,
                    SlotRef::Request => Box::new(self.origin.clone()),
                    SlotRef::Notifier => {
                        Box::new(notifier.get_or_insert_with(Notifier::default).clone())
                    }
                    SlotRef::Wire(id) => {
                        let position = wire_position;
                        wire_position += 1;
                        match self.slot(*id)? {
                            SlotDef::Client { .. } | SlotDef::Browser(_) => client_values
                                .get_mut(position)
                                .and_then(Option::take)
                                .ok_or_else(|| {
                                    ApiError::Internal(format!(
                                        "missing client value for slot {}",
                                        id.0
                                    ))
                                })?,
                            SlotDef::State(index) => self.state(*index)?.into_any(),
                            SlotDef::Global(index) => match self.globals.value(*index) {
                                Some(value) => value.clone_boxed().into_any(),
                                None => engine.store.read_global(*index).await?.into_any(),
                            },
                        }
                    }
                };
                args.push(value);
            }

            // Only the requested listener's partial outputs reach the client; its
            // stream is the one a Stop may stop.
            let partials = self.partials.as_ref().filter(|_| depth == 0);
            let stop = match (listener.config.streams, self.origin.session_id()) {
                (true, Some(session)) if depth == 0 => {
                    Some(engine.running.register(*session, listener.config.id))
                }
                _ => None,
            };
            let stop = stop.as_ref().map(|registered| registered.token());
            let outputs = engine.call(listener, args, partials, stop).await?;
            // A streamed answer's own outputs are rendered by its reply, for what
            // changed only (`server/changes.rs`): not a long transcript's every
            // message again. (A rendered region's components: here, as ever.)
            let render = partials.is_none() || self.rendered.is_some();
            let changed = self.stage(listener, outputs, render)?;
            self.result.ran.push(listener.config.id);
            // Its notices, now that it succeeded (before those of what it sets off).
            for (level, message) in notifier.map(|n| n.take()).unwrap_or_default() {
                self.result.notices.push(Notice {
                    listener: listener.config.id,
                    level,
                    message,
                });
            }

            for index in changed {
                for listener in &engine.app.state_change_listeners[index as usize] {
                    self.follow_up(*listener, depth).await;
                }
            }
            self.chained(listener.config.id, true, depth).await;
            Ok(())
        })
    }

    /// Runs a listener that follows another in this event (a `.change` listener, a
    /// chained one). Its failure is recorded in the result, and leaves out its own
    /// outputs only.
    fn follow_up(
        &mut self,
        listener: ListenerId,
        depth: u32,
    ) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let engine = self.engine;
            let outcome = if depth >= MAX_CHANGE_DEPTH {
                Err(ApiError::Internal(format!(
                    "listeners following one another nested deeper than {MAX_CHANGE_DEPTH}; stopped"
                )))
            } else {
                match engine.listener(listener) {
                    Ok(next) => self.execute(next, Vec::new(), depth + 1).await,
                    Err(error) => Err(error),
                }
            };
            if let Err(error) = outcome {
                self.result.errors.push(ListenerError {
                    listener,
                    error: error.body(),
                });
                self.chained(listener, false, depth + 1).await;
            }
        })
    }

    /// Runs the listeners chained after `listener` that the server runs (reading
    /// only server-side values): `.then` ones always, `.success` ones if it
    /// `succeeded`. The page runs the others once it has this event's result.
    async fn chained(&mut self, listener: ListenerId, succeeded: bool, depth: u32) {
        let engine = self.engine;
        let followers = engine
            .app
            .followers
            .get(listener.0 as usize)
            .map_or(&[][..], Vec::as_slice);
        for &follower in followers {
            let runs_here = engine
                .listener(follower)
                .ok()
                .and_then(|def| def.config.after)
                .is_some_and(|after| after.by_server && (succeeded || !after.success_only));
            if runs_here {
                self.follow_up(follower, depth).await;
            }
        }
    }
}

impl Engine {
    fn resource(&self, data: &mut SessionData, index: u32) -> Result<AnyValue, ApiError> {
        let factory = self
            .app
            .resources
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no resource {index}")))?;
        let slot = data
            .resources
            .get_mut(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no resource {index} in session")))?;
        slot.get_or_insert_with(|| factory())
            .handle()
            .ok_or_else(|| ApiError::Internal("resource of unexpected type".into()))
    }
}
