//! Slider, Radio, Html and Timer in a real page, found by accessible names: a slider
//! moved with the keyboard and a radio choice reach a handler; a timer ticking every
//! 0.3 s raises a session's count until a button stops it; Html shows only what the
//! server sanitised.

use std::time::Duration;

use fantoccini::key::Key;
use keepsake::components::{Button, Html, Number, Radio, Slider, Textbox, Timer};
use keepsake::{App, Blocks, State, Update};
use keepsake_e2e::{Browser, RunningServer, free_port, xpath_literal};

fn order_app() -> App {
    let mut app = Blocks::new("order", "Order");
    let quantity = app.add(Slider::new(0.0, 10.0).value(2.0).label("Quantity"));
    let size = app.add(Radio::new(["Small", "Medium", "Large"]).label("Size"));
    let order = app.add(Button::new("Order").primary());
    let summary = app.add(Textbox::new().label("Summary").interactive(false));
    app.click(
        order,
        (quantity, size),
        summary,
        |quantity: f64, size: Option<String>| {
            format!("{quantity} x {}", size.as_deref().unwrap_or("none"))
        },
    );
    app.build().expect("the app builds")
}

/// The radio button `choice` of the group named `group`.
async fn radio(browser: &Browser, group: &str, choice: &str) -> fantoccini::elements::Element {
    browser
        .find(&format!(
            "//fieldset[legend[normalize-space(.)={}]]//label[normalize-space(.)={}]//input[@type='radio']",
            xpath_literal(group),
            xpath_literal(choice)
        ))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slider_and_radio_inputs_reach_a_handler() {
    let server = RunningServer::start(free_port(), vec![order_app()]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/order")).await;

    let slider = browser.labelled("Quantity").await;
    assert_eq!(
        slider.attr("type").await.expect("attribute").as_deref(),
        Some("range")
    );
    assert_eq!(browser.value_of(&slider).await, "2");
    // As a keyboard user would: to the end, then three steps back.
    let keys: String = [Key::End, Key::Left, Key::Left, Key::Left]
        .into_iter()
        .map(char::from)
        .collect();
    slider.send_keys(&keys).await.expect("keys");
    assert_eq!(browser.value_of(&slider).await, "7");

    let large = radio(&browser, "Size", "Large").await;
    assert!(!large.is_selected().await.expect("checked state"));
    large.click().await.expect("click");
    assert!(large.is_selected().await.expect("checked state"));

    browser.button("Order").await.click().await.expect("click");
    browser
        .wait_value("Summary", |v| v == "7 x Large", "7 x Large")
        .await;

    // Another choice, by clicking its label; the first is no longer picked.
    browser
        .find("//fieldset//label[normalize-space(.)='Small']")
        .await
        .click()
        .await
        .expect("click");
    assert!(!large.is_selected().await.expect("checked state"));
    slider
        .send_keys(&char::from(Key::Home).to_string())
        .await
        .expect("keys");
    browser.button("Order").await.click().await.expect("click");
    browser
        .wait_value("Summary", |v| v == "0 x Small", "0 x Small")
        .await;
    browser.close().await;
    server.stop().await;
}

fn clock_app() -> App {
    let mut app = Blocks::new("clock", "Clock");
    let timer = app.add(Timer::new(0.3));
    let count = app.state(State::new(0u64));
    let ticks = app.add(Number::new().label("Ticks"));
    app.tick(timer, count, (count, ticks), |n: u64| {
        (n + 1, (n + 1) as f64)
    });
    let stop = app.add(Button::new("Stop").stop());
    app.click(stop, (), timer, || Update::unchanged().active(false));
    app.build().expect("the app builds")
}

async fn ticks(browser: &Browser) -> u64 {
    let shown = browser.labelled("Ticks").await;
    browser.value_of(&shown).await.parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_updates_a_value_until_stopped() {
    let server = RunningServer::start(free_port(), vec![clock_app()]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/clock")).await;

    // The count rises, and rises again, with nobody touching the page.
    let first = browser
        .wait_value(
            "Ticks",
            |v| v.parse::<u64>().is_ok_and(|n| n >= 1),
            "a tick",
        )
        .await;
    let first: u64 = first.parse().unwrap_or(0);
    let second = browser
        .wait_value(
            "Ticks",
            |v| v.parse::<u64>().is_ok_and(|n| n > first),
            "another tick",
        )
        .await;
    let second: u64 = second.parse().unwrap_or(0);
    browser
        .wait_value(
            "Ticks",
            |v| v.parse::<u64>().is_ok_and(|n| n > second),
            "a third tick",
        )
        .await;
    // The timer is not drawn: nothing of it on the page, nor for assistive technology.
    assert_eq!(
        browser
            .script("return document.querySelectorAll('[data-testid=\"component-0\"]').length;")
            .await,
        serde_json::json!(0)
    );

    browser.button("Stop").await.click().await.expect("click");
    // A tick sent before the stop landed may still arrive; then the count stays.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stopped = ticks(&browser).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(ticks(&browser).await, stopped, "no tick after the stop");
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_shows_only_what_the_server_sanitised() {
    let attack = "<p id=\"shown\">Hello <b>there</b></p>\
                  <img src=\"/nowhere.png\" onerror=\"window.pwned = 1\">\
                  <script>window.pwned = 2</script>\
                  <a href=\"javascript:window.pwned = 3\">Click me</a>";
    let mut app = Blocks::new("page", "Page");
    let source = app.add(Textbox::new().label("Source"));
    let shown = app.add(Html::new(attack));
    let show = app.add(Button::new("Show"));
    app.click(show, source, shown, |source: String| source);
    let server = RunningServer::start(free_port(), vec![app.build().expect("builds")]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/page")).await;

    browser.wait_text("Hello there").await;
    let link = browser.find("//a[normalize-space(.)='Click me']").await;
    assert_eq!(link.attr("href").await.expect("attribute"), None);
    link.click().await.expect("click");
    let inside = "return document.querySelector('.html-block').innerHTML;";
    let html = browser.script(inside).await;
    let html = html.as_str().unwrap_or_default().to_owned();
    for gone in ["onerror", "script", "javascript", "id=\"shown\""] {
        assert!(!html.contains(gone), "{gone} in {html}");
    }

    // An update is cleaned the same way.
    browser
        .type_into(
            "Source",
            "<em>New</em><img src=x onerror=\"window.pwned = 4\">",
        )
        .await;
    browser.button("Show").await.click().await.expect("click");
    browser
        .find("//div[contains(@class, 'html-block')]//em[.='New']")
        .await;
    let html = browser.script(inside).await;
    assert!(
        !html.as_str().unwrap_or_default().contains("onerror"),
        "{html}"
    );
    // Give a stray handler time to run: none did.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        browser.script("return window.pwned === undefined;").await,
        serde_json::json!(true)
    );
    browser.close().await;
    server.stop().await;
}
