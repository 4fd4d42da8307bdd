//! The standalone example app (`examples/todo`, its own crate outside the workspace,
//! depending on `keepsake` like any app): built here, run as its own process with no
//! static directory, and used in headless Chromium. Its to-do items are session state
//! (gone after a refresh); its theme is browser state (kept after a refresh).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use keepsake_e2e::{Browser, ChildGuard, cargo_build, free_port, repository};

/// Builds the example the way its author would (`cargo build` of its manifest), into
/// the tests' target directory so listeners are shared.
fn build_example() -> PathBuf {
    let manifest = repository().join("examples/todo/Cargo.toml");
    let args = [OsStr::new("--manifest-path"), manifest.as_os_str()];
    cargo_build(&args, "examples/todo").join("debug/keepsake-todo")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_example_serves_its_own_page_and_keeps_its_states() {
    let binary = build_example();
    // Run from an empty directory: nothing on disk to serve from.
    let empty = keepsake_e2e::scratch_dir("todo-cwd");
    let port = free_port();
    let mut child = Command::new(&binary)
        .current_dir(&empty)
        .env("TODO_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().expect("stdout");
    let _example = ChildGuard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("its first line");
    assert!(line.starts_with("To-do list on http://"), "{line}");
    let page = format!("http://127.0.0.1:{port}/apps/todo");

    let browser = Browser::launch(None).await;
    browser.goto(&page).await;
    browser.type_into("New item", "buy milk").await;
    browser.button("Add").await.click().await.expect("click");
    browser.wait_text("buy milk").await;
    browser.type_into("New item", "water plants\n").await;
    browser.wait_text("water plants").await;
    browser
        .wait_value("New item", str::is_empty, "the box emptied after adding")
        .await;

    browser
        .labelled("Theme")
        .await
        .select_by_value("dark")
        .await
        .expect("choose a theme");
    browser.wait_text("Theme: dark").await;

    // Refresh: a new page load, so a new session with an empty list; the theme is
    // read back from this browser's storage.
    browser.client.refresh().await.expect("refresh");
    browser.wait_text("Nothing to do.").await;
    browser.wait_text("Theme: dark").await;
    browser
        .wait_value("Theme", |v| v == "dark", "the kept theme selected")
        .await;
    let stored = browser
        .script("return localStorage.getItem('keepsake:todo:theme');")
        .await;
    let stored = stored.as_str().expect("the theme is stored");
    assert!(!stored.contains("dark"), "sealed, not in clear: {stored}");
    browser.close().await;
}
