//! The app page (`/apps/{id}`): loads the app's config, makes its [`Controller`] and
//! shows the app: header, status line, notices and the layout of component views.

use std::rc::Rc;

use keepsake_shared::config::AppConfig;
use keepsake_shared::error::ErrorKind;
use keepsake_shared::event::NoticeLevel;
use keepsake_shared::{AppId, PROTOCOL_VERSION};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{Backend, ClientError, HttpBackend};
use crate::browser_state::{KeyValueStore, LocalStore, warn};

use crate::controller::{CONNECTION_LOST, Controller, PageHandle};

/// Shown instead of an app whose server speaks another protocol version.
pub const OUTDATED: &str =
    "This page is out of date: the server was updated. Reload the page to continue.";

/// The whole app: header, status line, notices and the layout of components.
pub fn app_view(page: PageHandle) -> impl IntoView {
    let Some(controller) = page.get() else {
        return view! { <p role="alert" class="banner error">"This page is no longer available."</p> }
            .into_any();
    };
    let config = controller.config();
    let status = controller.status;
    let running = status.running;
    let title = config.title.clone();
    let api_docs = keepsake_shared::api::api_docs_path(&config.id);
    let description = config.description.clone();
    let layout = crate::layout::layout_view(&controller, page);
    let timers = crate::timer::timers_view(&controller, page);
    view! {
        <main class="app" aria-busy=move || if running.get() { "true" } else { "false" }>
            <header class="app-header">
                <nav>
                    <a href="/" class="back">"← All apps"</a>
                    " · "
                    <a href=api_docs>"Use via API"</a>
                </nav>
                <h1>{title}</h1>
                {(!description.is_empty()).then(|| view! { <p class="description">{description}</p> })}
            </header>
            <div class="status-line">
                <span class="running" class:active=move || running.get() role="status" aria-live="polite">
                    {move || running.get().then(|| view! { <span class="spinner" aria-hidden="true"></span> "Running…" })}
                </span>
            </div>
            <div class="notices">
                <div role="status" aria-live="polite">
                    {move || status.connection_lost.get().then(|| view! { <p class="banner warning">{CONNECTION_LOST}</p> })}
                    {move || status.notice.get().map(|text| view! {
                        <p class="banner info">
                            {text}
                            <button type="button" class="dismiss" on:click=move |_| status.notice.set(None)>"OK"</button>
                        </p>
                    })}
                    {move || status.storage_warning.get().map(|text| view! { <p class="banner warning">{text}</p> })}
                    {move || status.messages.get().into_iter().enumerate().map(|(index, notice)| {
                        let class = match notice.level {
                            NoticeLevel::Info => "banner info",
                            NoticeLevel::Warning => "banner warning",
                        };
                        let dismiss = move |_| status.messages.update(|shown| {
                            if index < shown.len() {
                                shown.remove(index);
                            }
                        });
                        view! {
                            <p class=class>
                                {notice.message}
                                <button type="button" class="dismiss" on:click=dismiss>"Dismiss"</button>
                            </p>
                        }
                    }).collect_view()}
                </div>
                <div role="alert">
                    {move || status.error.get().map(|text| view! {
                        <p class="banner error">
                            {text}
                            <button type="button" class="dismiss" on:click=move |_| status.error.set(None)>"Dismiss"</button>
                        </p>
                    })}
                </div>
            </div>
            {layout}
            {timers}
        </main>
    }
    .into_any()
}

#[derive(Clone)]
enum Loading {
    Config,
    Failed(String),
    /// The server speaks another protocol version: the page must be reloaded.
    Outdated,
    Ready(PageHandle),
}

/// The page at `/apps/{id}`: loads the app's config, then runs it.
pub fn app_page(app: AppId) -> impl IntoView {
    app_page_with(app, Rc::new(HttpBackend), Box::new(LocalStore))
}

/// [`app_page`] on any backend and store (tests script them). A config of another
/// protocol version starts nothing: the page asks to be reloaded.
pub fn app_page_with(
    app: AppId,
    backend: Rc<dyn Backend>,
    store: Box<dyn KeyValueStore>,
) -> impl IntoView {
    let state = RwSignal::new(Loading::Config);
    let owner = Owner::current();
    spawn_local(async move {
        match backend.get_config(&app).await {
            Ok(config) if config.protocol_version == PROTOCOL_VERSION => {
                if let Some(document) = web_sys::window().and_then(|w| w.document()) {
                    document.set_title(&format!("{} · Keepsake", config.title));
                }
                let make = || {
                    let controller = Controller::new(config, backend, store);
                    (PageHandle::new(controller.clone()), controller)
                };
                let (handle, controller) = match &owner {
                    Some(owner) => owner.with(make),
                    None => make(),
                };
                state.set(Loading::Ready(handle));
                controller.start();
            }
            Ok(AppConfig {
                protocol_version, ..
            })
            | Err(ClientError::Outdated(protocol_version)) => {
                warn(&format!(
                    "Keepsake: the server speaks protocol version {protocol_version}, \
                     this page {PROTOCOL_VERSION}"
                ));
                state.set(Loading::Outdated);
            }
            Err(error) => {
                let message = match error.kind() {
                    Some(ErrorKind::UnknownApp) => {
                        format!("There is no app called “{app}” on this server.")
                    }
                    _ => format!("The app could not be loaded: {error}"),
                };
                state.set(Loading::Failed(message));
            }
        }
    });
    move || match state.get() {
        Loading::Config => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
        Loading::Failed(message) => view! {
            <main class="app">
                <p role="alert" class="banner error">{message}</p>
                <p><a href="/">"← All apps"</a></p>
            </main>
        }
        .into_any(),
        Loading::Outdated => view! {
            <main class="app">
                <p role="alert" class="banner warning">
                    {OUTDATED}
                    <button type="button" class="dismiss" on:click=|_| reload()>"Reload"</button>
                </p>
            </main>
        }
        .into_any(),
        Loading::Ready(handle) => app_view(handle).into_any(),
    }
}

/// Reloads the page (from the server, which serves the client of its own version).
fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}
