//! What a client holds of a streamed answer's outputs, to make each message whole
//! again: the changes ([`crate::diff`]) a partial or the result carries, applied to
//! what came before. The browser client and the native tests use the same code.

use serde_json::Value;

use crate::ComponentId;
use crate::diff::{Mismatch, apply};
use crate::event::{ComponentUpdate, ItemHtml};

/// What a client holds of a streamed answer's outputs: turns each message's changes
/// back into whole values and whole item lists, as the plain route would send them.
#[derive(Debug, Clone, Default)]
pub struct Holding {
    held: Vec<(ComponentId, Value, Vec<String>)>,
}

impl Holding {
    /// Starts from what the client shows of `component`: the value it named in
    /// [`EventRequest::shown`](crate::event::EventRequest::shown), and its items'
    /// HTML if the component is rendered per item.
    pub fn show(&mut self, component: ComponentId, value: Value, items: Vec<String>) {
        self.held.retain(|(id, _, _)| *id != component);
        self.held.push((component, value, items));
    }

    /// Makes `update` whole: its value (from its edits; or, for an output the answer
    /// sent before, carrying neither value nor edits, the value held: the last
    /// partial's value is final) and all its items; and holds them. A mismatch (the
    /// edits were made for another value) changes nothing.
    pub fn resolve(&mut self, update: &mut ComponentUpdate) -> Result<(), Mismatch> {
        let id = update.component;
        let index = self.held.iter().position(|(held, _, _)| *held == id);
        let (mut value, mut items) = match index {
            Some(index) => {
                let (_, value, items) = &self.held[index];
                (value.clone(), items.clone())
            }
            None if update.value.is_none() => return Ok(()),
            None => (Value::Null, Vec::new()),
        };
        match update.value.take() {
            Some(whole) => value = whole,
            None => apply(&mut value, &update.edits)?,
        }
        for item in &update.items {
            item.apply(&mut items)?;
        }
        if let Value::Array(list) = &value {
            items.truncate(list.len());
        }
        update.edits.clear();
        update.items = ItemHtml::whole(items.iter().cloned());
        update.value = Some(value.clone());
        match index {
            Some(index) => self.held[index] = (id, value, items),
            None => self.held.push((id, value, items)),
        }
        Ok(())
    }
}
