//! Tests of the memory store's indexes: eviction order, deadlines, stream limits.

use super::*;

fn id(n: u32) -> SessionId {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    SessionId::from_bytes(bytes)
}

/// Sessions that ended, as the engine receives them.
struct Ended(tokio::sync::mpsc::UnboundedReceiver<StoreEvent>);

impl Ended {
    fn try_recv(&mut self) -> Result<(Arc<Session>, EndReason), ()> {
        loop {
            match self.0.try_recv() {
                Ok(StoreEvent::SessionEnded {
                    session: Some(session),
                    reason,
                    ..
                }) => return Ok((session, reason)),
                Ok(_) => continue,
                Err(_) => return Err(()),
            }
        }
    }
}

fn store(capacity: u64, retention: Duration) -> (MemoryStore, Ended) {
    let mut app = crate::Blocks::new("memory-test", "Memory test");
    app.state(crate::State::new(0u32));
    let app = Arc::new(app.build().expect("the test app builds"));
    let settings = Settings {
        session_capacity: capacity,
        session_retention: retention,
        ..Settings::default()
    };
    let shape = SessionShape {
        state_count: 1,
        resource_count: 0,
        events_per_second: governor::Quota::per_second(std::num::NonZeroU32::MIN),
    };
    let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
    (
        MemoryStore::new(app, &settings, shape, events),
        Ended(receiver),
    )
}

fn create(store: &MemoryStore, id: SessionId) -> Arc<Session> {
    store
        .create(id)
        .expect("below capacity, or a detached session to evict")
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
            create(&store, id(n));
        }
        let cutoff = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        for n in expiring..expiring + live {
            create(&store, id(n));
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
fn use_moves_the_deadline_and_open_feeds_remove_it() {
    let retention = Duration::from_millis(640); // slack: 10 ms
    let (store, _ended) = store(10, retention);
    let used = create(&store, id(1));
    let streaming = create(&store, id(2));
    let idle = create(&store, id(3));
    let start = Instant::now();
    // Past the step, so the use moves the deadline.
    std::thread::sleep(Duration::from_millis(15));
    assert!(store.get(&used.id).is_some());
    assert_eq!(store.feed_opened(&streaming, 8), FeedOpened::Attached);
    let stats = store.sweep_at(start + retention + store.deadline_slack());
    assert_eq!(stats.ended, 1);
    assert!(store.get(&idle.id).is_none());
    assert!(store.get(&used.id).is_some());
    // Far in the future only the session with an open stream is left.
    store.sweep_at(start + retention * 10);
    assert!(store.get(&used.id).is_none());
    assert!(store.get(&streaming.id).is_some());
    assert!(store.feed_closed(&streaming));
    store.sweep_at(Instant::now() + retention);
    assert_eq!(store.live_sessions(), 0);
}

fn deadline_of(store: &MemoryStore, id: &SessionId) -> Option<Deadline> {
    store
        .index()
        .detached
        .peek(id)
        .and_then(|entry| entry.deadline)
}

#[test]
fn frequent_use_moves_the_deadline_in_steps_and_never_expires_early() {
    let retention = Duration::from_secs(64); // slack: 1 s
    let (long, _ended) = store(10, retention);
    let session = create(&long, id(1));
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
    let session = create(&short, id(2));
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
    let first = create(&store, id(1));
    let second = create(&store, id(2));
    assert!(store.get(&first.id).is_some());
    create(&store, id(3));
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
    let session = create(&store, id(1));
    assert_eq!(store.feed_opened(&session, 2), FeedOpened::Attached);
    assert_eq!(store.feed_opened(&session, 2), FeedOpened::Attached);
    assert_eq!(store.feed_opened(&session, 2), FeedOpened::Full);
    assert!(!store.feed_closed(&session));
    assert!(store.feed_closed(&session));
}

#[test]
fn a_feed_for_a_session_that_just_ended_is_told_so() {
    // The HTTP handler looks the session up, then attaches: the session can end
    // in between. That is an unknown session, not a full one.
    let (store, _ended) = store(2, Duration::from_millis(10));
    let session = create(&store, id(1));
    assert_eq!(
        store
            .sweep_at(Instant::now() + Duration::from_secs(1))
            .ended,
        1
    );
    assert_eq!(store.feed_opened(&session, 2), FeedOpened::UnknownSession);
}

#[test]
fn capacity_never_evicts_a_session_whose_page_is_open() {
    let (store, mut ended) = store(2, Duration::from_secs(60));
    let open = create(&store, id(1));
    assert_eq!(store.feed_opened(&open, 8), FeedOpened::Attached);
    let closed = create(&store, id(2));
    // At capacity, the newer session without a page goes, not the older open one.
    let third = create(&store, id(3));
    let (evicted, reason) = ended.try_recv().expect("one session evicted");
    assert_eq!((evicted.id, reason), (closed.id, EndReason::Evicted));
    // Every session has an open page: a new start is refused, nobody is evicted.
    assert_eq!(store.feed_opened(&third, 8), FeedOpened::Attached);
    assert!(matches!(store.create(id(4)), Err(StoreError::AtCapacity)));
    assert!(ended.try_recv().is_err());
    assert_eq!(store.live_sessions(), 2);
    assert!(store.get(&open.id).is_some());
    // A page that closes makes its session evictable again, and it does not expire
    // while it is open.
    assert_eq!(
        store
            .sweep_at(Instant::now() + Duration::from_secs(600))
            .ended,
        0
    );
    assert!(store.feed_closed(&third));
    create(&store, id(5));
    let (evicted, _) = ended.try_recv().expect("the closed page's session evicted");
    assert_eq!(evicted.id, third.id);
    assert!(store.get(&open.id).is_some());
}

/// Starting a session under a live id is a use of that session, not a new one: a
/// bridge that names sessions after its clients' keys may race two starts of one key,
/// and the second must not replace the first (its events would then commit to a
/// session nobody can reach).
#[test]
fn starting_a_live_id_again_gives_the_same_session() {
    let (store, mut ended) = store(4, Duration::from_secs(60));
    let first = create(&store, id(1));
    let again = create(&store, id(1));
    assert!(
        Arc::ptr_eq(&first, &again),
        "a second session replaced the first"
    );
    assert_eq!(store.live_sessions(), 1);
    assert!(ended.try_recv().is_err(), "nothing ended");
    // With a page open on it, too.
    assert_eq!(store.feed_opened(&first, 1), FeedOpened::Attached);
    let attached = create(&store, id(1));
    assert!(Arc::ptr_eq(&first, &attached));
    assert_eq!(store.live_sessions(), 1);
}
