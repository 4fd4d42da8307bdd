//! What the bridges for other clients share (the Gradio-compatible API and MCP, whose
//! HTTP sides are `http::gradio` and `http::mcp`): listeners called by `api_name`
//! ([`endpoint`]). The sessions their clients name are the server's
//! (`server/keyed.rs`). No HTTP here.

pub(crate) mod endpoint;

use crate::error::ApiError;

/// The sentence a bridge's client is shown for `error`: a handler's own message as it
/// wrote it (that is how `ApiError::HandlerFailed` words itself), any other error as
/// the API words it.
pub(crate) fn user_message(error: &ApiError) -> String {
    error.to_string()
}
