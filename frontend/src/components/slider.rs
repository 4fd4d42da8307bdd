//! A slider: a real `<input type="range">` named by its label, with its value shown
//! beside it.

use leptos::prelude::*;

use super::{
    Cx, disabled, dom_id, fallback_name, info_view, label_view, number_attribute, on_number_input,
    shown_value,
};

pub(super) fn slider_view(cx: Cx, minimum: f64, maximum: f64, step: f64) -> AnyView {
    let Cx {
        id, value, page, ..
    } = cx;
    let interactive = cx.interactive();
    let aria_label = fallback_name(cx, "Slider".to_owned());
    // The browser's own number, already within the bounds and on a step.
    let on_input = on_number_input(page, id);
    let fmt = number_attribute;
    view! {
        {label_view(cx)}
        {info_view(cx)}
        <div class="slider-row">
            <input
                type="range"
                id=dom_id(id)
                min=fmt(minimum)
                max=fmt(maximum)
                step=fmt(step)
                aria-label=aria_label
                aria-describedby=cx.described_by()
                disabled=disabled(interactive)
                prop:value=shown_value(value)
                on:input=on_input
            />
            // Seen beside the slider; assistive technology reads the slider's own
            // value, so this copy is hidden from it (no double announcement).
            <output for=dom_id(id) aria-hidden="true">{shown_value(value)}</output>
        </div>
    }
    .into_any()
}
