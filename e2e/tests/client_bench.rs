//! Time from navigation to the result of the first click, cold cache, in headless
//! Chromium against a real server on loopback. Ignored in the test command (it
//! measures, it does not check); `scripts/bench` runs it in release and collects the
//! table lines for BENCHMARKS.md.
//!
//! The clock is the page's own (`performance.now()`, milliseconds since navigation
//! started), read once the cart shows the click's result. It includes the WebDriver
//! round trips that find and click the elements, so it overstates what a person
//! would wait.

use keepsake::demos;
use keepsake_e2e::{Browser, RunningServer, free_port, scratch_dir};

const RUNS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by scripts/bench"]
async fn first_click_after_navigation() {
    let server = RunningServer::start(free_port(), demos::all(None).expect("demos build")).await;
    let page = server.url("/apps/shopping-cart");
    let mut times = Vec::with_capacity(RUNS);
    for run in 0..RUNS {
        // A new profile each time: nothing cached.
        let profile = scratch_dir(&format!("first-click-{run}"));
        let browser = Browser::launch(Some(&profile)).await;
        browser.goto(&page).await;
        browser
            .checkbox("Milk")
            .await
            .click()
            .await
            .expect("click Milk");
        browser
            .button("Add Items")
            .await
            .click()
            .await
            .expect("click Add Items");
        browser
            .wait_value("Cart Size", |v| v == "1", "the first click's result")
            .await;
        let ms = browser
            .script("return performance.now();")
            .await
            .as_f64()
            .expect("a number");
        times.push(ms);
        browser.close().await;
    }
    server.stop().await;
    times.sort_by(f64::total_cmp);
    println!("| measurement | median | min | max | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| navigation → first click's result (shopping cart, cold cache, {RUNS} runs) | {:.0} ms | {:.0} ms | {:.0} ms | < 500 ms |",
        times[RUNS / 2],
        times[0],
        times[RUNS - 1]
    );
}
