//! The Chatbot view: the transcript the server rendered (one `<article>` per
//! message, named by its role; see the `keepsake` crate's `components::chatbot`),
//! in a log region that keeps its newest message in view.

use leptos::prelude::*;

use super::{Cx, dom_id, info_view};

pub(super) fn chatbot_view(cx: Cx, html: RwSignal<String>) -> AnyView {
    let label = cx.label();
    let heading_id = format!("{}-label", dom_id(cx.id));
    let log = NodeRef::<leptos::html::Div>::new();
    // Newest visible: once the new transcript is in the page (the next frame), scroll
    // to its end. A reply growing during a stream keeps its last words in view.
    Effect::new(move |_| {
        html.track();
        request_animation_frame(move || {
            if let Some(log) = log.get_untracked() {
                log.set_scroll_top(log.scroll_height());
            }
        });
    });
    view! {
        {move || label.get().map(|text| view! { <div class="label" id=heading_id.clone()>{text}</div> })}
        {info_view(cx)}
        <div
            class="chatbot prose"
            id=dom_id(cx.id)
            role="log"
            // Scrollable, so reachable by keyboard.
            tabindex="0"
            node_ref=log
            aria-labelledby=move || label.with(|l| l.as_ref().map(|_| format!("{}-label", dom_id(cx.id))))
            aria-label=move || label.with(|l| l.is_none().then(|| "Chat".to_owned()))
            aria-describedby=cx.described_by()
            inner_html=move || html.get()
        ></div>
    }
    .into_any()
}
