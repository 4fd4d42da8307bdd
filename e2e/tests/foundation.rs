//! The page at / is rendered by the Leptos client from the typed API, in a real
//! headless Chromium against a real server.

use keepsake::demos;
use keepsake_e2e::{Browser, RunningServer, free_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_page_is_rendered_by_the_client_and_opens_an_app() {
    let server = RunningServer::start(free_port(), demos::all(None).expect("demos build")).await;
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

/// A page whose server goes away says so and keeps retrying, with growing, jittered
/// pauses, through answers that are no use to it (here a server without the app, as
/// during a bad deploy); once its app answers on that address again, it goes on with
/// a new session, since the restarted server knows nothing of the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_keeps_retrying_until_its_app_is_back() {
    let port = free_port();
    let cart = || vec![demos::shopping_cart().expect("demo builds")];
    let server = RunningServer::start(port, cart()).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/shopping-cart")).await;
    browser.add_to_cart(&["Milk"], 1.0).await;

    server.stop().await;
    // A server without the app: the stream and every retry are refused (404).
    let stand_in = RunningServer::start(port, Vec::new()).await;
    browser.wait_text("Connection lost").await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    stand_in.stop().await;

    let server = RunningServer::start(port, cart()).await;
    browser
        .wait_text("Your session expired; a new one was started.")
        .await;
    // The ticked box is still ticked on the page; the new session's cart was empty.
    browser.add_to_cart(&["Water"], 2.0).await;
    browser.close().await;
    server.stop().await;
}
