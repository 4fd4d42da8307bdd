//! A radio group: one native radio button per choice (arrow keys move between
//! them), in a `<fieldset>` named by its `<legend>`.

use leptos::prelude::*;
use serde_json::Value;

use super::{Cx, choices_view, disabled, dom_id};

pub(super) fn radio_view(cx: Cx) -> AnyView {
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
                            type="radio"
                            name=dom_id(id)
                            value=choice.clone()
                            disabled=disabled(interactive)
                            prop:checked=move || value.with(|v| v.as_str() == Some(for_checked.as_str()))
                            on:change=move |_| page.user_input(id, Value::String(for_change.clone()))
                        />
                        {choice}
                    </label>
                }
            })
            .collect_view()
    };
    choices_view(cx, "Choose one", options)
}
