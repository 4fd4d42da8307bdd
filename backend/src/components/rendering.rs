//! What the server renders of a component's value, so the page never renders or
//! trusts markup itself: Markdown and Html whole, a Chatbot message by message.

use keepsake_shared::ComponentId;
use keepsake_shared::config::{ComponentKind, ComponentProps};
use keepsake_shared::event::{ComponentUpdate, ItemHtml, PropsUpdate};
use serde_json::Value;

use super::{chatbot, html};

/// What the server renders for a component's value, so the page never renders or
/// trusts markup itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Rendering {
    /// Nothing: the page shows the value itself.
    #[default]
    Nothing,
    /// One piece of HTML: Markdown (rendered and cleaned,
    /// [`crate::components::markdown_to_html`]) and Html (cleaned) components.
    Html(String),
    /// One piece per item: a Chatbot's messages, so that a reply growing at the end
    /// of a long transcript is sent, and drawn, as that one message.
    Items(Vec<String>),
}

impl Rendering {
    /// An update giving a component `value` whole, with this rendering of it.
    pub(crate) fn update(
        self,
        component: ComponentId,
        value: Value,
        props: PropsUpdate,
    ) -> ComponentUpdate {
        let mut update = ComponentUpdate {
            component,
            value: Some(value),
            html: None,
            edits: Vec::new(),
            items: Vec::new(),
            props,
        };
        self.set_on(&mut update);
        update
    }

    /// Puts this rendering on `update`, in the field its kind goes in.
    pub(crate) fn set_on(self, update: &mut ComponentUpdate) {
        match self {
            Rendering::Nothing => {}
            Rendering::Html(html) => update.html = Some(html),
            Rendering::Items(items) => update.items = ItemHtml::whole(items),
        }
    }
}

/// What a component of `kind` shows for `value` (see [`Rendering`]); a value of the
/// wrong shape shows nothing.
pub(crate) fn rendered(kind: &ComponentKind, value: &Value) -> Rendering {
    match kind {
        ComponentKind::Markdown => Rendering::Html(
            value
                .as_str()
                .map(crate::markdown::to_html)
                .unwrap_or_default(),
        ),
        ComponentKind::Html => {
            Rendering::Html(value.as_str().map(html::sanitise).unwrap_or_default())
        }
        ComponentKind::Chatbot => Rendering::Items(chatbot::to_html(value)),
        _ => Rendering::Nothing,
    }
}

/// Whether `kind` is rendered per item ([`Rendering::Items`]).
pub(crate) fn renders_items(kind: &ComponentKind) -> bool {
    matches!(kind, ComponentKind::Chatbot)
}

/// The HTML of one item of a value `kind` renders per item (a Chatbot's message).
pub(crate) fn rendered_item(kind: &ComponentKind, item: &Value) -> Option<String> {
    match kind {
        ComponentKind::Chatbot => Some(chatbot::message_html(item)),
        _ => None,
    }
}

/// A component's initial properties with what the server renders of its value.
pub(crate) fn render_props(kind: &ComponentKind, props: &mut ComponentProps) {
    match rendered(kind, &props.value) {
        Rendering::Nothing => {}
        Rendering::Html(html) => props.html = Some(html),
        Rendering::Items(items) => props.items = items,
    }
}
