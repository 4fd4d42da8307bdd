//! The Redis store: session values, session order and expiry, global values and their
//! change notifications live in Redis, so several server instances can serve one app
//! without sticky sessions.
//!
//! Every step that reads and writes more than one key is one Lua script
//! ([`scripts`]), so it is atomic across instances. Time is Redis's own clock.
//!
//! Keys, under `{namespace}:{app}`:
//! - `lru` (sorted set: session id → use sequence): the live sessions, in LRU order;
//!   `seq` is the counter that orders them. Sessions with an open page score in a
//!   band above every other (`ATTACHED`), so eviction reaches them last, and then
//!   refuses the new session instead.
//! - `deadlines` (sorted set: `s:{id}` or `t:{id}:{state}` → deadline in ms): when
//!   each session's retention and each state's time-to-live run out. The sweep pops
//!   the due entries from its front: its work grows with what expires.
//! - `v:{id}` (hash: state index → versioned serde envelope): the session's values.
//! - `lease:{id}` (string with expiry): the token of the event running on the
//!   session. Events of one session therefore run one at a time across instances.
//!   It runs out `--event-timeout` + 5 s after it was taken or last renewed: a
//!   running event renews it, with its globals' locks, every third of that
//!   (`renew.lua`, [`hold::Renewal`]), so a stream may run for minutes, and a dead
//!   instance's events block their sessions no longer than that.
//! - `streams:{id}` (counter with expiry): the session's open streams on all instances.
//! - `g:{index}` and `glock:{index}`: a global's value and the lock held by the
//!   event that may write it.
//! - `reply:{id}:{reply}` (stream): a streamed reply's lines, for a client that
//!   resumes it on another instance ([`replies`]).
//! - channel `events`: `{"global": index, "value": ...}` after a global changed and
//!   `{"ended": id}` after a session ended, for every instance ([`listen`]).
//!
//! An event is two scripts: `load.lua` takes the lease and the locks of the globals
//! the event may write (all or none) and reads the session's values and those
//! globals; `commit.lua` checks the lease and every lock, then writes the session's
//! values and the globals and announces the globals: all of it or nothing. Scripts
//! build key names from their arguments, so this store needs one Redis (or a
//! primary with replicas), not Redis Cluster.

mod endings;
mod feeds;
mod hold;
mod listen;
mod replies;
mod scripts;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keepsake_shared::SessionId;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub(crate) use hold::{RedisGlobalHold, RedisLease, Renewal};

use super::{
    Commit, GlobalHold, Lease, SessionShape, StoreError, StoreEvents, StoredValueMetrics,
    WriterLocks,
};
use crate::app::App;
use crate::session::{Session, SessionData, StoredState};
use crate::settings::Settings;
use crate::value::DynValue;

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        // The detail (kind and message) helps the operator; it never carries values.
        StoreError::Unavailable(format!("redis: {error}"))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// One app's sessions and globals in Redis, and this instance's handles on them.
pub(crate) struct RedisStore {
    client: redis::Client,
    connection: ConnectionManager,
    scripts: scripts::Scripts,
    /// `{namespace}:{app}`.
    prefix: String,
    app: Arc<App>,
    capacity: u64,
    retention: Duration,
    /// How long a session's lease or a global's lock lasts unless renewed.
    lease: Duration,
    /// How long a stream keeps its session alive without a heartbeat.
    keepalive: Duration,
    shape: SessionShape,
    /// This instance's handles on sessions it served (their event order, rate limit,
    /// resources and streams), bounded like the sessions themselves.
    local: Mutex<lru::LruCache<SessionId, Arc<Session>>>,
    events: StoreEvents,
    stored: StoredValueMetrics,
    /// This instance, on the events channel: its own notices are not for it.
    instance: u64,
}

impl RedisStore {
    /// Connects lazily: the server starts even while Redis is down, and events fail
    /// with `store_unavailable` until it is reachable.
    pub(crate) fn open(
        app: Arc<App>,
        settings: &Settings,
        shape: SessionShape,
        events: StoreEvents,
    ) -> Result<Self, String> {
        let client = redis::Client::open(settings.store.as_str())
            .map_err(|e| format!("invalid Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        let capacity = std::num::NonZeroUsize::new(
            usize::try_from(settings.session_capacity).unwrap_or(usize::MAX),
        )
        .unwrap_or(std::num::NonZeroUsize::MIN);
        let app_id = app.config.id.0.clone();
        Ok(RedisStore {
            client,
            connection,
            scripts: scripts::Scripts::new(),
            prefix: format!("{}:{app_id}", settings.store_namespace),
            capacity: settings.session_capacity,
            retention: settings.session_retention,
            lease: settings.event_timeout + Duration::from_secs(5),
            keepalive: settings.heartbeat * 3,
            shape,
            local: Mutex::new(lru::LruCache::new(capacity)),
            events,
            stored: StoredValueMetrics::new(&app_id),
            instance: rand::random(),
            app,
        })
    }

    pub(crate) fn retention(&self) -> Duration {
        self.retention
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    fn local(&self) -> MutexGuard<'_, lru::LruCache<SessionId, Arc<Session>>> {
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn handle(&self, id: &SessionId) -> Arc<Session> {
        let mut local = self.local();
        if let Some(session) = local.get(id) {
            return session.clone();
        }
        let session = self.shape.new_session(*id);
        local.put(*id, session.clone());
        session
    }

    /// Forgets this instance's handle on an ended session, closing its streams.
    fn forget(&self, id: &SessionId) -> Option<Arc<Session>> {
        let session = self.local().pop(id)?;
        session.ended.cancel();
        Some(session)
    }

    /// Starts a session under `id`, evicting to make room (see `create.lua`).
    pub(crate) async fn create(&self, id: SessionId) -> Result<Arc<Session>, StoreError> {
        let mut records: Vec<String> = self
            .scripts
            .create
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(self.capacity)
            .arg(millis(self.retention))
            .arg(self.shape.state_count)
            .invoke_async(&mut self.connection())
            .await?;
        let full = records.first().map(String::as_str) != Some("ok");
        if !records.is_empty() {
            records.remove(0);
        }
        // Sessions evicted before the script found only open pages are reported too.
        self.report_ended(records);
        if full {
            return Err(StoreError::AtCapacity);
        }
        Ok(self.handle(&id))
    }

    /// This instance's handle on a live session, or `None` if Redis does not know it.
    pub(crate) async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        if let Some(session) = self.local().get(id) {
            return Ok(Some(session.clone()));
        }
        let score: Option<f64> = self
            .connection()
            .zscore(self.key("lru"), id.as_str())
            .await?;
        Ok(score.map(|_| self.handle(id)))
    }

    /// Open streams of a session on all instances.
    pub(crate) async fn open_feeds(&self, id: &SessionId) -> Result<u32, StoreError> {
        let open: Option<i64> = self
            .connection()
            .get(self.key(&format!("streams:{}", id.as_str())))
            .await?;
        Ok(u32::try_from(open.unwrap_or(0)).unwrap_or(0))
    }

    /// The app's browser-state seed, shared by every instance on this namespace: the
    /// first instance to ask stores a random one, the others read it. Keys derived
    /// from it must not differ between instances, or values would flip between them
    /// behind a load balancer.
    pub(crate) async fn browser_seed(&self) -> Result<[u8; 32], StoreError> {
        let key = self.key("browser-seed");
        let fresh: [u8; 32] = rand::random();
        let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let mut connection = self.connection();
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut connection)
            .await?;
        let stored: Option<String> = connection.get(&key).await?;
        let stored = stored.ok_or_else(|| {
            StoreError::Unavailable("the browser-state seed vanished from Redis".into())
        })?;
        parse_seed(&stored).ok_or_else(|| {
            // The key's name is for the operator's log, not for clients.
            tracing::error!(key, "the browser-state seed in Redis is not 64 hex digits; delete it to have a new one made");
            StoreError::Unavailable("the browser-state keys are unavailable".into())
        })
    }

    pub(crate) async fn live_sessions(&self) -> Result<u64, StoreError> {
        Ok(self.connection().zcard(self.key("lru")).await?)
    }

    /// Takes the session's lease and the locks of globals `indices` (sorted), all at
    /// once in one script (waiting up to `wait` while another instance's event holds
    /// one of them); loads the session's values into `data`, decoded, and reads those
    /// globals' values.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        session: &Session,
        data: &mut SessionData,
        indices: &[u32],
        wait: Duration,
    ) -> Result<(Lease, Vec<Box<dyn DynValue>>, GlobalHold), StoreError> {
        // The guards exist before the script runs: if this future is dropped while
        // the locks are being taken, the drop gives them back (a release of a lock
        // never taken does nothing). One token names the lease and the locks.
        let token = hold::token();
        let mut held = RedisLease {
            store: self.clone(),
            id: session.id,
            token: token.clone(),
            held: true,
        };
        let mut globals = RedisGlobalHold {
            store: self.clone(),
            token,
            indices: indices.to_vec(),
            held: true,
        };
        let mut backoff = Backoff::new(wait);
        let reply = loop {
            let mut invocation = self.scripts.load.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(session.id.as_str())
                .arg(&held.token)
                .arg(millis(self.lease))
                .arg(millis(self.retention));
            for index in indices {
                invocation.arg(index);
            }
            let reply: Vec<Option<String>> =
                invocation.invoke_async(&mut self.connection()).await?;
            match reply.first().and_then(Option::as_deref) {
                Some("ok") => break reply,
                Some("busy") => backoff.pause().await?,
                _ => {
                    held.held = false;
                    globals.held = false;
                    self.forget(&session.id);
                    return Err(StoreError::UnknownSession);
                }
            }
        };
        let mut reply = reply.into_iter().skip(1);
        let values = indices
            .iter()
            .zip(reply.by_ref())
            .map(|(&index, envelope)| self.stored_global(index, envelope))
            .collect();
        let stored = pairs(&reply.flatten().collect::<Vec<_>>());
        let mut lease = Lease {
            redis: Some(held),
            migrated: Vec::new(),
        };
        for slot in &mut data.states {
            *slot = None;
        }
        data.state_bytes = 0;
        let now = Instant::now();
        for (index, envelope) in stored {
            let Some(def) = self.app.states.get(index as usize) else {
                continue;
            };
            let Some((value, migrated)) = self.stored.read(&def.codec, &envelope, "state") else {
                continue;
            };
            if migrated {
                lease.migrated.push(index);
            }
            let bytes = value.encoded_len();
            data.state_bytes += bytes;
            data.states[index as usize] = Some(StoredState {
                value,
                written_at: now,
                bytes,
            });
        }
        let hold = GlobalHold {
            redis: (!indices.is_empty()).then_some(globals),
        };
        Ok((lease, values, hold))
    }

    /// A global's value as stored (its initial value if never written, or stored by
    /// another version without a migration).
    fn stored_global(&self, index: u32, envelope: Option<String>) -> Box<dyn DynValue> {
        let Some(def) = self.app.globals.get(index as usize) else {
            return Box::new(());
        };
        envelope
            .and_then(|envelope| self.stored.read(&def.codec, &envelope, "global"))
            .map_or_else(|| def.initial.clone_boxed(), |(value, _)| value)
    }

    pub(crate) async fn read_global(&self, index: u32) -> Result<Box<dyn DynValue>, StoreError> {
        let stored: Option<String> = self
            .connection()
            .get(self.key(&format!("g:{index}")))
            .await?;
        Ok(self.stored_global(index, stored))
    }

    /// Writes an event's states and globals in one script, or nothing. Encoding
    /// comes first: a value that cannot be encoded fails the event before Redis is
    /// asked to write anything.
    pub(crate) async fn commit(
        &self,
        session: &Arc<Session>,
        data: &mut SessionData,
        mut lease: Lease,
        commit: Commit,
        mut globals: GlobalHold,
        writers: WriterLocks,
    ) -> Result<(), StoreError> {
        let encoded = self.encode(data, &lease, &commit);
        // Values live in Redis only: the local copy goes after each event.
        for slot in &mut data.states {
            *slot = None;
        }
        data.state_bytes = 0;
        let (states, global_writes) = encoded?;
        let Some(session_lease) = lease.redis.as_mut() else {
            return Err(StoreError::LeaseLost);
        };
        let (global_token, locked) = globals
            .redis
            .as_ref()
            .map_or(("", &[][..]), |g| (g.token.as_str(), g.indices.as_slice()));
        if states.is_empty() && global_writes.is_empty() {
            // Given back only once Redis has them: a drop meanwhile releases again.
            let release = self.release(
                Some((&session.id, &session_lease.token)),
                Some((global_token, locked)),
            );
            sent_then(release, writers).await;
        } else {
            let mut invocation = self.scripts.commit.prepare_invoke();
            invocation
                .arg(&self.prefix)
                .arg(session.id.as_str())
                .arg(&session_lease.token)
                .arg(global_token)
                .arg(states.len());
            for (index, envelope, ttl) in &states {
                invocation
                    .arg(index)
                    .arg(envelope.as_str())
                    .arg(ttl.map_or(0, millis));
            }
            invocation.arg(global_writes.len());
            for (index, envelope) in &global_writes {
                invocation.arg(index).arg(envelope.as_str());
            }
            for index in locked {
                invocation.arg(index);
            }
            let mut connection = self.connection();
            let reply: String =
                sent_then(invocation.invoke_async(&mut connection), writers).await?;
            match reply.as_str() {
                "ok" => {}
                "lost" => return Err(StoreError::LeaseLost),
                _ => {
                    self.forget(&session.id);
                    return Err(StoreError::UnknownSession);
                }
            }
        }
        session_lease.held = false;
        if let Some(globals) = globals.redis.as_mut() {
            globals.held = false;
        }
        Ok(())
    }

    /// Encodes what `commit` writes: the event's states (with their time-to-live),
    /// the defaults it made and the values it migrated (both without), and globals.
    #[allow(clippy::type_complexity)]
    fn encode(
        &self,
        data: &SessionData,
        lease: &Lease,
        commit: &Commit,
    ) -> Result<(Vec<(u32, String, Option<Duration>)>, Vec<(u32, String)>), StoreError> {
        let mut states = Vec::new();
        for (index, value, _) in &commit.states {
            let def = self.state_def(*index)?;
            states.push((*index, encode(&def.codec, &**value)?, def.time_to_live));
        }
        for index in commit.defaults.iter().chain(&lease.migrated) {
            // Written by the event (already encoded above), or listed twice.
            if states.iter().any(|(i, _, _)| i == index) {
                continue;
            }
            if let Some(Some(stored)) = data.states.get(*index as usize) {
                let def = self.state_def(*index)?;
                states.push((*index, encode(&def.codec, &*stored.value)?, None));
            }
        }
        let mut globals = Vec::new();
        for (index, value) in &commit.globals {
            let def = self
                .app
                .globals
                .get(*index as usize)
                .ok_or_else(|| StoreError::Encode(format!("no global {index}")))?;
            globals.push((*index, encode(&def.codec, &**value)?));
        }
        Ok((states, globals))
    }

    fn state_def(&self, index: u32) -> Result<&crate::app::StateDef, StoreError> {
        self.app
            .states
            .get(index as usize)
            .ok_or_else(|| StoreError::Encode(format!("no state {index}")))
    }

    /// Gives back a lease and/or global locks without writing. Best effort: if
    /// Redis cannot be reached, they run out by themselves.
    async fn release(&self, lease: Option<(&SessionId, &str)>, globals: Option<(&str, &[u32])>) {
        let mut invocation = self.scripts.release.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(lease.map_or("", |(id, _)| id.as_str()))
            .arg(lease.map_or("", |(_, token)| token))
            .arg(globals.map_or("", |(token, _)| token));
        for index in globals.map_or(&[][..], |(_, indices)| indices) {
            invocation.arg(index);
        }
        let released: Result<i64, _> = invocation.invoke_async(&mut self.connection()).await;
        if let Err(error) = released {
            tracing::debug!(%error, "could not give a lease back; it will run out");
        }
    }
}

/// Awaits `request` (a command to this store's connection), letting this process's
/// writer locks go once it is sent. The connection sends commands in the order they
/// are queued and Redis runs them in that order, so the next writer's lock script
/// runs after this commit and reads what it wrote: the writers overlap the wait for
/// the reply, not the writes. The command is queued on the request's first poll
/// unless the connection is reconnecting or its queue is full; the writers go then
/// anyway, and the next lock script, if it arrives first, finds the lock still held
/// and waits, so no order of arrival can lose an update.
async fn sent_then<T>(request: impl std::future::Future<Output = T>, writers: WriterLocks) -> T {
    let mut request = std::pin::pin!(request);
    let first = futures::poll!(request.as_mut());
    writers.release();
    match first {
        std::task::Poll::Ready(reply) => reply,
        std::task::Poll::Pending => request.await,
    }
}

fn encode(codec: &crate::value::Codec, value: &dyn DynValue) -> Result<String, StoreError> {
    codec.encode(value).map_err(StoreError::Encode)
}

/// Waiting for a lease or lock another instance holds: pauses doubling from 1 ms to
/// 20 ms, until `wait` has passed.
struct Backoff {
    started: Instant,
    wait: Duration,
    pause: Duration,
}

impl Backoff {
    fn new(wait: Duration) -> Self {
        Backoff {
            started: Instant::now(),
            wait,
            pause: Duration::from_millis(1),
        }
    }

    /// Sleeps before the next attempt, or `Busy` once `wait` has passed.
    async fn pause(&mut self) -> Result<(), StoreError> {
        if self.started.elapsed() >= self.wait {
            return Err(StoreError::Busy(self.wait));
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(20));
        Ok(())
    }
}

/// `[field, value, field, value, ...]` of a state hash, as (index, envelope).
fn pairs(flat: &[String]) -> Vec<(u32, String)> {
    flat.chunks_exact(2)
        .filter_map(|pair| Some((pair[0].parse().ok()?, pair[1].clone())))
        .collect()
}

/// 32 bytes from 64 hex digits.
fn parse_seed(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut seed = [0u8; 32];
    for (byte, pair) in seed.iter_mut().zip(bytes.chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(seed)
}
