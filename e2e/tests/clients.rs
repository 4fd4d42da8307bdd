//! The clients people already use, against a real server: Gradio's own Python client
//! (`gradio_client`) and the MCP Python SDK, pinned in `e2e/clients/requirements.txt`
//! and installed by `scripts/install.sh` into the virtual environment whose Python
//! `KEEPSAKE_CLIENTS_PYTHON` names. `e2e/clients/doors.py` holds the checks: one cart
//! per `Client` and per MCP session, the shared counter, a handler's error as an
//! exception with its message, and bad input refused alike by both doors, changing
//! nothing.

use std::time::Duration;

use keepsake::demos;
use keepsake_e2e::{RunningServer, free_port, repository};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradio_client_and_mcp_keep_session_state_per_client() {
    let python = std::env::var("KEEPSAKE_CLIENTS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "KEEPSAKE_CLIENTS_PYTHON is not set: run ./scripts/test, which installs the pinned Python clients"
        )
    });
    let mut settings = RunningServer::settings(free_port());
    settings.gradio_api = true;
    settings.mcp = true;
    let server = RunningServer::start_with(settings, demos::all().expect("the demos build")).await;
    let run = Command::new(&python)
        .arg(repository().join("e2e/clients/doors.py"))
        .arg(server.url(""))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the clients finish within 3 minutes")
        .unwrap_or_else(|error| panic!("cannot run {python}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("\"all\": \"passed\""),
        "the clients' checks failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    server.stop().await;
}
