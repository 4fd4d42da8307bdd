//! The HTTP benchmark's baseline: a bare axum router whose routes parse the same
//! request as Keepsake's cart event and answer a JSON body of the same size, with
//! nothing else in between. `examples/bare.rs` serves it; the criterion benches run
//! it without a socket.

use std::hint::black_box;

use axum::routing::post;
use axum::{Json, Router};
use keepsake::protocol::SessionId;
use keepsake::protocol::event::EventRequest;
use serde_json::{Value, json};

/// The body Keepsake answers "Add Items" with once a cart holds a few items: the
/// baseline returns this exact body, so both servers send the same bytes.
const CART_RESPONSE: &str = r#"{"updates":[{"component":4,"value":3.0}],"ran":[0,1]}"#;

/// `POST /bare/sessions` (a fixed session) and `POST /bare/events`.
pub fn router() -> Router {
    let response: Value = serde_json::from_str(CART_RESPONSE).expect("a constant JSON body");
    let session = json!({ "session_id": SessionId::from_bytes([7; 16]), "retention_secs": 3600 });
    Router::new()
        .route(
            "/bare/sessions",
            post(move || async move { Json(session.clone()) }),
        )
        .route(
            "/bare/events",
            post(move |Json(request): Json<EventRequest>| async move {
                black_box(request);
                Json(response.clone())
            }),
        )
}
