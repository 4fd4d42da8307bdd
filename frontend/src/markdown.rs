//! Markdown to HTML for the Markdown component, safe to insert into the page.
//!
//! Values of Markdown components can come from user input (an output echoing a
//! textbox), so raw HTML in the source is shown as text and links or images may only
//! point to http(s), mailto or relative URLs: nothing in a value can run script.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// Renders Markdown source to sanitised HTML.
pub fn to_html(source: &str) -> String {
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(source, options).map(|event| match event {
        // Raw HTML is displayed, never interpreted.
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        other => other,
    });
    let mut out = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut out, events);
    out
}

/// Keeps URLs with a harmless scheme (or none); anything else becomes `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower: String = url
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let first_delimiter = lower.find(['/', '?', '#']);
    let has_scheme = match (scheme_end, first_delimiter) {
        (Some(colon), Some(delimiter)) => colon < delimiter,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let allowed = !has_scheme
        || lower.starts_with("http:")
        || lower.starts_with("https:")
        || lower.starts_with("mailto:");
    if allowed { url } else { CowStr::Borrowed("#") }
}
