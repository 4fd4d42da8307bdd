//! The page at `/apps/{app}/api`: the app's endpoints and how to call them with curl
//! or the native Rust client. Rendered on the server from the app's config (it is
//! documentation, and must work without the browser client).

use std::fmt::Write as _;

use keepsake_shared::api::{self, Endpoint};
use keepsake_shared::config::{AppConfig, EndpointSlot};

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

/// An example JSON value for a slot, for the examples on the page.
fn example(slot: &EndpointSlot) -> &'static str {
    match slot.value_type.as_str() {
        "string" | "string or null" => "\"text\"",
        "number" => "1",
        "boolean" => "true",
        "array of strings" => "[\"a\"]",
        _ => "null",
    }
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

/// The whole page for `config`, with URLs relative to `origin` (e.g. `http://127.0.0.1:7860`).
pub(crate) fn page(config: &AppConfig, origin: &str) -> String {
    let app = &config.id;
    let title = escape(&config.title);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>API · {title}</title><style>{STYLE}</style></head><body>\
         <nav><a href=\"{}\">← {title}</a></nav><h1>API of {title}</h1>\
         <p>Every endpoint runs in a session: start one, then call endpoints with it. Session state stays on the \
         server; send <code>null</code> for state slots. A browser-state slot takes the sealed string an earlier \
         answer gave in <code>browser_state</code> (or <code>null</code> for its default), as a browser keeps it. \
         The answer lists the component updates of the endpoint and of the change listeners it caused.</p>\
         <h2>Start a session</h2><pre><code>curl -X POST {origin}{}</code></pre>",
        escape(&api::app_page_path(app)),
        escape(&api::StartSession::path(app)),
    );
    let endpoints = config.endpoints();
    if endpoints.is_empty() {
        html.push_str("<p>This app has no named endpoints.</p>");
    }
    for endpoint in &endpoints {
        let name = escape(&endpoint.api_name);
        let inputs: Vec<&str> = endpoint.inputs.iter().map(example).collect();
        let body = format!(
            "{{\"dependency\": {}, \"inputs\": [{}]}}",
            endpoint.dependency.0,
            inputs.join(", ")
        );
        let path = api::RunEvent::ROUTE
            .replace("{app}", &app.0)
            .replace("{session}", "$SESSION");
        let _ = write!(
            html,
            "<section id=\"{name}\"><h2><code>{name}</code></h2><h3>Inputs</h3>{}<h3>Outputs</h3>{}\
             <h3>curl</h3><pre><code>curl -X POST {origin}{} \\\n  -H 'Content-Type: application/json' \\\n  -d '{}'</code></pre>\
             <h3>Rust (<code>keepsake-shared</code>, feature <code>client</code>)</h3><pre><code>\
             let app = keepsake_shared::client::Client::new(\"{origin}\").app(\"{}\").await?;\n\
             let session = app.start_session().await?;\n\
             let outputs = session.call(\"{name}\", vec![{}]).await?;</code></pre></section>",
            slots_table(&endpoint.inputs),
            slots_table(&endpoint.outputs),
            escape(&path),
            escape(&body),
            escape(&app.0),
            escape(
                &endpoint
                    .inputs
                    .iter()
                    .map(|s| format!("json!({})", example(s)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    html.push_str("</body></html>");
    html
}
