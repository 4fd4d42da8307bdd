//! The three examples of Gradio's state guide, rebuilt on Keepsake, and apps built
//! on what the guide points to next (a chat with a streamed reply, a to-do list
//! rendered from state): the flagship demos served by `keepsake-demo`, and the apps
//! the browser tests drive.

mod chat;
mod secret;

pub use chat::{CHAT_WORD_DELAY, answer_to, chat, chat_paced};
use rand::Rng;
use rand::distr::Alphanumeric;
pub use secret::{SECRET_FILE, default_data_dir, kept_secret};
use serde::{Deserialize, Serialize};

use crate::components::{Button, Checkbox, CheckboxGroup, Markdown, Number, Textbox};
use crate::{App, Blocks, BrowserState, BuildError, Global, State, Update};

/// The most items the demo's cart holds: adding more fails with a message (the
/// handler's error reaches the page, and the API's clients, as it is written).
pub const MAX_CART_ITEMS: usize = 100;

/// Session state: a cart per page load, held on the server; refresh empties it.
pub fn shopping_cart() -> Result<App, BuildError> {
    let mut app = Blocks::new("shopping-cart", "Shopping cart").description(
        "Session state: every page load gets its own cart, kept on the server and never sent to the browser.",
    );
    app.add(Markdown::new(
        "Pick items and add them to your cart. The cart is a session `State`: \
         it lives on the server, one per page load, and a refresh starts a new one.",
    ));
    let items =
        app.add(CheckboxGroup::new(["Cereal", "Milk", "Orange Juice", "Water"]).label("Items"));
    let add = app.add(Button::new("Add Items").primary());
    let cart = app.state(State::new(Vec::<String>::new()));
    let size = app.add(Number::new().label("Cart Size").interactive(false));
    app.click(
        add,
        (items, cart),
        cart,
        |new_items: Vec<String>, mut cart: Vec<String>| {
            if cart.len() + new_items.len() > MAX_CART_ITEMS {
                return Err(format!(
                    "The cart holds at most {MAX_CART_ITEMS} items; it has {}.",
                    cart.len()
                ));
            }
            cart.extend(new_items);
            Ok(cart)
        },
    )
    .api_name("add_items")
    .api_description("Adds the chosen items to this session's cart; returns the cart's size.");
    app.change(cart, cart, size, |cart: Vec<String>| cart.len() as f64);
    app.build()
}

/// Global state: one counter for every visitor; open pages see it change live.
pub fn visitor_counter() -> Result<App, BuildError> {
    let mut app = Blocks::new("visitor-counter", "Visitor counter").description(
        "Global state: one value shared by every user. Each page load counts; open pages update live.",
    );
    let visitors = app.global(Global::new(0u64));
    let total = app.add(
        Textbox::new()
            .label("Total Visitors")
            .value("Counting...")
            .interactive(false),
    );
    app.load(visitors, (visitors, total), |count: u64| {
        let count = count + 1;
        (count, count.to_string())
    })
    .api_name("visit")
    .api_description("Counts a visit to the shared counter; returns the total.");
    app.bind(visitors, total, |count: &u64| count.to_string());
    app.build()
}

/// Storage key of the saved-login demo when it is given a secret.
pub const SAVED_LOGIN_STORAGE_KEY: &str = "saved_login";

/// Browser state: username and password kept in the browser's localStorage, sealed by
/// the server. With a `secret` (which the library never holds: `keepsake-demo` takes
/// one or keeps one of its own, [`kept_secret`]), the storage key is fixed, and a
/// server started again with the same secret reads the values; without, the keys
/// are random per server start, so a restart makes earlier values unreadable (as in
/// Gradio).
pub fn saved_login(id: &str, secret: Option<&str>) -> Result<App, BuildError> {
    let mut app = Blocks::new(id, "Saved login").description(
        "Browser state: what you type is kept in your browser, sealed by the server, and survives refreshes and restarts.",
    );
    let mut stored = BrowserState::new([String::new(), String::new()]);
    if let Some(secret) = secret {
        stored = stored.storage_key(SAVED_LOGIN_STORAGE_KEY).secret(secret);
    }
    let stored = app.browser_state(stored);
    let (username, password) = {
        let mut boxes = None;
        app.row(|app| {
            let username = app.add(Textbox::new().label("Username"));
            let password = app.add(Textbox::new().label("Password").password());
            boxes = Some((username, password));
        });
        match boxes {
            Some(boxes) => boxes,
            None => unreachable!("the row closure always runs"),
        }
    };
    let generate = app.add(Button::new("Generate Randomly"));
    let saved = app.add(Markdown::new("✅ Saved to local storage").visible(false));

    app.click(generate, (), (username, password), || {
        (random_text(8), random_text(12))
    });
    app.load(stored, (username, password), |[user, pass]: [String; 2]| {
        (user, pass)
    });
    app.on(
        [username.changed(), password.changed()],
        (username, password),
        stored,
        |user: String, pass: String| [user, pass],
    );
    // Runs when the stored value changes: here, or in another tab of this browser
    // (the client relays storage events). Boxes that already show the stored value are
    // left alone, so a tab where someone is typing is never overwritten.
    app.change(
        stored,
        (stored, username, password),
        (username, password, saved),
        |[user, pass]: [String; 2], shown_user: String, shown_pass: String| {
            let sync = |stored: String, shown: String| {
                if stored == shown {
                    Update::unchanged()
                } else {
                    Update::value(stored)
                }
            };
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            (
                sync(user, shown_user),
                sync(pass, shown_pass),
                Update::value(format!("✅ Saved to local storage at {now}")).visible(true),
            )
        },
    );
    app.build()
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// One item of the to-do demo's list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TodoItem {
    /// Never reused within a list: the key of the item's components.
    id: u64,
    text: String,
    done: bool,
}

/// The most items the to-do demo's list holds.
pub const MAX_TODO_ITEMS: usize = 100;

/// UI rendered from state: a to-do list in a session `State`, each item shown as a
/// checkbox and a "Delete" button wired to listeners of their own
/// ([`Blocks::render`]). Every tab has its own list.
pub fn todo() -> Result<App, BuildError> {
    let mut app = Blocks::new("todo", "To-do").description(
        "UI rendered from state: each item of a session-state list is a row of components with its own listeners; every tab has its own list.",
    );
    app.add(Markdown::new(
        "Add things to do, tick them when done, delete them. The list is a session \
         `State`; the rows below are *rendered* from it, again after every change.",
    ));
    let items = app.state(State::new(Vec::<TodoItem>::new()));
    let (text, add) = {
        let mut parts = None;
        app.row(|app| {
            let text = app.add(Textbox::new().label("New item").placeholder("Buy milk"));
            let add = app.add(Button::new("Add").primary());
            parts = Some((text, add));
        });
        match parts {
            Some(parts) => parts,
            None => unreachable!("the row closure always runs"),
        }
    };
    let summary = app.add(Markdown::new("Nothing to do yet.").label("Summary"));
    let add_item = |text: String, mut items: Vec<TodoItem>| {
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err("Write what there is to do first.".to_owned());
        }
        if items.len() >= MAX_TODO_ITEMS {
            return Err(format!("The list holds at most {MAX_TODO_ITEMS} items."));
        }
        let id = items.iter().map(|i| i.id + 1).max().unwrap_or(0);
        items.push(TodoItem {
            id,
            text,
            done: false,
        });
        Ok((items, String::new()))
    };
    app.click(add, (text, items), (items, text), add_item)
        .api_name("add_item")
        .api_description("Adds an item to this session's to-do list.");
    app.submit(text, (text, items), (items, text), add_item);
    app.change(items, items, summary, |items: Vec<TodoItem>| {
        let done = items.iter().filter(|i| i.done).count();
        match items.len() {
            0 => "Nothing to do yet.".to_owned(),
            total => format!("{done} of {total} done."),
        }
    });
    app.render(items, move |list: &Vec<TodoItem>, r| {
        for item in list {
            let id = item.id;
            r.row(|r| {
                let done = r.add(
                    Checkbox::new()
                        .value(item.done)
                        .label(&item.text)
                        .key(format!("done-{id}")),
                );
                let delete = r.add(
                    Button::new("Delete")
                        .stop()
                        .label(format!("Delete {}", item.text))
                        .key(format!("delete-{id}")),
                );
                r.change(
                    done,
                    (done, items),
                    items,
                    move |done: bool, mut items: Vec<TodoItem>| {
                        for item in items.iter_mut().filter(|i| i.id == id) {
                            item.done = done;
                        }
                        items
                    },
                );
                r.click(delete, items, items, move |mut items: Vec<TodoItem>| {
                    items.retain(|i| i.id != id);
                    items
                });
            });
        }
    });
    app.build()
}

/// Every demo, as mounted by `keepsake-demo`; `secret` is the saved-login demo's
/// ([`saved_login`]).
pub fn all(secret: Option<&str>) -> Result<Vec<App>, BuildError> {
    Ok(vec![
        shopping_cart()?,
        visitor_counter()?,
        saved_login("saved-login", secret)?,
        chat()?,
        todo()?,
    ])
}

use crate::blocks::declared::Changeable as _;
