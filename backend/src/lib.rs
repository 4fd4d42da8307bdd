//! Keepsake: Gradio's three kinds of state — global, session and browser — for Rust
//! web apps, on axum and tokio.
//!
//! An app is declared with [`Blocks`]: components in rows and columns, session
//! [`State`]s, [`Global`]s, [`BrowserState`]s and event listeners whose handlers are
//! plain Rust functions, typed by what they are wired to. A [`Server`] mounts apps;
//! [`app`] makes its axum `Router` and [`run`] serves it. The generic Leptos client
//! (`frontend/`) renders any app from its config.
//!
//! Every event copies the states its handlers read, measures what they return against
//! [`Settings::max_state_bytes`] and compares it with the old value for `.change`: for
//! a `Vec` each walks the whole list. A state that grows (a chat history, a log) is
//! best held in a [`List`], for which each of them costs the same at 10 items as at
//! 10,000.
//!
//! [`components::Markdown`] values are rendered by the server, not the browser: CommonMark
//! with GitHub's tables, strikethrough and task lists, sanitised so that no value (one
//! echoing user input, say) can add script, event handlers, styles or `javascript:`
//! links to a page; raw HTML in the source is shown as text. See
//! [`components::markdown_to_html`].
//! [`components::Html`] values reach a page the same way, only as the server sanitised
//! them ([`components::sanitise_html`]).
//!
//! [`components::Slider`] and [`components::Radio`] values are checked by the server
//! (bounds, choices) before any handler sees them. A [`components::Timer`] runs its
//! [`Blocks::tick`] listeners every interval while a page shows the app; a listener
//! stops or starts it with [`Update::active`].
//!
//! Part of a page can be laid out from a session state's value and laid out again
//! whenever an event changes it, its components wired to listeners of their own
//! (Gradio's `@gr.render`): see [`Blocks::render`], whose example is a to-do list.
//!
//! A handler returning a [`Streaming`] yields a sequence of outputs (Gradio's
//! generators): the page shows each as it comes, and the last is what is stored, once.
//! [`components::Chatbot`] shows a conversation with roles and Markdown content. See
//! [`Streaming`] and [`components::Chatbot`], each with an example, and the Chat demo
//! (`demos::chat`, with the `demo` feature).
//!
//! ```no_run
//! use keepsake::components::{Button, CheckboxGroup, Number};
//! use keepsake::{Blocks, Server, Settings, State};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut cart_app = Blocks::new("shopping-cart", "Shopping cart");
//! let items = cart_app.add(CheckboxGroup::new(["Cereal", "Milk"]).label("Items"));
//! let add = cart_app.add(Button::new("Add Items"));
//! let size = cart_app.add(Number::new().label("Cart Size"));
//! let cart = cart_app.state(State::new(Vec::<String>::new()));
//! cart_app.click(add, (items, cart), cart, |new: Vec<String>, mut cart: Vec<String>| {
//!     cart.extend(new);
//!     cart
//! });
//! // Run by the server after any event that changed the cart.
//! cart_app.change(cart, cart, size, |cart: Vec<String>| cart.len() as f64);
//!
//! let server = Server::new(Settings::default(), [cart_app.build()?])?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7860").await?;
//! keepsake::run(listener, server, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```

// Every public item is documented; CI's clippy (`-D warnings`) enforces it. Set
// here, not in `[workspace.lints]`: the frontend and e2e crates inherit those.
#![warn(missing_docs)]

mod api_docs;
mod app;
mod blocks;
mod bridges;
pub mod components;
#[cfg(feature = "demo")]
pub mod demos;
mod engine;
mod error;
mod handler;
mod http;
mod list;
mod markdown;
pub mod sealing;
mod server;
mod session;
mod settings;
mod state;
mod store;
mod telemetry;
mod value;

pub use app::App;
pub use blocks::declared::{
    BrowserStateHandle, Changeable, Clickable, GlobalHandle, Handle, ResourceHandle, StateHandle,
    Submittable, Tickable,
};
pub use blocks::render::Render;
pub use blocks::{Blocks, ListenerRef, MIN_SECRET_BYTES};
pub use error::{ApiError, BuildError, StartError};
pub use handler::notice::{MAX_NOTICES, NOTIFY, Notifier, NotifyInput};
pub use handler::request::{REQUEST, Request, RequestInput};
pub use handler::streaming::Streaming;
pub use handler::{
    Handler, HandlerError, Input, Inputs, IntoOutputs, IntoUpdate, Output, Outputs, Update,
};
pub use http::{EVENT_INTERVAL, app, run, runtime_builder};
pub use imbl;
pub use keepsake_shared as protocol;
pub use list::List;
pub use server::Server;
pub use settings::{DEFAULT_CONTENT_SECURITY_POLICY, Settings, SettingsError};
pub use state::{BrowserState, Global, Resource, Shared, State, StateType};
