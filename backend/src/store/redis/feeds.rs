//! Page streams in Redis: `streams:{id}` counts a session's open pages on every
//! instance (with an expiry that heartbeats renew, so a crashed instance's pages do
//! not keep a session forever), and the first and last of them move the session into
//! and out of the `ATTACHED` band of the LRU order.

use keepsake_shared::SessionId;

use super::{RedisStore, millis};
use crate::session::Session;
use crate::store::{FeedOpened, StoreError};

impl RedisStore {
    pub(crate) async fn feed_opened(
        &self,
        session: &Session,
        limit: u32,
    ) -> Result<FeedOpened, StoreError> {
        let open: i64 = self
            .scripts
            .feed_open
            .arg(&self.prefix)
            .arg(session.id.as_str())
            .arg(limit)
            .arg(millis(self.keepalive))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match open {
            ..0 => FeedOpened::UnknownSession,
            0 => FeedOpened::Full,
            _ => {
                session
                    .streams
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                FeedOpened::Attached
            }
        })
    }

    /// A stream's heartbeat: keeps the session alive while its page is open, even if
    /// no event comes. False if the session is gone; true while Redis is away (the
    /// session is still there when it is back).
    pub(crate) async fn feed_alive(&self, id: &SessionId) -> bool {
        let alive: Result<i64, _> = self
            .scripts
            .feed_keepalive
            .arg(&self.prefix)
            .arg(id.as_str())
            .arg(millis(self.keepalive))
            .invoke_async(&mut self.connection())
            .await;
        match alive {
            Ok(alive) => alive == 1,
            Err(error) => {
                tracing::debug!(%error, "heartbeat could not reach the store");
                true
            }
        }
    }

    /// A stream ended; true if it was the session's last one on any instance.
    pub(crate) async fn feed_closed(&self, session: &Session) -> bool {
        session
            .streams
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        let last: Result<i64, _> = self
            .scripts
            .feed_close
            .arg(&self.prefix)
            .arg(session.id.as_str())
            .arg(millis(self.retention))
            .invoke_async(&mut self.connection())
            .await;
        match last {
            Ok(last) => last == 1,
            Err(error) => {
                tracing::warn!(session = session.id.short(), %error, "could not record a closed stream");
                false
            }
        }
    }
}
