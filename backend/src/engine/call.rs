//! Calling a handler: the one place where an app author's code runs for an event.
//! Panics, errors and time-outs become API errors, and nothing the handler did is
//! kept unless it returned outputs. A sync handler runs on tokio's blocking threads,
//! inside the time-out, unless it has proven quick ([`crate::app::inline`]).

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::streamed::PartialSink;
use crate::app::ListenerDef;
use crate::error::ApiError;
use crate::handler::{ErasedUpdate, HandlerCall};
use crate::value::AnyValue;

impl Engine {
    /// Calls a handler, turning panics, errors and time-outs into API errors. A sync
    /// handler runs on tokio's blocking threads, inside the time-out, unless it has
    /// proven quick ([`crate::app::inline`]).
    pub(super) async fn call(
        &self,
        listener: &ListenerDef,
        args: Vec<AnyValue>,
        partials: Option<&PartialSink>,
        stop: Option<&CancellationToken>,
    ) -> Result<Vec<ErasedUpdate>, ApiError> {
        let id = listener.config.id.0;
        let panicked = |payload: Box<dyn std::any::Any + Send>| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(listener = id, panic = %what, "event handler panicked");
            ApiError::HandlerFailed("the handler panicked; nothing was changed".into())
        };
        let call = match std::panic::catch_unwind(AssertUnwindSafe(|| (listener.handler)(args))) {
            Ok(Ok(call)) => call,
            // Only the erased handler's own check of its inputs fails here: a bug.
            Ok(Err(error)) => return Err(ApiError::HandlerFailed(error.0)),
            Err(payload) => return Err(panicked(payload)),
        };
        let timeout = self.limits.event_timeout;
        let outcome = match call {
            HandlerCall::Sync(run) => match listener.pace.try_inline() {
                Some(_inline) => {
                    let started = Instant::now();
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(run));
                    let took = outcome.is_ok().then(|| started.elapsed());
                    if listener.pace.ran_inline(took) {
                        tracing::warn!(
                            listener = id,
                            took = ?started.elapsed(),
                            "a sync handler blocked its worker; it runs on the blocking threads from now on"
                        );
                    }
                    Ok(outcome)
                }
                None => {
                    let pace = listener.pace.clone();
                    let blocking = tokio::task::spawn_blocking(move || {
                        let (outcome, quick) = crate::app::inline::measured(|| {
                            std::panic::catch_unwind(AssertUnwindSafe(run))
                        });
                        pace.ran_blocking(outcome.is_ok().then_some(quick));
                        outcome
                    });
                    match tokio::time::timeout(timeout, blocking).await {
                        Err(elapsed) => Err(elapsed),
                        Ok(Ok(outcome)) => Ok(outcome),
                        Ok(Err(error)) => {
                            return Err(ApiError::HandlerFailed(format!(
                                "the handler did not run: {error}"
                            )));
                        }
                    }
                }
            },
            HandlerCall::Async(future) => {
                tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await
            }
            HandlerCall::Stream(items) => {
                // Bounded by the stream's own limits (see `drive_stream`), not by
                // the time-out of one call.
                let drive = self.drive_stream(listener, items, partials, stop);
                return match AssertUnwindSafe(drive).catch_unwind().await {
                    Err(payload) => Err(panicked(payload)),
                    Ok(outcome) => outcome,
                };
            }
        };
        match outcome {
            Err(_) => Err(ApiError::Timeout(timeout)),
            Ok(Err(payload)) => Err(panicked(payload)),
            Ok(Ok(Err(error))) => Err(ApiError::HandlerError(error.0)),
            Ok(Ok(Ok(outputs))) => Ok(outputs),
        }
    }
}
