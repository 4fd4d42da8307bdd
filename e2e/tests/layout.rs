//! Tabs and accordions in a real page, by accessible names: the first tab shows at
//! first, a tab's button shows its panel and hides the others (values kept), and an
//! accordion opens on its label.

use keepsake::components::{Markdown, Textbox};
use keepsake::{App, Blocks};
use keepsake_e2e::{Browser, RunningServer, free_port};

fn app() -> App {
    let mut app = Blocks::new("layout", "Layout");
    app.tabs(|app| {
        app.tab("First", |app| {
            app.add(Textbox::new().label("Alpha").interactive(true));
        });
        app.tab("Second", |app| {
            app.add(Textbox::new().label("Beta").interactive(true));
        });
    });
    app.accordion("More", false, |app| {
        app.add(Markdown::new("A hidden detail."));
    });
    app.build().expect("the app builds")
}

async fn shown(browser: &Browser, label: &str) -> bool {
    browser
        .labelled(label)
        .await
        .is_displayed()
        .await
        .expect("displayed state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_switch_and_accordions_open() {
    let server = RunningServer::start(free_port(), vec![app()]).await;
    let browser = Browser::launch(None).await;
    browser.goto(&server.url("/apps/layout")).await;

    let tab = |name: &'static str| format!("//*[@role='tab'][normalize-space(.)='{name}']");
    assert!(
        shown(&browser, "Alpha").await,
        "the first tab shows at first"
    );
    assert!(!shown(&browser, "Beta").await);
    browser.type_into("Alpha", "kept").await;

    let second = browser.find(&tab("Second")).await;
    second.click().await.expect("click");
    assert!(shown(&browser, "Beta").await, "the second tab shows");
    assert!(!shown(&browser, "Alpha").await);
    assert_eq!(
        second
            .attr("aria-selected")
            .await
            .expect("attribute")
            .as_deref(),
        Some("true")
    );
    browser
        .find(&tab("First"))
        .await
        .click()
        .await
        .expect("click");
    let alpha = browser.labelled("Alpha").await;
    assert_eq!(
        browser.value_of(&alpha).await,
        "kept",
        "values survive switching"
    );

    let detail = browser
        .find("//details//*[contains(normalize-space(.), 'A hidden detail.')][not(*)]")
        .await;
    assert!(!detail.is_displayed().await.expect("displayed state"));
    browser
        .find("//details/summary[normalize-space(.)='More']")
        .await
        .click()
        .await
        .expect("open");
    assert!(
        detail.is_displayed().await.expect("displayed state"),
        "opened"
    );
    browser.close().await;
    server.stop().await;
}
