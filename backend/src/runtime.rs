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
//! - With the Redis store, an event holds its session's lease from load to commit,
//!   and a listener that writes a global holds that global's lock in Redis too;
//!   values whose stored version differs go through the app's migration or read as
//!   the default, never as a misread value.

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
use crate::session::{EndReason, Session, SessionData, StoredState};
use crate::settings::Settings;
use crate::store::memory::{EndedSessions, MemoryStore};
use crate::store::redis::{Ended, Notice, RedisSettings, RedisStore};
use crate::store::{Store, StreamOpened};
use crate::value::{AnyValue, Codec, Decoded, DynValue};

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
    pub(crate) store: Store,
    /// In memory: the globals. With Redis: a local lock (so that one instance's
    /// writers queue here rather than poll Redis) and the last value seen.
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
    stale_values: metrics::Counter,
    migrated_values: metrics::Counter,
}

impl Metrics {
    fn new(app: &str) -> Self {
        let app = app.to_owned();
        Metrics {
            events_ok: metrics::counter!("keepsake_events_total", "app" => app.clone(), "outcome" => "ok"),
            event_duration: metrics::histogram!("keepsake_event_duration_seconds", "app" => app.clone()),
            sessions_expired: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "expired"),
            sessions_evicted: metrics::counter!("keepsake_sessions_ended_total", "app" => app.clone(), "reason" => "evicted"),
            state_expiries: metrics::counter!("keepsake_state_expiries_total", "app" => app.clone()),
            stale_values: metrics::counter!("keepsake_stored_values_total", "app" => app.clone(), "outcome" => "stale"),
            migrated_values: metrics::counter!("keepsake_stored_values_total", "app" => app, "outcome" => "migrated"),
        }
    }
}

impl AppRuntime {
    /// Mounts `app` on the configured store and starts its background tasks (which
    /// end with `shutdown`).
    pub(crate) fn start(
        app: App,
        settings: &Settings,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, String> {
        let events_per_second = governor::Quota::per_second(
            std::num::NonZeroU32::new(settings.max_events_per_second)
                .unwrap_or(std::num::NonZeroU32::MIN),
        );
        let (store, ended) = if settings.store == "memory" {
            let (store, ended) = MemoryStore::new(
                settings.session_capacity,
                settings.session_retention,
                events_per_second,
                app.states.len(),
                app.resources.len(),
            );
            (Store::Memory(store), Some(ended))
        } else if settings.store.starts_with("redis://") || settings.store.starts_with("rediss://")
        {
            let store = RedisStore::open(
                &settings.store,
                &app.config.id.0,
                RedisSettings {
                    namespace: settings.store_namespace.clone(),
                    capacity: settings.session_capacity,
                    retention: settings.session_retention,
                    lease: settings.event_timeout + Duration::from_secs(5),
                    keepalive: settings.heartbeat * 3,
                    state_count: app.states.len(),
                    resource_count: app.resources.len(),
                    events_per_second,
                },
            )?;
            (Store::Redis(Arc::new(store)), None)
        } else {
            return Err(format!(
                "unknown store {:?}: use `memory` or a redis:// URL",
                settings.store
            ));
        };
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
            store,
            globals,
            pushes: broadcast::channel(256).0,
            ttl_requests,
            event_timeout: settings.event_timeout,
        });
        if let Some(ended) = ended {
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
        }
        if let Store::Redis(store) = &runtime.store {
            let (notices, notices_rx) = mpsc::unbounded_channel();
            tokio::spawn(store.clone().listen(notices, shutdown.clone()));
            tokio::spawn(handle_notices(
                Arc::downgrade(&runtime),
                notices_rx,
                shutdown.clone(),
            ));
        }
        tokio::spawn(sweep_sessions(
            Arc::downgrade(&runtime),
            settings.sweep_interval,
            shutdown,
        ));
        Ok(runtime)
    }

    /// Starts a session: 128 bits from the OS-seeded CSPRNG name it.
    pub(crate) async fn create_session(&self) -> Result<Arc<Session>, ApiError> {
        let id = SessionId::from_bytes(rand::random());
        match &self.store {
            Store::Memory(store) => Ok(store.create(id)),
            Store::Redis(store) => {
                let (session, evicted) = store.create(id).await?;
                for ended in evicted {
                    self.end_stored(store, ended);
                }
                Ok(session)
            }
        }
    }

    /// A live session (counts as a use in memory; Redis counts it when an event
    /// loads it).
    pub(crate) async fn session(&self, id: &SessionId) -> Result<Arc<Session>, ApiError> {
        let session = match &self.store {
            Store::Memory(store) => store.get(id),
            Store::Redis(store) => store.get(id).await?,
        };
        session.ok_or(ApiError::UnknownSession)
    }

    /// Open streams of a session, on every instance.
    pub(crate) async fn open_streams(&self, session: &Session) -> Result<u32, ApiError> {
        match &self.store {
            Store::Memory(_) => Ok(session.open_streams()),
            Store::Redis(store) => Ok(store.open_streams(&session.id).await?),
        }
    }

    pub(crate) async fn live_sessions(&self) -> Result<u64, ApiError> {
        match &self.store {
            Store::Memory(store) => Ok(store.live_sessions()),
            Store::Redis(store) => Ok(store.live_sessions().await?),
        }
    }

    /// A page attaches a stream: `Ok(false)` if the session has as many as allowed,
    /// `UnknownSession` if it ended since the caller looked it up.
    pub(crate) async fn stream_opened(
        &self,
        session: &Session,
        limit: u32,
    ) -> Result<bool, ApiError> {
        let opened = match &self.store {
            Store::Memory(store) => store.stream_opened(session, limit),
            Store::Redis(store) => {
                let opened = store.stream_opened(&session.id, limit).await?;
                if opened == StreamOpened::Attached {
                    session
                        .streams
                        .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                }
                opened
            }
        };
        match opened {
            StreamOpened::Attached => Ok(true),
            StreamOpened::Full => Ok(false),
            StreamOpened::UnknownSession => Err(ApiError::UnknownSession),
        }
    }

    /// A stream's heartbeat; false if the session is gone.
    pub(crate) async fn stream_alive(&self, session: &Session) -> bool {
        match &self.store {
            Store::Memory(_) => true,
            Store::Redis(store) => match store.stream_alive(&session.id).await {
                Ok(alive) => alive,
                // Redis away: keep the page; its session is still there when Redis is back.
                Err(error) => {
                    tracing::debug!(%error, "heartbeat could not reach the store");
                    true
                }
            },
        }
    }

    /// A stream ended; runs the unload listeners if it was the session's last one.
    pub(crate) async fn stream_closed(&self, session: Arc<Session>) {
        let last = match &self.store {
            Store::Memory(store) => store.stream_closed(&session),
            Store::Redis(store) => {
                session
                    .streams
                    .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                match store.stream_closed(&session.id).await {
                    Ok(last) => last,
                    Err(error) => {
                        tracing::warn!(session = session.id.short(), %error, "could not record a closed stream");
                        false
                    }
                }
            }
        };
        if last {
            self.unload(&session).await;
        }
    }

    /// Processes due expiries and evictions now.
    pub(crate) async fn sweep(&self) {
        match &self.store {
            Store::Memory(store) => {
                store.sweep();
            }
            Store::Redis(store) => {
                const BATCH: usize = 512;
                loop {
                    match store.sweep(BATCH).await {
                        Ok(ended) => {
                            let count = ended.len();
                            for ended in ended {
                                self.end_stored(store, ended);
                            }
                            if count < BATCH {
                                return;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "sweep could not reach the store");
                            return;
                        }
                    }
                }
            }
        }
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
        let session = self.session(session_id).await?;
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
        let lease = self.begin(&session, &mut data).await?;
        let mut result = EventResult::default();
        let outcome = self
            .execute(&mut data, request.dependency, client_values, &mut result, 0)
            .await;
        self.finish(&session, &mut data, lease).await?;
        outcome?;
        Ok(result)
    }

    /// Before an event: with Redis, takes the session's lease and loads its values.
    /// Returns the lease token (none in memory).
    async fn begin(
        &self,
        session: &Session,
        data: &mut SessionData,
    ) -> Result<Option<String>, ApiError> {
        data.written.clear();
        data.defaulted.clear();
        let Store::Redis(store) = &self.store else {
            return Ok(None);
        };
        let token = crate::store::redis::token();
        let stored = store.load(&session.id, &token, self.event_timeout).await?;
        for slot in &mut data.states {
            *slot = None;
        }
        data.state_bytes = 0;
        let now = Instant::now();
        for (index, envelope) in stored {
            let Some(def) = self.app.states.get(index as usize) else {
                continue;
            };
            let Some((value, migrated)) = self.read_stored(&def.codec, &envelope, "state") else {
                continue;
            };
            if migrated {
                // Stored again in the current version when the event commits.
                data.written.push(index);
            }
            let bytes = value.encoded_len();
            data.state_bytes += bytes;
            data.states[index as usize] = Some(StoredState {
                value,
                written_at: now,
                bytes,
            });
        }
        Ok(Some(token))
    }

    /// After an event: in memory, schedules the written states' time-to-live; with
    /// Redis, writes them back and gives the lease up (refused if it was lost).
    async fn finish(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        lease: Option<String>,
    ) -> Result<(), ApiError> {
        let mut written = std::mem::take(&mut data.written);
        written.sort_unstable();
        written.dedup();
        let defaulted = std::mem::take(&mut data.defaulted);
        match (&self.store, lease) {
            (Store::Memory(_), _) => {
                for index in written {
                    if let Some(ttl) = self.app.states[index as usize].time_to_live {
                        let _ = self.ttl_requests.send(TtlRequest {
                            session: Arc::downgrade(session),
                            id: session.id,
                            state: index,
                            ttl,
                        });
                    }
                }
                Ok(())
            }
            (Store::Redis(store), Some(token)) => {
                // What the event wrote, and the defaults it made (without a
                // time-to-live: they were not written).
                let fresh = defaulted
                    .into_iter()
                    .filter(|index| written.binary_search(index).is_err())
                    .map(|index| (index, None));
                let writes: Result<Vec<_>, ApiError> = written
                    .iter()
                    .map(|&index| (index, self.app.states[index as usize].time_to_live))
                    .chain(fresh)
                    .filter_map(|(index, ttl)| {
                        let stored = data.states[index as usize].as_ref()?;
                        let codec = &self.app.states[index as usize].codec;
                        Some(
                            codec
                                .encode(&*stored.value)
                                .map(|envelope| (index, envelope, ttl))
                                .map_err(|e| {
                                    ApiError::HandlerFailed(format!(
                                        "a state value could not be encoded: {e}"
                                    ))
                                }),
                        )
                    })
                    .collect();
                // Values stay in Redis only: the local copy is dropped after each event.
                for slot in &mut data.states {
                    *slot = None;
                }
                match writes {
                    Ok(writes) if !writes.is_empty() => {
                        Ok(store.commit(&session.id, &token, &writes).await?)
                    }
                    nothing_or_failed => {
                        store.release_session(&session.id, token).await;
                        nothing_or_failed.map(drop)
                    }
                }
            }
            (Store::Redis(_), None) => Ok(()),
        }
    }

    /// Reads a stored envelope as the declared type: through the migration if it was
    /// stored by another version, or `None` (use the default) if it cannot be read.
    fn read_stored(
        &self,
        codec: &Codec,
        envelope: &str,
        what: &str,
    ) -> Option<(Box<dyn DynValue>, bool)> {
        match codec.decode(envelope) {
            Decoded::Current(value) => Some((value, false)),
            Decoded::Migrated(value) => {
                self.metrics.migrated_values.increment(1);
                Some((value, true))
            }
            Decoded::Stale { reason } => {
                self.metrics.stale_values.increment(1);
                tracing::warn!(
                    app = self.app.config.id.0,
                    kind = what,
                    r#type = codec.type_name,
                    %reason,
                    "stored value is of another version and no migration took it; using the default"
                );
                None
            }
        }
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
                    // The name is only formatted for an error: most inputs are valid.
                    let invalid = |e: String| {
                        let name = match &component.props.label {
                            Some(label) => label.clone(),
                            None => format!("component {}", id.0),
                        };
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
        if slot.is_none() {
            data.defaulted.push(index);
        }
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
            let mut held: Vec<(u32, GlobalGuard)> = Vec::new();
            for index in written_globals {
                held.push((index, self.lock_global(index).await?));
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
                                Some((_, guard)) => guard.value.clone_boxed().into_any(),
                                None => self.read_global(*index).await?.into_any(),
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

            // Commit: globals first (with Redis this can still fail, and then no
            // session value may have been written).
            for (index, value) in new_globals {
                if let Some((_, guard)) = held.iter_mut().find(|(i, _)| *i == index)
                    && !guard.value.eq_dyn(&*value)
                {
                    self.commit_global(index, guard, value).await?;
                }
            }
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
                data.written.push(index);
                if !unchanged {
                    changed_states.push(index);
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
                        self.execute(data, *listener, Vec::new(), result, depth + 1)
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

    fn global_def(&self, index: u32) -> Result<&crate::blocks::GlobalDef, ApiError> {
        self.app
            .globals
            .get(index as usize)
            .ok_or_else(|| ApiError::Internal(format!("no global {index}")))
    }

    /// A global's value as stored in Redis (its initial value if never written or
    /// stored by another version without a migration).
    fn stored_global(
        &self,
        index: u32,
        envelope: Option<String>,
    ) -> Result<Box<dyn DynValue>, ApiError> {
        let def = self.global_def(index)?;
        Ok(
            match envelope.and_then(|envelope| self.read_stored(&def.codec, &envelope, "global")) {
                Some((value, _)) => value,
                None => def.initial.clone_boxed(),
            },
        )
    }

    /// Locks a global for a listener that writes it: here, and with Redis also there.
    async fn lock_global(&self, index: u32) -> Result<GlobalGuard, ApiError> {
        let local = self.global_cell(index)?.lock_owned().await;
        let Store::Redis(store) = &self.store else {
            return Ok(GlobalGuard {
                value: local,
                redis: None,
                index,
            });
        };
        let token = crate::store::redis::token();
        let stored = store.lock_global(index, &token, self.event_timeout).await?;
        let mut guard = GlobalGuard {
            value: local,
            redis: Some((store.clone(), token)),
            index,
        };
        *guard.value = self.stored_global(index, stored)?;
        Ok(guard)
    }

    /// A global's current value, for a listener that only reads it.
    async fn read_global(&self, index: u32) -> Result<Box<dyn DynValue>, ApiError> {
        match &self.store {
            Store::Memory(_) => Ok(self.global_cell(index)?.lock().await.clone_boxed()),
            Store::Redis(store) => {
                let stored = store.read_global(index).await?;
                self.stored_global(index, stored)
            }
        }
    }

    /// Writes a locked global and tells every page that shows it.
    async fn commit_global(
        &self,
        index: u32,
        guard: &mut GlobalGuard,
        value: Box<dyn DynValue>,
    ) -> Result<(), ApiError> {
        match &self.store {
            Store::Memory(_) => {
                *guard.value = value;
                self.push_bindings(index, &**guard.value);
            }
            Store::Redis(store) => {
                let envelope = self.global_def(index)?.codec.encode(&*value).map_err(|e| {
                    ApiError::HandlerFailed(format!("a global value could not be encoded: {e}"))
                })?;
                let Some((_, token)) = &guard.redis else {
                    return Err(ApiError::Internal("global written without its lock".into()));
                };
                store.commit_global(index, token, &envelope).await?;
                // The commit gave the lock back; the change reaches the pages of every
                // instance, this one included, through the events channel.
                guard.redis = None;
                *guard.value = value;
            }
        }
        Ok(())
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
            match self.read_global(index as u32).await {
                Ok(value) => updates.extend(self.bound_updates(index as u32, &*value)),
                Err(error) => tracing::debug!(%error, "could not read a bound global"),
            }
        }
        updates
    }

    /// What the Redis events channel brought: another instance's (or this one's)
    /// global change, a session that ended, or a new subscription.
    async fn on_notice(&self, notice: Notice) {
        match notice {
            Notice::GlobalChanged { index, value } => {
                let Ok(value) = self.stored_global(index, Some(value)) else {
                    return;
                };
                if let Some(cell) = self.globals.get(index as usize)
                    && let Ok(mut cached) = cell.try_lock()
                {
                    *cached = value.clone_boxed();
                }
                self.push_bindings(index, &*value);
            }
            Notice::SessionEnded(id) => {
                if let Store::Redis(store) = &self.store {
                    store.forget(&id);
                }
            }
            Notice::Resubscribed => {
                // Changes made while the subscription was down were not heard.
                for update in self.bound_values().await {
                    let _ = self.pushes.send(update);
                }
            }
        }
    }

    /// The page of `session` went away: run the unload listeners once and release
    /// the session's resources. The values stay for the retention period.
    pub(crate) async fn unload(&self, session: &Arc<Session>) {
        let mut data = session.data.lock().await;
        if data.closed {
            return;
        }
        if !self.app.unload_listeners.is_empty() {
            match self.begin(session, &mut data).await {
                Ok(lease) => {
                    let mut result = EventResult::default();
                    for listener in &self.app.unload_listeners {
                        if let Err(error) = self
                            .execute(&mut data, *listener, Vec::new(), &mut result, 0)
                            .await
                        {
                            tracing::warn!(session = session.id.short(), %error, "unload listener failed");
                        }
                    }
                    if let Err(error) = self.finish(session, &mut data, lease).await {
                        tracing::warn!(session = session.id.short(), %error, "unload could not be stored");
                    }
                }
                Err(error) => {
                    tracing::warn!(session = session.id.short(), %error, "unload could not load the session");
                }
            }
        }
        for resource in &mut data.resources {
            *resource = None;
        }
        tracing::debug!(session = session.id.short(), "session unloaded");
    }

    /// The Redis store ended a session (expiry or eviction) or a state (its
    /// time-to-live): exactly one instance gets each, with the values to pass to the
    /// delete callbacks.
    fn end_stored(&self, store: &RedisStore, ended: Ended) {
        match ended {
            Ended::Session { id, reason, values } => {
                match reason {
                    EndReason::Expired => self.metrics.sessions_expired.increment(1),
                    EndReason::Evicted => self.metrics.sessions_evicted.increment(1),
                }
                if let Some(session) = store.forget(&id)
                    && let Ok(mut data) = session.data.try_lock()
                {
                    data.closed = true;
                    for resource in &mut data.resources {
                        *resource = None;
                    }
                }
                for (index, envelope) in values {
                    self.delete_stored(index, &envelope);
                }
                tracing::debug!(session = id.short(), ?reason, "session ended");
            }
            Ended::State { id, index, value } => {
                self.metrics.state_expiries.increment(1);
                tracing::debug!(session = id.short(), state = index, "state expired");
                self.delete_stored(index, &value);
            }
        }
    }

    fn delete_stored(&self, index: u32, envelope: &str) {
        if let Some(def) = self.app.states.get(index as usize)
            && let Some(callback) = &def.on_delete
            && let Some((value, _)) = self.read_stored(&def.codec, envelope, "state")
        {
            run_delete_callback(callback, value);
        }
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
                let key = (request.id, request.state);
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
                runtime.sweep().await;
            }
        }
    }
}

async fn handle_notices(
    runtime: Weak<AppRuntime>,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    shutdown: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            _ = shutdown.cancelled() => return,
            notice = notices.recv() => notice,
        };
        let (Some(notice), Some(runtime)) = (notice, runtime.upgrade()) else {
            return;
        };
        runtime.on_notice(notice).await;
    }
}

/// A global held by a listener that writes it: the local lock (with the value), and
/// with Redis the token of the lock there, given back on drop unless a commit did.
struct GlobalGuard {
    value: OwnedMutexGuard<Box<dyn DynValue>>,
    redis: Option<(Arc<RedisStore>, String)>,
    index: u32,
}

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        if let Some((store, token)) = self.redis.take() {
            store.release_global_later(self.index, token);
        }
    }
}
