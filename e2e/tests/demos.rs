//! The three flagship demos, as a person would use them, in headless Chromium.

use std::time::Duration;

use keepsake::demos;
use keepsake_e2e::{Browser, PATIENCE, RunningServer, free_port, scratch_dir};

fn number(text: &str) -> Option<f64> {
    text.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cart_resets_on_refresh_and_each_tab_has_its_own() {
    let server =
        RunningServer::start(free_port(), vec![demos::shopping_cart().expect("demo")]).await;
    let browser = Browser::launch(None).await;
    let page = server.url("/apps/shopping-cart");
    browser.goto(&page).await;
    browser.add_to_cart(&["Milk", "Water"], 2.0).await;

    let first_tab = browser.client.window().await.expect("window");
    let second_tab = browser
        .client
        .new_window(true)
        .await
        .expect("new tab")
        .handle;
    browser
        .client
        .switch_to_window(second_tab)
        .await
        .expect("switch");
    browser.goto(&page).await;
    browser
        .wait_value("Cart Size", |v| number(v) == Some(0.0), "an empty cart")
        .await;
    browser.add_to_cart(&["Cereal"], 1.0).await;

    browser
        .client
        .switch_to_window(first_tab)
        .await
        .expect("switch back");
    // Milk and Water are still checked: adding them again doubles this tab's cart only.
    browser.add_to_cart(&[], 4.0).await;

    browser.client.refresh().await.expect("refresh");
    browser
        .wait_value(
            "Cart Size",
            |v| number(v) == Some(0.0),
            "an empty cart after refresh",
        )
        .await;
    browser.add_to_cart(&["Orange Juice"], 1.0).await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counter_counts_page_loads_across_browsers_and_updates_live() {
    let server =
        RunningServer::start(free_port(), vec![demos::visitor_counter().expect("demo")]).await;
    let page = server.url("/apps/visitor-counter");
    let first = Browser::launch(None).await;
    first.goto(&page).await;
    first.wait_value("Total Visitors", |v| v == "1", "1").await;

    let second = Browser::launch(None).await;
    second.goto(&page).await;
    second.wait_value("Total Visitors", |v| v == "2", "2").await;
    // The first page was told live.
    first
        .wait_value("Total Visitors", |v| v == "2", "2, pushed live")
        .await;

    first.client.refresh().await.expect("refresh");
    first
        .wait_value("Total Visitors", |v| v == "3", "3 after a reload")
        .await;
    second
        .wait_value("Total Visitors", |v| v == "3", "3, pushed live")
        .await;
    first.close().await;
    second.close().await;
    server.stop().await;
}

const LOGIN_KEY: &str = "keepsake:saved-login:saved_login";

/// The saved-login demo's secret in these tests (the test's own, as a deployment
/// has its own: the library holds none).
const SECRET: &str = "the browser tests' own secret, 32 bytes or more";

async fn log_in(browser: &Browser, user: &str, password: &str) {
    browser.type_into("Username", user).await;
    browser.type_into("Password", password).await;
    browser.wait_text("Saved to local storage at").await;
    // The last keystroke's save has landed when the stored value decrypts to it; wait
    // for the boxes to settle instead of guessing.
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_survives_refresh_browser_restart_and_server_restart() {
    let port = free_port();
    let server = RunningServer::start(
        port,
        vec![demos::saved_login("saved-login", Some(SECRET)).expect("demo")],
    )
    .await;
    let page = server.url("/apps/saved-login");
    let profile = scratch_dir("login-profile");

    let browser = Browser::launch(Some(&profile)).await;
    browser.goto(&page).await;
    browser.labelled("Username").await;
    log_in(&browser, "alice", "s3cret-pass").await;
    let stored = browser
        .script(&format!("return localStorage.getItem('{LOGIN_KEY}');"))
        .await;
    let stored = stored.as_str().expect("a stored value").to_owned();
    assert!(
        !stored.contains("alice"),
        "stored sealed, not in clear: {stored}"
    );

    browser.client.refresh().await.expect("refresh");
    browser
        .wait_value("Username", |v| v == "alice", "alice after refresh")
        .await;
    browser
        .wait_value(
            "Password",
            |v| v == "s3cret-pass",
            "the password after refresh",
        )
        .await;
    browser.close().await;

    let restarted = Browser::launch(Some(&profile)).await;
    restarted.goto(&page).await;
    restarted
        .wait_value(
            "Username",
            |v| v == "alice",
            "alice after a browser restart",
        )
        .await;

    // With a fixed storage key and secret, a new server reads the old values.
    server.stop().await;
    let server = RunningServer::start(
        port,
        vec![demos::saved_login("saved-login", Some(SECRET)).expect("demo")],
    )
    .await;
    restarted.client.refresh().await.expect("refresh");
    restarted
        .wait_value("Username", |v| v == "alice", "alice after a server restart")
        .await;
    restarted.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_local_storage_reads_as_the_default() {
    let server = RunningServer::start(
        free_port(),
        vec![demos::saved_login("saved-login", Some(SECRET)).expect("demo")],
    )
    .await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/saved-login")).await;
    browser.labelled("Username").await;
    log_in(&browser, "mallory", "pw").await;
    // Flip one character of the ciphertext, as someone editing devtools would.
    browser
        .script(&format!(
            "const k = '{LOGIN_KEY}'; const v = localStorage.getItem(k); \
             const i = v.length - 5; const c = v[i] === 'A' ? 'B' : 'A'; \
             localStorage.setItem(k, v.slice(0, i) + c + v.slice(i + 1)); return null;"
        ))
        .await;
    browser.client.refresh().await.expect("refresh");
    browser.labelled("Username").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    browser
        .wait_value("Username", |v| v.is_empty(), "the default (empty)")
        .await;
    let stored = browser
        .script(&format!("return localStorage.getItem('{LOGIN_KEY}');"))
        .await;
    assert!(
        stored.is_null(),
        "the tampered entry is cleared, found {stored}"
    );
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fixed_keys_a_server_restart_yields_the_default() {
    let port = free_port();
    let app = || demos::saved_login("saved-login-ephemeral", None).expect("demo");
    let server = RunningServer::start(port, vec![app()]).await;
    let page = server.url("/apps/saved-login-ephemeral");
    let browser = Browser::launch(None).await;
    browser.goto(&page).await;
    browser.labelled("Username").await;
    log_in(&browser, "bob", "pw").await;
    browser.client.refresh().await.expect("refresh");
    browser
        .wait_value("Username", |v| v == "bob", "bob while the server runs")
        .await;

    server.stop().await;
    let server = RunningServer::start(port, vec![app()]).await;
    browser.client.refresh().await.expect("refresh");
    browser.labelled("Username").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    browser
        .wait_value("Username", |v| v.is_empty(), "the default after a restart")
        .await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_one_tab_appears_in_another() {
    let server = RunningServer::start(
        free_port(),
        vec![demos::saved_login("saved-login", Some(SECRET)).expect("demo")],
    )
    .await;
    let page = server.url("/apps/saved-login");
    let browser = Browser::launch(None).await;
    browser.goto(&page).await;
    browser.labelled("Username").await;
    let first_tab = browser.client.window().await.expect("window");
    let second_tab = browser
        .client
        .new_window(true)
        .await
        .expect("new tab")
        .handle;
    browser
        .client
        .switch_to_window(second_tab.clone())
        .await
        .expect("switch");
    browser.goto(&page).await;
    browser.labelled("Username").await;

    browser
        .client
        .switch_to_window(first_tab)
        .await
        .expect("switch back");
    log_in(&browser, "carol", "pw").await;

    browser
        .client
        .switch_to_window(second_tab)
        .await
        .expect("switch");
    let deadline = std::time::Instant::now() + PATIENCE;
    browser
        .wait_value("Username", |v| v == "carol", "carol, from the other tab")
        .await;
    assert!(std::time::Instant::now() < deadline);
    browser.wait_text("Saved to local storage at").await;
    browser.close().await;
    server.stop().await;
}
