//! The error body every failed request returns, with a machine-readable kind.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Body of every 4xx/5xx answer from the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a program (`"unknown_session"`, ...).
    pub error: ErrorKind,
    /// A sentence for a person. Never contains secrets, session values or full ids.
    pub message: String,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error.as_str(), self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// What went wrong, so clients can react (e.g. start a new session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request could not be parsed (bad JSON, wrong content type, bad path).
    BadRequest,
    /// No app with that id is mounted.
    UnknownApp,
    /// The session id was never issued, or the session expired or was evicted.
    /// The client should start a new session.
    UnknownSession,
    /// The app has no listener with that id.
    UnknownListener,
    /// Wrong number of inputs, or a value of the wrong type.
    InvalidInput,
    /// The request body exceeds the configured limit.
    PayloadTooLarge,
    /// Too many events or streams; try again later.
    LimitExceeded,
    /// The event would make the session's state larger than the server allows.
    StateTooLarge,
    /// The event handler said no: its own message for the user (Gradio's `gr.Error`),
    /// such as a validation error; nothing was changed. A 4xx: the app working as
    /// written, not a fault.
    HandlerError,
    /// The event handler failed (it panicked, or what it returned could not be
    /// stored); nothing was changed. A bug in the app, as monitoring should see it.
    HandlerFailed,
    /// The event handler did not finish within the configured time.
    Timeout,
    /// The state store is unreachable.
    StoreUnavailable,
    /// Every session the server may keep has an open page, so a new one cannot
    /// start without evicting somebody's; try again later.
    AtCapacity,
    /// Another server instance took over the session while the event ran (the event
    /// outlived its lease); none of the session's values were written.
    LeaseLost,
    /// A listener that stops it (`cancels`) stopped the event before it had anything
    /// to keep, or its listener keeps nothing when stopped: nothing was written. What
    /// the user asked for, not a failure to show.
    Stopped,
    /// The streamed reply a client came back for is not known here: it never was,
    /// or it ended longer ago than the server keeps replies for a client to resume
    /// (`--resume-window`). Whether it landed, the session's next answers tell.
    UnknownReply,
    /// A bug on the server.
    Internal,
}

impl ErrorKind {
    /// Its name on the wire, e.g. `"unknown_session"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnknownApp => "unknown_app",
            ErrorKind::UnknownSession => "unknown_session",
            ErrorKind::UnknownListener => "unknown_listener",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::StateTooLarge => "state_too_large",
            ErrorKind::HandlerError => "handler_error",
            ErrorKind::HandlerFailed => "handler_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::AtCapacity => "at_capacity",
            ErrorKind::LeaseLost => "lease_lost",
            ErrorKind::Stopped => "stopped",
            ErrorKind::UnknownReply => "unknown_reply",
            ErrorKind::Internal => "internal",
        }
    }

    /// The HTTP status code the server answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest | ErrorKind::InvalidInput => 400,
            ErrorKind::UnknownApp
            | ErrorKind::UnknownSession
            | ErrorKind::UnknownListener
            | ErrorKind::UnknownReply => 404,
            ErrorKind::PayloadTooLarge | ErrorKind::StateTooLarge => 413,
            ErrorKind::HandlerError => 422,
            ErrorKind::LimitExceeded => 429,
            ErrorKind::HandlerFailed | ErrorKind::Internal => 500,
            ErrorKind::StoreUnavailable | ErrorKind::AtCapacity => 503,
            ErrorKind::LeaseLost | ErrorKind::Stopped => 409,
            ErrorKind::Timeout => 504,
        }
    }
}
