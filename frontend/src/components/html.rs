//! An Html component: the HTML the server sanitised (the `keepsake` crate's
//! `components::sanitise_html`), set as the element's content. The client parses
//! no HTML of its own and never sees the unsanitised source as markup.

use leptos::prelude::*;

pub(super) fn html_view(html: RwSignal<String>) -> AnyView {
    view! { <div class="prose" inner_html=move || html.get()></div> }.into_any()
}
