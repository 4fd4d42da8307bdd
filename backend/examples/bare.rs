//! The HTTP benchmark's baseline, run by `scripts/bench`: serves the bare axum routes
//! of `benches/support/bare.rs`.
//!
//! It is a binary of its own, on keepsake-demo's allocator and runtime: the `bench`
//! tool counts every allocation for its memory figures, and that counting would slow
//! the baseline.

use clap::Parser;

#[path = "../benches/support/bare.rs"]
mod bare;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("bare baseline on http://{}", listener.local_addr()?);
    axum::serve(listener, bare::router()).await?;
    Ok(())
}
