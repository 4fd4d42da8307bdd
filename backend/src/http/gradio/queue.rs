//! Gradio's queue, as its clients see it: `queue/join` takes an event and answers
//! with its id at once; the event's messages (estimation, process_starts,
//! process_completed) wait in the client's mailbox until its `queue/data` stream
//! takes them, and the stream closes (`close_stream`) once the client's events are
//! all done and delivered.
//!
//! Bounded: at most `limit` mailboxes (one per `session_hash` with messages or
//! events in flight), [`MAX_PENDING`] events per mailbox from their join until their
//! last message is taken (so a client that joins without end and never reads is
//! refused, not queued), and a mailbox whose client never came for its messages is
//! dropped [`ABANDONED_AFTER`] later, once room is needed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::error::ApiError;

/// Events of one client joined and not yet delivered (Gradio's own clients send one
/// at a time per call; a script may submit many).
pub(crate) const MAX_PENDING: u32 = 64;
/// How long undelivered messages wait for their client's stream (Gradio's clients
/// open it right after their join).
pub(crate) const ABANDONED_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Mailbox {
    messages: VecDeque<Value>,
    /// Events joined whose `process_completed` is not posted yet.
    pending: u32,
    /// Events joined whose `process_completed` has not been taken by a stream.
    undelivered: u32,
    /// Wakes the client's stream when a message arrives.
    arrived: Arc<Notify>,
    /// Last time anything was put in or taken out.
    touched: Option<Instant>,
}

impl Mailbox {
    fn idle(&self) -> bool {
        self.pending == 0 && self.messages.is_empty()
    }
}

/// One app's mailboxes, by `session_hash`.
pub(crate) struct Queue {
    mailboxes: Mutex<HashMap<String, Mailbox>>,
    limit: usize,
}

/// What the client's stream does next.
pub(crate) enum Next {
    /// Send this message.
    Send(Value),
    /// Nothing yet: wait for this (then look again).
    Wait(Arc<Notify>),
    /// Everything delivered and nothing in flight: send `close_stream` and end.
    Close,
}

impl Queue {
    pub(crate) fn new(limit: usize) -> Self {
        Queue {
            mailboxes: Mutex::new(HashMap::new()),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Mailbox>> {
        // Every section leaves the map consistent: a poisoned lock still guards it.
        self.mailboxes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes an event of client `key` in: its `estimation` message is posted, and it
    /// counts as in flight until [`Self::complete`].
    pub(crate) fn join(&self, key: &str, event_id: &str) -> Result<(), ApiError> {
        let mut mailboxes = self.lock();
        if !mailboxes.contains_key(key) && mailboxes.len() >= self.limit {
            let now = Instant::now();
            mailboxes.retain(|_, mailbox| {
                !(mailbox.idle()
                    || mailbox
                        .touched
                        .is_some_and(|at| now.duration_since(at) > ABANDONED_AFTER))
            });
            if mailboxes.len() >= self.limit {
                return Err(ApiError::AtCapacity);
            }
        }
        let mailbox = mailboxes.entry(key.to_owned()).or_default();
        if mailbox.undelivered >= MAX_PENDING {
            return Err(ApiError::LimitExceeded(format!(
                "at most {MAX_PENDING} events of one session_hash may wait, running or unread, at once"
            )));
        }
        mailbox.pending += 1;
        mailbox.undelivered += 1;
        post(
            mailbox,
            json!({"msg": "estimation", "event_id": event_id, "rank": 0, "queue_size": 1, "rank_eta": null}),
        );
        Ok(())
    }

    /// Posts a message of an event in flight.
    pub(crate) fn post(&self, key: &str, message: Value) {
        if let Some(mailbox) = self.lock().get_mut(key) {
            post(mailbox, message);
        }
    }

    /// Posts an event's last message; it is no longer in flight.
    pub(crate) fn complete(&self, key: &str, message: Value) {
        if let Some(mailbox) = self.lock().get_mut(key) {
            mailbox.pending = mailbox.pending.saturating_sub(1);
            post(mailbox, message);
        }
    }

    /// The next step of client `key`'s stream. A client with no mailbox has nothing
    /// coming: its stream closes at once.
    pub(crate) fn next(&self, key: &str) -> Next {
        let mut mailboxes = self.lock();
        let Some(mailbox) = mailboxes.get_mut(key) else {
            return Next::Close;
        };
        if let Some(message) = mailbox.messages.pop_front() {
            mailbox.touched = Some(Instant::now());
            if message["msg"] == "process_completed" {
                mailbox.undelivered = mailbox.undelivered.saturating_sub(1);
            }
            return Next::Send(message);
        }
        if mailbox.pending == 0 {
            mailboxes.remove(key);
            return Next::Close;
        }
        Next::Wait(mailbox.arrived.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

fn post(mailbox: &mut Mailbox, message: Value) {
    mailbox.messages.push_back(message);
    mailbox.touched = Some(Instant::now());
    mailbox.arrived.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(next: Next) -> Option<String> {
        match next {
            Next::Send(message) => Some(message["msg"].as_str().unwrap_or_default().to_owned()),
            Next::Wait(_) => Some("wait".into()),
            Next::Close => None,
        }
    }

    #[test]
    fn a_stream_closes_once_everything_is_delivered_and_done() {
        let queue = Queue::new(4);
        queue.join("client-1", "e1").expect("room");
        assert_eq!(msg(queue.next("client-1")).as_deref(), Some("estimation"));
        assert_eq!(msg(queue.next("client-1")).as_deref(), Some("wait"));
        queue.complete("client-1", json!({"msg": "process_completed"}));
        assert_eq!(
            msg(queue.next("client-1")).as_deref(),
            Some("process_completed")
        );
        assert_eq!(msg(queue.next("client-1")), None);
        assert_eq!(queue.len(), 0, "a closed mailbox is dropped");
    }

    #[test]
    fn mailboxes_and_events_in_flight_are_bounded() {
        let queue = Queue::new(2);
        queue.join("a-client", "e1").expect("room");
        queue.join("b-client", "e2").expect("room");
        assert!(matches!(
            queue.join("c-client", "e3"),
            Err(ApiError::AtCapacity)
        ));
        // One that is done and delivered makes room.
        queue.complete("a-client", json!({"msg": "process_completed"}));
        while msg(queue.next("a-client")).is_some() {}
        queue.join("c-client", "e3").expect("room again");
        for n in 1..MAX_PENDING {
            queue
                .join("b-client", &format!("more{n}"))
                .expect("below the limit");
        }
        assert!(matches!(
            queue.join("b-client", "over"),
            Err(ApiError::LimitExceeded(_))
        ));
    }

    /// A client that joins without end and never reads its stream is refused once
    /// [`MAX_PENDING`] events wait, although each is done: done is not delivered.
    #[test]
    fn undelivered_messages_are_bounded_too() {
        let queue = Queue::new(4);
        for n in 0..MAX_PENDING {
            queue
                .join("reads-never", &format!("e{n}"))
                .expect("below the limit");
            queue.complete("reads-never", json!({"msg": "process_completed"}));
        }
        assert!(matches!(
            queue.join("reads-never", "over"),
            Err(ApiError::LimitExceeded(_))
        ));
        // Reading makes room again.
        while msg(queue.next("reads-never")).is_some() {}
        queue
            .join("reads-never", "again")
            .expect("room after reading");
    }
}
