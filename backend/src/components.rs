//! The components an app author can place on a page, with their value types.
//!
//! Each component is a builder that turns into a [`ComponentKind`] and
//! [`ComponentProps`]; its `Value` type is what handlers receive and return for it, so
//! wiring a `Number` to a handler that takes a `String` does not compile.
//!
//! [`Slider`], [`Radio`], [`Html`] and [`Timer`] (with its tick listener,
//! [`crate::Blocks::tick`]) each live in a file of their own.

use keepsake_shared::config::{ButtonVariant, ComponentKind, ComponentProps, TextboxType};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// A visible component.
pub trait Component: 'static {
    /// The Rust type of its value, as handlers see it.
    type Value: Serialize + DeserializeOwned + Send + 'static;
    /// Its wire description.
    fn into_config(self) -> (ComponentKind, ComponentProps);
}

/// Checks a value sent by a client against the component's kind before it is
/// decoded: the shape and, for choice components, membership.
pub(crate) fn validate_input(kind: &ComponentKind, value: &Value) -> Result<(), String> {
    let choices_check = |choices: &[String], picked: &Value| -> Result<(), String> {
        match picked {
            Value::String(s) if choices.iter().any(|c| c == s) => Ok(()),
            Value::String(s) => Err(format!("{s:?} is not one of the choices")),
            _ => Err("expected a string choice".to_owned()),
        }
    };
    match kind {
        ComponentKind::Markdown
        | ComponentKind::Textbox { .. }
        | ComponentKind::Button { .. }
        | ComponentKind::Html => value
            .is_string()
            .then_some(())
            .ok_or_else(|| "expected a string".to_owned()),
        ComponentKind::Number { .. } => value
            .is_number()
            .then_some(())
            .ok_or_else(|| "expected a number".to_owned()),
        ComponentKind::Checkbox => value
            .is_boolean()
            .then_some(())
            .ok_or_else(|| "expected true or false".to_owned()),
        ComponentKind::CheckboxGroup { choices }
        | ComponentKind::Dropdown {
            choices,
            multiselect: true,
        } => match value {
            Value::Array(items) => items
                .iter()
                .try_for_each(|item| choices_check(choices, item)),
            _ => Err("expected a list of choices".to_owned()),
        },
        ComponentKind::Dropdown {
            choices,
            multiselect: false,
        }
        | ComponentKind::Radio { choices } => match value {
            Value::Null => Ok(()),
            other => choices_check(choices, other),
        },
        ComponentKind::Json => Ok(()),
        ComponentKind::Slider {
            minimum, maximum, ..
        } => slider::check_value(*minimum, *maximum, value),
        ComponentKind::Timer { .. } => value
            .is_number()
            .then_some(())
            .ok_or_else(|| "expected a number of seconds".to_owned()),
        ComponentKind::Chatbot => chatbot::validate(value),
        // Never decoded here: the server ignores what a client sends for states and
        // globals, and opens browser states itself (`engine::browser`).
        ComponentKind::State | ComponentKind::Global | ComponentKind::BrowserState(_) => Ok(()),
    }
}

/// Checks what a component was declared with (its settings and initial value), for
/// [`crate::Blocks::build`]; kinds whose builder cannot go wrong pass.
pub(crate) fn check_declared(kind: &ComponentKind, value: &Value) -> Result<(), String> {
    match kind {
        ComponentKind::Slider {
            minimum,
            maximum,
            step,
        } => slider::check_config(*minimum, *maximum, *step, value),
        ComponentKind::Radio { .. } => validate_input(kind, value)
            .map_err(|problem| format!("a Radio's initial value: {problem}")),
        ComponentKind::Timer { .. } => timer::check_interval(value),
        _ => Ok(()),
    }
}

/// Default properties with an initial value.
fn with_value(value: Value) -> ComponentProps {
    ComponentProps {
        value,
        ..ComponentProps::default()
    }
}

macro_rules! common_props {
    () => {
        /// The label shown above the component (also its accessible name).
        pub fn label(mut self, label: impl Into<String>) -> Self {
            self.props.label = Some(label.into());
            self
        }
        /// Help text shown with the label.
        pub fn info(mut self, info: impl Into<String>) -> Self {
            self.props.info = Some(info.into());
            self
        }
        /// Whether it is drawn (default: `true`). A hidden component keeps its value
        /// and still works as a listener's input or output; an output can show it
        /// again with [`crate::Update::visible`].
        pub fn visible(mut self, visible: bool) -> Self {
            self.props.visible = visible;
            self
        }
        /// Whether the user may edit it (default: decided by the client from wiring).
        pub fn interactive(mut self, interactive: bool) -> Self {
            self.props.interactive = Some(interactive);
            self
        }
        /// What names it across re-renders of a region ([`crate::Blocks::render`]):
        /// made from the item it shows, its listeners stay that item's. Unused
        /// outside a region.
        pub fn key(mut self, key: impl Into<String>) -> Self {
            self.props.key = Some(key.into());
            self
        }
    };
}

mod html;
mod radio;
mod rendering;
mod slider;
mod timer;

pub use crate::markdown::to_html as markdown_to_html;
pub use html::{Html, sanitise as sanitise_html};
pub use radio::Radio;
pub(crate) use rendering::{Rendering, render_props, rendered, rendered_item, renders_items};
pub use slider::Slider;
pub use timer::Timer;
pub(crate) use timer::check_rate as check_timer_rate;

pub(crate) mod chatbot;
pub use chatbot::Chatbot;
pub use keepsake_shared::config::{ChatMessage, ChatRole};

/// Markdown text.
#[derive(Debug, Clone, Default)]
pub struct Markdown {
    props: ComponentProps,
}

impl Markdown {
    /// Markdown showing `text`: CommonMark with GitHub's tables, strikethrough and
    /// task lists; raw HTML is shown as text. The server renders it to sanitised HTML
    /// ([`crate::components::markdown_to_html`]), as it does every value an output gives it.
    pub fn new(text: impl Into<String>) -> Self {
        let props = with_value(Value::String(text.into()));
        Markdown { props }
    }
    common_props!();
}

impl Component for Markdown {
    type Value = String;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (ComponentKind::Markdown, self.props)
    }
}

/// A text input (single line, multi-line, password or e-mail).
#[derive(Debug, Clone)]
pub struct Textbox {
    props: ComponentProps,
    input_type: TextboxType,
    lines: u32,
    placeholder: Option<String>,
}

impl Default for Textbox {
    fn default() -> Self {
        Textbox::new()
    }
}

impl Textbox {
    /// An empty single-line text box.
    pub fn new() -> Self {
        let props = with_value(Value::String(String::new()));
        Textbox {
            props,
            input_type: TextboxType::Text,
            lines: 1,
            placeholder: None,
        }
    }
    /// The text it starts with (default: empty).
    pub fn value(mut self, value: impl Into<String>) -> Self {
        self.props.value = Value::String(value.into());
        self
    }
    /// Hides what is typed.
    pub fn password(mut self) -> Self {
        self.input_type = TextboxType::Password;
        self
    }
    /// Takes an e-mail address: the browser checks its form and offers an address
    /// keyboard (the server does not check it).
    pub fn email(mut self) -> Self {
        self.input_type = TextboxType::Email;
        self
    }
    /// Visible lines (default 1; 0 counts as 1). More than one makes a text area, in
    /// which Enter starts a new line unless the app listens for its submit.
    pub fn lines(mut self, lines: u32) -> Self {
        self.lines = lines.max(1);
        self
    }
    /// Greyed hint shown while the box is empty; not a value.
    pub fn placeholder(mut self, placeholder: impl Into<String>) -> Self {
        self.placeholder = Some(placeholder.into());
        self
    }
    common_props!();
}

impl Component for Textbox {
    type Value = String;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Textbox {
            input_type: self.input_type,
            lines: self.lines,
            placeholder: self.placeholder,
        };
        (kind, self.props)
    }
}

/// A number input.
#[derive(Debug, Clone)]
pub struct Number {
    props: ComponentProps,
    minimum: Option<f64>,
    maximum: Option<f64>,
    step: Option<f64>,
}

impl Default for Number {
    fn default() -> Self {
        Number::new()
    }
}

impl Number {
    /// A number input starting at 0, with no bounds and any step.
    pub fn new() -> Self {
        let props = with_value(Value::from(0));
        Number {
            props,
            minimum: None,
            maximum: None,
            step: None,
        }
    }
    /// The number it starts with (default: 0).
    pub fn value(mut self, value: f64) -> Self {
        self.props.value = Value::from(value);
        self
    }
    /// Lowest value the input offers. A hint to the browser: handlers must still
    /// expect any number, as API callers are not held to it.
    pub fn minimum(mut self, minimum: f64) -> Self {
        self.minimum = Some(minimum);
        self
    }
    /// Highest value the input offers; like [`Number::minimum`], not enforced by
    /// the server.
    pub fn maximum(mut self, maximum: f64) -> Self {
        self.maximum = Some(maximum);
        self
    }
    /// Increment of the input's arrows (the HTML `step`; default: any value).
    pub fn step(mut self, step: f64) -> Self {
        self.step = Some(step);
        self
    }
    common_props!();
}

impl Component for Number {
    type Value = f64;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Number {
            minimum: self.minimum,
            maximum: self.maximum,
            step: self.step,
        };
        (kind, self.props)
    }
}

/// A button; its value is its caption.
#[derive(Debug, Clone)]
pub struct Button {
    props: ComponentProps,
    variant: ButtonVariant,
}

impl Button {
    /// A button showing `caption` (also its value), drawn as a secondary action.
    pub fn new(caption: impl Into<String>) -> Self {
        let props = with_value(Value::String(caption.into()));
        Button {
            props,
            variant: ButtonVariant::Secondary,
        }
    }
    /// Draws it as the page's main action, in the accent colour.
    pub fn primary(mut self) -> Self {
        self.variant = ButtonVariant::Primary;
        self
    }
    /// Draws it as a destructive or cancelling action, in the error colour.
    pub fn stop(mut self) -> Self {
        self.variant = ButtonVariant::Stop;
        self
    }
    common_props!();
}

impl Component for Button {
    type Value = String;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (
            ComponentKind::Button {
                variant: self.variant,
            },
            self.props,
        )
    }
}

/// A single checkbox.
#[derive(Debug, Clone)]
pub struct Checkbox {
    props: ComponentProps,
}

impl Default for Checkbox {
    fn default() -> Self {
        Checkbox::new()
    }
}

impl Checkbox {
    /// An unchecked checkbox (give it a [`Checkbox::label`] to say what it means).
    pub fn new() -> Self {
        let props = with_value(Value::Bool(false));
        Checkbox { props }
    }
    /// Whether it starts checked (default: `false`).
    pub fn value(mut self, checked: bool) -> Self {
        self.props.value = Value::Bool(checked);
        self
    }
    common_props!();
}

impl Component for Checkbox {
    type Value = bool;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (ComponentKind::Checkbox, self.props)
    }
}

fn choice_list<I, S>(choices: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    choices.into_iter().map(Into::into).collect()
}

/// A group of checkboxes; its value is the list of checked choices.
#[derive(Debug, Clone)]
pub struct CheckboxGroup {
    props: ComponentProps,
    choices: Vec<String>,
}

impl CheckboxGroup {
    /// One checkbox per choice, in this order, none checked. A client may only send
    /// these choices.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(choices: I) -> Self {
        let props = with_value(Value::Array(Vec::new()));
        CheckboxGroup {
            props,
            choices: choice_list(choices),
        }
    }
    /// The choices checked at first (default: none).
    pub fn value<I: IntoIterator<Item = S>, S: Into<String>>(mut self, checked: I) -> Self {
        self.props.value = Value::from(choice_list(checked));
        self
    }
    common_props!();
}

impl Component for CheckboxGroup {
    type Value = Vec<String>;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (
            ComponentKind::CheckboxGroup {
                choices: self.choices,
            },
            self.props,
        )
    }
}

/// A single-choice dropdown; `None` when nothing is selected.
#[derive(Debug, Clone)]
pub struct Dropdown {
    props: ComponentProps,
    choices: Vec<String>,
}

impl Dropdown {
    /// A dropdown offering `choices`, in this order, with nothing selected. A client
    /// may only send one of them, or null.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(choices: I) -> Self {
        Dropdown {
            props: ComponentProps::default(),
            choices: choice_list(choices),
        }
    }
    /// The choice selected at first (default: none).
    pub fn value(mut self, selected: impl Into<String>) -> Self {
        self.props.value = Value::String(selected.into());
        self
    }
    common_props!();
}

impl Component for Dropdown {
    type Value = Option<String>;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Dropdown {
            choices: self.choices,
            multiselect: false,
        };
        (kind, self.props)
    }
}

/// A dropdown where several choices may be selected.
#[derive(Debug, Clone)]
pub struct MultiDropdown {
    props: ComponentProps,
    choices: Vec<String>,
}

impl MultiDropdown {
    /// A dropdown offering `choices`, in this order, with nothing selected. A client
    /// may only send a list of them.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(choices: I) -> Self {
        let props = with_value(Value::Array(Vec::new()));
        MultiDropdown {
            props,
            choices: choice_list(choices),
        }
    }
    common_props!();
}

impl Component for MultiDropdown {
    type Value = Vec<String>;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Dropdown {
            choices: self.choices,
            multiselect: true,
        };
        (kind, self.props)
    }
}

/// Arbitrary JSON, displayed read-only.
#[derive(Debug, Clone, Default)]
pub struct Json {
    props: ComponentProps,
}

impl Json {
    /// A JSON view showing null.
    pub fn new() -> Self {
        Json::default()
    }
    /// The JSON it shows at first.
    pub fn value(mut self, value: Value) -> Self {
        self.props.value = value;
        self
    }
    common_props!();
}

impl Component for Json {
    type Value = Value;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (ComponentKind::Json, self.props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_are_checked_against_the_kind() {
        let group = CheckboxGroup::new(["Milk", "Water"]).into_config().0;
        assert!(validate_input(&group, &json!(["Milk"])).is_ok());
        assert!(validate_input(&group, &json!(["Beer"])).is_err());
        assert!(validate_input(&group, &json!("Milk")).is_err());
        let number = Number::new().into_config().0;
        assert!(validate_input(&number, &json!(1.5)).is_ok());
        assert!(validate_input(&number, &json!("1.5")).is_err());
        let dropdown = Dropdown::new(["a"]).into_config().0;
        assert!(validate_input(&dropdown, &Value::Null).is_ok());
        assert!(validate_input(&dropdown, &json!("b")).is_err());
        let checkbox = Checkbox::new().into_config().0;
        assert!(validate_input(&checkbox, &json!(0)).is_err());
    }
}
