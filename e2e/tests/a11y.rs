//! Accessibility: axe-core (pinned in `e2e/a11y/`, installed by `scripts/install.sh`,
//! its path in `KEEPSAKE_AXE`) runs in the start page, every demo page after a
//! person has used it, and the endpoint pages, in a light and a dark colour
//! scheme. No violation of serious or critical impact may remain; each one found is
//! listed with the elements it concerns.

use keepsake::demos;
use keepsake_e2e::{Browser, RunningServer, free_port};
use serde_json::Value;

/// axe-core's source, run in each page (by the driver, which the pages' policy
/// does not govern).
fn axe_source() -> String {
    let path = std::env::var("KEEPSAKE_AXE").unwrap_or_else(|_| {
        panic!(
            "KEEPSAKE_AXE is not set: run the tests through ./scripts/test, which installs axe-core"
        )
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read axe-core at {path}: {e}"))
}

/// The serious and critical violations axe finds in the current page, one line each.
async fn violations(browser: &Browser, axe: &str) -> Vec<String> {
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];
        axe.run(document, {{ resultTypes: ['violations'] }}).then(
          (results) => done(results.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${{v.impact}} ${{v.id}} (${{v.help}}): ` + v.nodes
              .map((n) => n.target.join(' ') + ' [' + (n.failureSummary || '').replace(/\\s+/g, ' ') + ']')
              .join('; '))),
          (error) => done(['axe failed: ' + error]));"
    );
    let found = browser
        .client
        .execute_async(&script, vec![])
        .await
        .expect("axe ran");
    match found {
        Value::Array(lines) => lines
            .into_iter()
            .map(|line| line.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => vec![format!("axe answered {other}")],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_has_a_serious_or_critical_violation_in_light_or_dark() {
    let axe = axe_source();
    let apps = demos::all().expect("demos build");
    let mut pages = vec!["/".to_owned()];
    pages.extend(apps.iter().map(|app| format!("/apps/{}", app.id().0)));
    pages.extend(apps.iter().map(|app| format!("/apps/{}/api", app.id().0)));
    let server = RunningServer::start(free_port(), apps).await;
    let mut failures = Vec::new();
    for dark in [false, true] {
        let browser = if dark {
            Browser::launch_dark().await
        } else {
            Browser::launch(None).await
        };
        let scheme = if dark { "dark" } else { "light" };
        let prefers_dark = |browser: &Browser| {
            let browser = browser.client.clone();
            async move {
                browser
                    .execute(
                        "return matchMedia('(prefers-color-scheme: dark)').matches;",
                        vec![],
                    )
                    .await
                    .expect("a script ran")
            }
        };
        for page in &pages {
            browser.goto(&server.url(page)).await;
            if page.ends_with("/api") {
                browser.wait_text("Start a session").await;
            } else {
                browser.use_page(page).await;
            }
            assert_eq!(
                prefers_dark(&browser).await,
                Value::Bool(dark),
                "{page}: the scheme"
            );
            for violation in violations(&browser, &axe).await {
                failures.push(format!("{page} ({scheme}): {violation}"));
            }
        }
        browser.close().await;
    }
    server.stop().await;
    assert!(
        failures.is_empty(),
        "accessibility violations:\n{}",
        failures.join("\n")
    );
}
