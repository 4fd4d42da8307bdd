//! The clients people already use, against a real server: Gradio's own Python client
//! (`gradio_client`) and the MCP Python SDK, pinned in `e2e/clients/requirements.txt`
//! and installed by `scripts/install.sh` into the virtual environment whose Python
//! `KEEPSAKE_CLIENTS_PYTHON` names, and Gradio's JavaScript client. The scripts in
//! `e2e/clients/` hold the checks: one cart per `Client` and per MCP session, the
//! shared counter, a handler's error as an exception with its message, and bad input
//! refused alike by both bridges, changing nothing.

use std::time::Duration;

use keepsake::demos;
use keepsake_e2e::{RunningServer, free_port, repository};
use tokio::process::Command;

/// Serves the demos with both bridges open, runs `program script URL` against them and
/// fails with its output unless every check passed.
async fn run_checks(program: &str, script: &str) {
    let mut settings = RunningServer::settings(free_port());
    settings.gradio_api = true;
    settings.mcp = true;
    let server =
        RunningServer::start_with(settings, demos::all(None).expect("the demos build")).await;
    let run = Command::new(program)
        .arg(repository().join(script))
        .arg(server.url(""))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the clients finish within 3 minutes")
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    let passed = stdout.contains("\"all\": \"passed\"") || stdout.contains("\"all\":\"passed\"");
    assert!(
        output.status.success() && passed,
        "the clients' checks failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    server.stop().await;
}

fn installed(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run ./scripts/test, which installs the pinned clients")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gradio_client_and_mcp_keep_session_state_per_client() {
    run_checks(
        &installed("KEEPSAKE_CLIENTS_PYTHON"),
        "e2e/clients/bridges.py",
    )
    .await;
}

/// Gradio's JavaScript client (`@gradio/client`, pinned in
/// `e2e/clients/package-lock.json`; `KEEPSAKE_JS_CLIENTS` names where it is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gradio_javascript_client_keeps_session_state_per_client() {
    installed("KEEPSAKE_JS_CLIENTS");
    run_checks("node", "e2e/clients/bridges.mjs").await;
}
