//! The embedded store (the default): sessions and globals live in this process.
//!
//! Three indexes under one lock: an LRU list of the sessions without an open page
//! (strict order, so capacity 2 gives Gradio's eviction sequence), the sessions with
//! an open page (never evicted, never expired), and a deadline index ordered by when
//! each detached session's retention runs out. The sweep pops due deadlines from the
//! front of the ordered index and stops at the first one in the future, so its work
//! is the number of sessions that expire, whatever the number alive.
//!
//! Why a std `Mutex`: every critical section is a few map operations and never
//! awaits, so an async mutex would only add a waker per lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keepsake_shared::SessionId;
use tokio_util::sync::CancellationToken;

use super::memory_ttl::TtlTimers;
use super::{Commit, FeedOpened, SessionShape, StoreError, StoreEvent, StoreEvents};
use crate::app::App;
use crate::session::{EndReason, Session, SessionData, StoredState};
use crate::settings::Settings;
use crate::value::DynValue;

/// A position in the deadline index: when, and a sequence number that keeps equal
/// instants apart.
type Deadline = (Instant, u64);

struct Entry {
    session: Arc<Session>,
    deadline: Option<Deadline>,
}

struct Index {
    /// Sessions without an open page, least recently used first.
    detached: lru::LruCache<SessionId, Entry>,
    /// Sessions with an open page: out of the eviction order and without deadline.
    attached: HashMap<SessionId, Arc<Session>>,
    deadlines: BTreeMap<Deadline, Arc<Session>>,
    next_sequence: u64,
}

impl Index {
    fn set_deadline(&mut self, id: &SessionId, at: Option<Instant>) {
        if let Some(entry) = self.detached.peek_mut(id) {
            Self::move_deadline(&mut self.deadlines, &mut self.next_sequence, entry, at);
        }
    }

    /// Moves `entry`'s position in the deadline index (`None`: takes it out).
    fn move_deadline(
        deadlines: &mut BTreeMap<Deadline, Arc<Session>>,
        next_sequence: &mut u64,
        entry: &mut Entry,
        at: Option<Instant>,
    ) {
        if let Some(old) = entry.deadline.take() {
            deadlines.remove(&old);
        }
        if let Some(at) = at {
            let deadline = (at, *next_sequence);
            deadlines.insert(deadline, entry.session.clone());
            entry.deadline = Some(deadline);
            *next_sequence += 1;
        }
    }

    fn live(&self) -> usize {
        self.detached.len() + self.attached.len()
    }
}

/// What one sweep did: how many deadlines it looked at and how many sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SweepStats {
    pub(crate) examined: usize,
    pub(crate) ended: usize,
}

/// All live sessions and the globals of one app, in this process.
pub(crate) struct MemoryStore {
    index: Mutex<Index>,
    capacity: usize,
    retention: Duration,
    shape: SessionShape,
    /// Last committed value of each global. Held only to clone or replace a value,
    /// never across an await: readers never wait for a writer's event.
    globals: Vec<Mutex<Box<dyn DynValue>>>,
    /// Time-to-live of each state, if it has one.
    ttls: Vec<Option<Duration>>,
    timers: TtlTimers,
    events: StoreEvents,
}

impl MemoryStore {
    pub(crate) fn new(
        app: Arc<App>,
        settings: &Settings,
        shape: SessionShape,
        events: StoreEvents,
    ) -> Self {
        MemoryStore {
            index: Mutex::new(Index {
                detached: lru::LruCache::unbounded(),
                attached: HashMap::new(),
                deadlines: BTreeMap::new(),
                next_sequence: 0,
            }),
            capacity: usize::try_from(settings.session_capacity)
                .unwrap_or(usize::MAX)
                .max(1),
            retention: settings.session_retention,
            shape,
            globals: app
                .globals
                .iter()
                .map(|g| Mutex::new(g.initial.clone_boxed()))
                .collect(),
            ttls: app.states.iter().map(|s| s.time_to_live).collect(),
            timers: TtlTimers::new(events.clone()),
            events,
        }
    }

    pub(crate) fn start(&self, shutdown: CancellationToken) {
        self.timers.start(shutdown);
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // Every critical section below leaves the index consistent before anything
        // that could panic, so a poisoned lock still guards valid data.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn end(&self, session: Arc<Session>, reason: EndReason) {
        // The receiver lives as long as the engine; if it is gone, so is the app.
        let _ = self.events.send(StoreEvent::SessionEnded {
            id: session.id,
            session: Some(session),
            reason,
            values: None,
        });
    }

    /// Starts a session under `id`. At capacity the least recently used session
    /// without an open page is evicted; if every session has one, nobody is, and
    /// the start is refused.
    ///
    /// Under an id that is live already, it is that session (the caller's next use
    /// of it moves its clock): two starts of one id racing never make two sessions.
    pub(crate) fn create(&self, id: SessionId) -> Result<Arc<Session>, StoreError> {
        let session = self.shape.new_session(id);
        let evicted = {
            let mut index = self.index();
            if let Some(live) = index.detached.get(&id).map(|entry| entry.session.clone()) {
                return Ok(live);
            }
            if let Some(live) = index.attached.get(&id) {
                return Ok(live.clone());
            }
            let evicted = if index.live() >= self.capacity {
                match index.detached.pop_lru() {
                    Some((_, entry)) => {
                        if let Some(deadline) = entry.deadline {
                            index.deadlines.remove(&deadline);
                        }
                        Some(entry.session)
                    }
                    None => return Err(StoreError::AtCapacity),
                }
            } else {
                None
            };
            index.detached.push(
                id,
                Entry {
                    session: session.clone(),
                    deadline: None,
                },
            );
            // Creating is a use: the same step as in `get`.
            let at = Instant::now() + self.retention + self.deadline_slack();
            index.set_deadline(&id, Some(at));
            evicted
        };
        if let Some(evicted) = evicted {
            self.end(evicted, EndReason::Evicted);
        }
        Ok(session)
    }

    /// A live session; counts as a use (LRU order, retention clock).
    ///
    /// The retention deadline moves in steps of [`Self::deadline_slack`]: a use moves it
    /// only when it is due sooner than `retention` from now, and then to `retention +
    /// slack` from now. A session that is used often (every event of an active page)
    /// thus touches the deadline index once per step instead of on every event, and
    /// expires between `retention` and `retention + slack` after its last use, never
    /// before.
    pub(crate) fn get(&self, id: &SessionId) -> Option<Arc<Session>> {
        let now = Instant::now();
        let (retention, slack) = (self.retention, self.deadline_slack());
        let mut guard = self.index();
        let index = &mut *guard;
        let Some(entry) = index.detached.get_mut(id) else {
            return index.attached.get(id).cloned();
        };
        let session = entry.session.clone();
        let due_too_soon = entry.deadline.is_none_or(|(at, _)| at < now + retention);
        if due_too_soon {
            let at = Some(now + retention + slack);
            Index::move_deadline(&mut index.deadlines, &mut index.next_sequence, entry, at);
        }
        Some(session)
    }

    /// How much later than `retention` after its last use a session may expire (56 s
    /// of Gradio's 60 min).
    fn deadline_slack(&self) -> Duration {
        crate::Settings::retention_slack(self.retention)
    }

    /// A page attaches a stream, unless the session already has `limit` open: then
    /// `Full` and nothing changes. While a stream is open the session neither
    /// expires nor is evicted.
    pub(crate) fn feed_opened(&self, session: &Session, limit: u32) -> FeedOpened {
        let mut guard = self.index();
        let index = &mut *guard;
        let open = session.streams.load(Ordering::Acquire);
        if index.attached.contains_key(&session.id) {
            if open >= limit {
                return FeedOpened::Full;
            }
        } else {
            let Some(entry) = index.detached.pop(&session.id) else {
                // Ended between the caller's lookup and this lock.
                return FeedOpened::UnknownSession;
            };
            if let Some(deadline) = entry.deadline {
                index.deadlines.remove(&deadline);
            }
            index.attached.insert(session.id, entry.session);
        }
        session.streams.store(open + 1, Ordering::Release);
        FeedOpened::Attached
    }

    /// A stream ended. Returns true if it was the session's last one; then the
    /// session is the most recently used of the detached ones and its retention
    /// clock starts.
    pub(crate) fn feed_closed(&self, session: &Session) -> bool {
        let mut index = self.index();
        let open = session.streams.load(Ordering::Acquire).saturating_sub(1);
        session.streams.store(open, Ordering::Release);
        if open > 0 {
            return false;
        }
        if let Some(session) = index.attached.remove(&session.id) {
            let id = session.id;
            index.detached.push(
                id,
                Entry {
                    session,
                    deadline: None,
                },
            );
            index.set_deadline(&id, Some(Instant::now() + self.retention));
        }
        true
    }

    /// Ends the sessions whose retention ran out by `now`.
    pub(crate) fn sweep_at(&self, now: Instant) -> SweepStats {
        let mut stats = SweepStats::default();
        let mut due = Vec::new();
        {
            let mut index = self.index();
            while let Some(entry) = index.deadlines.first_entry() {
                stats.examined += 1;
                if entry.key().0 > now {
                    break;
                }
                let session = entry.remove();
                index.detached.pop(&session.id);
                due.push(session);
            }
        }
        stats.ended = due.len();
        for session in due {
            self.end(session, EndReason::Expired);
        }
        stats
    }

    pub(crate) fn sweep(&self) -> SweepStats {
        self.sweep_at(Instant::now())
    }

    pub(crate) fn retention(&self) -> Duration {
        self.retention
    }

    pub(crate) fn live_sessions(&self) -> u64 {
        self.index().live() as u64
    }

    fn global(&self, index: u32) -> Result<MutexGuard<'_, Box<dyn DynValue>>, StoreError> {
        let cell = self
            .globals
            .get(index as usize)
            .ok_or_else(|| StoreError::Unavailable(format!("no global {index}")))?;
        Ok(cell.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub(crate) fn read_global(&self, index: u32) -> Result<Box<dyn DynValue>, StoreError> {
        Ok(self.global(index)?.clone_boxed())
    }

    /// The values of globals `indices`, for an event that holds their writer locks.
    pub(crate) fn globals(&self, indices: &[u32]) -> Vec<Box<dyn DynValue>> {
        indices
            .iter()
            .filter_map(|&index| self.read_global(index).ok())
            .collect()
    }

    /// Applies an event's writes. Nothing here can fail: the engine staged and
    /// checked everything before, so the event lands whole.
    pub(crate) fn commit(&self, session: &Arc<Session>, data: &mut SessionData, commit: Commit) {
        let now = Instant::now();
        for (index, value, bytes) in commit.states {
            let Some(slot) = data.states.get_mut(index as usize) else {
                continue;
            };
            let previous = slot.as_ref().map_or(0, |s| s.bytes);
            data.state_bytes = data.state_bytes.saturating_sub(previous) + bytes;
            *slot = Some(StoredState {
                value,
                written_at: now,
                bytes,
            });
            if let Some(Some(ttl)) = self.ttls.get(index as usize) {
                self.timers.schedule(session, index, *ttl);
            }
        }
        for (index, value) in commit.globals {
            if let Ok(mut cell) = self.global(index) {
                *cell = value.clone_boxed();
            }
            let _ = self.events.send(StoreEvent::GlobalChanged { index, value });
        }
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
