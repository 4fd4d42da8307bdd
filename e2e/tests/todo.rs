//! The To-do demo (a region rendered from a session state) as a person uses it, by
//! accessible names: items are added (button and Enter), ticked and deleted, each
//! row's checkbox and "Delete <item>" button reaching its own item; a second tab has
//! a list of its own, and neither tab's actions show in the other.

use std::time::{Duration, Instant};

use keepsake::demos;
use keepsake_e2e::{Browser, PATIENCE, RunningServer, free_port, xpath_literal};

fn delete_button(item: &str) -> String {
    format!(
        "//button[@aria-label={}]",
        xpath_literal(&format!("Delete {item}"))
    )
}

fn checkbox_xpath(item: &str) -> String {
    format!(
        "//label[normalize-space(.)={}]//input[@type='checkbox']",
        xpath_literal(item)
    )
}

/// The labels of the list's checkboxes, in order, with whether each is ticked.
async fn items(browser: &Browser) -> Vec<(String, bool)> {
    let found = browser
        .script(
            "return [...document.querySelectorAll('.region label.check')]
                .map((label) => [label.textContent.trim(), label.querySelector('input').checked]);",
        )
        .await;
    serde_json::from_value(found).expect("a list of [label, checked]")
}

/// Waits until the list is `expected`.
async fn wait_items(browser: &Browser, expected: &[(&str, bool)]) {
    let expected: Vec<(String, bool)> = expected
        .iter()
        .map(|(label, done)| ((*label).to_owned(), *done))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = items(browser).await;
        if shown == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected the list {expected:?}, still {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add(browser: &Browser, item: &str) {
    browser.type_into("New item", item).await;
    browser
        .button("Add")
        .await
        .click()
        .await
        .expect("click Add");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_added_ticked_and_deleted_in_each_tab_on_its_own() {
    let server = RunningServer::start(free_port(), vec![demos::todo().expect("demo")]).await;
    let browser = Browser::launch(None).await;
    let page = server.url("/apps/todo");
    browser.goto(&page).await;
    browser.wait_text("Nothing to do yet.").await;

    add(&browser, "Milk").await;
    wait_items(&browser, &[("Milk", false)]).await;
    // Enter adds too, and the box is emptied for the next one.
    browser.type_into("New item", "Eggs\n").await;
    wait_items(&browser, &[("Milk", false), ("Eggs", false)]).await;
    browser
        .wait_value("New item", str::is_empty, "an empty box")
        .await;
    add(&browser, "Tea").await;
    wait_items(
        &browser,
        &[("Milk", false), ("Eggs", false), ("Tea", false)],
    )
    .await;

    // Tick the last one, delete the middle one: the right items change.
    browser
        .find(&checkbox_xpath("Tea"))
        .await
        .click()
        .await
        .expect("tick Tea");
    wait_items(&browser, &[("Milk", false), ("Eggs", false), ("Tea", true)]).await;
    browser.wait_text("1 of 3 done.").await;
    browser
        .find(&delete_button("Eggs"))
        .await
        .click()
        .await
        .expect("delete Eggs");
    wait_items(&browser, &[("Milk", false), ("Tea", true)]).await;
    browser.wait_text("1 of 2 done.").await;

    // A second tab: a list of its own.
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
    browser.wait_text("Nothing to do yet.").await;
    wait_items(&browser, &[]).await;
    add(&browser, "Bread").await;
    wait_items(&browser, &[("Bread", false)]).await;
    browser
        .find(&checkbox_xpath("Bread"))
        .await
        .click()
        .await
        .expect("tick Bread");
    wait_items(&browser, &[("Bread", true)]).await;

    // The first tab's list is as it was; its actions stay there.
    browser
        .client
        .switch_to_window(first_tab)
        .await
        .expect("switch back");
    wait_items(&browser, &[("Milk", false), ("Tea", true)]).await;
    browser
        .find(&delete_button("Tea"))
        .await
        .click()
        .await
        .expect("delete Tea");
    wait_items(&browser, &[("Milk", false)]).await;
    browser
        .find(&checkbox_xpath("Milk"))
        .await
        .click()
        .await
        .expect("tick Milk");
    wait_items(&browser, &[("Milk", true)]).await;
    browser.wait_text("1 of 1 done.").await;

    browser
        .client
        .switch_to_window(second_tab)
        .await
        .expect("switch to the second tab");
    wait_items(&browser, &[("Bread", true)]).await;
    browser.wait_text("1 of 1 done.").await;
    browser.close().await;
    server.stop().await;
}
