//! The client works under the pages' strict Content-Security-Policy: every page is
//! served with it, a person can use each demo, and no violation is reported, while a
//! script the policy forbids, injected into the same page, is blocked and reported.

use std::time::Instant;

use keepsake::demos;
use keepsake_e2e::{Browser, PATIENCE, RunningServer, free_port};

/// What the policy must say for the page to be safe and the client to run.
const KEY_DIRECTIVES: [&str; 10] = [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval' 'sha256-",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "report-uri /api/csp-reports",
];

/// Waits until the server has counted `expected` violations, then checks it did not
/// count more.
async fn expect_violations(server: &RunningServer, expected: u64, page: &str) {
    let deadline = Instant::now() + PATIENCE;
    let mut seen = server.csp_violations().await;
    while seen < expected && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        seen = server.csp_violations().await;
    }
    assert_eq!(
        seen, expected,
        "{page}: expected {expected} reported violations (one per blocked test script)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_under_the_policy_and_a_forbidden_script_is_reported() {
    let apps = demos::all(None).expect("demos build");
    let mut pages = vec!["/".to_owned()];
    pages.extend(apps.iter().map(|app| format!("/apps/{}", app.id().0)));
    let server = RunningServer::start(free_port(), apps).await;
    let browser = Browser::launch(None).await;
    let mut reported = server.csp_violations().await;
    assert_eq!(reported, 0, "no page was loaded yet");

    for page in &pages {
        // (a) The page's answer carries the policy.
        let response = reqwest::get(server.url(page)).await.expect("GET page");
        assert_eq!(response.status(), 200, "{page}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{page}: no Content-Security-Policy header"))
            .to_str()
            .expect("an ASCII header")
            .to_owned();
        for directive in KEY_DIRECTIVES {
            assert!(
                policy.contains(directive),
                "{page}: {directive:?} missing from {policy}"
            );
        }

        // The client starts (its bootstrap script is allowed by its hash), talks to
        // the server (fetch, EventSource) and renders its answers.
        browser.goto(&server.url(page)).await;
        browser.use_page(page).await;

        // (c) The control: an inline script the policy forbids is refused, and
        // reported. A report of anything the page did itself would have been sent
        // before this one, so (b) the count is exactly one more than before.
        assert!(
            !browser.inline_script_runs().await,
            "{page}: the inline script ran"
        );
        reported += 1;
        expect_violations(&server, reported, page).await;
    }
    // The server-rendered API pages have a policy of their own: their one inline
    // style sheet, by hash, and no script at all.
    for app in ["shopping-cart", "saved-login"] {
        let page = format!("/apps/{app}/api");
        let response = reqwest::get(server.url(&page)).await.expect("GET API page");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .expect("an ASCII header")
            .to_owned();
        assert!(
            policy.starts_with("default-src 'none'; style-src 'sha256-"),
            "{policy}"
        );
        browser.goto(&server.url(&page)).await;
        browser.wait_text("Start a session").await;
        let styled = browser
            .script("return getComputedStyle(document.body).maxWidth;")
            .await;
        assert_eq!(
            styled,
            serde_json::json!("900px"),
            "{page}: its style applies"
        );
        assert!(!browser.inline_script_runs().await, "{page}: a script ran");
        reported += 1;
        expect_violations(&server, reported, &page).await;
    }
    browser.close().await;
    // And nothing more arrived meanwhile.
    assert_eq!(server.csp_violations().await, reported);
    server.stop().await;
}
