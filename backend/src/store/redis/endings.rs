//! Endings in Redis: the sweep pops what is due (sessions past their retention,
//! states past their time-to-live) in batches, and what a script ended (the sweep,
//! or an eviction by `create.lua`) is reported to the engine with its values
//! decoded, once: only the instance whose script popped it hears of it.

use keepsake_shared::SessionId;
use serde::Deserialize;

use super::RedisStore;
use crate::session::EndReason;
use crate::store::StoreEvent;
use crate::value::DynValue;

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EndedRecord {
    Session {
        id: String,
        reason: String,
        // cjson encodes an empty table as `{}`, so this is always an object.
        values: std::collections::HashMap<String, String>,
    },
    State {
        id: String,
        state: u32,
        value: String,
    },
}

impl RedisStore {
    /// Pops everything that is due from the deadline index, in batches.
    pub(crate) async fn sweep(&self) {
        const BATCH: usize = 512;
        loop {
            let records: Result<Vec<String>, _> = self
                .scripts
                .sweep
                .arg(&self.prefix)
                .arg(BATCH)
                .arg(self.shape.state_count)
                .invoke_async(&mut self.connection())
                .await;
            match records {
                Ok(records) => {
                    let count = records.len();
                    self.report_ended(records);
                    if count < BATCH {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "sweep could not reach the store");
                    return;
                }
            }
        }
    }

    /// Tells the engine what a script ended, with the values decoded.
    pub(super) fn report_ended(&self, records: Vec<String>) {
        for record in records {
            let event = match serde_json::from_str::<EndedRecord>(&record) {
                Ok(EndedRecord::Session { id, reason, values }) => {
                    let Ok(id) = id.parse::<SessionId>() else {
                        continue;
                    };
                    StoreEvent::SessionEnded {
                        id,
                        session: self.forget(&id),
                        reason: if reason == "evicted" {
                            EndReason::Evicted
                        } else {
                            EndReason::Expired
                        },
                        values: Some(
                            values
                                .into_iter()
                                .filter_map(|(index, envelope)| {
                                    let index: u32 = index.parse().ok()?;
                                    Some((index, self.stored_state(index, &envelope)?))
                                })
                                .collect(),
                        ),
                    }
                }
                Ok(EndedRecord::State { id, state, value }) => {
                    let (Ok(id), Some(value)) = (id.parse(), self.stored_state(state, &value))
                    else {
                        continue;
                    };
                    StoreEvent::StateExpired {
                        id,
                        index: state,
                        value,
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "unreadable record from a script");
                    continue;
                }
            };
            let _ = self.events.send(event);
        }
    }

    fn stored_state(&self, index: u32, envelope: &str) -> Option<Box<dyn DynValue>> {
        let def = self.app.states.get(index as usize)?;
        Some(self.stored.read(&def.codec, envelope, "state")?.0)
    }
}
