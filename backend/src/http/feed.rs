//! One page's Server-Sent-Events stream: attached, pushes of bound globals,
//! heartbeats, and the end of its session. The stream's lifetime is the page's
//! presence: while it is open the session neither expires nor is evicted, and when
//! the last one of a session closes, its unload listeners run.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, Sse};
use keepsake_shared::stream::{SSE_EVENT_NAME, ServerMessage};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::routes::parse_session;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::server::Server;
use crate::session::Session;

type SseStream = Sse<ReceiverStream<Result<Event, Infallible>>>;

pub(super) async fn stream(
    State(server): State<Server>,
    Path((app, session)): Path<(String, String)>,
) -> Result<SseStream, ApiError> {
    let engine = server.engine(&app)?.clone();
    let id = parse_session(&session)?;
    let session = engine.session(&id).await?;
    let settings = server.settings();
    let total = &server.inner.open_streams;
    if total
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
            (open < settings.max_streams).then_some(open + 1)
        })
        .is_err()
    {
        return Err(ApiError::LimitExceeded(
            "the server has as many open streams as it allows; try again later".into(),
        ));
    }
    let attached = engine
        .stream_opened(&session, settings.max_streams_per_session)
        .await;
    if !matches!(attached, Ok(true)) {
        // Give back the server-wide place taken above.
        total.fetch_sub(1, Ordering::AcqRel);
        attached?;
        return Err(ApiError::LimitExceeded(format!(
            "this session already has {} open streams, the most allowed",
            settings.max_streams_per_session
        )));
    }
    let attachment = Attachment {
        engine,
        session,
        server_streams: total.clone(),
    };
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(pump(
        attachment,
        sender,
        server.settings().heartbeat,
        server.inner.shutdown.clone(),
    ));
    Ok(Sse::new(ReceiverStream::new(receiver)))
}

/// A page attached to a session. Dropping it detaches the page; the last one to go
/// fires the session's unload listeners.
struct Attachment {
    engine: Arc<Engine>,
    session: Arc<Session>,
    server_streams: Arc<AtomicUsize>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.server_streams.fetch_sub(1, Ordering::AcqRel);
        let engine = self.engine.clone();
        let session = self.session.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { engine.stream_closed(session).await });
        }
    }
}

async fn send(sender: &mpsc::Sender<Result<Event, Infallible>>, message: &ServerMessage) -> bool {
    let event = match Event::default().event(SSE_EVENT_NAME).json_data(message) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "could not encode a stream message");
            return true;
        }
    };
    sender.send(Ok(event)).await.is_ok()
}

/// Feeds one page's stream until the page goes away, the session ends or the
/// server shuts down.
async fn pump(
    attachment: Attachment,
    sender: mpsc::Sender<Result<Event, Infallible>>,
    heartbeat: Duration,
    shutdown: CancellationToken,
) {
    let engine = attachment.engine.clone();
    let session = attachment.session.clone();
    let mut pushes = engine.pushes.subscribe();
    if !send(&sender, &ServerMessage::Attached).await {
        return;
    }
    for update in engine.bound_values().await {
        if !send(&sender, &ServerMessage::Push { update }).await {
            return;
        }
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    loop {
        let alive = tokio::select! {
            _ = sender.closed() => false,
            _ = shutdown.cancelled() => false,
            _ = session.ended.cancelled() => {
                send(&sender, &ServerMessage::SessionEnded).await;
                false
            }
            _ = ticker.tick() => {
                if engine.stream_alive(&session).await {
                    send(&sender, &ServerMessage::Heartbeat).await
                } else {
                    send(&sender, &ServerMessage::SessionEnded).await;
                    false
                }
            }
            push = pushes.recv() => match push {
                Ok(update) => send(&sender, &ServerMessage::Push { update }).await,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind: the latest values are all that matter.
                    let mut ok = true;
                    for update in engine.bound_values().await {
                        ok = ok && send(&sender, &ServerMessage::Push { update }).await;
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
