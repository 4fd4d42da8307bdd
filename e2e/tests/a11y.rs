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
    let apps = demos::all(None).expect("demos build");
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

/// Slider, Radio, Html and Timer, which no demo uses: a page of each, after a person
/// has moved the slider and picked a choice, in both schemes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliders_radios_html_and_timers_pass_too() {
    use keepsake::components::{Button, Html, Number, Radio, Slider, Timer};
    use keepsake::{Blocks, State};

    let axe = axe_source();
    let mut app = Blocks::new("inputs", "Inputs");
    let level = app.add(
        Slider::new(0.0, 10.0)
            .value(3.0)
            .label("Level")
            .info("How loud."),
    );
    let size = app.add(Radio::new(["Small", "Large"]).label("Size"));
    app.add(Html::new(
        "<h2>Notes</h2><p>Some <a href=\"/\">linked</a> text.</p>",
    ));
    let timer = app.add(Timer::new(0.5));
    let count = app.state(State::new(0u32));
    let ticks = app.add(Number::new().label("Ticks"));
    app.tick(timer, count, (count, ticks), |n: u32| {
        (n + 1, f64::from(n + 1))
    });
    let go = app.add(Button::new("Go").primary());
    app.click(go, (level, size), ticks, |level: f64, _: Option<String>| {
        level
    });
    let server = RunningServer::start(free_port(), vec![app.build().expect("builds")]).await;
    let mut failures = Vec::new();
    for dark in [false, true] {
        let browser = if dark {
            Browser::launch_dark().await
        } else {
            Browser::launch(None).await
        };
        browser.goto(&server.url("/apps/inputs")).await;
        browser
            .labelled("Level")
            .await
            .send_keys(&char::from(fantoccini::key::Key::Right).to_string())
            .await
            .expect("keys");
        browser
            .find("//fieldset//label[normalize-space(.)='Large']")
            .await
            .click()
            .await
            .expect("click");
        browser
            .wait_value(
                "Ticks",
                |v| v.parse::<u32>().is_ok_and(|n| n >= 1),
                "a tick",
            )
            .await;
        for violation in violations(&browser, &axe).await {
            failures.push(format!(
                "{} {violation}",
                if dark { "dark" } else { "light" }
            ));
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
