//! [`Slider`]: a number on a bounded scale, which the server holds to its bounds.

use keepsake_shared::config::{ComponentKind, ComponentProps};
use serde_json::Value;

use super::{Component, with_value};

/// A number chosen on a scale from a minimum to a maximum (Gradio's `gr.Slider`),
/// drawn as a real `<input type="range">` named by its label.
///
/// Unlike [`super::Number`]'s bounds, a slider's are enforced: a value a client sends
/// outside `[minimum, maximum]` (or that is no number) is refused with
/// `invalid_input` before anything runs, so a handler only ever sees values in range.
/// [`crate::Blocks::build`] refuses a slider whose minimum is not below its maximum,
/// whose step is not above 0, or whose initial value is out of range.
///
/// ```
/// use keepsake::Blocks;
/// use keepsake::components::{Button, Slider, Textbox};
///
/// let mut app = Blocks::new("volume", "Volume");
/// let volume = app.add(Slider::new(0.0, 10.0).step(0.5).value(5.0).label("Volume"));
/// let set = app.add(Button::new("Set"));
/// let shown = app.add(Textbox::new().label("Level"));
/// // A Slider's value is an f64 between its bounds.
/// app.click(set, volume, shown, |level: f64| format!("{level} of 10"));
/// app.build()?;
///
/// // Bounds the wrong way round are a build error, not a panic.
/// let mut bad = Blocks::new("bad", "Bad");
/// bad.add(Slider::new(10.0, 0.0));
/// assert!(bad.build().is_err());
/// # Ok::<(), keepsake::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Slider {
    props: ComponentProps,
    minimum: f64,
    maximum: f64,
    step: f64,
}

impl Slider {
    /// A slider from `minimum` to `maximum` (both included), in steps of 1, starting
    /// at `minimum`.
    pub fn new(minimum: f64, maximum: f64) -> Self {
        Slider {
            props: with_value(Value::from(minimum)),
            minimum,
            maximum,
            step: 1.0,
        }
    }
    /// The increment of the scale (default 1; the HTML `step`). A hint to the
    /// browser: the server checks the bounds only.
    pub fn step(mut self, step: f64) -> Self {
        self.step = step;
        self
    }
    /// The value it starts at (default: the minimum); within the bounds.
    pub fn value(mut self, value: f64) -> Self {
        self.props.value = Value::from(value);
        self
    }
    common_props!();
}

impl Component for Slider {
    type Value = f64;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        let kind = ComponentKind::Slider {
            minimum: self.minimum,
            maximum: self.maximum,
            step: self.step,
        };
        (kind, self.props)
    }
}

/// A value a client sent: a number within the bounds.
pub(super) fn check_value(minimum: f64, maximum: f64, value: &Value) -> Result<(), String> {
    let number = value
        .as_f64()
        .ok_or_else(|| "expected a number".to_owned())?;
    if (minimum..=maximum).contains(&number) {
        Ok(())
    } else {
        Err(format!(
            "{number} is outside the slider's range {minimum} to {maximum}"
        ))
    }
}

/// The slider as declared: finite bounds in order, a positive step and an initial
/// value in range.
pub(super) fn check_config(
    minimum: f64,
    maximum: f64,
    step: f64,
    value: &Value,
) -> Result<(), String> {
    if !(minimum.is_finite() && maximum.is_finite() && minimum < maximum) {
        return Err(format!(
            "a Slider's minimum ({minimum}) must be below its maximum ({maximum}), both finite"
        ));
    }
    if !(step.is_finite() && step > 0.0) {
        return Err(format!("a Slider's step ({step}) must be above 0"));
    }
    check_value(minimum, maximum, value).map_err(|problem| format!("its initial value: {problem}"))
}
