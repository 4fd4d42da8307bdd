//! The engine: runs one app's events against its sessions and globals.
//!
//! Invariants kept here:
//! - A session's events run one at a time, in arrival order (its data mutex is fair).
//! - Nothing is written unless the handler succeeded and every output was encoded:
//!   outputs are staged first and committed afterwards.
//! - A global written by a listener is locked for the listener's whole run (in index
//!   order, so two listeners never deadlock): read-modify-write never loses updates.
//! - Session and global values never leave the server: only component and
//!   browser-state outputs become `ComponentUpdate`s.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures::FutureExt;
use keepsake_shared::config::EventKind;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult, ListenerError};
use keepsake_shared::{ComponentId, DependencyId, SessionId};
use serde_json::Value;
use tokio::sync::{OwnedMutexGuard, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::time::DelayQueue;

use crate::blocks::{App, DependencyDef, SlotDef};
use crate::components::validate_input;
use crate::error::ApiError;
use crate::handler::{ErasedUpdate, SlotRef};
use crate::session::{EndReason, EndedSessions, Session, SessionData, SessionStore, StoredState};
use crate::settings::Settings;
use crate::value::{AnyValue, DynValue};

/// How many rounds of state `.change` listeners one event may cause (a listener that
/// changes a state whose listener changes it back would otherwise never end).
const MAX_CHANGE_DEPTH: u32 = 8;

type GlobalCell = Arc<tokio::sync::Mutex<Box<dyn DynValue>>>;

struct TtlRequest {
    session: Weak<Session>,
    id: SessionId,
    state: u32,
    ttl: Duration,
}

/// A mounted app with its sessions and globals.
pub(crate) struct AppRuntime {
    pub(crate) app: App,
    pub(crate) sessions: SessionStore,
    globals: Vec<GlobalCell>,
    /// Updates of bound globals, fanned out to every open stream.
    pub(crate) pushes: broadcast::Sender<ComponentUpdate>,
    ttl_requests: mpsc::UnboundedSender<TtlRequest>,
    event_timeout: Duration,
    max_state_bytes: usize,
    max_events_per_second: u32,
    metrics: Metrics,
}

/// This app's metric handles, registered once.
struct Metrics {
    events_ok: metrics::Counter,
    event_duration: metrics::Histogram,
    sessions_expired: metrics::Counter,
    sessions_evicted: metrics::Counter,
    state_expiries: metrics::Counter,
}

impl Metrics {
    fn new(app: &str) -> Self {
        let app = app.to_owned();
        Metrics {
            events_ok: metrics::counter!("keepsake_events_total", "app" => app.clone(), "outcome" => "ok"),
            event_duration: metrics::histogram!("keepsake_event_duration_seconds", "app" => app.clone()),
            sessions_expired: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "expired"),
            sessions_evicted: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "evicted"),
            state_expiries: metrics::counter!("keepsake_state_expiries_total", "app" => app),
        }
    }
}

impl AppRuntime {
    /// Mounts `app` and starts its background tasks (which end with `shutdown`).
    pub(crate) fn start(app: App, settings: &Settings, shutdown: CancellationToken) -> Arc<Self> {
        let (sessions, ended) = SessionStore::new(
            settings.session_capacity,
            settings.session_retention,
            settings.max_events_per_second,
            app.states.len(),
            app.resources.len(),
        );
        let globals = app
            .globals
            .iter()
            .map(|g| Arc::new(tokio::sync::Mutex::new(g.initial.clone_boxed())))
            .collect();
        let (ttl_requests, ttl_rx) = mpsc::unbounded_channel();
        let metrics = Metrics::new(&app.config.id.0);
        let runtime = Arc::new(AppRuntime {
            metrics,
            max_state_bytes: settings.max_state_bytes,
            max_events_per_second: settings.max_events_per_second,
            app,
            sessions,
            globals,
            pushes: broadcast::channel(256).0,
            ttl_requests,
            event_timeout: settings.event_timeout,
        });
        tokio::spawn(end_sessions(
            Arc::downgrade(&runtime),
            ended,
            shutdown.clone(),
        ));
        tokio::spawn(expire_states(
            Arc::downgrade(&runtime),
            ttl_rx,
            shutdown.clone(),
        ));
        tokio::spawn(sweep_sessions(
            Arc::downgrade(&runtime),
            settings.sweep_interval,
            shutdown,
        ));
        runtime
    }

    fn slot(&self, id: ComponentId) -> Result<&SlotDef, ApiError> {
        self.app
            .slots
            .get(id.0 as usize)
            .ok_or_else(|| ApiError::Internal(format!("no slot {}", id.0)))
    }

    fn dependency(&self, id: DependencyId) -> Result<&DependencyDef, ApiError> {
        self.app
            .dependencies
            .get(id.0 as usize)
            .ok_or(ApiError::UnknownDependency(id.0))
    }

    /// Runs a client's event: validates the inputs (before touching anything), then
    /// runs the listener and the `.change` listeners of the states it changed.
    pub(crate) async fn run_event(
        &self,
        session_id: &SessionId,
        request: EventRequest,
    ) -> Result<EventResult, ApiError> {
        let started = Instant::now();
        let outcome = self.run_event_inner(session_id, request).await;
        self.metrics
            .event_duration
            .record(started.elapsed().as_secs_f64());
        match &outcome {
            Ok(_) => self.metrics.events_ok.increment(1),
            Err(error) => metrics::counter!(
                "keepsake_events_total",
                "app" => self.app.config.id.0.clone(),
                "outcome" => error.kind().as_str()
            )
            .increment(1),
        }
        outcome
    }

    async fn run_event_inner(
        &self,
        session_id: &SessionId,
        request: EventRequest,
    ) -> Result<EventResult, ApiError> {
        let dependency = self.dependency(request.dependency)?;
        if dependency
            .config
            .triggers
            .iter()
            .all(|t| t.event == EventKind::Unload)
        {
            return Err(ApiError::InvalidInput(
                "unload listeners are run by the server when a page goes away".into(),
            ));
        }
        let client_values = self.decode_inputs(dependency, request.inputs)?;
        let session = self
            .sessions
            .get(session_id)
            .ok_or(ApiError::UnknownSession)?;
        if session.rate.check().is_err() {
            return Err(ApiError::LimitExceeded(format!(
                "this session sent more than {} events per second; slow down",
                self.max_events_per_second
            )));
        }
        let mut data = session.data.lock().await;
        if data.closed {
            return Err(ApiError::UnknownSession);
        }
        let mut result = EventResult::default();
        self.execute(
            &session,
            &mut data,
            request.dependency,
            client_values,
            &mut result,
            0,
        )
        .await?;
        Ok(result)
    }

    fn decode_inputs(
        &self,
        dependency: &DependencyDef,
        inputs: Vec<Value>,
    ) -> Result<Vec<Option<AnyValue>>, ApiError> {
        let expected = &dependency.config.inputs;
        if inputs.len() != expected.len() {
            return Err(ApiError::InvalidInput(format!(
                "listener {} takes {} input value(s), got {}",
                dependency.config.id.0,
                expected.len(),
                inputs.len()
            )));
        }
        expected
            .iter()
            .zip(inputs)
            .enumerate()
            .map(|(position, (id, value))| match self.slot(*id)? {
                SlotDef::Client { decode, .. } => {
                    let component = &self.app.config.components[id.0 as usize];
                    let name = component
                        .props
                        .label
                        .clone()
                        .unwrap_or_else(|| format!("component {}", id.0));
                    let invalid = |e: String| {
                        ApiError::InvalidInput(format!("input {position} ({name}): {e}"))
                    };
                    validate_input(&component.kind, &value).map_err(invalid)?;
                    decode(value).map(Some).map_err(invalid)
                }
                // Server-side slots: whatever the client sent is ignored.
                SlotDef::State(_) | SlotDef::Global(_) => Ok(None),
            })
            .collect()
    }

    /// The session's value of state `index`, created from the default on first use.
    fn state_value<'a>(
        &self,
        data: &'a mut SessionData,
        index: u32,
    ) -> Result<&'a dyn DynValue, ApiError> {
        let def = self
            .app
            .states
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index}")))?;
        let slot = data
            .states
            .get_mut(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no state {index} in session")))?;
        let stored = slot.get_or_insert_with(|| StoredState {
            value: (def.factory)(),
            written_at: Instant::now(),
            bytes: 0,
        });
        Ok(&*stored.value)
    }

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

    /// Runs one listener within a locked session, then the listeners of the states it
    /// changed. Errors of the listener itself are returned (and nothing is written);
    /// errors of follow-up listeners are collected in `result.errors`.
    fn execute<'a>(
        &'a self,
        session: &'a Arc<Session>,
        data: &'a mut SessionData,
        dependency_id: DependencyId,
        mut client_values: Vec<Option<AnyValue>>,
        result: &'a mut EventResult,
        depth: u32,
    ) -> futures::future::BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let dependency = self.dependency(dependency_id)?;

            // Globals this listener writes stay locked until its outputs are applied.
            let mut written_globals: Vec<u32> = dependency
                .config
                .outputs
                .iter()
                .filter_map(|id| match self.app.slots.get(id.0 as usize) {
                    Some(SlotDef::Global(index)) => Some(*index),
                    _ => None,
                })
                .collect();
            written_globals.sort_unstable();
            written_globals.dedup();
            let mut held: Vec<(u32, OwnedMutexGuard<Box<dyn DynValue>>)> = Vec::new();
            for index in written_globals {
                let cell = self.global_cell(index)?;
                held.push((index, cell.lock_owned().await));
            }

            let mut args: Vec<AnyValue> = Vec::with_capacity(dependency.inputs.len());
            let mut wire_position = 0;
            for input in &dependency.inputs {
                let value = match input {
                    SlotRef::Resource(index) => self.resource(data, *index)?,
                    SlotRef::Wire(id) => {
                        let position = wire_position;
                        wire_position += 1;
                        match self.slot(*id)? {
                            SlotDef::Client { .. } => client_values
                                .get_mut(position)
                                .and_then(Option::take)
                                .ok_or_else(|| {
                                    ApiError::Internal(format!(
                                        "missing client value for slot {}",
                                        id.0
                                    ))
                                })?,
                            SlotDef::State(index) => {
                                self.state_value(data, *index)?.clone_boxed().into_any()
                            }
                            SlotDef::Global(index) => match held.iter().find(|(i, _)| i == index) {
                                Some((_, guard)) => guard.clone_boxed().into_any(),
                                None => self
                                    .global_cell(*index)?
                                    .lock()
                                    .await
                                    .clone_boxed()
                                    .into_any(),
                            },
                        }
                    }
                };
                args.push(value);
            }

            let outputs = self.call(dependency, args).await?;
            if outputs.len() != dependency.config.outputs.len() {
                return Err(ApiError::Internal(
                    "handler returned a wrong number of outputs".into(),
                ));
            }

            // Stage: everything fallible happens before anything is written.
            let mut updates = Vec::new();
            let mut new_states = Vec::new();
            let mut new_globals = Vec::new();
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
                            updates.push(ComponentUpdate {
                                component: *id,
                                value,
                                props,
                            });
                        }
                    }
                    SlotDef::State(index) => {
                        if let Some(value) = value {
                            let def = &self.app.states[*index as usize];
                            let value = (def.accept)(value).ok_or_else(|| {
                                ApiError::Internal("state output of unexpected type".into())
                            })?;
                            new_states.push((*index, value));
                        }
                    }
                    SlotDef::Global(index) => {
                        if let Some(value) = value {
                            let def = &self.app.globals[*index as usize];
                            let value = (def.accept)(value).ok_or_else(|| {
                                ApiError::Internal("global output of unexpected type".into())
                            })?;
                            new_globals.push((*index, value));
                        }
                    }
                }
            }

            // The session's state must stay within its size limit.
            let mut state_bytes = data.state_bytes;
            let mut sized_states = Vec::with_capacity(new_states.len());
            for (index, value) in new_states {
                let previous = data.states[index as usize].as_ref().map_or(0, |s| s.bytes);
                let bytes = value.encoded_len();
                state_bytes = state_bytes.saturating_sub(previous) + bytes;
                sized_states.push((index, value, bytes));
            }
            if state_bytes > self.max_state_bytes {
                return Err(ApiError::StateTooLarge {
                    size: state_bytes,
                    limit: self.max_state_bytes,
                });
            }

            // Commit.
            let now = Instant::now();
            let mut changed_states = Vec::new();
            data.state_bytes = state_bytes;
            for (index, value, bytes) in sized_states {
                let def = &self.app.states[index as usize];
                let unchanged = match &data.states[index as usize] {
                    Some(stored) => stored.value.eq_dyn(&*value),
                    None => (def.factory)().eq_dyn(&*value),
                };
                data.states[index as usize] = Some(StoredState {
                    value,
                    written_at: now,
                    bytes,
                });
                if let Some(ttl) = def.time_to_live {
                    let _ = self.ttl_requests.send(TtlRequest {
                        session: Arc::downgrade(session),
                        id: session.id.clone(),
                        state: index,
                        ttl,
                    });
                }
                if !unchanged {
                    changed_states.push(index);
                }
            }
            for (index, value) in new_globals {
                if let Some((_, guard)) = held.iter_mut().find(|(i, _)| *i == index)
                    && !guard.eq_dyn(&*value)
                {
                    **guard = value;
                    self.push_bindings(index, &***guard);
                }
            }
            drop(held);
            result.ran.push(dependency_id);
            result.updates.extend(updates);

            for index in changed_states {
                for listener in &self.app.state_change_listeners[index as usize] {
                    let outcome = if depth >= MAX_CHANGE_DEPTH {
                        Err(ApiError::Internal(format!(
                            "state change listeners nested deeper than {MAX_CHANGE_DEPTH}; stopped"
                        )))
                    } else {
                        self.execute(session, data, *listener, Vec::new(), result, depth + 1)
                            .await
                    };
                    if let Err(error) = outcome {
                        result.errors.push(ListenerError {
                            dependency: *listener,
                            error: error.body(),
                        });
                    }
                }
            }
            Ok(())
        })
    }

    /// Calls a handler, turning panics, errors and time-outs into API errors.
    async fn call(
        &self,
        dependency: &DependencyDef,
        args: Vec<AnyValue>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let panicked = |payload: Box<dyn std::any::Any + Send>| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(listener = dependency.config.id.0, panic = %what, "event handler panicked");
            ApiError::HandlerFailed("the handler panicked; nothing was changed".into())
        };
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| (dependency.handler)(args)))
        {
            Ok(Ok(future)) => future,
            Ok(Err(error)) => return Err(ApiError::HandlerFailed(error.0)),
            Err(payload) => return Err(panicked(payload)),
        };
        match tokio::time::timeout(self.event_timeout, AssertUnwindSafe(future).catch_unwind())
            .await
        {
            Err(_) => Err(ApiError::Timeout(self.event_timeout)),
            Ok(Err(payload)) => Err(panicked(payload)),
            Ok(Ok(Err(error))) => Err(ApiError::HandlerFailed(error.0)),
            Ok(Ok(Ok(outputs))) => Ok(outputs),
        }
    }

    fn global_cell(&self, index: u32) -> Result<GlobalCell, ApiError> {
        self.globals
            .get(index as usize)
            .cloned()
            .ok_or_else(|| ApiError::Internal(format!("no global {index}")))
    }

    fn bound_updates(&self, index: u32, value: &dyn DynValue) -> Vec<ComponentUpdate> {
        self.app.globals[index as usize]
            .bindings
            .iter()
            .filter_map(|(component, render)| {
                Some(ComponentUpdate {
                    component: *component,
                    value: Some(render(value)?),
                    props: Default::default(),
                })
            })
            .collect()
    }

    fn push_bindings(&self, index: u32, value: &dyn DynValue) {
        for update in self.bound_updates(index, value) {
            // No receiver means no page is open: nothing to do.
            let _ = self.pushes.send(update);
        }
    }

    /// The current value of every bound global, for a stream that just attached or
    /// fell behind.
    pub(crate) async fn bound_values(&self) -> Vec<ComponentUpdate> {
        let mut updates = Vec::new();
        for (index, def) in self.app.globals.iter().enumerate() {
            if def.bindings.is_empty() {
                continue;
            }
            let guard = self.globals[index].lock().await;
            updates.extend(self.bound_updates(index as u32, &**guard));
        }
        updates
    }

    /// The page of `session` went away: run the unload listeners once and release
    /// the session's resources. The values stay for the retention period.
    pub(crate) async fn unload(&self, session: &Arc<Session>) {
        let mut data = session.data.lock().await;
        if data.closed {
            return;
        }
        let mut result = EventResult::default();
        for listener in &self.app.unload_listeners {
            if let Err(error) = self
                .execute(session, &mut data, *listener, Vec::new(), &mut result, 0)
                .await
            {
                tracing::warn!(session = session.id.short(), %error, "unload listener failed");
            }
        }
        for resource in &mut data.resources {
            *resource = None;
        }
        tracing::debug!(session = session.id.short(), "session unloaded");
    }

    /// A session expired or was evicted: call the delete callbacks with the last
    /// values, drop resources, and close its streams.
    async fn end_session(&self, session: Arc<Session>, reason: EndReason) {
        match reason {
            EndReason::Expired => self.metrics.sessions_expired.increment(1),
            EndReason::Evicted => self.metrics.sessions_evicted.increment(1),
        }
        session.ended.cancel();
        let mut data = session.data.lock().await;
        data.closed = true;
        for (index, slot) in data.states.iter_mut().enumerate() {
            if let Some(stored) = slot.take()
                && let Some(callback) = &self.app.states[index].on_delete
            {
                run_delete_callback(callback, stored.value);
            }
        }
        for resource in &mut data.resources {
            *resource = None;
        }
        tracing::debug!(session = session.id.short(), ?reason, "session ended");
    }

    /// A state's time-to-live elapsed (unless it was written again since).
    async fn expire_state(&self, session: Arc<Session>, index: u32) {
        let Some(def) = self.app.states.get(index as usize) else {
            return;
        };
        let Some(ttl) = def.time_to_live else { return };
        let mut data = session.data.lock().await;
        let Some(slot) = data.states.get_mut(index as usize) else {
            return;
        };
        let due = slot.as_ref().is_some_and(|s| s.written_at.elapsed() >= ttl);
        if due && let Some(stored) = slot.take() {
            data.state_bytes = data.state_bytes.saturating_sub(stored.bytes);
            self.metrics.state_expiries.increment(1);
            if let Some(callback) = &def.on_delete {
                run_delete_callback(callback, stored.value);
            }
        }
    }
}

fn run_delete_callback(callback: &crate::state::DeleteCallback, value: Box<dyn DynValue>) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| callback(value))).is_err() {
        tracing::error!("a state's delete callback panicked");
    }
}

async fn end_sessions(
    runtime: Weak<AppRuntime>,
    mut ended: EndedSessions,
    shutdown: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = ended.recv() => next,
        };
        let Some((session, reason)) = next else {
            return;
        };
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        runtime.end_session(session, reason).await;
    }
}

async fn expire_states(
    runtime: Weak<AppRuntime>,
    mut requests: mpsc::UnboundedReceiver<TtlRequest>,
    shutdown: CancellationToken,
) {
    let mut queue: DelayQueue<(Weak<Session>, SessionId, u32)> = DelayQueue::new();
    let mut keys = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            request = requests.recv() => {
                let Some(request) = request else { return };
                let key = (request.id.clone(), request.state);
                match keys.get(&key) {
                    Some(existing) => queue.reset(existing, request.ttl),
                    None => {
                        let entry = queue.insert((request.session, request.id, request.state), request.ttl);
                        keys.insert(key, entry);
                    }
                }
            }
            Some(expired) = futures::future::poll_fn(|cx| queue.poll_expired(cx)) => {
                let (session, id, state) = expired.into_inner();
                keys.remove(&(id, state));
                let (Some(runtime), Some(session)) = (runtime.upgrade(), session.upgrade()) else { continue };
                runtime.expire_state(session, state).await;
            }
        }
    }
}

async fn sweep_sessions(runtime: Weak<AppRuntime>, every: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                let Some(runtime) = runtime.upgrade() else { return };
                runtime.sessions.sweep();
            }
        }
    }
}
