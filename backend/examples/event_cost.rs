//! The CPU work of one cart event, as a count that this machine's noise barely moves:
//! runs `--events` cart "Add Items" events in process (the engine alone, or through
//! the whole router without a socket, or the same request through the bare axum
//! baseline of the HTTP benchmark) on a single-threaded runtime, sessions renewed
//! every 20 events as in the HTTP benchmark. `scripts/instructions-per-event` runs it
//! under `perf stat -e instructions:u` at two counts and divides the difference by
//! the difference in events, so start-up and set-up cancel out.
//!
//! Timings on a shared 2-core machine move by tens of percent between runs; retired
//! instructions move by well under one, which is what comparing two commits needs.
//! The request is built from its wire form so that this file builds against older
//! commits' `EventRequest` too.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::{Parser, ValueEnum};
use keepsake::protocol::SessionId;
use keepsake::protocol::event::{EventRequest, SessionStarted};
use keepsake::{Server, Settings, demos};
use tower::ServiceExt;

#[path = "../benches/support/bare.rs"]
mod bare;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CART_EVENT: &str = r#"{"listener":0,"inputs":[["Milk"],null]}"#;
const EVENTS_PER_SESSION: u32 = 20;

#[derive(Clone, Copy, ValueEnum)]
enum Path {
    /// `Server::run_event` with an already parsed request: the engine alone.
    Engine,
    /// A POST through `keepsake::app`'s router: extraction, JSON in and out, layers.
    Router,
    /// The same POST through the bare axum route (`benches/support/bare.rs`), which
    /// parses the same request and answers the same bytes.
    Bare,
}

#[derive(Parser)]
struct Cli {
    #[arg(long, value_enum)]
    path: Path,
    #[arg(long)]
    events: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(Settings::default(), [demos::shopping_cart()?])?;
    let router = match cli.path {
        Path::Bare => bare::router(),
        Path::Engine | Path::Router => keepsake::app(&server),
    };
    // Parsed once: the engine's figure counts the event, not the request's JSON.
    let parsed: EventRequest = serde_json::from_str(CART_EVENT)?;
    let mut session = SessionId::from_bytes([0; 16]);
    for event in 0..cli.events {
        // A session starts the way the HTTP benchmark starts it on each server (the
        // bare baseline's start answers a fixed session), so each count holds its own
        // server's starts and no other's.
        if event % EVENTS_PER_SESSION == 0 {
            session = match cli.path {
                Path::Engine => server.start_session("shopping-cart").await?.session_id,
                Path::Router => started(&router, "/api/apps/shopping-cart/sessions").await?,
                Path::Bare => started(&router, "/bare/sessions").await?,
            };
        }
        let uri = match cli.path {
            Path::Engine => {
                server
                    .run_event("shopping-cart", &session, parsed.clone())
                    .await?;
                continue;
            }
            Path::Router => format!("/api/apps/shopping-cart/sessions/{session}/events"),
            Path::Bare => "/bare/events".to_owned(),
        };
        respond(&router, uri, Body::from(CART_EVENT)).await?;
    }
    Ok(())
}

/// The session a start request to `uri` answers.
async fn started(router: &Router, uri: &str) -> Result<SessionId, Box<dyn std::error::Error>> {
    let body = respond(router, uri.to_owned(), Body::empty()).await?;
    Ok(serde_json::from_slice::<SessionStarted>(&body)?.session_id)
}

/// POSTs `body` to `uri` through `router` and reads the whole answer, which must be
/// a 200.
async fn respond(
    router: &Router,
    uri: String,
    body: Body,
) -> Result<axum::body::Bytes, Box<dyn std::error::Error>> {
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)?;
    let response = router.clone().oneshot(request).await?;
    if response.status() != StatusCode::OK {
        return Err(format!("answered {}", response.status()).into());
    }
    Ok(axum::body::to_bytes(response.into_body(), usize::MAX).await?)
}
