//! Changes, not copies: what a streamed answer's client holds of each output, so that
//! each partial, and the final result, carry only what changed since
//! ([`keepsake_shared::diff`]).
//!
//! Without this, every token of a chat reply resent the whole conversation and the
//! server rendered the whole transcript's Markdown again: the bytes and the work of a
//! reply grew with the history. Here a partial carries the edits from the last value
//! the answer sent (the first one from what the request says the page shows, when
//! the new value begins with it), and a Chatbot's HTML only for the messages that
//! changed, as a splice of the one the answer sent before. The work per partial is
//! rendering the messages that changed plus comparing the values (no Markdown for the
//! rest of the history).

use std::collections::HashMap;
use std::sync::Arc;

use keepsake_shared::ComponentId;
use keepsake_shared::config::ComponentKind;
use keepsake_shared::diff::{self, Shown};
use keepsake_shared::event::{ComponentUpdate, EventResult, ItemHtml, PartialUpdate};
use serde_json::Value;

use crate::App;
use crate::components::{self, rendered_item, renders_items};

/// What one answer's client holds of the outputs the answer has sent.
pub(super) struct Changes {
    app: Arc<App>,
    shown: Vec<Shown>,
    held: HashMap<ComponentId, Held>,
}

/// One output as the client holds it.
struct Held {
    value: Value,
    /// Per item of a value rendered per item: the HTML this answer sent for it, or
    /// `None` where the client has it from before the answer (an item of what the
    /// request said it shows, unchanged since).
    items: Vec<Option<String>>,
}

impl Changes {
    pub(super) fn new(app: Arc<App>, shown: Vec<Shown>) -> Self {
        Changes {
            app,
            shown,
            held: HashMap::new(),
        }
    }

    /// A partial's updates, as changes. The engine sends them unrendered.
    pub(super) fn partial(&mut self, partial: PartialUpdate) -> PartialUpdate {
        let updates = partial
            .updates
            .into_iter()
            .filter_map(|update| self.change(update, None))
            .collect();
        PartialUpdate { updates }
    }

    /// The result's updates of outputs this answer sent partials of, as changes
    /// from the last of those: the client resolves them against what it previewed.
    /// The engine left the listener's own outputs unrendered; those of what it set
    /// off (a `.change` listener) come rendered.
    pub(super) fn done(&mut self, mut result: EventResult) -> EventResult {
        result.updates = std::mem::take(&mut result.updates)
            .into_iter()
            .map(|mut update| {
                if !self.held.contains_key(&update.component) {
                    self.render_whole(&mut update);
                    return update;
                }
                let rendered = Some(rendered_items(&update)).filter(|items| !items.is_empty());
                let id = update.component;
                // A held output's update stays even if nothing changed: it tells the
                // client the last partial's value is final.
                self.change(update, rendered)
                    .unwrap_or_else(|| unchanged(id))
            })
            .collect();
        result
    }

    /// Renders a whole value the engine left unrendered.
    fn render_whole(&self, update: &mut ComponentUpdate) {
        let (Some(value), None, true) = (&update.value, &update.html, update.items.is_empty())
        else {
            return;
        };
        let Some(kind) = self.app.config.component(update.component).map(|c| &c.kind) else {
            return;
        };
        components::rendered(kind, value).set_on(update);
    }

    /// `update` (a whole value, or props only) as a change from what the client
    /// holds; `None` when it changes nothing. `rendered`: the value's items rendered
    /// already, if they were.
    fn change(
        &mut self,
        mut update: ComponentUpdate,
        rendered: Option<Vec<String>>,
    ) -> Option<ComponentUpdate> {
        let Some(new) = update.value.take() else {
            return (!update.props.is_empty()).then_some(update);
        };
        let id = update.component;
        // The app, not the component's kind, is copied (an `Arc`): this runs per
        // partial.
        let app = self.app.clone();
        let Some(kind) = app.config.component(id).map(|c| &c.kind) else {
            // A rendered region's component: sent whole, as before.
            update.value = Some(new);
            return Some(update);
        };
        let held = self.held.remove(&id).or_else(|| self.shown_base(id, &new));
        update.items.clear();
        let html = update.html.take();
        let items = match held {
            Some(held) => {
                update.edits = diff::diff(&held.value, &new);
                item_changes(kind, held, &new, rendered, &mut update.items)
            }
            None => {
                let none = Held {
                    value: Value::Null,
                    items: Vec::new(),
                };
                let items = item_changes(kind, none, &new, rendered, &mut update.items);
                update.value = Some(new.clone());
                items
            }
        };
        if (update.value.is_some() || !update.edits.is_empty()) && !renders_items(kind) {
            match html {
                Some(html) => update.html = Some(html),
                None => components::rendered(kind, &new).set_on(&mut update),
            }
        }
        self.held.insert(id, Held { value: new, items });
        let changed = update.value.is_some() || !update.edits.is_empty();
        (changed || !update.props.is_empty()).then_some(update)
    }

    /// What the request said the client shows of `id`, if `new` begins with it.
    fn shown_base(&self, id: ComponentId, new: &Value) -> Option<Held> {
        let shown = self.shown.iter().find(|shown| shown.component == id)?;
        let value = shown.base_in(new)?;
        let items = match &value {
            Value::Array(items) => vec![None; items.len()],
            _ => Vec::new(),
        };
        Some(Held { value, items })
    }
}

/// The items of `new` whose HTML the client does not hold yet, pushed to `changes`
/// (a splice of what this answer sent for the item before, where it did); returns
/// what the client holds once they are applied. Nothing for kinds not rendered per
/// item.
fn item_changes(
    kind: &ComponentKind,
    held: Held,
    new: &Value,
    rendered: Option<Vec<String>>,
    changes: &mut Vec<ItemHtml>,
) -> Vec<Option<String>> {
    let Value::Array(new_items) = new else {
        return Vec::new();
    };
    if !renders_items(kind) {
        return Vec::new();
    }
    let old_items = held.value.as_array().map(Vec::as_slice).unwrap_or_default();
    let known = held.items.len();
    // Moved, not copied: a long transcript's HTML is not cloned per partial.
    let mut before_items = held.items.into_iter();
    let mut rendered = rendered.map(Vec::into_iter);
    let mut holds = Vec::with_capacity(new_items.len());
    for (index, item) in new_items.iter().enumerate() {
        let done = rendered.as_mut().and_then(Iterator::next);
        let before = before_items.next().flatten();
        if old_items.get(index) == Some(item) && index < known {
            holds.push(before);
            continue;
        }
        let html = done
            .or_else(|| rendered_item(kind, item))
            .unwrap_or_default();
        let keep = before
            .as_deref()
            .map_or(0, |before| common_prefix(before, &html));
        changes.push(ItemHtml {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            keep: u32::try_from(keep).unwrap_or(0),
            html: html[keep..].to_owned(),
        });
        holds.push(Some(html));
    }
    holds
}

/// The length of the longest common prefix of `a` and `b`, at a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    let mut len = a.bytes().zip(b.bytes()).take_while(|(a, b)| a == b).count();
    while !b.is_char_boundary(len) {
        len -= 1;
    }
    len
}

/// The items the engine rendered with a whole value, in order.
fn rendered_items(update: &ComponentUpdate) -> Vec<String> {
    update.items.iter().map(|item| item.html.clone()).collect()
}

/// An update that says a held output's last partial value is its final one.
fn unchanged(component: ComponentId) -> ComponentUpdate {
    ComponentUpdate {
        component,
        value: None,
        html: None,
        edits: Vec::new(),
        items: Vec::new(),
        props: Default::default(),
    }
}
