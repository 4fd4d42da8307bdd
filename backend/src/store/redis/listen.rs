//! The events channel: every instance subscribes to `{namespace}:{app}:events`, on
//! which the commit script announces each global change and `end_session` each
//! ended session. Reconnects by itself (with backoff) and then reports
//! [`StoreEvent::Resubscribed`], since changes made meanwhile were not heard.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::RedisStore;
use keepsake_shared::{ListenerId, SessionId};

use crate::store::{StoreError, StoreEvent};

#[derive(Deserialize)]
#[serde(untagged)]
enum NoticeRecord {
    Global {
        global: u32,
        value: String,
    },
    Ended {
        ended: String,
    },
    Stop {
        stop: String,
        listeners: Vec<u32>,
        from: u64,
    },
}

impl RedisStore {
    /// Listens until `shutdown`, reconnecting whenever the connection drops.
    pub(crate) async fn listen(self: Arc<Self>, shutdown: CancellationToken) {
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
                    if self.events.send(StoreEvent::Resubscribed).is_err() {
                        return;
                    }
                    let mut messages = pubsub.into_on_message();
                    loop {
                        let message = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = messages.next() => message,
                        };
                        let Some(message) = message else { break };
                        if let Ok(payload) = message.get_payload::<String>()
                            && !self.heard(&payload)
                        {
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

    /// Asks the other instances to stop the streams of `listeners` in `session`.
    pub(crate) async fn announce_stop(
        &self,
        session: &SessionId,
        listeners: &[ListenerId],
    ) -> Result<(), StoreError> {
        let notice = serde_json::json!({
            "stop": session.to_string(),
            "listeners": listeners.iter().map(|l| l.0).collect::<Vec<_>>(),
            "from": self.instance,
        });
        let mut connection = self.connection();
        redis::cmd("PUBLISH")
            .arg(self.key("events"))
            .arg(notice.to_string())
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// Handles one notice; false once the engine is gone.
    fn heard(&self, payload: &str) -> bool {
        match serde_json::from_str::<NoticeRecord>(payload) {
            Ok(NoticeRecord::Global { global, value }) => {
                let value = self.stored_global(global, Some(value));
                self.events
                    .send(StoreEvent::GlobalChanged {
                        index: global,
                        value,
                    })
                    .is_ok()
            }
            Ok(NoticeRecord::Ended { ended }) => {
                // Whichever instance ended it reported the values; here only this
                // process's handle goes (and with it the session's open streams).
                if let Ok(id) = ended.parse() {
                    self.forget(&id);
                }
                true
            }
            Ok(NoticeRecord::Stop {
                stop,
                listeners,
                from,
            }) => {
                if from == self.instance {
                    // Stopped here already.
                    return true;
                }
                let Ok(id) = stop.parse() else { return true };
                let listeners = listeners.into_iter().map(ListenerId).collect();
                self.events
                    .send(StoreEvent::StopStreams { id, listeners })
                    .is_ok()
            }
            Err(error) => {
                tracing::warn!(%error, "unreadable notice on the events channel");
                true
            }
        }
    }
}
