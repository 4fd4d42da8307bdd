//! The page at / is rendered by the Leptos client from the typed API, in a real
//! headless Chromium against a real server.

use keepsake::demos;
use keepsake_e2e::{Browser, RunningServer, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_page_is_rendered_by_the_client_and_opens_an_app() {
    let server = RunningServer::start(free_port(), demos::all().expect("demos build")).await;
    // The server sends only the client's shell: the app list comes from the API.
    let shell = reqwest::get(server.url("/"))
        .await
        .expect("GET /")
        .text()
        .await
        .expect("body");
    assert!(
        !shell.contains("Visitor counter"),
        "the start page must not be static HTML"
    );

    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/")).await;
    for title in ["Shopping cart", "Visitor counter", "Saved login"] {
        browser
            .find(&format!("//a[contains(normalize-space(.), '{title}')]"))
            .await;
    }
    browser
        .find("//a[contains(normalize-space(.), 'Shopping cart')]")
        .await
        .click()
        .await
        .expect("click");
    browser.button("Add Items").await;
    browser.labelled("Cart Size").await;
    browser.close().await;
    server.stop().await;
}
