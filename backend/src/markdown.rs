//! Markdown values to sanitised HTML: [`to_html`].

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::UrlRelative;
use pulldown_cmark::{Alignment, Event, Options, Parser, Tag, TagEnd};

/// Markdown components' values rendered to HTML that is safe to insert into a page.
///
/// The server renders, so the browser client carries no Markdown parser (it sets the
/// HTML it is sent as the component's content). The syntax is CommonMark with GitHub's
/// tables, strikethrough and task lists, as `pulldown-cmark` parses it.
///
/// A value can come from user input (an output echoing a textbox), so nothing in it
/// may run script or restyle the page:
/// - raw HTML in the source is shown as typed text, never as markup;
/// - the HTML is then cleaned by `ammonia` (an allow-list of tags and attributes, no
///   event handlers, no `<script>`), links and images may only point to http(s),
///   mailto or relative URLs (anything else loses its `href`/`src`), and every link
///   gets `rel="noopener noreferrer"`;
/// - table alignment is a class (`align-left`, `align-center`, `align-right`), not a
///   `style` attribute: the page's Content-Security-Policy refuses inline styles.
///
/// Renders Markdown source to sanitised HTML.
pub fn to_html(source: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut cells = TableCells::default();
    let events = Parser::new_ext(source, options).map(|event| match event {
        // Shown as typed: an app echoing user input must not let it add markup.
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        other => cells.rewrite(other),
    });
    let mut html = String::with_capacity(source.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    SANITIZER.clean(&html).to_string()
}

/// Turns table cells into `<th>`/`<td>` with an alignment class, where pulldown-cmark
/// would write a `style` attribute.
#[derive(Default)]
struct TableCells {
    aligns: Vec<Alignment>,
    in_head: bool,
    column: usize,
}

impl TableCells {
    fn rewrite<'a>(&mut self, event: Event<'a>) -> Event<'a> {
        match &event {
            Event::Start(Tag::Table(aligns)) => self.aligns.clone_from(aligns),
            Event::Start(Tag::TableHead) => {
                self.in_head = true;
                self.column = 0;
            }
            Event::End(TagEnd::TableHead) => self.in_head = false,
            Event::Start(Tag::TableRow) => self.column = 0,
            Event::Start(Tag::TableCell) => {
                let class = match self.aligns.get(self.column) {
                    Some(Alignment::Left) => " class=\"align-left\"",
                    Some(Alignment::Center) => " class=\"align-center\"",
                    Some(Alignment::Right) => " class=\"align-right\"",
                    Some(Alignment::None) | None => "",
                };
                return Event::Html(format!("<{}{class}>", self.cell_tag()).into());
            }
            Event::End(TagEnd::TableCell) => {
                self.column += 1;
                return Event::Html(format!("</{}>", self.cell_tag()).into());
            }
            _ => {}
        }
        event
    }

    fn cell_tag(&self) -> &'static str {
        if self.in_head { "th" } else { "td" }
    }
}

/// What may reach the page: ammonia's allow-list (which has no `<script>`, `<style>`,
/// event handler or `style` attribute), narrowed to the URL schemes the client always
/// allowed, plus what the Markdown itself produces: task-list checkboxes, alignment
/// classes and code blocks' language class.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("code", ["class"])
        .add_allowed_classes("th", ["align-left", "align-center", "align-right"])
        .add_allowed_classes("td", ["align-left", "align-center", "align-right"])
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            // The only input Markdown makes is a task list's read-only checkbox.
            ("input", "type") => (value == "checkbox").then_some(Cow::Borrowed(value)),
            ("code", "class") => value
                .starts_with("language-")
                .then_some(Cow::Borrowed(value)),
            _ => Some(Cow::Borrowed(value)),
        });
    builder
});
