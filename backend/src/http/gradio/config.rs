//! What a Gradio client reads before it calls: the app's config (`/config`) and its
//! API info (`/gradio_api/info`), in the shapes `gradio_client` parses. Both are
//! made once, when the router is built, from the app's [`Endpoint`]s.
//!
//! Only listeners with an `api_name` are listed. A listener's outputs are its own
//! then those of its `.change` cascade (see [`crate::bridges::endpoint`]); slots the
//! server or the browser holds are components of type `state`, which Gradio's
//! clients fill with `None` on the way in and drop on the way out.

use keepsake_shared::config::{AppConfig, ComponentKind};
use serde_json::{Value, json};

use crate::bridges::endpoint::{Endpoint, Slot, json_schema, python_type};

/// The Gradio API level served: `gradio_client` reads its features from it (the
/// info endpoint above 3.36.1, cancellation above 4.29.0).
const GRADIO_VERSION: &str = "5.0.0";
/// Where the API lives under the app's URL.
pub(crate) const API_PREFIX: &str = "/gradio_api";

/// Gradio's name of a component type.
fn gradio_type(kind: &ComponentKind) -> &'static str {
    match kind {
        ComponentKind::Markdown => "markdown",
        ComponentKind::Textbox { .. } => "textbox",
        ComponentKind::Number { .. } => "number",
        ComponentKind::Button { .. } => "button",
        ComponentKind::Checkbox => "checkbox",
        ComponentKind::CheckboxGroup { .. } => "checkboxgroup",
        ComponentKind::Dropdown { .. } => "dropdown",
        ComponentKind::Json => "json",
        ComponentKind::Slider { .. } => "slider",
        ComponentKind::Radio { .. } => "radio",
        ComponentKind::Html => "html",
        ComponentKind::Timer { .. } => "timer",
        ComponentKind::Chatbot => "chatbot",
        ComponentKind::State | ComponentKind::Global | ComponentKind::BrowserState(_) => "state",
    }
}

/// The class name Gradio's API info shows (`Checkboxgroup`).
fn component_name(kind: &ComponentKind) -> String {
    let name = gradio_type(kind);
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The app's config, as `GET {app}/config` answers it.
pub(crate) fn config(app: &AppConfig, endpoints: &[Endpoint]) -> Value {
    let mut components: Vec<Value> = Vec::new();
    let mut listed: Vec<u32> = Vec::new();
    let slots = endpoints
        .iter()
        .flat_map(|endpoint| endpoint.inputs.iter().chain(&endpoint.outputs));
    for slot in slots {
        if listed.contains(&slot.component.0) {
            continue;
        }
        listed.push(slot.component.0);
        components.push(json!({
            "id": slot.component.0,
            "type": gradio_type(&slot.kind),
            "props": { "label": slot.label, "value": if slot.hidden { Value::Null } else { slot.default.clone() } },
            "skip_api": slot.hidden,
            "api_info": json_schema(&slot.kind),
        }));
    }
    let listeners: Vec<Value> = endpoints
        .iter()
        .map(|endpoint| {
            let ids = |slots: &[Slot]| slots.iter().map(|s| s.component.0).collect::<Vec<_>>();
            json!({
                "id": endpoint.listener.0,
                "targets": [],
                "inputs": ids(&endpoint.inputs),
                "outputs": ids(&endpoint.outputs),
                "api_name": endpoint.api_name,
                "api_description": endpoint.description,
                "api_visibility": "public",
                "backend_fn": true,
                "queue": true,
                "cancels": [],
                "types": { "generator": false, "cancel": false },
            })
        })
        .collect();
    json!({
        "version": GRADIO_VERSION,
        "keepsake_version": env!("CARGO_PKG_VERSION"),
        "mode": "blocks",
        "title": app.title,
        "protocol": "sse_v3",
        "api_prefix": API_PREFIX,
        // Sessions live for the server's retention after their last call; no
        // heartbeat stream is needed to keep them.
        "connect_heartbeat": false,
        "components": components,
        "dependencies": listeners,
    })
}

/// The API info, as `GET {app}/gradio_api/info` answers it.
pub(crate) fn info(endpoints: &[Endpoint]) -> Value {
    let named: serde_json::Map<String, Value> = endpoints
        .iter()
        .map(|endpoint| {
            let parameters: Vec<Value> = endpoint
                .parameters()
                .map(|slot| {
                    json!({
                        "label": slot.label,
                        "parameter_name": slot.name,
                        "parameter_has_default": true,
                        "parameter_default": slot.default,
                        "type": json_schema(&slot.kind),
                        "python_type": { "type": python_type(&slot.kind), "description": "" },
                        "component": component_name(&slot.kind),
                        "example_input": slot.default,
                    })
                })
                .collect();
            let returns: Vec<Value> = endpoint
                .returns()
                .map(|slot| {
                    json!({
                        "label": slot.label,
                        "type": json_schema(&slot.kind),
                        "python_type": { "type": python_type(&slot.kind), "description": "" },
                        "component": component_name(&slot.kind),
                    })
                })
                .collect();
            (
                format!("/{}", endpoint.api_name),
                json!({
                    "parameters": parameters,
                    "returns": returns,
                    "description": endpoint.description,
                    "api_visibility": "public",
                }),
            )
        })
        .collect();
    json!({ "named_endpoints": named, "unnamed_endpoints": {} })
}
