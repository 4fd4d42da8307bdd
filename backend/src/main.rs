//! `keepsake-demo`: serves the three flagship demos and the built client, with the
//! Gradio-compatible API and MCP open.

use std::path::PathBuf;

use clap::Parser;
use keepsake::{Server, Settings, demos};
use tracing_subscriber::EnvFilter;

/// Serve Keepsake's demo apps.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    settings: Settings,

    /// The secret that seals the saved-login demo's values in browsers (32 bytes or
    /// more; give every instance the same one). Unset: one made on the first start
    /// and kept in `--data-dir`, readable by this user only.
    #[arg(long, env = "KEEPSAKE_SECRET", hide_env_values = true)]
    secret: Option<String>,

    /// Where the demo keeps what it makes (its secret). Unset: the user's data
    /// directory (`~/.local/share/keepsake` on Linux).
    #[arg(long, env = "KEEPSAKE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let served = keepsake::runtime_builder()
        .build()
        .map_err(Into::into)
        .and_then(|runtime| runtime.block_on(serve()));
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // A sentence for a person (e.g. "invalid setting --heartbeat: must be
            // longer than zero"), not the error's debug form.
            eprintln!("keepsake-demo: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .init();
    let cli = Cli::parse();
    let (secret, kept_in) = demo_secret(cli.secret, cli.data_dir)?;
    let mut settings = cli.settings;
    // The demos are reachable by the clients people already use.
    settings.gradio_api = true;
    settings.mcp = true;
    let addr = settings.addr;
    let server = Server::new(settings, demos::all(Some(&secret))?)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("Keepsake is serving on http://{local}");
    if let Some(path) = kept_in {
        println!(
            "The saved-login demo's secret is kept in {} (readable by you only)",
            path.display()
        );
    }
    keepsake::run(listener, server, shutdown_signal()).await?;
    Ok(())
}

/// The saved-login demo's secret: the one given, or the one kept in the data
/// directory (made on the first start), with the file it is kept in. The secret
/// itself is never printed.
fn demo_secret(
    given: Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<(String, Option<PathBuf>), Box<dyn std::error::Error>> {
    if let Some(secret) = given {
        if secret.len() < 32 {
            return Err(format!(
                "--secret (KEEPSAKE_SECRET) has {} bytes; a secret needs 32 or more",
                secret.len()
            )
            .into());
        }
        return Ok((secret, None));
    }
    let dir = data_dir.or_else(demos::default_data_dir).ok_or(
        "there is no data directory to keep the demo's secret in: give --data-dir or --secret",
    )?;
    let (secret, path) = demos::kept_secret(&dir).map_err(|error| {
        format!(
            "cannot keep the demo's secret in {}: {error}",
            dir.display()
        )
    })?;
    Ok((secret, Some(path)))
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
