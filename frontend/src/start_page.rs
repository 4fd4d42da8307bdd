//! The start page (`/`): the apps this server runs, each linking to its page.

use keepsake_shared::api::{ListApps, app_page_path};
use keepsake_shared::config::AppSummary;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;

/// Lists the server's apps.
pub fn start_page() -> impl IntoView {
    let apps: RwSignal<Option<Result<Vec<AppSummary>, String>>> = RwSignal::new(None);
    spawn_local(async move {
        let result = api::call::<ListApps>(&(), &())
            .await
            .map_err(|e| e.to_string());
        apps.set(Some(result));
    });
    view! {
        <main class="start">
            <header class="app-header">
                <h1>"Keepsake"</h1>
                <p class="description">"Apps with global, session and browser state."</p>
            </header>
            {move || match apps.get() {
                None => view! { <p class="loading" role="status">"Loading apps…"</p> }.into_any(),
                Some(Err(error)) => view! {
                    <p class="banner error" role="alert">{format!("The list of apps could not be loaded: {error}")}</p>
                }
                .into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p>"This server runs no apps."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <ul class="app-list">
                        {list
                            .into_iter()
                            .map(|app| view! {
                                <li class="card">
                                    <h2><a href=app_page_path(&app.id)>{app.title}</a></h2>
                                    <p>{app.description}</p>
                                </li>
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any(),
            }}
        </main>
    }
}
