//! The `Content-Security-Policy` of the client's pages, and the violation reports
//! browsers send about it.
//!
//! The policy is [`crate::Settings::content_security_policy`]; the one inline script
//! the client's `index.html` holds (trunk's bootstrap, which loads the wasm) is
//! allowed by its hash, which [`inline_script_hashes`] computes from the served HTML
//! when the router is built. Reports arrive at [`REPORT_ROUTE`] as
//! `application/csp-report` (the `report-uri` directive) or `application/reports+json`
//! (the Reporting API); each violation adds one to `keepsake_csp_violations_total`
//! and logs one WARN line with the directive and the blocked URI (at most
//! [`LOGGED_PER_MINUTE`] lines a minute: anyone can post reports).
//!
//! Invariant: with the default policy only the client's own scripts run in its pages:
//! files from this origin and the inline script whose hash is taken here from the
//! `index.html` that is served. A report that is too large or is no report changes
//! nothing.

use std::sync::LazyLock;
use std::time::Instant;

use axum::http::HeaderValue;
use base64::Engine as _;
use governor::clock::MonotonicClock;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where browsers post violation reports (the default policy's `report-uri`).
pub(crate) const REPORT_ROUTE: &str = "/api/csp-reports";

/// Largest accepted report body, in bytes. Chromium's reports are under 2 KiB.
pub(crate) const REPORT_LIMIT: usize = 16 * 1024;

/// The counter of reported violations.
pub(crate) const VIOLATIONS_METRIC: &str = "keepsake_csp_violations_total";

/// Most WARN lines about violations per minute (the counter counts every one).
pub(crate) const LOGGED_PER_MINUTE: u32 = 60;

/// The directives that the inline-script hashes are added to.
const SCRIPT_DIRECTIVES: [&str; 2] = ["script-src", "script-src-elem"];

/// The `'sha256-…'` source expression of every inline script (a `<script>` element
/// without `src`) of `html`, in document order. The hash is over the script's text as
/// a browser sees it: its bytes as written, with line breaks normalised to `\n` as the
/// HTML parser does.
pub(crate) fn inline_script_hashes(html: &[u8]) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(open) = find_ignoring_case(rest, b"<script") {
        let after_name = &rest[open + b"<script".len()..];
        // `<scripts>` or `<script-x>` are other elements.
        if !matches!(
            after_name.first(),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
        ) {
            rest = after_name;
            continue;
        }
        let Some((has_src, tag_len)) = start_tag(after_name) else {
            break;
        };
        let body = &after_name[tag_len..];
        let end = find_ignoring_case(body, b"</script").unwrap_or(body.len());
        if !has_src {
            hashes.push(sha256_source(&normalise_newlines(&body[..end])));
        }
        rest = &body[end..];
    }
    hashes
}

/// The policy of the server-rendered API page: nothing but its own inline style
/// sheet (by hash); no script at all, no framing by other sites; violations are
/// reported like the client pages'.
pub(crate) fn api_page_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; report-uri {REPORT_ROUTE}",
        sha256_source(crate::api_docs::STYLE.as_bytes())
    )
}

/// The `'sha256-…'` source expression of `text`.
fn sha256_source(text: &[u8]) -> String {
    let digest = Sha256::digest(text);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn normalise_newlines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter().peekable();
    while let Some(&byte) = bytes.next() {
        if byte == b'\r' {
            bytes.next_if_eq(&&b'\n');
            out.push(b'\n');
        } else {
            out.push(byte);
        }
    }
    out
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

/// Reads the attributes of a start tag (from just after its name): whether one is
/// `src`, and the length up to and including the closing `>`. `None` if it never
/// closes.
fn start_tag(tag: &[u8]) -> Option<(bool, usize)> {
    let mut has_src = false;
    let mut at = 0;
    loop {
        while tag.get(at)?.is_ascii_whitespace() || tag[at] == b'/' {
            at += 1;
        }
        if tag[at] == b'>' {
            return Some((has_src, at + 1));
        }
        let name_start = at;
        while !matches!(tag.get(at)?, b'=' | b'>' | b'/') && !tag[at].is_ascii_whitespace() {
            at += 1;
        }
        has_src |= tag[name_start..at].eq_ignore_ascii_case(b"src");
        while tag.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        if tag[at] != b'=' {
            continue;
        }
        at += 1;
        while tag.get(at)?.is_ascii_whitespace() {
            at += 1;
        }
        match tag[at] {
            quote @ (b'"' | b'\'') => {
                at += 1 + tag[at + 1..].iter().position(|&b| b == quote)? + 1;
            }
            _ => {
                while !tag.get(at)?.is_ascii_whitespace() && tag[at] != b'>' {
                    at += 1;
                }
            }
        }
    }
}

/// `policy` with `hashes` added to its `script-src` and `script-src-elem` directives,
/// unless a directive says `'none'` (a hash would end it) or `'unsafe-inline'` (a hash
/// would switch it off). Directives are written back separated by `"; "`.
pub(crate) fn with_script_hashes(policy: &str, hashes: &[String]) -> String {
    policy
        .split(';')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .map(|directive| {
            let mut tokens = directive.split_ascii_whitespace();
            let name = tokens.next().unwrap_or_default();
            let keeps_its_meaning = tokens.all(|source| {
                !source.eq_ignore_ascii_case("'none'")
                    && !source.eq_ignore_ascii_case("'unsafe-inline'")
            });
            let is_script = SCRIPT_DIRECTIVES
                .iter()
                .any(|script| name.eq_ignore_ascii_case(script));
            if is_script && keeps_its_meaning && !hashes.is_empty() {
                format!("{directive} {}", hashes.join(" "))
            } else {
                directive.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The header value for the pages: `policy` with the inline-script hashes of
/// `index_html` added, or `None` for an empty policy (no header).
pub(crate) fn header_value(policy: &str, index_html: &[u8]) -> Option<HeaderValue> {
    if policy.trim().is_empty() {
        return None;
    }
    let value = with_script_hashes(policy, &inline_script_hashes(index_html));
    match HeaderValue::from_str(&value) {
        Ok(value) => Some(value),
        Err(_) => {
            // `Settings::validate` refuses such a policy; only a server built around
            // it could get here.
            tracing::error!(
                "the Content-Security-Policy is not a valid header value; pages are served without it"
            );
            None
        }
    }
}

/// One reported violation: the directive and the blocked URI, bounded and without
/// query or fragment (they may hold tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) directive: String,
    pub(crate) blocked: String,
}

/// `{"csp-report": {...}}`, sent for the `report-uri` directive.
#[derive(Deserialize)]
struct UriReport {
    #[serde(rename = "csp-report")]
    report: UriReportBody,
}

#[derive(Deserialize)]
struct UriReportBody {
    #[serde(rename = "effective-directive")]
    effective_directive: Option<String>,
    #[serde(rename = "violated-directive")]
    violated_directive: Option<String>,
    #[serde(rename = "blocked-uri")]
    blocked_uri: Option<String>,
}

/// One entry of a Reporting API batch (`report-to`).
#[derive(Deserialize)]
struct ApiReport {
    #[serde(rename = "type")]
    kind: String,
    body: Option<ApiReportBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiReportBody {
    effective_directive: Option<String>,
    #[serde(rename = "blockedURL")]
    blocked_url: Option<String>,
}

/// The violations in a report body, by its `Content-Type`; a sentence saying what is
/// wrong if the body is not a report. A Reporting API batch may hold reports of other
/// types, which are skipped.
pub(crate) fn parse_reports(content_type: &str, body: &[u8]) -> Result<Vec<Violation>, String> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        // Some browsers send `report-uri` reports as plain JSON.
        "application/csp-report" | "application/json" => {
            let report: UriReport = serde_json::from_slice(body)
                .map_err(|e| format!("malformed CSP report: {e}"))?;
            let report = report.report;
            Ok(vec![violation(
                report.effective_directive.or(report.violated_directive),
                report.blocked_uri,
            )])
        }
        "application/reports+json" => {
            let reports: Vec<ApiReport> = serde_json::from_slice(body)
                .map_err(|e| format!("malformed report batch: {e}"))?;
            Ok(reports
                .into_iter()
                .filter(|report| report.kind == "csp-violation")
                .map(|report| {
                    let body = report.body.unwrap_or(ApiReportBody {
                        effective_directive: None,
                        blocked_url: None,
                    });
                    violation(body.effective_directive, body.blocked_url)
                })
                .collect())
        }
        _ => Err(
            "expected a report with Content-Type application/csp-report or application/reports+json"
                .into(),
        ),
    }
}

fn violation(directive: Option<String>, blocked: Option<String>) -> Violation {
    // A directive name is a few lowercase letters and dashes (`script-src-elem`).
    let directive: String = directive
        .unwrap_or_default()
        .split_ascii_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphabetic() || *c == '-')
        .take(40)
        .collect::<String>()
        .to_ascii_lowercase();
    let blocked = blocked.unwrap_or_default();
    let blocked: String = blocked
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect();
    Violation {
        directive: if directive.is_empty() {
            "unknown".into()
        } else {
            directive
        },
        blocked,
    }
}

type LogLimiter = governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    MonotonicClock,
    governor::middleware::NoOpMiddleware<Instant>,
>;

/// The budget of WARN lines, shared by every server of the process (like the counter).
static LOG_BUDGET: LazyLock<LogLimiter> = LazyLock::new(|| {
    let per_minute =
        std::num::NonZeroU32::new(LOGGED_PER_MINUTE).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::direct_with_clock(
        governor::Quota::per_minute(per_minute),
        MonotonicClock,
    )
});

/// Counts the violations and logs each (within the log budget).
pub(crate) fn record(violations: &[Violation]) {
    metrics::counter!(VIOLATIONS_METRIC).increment(violations.len() as u64);
    for violation in violations {
        if LOG_BUDGET.check().is_ok() {
            // Debug form: quoted, with control characters escaped.
            tracing::warn!(
                directive = ?violation.directive,
                blocked_uri = ?violation.blocked,
                "Content-Security-Policy violation reported"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_of_a_known_script_is_its_sha256_in_base64() {
        // printf 'alert(1);' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            inline_script_hashes(b"<p>x</p><script>alert(1);</script>"),
            ["'sha256-5jFwrAK0UV47oFbVg/iCCBbxD8X1w+QvoOUepu4C2YA='"]
        );
        // The empty script.
        assert_eq!(
            inline_script_hashes(b"<script type=module></script>"),
            ["'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"]
        );
    }

    #[test]
    fn only_inline_scripts_are_hashed_with_line_breaks_normalised() {
        let html = b"<SCRIPT src=/a.js></SCRIPT><scripts>no</scripts>\
            <script type=\"module\" data-x='>'>alert(1);</script>\
            <script async src=\"/b.js\">ignored</script><script>alert(1);\r\n</Script>";
        assert_eq!(
            inline_script_hashes(html),
            [sha256_source(b"alert(1);"), sha256_source(b"alert(1);\n"),]
        );
        assert!(inline_script_hashes(b"<p>no scripts</p>").is_empty());
        assert!(inline_script_hashes(b"<script type=module").is_empty());
    }

    #[test]
    fn hashes_go_to_script_directives_that_keep_their_meaning() {
        let hashes = ["'sha256-A='".to_owned()];
        assert_eq!(
            with_script_hashes(
                "default-src 'self';SCRIPT-SRC 'self' ;img-src data:;",
                &hashes
            ),
            "default-src 'self'; SCRIPT-SRC 'self' 'sha256-A='; img-src data:"
        );
        assert_eq!(
            with_script_hashes("script-src 'none'; script-src-elem 'self'", &hashes),
            "script-src 'none'; script-src-elem 'self' 'sha256-A='"
        );
        assert_eq!(
            with_script_hashes("script-src 'self' 'unsafe-inline'", &hashes),
            "script-src 'self' 'unsafe-inline'"
        );
        assert_eq!(
            with_script_hashes("default-src 'self'", &hashes),
            "default-src 'self'"
        );
        assert!(header_value("  ", b"<script>x</script>").is_none());
    }

    #[test]
    fn reports_of_both_formats_are_read() {
        let uri = br#"{"csp-report":{"document-uri":"http://h/apps/x","violated-directive":"script-src-elem","effective-directive":"script-src-elem","blocked-uri":"inline","original-policy":"..."}}"#;
        assert_eq!(
            parse_reports("application/csp-report", uri),
            Ok(vec![Violation {
                directive: "script-src-elem".into(),
                blocked: "inline".into()
            }])
        );
        let batch = br#"[{"type":"csp-violation","age":1,"url":"http://h/","body":{"effectiveDirective":"img-src","blockedURL":"https://evil.example/p.png?token=secret#x"}},{"type":"deprecation","body":{}}]"#;
        assert_eq!(
            parse_reports("application/reports+json; charset=utf-8", batch),
            Ok(vec![Violation {
                directive: "img-src".into(),
                blocked: "https://evil.example/p.png".into()
            }])
        );
        assert!(parse_reports("text/plain", uri).is_err());
        assert!(parse_reports("application/csp-report", b"{\"csp-report\": 1}").is_err());
        assert!(parse_reports("application/reports+json", b"{}").is_err());
        let odd =
            br#"{"csp-report":{"violated-directive":"script-src\n'self' x","blocked-uri":null}}"#;
        assert_eq!(
            parse_reports("application/csp-report", odd),
            Ok(vec![Violation {
                directive: "script-src".into(),
                blocked: String::new()
            }])
        );
    }
}
