//! The Chatbot view: the transcript the server rendered (one `<article>` per
//! message, named by its role; see the `keepsake` crate's `components::chatbot`),
//! in a log region that keeps its newest message in view. Each message is drawn on
//! its own, keyed by its place and HTML: as a reply streams in, only its message is
//! drawn again, however long the conversation.

use leptos::prelude::*;

use super::{Cx, dom_id, heading_view, info_view, labelled_by, unlabelled_name};

/// Newest visible without script: the log is a scroll container laid out in reverse
/// (`flex-direction: column-reverse`, in the style sheet) around one block holding
/// the messages in order, so the browser keeps its scroll anchored at the end while
/// it grows, as a reply streams in. An effect scrolling to the end after each change
/// did the same for about 1.3 KB more brotli of the client (a node ref, an effect and an animation
/// frame callback).
pub(super) fn chatbot_view(cx: Cx, items: RwSignal<Vec<String>>) -> AnyView {
    let label = cx.label();
    view! {
        {heading_view(cx, label)}
        {info_view(cx)}
        <div
            class="chatbot"
            id=dom_id(cx.id)
            role="log"
            // Scrollable, so reachable by keyboard.
            tabindex="0"
            aria-labelledby=labelled_by(cx, label)
            aria-label=unlabelled_name(label, "Chat")
            aria-describedby=cx.described_by()
        >
            <div class="chatbot-messages prose">
                <For
                    each=move || items.get().into_iter().enumerate()
                    key=|(index, html)| (*index, html.clone())
                    children=|(_, html)| view! { <div class="chatbot-item" inner_html=html></div> }
                />
            </div>
        </div>
    }
    .into_any()
}
