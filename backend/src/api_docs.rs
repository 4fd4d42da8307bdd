//! The page at `/apps/{app}/api`: the app's endpoints and how to call them through
//! every bridge the server opened, with this server's URLs: Keepsake's own API (curl,
//! the native Rust client), and, when open, the Gradio-compatible API (Python's
//! `gradio_client`, JavaScript's `@gradio/client`, curl) and MCP. Rendered on the
//! server from the app's plan (it is documentation, and must work without the
//! browser client).

use std::fmt::Write as _;

use keepsake_shared::api::{self, Endpoint};
use keepsake_shared::config::ComponentKind;
use keepsake_shared::endpoints::EndpointSlot;
use serde_json::{Value, json};

use crate::app::App;
use crate::bridges;

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn slots_table(slots: &[EndpointSlot]) -> String {
    if slots.is_empty() {
        return "<p>None.</p>".to_owned();
    }
    let mut html = String::from(
        "<table><thead><tr><th>#</th><th>Component</th><th>Kind</th><th>JSON value</th></tr></thead><tbody>",
    );
    for (i, slot) in slots.iter().enumerate() {
        let _ = write!(
            html,
            "<tr><td>{i}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&slot.name),
            escape(&slot.kind),
            escape(&slot.value_type)
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The page's only style sheet, inline: its hash is the page's whole `style-src`
/// (`http::csp::api_page_policy`), so nothing else can style it and no script can run
/// on it.
pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:900px;margin:0 auto;padding:24px 16px;line-height:1.5;color:#1f2328}\
pre{background:#f6f8fa;padding:12px;border-radius:6px;overflow:auto}code{font-family:ui-monospace,monospace}\
table{border-collapse:collapse}td,th{border:1px solid #d8dee4;padding:4px 8px;text-align:left}\
section{border-top:1px solid #d8dee4;margin-top:24px}";

/// Which bridges besides Keepsake's own API the server opened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bridges {
    pub(crate) gradio: bool,
    pub(crate) mcp: bool,
}

/// An example value a caller could give a parameter of this kind.
fn example_value(kind: &ComponentKind) -> Value {
    match kind {
        ComponentKind::CheckboxGroup { choices }
        | ComponentKind::Dropdown {
            choices,
            multiselect: true,
        } => {
            json!(choices.iter().take(1).collect::<Vec<_>>())
        }
        ComponentKind::Dropdown { choices, .. } | ComponentKind::Radio { choices } => {
            json!(choices.first())
        }
        ComponentKind::Number { .. } | ComponentKind::Timer { .. } => json!(1),
        ComponentKind::Slider { minimum, .. } => json!(minimum),
        ComponentKind::Checkbox => json!(true),
        ComponentKind::Textbox { .. } | ComponentKind::Markdown | ComponentKind::Button { .. } => {
            json!("text")
        }
        ComponentKind::Html => json!("<p>text</p>"),
        ComponentKind::Json => json!({}),
        ComponentKind::Chatbot => json!([{ "role": "user", "content": "Hello" }]),
        ComponentKind::State | ComponentKind::Global | ComponentKind::BrowserState(_) => {
            Value::Null
        }
    }
}

/// A JSON value written as a Python literal.
fn python(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), python(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// The Gradio bridge's and MCP's examples of `endpoint`, at `app_url` (ending in `/`).
fn bridge_examples(endpoint: &bridges::endpoint::Endpoint, app_url: &str, open: Bridges) -> String {
    let name = &endpoint.api_name;
    let parameters: Vec<(&str, Value)> = endpoint
        .parameters()
        .map(|slot| (slot.name.as_str(), example_value(&slot.kind)))
        .collect();
    let mut html = String::new();
    if open.gradio {
        let python_args: Vec<String> = parameters
            .iter()
            .map(|(n, v)| format!("{n}={}", python(v)))
            .collect();
        let js_args: Vec<String> = parameters
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect();
        let data: Vec<String> = parameters.iter().map(|(_, v)| v.to_string()).collect();
        let _ = write!(
            html,
            "<h3>Python (<code>gradio_client</code>)</h3><pre tabindex=\"0\"><code>from gradio_client import Client\n\n\
             client = Client(\"{app_url}\")  # one session per Client\n\
             result = client.predict({}api_name=\"/{name}\")</code></pre>\
             <h3>JavaScript (<code>@gradio/client</code>)</h3><pre tabindex=\"0\"><code>import {{ Client }} from \"@gradio/client\";\n\n\
             const client = await Client.connect(\"{app_url}\");\n\
             const result = await client.predict(\"/{name}\", {{ {} }});</code></pre>\
             <h3>curl (Gradio's two steps)</h3><pre tabindex=\"0\"><code>curl -X POST {app_url}gradio_api/call/{name} \\\n  \
             -H 'Content-Type: application/json' -d '{{\"data\": [{}]}}'\n\
             # answers {{\"event_id\": \"…\"}}; then:\n\
             curl -N {app_url}gradio_api/call/{name}/$EVENT_ID</code></pre>",
            python_args
                .iter()
                .map(|a| format!("{a}, "))
                .collect::<String>(),
            js_args.join(", "),
            data.join(", "),
        );
    }
    if open.mcp {
        let arguments = Value::Object(
            parameters
                .iter()
                .map(|(n, v)| ((*n).to_owned(), v.clone()))
                .collect(),
        );
        let _ = write!(
            html,
            "<h3>MCP (tool <code>{name}</code>)</h3><pre tabindex=\"0\"><code>{{\"mcpServers\": {{\"{}\": {{\"url\": \"{app_url}mcp\"}}}}}}</code></pre>\
             <pre tabindex=\"0\"><code>from mcp import ClientSession\nfrom mcp.client.streamable_http import streamable_http_client\n\n\
             async with streamable_http_client(\"{app_url}mcp\") as (read, write):\n    \
             async with ClientSession(read, write) as session:  # one Keepsake session\n        \
             await session.initialize()\n        \
             result = await session.call_tool(\"{name}\", {})</code></pre>",
            app_url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default(),
            python(&arguments),
        );
    }
    escape_code(&html)
}

/// Escapes what sits between `<code>` and `</code>` in `html` (the examples are
/// written plainly above, quotes and all).
fn escape_code(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<code>") {
        let (before, after) = rest.split_at(start + "<code>".len());
        out.push_str(before);
        let end = after.find("</code>").unwrap_or(after.len());
        out.push_str(&escape(&after[..end]));
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The whole page for `app`, with URLs relative to `origin` (e.g.
/// `http://127.0.0.1:7860`), showing the bridges `open`.
pub(crate) fn page(app_plan: &App, origin: &str, open: Bridges) -> String {
    let config = app_plan.config();
    let app = &config.id;
    let title = escape(&config.title);
    let app_url = format!("{origin}{}/", api::app_page_path(app));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>API · {title}</title><style>{STYLE}</style></head><body>\
         <nav><a href=\"{}\">← {title}</a></nav><h1>API of {title}</h1>\
         <p>Every endpoint runs in a session: start one, then call endpoints with it. Session state stays on the \
         server; send <code>null</code> for state slots. A browser-state slot takes the sealed string an earlier \
         answer gave in <code>browser_state</code> (or <code>null</code> for its default), as a browser keeps it. \
         The answer lists the component updates of the endpoint and of the change listeners it caused.</p>{}\
         <h2>Start a session</h2><pre tabindex=\"0\"><code>curl -X POST {origin}{}</code></pre>",
        escape(&api::app_page_path(app)),
        bridges_intro(&app_url, open),
        escape(&api::StartSession::path(app)),
    );
    let endpoints = config.endpoints();
    // The same listeners, in the same order: those with an api_name.
    let bridge_endpoints = bridges::endpoint::Endpoint::all(app_plan);
    if endpoints.is_empty() {
        html.push_str("<p>This app has no named endpoints.</p>");
    }
    for (endpoint, bridge) in endpoints.iter().zip(&bridge_endpoints) {
        let name = escape(&endpoint.api_name);
        let inputs: Vec<String> = bridge
            .inputs
            .iter()
            .map(|slot| example_value(&slot.kind).to_string())
            .collect();
        let body = format!(
            "{{\"listener\": {}, \"inputs\": [{}]}}",
            endpoint.listener.0,
            inputs.join(", ")
        );
        let path = api::RunEvent::ROUTE
            .replace("{app}", &app.0)
            .replace("{session}", "$SESSION");
        let _ = write!(
            html,
            "<section id=\"{name}\"><h2><code>{name}</code></h2><p>{}</p><h3>Inputs</h3>{}<h3>Outputs</h3>{}\
             <h3>curl (Keepsake's API)</h3><pre tabindex=\"0\"><code>curl -X POST {origin}{} \\\n  -H 'Content-Type: application/json' \\\n  -d '{}'</code></pre>\
             <h3>Rust (<code>keepsake-shared</code>, feature <code>client</code>)</h3><pre tabindex=\"0\"><code>\
             let app = keepsake_shared::client::Client::new(\"{origin}\").app(\"{}\").await?;\n\
             let session = app.start_session().await?;\n\
             let outputs = session.call(\"{name}\", vec![{}]).await?;</code></pre>{}</section>",
            escape(&bridge.description),
            slots_table(&endpoint.inputs),
            slots_table(&endpoint.outputs),
            escape(&path),
            escape(&body),
            escape(&app.0),
            escape(
                &inputs
                    .iter()
                    .map(|value| format!("json!({value})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            bridge_examples(bridge, &app_url, open),
        );
    }
    html.push_str("</body></html>");
    html
}

/// What the other bridges are, and their URLs, when open.
fn bridges_intro(app_url: &str, open: Bridges) -> String {
    let mut html = String::new();
    if open.gradio {
        let _ = write!(
            html,
            "<p><strong>Gradio clients</strong> reach this app at <code>{}</code>: each <code>Client</code> \
             (each <code>session_hash</code>) is a session of its own, kept across its calls. A call returns \
             the outputs the page would show after it, state slots left out.</p>",
            escape(app_url)
        );
    }
    if open.mcp {
        let _ = write!(
            html,
            "<p><strong>MCP</strong> (streamable HTTP) at <code>{}mcp</code>: every endpoint is a tool, and \
             each MCP session is a session of its own.</p>",
            escape(app_url)
        );
    }
    html
}
