//! Keepsake's generic browser client: renders any Keepsake app from its JSON config
//! and runs its events through the protocol of `keepsake-shared`.
//!
//! Routing is by path alone (the server serves `index.html` for every page): `/` is
//! the list of apps, `/apps/{id}` an app. It is a library so that the integration
//! tests in `tests/` can drive its parts in a real browser; `main.rs` only calls
//! [`start`].

pub mod api;
pub mod app_page;
pub mod browser_state;
pub mod components;
pub mod controller;
pub mod layout;
pub mod start_page;
pub mod timer;

use keepsake_shared::AppId;
use leptos::prelude::*;

/// A page of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Start,
    App(AppId),
    NotFound,
}

/// The page for a location path.
pub fn route(path: &str) -> Route {
    let path = path.trim_end_matches('/');
    if path.is_empty() || path == "/index.html" {
        return Route::Start;
    }
    match path.strip_prefix("/apps/") {
        Some(id) if !id.is_empty() && !id.contains('/') => Route::App(AppId(id.to_owned())),
        _ => Route::NotFound,
    }
}

/// The view for a route.
pub fn page(route: Route) -> AnyView {
    match route {
        Route::Start => start_page::start_page().into_any(),
        Route::App(app) => app_page::app_page(app).into_any(),
        Route::NotFound => view! {
            <main class="start">
                <h1>"Page not found"</h1>
                <p><a href="/">"See the apps on this server"</a></p>
            </main>
        }
        .into_any(),
    }
}

/// Mounts the client on the page's `<body>`.
pub fn start() {
    console_error_panic_hook::set_once();
    let path = web_sys::window()
        .and_then(|w| w.location().pathname().ok())
        .unwrap_or_default();
    let route = route(&path);
    leptos::mount::mount_to_body(move || page(route));
}
