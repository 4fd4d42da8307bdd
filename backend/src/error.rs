//! The backend's error enum and its one `IntoResponse`: every failed request gets a
//! JSON [`ErrorBody`] with a machine-readable kind and a sentence for a person.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keepsake_shared::error::{ErrorBody, ErrorKind};

use crate::store::StoreError;

/// Why an API request failed. Messages never carry secrets, session values or full ids.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request could not be read: not JSON, wrong content type, wrong shape, or
    /// an unknown API path. Carries what was wrong. 400.
    #[error("{0}")]
    BadRequest(String),
    /// No app with this id (the requested one, cut to 64 characters) is mounted. 404.
    #[error("no app named {0:?} is mounted on this server")]
    UnknownApp(String),
    /// The session id is malformed, was never issued, or its session expired or was
    /// evicted; the client should start a new session. 404.
    #[error(
        "unknown session: it was never issued by this server, or it expired or was evicted; start a new session"
    )]
    UnknownSession,
    /// The event names a listener the app does not have (the id sent). 404.
    #[error("this app has no event listener with id {0}")]
    UnknownListener(u32),
    /// The event names a listener of a rendered region's component that the region,
    /// rendered from the session's current state, no longer has (its item was
    /// removed or changed meanwhile); nothing was run or written. 404.
    #[error(
        "this part of the page has changed: region {region} no longer has that listener for the component keyed {key:?} (was its item removed?); nothing was done"
    )]
    RenderedListenerGone {
        /// The region the event named.
        region: u32,
        /// The component key it named, cut to 64 characters (a client chooses it).
        key: String,
    },
    /// The event does not fit the listener: the wrong number of inputs, a value of
    /// the wrong type or not among the choices, a `held` entry that is not a
    /// browser state, or a client asking for an unload listener. Carries which and
    /// why. 400.
    #[error("{0}")]
    InvalidInput(String),
    /// The request body is larger than [`crate::Settings::max_body_bytes`]. 413.
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A rate or count limit was hit: a session's events per second, or open
    /// streams (server-wide or per session). Carries which. 429.
    #[error("{0}")]
    LimitExceeded(String),
    /// The client's address (its /64 for IPv6) started more sessions this minute
    /// than [`crate::Settings::max_session_starts_per_minute`]. Answered as
    /// `limit_exceeded`, 429, with a `Retry-After` header.
    #[error(
        "this address started too many sessions; try again in {} s",
        retry_after.as_secs().max(1)
    )]
    TooManySessionStarts {
        /// How long until the address may start another session.
        retry_after: Duration,
    },
    /// Every session the server may keep ([`crate::Settings::session_capacity`]) has
    /// an open page, so none can be evicted for a new one. 503, with a `Retry-After`
    /// header.
    #[error(
        "every session this server keeps has an open page, so no new session can start without evicting one; try again later"
    )]
    AtCapacity,
    /// The event's writes would make the session's states larger than
    /// [`crate::Settings::max_state_bytes`] (their JSON encoding); nothing was
    /// written. 413.
    #[error(
        "the session's state would take {size} bytes; the limit is {limit}; nothing was changed"
    )]
    StateTooLarge {
        /// The size the states would have had, in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The handler returned an error: its message is carried, and is the whole
    /// message the user sees (Gradio's `gr.Error`), such as a validation message;
    /// nothing was changed. 422: the app working as written, not a fault.
    #[error("{0}")]
    HandlerError(String),
    /// The handler panicked, did not run, or a value it returned could not be
    /// encoded; nothing was changed. 500.
    #[error("{0}")]
    HandlerFailed(String),
    /// The event did not finish within this time ([`crate::Settings::event_timeout`],
    /// or, with Redis, the time it waited for another instance to release the
    /// session); nothing was changed. 504.
    #[error("the event did not finish within {0:?}; nothing was changed")]
    Timeout(Duration),
    /// A streaming handler yielded no item for this long
    /// ([`crate::Settings::event_timeout`]); nothing was changed. 504.
    #[error("the handler's stream yielded nothing for {0:?}; nothing was changed")]
    StreamStalled(Duration),
    /// A streaming handler's reply ran longer than this
    /// ([`crate::Settings::stream_timeout`]); nothing was changed. 504.
    #[error("the handler's stream ran longer than {0:?}; nothing was changed")]
    StreamTooLong(Duration),
    /// The store (Redis) could not be reached or failed; carries its error.
    /// Nothing was changed. 503.
    #[error("the state store is unavailable ({0}); nothing was changed; try again")]
    StoreUnavailable(String),
    /// Another instance took over the session while the event ran (the event
    /// outlived its lease in the Redis store); none of its values were written. 409.
    #[error(
        "the session's lease ran out while the event ran and another instance took it over; none of the session's values were written"
    )]
    LeaseLost,
    /// A listener that stops this one (`cancels`) stopped its stream before it
    /// yielded anything to keep, or the listener keeps nothing when stopped; nothing
    /// was written. 409.
    #[error("the reply was stopped; nothing was changed")]
    Stopped,
    /// The streamed reply a client came back for is not known: it never was, or it
    /// ended longer ago than [`crate::Settings::resume_window`]. 404.
    #[error(
        "this reply is no longer kept for resuming (it ended more than the resume window ago, or never ran here)"
    )]
    UnknownReply,
    /// The lines a client asked for are no longer kept: a reply keeps its last
    /// lines up to a budget (16 MiB), and the client fell further behind. 404, as
    /// `unknown_reply`.
    #[error(
        "this reply's lines before line {kept_from} are no longer kept (a reply keeps its last 16 MiB for resuming); its result lands all the same"
    )]
    ReplyTooFarBehind {
        /// The first line kept (counted from one).
        kept_from: u64,
    },
    /// A bug on the server (an invariant did not hold); carries what. 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// `UnknownApp` for the app a request named, cut to 64 characters (a client
    /// chooses it).
    pub(crate) fn unknown_app(requested: &str) -> ApiError {
        ApiError::UnknownApp(requested.chars().take(64).collect())
    }

    /// Its machine-readable kind, as the error body carries it; it sets the HTTP
    /// status ([`ErrorKind::http_status`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::BadRequest(_) => ErrorKind::BadRequest,
            ApiError::UnknownApp(_) => ErrorKind::UnknownApp,
            ApiError::UnknownSession => ErrorKind::UnknownSession,
            ApiError::UnknownListener(_) | ApiError::RenderedListenerGone { .. } => {
                ErrorKind::UnknownListener
            }
            ApiError::InvalidInput(_) => ErrorKind::InvalidInput,
            ApiError::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            ApiError::LimitExceeded(_) | ApiError::TooManySessionStarts { .. } => {
                ErrorKind::LimitExceeded
            }
            ApiError::AtCapacity => ErrorKind::AtCapacity,
            ApiError::StateTooLarge { .. } => ErrorKind::StateTooLarge,
            ApiError::HandlerError(_) => ErrorKind::HandlerError,
            ApiError::HandlerFailed(_) => ErrorKind::HandlerFailed,
            ApiError::Timeout(_) | ApiError::StreamStalled(_) | ApiError::StreamTooLong(_) => {
                ErrorKind::Timeout
            }
            ApiError::StoreUnavailable(_) => ErrorKind::StoreUnavailable,
            ApiError::LeaseLost => ErrorKind::LeaseLost,
            ApiError::Stopped => ErrorKind::Stopped,
            ApiError::UnknownReply | ApiError::ReplyTooFarBehind { .. } => ErrorKind::UnknownReply,
            ApiError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// Counts the error (`keepsake_errors_total`) and logs it, a server's fault as a
    /// warning, a refusal at debug level; returns its HTTP status. Every failure a
    /// client is told of passes here once: as an answer, or as a streamed reply's
    /// last line (whose status went out before it).
    pub(crate) fn record(&self) -> StatusCode {
        let kind = self.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        metrics::counter!("keepsake_errors_total", "kind" => kind.as_str()).increment(1);
        if status.is_server_error() {
            tracing::warn!(error = %self, kind = kind.as_str(), "request failed");
        } else {
            tracing::debug!(error = %self, kind = kind.as_str(), "request rejected");
        }
        status
    }

    /// The JSON body a failed request answers with: the kind and this error's
    /// message.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.kind(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.record();
        let retry_after = match &self {
            ApiError::TooManySessionStarts { retry_after } => Some(retry_after.as_secs().max(1)),
            ApiError::AtCapacity => Some(AT_CAPACITY_RETRY_SECS),
            _ => None,
        };
        let mut response = (status, axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// When to try again after [`ApiError::AtCapacity`]: pages close and free their
/// sessions on their own schedule, so this is a polite guess.
const AT_CAPACITY_RETRY_SECS: u64 = 30;

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(detail) => ApiError::StoreUnavailable(detail),
            StoreError::UnknownSession => ApiError::UnknownSession,
            StoreError::LeaseLost => ApiError::LeaseLost,
            StoreError::AtCapacity => ApiError::AtCapacity,
            StoreError::Busy(waited) => ApiError::Timeout(waited),
            StoreError::Encode(detail) => ApiError::HandlerFailed(format!(
                "a value could not be encoded for the store: {detail}; nothing was changed"
            )),
        }
    }
}

/// A mistake in an app definition, found by [`crate::Blocks::build`] at start-up.
#[derive(Debug, thiserror::Error)]
#[error("invalid app {app:?}: {message}")]
pub struct BuildError {
    /// The id of the app at fault.
    pub app: String,
    /// What is wrong with it, for a person.
    pub message: String,
}

/// Why a [`crate::Server`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An app's definition is wrong (or two apps share an id).
    #[error(transparent)]
    App(#[from] BuildError),
    /// A setting is out of range.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The store could not be set up (e.g. an invalid Redis URL).
    #[error("cannot set up the store for app {app:?}: {message}")]
    Store {
        /// The app whose store failed.
        app: String,
        /// Why, for a person.
        message: String,
    },
}
