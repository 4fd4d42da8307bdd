//! A listener called by name through a bridge: the parameters a caller gives, the
//! values it gets back, and how a call becomes an event of Keepsake's own protocol.
//!
//! What a call returns is what a page would see after it: the listener's outputs,
//! then those of the `.change` listeners its state writes may run (the cart's
//! `add_items` writes the cart state; its `.change` listener sets "Cart Size", and a
//! caller gets that size back). A slot held by the server or the browser (state,
//! global, browser state) is never given and never returned: its position is kept
//! (Gradio's clients expect it) and carries `null`.

use keepsake_shared::config::{AppConfig, ComponentKind};
use keepsake_shared::event::{EventRequest, EventResult};
use keepsake_shared::{ComponentId, ListenerId};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::error::ApiError;

/// One listener with an `api_name`, as the bridges show it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// Without the leading slash (`add_items`).
    pub(crate) api_name: String,
    pub(crate) listener: ListenerId,
    /// The listener's description, or one made from its name.
    pub(crate) description: String,
    /// Every input slot, in the order of the listener's inputs.
    pub(crate) inputs: Vec<Slot>,
    /// The listener's outputs, then its `.change` cascade's (each component once).
    pub(crate) outputs: Vec<Slot>,
}

/// An input or output position of an [`Endpoint`].
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) component: ComponentId,
    pub(crate) kind: ComponentKind,
    /// The component's label, or its kind's name.
    pub(crate) label: String,
    /// The name a caller gives it by: a Python identifier made from the label,
    /// unique among the endpoint's inputs (or outputs).
    pub(crate) name: String,
    /// The component's initial value: what a parameter left out takes.
    pub(crate) default: Value,
    /// Held by the server or the browser: never given, never returned.
    pub(crate) hidden: bool,
}

impl Endpoint {
    /// The app's endpoints, in listener order.
    pub(crate) fn all(app: &App) -> Vec<Endpoint> {
        let config = app.config();
        config
            .listeners
            .iter()
            .filter_map(|listener| {
                let api_name = listener.api_name.clone()?;
                let mut outputs: Vec<ComponentId> = Vec::new();
                for listener in app.cascade(listener.id) {
                    let listener = &config.listeners[listener.0 as usize];
                    for output in &listener.outputs {
                        if !outputs.contains(output) {
                            outputs.push(*output);
                        }
                    }
                }
                Some(Endpoint {
                    description: listener.description.clone().unwrap_or_else(|| {
                        format!("Runs the `{api_name}` listener of {}.", config.title)
                    }),
                    api_name,
                    listener: listener.id,
                    inputs: slots(config, &listener.inputs),
                    outputs: slots(config, &outputs),
                })
            })
            .collect()
    }

    /// The inputs a caller gives.
    pub(crate) fn parameters(&self) -> impl Iterator<Item = &Slot> {
        self.inputs.iter().filter(|slot| !slot.hidden)
    }

    /// The outputs a caller gets.
    pub(crate) fn returns(&self) -> impl Iterator<Item = &Slot> {
        self.outputs.iter().filter(|slot| !slot.hidden)
    }

    /// The event for a call that gives one value per input position, hidden ones
    /// included (what they carry is ignored), as Gradio's clients send them.
    pub(crate) fn request_positional(&self, given: Vec<Value>) -> Result<EventRequest, ApiError> {
        if given.len() != self.inputs.len() {
            return Err(ApiError::InvalidInput(format!(
                "`{}` takes {} values (one per input, null for those the server holds), got {}",
                self.api_name,
                self.inputs.len(),
                given.len()
            )));
        }
        let inputs = self
            .inputs
            .iter()
            .zip(given)
            .map(|(slot, value)| if slot.hidden { Value::Null } else { value })
            .collect();
        Ok(self.request(inputs))
    }

    /// The event for a call that gives its parameters only, in order (no values for
    /// the hidden inputs).
    pub(crate) fn request_parameters(&self, given: Vec<Value>) -> Result<EventRequest, ApiError> {
        let parameters = self.parameters().count();
        if given.len() != parameters {
            return Err(ApiError::InvalidInput(format!(
                "`{}` takes {parameters} parameters, got {}",
                self.api_name,
                given.len()
            )));
        }
        let mut given = given.into_iter();
        let inputs = self
            .inputs
            .iter()
            .map(|slot| match slot.hidden {
                true => Value::Null,
                false => given.next().unwrap_or(Value::Null),
            })
            .collect();
        Ok(self.request(inputs))
    }

    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    /// The event for a call that gives its parameters by name; one left out takes
    /// its component's initial value, and a name the endpoint does not have is an
    /// error.
    pub(crate) fn request_named(
        &self,
        mut given: Map<String, Value>,
    ) -> Result<EventRequest, ApiError> {
        let inputs = self
            .inputs
            .iter()
            .map(|slot| match slot.hidden {
                true => Value::Null,
                false => given
                    .remove(&slot.name)
                    .unwrap_or_else(|| slot.default.clone()),
            })
            .collect();
        if let Some(unknown) = given.keys().next() {
            let known: Vec<&str> = self.parameters().map(|slot| slot.name.as_str()).collect();
            return Err(ApiError::InvalidInput(format!(
                "`{}` has no parameter {unknown:?}; its parameters: {}",
                self.api_name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        }
        Ok(self.request(inputs))
    }

    fn request(&self, inputs: Vec<Value>) -> EventRequest {
        EventRequest {
            listener: self.listener,
            inputs,
            // A bridge's client holds no sealed strings: browser states read as their
            // defaults and what is written to them is not kept.
            held: Vec::new(),
            rendered: None,
            shown: Vec::new(),
        }
    }

    /// One value per output position: the last value the event set on it, `null`
    /// for one it did not set and for hidden ones.
    pub(crate) fn output_values(&self, result: &EventResult) -> Vec<Value> {
        self.outputs
            .iter()
            .map(|slot| match slot.hidden {
                true => Value::Null,
                false => set_value(slot, result),
            })
            .collect()
    }

    /// The returned outputs only, in order (for callers that gave the parameters
    /// only).
    pub(crate) fn returned_values(&self, result: &EventResult) -> Vec<Value> {
        self.returns().map(|slot| set_value(slot, result)).collect()
    }

    #[cfg_attr(not(feature = "mcp"), allow(dead_code))]
    /// The returned outputs by name, for callers that take an object.
    pub(crate) fn named_outputs(&self, result: &EventResult) -> Map<String, Value> {
        self.returns()
            .map(|slot| (slot.name.clone(), set_value(slot, result)))
            .collect()
    }
}

/// The last value `result` set on `slot`'s component, or `null`.
fn set_value(slot: &Slot, result: &EventResult) -> Value {
    result
        .updates
        .iter()
        .rev()
        .find(|update| update.component == slot.component)
        .and_then(|update| update.value.clone())
        .unwrap_or(Value::Null)
}

fn slots(config: &AppConfig, ids: &[ComponentId]) -> Vec<Slot> {
    let mut taken: Vec<String> = Vec::new();
    ids.iter()
        .enumerate()
        .map(|(position, id)| {
            let component = config.component(*id);
            let kind = component.map_or(ComponentKind::Json, |c| c.kind.clone());
            let label = component
                .and_then(|c| c.props.label.clone())
                .unwrap_or_else(|| kind.name().to_owned());
            let hidden = !kind.is_page_value();
            let base = identifier(&label).unwrap_or_else(|| format!("param_{position}"));
            let mut name = base.clone();
            // "x", "x" and "x_1" become x, x_1 and x_1_2: each name once.
            let mut suffix = position;
            while taken.contains(&name) {
                name = format!("{base}_{suffix}");
                suffix += 1;
            }
            taken.push(name.clone());
            Slot {
                component: *id,
                default: component.map_or(Value::Null, |c| c.props.value.clone()),
                kind,
                label,
                name,
                hidden,
            }
        })
        .collect()
}

/// A Python identifier from a label: lower case, runs of anything else made one
/// `_`; `None` if nothing is left or it starts with a digit.
fn identifier(label: &str) -> Option<String> {
    let mut name = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_end_matches('_').to_owned();
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// The JSON schema of the values a slot takes and gives.
pub(crate) fn json_schema(kind: &ComponentKind) -> Value {
    match kind {
        ComponentKind::Markdown
        | ComponentKind::Textbox { .. }
        | ComponentKind::Button { .. }
        | ComponentKind::Html => json!({ "type": "string" }),
        ComponentKind::Slider {
            minimum, maximum, ..
        } => json!({ "type": "number", "minimum": minimum, "maximum": maximum }),
        ComponentKind::Timer { .. } => json!({ "type": "number" }),
        ComponentKind::Radio { choices } => {
            json!({ "anyOf": [{ "type": "string", "enum": choices }, { "type": "null" }] })
        }
        ComponentKind::Number {
            minimum, maximum, ..
        } => {
            let mut schema = json!({ "type": "number" });
            if let Some(minimum) = minimum {
                schema["minimum"] = json!(minimum);
            }
            if let Some(maximum) = maximum {
                schema["maximum"] = json!(maximum);
            }
            schema
        }
        ComponentKind::Checkbox => json!({ "type": "boolean" }),
        ComponentKind::CheckboxGroup { choices } => {
            json!({ "type": "array", "items": { "type": "string", "enum": choices } })
        }
        ComponentKind::Dropdown {
            choices,
            multiselect: true,
        } => {
            json!({ "type": "array", "items": { "type": "string", "enum": choices } })
        }
        ComponentKind::Dropdown { choices, .. } => {
            json!({ "anyOf": [{ "type": "string", "enum": choices }, { "type": "null" }] })
        }
        ComponentKind::Json => json!({}),
        ComponentKind::Chatbot => crate::components::chatbot::json_schema(),
        ComponentKind::State | ComponentKind::Global | ComponentKind::BrowserState(_) => {
            json!({ "type": "null" })
        }
    }
}

/// The Python type a Gradio client shows for a slot.
pub(crate) fn python_type(kind: &ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Markdown
        | ComponentKind::Textbox { .. }
        | ComponentKind::Button { .. }
        | ComponentKind::Html => "str",
        ComponentKind::Number { .. }
        | ComponentKind::Slider { .. }
        | ComponentKind::Timer { .. } => "float",
        ComponentKind::Checkbox => "bool",
        ComponentKind::CheckboxGroup { .. }
        | ComponentKind::Dropdown {
            multiselect: true, ..
        } => "list[str]",
        ComponentKind::Dropdown { .. } | ComponentKind::Radio { .. } => "str | None",
        ComponentKind::Json => "Any",
        ComponentKind::Chatbot => "list[dict]",
        ComponentKind::State | ComponentKind::Global | ComponentKind::BrowserState(_) => "None",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_are_unique_whatever_the_labels() {
        use crate::components::{Button, Textbox};
        let mut app = crate::Blocks::new("names", "Names");
        let go = app.add(Button::new("Go"));
        let a = app.add(Textbox::new().label("X"));
        let b = app.add(Textbox::new().label("X"));
        let c = app.add(Textbox::new().label("x_1"));
        let d = app.add(Textbox::new());
        app.click(
            go,
            (a, b, c, d),
            (),
            |_: String, _: String, _: String, _: String| (),
        )
        .api_name("go");
        let app = app.build().expect("it builds");
        let endpoints = Endpoint::all(&app);
        let names: Vec<&str> = endpoints[0].parameters().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["x", "x_1", "x_1_2", "textbox"]);
    }

    #[test]
    fn labels_become_python_identifiers() {
        assert_eq!(identifier("Cart Size").as_deref(), Some("cart_size"));
        assert_eq!(identifier("  Items! ").as_deref(), Some("items"));
        assert_eq!(identifier("1st"), None);
        assert_eq!(identifier("—"), None);
    }
}
