//! Chained listeners and messages to the user, in a real page: `.then` and
//! `.success` run in order (the server's in the same round trip, the page's after
//! it), `.then` also after a failure; a handler's info notice and its error are shown
//! to the user as written, and notices can be dismissed. By accessible names.

use keepsake::components::{Button, Textbox};
use keepsake::{App, Blocks, NOTIFY, Notifier, State};
use keepsake_e2e::{Browser, RunningServer, free_port};

/// Save appends "save" to a log (or fails without a name), `.then` (server: reads
/// the log only) appends "then", `.success` after that (page: reads the name too)
/// appends "success"; "Order" shows the log.
fn app() -> App {
    let mut app = Blocks::new("steps", "Steps");
    let name = app.add(Textbox::new().label("Name"));
    let log = app.state(State::new(Vec::<String>::new()));
    let order = app.add(Textbox::new().label("Order").interactive(false));
    let save = app.add(Button::new("Save"));
    app.click(
        save,
        (name, log, NOTIFY),
        log,
        |name: String, mut log: Vec<String>, notify: Notifier| {
            if name.trim().is_empty() {
                return Err("Write a name first.".to_owned());
            }
            notify.info(format!("Saved {name}."));
            log.push("save".into());
            Ok(log)
        },
    )
    .then(log, log, |mut log: Vec<String>| {
        log.push("then".into());
        log
    })
    .success(
        (name, log),
        (log, order),
        |_name: String, mut log: Vec<String>| {
            log.push("success".into());
            let shown = log.join(" → ");
            (log, shown)
        },
    );
    app.build().expect("the app builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_run_in_order_and_notices_show_the_apps_words() {
    let server = RunningServer::start(free_port(), vec![app()]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/steps")).await;

    browser.type_into("Name", "Ada").await;
    browser.button("Save").await.click().await.expect("click");
    browser
        .wait_value(
            "Order",
            |v| v == "save → then → success",
            "the chain's order",
        )
        .await;
    // An info notice, with its own dismiss button.
    browser
        .find("//p[contains(@class, 'info')][contains(normalize-space(.), 'Saved Ada.')]/button[normalize-space(.)='Dismiss']")
        .await;

    // The click fails: its message, as the handler wrote it; `.then` still runs
    // (from the page), and `.success` after it.
    browser.type_into("Name", "  ").await;
    browser.button("Save").await.click().await.expect("click");
    browser
        .find("//*[@role='alert']//p[normalize-space(text())='Write a name first.']")
        .await;
    browser
        .wait_value(
            "Order",
            |v| v == "save → then → success → then → success",
            "the `.then` chain after the failure",
        )
        .await;

    // Notices can be dismissed.
    browser
        .find(
            "//p[contains(normalize-space(.), 'Saved Ada.')]/button[normalize-space(.)='Dismiss']",
        )
        .await
        .click()
        .await
        .expect("dismiss");
    let deadline = std::time::Instant::now() + keepsake_e2e::PATIENCE;
    while browser
        .script("return document.body.innerText.includes('Saved Ada.');")
        .await
        == serde_json::Value::Bool(true)
    {
        assert!(std::time::Instant::now() < deadline, "the notice stayed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser.close().await;
    server.stop().await;
}
