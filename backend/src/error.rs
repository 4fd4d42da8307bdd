//! The backend's error enum and its one `IntoResponse`: every failed request gets a
//! JSON [`ErrorBody`] with a machine-readable kind and a sentence for a person.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keepsake_shared::error::{ErrorBody, ErrorKind};

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
        "the session's state would take {size} bytes; the limit is {limit}; nothing was changed"
    )]
    StateTooLarge { size: usize, limit: usize },
    #[error("the event handler failed: {0}")]
    HandlerFailed(String),
    #[error("the event handler did not finish within {0:?}")]
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
            ApiError::LimitExceeded(_) => ErrorKind::LimitExceeded,
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
        (status, axum::Json(self.body())).into_response()
    }
}

/// A mistake in an app definition, found by [`crate::Blocks::build`] at start-up.
#[derive(Debug, thiserror::Error)]
#[error("invalid app {app:?}: {message}")]
pub struct BuildError {
    pub app: String,
    pub message: String,
}
