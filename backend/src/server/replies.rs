//! Streamed replies that outlive their connection: a dropped connection loses
//! nothing.
//!
//! A streamed event runs as a task of its own, not as the body of the request that
//! started it. Each line of its answer ([`super::reply`]) is kept in order, in this
//! process and, with Redis, in the store (`store/redis/replies.rs`), and the request's
//! body only reads them. A page whose connection drops comes back with the reply's id
//! and the number of lines it holds whole, and reads from there: together, each line
//! exactly once, in order, whichever instance it reaches. A page that never comes
//! back lets the reply finish and land as any event does (Stop still stops it, as it
//! stops any stream of its session), unless its listener stops when abandoned:
//! then, once nobody has read it for the window (here, or through another instance),
//! it is stopped as a Stop stops it.
//!
//! A reply is kept while it runs and `--resume-window` after it ended, then
//! forgotten. Its lines are what was sent, which the changes-not-copies rule keeps
//! to about the size of the reply itself. On shutdown ([`Replies::finish`]) running
//! replies finish and land before the process ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{Stream, StreamExt};
use keepsake_shared::event::StreamedEvent;
use keepsake_shared::{AppId, ListenerId, ReplyId, SessionId};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::reply::Answer;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::store::StoreError;

/// How often a client resuming a reply that runs on another instance looks for its
/// new lines (Redis only: a blocking read would hold the shared connection).
const ELSEWHERE_POLL: Duration = Duration::from_millis(50);

/// The most bytes of lines a reply keeps for resuming: past it, its oldest lines are
/// forgotten, and a client further behind than that is told so
/// ([`ApiError::ReplyTooFarBehind`]; the reply itself runs on and lands). Lines are
/// changes, so a chat reply's are about its own size; this bounds a handler that
/// yields large values that do not grow by appending.
const KEPT_BYTES: usize = 16 * 1024 * 1024;

/// The replies of this process: running, or ended less than the window ago.
pub(crate) struct Replies {
    kept: Mutex<HashMap<ReplyId, Arc<Reply>>>,
    /// The running replies' tasks, which shutdown waits for.
    running: TaskTracker,
    window: Duration,
    /// How long the store keeps a reply's copy after its last line: the longest a
    /// running reply may be silent (`--event-timeout`), then the window. A dead
    /// instance's replies outlive it by no more than that.
    keep: Duration,
    shutdown: CancellationToken,
}

/// One reply: its lines so far, and whether it has ended.
pub(crate) struct Reply {
    app: AppId,
    session: SessionId,
    lines: Mutex<Kept>,
    progress: watch::Sender<Progress>,
}

/// A reply's lines kept for resuming: the last ones, up to [`KEPT_BYTES`].
#[derive(Default)]
struct Kept {
    /// How many of the first lines were forgotten.
    dropped: usize,
    lines: std::collections::VecDeque<Bytes>,
    bytes: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    lines: usize,
    ended: bool,
}

/// Ends a reply for its readers and forgets it after the window, when its task
/// ends, however it ends.
struct Ending {
    replies: Arc<Replies>,
    reply: Arc<Reply>,
    id: ReplyId,
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.reply.end();
        let (replies, id) = (self.replies.clone(), self.id);
        // In a task of its own: shutdown waits for running replies, not for windows.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(replies.window) => {}
                    _ = replies.shutdown.cancelled() => {}
                }
                replies.kept().remove(&id);
            });
        } else {
            replies.kept().remove(&id);
        }
    }
}

/// What a reply's task runs: whose reply, and the listener to stop when nobody
/// reads it (if its listener says so).
struct Driven {
    engine: Arc<Engine>,
    session: SessionId,
    id: ReplyId,
    abandoned: Option<ListenerId>,
}

/// A reply as its first reader gets it: its id and its lines.
pub(crate) struct Streamed<S> {
    pub(crate) id: ReplyId,
    pub(crate) lines: S,
}

impl Replies {
    pub(crate) fn new(settings: &crate::Settings, shutdown: CancellationToken) -> Self {
        Replies {
            kept: Mutex::new(HashMap::new()),
            running: TaskTracker::new(),
            window: settings.resume_window,
            keep: settings.event_timeout + settings.resume_window,
            shutdown,
        }
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<ReplyId, Arc<Reply>>> {
        // Each step under this lock is one insert, get or remove: a panic elsewhere
        // leaves the map whole.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `answer` as a task whose lines are kept for resuming, and gives its
    /// lines from the first. An error before the first line is returned as such
    /// (the caller answers it with its status) and nothing is kept.
    pub(crate) async fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        session: SessionId,
        answer: impl Stream<Item = Answer> + Send + 'static,
        abandoned: Option<ListenerId>,
    ) -> Result<Streamed<impl Stream<Item = Bytes> + Send + 'static>, ApiError> {
        let id = ReplyId(rand::random::<u64>() >> 11);
        let (first, first_read) = oneshot::channel();
        let replies = self.clone();
        let reply = Driven {
            engine,
            session,
            id,
            abandoned,
        };
        self.running.spawn(replies.drive(reply, answer, first));
        let reply = first_read
            .await
            .map_err(|_| ApiError::Internal("a reply ended before its first line".into()))??;
        Ok(Streamed {
            id,
            lines: reply.read(0),
        })
    }

    /// The task of one reply: keeps each line of `answer` as it comes, here and in
    /// the store, then keeps the reply for the window. A reply of a listener that
    /// stops when abandoned is stopped once nobody has read it for the window.
    async fn drive(
        self: Arc<Self>,
        driven: Driven,
        answer: impl Stream<Item = Answer> + Send + 'static,
        first: oneshot::Sender<Result<Arc<Reply>, ApiError>>,
    ) {
        let Driven {
            engine,
            session,
            id,
            mut abandoned,
        } = driven;
        let mut answer = std::pin::pin!(answer);
        // Running, the store keeps the reply past its longest silence (and `looks`
        // renews that); ended, for the window.
        let keep = |line: &Bytes| {
            if is_last(line) {
                self.window
            } else {
                self.keep
            }
        };
        let (reply, mut elsewhere) = match answer.next().await {
            Some(Answer::Done(Err(error))) => {
                let _ = first.send(Err(error));
                return;
            }
            None => return,
            Some(message) => {
                let reply = Arc::new(Reply::new(engine.app.config.id.clone(), session));
                let line = line(message);
                reply.stage(line.clone());
                // In the store before any reader sees it: a client that read it here
                // and resumes on another instance finds it there.
                let elsewhere =
                    keep_elsewhere(&engine, &session, id, (1, &line), None, keep(&line)).await;
                reply.publish();
                self.kept().insert(id, reply.clone());
                let _ = first.send(Ok(reply.clone()));
                (reply, elsewhere)
            }
        };
        // However this task ends (a panic in the engine too), the reply ends for its
        // readers and is forgotten after the window.
        let _ending = Ending {
            replies: self.clone(),
            reply: reply.clone(),
            id,
        };
        let mut number = 1;
        let mut looks = tokio::time::interval(self.window / 4);
        let mut unread_since = None;
        loop {
            let message = tokio::select! {
                message = answer.next() => message,
                _ = looks.tick() => {
                    if elsewhere {
                        // A running reply may be quiet for long (the listeners it
                        // sets off run after its last item): its copy stays.
                        elsewhere = renew_elsewhere(&engine, &session, id, self.keep).await;
                    }
                    if let Some(listener) = abandoned
                        && self.abandoned(&engine, &reply, id, &mut unread_since).await
                    {
                        engine.stop_here(&session, listener);
                        abandoned = None;
                    }
                    continue;
                }
            };
            let Some(message) = message else { break };
            let line = line(message);
            let dropped = reply.stage(line.clone());
            number += 1;
            if elsewhere {
                let (line, keep) = ((number, &line), keep(&line));
                elsewhere = keep_elsewhere(&engine, &session, id, line, dropped, keep).await;
            }
            reply.publish();
        }
    }

    /// Whether nobody has read `reply` for the window: no reader here, none through
    /// another instance, since `unread_since`.
    async fn abandoned(
        &self,
        engine: &Engine,
        reply: &Reply,
        id: ReplyId,
        unread_since: &mut Option<tokio::time::Instant>,
    ) -> bool {
        let read_here = reply.progress.receiver_count() > 0;
        let read = read_here
            || engine
                .store
                .reply_read_elsewhere(&reply.session, id)
                .await
                .unwrap_or(true);
        if read {
            *unread_since = None;
            return false;
        }
        let since = *unread_since.get_or_insert_with(tokio::time::Instant::now);
        since.elapsed() >= self.window
    }

    /// The lines of reply `id` of `session` after the first `after`, then the rest as
    /// they come: from this process when it runs here, else from the store.
    pub(crate) async fn resume(
        &self,
        engine: &Arc<Engine>,
        session: SessionId,
        id: ReplyId,
        after: u64,
    ) -> Result<impl Stream<Item = Bytes> + Send + 'static, ApiError> {
        let here = self.kept().get(&id).cloned();
        if let Some(reply) = here
            && reply.session == session
            && reply.app == engine.app.config.id
        {
            let after = usize::try_from(after).unwrap_or(usize::MAX);
            let held = reply.progress.borrow().lines;
            if after > held {
                return Err(too_many(after, held));
            }
            let dropped = reply.lines().dropped;
            if after < dropped {
                return Err(ApiError::ReplyTooFarBehind {
                    kept_from: dropped as u64 + 1,
                });
            }
            return Ok(reply.read(after).left_stream());
        }
        let Some((lines, (first, last))) = engine.store.reply_lines(&session, id, after).await?
        else {
            return Err(ApiError::UnknownReply);
        };
        if after > last {
            return Err(too_many(after, last));
        }
        if after + 1 < first {
            return Err(ApiError::ReplyTooFarBehind { kept_from: first });
        }
        Ok(read_elsewhere(
            engine.clone(),
            (session, id),
            after,
            lines,
            (self.window, self.shutdown.clone()),
        )
        .right_stream())
    }

    /// Waits for the running replies to finish and land (on shutdown).
    pub(crate) async fn finish(&self) {
        self.running.close();
        self.running.wait().await;
    }
}

fn too_many(after: impl std::fmt::Display, held: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!(
        "the reply has {held} lines so far, not the {after} the request says it holds"
    ))
}

/// Keeps a line in the store for the other instances; false once that failed.
async fn keep_elsewhere(
    engine: &Engine,
    session: &SessionId,
    id: ReplyId,
    line: (u64, &Bytes),
    dropped: Option<usize>,
    keep: Duration,
) -> bool {
    let dropped = dropped.map(|dropped| dropped as u64);
    let kept = engine
        .store
        .keep_reply_line(session, id, line, dropped, keep)
        .await;
    still_elsewhere(engine, session, id, kept).await
}

/// Keeps a running reply's copy in the store for `keep` more; false once that
/// failed.
async fn renew_elsewhere(
    engine: &Engine,
    session: &SessionId,
    id: ReplyId,
    keep: Duration,
) -> bool {
    let renewed = engine.store.renew_reply(session, id, keep).await;
    still_elsewhere(engine, session, id, renewed).await
}

/// Whether the store still holds a whole copy of the reply after `outcome`: when a
/// line or a renewal failed, the copy is forgotten (best effort), so that a resume
/// on another instance never reads one with a line missing, and no more is kept.
async fn still_elsewhere(
    engine: &Engine,
    session: &SessionId,
    id: ReplyId,
    outcome: Result<(), StoreError>,
) -> bool {
    let Err(error) = outcome else {
        return true;
    };
    tracing::warn!(%error, session = session.short(), "a streamed reply cannot be resumed on other instances: the store did not keep it");
    let _ = engine.store.forget_reply(session, id).await;
    false
}

impl Reply {
    fn new(app: AppId, session: SessionId) -> Self {
        Reply {
            app,
            session,
            lines: Mutex::new(Kept::default()),
            progress: watch::Sender::new(Progress::default()),
        }
    }

    fn lines(&self) -> MutexGuard<'_, Kept> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Line `index` (from 0), unless it was forgotten.
    fn line(&self, index: usize) -> Option<Bytes> {
        let kept = self.lines();
        let index = index.checked_sub(kept.dropped)?;
        kept.lines.get(index).cloned()
    }

    /// Keeps `line`, forgetting the oldest past [`KEPT_BYTES`] (never the newest),
    /// unseen by readers until [`Reply::publish`]: how many are forgotten now, if
    /// that changed.
    fn stage(&self, line: Bytes) -> Option<usize> {
        let mut kept = self.lines();
        kept.bytes += line.len();
        kept.lines.push_back(line);
        let before = kept.dropped;
        while kept.bytes > KEPT_BYTES && kept.lines.len() > 1 {
            if let Some(oldest) = kept.lines.pop_front() {
                kept.bytes -= oldest.len();
                kept.dropped += 1;
            }
        }
        Some(kept.dropped).filter(|dropped| *dropped != before)
    }

    /// Shows readers every line staged so far.
    fn publish(&self) {
        let lines = {
            let kept = self.lines();
            kept.dropped + kept.lines.len()
        };
        self.progress.send_modify(|progress| progress.lines = lines);
    }

    fn end(&self) {
        self.progress.send_modify(|progress| progress.ended = true);
    }

    /// The lines after the first `after`, then each as it comes, until the last.
    fn read(self: &Arc<Self>, after: usize) -> impl Stream<Item = Bytes> + Send + 'static + use<> {
        let progress = self.progress.subscribe();
        futures::stream::unfold(
            (self.clone(), progress, after),
            |(reply, mut progress, next)| async move {
                loop {
                    let now = *progress.borrow_and_update();
                    if next < now.lines {
                        // A line forgotten before this reader took it (it fell a
                        // budget behind): the body ends short, and its resume is told.
                        let line = reply.line(next)?;
                        return Some((line, (reply, progress, next + 1)));
                    }
                    if now.ended || progress.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
    }
}

/// A reply running on another instance, read from the store: `first` (the lines
/// after `after` it held when asked), then what comes, until the last line.
fn read_elsewhere(
    engine: Arc<Engine>,
    (session, id): (SessionId, ReplyId),
    after: u64,
    first: Vec<Bytes>,
    (window, shutdown): (Duration, CancellationToken),
) -> impl Stream<Item = Bytes> + Send + 'static {
    let read = after + first.len() as u64;
    let ended = first.last().is_some_and(is_last);
    futures::stream::iter(first).chain(futures::stream::unfold(
        (engine, read, ended),
        move |(engine, read, ended)| {
            let shutdown = shutdown.clone();
            async move {
                if ended {
                    return None;
                }
                loop {
                    // On shutdown the body ends short: the client resumes elsewhere.
                    tokio::select! {
                        _ = tokio::time::sleep(ELSEWHERE_POLL) => {}
                        _ = shutdown.cancelled() => return None,
                    }
                    // Read here: the instance running it must not take it for abandoned.
                    let _ = engine.store.note_reply_read(&session, id, window).await;
                    // Gone (run out, or forgotten after a failed write) or unreachable:
                    // the body ends short, and the client asks again or gives up.
                    let (lines, (first, _)) = engine
                        .store
                        .reply_lines(&session, id, read)
                        .await
                        .ok()
                        .flatten()?;
                    if read + 1 < first {
                        // Fell a budget behind: as above.
                        return None;
                    }
                    if lines.is_empty() {
                        continue;
                    }
                    let read = read + lines.len() as u64;
                    let ended = lines.last().is_some_and(is_last);
                    let batch = lines.into_iter().fold(Vec::new(), |mut batch, line| {
                        batch.extend_from_slice(&line);
                        batch
                    });
                    return Some((Bytes::from(batch), (engine, read, ended)));
                }
            }
        },
    ))
}

/// Whether a line is a reply's last (its `done` or `failed`), as [`line`] writes it.
fn is_last(line: &Bytes) -> bool {
    line.starts_with(b"{\"done\"") || line.starts_with(b"{\"failed\"")
}

/// One message as a line of JSON. A failure is counted and logged here, as an
/// answer's is, since its status has gone out before it.
fn line(message: Answer) -> Bytes {
    let message = match message {
        Answer::Partial(partial) => StreamedEvent::Partial(partial),
        Answer::Done(Ok(result)) => StreamedEvent::Done(result),
        Answer::Done(Err(error)) => {
            error.record();
            StreamedEvent::Failed(error.body())
        }
    };
    let mut line = serde_json::to_vec(&message).unwrap_or_else(|error| {
        // Every field is a plain JSON type; this cannot fail, but says so if it does.
        let body = ApiError::Internal(format!("an answer could not be written: {error}")).body();
        serde_json::to_vec(&StreamedEvent::Failed(body)).unwrap_or_default()
    });
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepsake_shared::event::{EventResult, PartialUpdate};

    #[test]
    fn the_last_line_is_known_by_its_start() {
        assert!(is_last(&line(Answer::Done(Ok(EventResult::default())))));
        assert!(is_last(&line(Answer::Done(Err(ApiError::Stopped)))));
        assert!(!is_last(&line(Answer::Partial(PartialUpdate::default()))));
    }
}
