//! The To-do demo (a region rendered from a session state) as a person uses it, by
//! accessible names: items are added (button and Enter), ticked and deleted, each
//! row's checkbox and "Delete <item>" button reaching its own item; a second tab has
//! a list of its own, and neither tab's actions show in the other.

use std::time::{Duration, Instant};

use keepsake::components::Checkbox;
use keepsake::{App, Blocks, State, demos};
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

/// The label of the checkbox that has the keyboard focus, if one has it.
async fn focused_checkbox(browser: &Browser) -> Option<String> {
    let label = browser
        .script(
            "const e = document.activeElement;
             return e && e.type === 'checkbox' && e.closest('label')
                 ? e.closest('label').textContent.trim() : null;",
        )
        .await;
    label.as_str().map(str::to_owned)
}

/// A list whose render puts done items last: ticking one moves it.
fn done_last() -> App {
    let mut app = Blocks::new("done-last", "Done last");
    // (text, done); the text is the item's key.
    let items = app.state(State::new(vec![
        ("Milk".to_owned(), false),
        ("Eggs".to_owned(), false),
        ("Tea".to_owned(), false),
    ]));
    app.render(items, move |list: &Vec<(String, bool)>, r| {
        let mut shown = list.clone();
        shown.sort_by_key(|(_, done)| *done);
        for (text, done) in shown {
            let checkbox = r.add(Checkbox::new().value(done).label(&text).key(text.clone()));
            r.change(
                checkbox,
                (checkbox, items),
                items,
                move |done: bool, mut list: Vec<(String, bool)>| {
                    for item in list.iter_mut().filter(|(t, _)| *t == text) {
                        item.1 = done;
                    }
                    list
                },
            );
        }
    });
    app.build().expect("the app builds")
}

/// Ticking an item from the keyboard moves it to the end of the list. The page
/// reuses the region's elements by position, so without care the focused element
/// would now show another item (and the next Space would tick that one); the focus
/// must follow the item ticked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_focus_follows_an_item_the_render_moves() {
    let server = RunningServer::start(free_port(), vec![done_last()]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/done-last")).await;
    wait_items(
        &browser,
        &[("Milk", false), ("Eggs", false), ("Tea", false)],
    )
    .await;

    let milk = browser.find(&checkbox_xpath("Milk")).await;
    let id = milk.attr("id").await.expect("id").expect("an id");
    browser
        .script(&format!(
            "document.getElementById('{id}').focus(); return 1;"
        ))
        .await;
    assert_eq!(focused_checkbox(&browser).await.as_deref(), Some("Milk"));
    milk.send_keys(" ").await.expect("Space ticks it");
    wait_items(&browser, &[("Eggs", false), ("Tea", false), ("Milk", true)]).await;

    let deadline = Instant::now() + PATIENCE;
    loop {
        let focused = focused_checkbox(&browser).await;
        if focused.as_deref() == Some("Milk") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the focus should have followed Milk, it is on {focused:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.close().await;
    server.stop().await;
}
