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

use keepsake_shared::DependencyId;
use keepsake_shared::SessionId;
use keepsake_shared::config::EventKind;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult, ListenerError, Notice};

use super::Engine;
use super::browser::BrowserSeen;
use super::globals::HeldGlobals;
use super::rendered::Run;
use super::streamed::PartialSink;
use crate::error::ApiError;
use crate::handler::{ErasedUpdate, SlotRef};
use crate::notice::Notifier;
use crate::plan::{DependencyDef, SlotDef};
use crate::render::Rendered;
use crate::request::Request;
use crate::session::{Session, SessionData, StoredState};
use crate::store::{Commit, Lease};
use crate::value::{AnyValue, DynValue};

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

impl Engine {
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
    pub(super) async fn run_event_with(
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
        let dependency = self.dependency(request.dependency)?;
        // Unload listeners, and those chained after them, are the server's to run. (A
        // chained listener has no trigger of its own: it counts as its first's.)
        let mut first = dependency;
        while let Some(after) = first.config.after {
            first = self.dependency(after.dependency)?;
        }
        let triggers = &first.config.triggers;
        if !triggers.is_empty() && triggers.iter().all(|t| t.event == EventKind::Unload) {
            return Err(ApiError::InvalidInput(
                "unload listeners are run by the server when a page goes away".into(),
            ));
        }
        let mut browser = BrowserSeen::default();
        let client_values = self
            .decode_inputs(dependency, request.inputs, &mut browser, None)
            .await?;
        self.note_held(dependency, request.held, &mut browser)
            .await?;
        let session = self.rated_session(session_id).await?;
        let mut data = session.data.lock().await;
        if data.closed {
            return Err(ApiError::UnknownSession);
        }
        let origin = origin.in_session(*session_id);
        self.run_locked(
            &session,
            &mut data,
            dependency,
            client_values,
            browser,
            &origin,
            partials,
        )
        .await
    }

    /// Runs `dependency` (and what it sets off) on a session whose data the caller
    /// has locked, and commits the event.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is a distinct part of the event; a struct would only rename them"
    )]
    pub(super) async fn run_locked(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        dependency: &DependencyDef,
        client_values: Vec<Option<AnyValue>>,
        browser: BrowserSeen,
        origin: &Request,
        partials: Option<PartialSink>,
    ) -> Result<EventResult, ApiError> {
        let wait = self.limits.event_timeout;
        let begun = self
            .writers
            .begin(
                &self.store,
                session,
                data,
                &dependency.globals_written,
                wait,
            )
            .await?;
        let run = Run {
            dependency,
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
        let Run {
            dependency,
            client_values,
            browser,
            origin,
            rendered,
            partials,
        } = run;
        let mut event = Event {
            engine: self,
            state_bytes: data.state_bytes,
            data,
            states: Vec::new(),
            defaults: Vec::new(),
            globals,
            browser,
            origin,
            rendered,
            partials,
            result: EventResult::default(),
        };
        // On failure, the lease and the locks are given back as they drop.
        event.execute(dependency, client_values, 0).await?;
        // Before the commit: a render that fails fails the event.
        event.result.regions = self.rerender(event.data, &event.states)?;
        let browser = std::mem::take(&mut event.browser);
        if !browser.is_empty() {
            // Sealed before the commit: if sealing failed, nothing would land.
            event.result.browser_state = browser.finish(self, self.sealers().await?)?;
        }
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

    pub(super) fn dependency(&self, id: DependencyId) -> Result<&DependencyDef, ApiError> {
        self.app
            .dependency(id)
            .ok_or(ApiError::UnknownDependency(id.0))
    }

    pub(super) fn slot(&self, id: keepsake_shared::ComponentId) -> Result<&SlotDef, ApiError> {
        self.app
            .slot(id)
            .ok_or_else(|| ApiError::Internal(format!("no slot {}", id.0)))
    }
}

impl<'a> Event<'a> {
    /// How slot `id` is read and written: the app's, or the rendered region's.
    fn slot(&self, id: keepsake_shared::ComponentId) -> Result<&'a SlotDef, ApiError> {
        match self.rendered.and_then(|r| r.slot(id)) {
            Some(slot) => Ok(slot),
            None => self.engine.slot(id),
        }
    }

    /// The HTML sent with a new value of component `id` (see [`crate::App::html_of`]).
    fn html_of(
        &self,
        id: keepsake_shared::ComponentId,
        value: &serde_json::Value,
    ) -> Option<String> {
        match self.rendered.and_then(|r| r.component(id)) {
            Some(component) => crate::markdown::rendered(&component.kind, value),
            None => self.engine.app.html_of(id, value),
        }
    }

    /// Runs one listener, stages its outputs into the working set, then runs the
    /// listeners of the states it changed. Errors of the listener itself are returned
    /// (and nothing of it is staged); errors of follow-up listeners are collected in
    /// the result.
    fn execute<'b>(
        &'b mut self,
        dependency: &'b DependencyDef,
        mut client_values: Vec<Option<AnyValue>>,
        depth: u32,
    ) -> futures::future::BoxFuture<'b, Result<(), ApiError>> {
        Box::pin(async move {
            let engine = self.engine;
            let mut args: Vec<AnyValue> = Vec::with_capacity(dependency.inputs.len());
            let mut wire_position = 0;
            let mut notifier = None;
            for input in &dependency.inputs {
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

            // Only the requested listener's partial outputs reach the client.
            let partials = self.partials.as_ref().filter(|_| depth == 0);
            let outputs = engine.call(dependency, args, partials).await?;
            let changed = self.stage(dependency, outputs)?;
            self.result.ran.push(dependency.config.id);
            // Its notices, now that it succeeded (before those of what it sets off).
            for (level, message) in notifier.map(|n| n.take()).unwrap_or_default() {
                self.result.notices.push(Notice {
                    dependency: dependency.config.id,
                    level,
                    message,
                });
            }

            for index in changed {
                for listener in &engine.app.state_change_listeners[index as usize] {
                    self.follow_up(*listener, depth).await;
                }
            }
            self.chained(dependency.config.id, true, depth).await;
            Ok(())
        })
    }

    /// Runs a listener that follows another in this event (a `.change` listener, a
    /// chained one). Its failure is recorded in the result, and leaves out its own
    /// outputs only.
    fn follow_up(
        &mut self,
        listener: DependencyId,
        depth: u32,
    ) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let engine = self.engine;
            let outcome = if depth >= MAX_CHANGE_DEPTH {
                Err(ApiError::Internal(format!(
                    "listeners following one another nested deeper than {MAX_CHANGE_DEPTH}; stopped"
                )))
            } else {
                match engine.dependency(listener) {
                    Ok(next) => self.execute(next, Vec::new(), depth + 1).await,
                    Err(error) => Err(error),
                }
            };
            if let Err(error) = outcome {
                self.result.errors.push(ListenerError {
                    dependency: listener,
                    error: error.body(),
                });
                self.chained(listener, false, depth + 1).await;
            }
        })
    }

    /// Runs the listeners chained after `listener` that the server runs (reading
    /// only server-side values): `.then` ones always, `.success` ones if it
    /// `succeeded`. The page runs the others once it has this event's result.
    async fn chained(&mut self, listener: DependencyId, succeeded: bool, depth: u32) {
        let engine = self.engine;
        let followers = engine
            .app
            .followers
            .get(listener.0 as usize)
            .map_or(&[][..], Vec::as_slice);
        for &follower in followers {
            let runs_here = engine
                .dependency(follower)
                .ok()
                .and_then(|def| def.config.after)
                .is_some_and(|after| after.by_server && (succeeded || !after.success_only));
            if runs_here {
                self.follow_up(follower, depth).await;
            }
        }
    }

    /// Checks a listener's outputs and, only if all pass, adds them to the working
    /// set. Returns the states whose content changed.
    fn stage(
        &mut self,
        dependency: &DependencyDef,
        outputs: Vec<ErasedUpdate>,
    ) -> Result<Vec<u32>, ApiError> {
        let engine = self.engine;
        if outputs.len() != dependency.config.outputs.len() {
            return Err(ApiError::Internal(
                "handler returned a wrong number of outputs".into(),
            ));
        }
        let mut updates = Vec::new();
        let mut new_states = Vec::new();
        let mut new_globals = Vec::new();
        let mut new_browser = Vec::new();
        for (id, output) in dependency.config.outputs.iter().zip(outputs) {
            let ErasedUpdate { value, props } = output;
            match self.slot(*id)? {
                SlotDef::Client { encode, .. } => {
                    let value = value.map(encode).transpose().map_err(|e| {
                        ApiError::HandlerFailed(format!(
                            "output for component {} could not be encoded: {e}",
                            id.0
                        ))
                    })?;
                    if value.is_some() || !props.is_empty() {
                        let html = value.as_ref().and_then(|v| self.html_of(*id, v));
                        updates.push(ComponentUpdate {
                            component: *id,
                            value,
                            html,
                            props,
                        });
                    }
                }
                SlotDef::State(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.states[*index as usize];
                        let value = (def.accept)(value).ok_or_else(|| {
                            ApiError::Internal("state output of unexpected type".into())
                        })?;
                        // Compared before it is measured: a value equal to the
                        // event's current one has that one's size, known already.
                        let changed = !self.current_equals(*index, &*value);
                        let bytes = match self.known_bytes(*index) {
                            Some(bytes) if !changed => bytes,
                            _ => value.encoded_len(),
                        };
                        new_states.push((*index, value, bytes, changed));
                    }
                }
                SlotDef::Browser(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.browser_states[*index as usize];
                        let json = (def.encode)(value).map_err(|e| {
                            ApiError::HandlerFailed(format!(
                                "output for browser state {} could not be encoded: {e}",
                                id.0
                            ))
                        })?;
                        new_browser.push((*index, json));
                    }
                }
                SlotDef::Global(index) => {
                    if let Some(value) = value {
                        let def = &engine.app.globals[*index as usize];
                        let value = (def.accept)(value).ok_or_else(|| {
                            ApiError::Internal("global output of unexpected type".into())
                        })?;
                        new_globals.push((*index, value));
                    }
                }
            }
        }

        // The session's state must stay within its size limit.
        let mut state_bytes = self.state_bytes;
        for (index, _, bytes, _) in &new_states {
            state_bytes = state_bytes.saturating_sub(self.current_bytes(*index)) + bytes;
        }
        let limit = engine.limits.max_state_bytes;
        if state_bytes > limit {
            return Err(ApiError::StateTooLarge {
                size: state_bytes,
                limit,
            });
        }
        for (index, _) in &new_globals {
            if self.globals.value(*index).is_none() {
                return Err(ApiError::Internal(format!(
                    "global {index} written without its lock"
                )));
            }
        }

        // Everything checked: the outputs join the working set.
        self.state_bytes = state_bytes;
        for (index, value) in new_globals {
            self.globals.set(index, value)?;
        }
        for (index, json) in new_browser {
            self.browser.write(index, json);
        }
        let mut changed = Vec::new();
        for (index, value, bytes, differs) in new_states {
            if differs {
                changed.push(index);
            }
            match self.states.iter().position(|(i, _, _)| *i == index) {
                Some(at) => self.states[at] = (index, value, bytes),
                None => self.states.push((index, value, bytes)),
            }
        }
        self.result.updates.extend(updates);
        Ok(changed)
    }

    /// A copy of state `index` as the event sees it: staged, stored, or the default
    /// (made once per session, on first use).
    fn state(&mut self, index: u32) -> Result<Box<dyn DynValue>, ApiError> {
        if let Some((_, value, _)) = self.staged(index) {
            return Ok(value.clone_boxed());
        }
        let def = self
            .engine
            .app
            .states
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index}")))?;
        let slot = self
            .data
            .states
            .get_mut(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index} in session")))?;
        if slot.is_none() {
            self.defaults.push(index);
        }
        let stored = slot.get_or_insert_with(|| StoredState {
            value: (def.factory)(),
            written_at: Instant::now(),
            bytes: 0,
        });
        Ok(stored.value.clone_boxed())
    }

    /// State `index` as this event has written it, if it has: value and JSON size.
    fn staged(&self, index: u32) -> Option<&(u32, Box<dyn DynValue>, usize)> {
        self.states.iter().find(|(i, _, _)| *i == index)
    }

    /// The size of state `index` as the event sees it, if it was measured: staged,
    /// or stored by a write (a default the event made has none yet).
    fn known_bytes(&self, index: u32) -> Option<usize> {
        match self.staged(index) {
            Some((_, _, bytes)) => Some(*bytes),
            None => self
                .data
                .states
                .get(index as usize)
                .and_then(Option::as_ref)
                .map(|s| s.bytes)
                // 0 marks a default not yet written (no encoding is 0 bytes long).
                .filter(|bytes| *bytes > 0),
        }
    }

    fn current_bytes(&self, index: u32) -> usize {
        match self.staged(index) {
            Some((_, _, bytes)) => *bytes,
            None => self
                .data
                .states
                .get(index as usize)
                .and_then(Option::as_ref)
                .map_or(0, |s| s.bytes),
        }
    }

    /// Whether `value` equals state `index` as the event sees it (its default if it
    /// has none yet).
    fn current_equals(&self, index: u32, value: &dyn DynValue) -> bool {
        if let Some((_, staged, _)) = self.staged(index) {
            return staged.eq_dyn(value);
        }
        match self
            .data
            .states
            .get(index as usize)
            .and_then(Option::as_ref)
        {
            Some(stored) => stored.value.eq_dyn(value),
            None => (self.engine.app.states[index as usize].factory)().eq_dyn(value),
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
