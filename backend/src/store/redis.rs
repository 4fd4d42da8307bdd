//! The Redis store: session values, session order and expiry, global values and their
//! change notifications live in Redis, so several server instances can serve one app
//! without sticky sessions.
//!
//! Every step that reads and writes more than one key is one Lua script, so it is
//! atomic across instances. Time is Redis's own clock (`TIME`), never an instance's.
//!
//! Keys, under `{namespace}:{app}`:
//! - `lru` (sorted set: session id → use sequence): the live sessions, in LRU order;
//!   `seq` is the counter that orders them.
//! - `deadlines` (sorted set: `s:{id}` or `t:{id}:{state}` → deadline in ms): when
//!   each session's retention and each state's time-to-live run out. The sweep pops
//!   the due entries from its front: its work grows with what expires.
//! - `v:{id}` (hash: state index → versioned serde envelope): the session's values.
//! - `lease:{id}` (string with expiry): the token of the instance running an event of
//!   the session. Events of one session therefore run one at a time across instances;
//!   a commit whose lease ran out is refused.
//! - `streams:{id}` (counter with expiry): the session's open streams on all instances.
//! - `g:{index}` and `glock:{index}`: a global's value and the lock held by the
//!   instance running a listener that writes it.
//! - channel `events`: `{"global": index, "value": ...}` after a global changed and
//!   `{"ended": id}` after a session ended, for every instance.
//!
//! Scripts build key names from their arguments, so this store needs one Redis (or a
//! primary with replicas), not Redis Cluster.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use keepsake_shared::SessionId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::StreamOpened;
use crate::session::{EndReason, Session};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{0}")]
    Unavailable(String),
    #[error("unknown session")]
    UnknownSession,
    #[error("lease lost")]
    LeaseLost,
    #[error("locked by another instance for {0:?}")]
    Busy(Duration),
}

impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> Self {
        // The detail (kind and message) helps the operator; it never carries values.
        StoreError::Unavailable(format!("redis: {error}"))
    }
}

impl From<StoreError> for crate::error::ApiError {
    fn from(error: StoreError) -> Self {
        use crate::error::ApiError;
        match error {
            StoreError::Unavailable(detail) => ApiError::StoreUnavailable(detail),
            StoreError::UnknownSession => ApiError::UnknownSession,
            StoreError::LeaseLost => ApiError::LeaseLost,
            StoreError::Busy(waited) => ApiError::StoreUnavailable(format!(
                "the session or a global stayed locked by another instance for {waited:?}"
            )),
        }
    }
}

/// Something the store ended, with the values the delete callbacks need.
#[derive(Debug)]
pub(crate) enum Ended {
    Session {
        id: SessionId,
        reason: EndReason,
        /// State index and stored envelope of every value the session held.
        values: Vec<(u32, String)>,
    },
    State {
        id: SessionId,
        index: u32,
        value: String,
    },
}

/// What another instance (or this one) announced on the events channel.
#[derive(Debug)]
pub(crate) enum Notice {
    GlobalChanged {
        index: u32,
        value: String,
    },
    SessionEnded(SessionId),
    /// (Re)subscribed: notices may have been missed, so re-read what matters.
    Resubscribed,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EndedRecord {
    Session {
        id: String,
        reason: String,
        // cjson encodes an empty table as `{}`, so this is always an object.
        values: std::collections::HashMap<String, String>,
    },
    State {
        id: String,
        state: u32,
        value: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NoticeRecord {
    Global { global: u32, value: String },
    Ended { ended: String },
}

const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function end_session(ns, sid, reason, states)
  local vkey = ns .. ':v:' .. sid
  local flat = redis.call('HGETALL', vkey)
  local values = {}
  for i = 1, #flat, 2 do values[flat[i]] = flat[i + 1] end
  redis.call('DEL', vkey, ns .. ':streams:' .. sid, ns .. ':lease:' .. sid)
  redis.call('ZREM', ns .. ':lru', sid)
  redis.call('ZREM', ns .. ':deadlines', 's:' .. sid)
  for i = 0, states - 1 do
    redis.call('ZREM', ns .. ':deadlines', 't:' .. sid .. ':' .. i)
  end
  redis.call('PUBLISH', ns .. ':events', cjson.encode({ended = sid}))
  return cjson.encode({kind = 'session', id = sid, reason = reason, values = values})
end
"#;

/// ARGV: ns, id, capacity, retention ms, state count. Returns the ended sessions.
const CREATE: &str = r#"
local ns, sid = ARGV[1], ARGV[2]
local capacity, retention, states = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZADD', ns .. ':lru', redis.call('INCR', ns .. ':seq'), sid)
redis.call('ZADD', ns .. ':deadlines', now_ms() + retention, 's:' .. sid)
local ended = {}
while redis.call('ZCARD', ns .. ':lru') > capacity do
  local popped = redis.call('ZPOPMIN', ns .. ':lru')
  table.insert(ended, end_session(ns, popped[1], 'evicted', states))
end
return ended
"#;

/// ARGV: ns, id, token, lease ms, retention ms. Returns `unknown`, `busy`, or `ok`
/// followed by the session's values as field, value pairs.
const LOAD: &str = r#"
local ns, sid = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', ns .. ':lru', sid) then return {'unknown'} end
if not redis.call('SET', ns .. ':lease:' .. sid, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy'}
end
redis.call('ZADD', ns .. ':lru', 'XX', redis.call('INCR', ns .. ':seq'), sid)
if tonumber(redis.call('GET', ns .. ':streams:' .. sid) or '0') <= 0 then
  redis.call('ZADD', ns .. ':deadlines', now_ms() + tonumber(ARGV[5]), 's:' .. sid)
end
local result = redis.call('HGETALL', ns .. ':v:' .. sid)
table.insert(result, 1, 'ok')
return result
"#;

/// ARGV: ns, id, token, then (state index, envelope, ttl ms or 0) triples.
const COMMIT: &str = r#"
local ns, sid, token = ARGV[1], ARGV[2], ARGV[3]
local lease = ns .. ':lease:' .. sid
if not redis.call('ZSCORE', ns .. ':lru', sid) then return 'unknown' end
if redis.call('GET', lease) ~= token then return 'lost' end
local now = now_ms()
for i = 4, #ARGV, 3 do
  redis.call('HSET', ns .. ':v:' .. sid, ARGV[i], ARGV[i + 1])
  local ttl = tonumber(ARGV[i + 2])
  if ttl > 0 then
    redis.call('ZADD', ns .. ':deadlines', now + ttl, 't:' .. sid .. ':' .. ARGV[i])
  end
end
redis.call('DEL', lease)
return 'ok'
"#;

/// KEYS: the lock. ARGV: token. Deletes the lock only if this token holds it.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

/// ARGV: ns, most entries to pop, state count. Returns what ended.
const SWEEP: &str = r#"
local ns = ARGV[1]
local deadlines = ns .. ':deadlines'
local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local ended = {}
for _, member in ipairs(due) do
  local kind, rest = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 's' then
    redis.call('ZREM', deadlines, member)
    if redis.call('ZSCORE', ns .. ':lru', rest) then
      table.insert(ended, end_session(ns, rest, 'expired', tonumber(ARGV[3])))
    end
  else
    local sid, index = string.match(rest, '^(%x+):(%d+)$')
    -- A state of a session whose event is running expires after that event.
    if sid and redis.call('EXISTS', ns .. ':lease:' .. sid) == 0 then
      redis.call('ZREM', deadlines, member)
      local value = redis.call('HGET', ns .. ':v:' .. sid, index)
      if value then
        redis.call('HDEL', ns .. ':v:' .. sid, index)
        table.insert(ended, cjson.encode({kind = 'state', id = sid, state = tonumber(index), value = value}))
      end
    elseif not sid then
      redis.call('ZREM', deadlines, member)
    end
  end
end
return ended
"#;

/// ARGV: ns, id, limit, keep-alive ms. Returns -1 (unknown), 0 (full) or the count.
const STREAM_OPEN: &str = r#"
local ns, sid = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', ns .. ':lru', sid) then return -1 end
local key = ns .. ':streams:' .. sid
local open = redis.call('INCR', key)
if open > tonumber(ARGV[3]) then
  redis.call('DECR', key)
  return 0
end
redis.call('PEXPIRE', key, ARGV[4])
redis.call('ZADD', ns .. ':deadlines', 'GT', now_ms() + tonumber(ARGV[4]), 's:' .. sid)
return open
"#;

/// ARGV: ns, id, keep-alive ms. Returns 1 if the session is alive.
const STREAM_KEEPALIVE: &str = r#"
local ns, sid = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', ns .. ':lru', sid) then return 0 end
redis.call('PEXPIRE', ns .. ':streams:' .. sid, ARGV[3])
redis.call('ZADD', ns .. ':deadlines', 'GT', now_ms() + tonumber(ARGV[3]), 's:' .. sid)
return 1
"#;

/// ARGV: ns, id, retention ms. Returns 1 if that was the last stream of a live session.
const STREAM_CLOSE: &str = r#"
local ns, sid = ARGV[1], ARGV[2]
local key = ns .. ':streams:' .. sid
if redis.call('DECR', key) > 0 then return 0 end
redis.call('DEL', key)
if redis.call('ZSCORE', ns .. ':lru', sid) then
  redis.call('ZADD', ns .. ':deadlines', now_ms() + tonumber(ARGV[3]), 's:' .. sid)
  return 1
end
return 0
"#;

/// KEYS: lock, value. ARGV: token, lease ms. Returns `busy`, or `ok` and the value.
const GLOBAL_LOCK: &str = r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'busy'} end
local value = redis.call('GET', KEYS[2])
if value then return {'ok', value} end
return {'ok'}
"#;

/// KEYS: lock, value. ARGV: token, envelope, channel, global index.
const GLOBAL_COMMIT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({global = tonumber(ARGV[4]), value = ARGV[2]}))
return 'ok'
"#;

struct Scripts {
    create: Script,
    load: Script,
    commit: Script,
    release: Script,
    sweep: Script,
    stream_open: Script,
    stream_keepalive: Script,
    stream_close: Script,
    global_lock: Script,
    global_commit: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            create: with_prelude(CREATE),
            load: with_prelude(LOAD),
            commit: with_prelude(COMMIT),
            release: Script::new(RELEASE),
            sweep: with_prelude(SWEEP),
            stream_open: with_prelude(STREAM_OPEN),
            stream_keepalive: with_prelude(STREAM_KEEPALIVE),
            stream_close: with_prelude(STREAM_CLOSE),
            global_lock: Script::new(GLOBAL_LOCK),
            global_commit: Script::new(GLOBAL_COMMIT),
        }
    }
}

/// A random token naming one holder of a lease or lock.
pub(crate) fn token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// How the store is set up.
pub(crate) struct RedisSettings {
    pub(crate) namespace: String,
    pub(crate) capacity: u64,
    pub(crate) retention: Duration,
    /// How long an event may hold a session's lease or a global's lock.
    pub(crate) lease: Duration,
    /// How long a stream keeps its session alive without a heartbeat.
    pub(crate) keepalive: Duration,
    pub(crate) state_count: usize,
    pub(crate) resource_count: usize,
    pub(crate) events_per_second: governor::Quota,
}

/// One app's sessions and globals in Redis, and this instance's handles on them.
pub(crate) struct RedisStore {
    client: redis::Client,
    connection: ConnectionManager,
    scripts: Scripts,
    /// `{namespace}:{app}`.
    prefix: String,
    settings: RedisSettings,
    /// This instance's handles on sessions it served (their event order, rate limit,
    /// resources and streams), bounded like the sessions themselves.
    local: Mutex<lru::LruCache<SessionId, Arc<Session>>>,
}

impl RedisStore {
    /// Connects lazily: the server starts even while Redis is down, and events fail
    /// with `store_unavailable` until it is reachable.
    pub(crate) fn open(url: &str, app: &str, settings: RedisSettings) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid Redis URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        let capacity = usize::try_from(settings.capacity)
            .ok()
            .and_then(NonZeroUsize::new)
            .unwrap_or(NonZeroUsize::MIN);
        Ok(RedisStore {
            client,
            connection,
            scripts: Scripts::new(),
            prefix: format!("{}:{app}", settings.namespace),
            settings,
            local: Mutex::new(lru::LruCache::new(capacity)),
        })
    }

    pub(crate) fn retention(&self) -> Duration {
        self.settings.retention
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
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
        let session = Arc::new(Session::new(
            *id,
            self.settings.state_count,
            self.settings.resource_count,
            self.settings.events_per_second,
        ));
        local.put(*id, session.clone());
        session
    }

    /// Forgets this instance's handle on an ended session, closing its streams.
    pub(crate) fn forget(&self, id: &SessionId) -> Option<Arc<Session>> {
        let session = self.local().pop(id)?;
        session.ended.cancel();
        Some(session)
    }

    /// Starts a session under `id`; returns it and the sessions evicted to make room.
    pub(crate) async fn create(
        &self,
        id: SessionId,
    ) -> Result<(Arc<Session>, Vec<Ended>), StoreError> {
        let records: Vec<String> = self
            .scripts
            .create
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(self.settings.capacity)
            .arg(millis(self.settings.retention))
            .arg(self.settings.state_count)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok((self.handle(&id), parse_ended(records)))
    }

    /// This instance's handle on a live session, or `None` if Redis does not know it.
    pub(crate) async fn get(&self, id: &SessionId) -> Result<Option<Arc<Session>>, StoreError> {
        if let Some(session) = self.local().get(id) {
            return Ok(Some(session.clone()));
        }
        let score: Option<f64> = self
            .connection
            .clone()
            .zscore(self.key("lru"), id.as_str())
            .await?;
        Ok(score.map(|_| self.handle(id)))
    }

    /// Open streams of a session on all instances.
    pub(crate) async fn open_streams(&self, id: &SessionId) -> Result<u32, StoreError> {
        let open: Option<i64> = self
            .connection
            .clone()
            .get(self.key(&format!("streams:{}", id.as_str())))
            .await?;
        Ok(u32::try_from(open.unwrap_or(0)).unwrap_or(0))
    }

    /// Takes the session's lease (waiting up to `wait` for another instance to finish)
    /// and reads its values.
    pub(crate) async fn load(
        &self,
        id: &SessionId,
        token: &str,
        wait: Duration,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let mut backoff = Backoff::new(wait);
        loop {
            let reply: Vec<String> = self
                .scripts
                .load
                .arg(&self.prefix)
                .arg(id.as_str())
                .arg(token)
                .arg(millis(self.settings.lease))
                .arg(millis(self.settings.retention))
                .invoke_async(&mut self.connection.clone())
                .await?;
            match reply.first().map(String::as_str) {
                Some("ok") => return Ok(pairs(&reply[1..])),
                Some("busy") => backoff.pause().await?,
                _ => {
                    self.forget(id);
                    return Err(StoreError::UnknownSession);
                }
            }
        }
    }

    /// Writes the values an event changed (index, envelope, time-to-live) and gives
    /// the lease back; refused if the lease was lost or the session ended meanwhile.
    pub(crate) async fn commit(
        &self,
        id: &SessionId,
        token: &str,
        writes: &[(u32, String, Option<Duration>)],
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation.arg(&self.prefix).arg(id.as_str()).arg(token);
        for (index, value, ttl) in writes {
            invocation
                .arg(index)
                .arg(value.as_str())
                .arg(ttl.map_or(0, millis));
        }
        let reply: String = invocation
            .invoke_async(&mut self.connection.clone())
            .await?;
        match reply.as_str() {
            "ok" => Ok(()),
            "lost" => Err(StoreError::LeaseLost),
            _ => {
                self.forget(id);
                Err(StoreError::UnknownSession)
            }
        }
    }

    /// Gives a lease or lock back without writing. Best effort: if Redis cannot be
    /// reached, the lease runs out by itself.
    async fn release(&self, key_suffix: &str, token: &str) {
        let released: Result<i64, _> = self
            .scripts
            .release
            .key(self.key(key_suffix))
            .arg(token)
            .invoke_async(&mut self.connection.clone())
            .await;
        if let Err(error) = released {
            tracing::debug!(%error, "could not give a lease back; it will run out");
        }
    }

    /// Gives the session's lease back after an event that wrote nothing.
    pub(crate) async fn release_session(&self, id: &SessionId, token: String) {
        self.release(&format!("lease:{}", id.as_str()), &token)
            .await;
    }

    /// Gives a global's lock back, from a destructor (the listener failed).
    pub(crate) fn release_global_later(self: Arc<Self>, index: u32, token: String) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { self.release(&format!("glock:{index}"), &token).await });
        }
    }

    /// Pops what is due (at most `limit` entries) from the deadline index.
    pub(crate) async fn sweep(&self, limit: usize) -> Result<Vec<Ended>, StoreError> {
        let records: Vec<String> = self
            .scripts
            .sweep
            .arg(&self.prefix)
            .arg(limit)
            .arg(self.settings.state_count)
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(parse_ended(records))
    }

    pub(crate) async fn live_sessions(&self) -> Result<u64, StoreError> {
        Ok(self.connection.clone().zcard(self.key("lru")).await?)
    }

    pub(crate) async fn stream_opened(
        &self,
        id: &SessionId,
        limit: u32,
    ) -> Result<StreamOpened, StoreError> {
        let open: i64 = self
            .scripts
            .stream_open
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(limit)
            .arg(millis(self.settings.keepalive))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(match open {
            ..0 => StreamOpened::UnknownSession,
            0 => StreamOpened::Full,
            _ => StreamOpened::Attached,
        })
    }

    /// A stream's heartbeat: keeps the session alive while its page is open, even if
    /// no event comes. Returns false if the session is gone.
    pub(crate) async fn stream_alive(&self, id: &SessionId) -> Result<bool, StoreError> {
        let alive: i64 = self
            .scripts
            .stream_keepalive
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(millis(self.settings.keepalive))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(alive == 1)
    }

    /// A stream ended; true if it was the session's last one on any instance.
    pub(crate) async fn stream_closed(&self, id: &SessionId) -> Result<bool, StoreError> {
        let last: i64 = self
            .scripts
            .stream_close
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(millis(self.settings.retention))
            .invoke_async(&mut self.connection.clone())
            .await?;
        Ok(last == 1)
    }

    /// Takes the lock of global `index` (waiting up to `wait`) and reads its value.
    pub(crate) async fn lock_global(
        &self,
        index: u32,
        token: &str,
        wait: Duration,
    ) -> Result<Option<String>, StoreError> {
        let mut backoff = Backoff::new(wait);
        loop {
            let reply: Vec<String> = self
                .scripts
                .global_lock
                .key(self.key(&format!("glock:{index}")))
                .key(self.key(&format!("g:{index}")))
                .arg(token)
                .arg(millis(self.settings.lease))
                .invoke_async(&mut self.connection.clone())
                .await?;
            match reply.first().map(String::as_str) {
                Some("ok") => return Ok(reply.into_iter().nth(1)),
                _ => backoff.pause().await?,
            }
        }
    }

    pub(crate) async fn read_global(&self, index: u32) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection
            .clone()
            .get(self.key(&format!("g:{index}")))
            .await?)
    }

    /// Writes global `index`, gives its lock back and announces the change.
    pub(crate) async fn commit_global(
        &self,
        index: u32,
        token: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        let reply: String = self
            .scripts
            .global_commit
            .key(self.key(&format!("glock:{index}")))
            .key(self.key(&format!("g:{index}")))
            .arg(token)
            .arg(value)
            .arg(self.key("events"))
            .arg(index)
            .invoke_async(&mut self.connection.clone())
            .await?;
        match reply.as_str() {
            "ok" => Ok(()),
            _ => Err(StoreError::LeaseLost),
        }
    }

    /// Listens on the events channel until `shutdown`, reconnecting whenever the
    /// connection drops, and passes what it hears to `notices`.
    pub(crate) async fn listen(
        self: Arc<Self>,
        notices: mpsc::UnboundedSender<Notice>,
        shutdown: CancellationToken,
    ) {
        let channel = self.key("events");
        let mut pause = Duration::from_millis(100);
        loop {
            let subscribed = async {
                let mut pubsub = self.client.get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            let pubsub = tokio::select! {
                _ = shutdown.cancelled() => return,
                subscribed = subscribed => subscribed,
            };
            match pubsub {
                Ok(pubsub) => {
                    pause = Duration::from_millis(100);
                    if notices.send(Notice::Resubscribed).is_err() {
                        return;
                    }
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let message = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = messages.next() => message,
                        };
                        let Some(message) = message else { break };
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        let notice = match serde_json::from_str::<NoticeRecord>(&payload) {
                            Ok(NoticeRecord::Global { global, value }) => Notice::GlobalChanged {
                                index: global,
                                value,
                            },
                            Ok(NoticeRecord::Ended { ended }) => match ended.parse() {
                                Ok(id) => Notice::SessionEnded(id),
                                Err(_) => continue,
                            },
                            Err(error) => {
                                tracing::warn!(%error, "unreadable notice on the events channel");
                                continue;
                            }
                        };
                        if notices.send(notice).is_err() {
                            return;
                        }
                    }
                    tracing::warn!("lost the Redis events subscription; reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot subscribe to Redis events; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }
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

fn parse_ended(records: Vec<String>) -> Vec<Ended> {
    records
        .into_iter()
        .filter_map(
            |record| match serde_json::from_str::<EndedRecord>(&record) {
                Ok(EndedRecord::Session { id, reason, values }) => Some(Ended::Session {
                    id: id.parse().ok()?,
                    reason: if reason == "evicted" {
                        EndReason::Evicted
                    } else {
                        EndReason::Expired
                    },
                    values: values
                        .into_iter()
                        .filter_map(|(index, value)| Some((index.parse().ok()?, value)))
                        .collect(),
                }),
                Ok(EndedRecord::State { id, state, value }) => Some(Ended::State {
                    id: id.parse().ok()?,
                    index: state,
                    value,
                }),
                Err(error) => {
                    tracing::error!(%error, "unreadable record from the sweep");
                    None
                }
            },
        )
        .collect()
}
