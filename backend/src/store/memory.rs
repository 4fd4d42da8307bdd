//! The embedded store (the default): sessions live in this process.
//!
//! Two indexes under one lock: an LRU list (the session capacity, strict order, so
//! capacity 2 gives Gradio's eviction sequence) and a deadline index ordered by when
//! each session's retention runs out. A session with an open stream has no deadline;
//! one without expires `retention` after its last use. The sweep pops due deadlines
//! from the front of the ordered index and stops at the first one in the future, so
//! its work is the number of sessions that expire, whatever the number alive.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keepsake_shared::SessionId;
use tokio::sync::mpsc;

use super::StreamOpened;
use crate::session::{EndReason, Session};

/// Sessions that ended (expired or evicted), for the runtime to close.
pub(crate) type EndedSessions = mpsc::UnboundedReceiver<(Arc<Session>, EndReason)>;

/// A position in the deadline index: when, and a sequence number that keeps equal
/// instants apart.
type Deadline = (Instant, u64);

struct Entry {
    session: Arc<Session>,
    deadline: Option<Deadline>,
}

struct Index {
    lru: lru::LruCache<SessionId, Entry>,
    deadlines: BTreeMap<Deadline, Arc<Session>>,
    next_sequence: u64,
}

impl Index {
    fn set_deadline(&mut self, id: &SessionId, at: Option<Instant>) {
        if let Some(entry) = self.lru.peek_mut(id) {
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
}

/// What one sweep did: how many deadlines it looked at and how many sessions ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SweepStats {
    pub(crate) examined: usize,
    pub(crate) ended: usize,
}

/// All live sessions of one app, in this process.
pub(crate) struct MemoryStore {
    index: Mutex<Index>,
    retention: Duration,
    state_count: usize,
    resource_count: usize,
    events_per_second: governor::Quota,
    ended: mpsc::UnboundedSender<(Arc<Session>, EndReason)>,
}

impl MemoryStore {
    pub(crate) fn new(
        capacity: u64,
        retention: Duration,
        events_per_second: governor::Quota,
        state_count: usize,
        resource_count: usize,
    ) -> (Self, EndedSessions) {
        let (ended, ended_rx) = mpsc::unbounded_channel();
        let capacity = usize::try_from(capacity)
            .ok()
            .and_then(NonZeroUsize::new)
            .unwrap_or(NonZeroUsize::MIN);
        let store = MemoryStore {
            index: Mutex::new(Index {
                lru: lru::LruCache::new(capacity),
                deadlines: BTreeMap::new(),
                next_sequence: 0,
            }),
            retention,
            state_count,
            resource_count,
            events_per_second,
            ended,
        };
        (store, ended_rx)
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // Every critical section below leaves the index consistent before anything
        // that could panic, so a poisoned lock still guards valid data.
        self.index
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn end(&self, session: Arc<Session>, reason: EndReason) {
        // The receiver lives as long as the runtime; if it is gone, so is the app.
        let _ = self.ended.send((session, reason));
    }

    /// Starts a session under `id`, evicting the least recently used session if the
    /// capacity is reached.
    pub(crate) fn create(&self, id: SessionId) -> Arc<Session> {
        let session = Arc::new(Session::new(
            id,
            self.state_count,
            self.resource_count,
            self.events_per_second,
        ));
        let evicted = {
            let mut index = self.index();
            let evicted = index.lru.push(
                id,
                Entry {
                    session: session.clone(),
                    deadline: None,
                },
            );
            let evicted = match evicted {
                // `push` also returns the old entry when the key was present; ids are
                // random, so that is not an eviction (and cannot happen in practice).
                Some((evicted_id, entry)) if evicted_id != id => {
                    if let Some(deadline) = entry.deadline {
                        index.deadlines.remove(&deadline);
                    }
                    Some(entry.session)
                }
                _ => None,
            };
            // Creating is a use: the same step as in `get`.
            let at = Instant::now() + self.retention + self.deadline_slack();
            index.set_deadline(&id, Some(at));
            evicted
        };
        if let Some(evicted) = evicted {
            self.end(evicted, EndReason::Evicted);
        }
        session
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
        let entry = index.lru.get_mut(id)?;
        let session = entry.session.clone();
        let due_too_soon = entry.deadline.is_none_or(|(at, _)| at < now + retention);
        if session.open_streams() == 0 && due_too_soon {
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
    /// `false` and nothing changes. While a stream is open the session does not expire.
    pub(crate) fn stream_opened(&self, session: &Session, limit: u32) -> StreamOpened {
        let mut index = self.index();
        if index.lru.peek(&session.id).is_none() {
            // Ended between the caller's lookup and this lock.
            return StreamOpened::UnknownSession;
        }
        let open = session.streams.load(Ordering::Acquire);
        if open >= limit {
            return StreamOpened::Full;
        }
        session.streams.store(open + 1, Ordering::Release);
        index.set_deadline(&session.id, None);
        StreamOpened::Attached
    }

    /// A stream ended. Returns true if it was the session's last one; then the
    /// retention clock starts.
    pub(crate) fn stream_closed(&self, session: &Session) -> bool {
        let mut index = self.index();
        let open = session.streams.load(Ordering::Acquire).saturating_sub(1);
        session.streams.store(open, Ordering::Release);
        if open == 0 {
            index.set_deadline(&session.id, Some(Instant::now() + self.retention));
        }
        open == 0
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
                index.lru.pop(&session.id);
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
        self.index().lru.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> SessionId {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        SessionId::from_bytes(bytes)
    }

    fn store(capacity: u64, retention: Duration) -> (MemoryStore, EndedSessions) {
        MemoryStore::new(
            capacity,
            retention,
            governor::Quota::per_second(std::num::NonZeroU32::MIN),
            1,
            0,
        )
    }

    /// The sweep's work is the number of sessions that expire (plus the one deadline
    /// it stops at), at 1,000 live sessions as at 200,000.
    #[test]
    fn sweep_work_grows_with_what_expires_not_with_what_lives() {
        let retention = Duration::from_secs(600);
        for live in [1_000u32, 200_000] {
            let (store, mut ended) = store(u64::from(live) * 2, retention);
            let expiring = 100;
            for n in 0..expiring {
                store.create(id(n));
            }
            let cutoff = Instant::now();
            std::thread::sleep(Duration::from_millis(2));
            for n in expiring..expiring + live {
                store.create(id(n));
            }
            let stats = store.sweep_at(cutoff + retention + store.deadline_slack());
            assert_eq!(stats.ended, expiring as usize, "live = {live}");
            assert_eq!(stats.examined, expiring as usize + 1, "live = {live}");
            assert_eq!(store.live_sessions(), u64::from(live));
            let mut count = 0;
            while let Ok((_, reason)) = ended.try_recv() {
                assert_eq!(reason, EndReason::Expired);
                count += 1;
            }
            assert_eq!(count, expiring);
        }
    }

    #[test]
    fn use_moves_the_deadline_and_open_streams_remove_it() {
        let retention = Duration::from_millis(640); // slack: 10 ms
        let (store, _ended) = store(10, retention);
        let used = store.create(id(1));
        let streaming = store.create(id(2));
        let idle = store.create(id(3));
        let start = Instant::now();
        // Past the step, so the use moves the deadline.
        std::thread::sleep(Duration::from_millis(15));
        assert!(store.get(&used.id).is_some());
        assert_eq!(store.stream_opened(&streaming, 8), StreamOpened::Attached);
        let stats = store.sweep_at(start + retention + store.deadline_slack());
        assert_eq!(stats.ended, 1);
        assert!(store.get(&idle.id).is_none());
        assert!(store.get(&used.id).is_some());
        // Far in the future only the session with an open stream is left.
        store.sweep_at(start + retention * 10);
        assert!(store.get(&used.id).is_none());
        assert!(store.get(&streaming.id).is_some());
        assert!(store.stream_closed(&streaming));
        store.sweep_at(Instant::now() + retention);
        assert_eq!(store.live_sessions(), 0);
    }

    fn deadline_of(store: &MemoryStore, id: &SessionId) -> Option<Deadline> {
        store.index().lru.peek(id).and_then(|entry| entry.deadline)
    }

    #[test]
    fn frequent_use_moves_the_deadline_in_steps_and_never_expires_early() {
        let retention = Duration::from_secs(64); // slack: 1 s
        let (long, _ended) = store(10, retention);
        let session = long.create(id(1));
        assert!(long.get(&session.id).is_some());
        let stepped = deadline_of(&long, &session.id);
        // More uses within the step leave the deadline index alone.
        for _ in 0..100 {
            assert!(long.get(&session.id).is_some());
        }
        assert_eq!(deadline_of(&long, &session.id), stepped);
        let last_use = Instant::now();
        // Kept at least `retention` after the last use, and at most the slack longer.
        let just_before = last_use + retention - Duration::from_millis(1);
        assert_eq!(long.sweep_at(just_before).ended, 0);
        assert_eq!(
            long.sweep_at(last_use + retention + Duration::from_secs(1))
                .ended,
            1
        );

        // Once the step has passed, a use moves the deadline again.
        let retention = Duration::from_millis(64); // slack: 1 ms
        let (short, _ended) = store(10, retention);
        let session = short.create(id(2));
        assert!(short.get(&session.id).is_some());
        let before = deadline_of(&short, &session.id);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get(&session.id).is_some());
        let after = deadline_of(&short, &session.id);
        assert!(after.map(|d| d.0) > before.map(|d| d.0));
        let last_use = Instant::now();
        assert_eq!(
            short
                .sweep_at(last_use + retention - Duration::from_micros(100))
                .ended,
            0
        );
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        let (store, mut ended) = store(2, Duration::from_secs(60));
        let first = store.create(id(1));
        let second = store.create(id(2));
        assert!(store.get(&first.id).is_some());
        store.create(id(3));
        let (evicted, reason) = ended.try_recv().expect("one session evicted");
        assert_eq!(reason, EndReason::Evicted);
        assert_eq!(evicted.id, second.id);
        assert_eq!(store.live_sessions(), 2);
        // The evicted session left the deadline index too.
        assert_eq!(
            store
                .sweep_at(Instant::now() + Duration::from_secs(120))
                .ended,
            2
        );
    }

    #[test]
    fn stream_limit_is_kept() {
        let (store, _ended) = store(2, Duration::from_secs(60));
        let session = store.create(id(1));
        assert_eq!(store.stream_opened(&session, 2), StreamOpened::Attached);
        assert_eq!(store.stream_opened(&session, 2), StreamOpened::Attached);
        assert_eq!(store.stream_opened(&session, 2), StreamOpened::Full);
        assert!(!store.stream_closed(&session));
        assert!(store.stream_closed(&session));
    }

    #[test]
    fn a_stream_for_a_session_that_just_ended_is_told_so() {
        // The HTTP handler looks the session up, then attaches: the session can end
        // in between. That is an unknown session, not a full one.
        let (store, _ended) = store(2, Duration::from_millis(10));
        let session = store.create(id(1));
        assert_eq!(
            store
                .sweep_at(Instant::now() + Duration::from_secs(1))
                .ended,
            1
        );
        assert_eq!(
            store.stream_opened(&session, 2),
            StreamOpened::UnknownSession
        );
    }
}
