//! What the doors for other clients share (the Gradio-compatible API and MCP, whose
//! HTTP sides are `http::gradio` and `http::mcp`): listeners called by `api_name`
//! ([`endpoint`]) in sessions named by the client ([`sessions`]). No HTTP here.

pub(crate) mod endpoint;
pub(crate) mod sessions;

use crate::error::ApiError;

/// The sentence a door's client is shown for `error`: a handler's own message as it
/// wrote it (that is how `ApiError::HandlerFailed` words itself), any other error as
/// the API words it.
pub(crate) fn user_message(error: &ApiError) -> String {
    error.to_string()
}
