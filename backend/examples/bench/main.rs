//! Keepsake's benchmark tool (run by `scripts/bench`, which writes BENCHMARKS.md).
//!
//! - `http --keepsake URL --bare URL`: a load generator (hyper, N concurrent sessions,
//!   each on its own keep-alive connection) that measures the cart's "Add Items" round
//!   trip against keepsake-demo and the bare baseline (`examples/bare.rs`), alternating
//!   rounds so both see the same machine, then global-state contention.
//! - `engine`: in-process measurements of memory per session, latency at scale and the
//!   expiry sweep's cost, with a counting allocator.
//!
//! Every section prints Markdown; figures are measured, never assumed.

use std::time::Duration;

use cap::Cap;
use clap::{Parser, Subcommand};

#[path = "../../benches/support/mod.rs"]
mod support;

mod engine;
mod load;

use engine::engine;
use load::{http, store_row};

// mimalloc, as in keepsake-demo; `Cap` counts the heap bytes the engine figures report.
#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP round trips against a running keepsake-demo and the bare baseline.
    Http {
        #[arg(long)]
        keepsake: String,
        #[arg(long)]
        bare: String,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Seconds per measured round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Rounds per target (alternating).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Cart and global rounds against one deployment, each request to a random one
    /// of `--url` (repeat it for several instances): the store comparison.
    Store {
        /// What the row is called in the report.
        #[arg(long)]
        label: String,
        #[arg(long = "url", required = true)]
        urls: Vec<String>,
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// In-process measurements: memory, scale, sweep.
    Engine {
        /// Sessions for the large-scale figures.
        #[arg(long, default_value_t = 1_000_000)]
        sessions: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Http {
            keepsake,
            bare,
            concurrency,
            seconds,
            rounds,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(http(
                keepsake,
                bare,
                concurrency,
                Duration::from_secs(seconds),
                rounds,
            ))
        }
        Command::Store {
            label,
            urls,
            concurrency,
            seconds,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(store_row(
                label,
                urls,
                concurrency,
                Duration::from_secs(seconds),
            ))
        }
        Command::Engine { sessions } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(engine(sessions))
        }
    }
}
