//! Markdown to HTML for the Markdown component, safe to insert into the page.
//!
//! Values of Markdown components can come from user input (an output echoing a
//! textbox), so raw HTML in the source is shown as text and links or images may only
//! point to http(s), mailto or relative URLs: nothing in a value can run script.
//!
//! This is a small renderer of the Markdown people write in app descriptions and
//! outputs, not a full CommonMark implementation: a complete parser (pulldown-cmark,
//! with its entity and case-folding tables) was 70 KB of the 275 KB compressed client.
//! Supported: ATX and setext headings, paragraphs, hard breaks, block quotes, bullet,
//! ordered and task lists (nested by indentation, tight or loose), fenced and indented
//! code, thematic breaks, GFM tables with alignment; inline code, `*`/`_` emphasis
//! (CommonMark's delimiter rules), `~~strikethrough~~`, links, images, autolinks and
//! backslash escapes. Not supported: reference-style links, footnotes, HTML entities
//! (shown as typed) and lazy continuation of quotes.

/// Renders Markdown source to sanitised HTML.
pub fn to_html(source: &str) -> String {
    let source = source.replace("\r\n", "\n").replace('\t', "    ");
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out = String::with_capacity(source.len() * 3 / 2);
    render_blocks(&lines, false, 0, &mut out);
    out
}

/// Deepest nesting of quotes and lists rendered as structure; deeper content is
/// rendered as paragraphs, so a hostile value cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// How far a link's text may reach for its closing bracket (and a title for its
/// closing quote). Without a bound, text full of unclosed `[` costs quadratic time.
const MAX_LINK_SCAN: usize = 2048;

/// Renders a sequence of lines as blocks, `depth` levels deep in quotes and lists.
/// The paragraphs of `tight` list items are not wrapped in `<p>`.
fn render_blocks(lines: &[&str], tight: bool, depth: usize, out: &mut String) {
    let nested_allowed = depth < MAX_DEPTH;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_blank(line) {
            i += 1;
            continue;
        }
        let indent = indentation(line);
        if indent >= 4 {
            i = indented_code(lines, i, out);
            continue;
        }
        let text = &line[indent..];
        if let Some(fence) = Fence::open(text) {
            i = fenced_code(lines, i, indent, &fence, out);
        } else if let Some((level, content)) = atx_heading(text) {
            heading(level, content, out);
            i += 1;
        } else if is_thematic_break(text) {
            out.push_str("<hr />\n");
            i += 1;
        } else if text.starts_with('>') && nested_allowed {
            i = block_quote(lines, i, depth, out);
        } else if let (Some(marker), true) = (ListMarker::parse(text), nested_allowed) {
            i = list(lines, i, marker, depth, out);
        } else if let Some(end) = table(lines, i, out) {
            i = end;
        } else {
            i = paragraph(lines, i, tight, out);
        }
    }
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn indentation(line: &str) -> usize {
    run_length(line, ' ')
}

/// Bytes of the run of `c` (an ASCII character) that `text` starts with.
fn run_length(text: &str, c: char) -> usize {
    text.len() - text.trim_start_matches(c).len()
}

/// Whether `line` starts a block that ends a paragraph.
fn interrupts_paragraph(line: &str) -> bool {
    let indent = indentation(line);
    if indent >= 4 {
        return false;
    }
    let text = &line[indent..];
    Fence::open(text).is_some()
        || atx_heading(text).is_some()
        || is_thematic_break(text)
        || text.starts_with('>')
        // As in CommonMark, an ordered list interrupts a paragraph only from 1, and an
        // empty item never does.
        || ListMarker::parse(text)
            .is_some_and(|m| m.start.is_none_or(|n| n == 1) && !is_blank(&text[m.width..]))
}

struct Fence {
    char: char,
    len: usize,
    info: String,
}

impl Fence {
    fn open(text: &str) -> Option<Fence> {
        let char = text.chars().next().filter(|c| *c == '`' || *c == '~')?;
        let len = run_length(text, char);
        let info = text[len..].trim();
        if len < 3 || (char == '`' && info.contains('`')) {
            return None;
        }
        let info = info.split_whitespace().next().unwrap_or("").to_owned();
        Some(Fence { char, len, info })
    }

    fn closes(&self, line: &str) -> bool {
        let indent = indentation(line);
        let text = &line[indent..];
        let len = run_length(text, self.char);
        indent < 4 && len >= self.len && text[len..].trim().is_empty()
    }
}

fn fenced_code(
    lines: &[&str],
    start: usize,
    indent: usize,
    fence: &Fence,
    out: &mut String,
) -> usize {
    out.push_str("<pre><code");
    if !fence.info.is_empty() {
        out.push_str(" class=\"language-");
        escape_into(&fence.info, out);
        out.push('"');
    }
    out.push('>');
    let mut i = start + 1;
    while i < lines.len() && !fence.closes(lines[i]) {
        // Content lines lose up to the fence's own indentation.
        let line = lines[i];
        let strip = indentation(line).min(indent);
        escape_into(&line[strip..], out);
        out.push('\n');
        i += 1;
    }
    out.push_str("</code></pre>\n");
    // Past the closing fence; an unclosed fence runs to the end.
    (i + 1).min(lines.len())
}

fn indented_code(lines: &[&str], start: usize, out: &mut String) -> usize {
    let mut end = start;
    let mut last_content = start;
    while end < lines.len() && (is_blank(lines[end]) || indentation(lines[end]) >= 4) {
        if !is_blank(lines[end]) {
            last_content = end;
        }
        end += 1;
    }
    out.push_str("<pre><code>");
    for line in &lines[start..=last_content] {
        escape_into(line.get(4..).unwrap_or(""), out);
        out.push('\n');
    }
    out.push_str("</code></pre>\n");
    last_content + 1
}

fn atx_heading(text: &str) -> Option<(usize, &str)> {
    let level = run_length(text, '#');
    let rest = &text[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim();
    // A closing run of `#` is dropped when a space precedes it (or it is all there is).
    let without_closing = rest.trim_end_matches('#');
    let content = if without_closing.is_empty() || without_closing.ends_with(' ') {
        without_closing.trim_end()
    } else {
        rest
    };
    Some((level, content))
}

fn heading(level: usize, content: &str, out: &mut String) {
    out.push_str(&format!("<h{level}>"));
    inline_into(content, out);
    out.push_str(&format!("</h{level}>\n"));
}

fn is_thematic_break(text: &str) -> bool {
    let mut chars = text.chars().filter(|c| *c != ' ');
    match chars.next() {
        Some(first @ ('*' | '-' | '_')) => {
            let rest: Vec<char> = chars.collect();
            rest.len() >= 2 && rest.iter().all(|c| *c == first)
        }
        _ => false,
    }
}

fn block_quote(lines: &[&str], start: usize, depth: usize, out: &mut String) -> usize {
    let mut inner = Vec::new();
    let mut i = start;
    while i < lines.len() {
        let indent = indentation(lines[i]);
        let Some(rest) = lines[i][indent..].strip_prefix('>').filter(|_| indent < 4) else {
            break;
        };
        inner.push(rest.strip_prefix(' ').unwrap_or(rest));
        i += 1;
    }
    out.push_str("<blockquote>\n");
    render_blocks(&inner, false, depth + 1, out);
    out.push_str("</blockquote>\n");
    i
}

/// A list item's marker: `-`, `+`, `*`, or a number followed by `.` or `)`.
#[derive(Clone, Copy)]
struct ListMarker {
    /// The number of an ordered item.
    start: Option<u64>,
    /// `-`, `+`, `*`, `.` or `)`: items of one list share it.
    delimiter: u8,
    /// Bytes from the start of the text to the item's content.
    width: usize,
}

impl ListMarker {
    fn parse(text: &str) -> Option<ListMarker> {
        let bytes = text.as_bytes();
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let (start, delimiter, marker_len) = match bytes.first()? {
            b'-' | b'+' | b'*' => (None, bytes[0], 1),
            _ if (1..=9).contains(&digits) && matches!(bytes.get(digits), Some(b'.' | b')')) => {
                (text[..digits].parse().ok(), bytes[digits], digits + 1)
            }
            _ => return None,
        };
        let after = &text[marker_len..];
        if after.is_empty() {
            return Some(ListMarker {
                start,
                delimiter,
                width: marker_len,
            });
        }
        let spaces = indentation(after);
        if spaces == 0 {
            return None;
        }
        // Five or more spaces after the marker: the content is indented code and the
        // item's content starts one space after the marker.
        let width = marker_len + if spaces > 4 { 1 } else { spaces };
        Some(ListMarker {
            start,
            delimiter,
            width,
        })
    }

    fn same_list(&self, other: &ListMarker) -> bool {
        self.delimiter == other.delimiter && self.start.is_some() == other.start.is_some()
    }
}

fn list(lines: &[&str], start: usize, first: ListMarker, depth: usize, out: &mut String) -> usize {
    // Each item: its lines with the item's indentation removed.
    let mut items: Vec<Vec<&str>> = Vec::new();
    let mut loose = false;
    let mut i = start;
    let mut blank_before = false;
    while i < lines.len() {
        let line = lines[i];
        let indent = indentation(line);
        let marker = (indent < 4)
            .then(|| ListMarker::parse(&line[indent..]))
            .flatten()
            .filter(|m| m.same_list(&first));
        let Some(marker) = marker else { break };
        if blank_before && !items.is_empty() {
            loose = true;
        }
        let content_indent = indent + marker.width;
        let mut item = vec![line.get(content_indent..).unwrap_or("")];
        i += 1;
        blank_before = false;
        while i < lines.len() {
            let next = lines[i];
            if is_blank(next) {
                blank_before = true;
                item.push("");
                i += 1;
                continue;
            }
            if indentation(next) >= content_indent {
                if blank_before && item.iter().any(|l| !is_blank(l)) {
                    // A blank line between two blocks of one item makes the list loose.
                    loose = true;
                }
                item.push(&next[content_indent..]);
                blank_before = false;
                i += 1;
            } else if !blank_before
                && !interrupts_paragraph(next)
                && ListMarker::parse(next.trim_start()).is_none()
                && table_start(lines, i).is_none()
            {
                // A lazy continuation line of the item's paragraph.
                item.push(next.trim_start());
                i += 1;
            } else {
                break;
            }
        }
        while item.last().is_some_and(|l| is_blank(l)) {
            item.pop();
        }
        items.push(item);
    }
    out.push_str(&match first.start {
        None => "<ul>\n".to_owned(),
        Some(1) => "<ol>\n".to_owned(),
        Some(n) => format!("<ol start=\"{n}\">\n"),
    });
    for item in items {
        out.push_str(if loose { "<li>\n" } else { "<li>" });
        let (checkbox, item) = task_marker(item);
        match checkbox {
            Some(true) => out.push_str("<input disabled=\"\" type=\"checkbox\" checked=\"\"/> "),
            Some(false) => out.push_str("<input disabled=\"\" type=\"checkbox\"/> "),
            None => {}
        }
        render_blocks(&item, !loose, depth + 1, out);
        out.push_str("</li>\n");
    }
    out.push_str(if first.start.is_some() {
        "</ol>\n"
    } else {
        "</ul>\n"
    });
    i
}

/// `[ ]` or `[x]` at the start of an item: a task list checkbox.
fn task_marker(mut item: Vec<&str>) -> (Option<bool>, Vec<&str>) {
    let Some(first) = item.first() else {
        return (None, item);
    };
    let checked = if first.starts_with("[ ] ") || *first == "[ ]" {
        false
    } else if first.starts_with("[x] ")
        || first.starts_with("[X] ")
        || *first == "[x]"
        || *first == "[X]"
    {
        true
    } else {
        return (None, item);
    };
    item[0] = first.get(4..).unwrap_or("");
    (Some(checked), item)
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    None,
    Left,
    Center,
    Right,
}

/// The cells of a table row: outer pipes dropped, `\|` kept as a pipe.
fn table_cells(line: &str) -> Vec<String> {
    let trimmed = line.trim();
    let trimmed = trimmed.strip_prefix('|').unwrap_or(trimmed);
    let trimmed = if trimmed.ends_with('|') && !trimmed.ends_with("\\|") {
        &trimmed[..trimmed.len() - 1]
    } else {
        trimmed
    };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells.iter().map(|c| c.trim().to_owned()).collect()
}

/// The column alignments when `lines[at]` is a header row followed by a delimiter row.
fn table_start(lines: &[&str], at: usize) -> Option<Vec<Align>> {
    let header = lines.get(at)?;
    let delimiter = lines.get(at + 1)?;
    if !header.contains('|') || indentation(header) >= 4 || !delimiter.contains('-') {
        return None;
    }
    let aligns = table_cells(delimiter)
        .iter()
        .map(|cell| {
            let dashes = cell.trim_start_matches(':').trim_end_matches(':');
            if dashes.is_empty() || !dashes.chars().all(|c| c == '-') {
                return None;
            }
            Some(match (cell.starts_with(':'), cell.ends_with(':')) {
                (true, true) => Align::Center,
                (true, false) => Align::Left,
                (false, true) => Align::Right,
                (false, false) => Align::None,
            })
        })
        .collect::<Option<Vec<Align>>>()?;
    (table_cells(header).len() == aligns.len()).then_some(aligns)
}

fn table(lines: &[&str], start: usize, out: &mut String) -> Option<usize> {
    let aligns = table_start(lines, start)?;
    out.push_str("<table><thead><tr>");
    table_row(lines[start], &aligns, "th", out);
    out.push_str("</tr></thead><tbody>\n");
    let mut i = start + 2;
    while i < lines.len() && !is_blank(lines[i]) && !interrupts_paragraph(lines[i]) {
        out.push_str("<tr>");
        table_row(lines[i], &aligns, "td", out);
        out.push_str("</tr>\n");
        i += 1;
    }
    out.push_str("</tbody></table>\n");
    Some(i)
}

fn table_row(line: &str, aligns: &[Align], tag: &str, out: &mut String) {
    let mut cells = table_cells(line).into_iter();
    for align in aligns {
        // Classes, not `style` attributes: the page's Content-Security-Policy
        // (style-src 'self') refuses inline styles.
        let class = match align {
            Align::None => "",
            Align::Left => " class=\"align-left\"",
            Align::Center => " class=\"align-center\"",
            Align::Right => " class=\"align-right\"",
        };
        out.push_str(&format!("<{tag}{class}>"));
        inline_into(&cells.next().unwrap_or_default(), out);
        out.push_str(&format!("</{tag}>"));
    }
}

fn paragraph(lines: &[&str], start: usize, tight: bool, out: &mut String) -> usize {
    let mut end = start + 1;
    while end < lines.len() {
        let line = lines[end];
        // A line of `=` or `-` under paragraph text makes it a (setext) heading; this
        // comes first, as `---` would otherwise be a thematic break.
        let underline = line.trim();
        if indentation(line) < 4
            && !underline.is_empty()
            && (underline.chars().all(|c| c == '=') || underline.chars().all(|c| c == '-'))
        {
            let level = if underline.starts_with('=') { 1 } else { 2 };
            heading(level, &join_lines(&lines[start..end]), out);
            return end + 1;
        }
        if is_blank(line) || interrupts_paragraph(line) || table_start(lines, end).is_some() {
            break;
        }
        end += 1;
    }
    let text = join_lines(&lines[start..end]);
    if tight {
        inline_into(&text, out);
        out.push('\n');
    } else {
        out.push_str("<p>");
        inline_into(&text, out);
        out.push_str("</p>\n");
    }
    end
}

fn join_lines(lines: &[&str]) -> String {
    let trimmed: Vec<&str> = lines.iter().map(|l| l.trim_start()).collect();
    trimmed.join("\n").trim_end().to_owned()
}

/// A piece of inline content before emphasis is resolved.
enum Inline {
    /// Finished HTML (escaped text, code, links).
    Html(String),
    /// A run of `*`, `_` or `~`, which may open or close emphasis.
    Delimiters(Delimiters),
}

struct Delimiters {
    char: char,
    /// Delimiters not (yet) used by a match; printed as text.
    count: usize,
    original: usize,
    can_open: bool,
    can_close: bool,
    /// Tags this run opens (printed after its remaining characters) or closes
    /// (printed before them).
    opens: String,
    closes: String,
}

/// Renders inline Markdown into `out`.
fn inline_into(text: &str, out: &mut String) {
    let mut pieces = Vec::new();
    parse_inline(text, &mut pieces, true);
    resolve_emphasis(&mut pieces);
    for piece in pieces {
        match piece {
            Inline::Html(html) => out.push_str(&html),
            Inline::Delimiters(run) => {
                out.push_str(&run.closes);
                for _ in 0..run.count {
                    out.push(run.char);
                }
                out.push_str(&run.opens);
            }
        }
    }
}

fn parse_inline(text: &str, pieces: &mut Vec<Inline>, links_allowed: bool) {
    let mut plain = String::new();
    // Backtick run lengths with no closing run further on: a later run of the same
    // length has none either, so it is not searched again (keeps this linear).
    let mut unclosed_ticks: Vec<usize> = Vec::new();
    let flush = |plain: &mut String, pieces: &mut Vec<Inline>| {
        if !plain.is_empty() {
            pieces.push(Inline::Html(std::mem::take(plain)));
        }
    };
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else { break };
        match c {
            '\\' => match rest[1..].chars().next() {
                Some('\n') => {
                    plain.push_str("<br />\n");
                    i += 2;
                }
                Some(next) if next.is_ascii_punctuation() => {
                    escape_char(next, &mut plain);
                    i += 2;
                }
                _ => {
                    plain.push('\\');
                    i += 1;
                }
            },
            '`' => {
                let ticks = run_length(rest, '`');
                let span = if unclosed_ticks.contains(&ticks) {
                    None
                } else {
                    code_span(&rest[ticks..], ticks)
                };
                match span {
                    Some((code, used)) => {
                        plain.push_str("<code>");
                        escape_into(&code, &mut plain);
                        plain.push_str("</code>");
                        i += ticks + used;
                    }
                    None => {
                        unclosed_ticks.push(ticks);
                        plain.push_str(&rest[..ticks]);
                        i += ticks;
                    }
                }
            }
            '\n' => {
                // Two spaces before a line end make a hard break.
                if plain.ends_with("  ") {
                    let kept = plain.trim_end_matches(' ').len();
                    plain.truncate(kept);
                    plain.push_str("<br />");
                } else {
                    let kept = plain.trim_end_matches(' ').len();
                    plain.truncate(kept);
                }
                plain.push('\n');
                i += 1;
                i += indentation(&text[i..]);
            }
            '<' => match autolink(rest) {
                Some((url, used)) if links_allowed => {
                    let href = if url.contains('@') && !url.contains(':') {
                        format!("mailto:{url}")
                    } else {
                        url.to_owned()
                    };
                    plain.push_str("<a href=\"");
                    escape_into(safe_url(&href), &mut plain);
                    plain.push_str("\">");
                    escape_into(url, &mut plain);
                    plain.push_str("</a>");
                    i += used;
                }
                _ => {
                    plain.push_str("&lt;");
                    i += 1;
                }
            },
            '!' | '[' if links_allowed => {
                let image = c == '!';
                let bracket = if image { &rest[1..] } else { rest };
                match link(bracket).filter(|_| !image || bracket.starts_with('[')) {
                    Some(found) => {
                        flush(&mut plain, pieces);
                        if image {
                            let alt = unescape(found.text);
                            let mut html = String::from("<img src=\"");
                            escape_into(safe_url(&found.url), &mut html);
                            html.push_str("\" alt=\"");
                            escape_into(&alt, &mut html);
                            html.push('"');
                            title_attribute(found.title.as_deref(), &mut html);
                            html.push_str(" />");
                            pieces.push(Inline::Html(html));
                        } else {
                            let mut html = String::from("<a href=\"");
                            escape_into(safe_url(&found.url), &mut html);
                            html.push('"');
                            title_attribute(found.title.as_deref(), &mut html);
                            html.push('>');
                            pieces.push(Inline::Html(html));
                            parse_inline(found.text, pieces, false);
                            pieces.push(Inline::Html("</a>".to_owned()));
                        }
                        i += found.used + usize::from(image);
                    }
                    None => {
                        plain.push(c);
                        i += 1;
                    }
                }
            }
            '*' | '_' | '~' => {
                let count = run_length(rest, c);
                let before = text[..i].chars().next_back();
                let after = rest[count..].chars().next();
                flush(&mut plain, pieces);
                pieces.push(Inline::Delimiters(Delimiters::new(c, count, before, after)));
                i += count;
            }
            _ => {
                escape_char(c, &mut plain);
                i += c.len_utf8();
            }
        }
    }
    flush(&mut plain, pieces);
}

fn title_attribute(title: Option<&str>, html: &mut String) {
    if let Some(title) = title {
        html.push_str(" title=\"");
        escape_into(title, html);
        html.push('"');
    }
}

/// A code span's content after an opening run of `ticks` backticks, and the bytes
/// used including the closing run; `None` when no run of the same length closes it.
fn code_span(rest: &str, ticks: usize) -> Option<(String, usize)> {
    let mut at = 0;
    while let Some(offset) = rest[at..].find('`') {
        let start = at + offset;
        let run = run_length(&rest[start..], '`');
        if run == ticks {
            let code = rest[..start].replace('\n', " ");
            let code = match code.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')) {
                Some(inner) if !inner.trim().is_empty() => inner.to_owned(),
                _ => code,
            };
            return Some((code, start + run));
        }
        at = start + run;
    }
    None
}

/// `<scheme:...>` or `<user@host>`: the URL and the bytes used.
fn autolink(rest: &str) -> Option<(&str, usize)> {
    // An autolink holds no space or `<`, so the search stops there (linear overall).
    let end = 1 + rest[1..].find(|c: char| c == '>' || c == '<' || c.is_whitespace())?;
    if rest.as_bytes()[end] != b'>' {
        return None;
    }
    let inner = &rest[1..end];
    let valid = !inner.is_empty()
        && (inner.split_once(':').is_some_and(|(scheme, _)| {
            scheme.len() >= 2
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }) || inner
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && host.contains('.')));
    valid.then_some((inner, end + 1))
}

struct Link<'a> {
    text: &'a str,
    url: String,
    title: Option<String>,
    used: usize,
}

/// `[text](destination "title")` at the start of `rest`.
fn link(rest: &str) -> Option<Link<'_>> {
    if !rest.starts_with('[') {
        return None;
    }
    let window = &rest[..char_boundary(rest, MAX_LINK_SCAN)];
    let mut depth = 0usize;
    let mut close = None;
    let mut chars = window.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '`' => {
                // Brackets inside a code span do not count.
                let ticks = run_length(&window[at..], '`');
                if let Some((_, used)) = code_span(&window[at + ticks..], ticks) {
                    let skip_to = at + ticks + used;
                    while chars.clone().next().is_some_and(|(next, _)| next < skip_to) {
                        chars.next();
                    }
                }
            }
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(at);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let after = rest[close + 1..].strip_prefix('(')?;
    let inner_start = close + 2;
    let body = after.trim_start();
    let mut used = inner_start + (after.len() - body.len());
    let (url, body_rest) = if let Some(angle) = body.strip_prefix('<') {
        let end = angle.find(['>', '\n'])?;
        if angle.as_bytes()[end] != b'>' {
            return None;
        }
        (unescape(&angle[..end]), &angle[end + 1..])
    } else {
        let mut parens = 0usize;
        let mut end = body.len();
        let mut escaped = false;
        for (at, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => parens += 1,
                ')' if parens == 0 => {
                    end = at;
                    break;
                }
                ')' => parens -= 1,
                c if c.is_whitespace() => {
                    end = at;
                    break;
                }
                _ => {}
            }
        }
        (unescape(&body[..end]), &body[end..])
    };
    used += body.len() - body_rest.len();
    let trimmed = body_rest.trim_start();
    used += body_rest.len() - trimmed.len();
    let (title, tail) = match trimmed.chars().next() {
        Some(open @ ('"' | '\'' | '(')) => {
            let close_char = if open == '(' { ')' } else { open };
            let title_window = &trimmed[..char_boundary(trimmed, MAX_LINK_SCAN)];
            let end = 1 + unescaped_find(&title_window[1..], close_char)?;
            (Some(unescape(&trimmed[1..end])), &trimmed[end + 1..])
        }
        _ => (None, trimmed),
    };
    used += trimmed.len() - tail.len();
    let tail_trimmed = tail.trim_start();
    used += tail.len() - tail_trimmed.len();
    if !tail_trimmed.starts_with(')') {
        return None;
    }
    Some(Link {
        text: &rest[1..close],
        url,
        title,
        used: used + 1,
    })
}

/// The largest char boundary of `text` at or below `max`.
fn char_boundary(text: &str, max: usize) -> usize {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The first `wanted` in `text` that no backslash escapes.
fn unescaped_find(text: &str, wanted: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if c == wanted => return Some(at),
            _ => {}
        }
    }
    None
}

/// Removes backslash escapes (in URLs and titles).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(next)) if next.is_ascii_punctuation() => {
                out.push(*next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

impl Delimiters {
    /// A run of `count` × `char` between `before` and `after` (`None`: the text's edge),
    /// with CommonMark's flanking rules deciding whether it can open or close.
    fn new(char: char, count: usize, before: Option<char>, after: Option<char>) -> Delimiters {
        let is_space = |c: Option<char>| c.is_none_or(char::is_whitespace);
        // ASCII punctuation only: Unicode's tables would cost the client more than
        // the rare `*“quoted”*` they decide.
        let is_punct = |c: Option<char>| c.is_some_and(|c| c.is_ascii_punctuation());
        let left_flanking =
            !is_space(after) && (!is_punct(after) || is_space(before) || is_punct(before));
        let right_flanking =
            !is_space(before) && (!is_punct(before) || is_space(after) || is_punct(after));
        let (can_open, can_close) = match char {
            // `_` inside a word (snake_case) is not emphasis.
            '_' => (
                left_flanking && (!right_flanking || is_punct(before)),
                right_flanking && (!left_flanking || is_punct(after)),
            ),
            '~' if count > 2 => (false, false),
            _ => (left_flanking, right_flanking),
        };
        Delimiters {
            char,
            count,
            original: count,
            can_open,
            can_close,
            opens: String::new(),
            closes: String::new(),
        }
    }
}

/// CommonMark's "process emphasis": pairs each closer with the nearest matching opener
/// on a stack of open runs. Runs between a matched pair leave the stack, and a failed
/// search remembers how far down it looked, so the whole pass stays linear.
fn resolve_emphasis(pieces: &mut [Inline]) {
    // Indices into `pieces` of runs that may still open.
    let mut stack: Vec<usize> = Vec::new();
    // Per (char, closer can open, closer length mod 3): stack entries below this were
    // searched already and cannot match such a closer.
    let mut searched_to = [0usize; 18];
    for at in 0..pieces.len() {
        let Inline::Delimiters(run) = &pieces[at] else {
            continue;
        };
        let (char, closer_opens, closer_original) = (run.char, run.can_open, run.original);
        let char_index = match char {
            '*' => 0,
            '_' => 1,
            _ => 2,
        };
        let key = char_index * 6 + usize::from(closer_opens) * 3 + closer_original % 3;
        while let Inline::Delimiters(closer) = &pieces[at] {
            if !closer.can_close || closer.count == 0 {
                break;
            }
            let closer_count = closer.count;
            let bottom = searched_to[key].min(stack.len());
            let found = (bottom..stack.len()).rev().find(|&slot| {
                let Inline::Delimiters(opener) = &pieces[stack[slot]] else {
                    return false;
                };
                opener.char == char
                    && if char == '~' {
                        opener.count == closer_count
                    } else {
                        // The "rule of 3" keeps `*foo**bar*` from pairing oddly.
                        !((opener.can_close || closer_opens)
                            && (opener.original + closer_original) % 3 == 0
                            && !(opener.original % 3 == 0 && closer_original % 3 == 0))
                    }
            });
            let Some(slot) = found else {
                searched_to[key] = stack.len();
                break;
            };
            let opener_at = stack[slot];
            let opener_count = match &pieces[opener_at] {
                Inline::Delimiters(opener) => opener.count,
                Inline::Html(_) => 0,
            };
            let used = if char == '~' {
                closer_count
            } else if opener_count >= 2 && closer_count >= 2 {
                2
            } else {
                1
            };
            let tag = match (char, used) {
                ('~', _) => "del",
                (_, 2) => "strong",
                _ => "em",
            };
            // Runs between the pair can no longer match anything.
            stack.truncate(slot + 1);
            if let Inline::Delimiters(opener) = &mut pieces[opener_at] {
                opener.count -= used;
                opener.opens.insert_str(0, &format!("<{tag}>"));
                if opener.count == 0 {
                    stack.pop();
                }
            }
            if let Inline::Delimiters(closer) = &mut pieces[at] {
                closer.count -= used;
                closer.closes.push_str(&format!("</{tag}>"));
            }
        }
        if let Inline::Delimiters(run) = &pieces[at]
            && run.can_open
            && run.count > 0
        {
            stack.push(at);
        }
    }
}

fn escape_char(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        _ => out.push(c),
    }
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        escape_char(c, out);
    }
}

/// Keeps URLs with a harmless scheme (or none); anything else becomes `#`.
fn safe_url(url: &str) -> &str {
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
    if allowed { url } else { "#" }
}
