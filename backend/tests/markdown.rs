//! Markdown components' HTML, rendered by the server: CommonMark with GitHub's tables,
//! strikethrough and task lists, and nothing in a value can inject markup or script;
//! the HTML goes to the page with the value wherever a value goes.
// In tests a panic is a failure with a message: unwrap is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use keepsake::components::markdown_to_html as to_html;
use keepsake::components::{Button, Markdown, Textbox};
use keepsake::{Blocks, Global};
use serde_json::json;
use support::*;

#[tokio::test]
async fn markdown_values_reach_the_page_rendered() {
    let mut app = Blocks::new("notes", "Notes");
    let text = app.add(Textbox::new().label("Text"));
    let note = app.add(Markdown::new("**start** <b>").label("Note"));
    let shown = app.add(Markdown::new("").label("Shown"));
    let echo = app.add(Textbox::new().label("Echo"));
    let go = app.add(Button::new("Go"));
    let count = app.global(Global::new(0u64));
    app.click(
        go,
        (text, count),
        (note, echo, count),
        |text: String, n: u64| (format!("# {text}"), text, n + 1),
    )
    .api_name("go");
    app.bind(count, shown, |n: &u64| {
        format!("**{n}** <script>x</script>")
    });
    let server = TestServer::start(fast_settings(), vec![app.build().unwrap()]).await;

    // The initial value, in the config.
    let config = server.config("notes").await;
    let props = |label| &config.components[component(&config, label).0 as usize].props;
    assert_eq!(props("Note").value, json!("**start** <b>"));
    assert_eq!(
        props("Note").html.as_deref(),
        Some("<p><strong>start</strong> &lt;b&gt;</p>\n")
    );
    assert_eq!(props("Shown").html.as_deref(), Some(""));
    assert_eq!(props("Text").html, None);

    // An event's output: the value as the handler gave it, with its HTML; other kinds
    // get none.
    let session = server.start_session("notes").await;
    let mut stream = server.open_feed("notes", &session).await;
    let go = listener_named(&config, "go");
    let result = server
        .event(
            "notes",
            &session,
            go,
            vec![json!("Hi <img src=x onerror=alert(1)>"), json!(null)],
        )
        .await
        .unwrap();
    let update = |id| result.updates.iter().find(|u| u.component == id).unwrap();
    let note_update = update(component(&config, "Note"));
    assert_eq!(
        note_update.value,
        Some(json!("# Hi <img src=x onerror=alert(1)>"))
    );
    assert_eq!(
        note_update.html.as_deref(),
        Some("<h1>Hi &lt;img src=x onerror=alert(1)&gt;</h1>\n")
    );
    assert_eq!(update(component(&config, "Echo")).html, None);

    // A bound global's push.
    let shown_id = component(&config, "Shown");
    let push = loop {
        let update = stream.next_push(Duration::from_secs(5)).await.unwrap();
        if update.component == shown_id && update.value == Some(json!("**1** <script>x</script>")) {
            break update;
        }
    };
    assert_eq!(
        push.html.as_deref(),
        Some("<p><strong>1</strong> &lt;script&gt;x&lt;/script&gt;</p>\n")
    );
    server.stop().await;
}

#[test]
fn paragraphs_and_headings() {
    assert_eq!(
        to_html("Hello\nworld\n\nNext"),
        "<p>Hello\nworld</p>\n<p>Next</p>\n"
    );
    assert_eq!(to_html("# Title"), "<h1>Title</h1>\n");
    assert_eq!(to_html("### Three ###"), "<h3>Three</h3>\n");
    assert_eq!(to_html("#Not a heading"), "<p>#Not a heading</p>\n");
    assert_eq!(to_html("####### seven"), "<p>####### seven</p>\n");
    assert_eq!(to_html("Big\n==="), "<h1>Big</h1>\n");
    assert_eq!(to_html("Smaller\n---"), "<h2>Smaller</h2>\n");
    assert_eq!(
        to_html("text\n# heading"),
        "<p>text</p>\n<h1>heading</h1>\n"
    );
    assert_eq!(to_html(""), "");
    assert_eq!(to_html("\n\n  \n"), "");
}

#[test]
fn emphasis_follows_commonmark_delimiter_rules() {
    assert_eq!(to_html("*a* _b_"), "<p><em>a</em> <em>b</em></p>\n");
    assert_eq!(
        to_html("**a** __b__"),
        "<p><strong>a</strong> <strong>b</strong></p>\n"
    );
    assert_eq!(
        to_html("***both***"),
        "<p><em><strong>both</strong></em></p>\n"
    );
    assert_eq!(
        to_html("*a **b** c*"),
        "<p><em>a <strong>b</strong> c</em></p>\n"
    );
    assert_eq!(to_html("snake_case_name"), "<p>snake_case_name</p>\n");
    assert_eq!(to_html("2 * 3 * 4"), "<p>2 * 3 * 4</p>\n");
    assert_eq!(to_html("*unclosed"), "<p>*unclosed</p>\n");
    assert_eq!(to_html("**a*"), "<p>*<em>a</em></p>\n");
    assert_eq!(to_html("*foo**bar*"), "<p><em>foo**bar</em></p>\n");
    assert_eq!(to_html("~~gone~~"), "<p><del>gone</del></p>\n");
}

#[test]
fn code_spans_and_blocks_are_literal() {
    assert_eq!(
        to_html("use `State<T>`"),
        "<p>use <code>State&lt;T&gt;</code></p>\n"
    );
    assert_eq!(to_html("`` a ` b ``"), "<p><code>a ` b</code></p>\n");
    assert_eq!(to_html("`*not em*`"), "<p><code>*not em*</code></p>\n");
    assert_eq!(to_html("`unclosed"), "<p>`unclosed</p>\n");
    assert_eq!(
        to_html("```rust\nlet x = 1 < 2;\n\n*y*\n```\nafter"),
        "<pre><code class=\"language-rust\">let x = 1 &lt; 2;\n\n*y*\n</code></pre>\n<p>after</p>\n"
    );
    assert_eq!(
        to_html("~~~\nopen to the end"),
        "<pre><code>open to the end</code></pre>\n"
    );
    assert_eq!(
        to_html("    indented\n    code"),
        "<pre><code>indented\ncode</code></pre>\n"
    );
}

#[test]
fn lists_nest_and_know_tight_from_loose() {
    assert_eq!(to_html("- a\n- b"), "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n");
    assert_eq!(
        to_html("1. one\n2. two\n   - nested\n3. three"),
        "<ol>\n<li>one</li>\n<li>two\n<ul>\n<li>nested</li>\n</ul>\n</li>\n<li>three</li>\n</ol>\n"
    );
    assert_eq!(to_html("3) x"), "<ol start=\"3\">\n<li>x</li>\n</ol>\n");
    assert_eq!(
        to_html("* a\n\n* b"),
        "<ul>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n</ul>\n"
    );
    assert_eq!(
        to_html("- [x] done\n- [ ] todo"),
        "<ul>\n<li><input disabled=\"\" type=\"checkbox\" checked=\"\">\ndone</li>\n\
         <li><input disabled=\"\" type=\"checkbox\">\ntodo</li>\n</ul>\n"
    );
    assert_eq!(to_html("- a\nlazy"), "<ul>\n<li>a\nlazy</li>\n</ul>\n");
    assert_eq!(
        to_html("- a\n+ b"),
        "<ul>\n<li>a</li>\n</ul>\n<ul>\n<li>b</li>\n</ul>\n"
    );
    // A number inside a paragraph does not start a list.
    assert_eq!(
        to_html("In\n2024. it rained"),
        "<p>In\n2024. it rained</p>\n"
    );
}

#[test]
fn quotes_rules_and_breaks() {
    assert_eq!(
        to_html("> quoted\n> **text**"),
        "<blockquote>\n<p>quoted\n<strong>text</strong></p>\n</blockquote>\n"
    );
    assert_eq!(
        to_html("> > deep"),
        "<blockquote>\n<blockquote>\n<p>deep</p>\n</blockquote>\n</blockquote>\n"
    );
    assert_eq!(to_html("a\n\n***\n\n- - -"), "<p>a</p>\n<hr>\n<hr>\n");
    assert_eq!(
        to_html("line  \nbreak\\\nagain"),
        "<p>line<br>\nbreak<br>\nagain</p>\n"
    );
}

#[test]
fn tables_align_with_classes_not_inline_styles() {
    // Classes: the page's Content-Security-Policy refuses `style` attributes.
    assert_eq!(
        to_html("| Item | Qty | Note |\n|:--|--:|:-:|\n| Milk | 2 | x |\n| a \\| b | `x\\|y` |"),
        "<table><thead><tr><th class=\"align-left\">Item</th>\
         <th class=\"align-right\">Qty</th><th class=\"align-center\">Note</th></tr></thead><tbody>\n\
         <tr><td class=\"align-left\">Milk</td><td class=\"align-right\">2</td>\
         <td class=\"align-center\">x</td></tr>\n\
         <tr><td class=\"align-left\">a | b</td><td class=\"align-right\"><code>x|y</code></td>\
         <td class=\"align-center\"></td></tr>\n\
         </tbody></table>\n"
    );
    assert_eq!(
        to_html("| a | b |\n|---|---|\n| 1 | 2 |"),
        "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody>\n\
         <tr><td>1</td><td>2</td></tr>\n</tbody></table>\n"
    );
    // A pipe in a sentence is not a table without a delimiter row.
    assert_eq!(to_html("either | or"), "<p>either | or</p>\n");
}

#[test]
fn links_images_and_escapes() {
    assert_eq!(
        to_html("[Keepsake](https://example.com/a_(b) \"Home\")"),
        "<p><a href=\"https://example.com/a_(b)\" title=\"Home\" rel=\"noopener noreferrer\">Keepsake</a></p>\n"
    );
    assert_eq!(
        to_html("[*em* link](/docs)"),
        "<p><a href=\"/docs\" rel=\"noopener noreferrer\"><em>em</em> link</a></p>\n"
    );
    assert_eq!(
        to_html("![a cat](cat.png)"),
        "<p><img src=\"cat.png\" alt=\"a cat\"></p>\n"
    );
    assert_eq!(
        to_html("<https://example.com> <me@example.com>"),
        "<p><a href=\"https://example.com\" rel=\"noopener noreferrer\">https://example.com</a> \
         <a href=\"mailto:me@example.com\" rel=\"noopener noreferrer\">me@example.com</a></p>\n"
    );
    assert_eq!(
        to_html("[ref]\n\n[ref]: https://example.com"),
        "<p><a href=\"https://example.com\" rel=\"noopener noreferrer\">ref</a></p>\n"
    );
    assert_eq!(
        to_html("\\*not em\\* \\[no link]"),
        "<p>*not em* [no link]</p>\n"
    );
    assert_eq!(to_html("[no destination]"), "<p>[no destination]</p>\n");
    assert_eq!(to_html("a & b &copy;"), "<p>a &amp; b ©</p>\n");
}

#[test]
fn raw_html_is_shown_as_text() {
    assert_eq!(
        to_html("<script>alert(1)</script>"),
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    );
    assert_eq!(
        to_html("a <b onclick=\"x()\">bold</b>"),
        "<p>a &lt;b onclick=\"x()\"&gt;bold&lt;/b&gt;</p>\n"
    );
    assert_eq!(
        to_html("<img src=x onerror=alert(1)>"),
        "&lt;img src=x onerror=alert(1)&gt;"
    );
    assert_eq!(
        to_html("<style>body { display: none }</style>"),
        "&lt;style&gt;body { display: none }&lt;/style&gt;"
    );
    assert_eq!(to_html("<!-- hidden -->"), "&lt;!-- hidden --&gt;");
}

#[test]
fn links_and_images_to_other_schemes_lose_their_url() {
    assert_eq!(
        to_html("[x](javascript:alert(1))"),
        "<p><a rel=\"noopener noreferrer\">x</a></p>\n"
    );
    assert_eq!(
        to_html("[x]( JaVaScRiPt:alert(1))"),
        "<p><a rel=\"noopener noreferrer\">x</a></p>\n"
    );
    // An encoded tab stays encoded: a relative path, which no browser runs.
    assert_eq!(
        to_html("[x](java&#x09;script:alert(1))"),
        "<p><a href=\"java%09script:alert(1)\" rel=\"noopener noreferrer\">x</a></p>\n"
    );
    assert_eq!(
        to_html("[x](vbscript:msgbox)"),
        "<p><a rel=\"noopener noreferrer\">x</a></p>\n"
    );
    assert_eq!(
        to_html("![x](data:text/html,hi)"),
        "<p><img alt=\"x\"></p>\n"
    );
    assert_eq!(
        to_html("<javascript:alert(1)>"),
        "<p><a rel=\"noopener noreferrer\">javascript:alert(1)</a></p>\n"
    );
    assert_eq!(
        to_html("[x](/a \"t\\\" onclick=\\\"alert(1)\")"),
        "<p><a href=\"/a\" title=\"t&quot; onclick=&quot;alert(1)\" rel=\"noopener noreferrer\">x</a></p>\n"
    );
}

#[test]
fn code_cannot_break_out_of_its_block() {
    assert_eq!(
        to_html("```\n\"><script>\n```"),
        "<pre><code>\"&gt;&lt;script&gt;\n</code></pre>\n"
    );
    // The info string only ever becomes a `language-` class.
    assert_eq!(
        to_html("```\"><script>\n```"),
        "<pre><code class=\"language-&quot;&gt;&lt;script&gt;\"></code></pre>\n"
    );
}

#[test]
fn hostile_input_stays_bounded() {
    // Unclosed brackets, backticks and delimiters.
    for unit in ["[", "`` ` ", "*a ", "<a", "![", "_a "] {
        let source = unit.repeat(20_000);
        let html = to_html(&source);
        assert!(html.starts_with("<p>"), "{unit}: {:?}", html.get(..20));
    }
    // Deep nesting neither exhausts the stack nor is lost.
    let deep = "> ".repeat(10_000) + "x";
    assert!(to_html(&deep).contains('x'));
    let deep_list = (0..200)
        .map(|i| format!("{}- x\n", "  ".repeat(i)))
        .collect::<String>();
    assert!(to_html(&deep_list).contains("<li>"));
}

/// Every tag and attribute Markdown makes; anything else in the HTML came from the source.
const TAGS: [&str; 27] = [
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "em",
    "strong",
    "del",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "blockquote",
    "hr",
    "br",
    "a",
    "img",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "input",
];
const ATTRIBUTES: [&str; 10] = [
    "href", "title", "rel", "src", "alt", "class", "start", "type", "checked", "disabled",
];

#[test]
fn random_markup_never_leaks_a_tag_or_a_script_url() {
    // A fixed-seed xorshift over the characters Markdown treats specially, multi-byte
    // ones, and pieces of attacks.
    let alphabet = [
        "*",
        "_",
        "~",
        "`",
        "[",
        "]",
        "(",
        ")",
        "!",
        "<",
        ">",
        "\\",
        "\n",
        " ",
        "  ",
        "#",
        "-",
        "+",
        "1.",
        "2)",
        "|",
        ":",
        "\"",
        "'",
        "a",
        "é",
        "😀",
        "\u{3000}",
        "\t",
        "    ",
        "> ",
        "```",
        "~~~",
        "http://x",
        "@",
        ".",
        "=",
        "[ ]",
        "[x]",
        "\r\n",
        "&",
        "&#",
        "<script>",
        "<img src=x onerror=alert(1)>",
        " onload=",
        "javascript:",
        "style=",
    ];
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let len = (next() % 60) as usize;
        let source: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let html = to_html(&source);
        // Text never holds a `<` (it is escaped), so each one opens a tag; outside its
        // quoted values, a tag holds only its name and attribute names.
        for tag in html
            .split('<')
            .skip(1)
            .map(|t| t.split('>').next().unwrap_or(t))
        {
            let name = tag
                .trim_start_matches('/')
                .split([' ', '/'])
                .next()
                .unwrap_or("");
            assert!(TAGS.contains(&name), "{source:?} gave <{tag}> in {html}");
            for (i, outside) in tag.split('"').enumerate().step_by(2) {
                for word in outside.split_whitespace().skip(usize::from(i == 0)) {
                    let attribute = word.trim_end_matches('/').trim_end_matches('=');
                    assert!(
                        attribute.is_empty() || ATTRIBUTES.contains(&attribute),
                        "{source:?} gave <{tag}> in {html}"
                    );
                }
            }
        }
        for banned in ["href=\"javascript:", "src=\"javascript:", "src=\"data:"] {
            assert!(!html.contains(banned), "{source:?} gave {html}");
        }
    }
}
