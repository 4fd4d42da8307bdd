//! A to-do list: the items are session state (one list per page load, on the server,
//! never sent to the browser); the theme is browser state (kept in this browser,
//! sealed by the server, so it survives a refresh).
//!
//! Run it with `cargo run` and open <http://127.0.0.1:7860/apps/todo>. The page, its
//! wasm, JS and CSS are inside the `keepsake` crate: no static directory is needed.
//! Set `TODO_ADDR` to listen elsewhere, and `TODO_SECRET` (32 bytes or more) to keep
//! themes across server restarts.

use keepsake::components::{Button, Dropdown, Markdown, Textbox};
use keepsake::{App, Blocks, BrowserState, BuildError, Server, Settings, State};

/// Items as a Markdown list.
fn render(items: &[String]) -> String {
    if items.is_empty() {
        return "Nothing to do.".to_owned();
    }
    items
        .iter()
        .map(|item| format!("- {item}\n"))
        .collect()
}

fn todo_app() -> Result<App, BuildError> {
    let mut app = Blocks::new("todo", "To-do list").description(
        "Items live on the server for this page load; your theme stays in this browser.",
    );
    let theme_choice = app.add(Dropdown::new(["light", "dark"]).label("Theme"));
    let new_item = app.add(Textbox::new().label("New item").placeholder("What needs doing?"));
    let add = app.add(Button::new("Add"));
    let clear = app.add(Button::new("Clear the list"));
    let list = app.add(Markdown::new("Nothing to do.").label("Items"));
    let theme_shown = app.add(Markdown::new("").label("Theme in use"));

    let items = app.state(State::new(Vec::<String>::new()));
    let mut theme = BrowserState::new("light".to_owned()).storage_key("theme");
    if let Ok(secret) = std::env::var("TODO_SECRET") {
        theme = theme.secret(secret);
    }
    let theme = app.browser_state(theme);

    // Adding an item (button or Enter) appends it and empties the box.
    let add_item = |item: String, mut items: Vec<String>| {
        let item = item.trim();
        if !item.is_empty() {
            items.push(item.to_owned());
        }
        (items, String::new())
    };
    app.click(add, (new_item, items), (items, new_item), add_item);
    app.submit(new_item, (new_item, items), (items, new_item), add_item);
    app.click(clear, (), items, Vec::<String>::new);
    // Runs on the server after any event that changed the items.
    app.change(items, items, list, |items: Vec<String>| render(&items));

    // The theme: chosen here, kept in the browser, shown on every load.
    app.change(theme_choice, theme_choice, theme, |choice: Option<String>| {
        choice.unwrap_or_else(|| "light".to_owned())
    });
    app.load(theme, (theme_choice, theme_shown), |theme: String| {
        (Some(theme.clone()), format!("Theme: **{theme}**"))
    });
    app.change(theme, theme, theme_shown, |theme: String| {
        format!("Theme: **{theme}**")
    });
    app.build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("TODO_ADDR").unwrap_or_else(|_| "127.0.0.1:7860".to_owned());
    let server = Server::new(Settings::default(), [todo_app()?])?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("To-do list on http://{}/apps/todo", listener.local_addr()?);
    keepsake::run(listener, server, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
