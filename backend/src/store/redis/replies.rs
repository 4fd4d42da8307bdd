//! Streamed replies kept in Redis, so that a page whose connection dropped can take
//! the rest of its reply from any instance, not only the one running it.
//!
//! Key `reply:{session}:{reply}` (a Redis stream): the reply's lines, line `n`
//! (counted from one) under the entry id `0-n`, in field `l`. The instance running
//! the reply appends each line as it sends it; an instance resuming the reply for a
//! client reads the entries after the ones the client holds. A line is appended (and
//! older ones trimmed past the budget) in one transaction, before any reader of the
//! running instance sees it. While the reply runs, the key runs out the sum of
//! `--event-timeout` and `--resume-window` after its last line or renewal (renewed
//! every quarter window), so a dead instance's replies go too; after the last line,
//! `--resume-window` after it. Beside it,
//! `reply:{session}:{reply}:read` says a client reads the reply through another
//! instance (for a listener that stops replies nobody reads).

use std::time::Duration;

use bytes::Bytes;
use keepsake_shared::{ReplyId, SessionId};

use super::{RedisStore, millis};
use crate::store::StoreError;

/// The field each entry keeps its line in.
const LINE: &str = "l";

/// Stream entries as `XRANGE` answers them: id, then field-value pairs.
type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;

impl RedisStore {
    fn reply_key(&self, session: &SessionId, reply: ReplyId) -> String {
        self.key(&format!("reply:{session}:{reply}"))
    }

    /// Appends line `number` (from 1) of `reply`, and keeps the reply for `keep`;
    /// with `dropped`, forgets the lines before line `dropped + 1`, as the running
    /// instance did.
    pub(crate) async fn keep_reply_line(
        &self,
        session: &SessionId,
        reply: ReplyId,
        (number, line): (u64, &Bytes),
        dropped: Option<u64>,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let key = self.reply_key(session, reply);
        let mut connection = self.connection();
        // One transaction, the new line first: a reader never finds the copy empty
        // or with a line missing in between.
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("XADD")
            .arg(&key)
            .arg(format!("0-{number}"))
            .arg(LINE)
            .arg(line.as_ref())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(keep))
            .ignore();
        if let Some(dropped) = dropped {
            pipe.cmd("XTRIM")
                .arg(&key)
                .arg("MINID")
                .arg(format!("0-{}", dropped + 1))
                .ignore();
        }
        pipe.query_async::<()>(&mut connection).await?;
        Ok(())
    }

    /// Notes that a client reads `reply` through this instance, for `keep`: the
    /// instance running it, which sees only its own readers, does not take the reply
    /// for abandoned ([`RedisStore::reply_read_elsewhere`]).
    pub(crate) async fn note_reply_read(
        &self,
        session: &SessionId,
        reply: ReplyId,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        redis::cmd("SET")
            .arg(format!("{}:read", self.reply_key(session, reply)))
            .arg(1)
            .arg("PX")
            .arg(millis(keep))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// Whether a client read `reply` through another instance lately.
    pub(crate) async fn reply_read_elsewhere(
        &self,
        session: &SessionId,
        reply: ReplyId,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        let read: bool = redis::cmd("EXISTS")
            .arg(format!("{}:read", self.reply_key(session, reply)))
            .query_async(&mut connection)
            .await?;
        Ok(read)
    }

    /// Keeps `reply` for `keep` more.
    pub(crate) async fn renew_reply(
        &self,
        session: &SessionId,
        reply: ReplyId,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        redis::cmd("PEXPIRE")
            .arg(self.reply_key(session, reply))
            .arg(millis(keep))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// Forgets `reply` (a line could not be kept: a resume elsewhere must not find
    /// its lines with one missing).
    pub(crate) async fn forget_reply(
        &self,
        session: &SessionId,
        reply: ReplyId,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        redis::cmd("DEL")
            .arg(self.reply_key(session, reply))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    /// The lines of `reply` after the first `after`, and the numbers of its first
    /// and last lines kept; `None` when Redis holds no such reply.
    pub(crate) async fn reply_lines(
        &self,
        session: &SessionId,
        reply: ReplyId,
        after: u64,
    ) -> Result<Option<(Vec<Bytes>, (u64, u64))>, StoreError> {
        let key = self.reply_key(session, reply);
        let mut connection = self.connection();
        // One transaction: the first and last lines and those asked for, as of one
        // moment.
        let (first, last, entries): (Entries, Entries, Entries) = redis::pipe()
            .atomic()
            .cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .cmd("XRANGE")
            .arg(&key)
            .arg(format!("0-{}", after.saturating_add(1)))
            .arg("+")
            .query_async(&mut connection)
            .await?;
        let number = |entries: &Entries| {
            entries
                .first()
                .and_then(|(id, _)| id.strip_prefix("0-")?.parse::<u64>().ok())
        };
        let (Some(first), Some(last)) = (number(&first), number(&last)) else {
            // No such key: a kept reply has a line from the start.
            return Ok(None);
        };
        // Lines from the one asked for, with none missing, or the caller hears that
        // the first of them is gone.
        let first = match number(&entries) {
            Some(returned) if returned != after.saturating_add(1) => returned.max(first),
            _ => first,
        };
        let lines = entries
            .into_iter()
            .filter_map(|(_, fields)| {
                fields
                    .into_iter()
                    .find(|(field, _)| field == LINE)
                    .map(|(_, line)| Bytes::from(line))
            })
            .collect();
        Ok(Some((lines, (first, last))))
    }
}
