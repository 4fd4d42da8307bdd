//! The Markdown component's renderer: the supported subset renders as CommonMark/GFM
//! would, and nothing in a value can inject markup or script.

use keepsake_frontend::markdown::to_html;
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
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

#[wasm_bindgen_test]
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
    assert_eq!(to_html("~~gone~~ ~kept"), "<p><del>gone</del> ~kept</p>\n");
}

#[wasm_bindgen_test]
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
        "<pre><code>open to the end\n</code></pre>\n"
    );
    assert_eq!(
        to_html("    indented\n    code"),
        "<pre><code>indented\ncode\n</code></pre>\n"
    );
}

#[wasm_bindgen_test]
fn lists_nest_and_know_tight_from_loose() {
    assert_eq!(
        to_html("- a\n- b"),
        "<ul>\n<li>a\n</li>\n<li>b\n</li>\n</ul>\n"
    );
    assert_eq!(
        to_html("1. one\n2. two\n   - nested\n3. three"),
        "<ol>\n<li>one\n</li>\n<li>two\n<ul>\n<li>nested\n</li>\n</ul>\n</li>\n<li>three\n</li>\n</ol>\n"
    );
    assert_eq!(to_html("3) x"), "<ol start=\"3\">\n<li>x\n</li>\n</ol>\n");
    assert_eq!(
        to_html("* a\n\n* b"),
        "<ul>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n</ul>\n"
    );
    assert_eq!(
        to_html("- [x] done\n- [ ] todo"),
        "<ul>\n<li><input disabled=\"\" type=\"checkbox\" checked=\"\"/> done\n</li>\n\
         <li><input disabled=\"\" type=\"checkbox\"/> todo\n</li>\n</ul>\n"
    );
    assert_eq!(to_html("- a\nlazy"), "<ul>\n<li>a\nlazy\n</li>\n</ul>\n");
    assert_eq!(
        to_html("- a\n+ b"),
        "<ul>\n<li>a\n</li>\n</ul>\n<ul>\n<li>b\n</li>\n</ul>\n"
    );
    // A number inside a paragraph does not start a list.
    assert_eq!(
        to_html("In\n2024. it rained"),
        "<p>In\n2024. it rained</p>\n"
    );
}

#[wasm_bindgen_test]
fn quotes_rules_and_breaks() {
    assert_eq!(
        to_html("> quoted\n> **text**"),
        "<blockquote>\n<p>quoted\n<strong>text</strong></p>\n</blockquote>\n"
    );
    assert_eq!(
        to_html("> > deep"),
        "<blockquote>\n<blockquote>\n<p>deep</p>\n</blockquote>\n</blockquote>\n"
    );
    assert_eq!(to_html("a\n\n***\n\n- - -"), "<p>a</p>\n<hr />\n<hr />\n");
    assert_eq!(
        to_html("line  \nbreak\\\nagain"),
        "<p>line<br />\nbreak<br />\nagain</p>\n"
    );
}

#[wasm_bindgen_test]
fn tables_with_alignment() {
    assert_eq!(
        to_html("| Item | Qty |\n|:--|--:|\n| Milk | 2 |\n| a \\| b | `x\\|y` |"),
        "<table><thead><tr><th class=\"align-left\">Item</th>\
         <th class=\"align-right\">Qty</th></tr></thead><tbody>\n\
         <tr><td class=\"align-left\">Milk</td><td class=\"align-right\">2</td></tr>\n\
         <tr><td class=\"align-left\">a | b</td><td class=\"align-right\"><code>x|y</code></td></tr>\n\
         </tbody></table>\n"
    );
    // A pipe in a sentence is not a table without a delimiter row.
    assert_eq!(to_html("either | or"), "<p>either | or</p>\n");
}

#[wasm_bindgen_test]
fn links_images_and_escapes() {
    assert_eq!(
        to_html("[Keepsake](https://example.com/a_(b) \"Home\")"),
        "<p><a href=\"https://example.com/a_(b)\" title=\"Home\">Keepsake</a></p>\n"
    );
    assert_eq!(
        to_html("[*em* link](/docs)"),
        "<p><a href=\"/docs\"><em>em</em> link</a></p>\n"
    );
    assert_eq!(
        to_html("![a cat](cat.png)"),
        "<p><img src=\"cat.png\" alt=\"a cat\" /></p>\n"
    );
    assert_eq!(
        to_html("<https://example.com> <me@example.com>"),
        "<p><a href=\"https://example.com\">https://example.com</a> \
         <a href=\"mailto:me@example.com\">me@example.com</a></p>\n"
    );
    assert_eq!(
        to_html("\\*not em\\* \\[no link]"),
        "<p>*not em* [no link]</p>\n"
    );
    assert_eq!(to_html("[no destination]"), "<p>[no destination]</p>\n");
    assert_eq!(to_html("a & b"), "<p>a &amp; b</p>\n");
}

#[wasm_bindgen_test]
fn nothing_in_a_value_can_run_script() {
    assert_eq!(
        to_html("<script>alert(1)</script>"),
        "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    );
    assert_eq!(
        to_html("<img src=x onerror=alert(1)>"),
        "<p>&lt;img src=x onerror=alert(1)&gt;</p>\n"
    );
    assert_eq!(
        to_html("[x](javascript:alert(1))"),
        "<p><a href=\"#\">x</a></p>\n"
    );
    assert_eq!(
        to_html("[x]( JaVaScRiPt:alert(1))"),
        "<p><a href=\"#\">x</a></p>\n"
    );
    assert_eq!(
        to_html("![x](data:text/html,hi)"),
        "<p><img src=\"#\" alt=\"x\" /></p>\n"
    );
    assert_eq!(
        to_html("<javascript:alert(1)>"),
        "<p><a href=\"#\">javascript:alert(1)</a></p>\n"
    );
    assert_eq!(
        to_html("[x](/a \"t\\\" onclick=\\\"alert(1)\")"),
        "<p><a href=\"/a\" title=\"t&quot; onclick=&quot;alert(1)\">x</a></p>\n"
    );
    assert_eq!(
        to_html("```\n\"><script>\n```"),
        "<pre><code>&quot;&gt;&lt;script&gt;\n</code></pre>\n"
    );
    assert_eq!(
        to_html("```\"><script>\n```"),
        "<pre><code class=\"language-&quot;&gt;&lt;script&gt;\"></code></pre>\n"
    );
}

#[wasm_bindgen_test]
fn hostile_input_stays_cheap_and_bounded() {
    // Unclosed brackets, backticks and delimiters: linear work, not quadratic.
    for unit in ["[", "`` ` ", "*a ", "<a", "![", "_a "] {
        let source = unit.repeat(20_000);
        let html = to_html(&source);
        assert!(html.starts_with("<p>"), "{unit}: {:?}", html.get(..20));
    }
    // Deep nesting is cut off at a fixed depth rather than exhausting the stack.
    let deep = "> ".repeat(10_000) + "x";
    assert!(to_html(&deep).contains('x'));
    let deep_list = (0..200)
        .map(|i| format!("{}- x\n", "  ".repeat(i)))
        .collect::<String>();
    assert!(to_html(&deep_list).contains("<li>"));
}

#[wasm_bindgen_test]
fn random_markup_never_panics_or_leaks_a_tag() {
    // A fixed-seed xorshift over the characters the parser treats specially, plus
    // multi-byte ones that would expose a slice off a char boundary.
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
        "<script>",
        "javascript:",
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
        assert!(!html.contains("<script"), "{source:?} gave {html}");
        assert!(
            !html.contains("href=\"javascript:"),
            "{source:?} gave {html}"
        );
    }
}
