//! [`Radio`]: one choice among several, all shown.

use keepsake_shared::config::{ComponentKind, ComponentProps};
use serde_json::Value;

use super::{Component, choice_list};

/// One choice among several, all shown at once (Gradio's `gr.Radio`), drawn as a
/// group of radio buttons under its label (a `<fieldset>` and its `<legend>`). Its
/// value is the picked choice, `None` while nothing is picked.
///
/// As with [`super::Dropdown`], the server refuses (`invalid_input`, before anything
/// runs) a value that is not one of the choices, and [`crate::Blocks::build`] an
/// initial value that is not one.
///
/// ```
/// use keepsake::Blocks;
/// use keepsake::components::{Button, Radio, Textbox};
///
/// let mut app = Blocks::new("sizes", "Sizes");
/// let size = app.add(Radio::new(["Small", "Medium", "Large"]).value("Medium").label("Size"));
/// let order = app.add(Button::new("Order"));
/// let said = app.add(Textbox::new().label("Order"));
/// app.click(order, size, said, |size: Option<String>| match size {
///     Some(size) => format!("One {size} coffee."),
///     None => "Pick a size first.".to_owned(),
/// });
/// app.build()?;
/// # Ok::<(), keepsake::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Radio {
    props: ComponentProps,
    choices: Vec<String>,
}

impl Radio {
    /// Radio buttons for `choices`, in this order, none picked. A client may only
    /// send one of them, or null.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(choices: I) -> Self {
        Radio {
            props: ComponentProps::default(),
            choices: choice_list(choices),
        }
    }
    /// The choice picked at first (default: none); one of the choices.
    pub fn value(mut self, picked: impl Into<String>) -> Self {
        self.props.value = Value::String(picked.into());
        self
    }
    common_props!();
}

impl Component for Radio {
    type Value = Option<String>;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Radio {
            choices: self.choices,
        };
        (kind, self.props)
    }
}
