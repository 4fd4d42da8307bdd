//! The HTTP benchmark's baseline, run by `scripts/bench`: a bare axum server whose
//! routes parse the same request as Keepsake's cart event and answer a JSON body of
//! the same size, with nothing else in between.
//!
//! It is a binary of its own, on keepsake-demo's allocator and runtime: the `bench`
//! tool counts every allocation for its memory figures, and that counting would slow
//! the baseline.

use std::hint::black_box;

use axum::Json;
use axum::routing::post;
use clap::Parser;
use keepsake::protocol::SessionId;
use keepsake::protocol::event::EventRequest;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The body Keepsake answers "Add Items" with once a cart holds a few items: the
/// baseline returns this exact body, so both servers send the same bytes.
const CART_RESPONSE: &str = r#"{"updates":[{"component":4,"value":3.0}],"ran":[0,1]}"#;

/// Serve the bare-axum baseline.
#[derive(Parser)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:7870")]
    addr: std::net::SocketAddr,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The runtime keepsake-demo runs on, so the two servers differ only in what
    // they do per request.
    keepsake::runtime_builder().build()?.block_on(serve())
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let addr = Cli::parse().addr;
    let response: Value = serde_json::from_str(CART_RESPONSE)?;
    let session = json!({ "session_id": SessionId::from_bytes([7; 16]), "retention_secs": 3600 });
    let app = axum::Router::new()
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
        );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bare baseline on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
