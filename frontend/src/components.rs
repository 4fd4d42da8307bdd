//! One view per component kind (the layout around them is [`crate::layout`]).
//!
//! Every form control has an accessible name (a `<label for>` or an `aria-label`) so
//! that people using assistive technology, and tests, can find it by its label. Views
//! only read the controller's signals and report the user's actions to it.

use std::rc::Rc;

use keepsake_shared::ComponentId;
use keepsake_shared::config::{ButtonVariant, ComponentKind, EventKind, TextboxType};
use leptos::prelude::*;
use serde_json::{Number, Value};
use wasm_bindgen::JsCast as _;

use crate::controller::{Controller, PageHandle, Props};

mod chatbot;
mod html;
mod radio;
mod slider;

/// DOM id of a component's control.
pub fn dom_id(id: ComponentId) -> String {
    format!("ks-c{}", id.0)
}

/// The text a value shows in a text-like control.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        Value::Number(number) => number_text(number),
        other => other.to_string(),
    }
}

/// Numbers as people write them: `2`, not `2.0`.
fn number_text(number: &Number) -> String {
    if let Some(int) = number.as_i64() {
        return int.to_string();
    }
    match number.as_f64() {
        // JavaScript's own shortest round-trip formatting (`2`, `0.1`, `1e+21`): it
        // keeps core's float formatter, 13 KB of wasm, out of the client.
        Some(float) => js_sys::Number::from(float)
            .to_string_with_radix(10)
            .map(String::from)
            .unwrap_or_else(|_| number.to_string()),
        None => number.to_string(),
    }
}

/// What every component view needs.
#[derive(Clone, Copy)]
struct Cx {
    id: ComponentId,
    value: RwSignal<Value>,
    props: RwSignal<Props>,
    page: PageHandle,
}

impl Cx {
    fn label(&self) -> Memo<Option<String>> {
        let props = self.props;
        Memo::new(move |_| props.with(|p| p.label.clone()))
    }

    fn interactive(&self) -> Memo<bool> {
        let props = self.props;
        Memo::new(move |_| props.with(|p| p.interactive))
    }

    fn choices(&self) -> Memo<Vec<String>> {
        let props = self.props;
        Memo::new(move |_| props.with(|p| p.choices.clone()))
    }

    fn info(&self) -> Option<String> {
        self.props.with_untracked(|p| p.info.clone())
    }

    fn info_id(&self) -> String {
        format!("{}-info", dom_id(self.id))
    }

    /// `aria-describedby` value when the component has help text.
    fn described_by(&self) -> Option<String> {
        self.info().map(|_| self.info_id())
    }
}

/// One component, by id; nothing for ids that are not rendered.
pub fn component_view(controller: &Rc<Controller>, page: PageHandle, id: ComponentId) -> AnyView {
    let (Some(component), Some(value), Some(props)) = (
        controller.component(id),
        controller.value_signal(id),
        controller.props_signal(id),
    ) else {
        return ().into_any();
    };
    let cx = Cx {
        id,
        value,
        props,
        page,
    };
    let (class, body) = match &component.kind {
        ComponentKind::Markdown => {
            let html = controller.html_signal(id).unwrap_or_default();
            ("markdown-block", markdown_view(html))
        }
        ComponentKind::Textbox {
            input_type,
            lines,
            placeholder,
        } => {
            let submits = controller.has_listeners(id, EventKind::Submit);
            (
                "textbox",
                textbox_view(cx, *input_type, *lines, placeholder.clone(), submits),
            )
        }
        ComponentKind::Number {
            minimum,
            maximum,
            step,
        } => ("number", number_view(cx, *minimum, *maximum, *step)),
        ComponentKind::Button { variant } => ("button", button_view(cx, *variant)),
        ComponentKind::Checkbox => ("checkbox", checkbox_view(cx)),
        ComponentKind::CheckboxGroup { .. } => ("checkbox-group", checkbox_group_view(cx)),
        ComponentKind::Dropdown { multiselect, .. } => {
            ("dropdown", dropdown_view(cx, *multiselect))
        }
        ComponentKind::Json => ("json", json_view(cx)),
        ComponentKind::Slider {
            minimum,
            maximum,
            step,
        } => ("slider", slider::slider_view(cx, *minimum, *maximum, *step)),
        ComponentKind::Radio { .. } => ("radio", radio::radio_view(cx)),
        ComponentKind::Html => {
            let html = controller.html_signal(id).unwrap_or_default();
            ("html-block", html::html_view(html))
        }
        // Timers are not drawn: their clocks are `crate::timer`'s.
        ComponentKind::Chatbot => {
            let items = controller.items_signal(id).unwrap_or_default();
            ("chatbot-block", chatbot::chatbot_view(cx, items))
        }
        ComponentKind::Timer { .. }
        | ComponentKind::State
        | ComponentKind::Global
        | ComponentKind::BrowserState(_) => {
            return ().into_any();
        }
    };
    view! {
        <div
            class=format!("component {class}")
            data-testid=format!("component-{}", id.0)
            hidden=move || !props.with(|p| p.visible)
        >
            {body}
        </div>
    }
    .into_any()
}

fn label_view(cx: Cx) -> impl IntoView {
    let label = cx.label();
    let target = dom_id(cx.id);
    move || {
        label
            .get()
            .map(|text| view! { <label class="label" for=target.clone()>{text}</label> })
    }
}

fn info_view(cx: Cx) -> impl IntoView {
    let id = cx.info_id();
    cx.info()
        .map(|text| view! { <p class="info" id=id>{text}</p> })
}

/// Accessible name for a control without a visible label.
fn fallback_name(cx: Cx, fallback: String) -> impl Fn() -> Option<String> + Send + Sync + 'static {
    let label = cx.label();
    move || label.with(|l| l.is_none().then(|| fallback.clone()))
}

// The helpers below give every view the same closure type for the same reactive
// attribute or text: each closure type has its own copy of Leptos' rendering code in
// the wasm, so one shared type instead of one per view keeps a single copy.

/// A control's `disabled`: while the component is not interactive.
fn disabled(interactive: Memo<bool>) -> impl Fn() -> bool + Copy + Send + Sync + 'static {
    move || !interactive.get()
}

/// The value as a text-like control shows it.
fn shown_value(value: RwSignal<Value>) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    move || value.with(value_text)
}

/// The label, or `fallback` without one (a checkbox's text, a fieldset's legend).
fn label_or(
    label: Memo<Option<String>>,
    fallback: &'static str,
) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    move || label.get().unwrap_or_else(|| fallback.to_owned())
}

/// A read-only block's label (JSON, chat), as a heading its block names itself by
/// (`aria-labelledby`, see [`labelled_by`]); nothing without a label.
fn heading_view(cx: Cx, label: Memo<Option<String>>) -> impl IntoView {
    let heading_id = format!("{}-label", dom_id(cx.id));
    move || {
        label
            .get()
            .map(|text| view! { <div class="label" id=heading_id.clone()>{text}</div> })
    }
}

/// The `aria-labelledby` of a block with a [`heading_view`]: its heading, when it has
/// a label.
fn labelled_by(
    cx: Cx,
    label: Memo<Option<String>>,
) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    let id = cx.id;
    move || label.with(|l| l.as_ref().map(|_| format!("{}-label", dom_id(id))))
}

/// The `aria-label` of a block with a [`heading_view`]: `fallback` without a label.
fn unlabelled_name(
    label: Memo<Option<String>>,
    fallback: &'static str,
) -> impl Fn() -> Option<String> + Copy + Send + Sync + 'static {
    move || label.with(|l| l.is_none().then(|| fallback.to_owned()))
}

/// The HTML the server rendered from the Markdown (and sanitised: see the `keepsake`
/// crate's `markdown` module); the client has no Markdown parser.
fn markdown_view(html: RwSignal<String>) -> AnyView {
    view! { <div class="prose" inner_html=move || html.get()></div> }.into_any()
}

fn textbox_view(
    cx: Cx,
    input_type: TextboxType,
    lines: u32,
    placeholder: Option<String>,
    submits: bool,
) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let aria_label = fallback_name(cx, placeholder.clone().unwrap_or_else(|| "Text".to_owned()));
    let text = shown_value(value);
    let on_input =
        move |event: web_sys::Event| page.user_input(id, Value::String(event_target_value(&event)));
    let control = if lines > 1 {
        let on_keydown = move |event: web_sys::KeyboardEvent| {
            // In a text area Enter makes a new line, unless the app listens for
            // submit; Shift+Enter always makes a new line.
            if submits && event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
                event.prevent_default();
                page.submit(id);
            }
        };
        view! {
            <textarea
                id=dom_id(id)
                rows=lines.to_string()
                placeholder=placeholder
                aria-label=aria_label
                aria-describedby=cx.described_by()
                disabled=disabled(interactive)
                prop:value=text
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
        }
        .into_any()
    } else {
        let kind = match input_type {
            TextboxType::Text => "text",
            TextboxType::Password => "password",
            TextboxType::Email => "email",
        };
        let on_keydown = move |event: web_sys::KeyboardEvent| {
            if event.key() == "Enter" && !event.is_composing() {
                page.submit(id);
            }
        };
        view! {
            <input
                type=kind
                id=dom_id(id)
                placeholder=placeholder
                aria-label=aria_label
                aria-describedby=cx.described_by()
                autocomplete=if input_type == TextboxType::Password { "current-password" } else { "off" }
                disabled=disabled(interactive)
                prop:value=text
                on:input=on_input
                on:keydown=on_keydown
            />
        }
        .into_any()
    };
    view! { {label_view(cx)} {info_view(cx)} {control} }.into_any()
}

fn number_view(cx: Cx, minimum: Option<f64>, maximum: Option<f64>, step: Option<f64>) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let aria_label = fallback_name(cx, "Number".to_owned());
    let on_input = on_number_input(page, id);
    let fmt = number_attribute;
    view! {
        {label_view(cx)}
        {info_view(cx)}
        <input
            type="number"
            id=dom_id(id)
            min=minimum.and_then(fmt)
            max=maximum.and_then(fmt)
            step=step.and_then(fmt).unwrap_or_else(|| "any".to_owned())
            aria-label=aria_label
            aria-describedby=cx.described_by()
            disabled=disabled(interactive)
            prop:value=shown_value(value)
            on:input=on_input
        />
    }
    .into_any()
}

fn button_view(cx: Cx, variant: ButtonVariant) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let label = cx.label();
    let variant = match variant {
        ButtonVariant::Primary => "primary",
        ButtonVariant::Secondary => "secondary",
        ButtonVariant::Stop => "stop",
    };
    // A button's value is its caption (as in Gradio).
    let caption = move || {
        let text = value.with(value_text);
        if text.is_empty() {
            label.get().unwrap_or_else(|| "Run".to_owned())
        } else {
            text
        }
    };
    view! {
        <button
            type="button"
            id=dom_id(id)
            class=format!("btn btn-{variant}")
            // A label names the button for assistive technology when its caption
            // alone does not say enough ("Delete" in a list: "Delete Milk").
            aria-label=move || label.get().filter(|l| *l != value.with(value_text))
            aria-describedby=cx.described_by()
            disabled=disabled(interactive)
            on:click=move |_| page.click(id)
        >
            {caption}
        </button>
        {info_view(cx)}
    }
    .into_any()
}

fn checkbox_view(cx: Cx) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let label = cx.label();
    view! {
        <label class="check">
            <input
                type="checkbox"
                id=dom_id(id)
                aria-describedby=cx.described_by()
                disabled=disabled(interactive)
                prop:checked=move || value.with(|v| v.as_bool().unwrap_or(false))
                on:change=move |event| page.user_input(id, Value::Bool(event_target_checked(&event)))
            />
            {label_or(label, "Checkbox")}
        </label>
        {info_view(cx)}
    }
    .into_any()
}

/// The checked choices of a checkbox group's value.
fn checked(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn checkbox_group_view(cx: Cx) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let choices = cx.choices();
    let options = move || {
        choices
            .get()
            .into_iter()
            .map(|choice| {
                let for_checked = choice.clone();
                let for_change = choice.clone();
                view! {
                    <label class="check">
                        <input
                            type="checkbox"
                            value=choice.clone()
                            disabled=disabled(interactive)
                            prop:checked=move || value.with(|v| checked(v).contains(&for_checked))
                            on:change=move |event| {
                                // Gradio's order: choices in the order they were ticked.
                                let mut selected = value.with_untracked(checked);
                                selected.retain(|c| *c != for_change);
                                if event_target_checked(&event) {
                                    selected.push(for_change.clone());
                                }
                                page.user_input(id, Value::Array(selected.into_iter().map(Value::String).collect()));
                            }
                        />
                        {choice}
                    </label>
                }
            })
            .collect_view()
    };
    choices_view(cx, "Choices", options)
}

fn dropdown_view(cx: Cx, multiselect: bool) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let aria_label = fallback_name(cx, "Choose".to_owned());
    let choices = cx.choices();
    let is_selected = move |choice: &str| {
        value.with(|v| match v {
            Value::String(s) => s == choice,
            Value::Array(items) => items.iter().any(|i| i.as_str() == Some(choice)),
            _ => false,
        })
    };
    let options = move || {
        choices
            .get()
            .into_iter()
            .map(|choice| {
                let for_selected = choice.clone();
                let text = choice.clone();
                view! { <option value=choice prop:selected=move || is_selected(&for_selected)>{text}</option> }
            })
            .collect_view()
    };
    let on_change = move |event: web_sys::Event| {
        let Some(select) = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok())
        else {
            return;
        };
        let new = if multiselect {
            let selected = select.selected_options();
            let values = (0..selected.length())
                .filter_map(|i| selected.item(i))
                .filter_map(|el| el.dyn_into::<web_sys::HtmlOptionElement>().ok())
                .map(|option| Value::String(option.value()))
                .collect();
            Value::Array(values)
        } else {
            match select.value() {
                text if text.is_empty() => Value::Null,
                text => Value::String(text),
            }
        };
        page.user_input(id, new);
    };
    let placeholder = (!multiselect).then(|| {
        view! { <option value="" prop:selected=move || value.with(Value::is_null)>"Select…"</option> }
    });
    view! {
        {label_view(cx)}
        {info_view(cx)}
        <select
            id=dom_id(id)
            multiple=multiselect
            aria-label=aria_label
            aria-describedby=cx.described_by()
            disabled=disabled(interactive)
            on:change=on_change
        >
            {placeholder}
            {options}
        </select>
    }
    .into_any()
}

fn json_view(cx: Cx) -> AnyView {
    let value = cx.value;
    let label = cx.label();
    let text =
        Memo::new(move |_| value.with(|v| serde_json::to_string_pretty(v).unwrap_or_default()));
    view! {
        {heading_view(cx, label)}
        {info_view(cx)}
        <pre
            class="json"
            id=dom_id(cx.id)
            tabindex="0"
            aria-labelledby=labelled_by(cx, label)
            aria-label=unlabelled_name(label, "JSON value")
            aria-describedby=cx.described_by()
        >
            {move || text.get()}
        </pre>
    }
    .into_any()
}

/// Sends the number an `<input>` (number or range) holds as the user's input. The
/// browser has parsed it by the input's own rules (`valueAsNumber`): half-typed
/// numbers ("-", "1e") are NaN, so the last good value stays. (Parsing the text again
/// in Rust would also ship core's float parser.)
fn on_number_input(page: PageHandle, id: ComponentId) -> impl Fn(web_sys::Event) {
    move |event: web_sys::Event| {
        let number = event
            .target()
            .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| Number::from_f64(input.value_as_number()));
        if let Some(number) = number {
            page.user_input(id, Value::Number(number));
        }
    }
}

/// A number as an HTML attribute (`min`, `max`, `step`); `None` for NaN or infinity.
fn number_attribute(n: f64) -> Option<String> {
    Number::from_f64(n).map(|n| number_text(&n))
}

/// A group of choices (checkboxes, radios): a `<fieldset>` named by its `<legend>`
/// (the label, or `fallback`), with the help text and the `options`.
fn choices_view(cx: Cx, fallback: &'static str, options: impl IntoView + 'static) -> AnyView {
    let label = cx.label();
    view! {
        <fieldset id=dom_id(cx.id) aria-describedby=cx.described_by()>
            <legend class="label">{label_or(label, fallback)}</legend>
            {info_view(cx)}
            <div class="choices">{options}</div>
        </fieldset>
    }
    .into_any()
}
