//! [`Html`]: HTML an app gives, shown in the page only as the server cleaned it.

use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::UrlRelative;
use keepsake_shared::config::{ComponentKind, ComponentProps};
use serde_json::Value;

use super::{Component, with_value};

/// HTML shown as it is (Gradio's `gr.HTML`), once the server has sanitised it.
///
/// Its value is the HTML source, as handlers give and read it; what reaches a page
/// is only the server's clean copy ([`sanitise`]), sent with every value (in the
/// config, in each event's updates, in a bound global's pushes), so a value built
/// from user input cannot run script there. The page shows the clean copy as the
/// component's content and never parses HTML of its own.
///
/// ```
/// use keepsake::Blocks;
/// use keepsake::components::{Button, Html, Textbox};
///
/// let mut app = Blocks::new("card", "Card");
/// let name = app.add(Textbox::new().label("Name"));
/// let card = app.add(Html::new("<p><em>No card yet.</em></p>").label("Card"));
/// let make = app.add(Button::new("Make card"));
/// // Even if `name` holds `<script>`, the page only ever gets sanitised HTML.
/// app.click(make, name, card, |name: String| format!("<h2>{name}</h2><p>Welcome!</p>"));
/// let app = app.build()?;
/// let props = &app.config().components[1].props;
/// assert_eq!(props.html.as_deref(), Some("<p><em>No card yet.</em></p>"));
/// # Ok::<(), keepsake::BuildError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Html {
    props: ComponentProps,
}

impl Html {
    /// Shows `html` (sanitised by the server, as every later value is).
    pub fn new(html: impl Into<String>) -> Self {
        Html {
            props: with_value(Value::String(html.into())),
        }
    }
    common_props!();
}

impl Component for Html {
    type Value = String;
    fn into_config(self) -> (ComponentKind, ComponentProps) {
        (ComponentKind::Html, self.props)
    }
}

/// `html` made safe to insert into a page: ammonia's allow-list of tags and
/// attributes (no `<script>`, `<style>`, `<iframe>`, `<form>` or `<input>`, no event
/// handler, no `style`, `class` or `id` attribute, so nothing in it restyles the page
/// or impersonates its controls), links and images to http(s), mailto or relative
/// URLs only (anything else loses its `href`/`src`: no `javascript:` or `data:`), and
/// `rel="noopener noreferrer"` on every link.
pub fn sanitise(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"));
    builder
});
