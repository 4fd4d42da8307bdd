//! A page attached to its session: the page's feed of [`FeedMessage`]s (attached,
//! pushes of bound globals, heartbeats, the end of its session), and the limits and
//! lifecycle of the attachment. The feed's lifetime is the page's presence: while
//! one is open the session neither expires nor is evicted, and when the last one of
//! a session closes, its unload listeners run. How the feed reaches the page (SSE)
//! is the HTTP adapter's (`http/feed.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keepsake_shared::SessionId;
use keepsake_shared::feed::FeedMessage;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::Server;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::session::Session;

/// How many messages may wait for a page that reads slowly.
const FEED_BUFFERED: usize = 64;

impl Server {
    /// Attaches a page to session `session` of `app`: the server-wide and the
    /// per-session limits of open feeds are checked, then a task feeds the page until
    /// it goes away (the receiver is dropped), the session ends or the server shuts
    /// down. Its last message is [`FeedMessage::SessionEnded`] if the session ended.
    pub(crate) async fn attach_page(
        &self,
        app: &str,
        session: &SessionId,
    ) -> Result<mpsc::Receiver<FeedMessage>, ApiError> {
        let engine = self.engine(app)?.clone();
        let session = engine.session(session).await?;
        let settings = self.settings();
        let total = &self.inner.open_feeds;
        if total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < settings.max_feeds).then_some(open + 1)
            })
            .is_err()
        {
            return Err(ApiError::LimitExceeded(
                "the server has as many open feeds (pages) as it allows; try again later".into(),
            ));
        }
        let attached = engine
            .feed_opened(&session, settings.max_feeds_per_session)
            .await;
        if !matches!(attached, Ok(true)) {
            // Give back the server-wide place taken above.
            total.fetch_sub(1, Ordering::AcqRel);
            attached?;
            return Err(ApiError::LimitExceeded(format!(
                "this session already has {} open feeds (pages), the most allowed",
                settings.max_feeds_per_session
            )));
        }
        let attachment = Attachment {
            engine,
            session,
            server_feeds: total.clone(),
        };
        let (sender, receiver) = mpsc::channel(FEED_BUFFERED);
        tokio::spawn(pump(
            attachment,
            sender,
            settings.heartbeat,
            self.inner.shutdown.clone(),
        ));
        Ok(receiver)
    }

    /// Feeds open on this server now.
    pub(crate) fn open_feeds(&self) -> usize {
        self.inner.open_feeds.load(Ordering::Relaxed)
    }
}

/// A page attached to a session. Dropping it detaches the page; the last one to go
/// fires the session's unload listeners.
struct Attachment {
    engine: Arc<Engine>,
    session: Arc<Session>,
    server_feeds: Arc<AtomicUsize>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.server_feeds.fetch_sub(1, Ordering::AcqRel);
        let engine = self.engine.clone();
        let session = self.session.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { engine.feed_closed(session).await });
        }
    }
}

/// Feeds one page until the page goes away, the session ends or the server shuts
/// down.
async fn pump(
    attachment: Attachment,
    sender: mpsc::Sender<FeedMessage>,
    heartbeat: Duration,
    shutdown: CancellationToken,
) {
    let engine = attachment.engine.clone();
    let session = attachment.session.clone();
    let mut pushes = engine.pushes.subscribe();
    let send = |message| sender.send(message);
    if send(FeedMessage::Attached).await.is_err() {
        return;
    }
    for update in engine.bound_values().await {
        if send(FeedMessage::Push { update }).await.is_err() {
            return;
        }
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        let alive = tokio::select! {
            _ = sender.closed() => false,
            _ = shutdown.cancelled() => false,
            _ = session.ended.cancelled() => {
                let _ = send(FeedMessage::SessionEnded).await;
                false
            }
            _ = ticker.tick() => {
                if engine.feed_alive(&session).await {
                    send(FeedMessage::Heartbeat).await.is_ok()
                } else {
                    let _ = send(FeedMessage::SessionEnded).await;
                    false
                }
            }
            push = pushes.recv() => match push {
                Ok(update) => send(FeedMessage::Push { update }).await.is_ok(),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: the latest values are all that matter.
                    let mut ok = true;
                    for update in engine.bound_values().await {
                        ok = ok && send(FeedMessage::Push { update }).await.is_ok();
                    }
                    ok
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
        if !alive {
            break;
        }
    }
    drop(attachment);
}
