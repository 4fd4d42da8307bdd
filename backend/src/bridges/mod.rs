//! What the bridges for other clients share (the Gradio-compatible API and MCP, whose
//! HTTP sides are `http::gradio` and `http::mcp`): listeners called by `api_name`
//! ([`endpoint`]). The sessions their clients name are the server's
//! (`server/keyed.rs`). No HTTP here.

pub(crate) mod endpoint;

use crate::error::ApiError;

/// The sentence a bridge's client is shown for `error`: a handler's own message as it
/// wrote it (that is how `ApiError::HandlerError` words itself), any other error as
/// the API words it.
pub(crate) fn user_message(error: &ApiError) -> String {
    error.to_string()
}

/// Whether `error` is the call's outcome (the listener ran and failed: its own
/// error, or a fault), which Gradio's clients get as the call's error; else it is a
/// refusal of the request itself (bad input, a limit, an unknown session), answered
/// with its status.
pub(crate) fn listener_failed(error: &ApiError) -> bool {
    error.kind() == keepsake_shared::error::ErrorKind::HandlerError
        || error.kind().http_status() >= 500
}
