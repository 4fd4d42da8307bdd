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
    #[error("{0}")]
    BadRequest(String),
    #[error("no app named {0:?} is mounted on this server")]
    UnknownApp(String),
    #[error(
        "unknown session: it was never issued by this server, or it expired or was evicted; start a new session"
    )]
    UnknownSession,
    #[error("this app has no event listener with id {0}")]
    UnknownDependency(u32),
    #[error("{0}")]
    InvalidInput(String),
    #[error("the request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    LimitExceeded(String),
    #[error(
        "this address started too many sessions; try again in {} s",
        retry_after.as_secs().max(1)
    )]
    TooManySessionStarts { retry_after: Duration },
    #[error(
        "every session this server keeps has an open page, so no new session can start without evicting one; try again later"
    )]
    AtCapacity,
    #[error(
        "the session's state would take {size} bytes; the limit is {limit}; nothing was changed"
    )]
    StateTooLarge { size: usize, limit: usize },
    #[error("the event handler failed: {0}")]
    HandlerFailed(String),
    #[error("the event did not finish within {0:?}; nothing was changed")]
    Timeout(Duration),
    #[error("the state store is unavailable ({0}); nothing was changed; try again")]
    StoreUnavailable(String),
    #[error(
        "the session's lease ran out while the event ran and another instance took it over; none of the session's values were written"
    )]
    LeaseLost,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::BadRequest(_) => ErrorKind::BadRequest,
            ApiError::UnknownApp(_) => ErrorKind::UnknownApp,
            ApiError::UnknownSession => ErrorKind::UnknownSession,
            ApiError::UnknownDependency(_) => ErrorKind::UnknownDependency,
            ApiError::InvalidInput(_) => ErrorKind::InvalidInput,
            ApiError::PayloadTooLarge { .. } => ErrorKind::PayloadTooLarge,
            ApiError::LimitExceeded(_) | ApiError::TooManySessionStarts { .. } => {
                ErrorKind::LimitExceeded
            }
            ApiError::AtCapacity => ErrorKind::AtCapacity,
            ApiError::StateTooLarge { .. } => ErrorKind::StateTooLarge,
            ApiError::HandlerFailed(_) => ErrorKind::HandlerFailed,
            ApiError::Timeout(_) => ErrorKind::Timeout,
            ApiError::StoreUnavailable(_) => ErrorKind::StoreUnavailable,
            ApiError::LeaseLost => ErrorKind::LeaseLost,
            ApiError::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.kind(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let status =
            StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        metrics::counter!("keepsake_errors_total", "kind" => kind.as_str()).increment(1);
        if status.is_server_error() {
            tracing::warn!(error = %self, kind = kind.as_str(), "request failed");
        } else {
            tracing::debug!(error = %self, kind = kind.as_str(), "request rejected");
        }
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
    pub app: String,
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
    Store { app: String, message: String },
}
