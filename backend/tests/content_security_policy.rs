//! The pages' Content-Security-Policy and its violation reports, against a real
//! server on 127.0.0.1:0 serving a small client of the test's own: the header on the
//! page and its files (with the inline script's hash), none on the API, a header-less
//! server when the policy is empty, and reports counted in `/metrics` unless they are
//! too large or not reports.
//!
//! The counter is process-wide: this is the only test of this binary that posts
//! reports, so it can compare counts.
#![allow(clippy::unwrap_used)]

mod support;

use keepsake::DEFAULT_CONTENT_SECURITY_POLICY;
use keepsake::protocol::error::{ErrorBody, ErrorKind};
use keepsake::{Settings, demos};
use support::*;

/// `sha256-` of `alert(1);` (`printf 'alert(1);' | openssl dgst -sha256 -binary | base64`).
const SCRIPT_HASH: &str = "'sha256-5jFwrAK0UV47oFbVg/iCCBbxD8X1w+QvoOUepu4C2YA='";

/// A client directory: an index.html with one inline and one external script, and a
/// stylesheet.
fn client_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keepsake-csp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>t</title><script type=module>alert(1);</script>\
         <script src=/app.js></script><link href=/style.css rel=stylesheet>",
    )
    .unwrap();
    std::fs::write(dir.join("style.css"), "p { color: red }").unwrap();
    dir
}

async fn violations(server: &TestServer) -> u64 {
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("keepsake_csp_violations_total "))
        .unwrap_or_else(|| panic!("no CSP counter in /metrics:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

async fn post_report(server: &TestServer, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let response = server
        .client
        .post(server.url("/api/csp-reports"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

fn error_kind(body: &str) -> ErrorKind {
    serde_json::from_str::<ErrorBody>(body)
        .unwrap_or_else(|_| panic!("not an error body: {body}"))
        .error
}

#[tokio::test]
async fn pages_carry_the_policy_and_reports_are_counted() {
    let dir = client_dir();
    let settings = Settings {
        static_dir: Some(dir.clone()),
        ..fast_settings()
    };
    let server = TestServer::start(settings.clone(), demos::all(None).unwrap()).await;

    // The page (a client route answered with index.html) and a file of the client.
    let expected = DEFAULT_CONTENT_SECURITY_POLICY.replace(
        "'wasm-unsafe-eval';",
        &format!("'wasm-unsafe-eval' {SCRIPT_HASH};"),
    );
    for path in ["/apps/shopping-cart", "/", "/style.css"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert_eq!(policy, expected, "{path}");
    }
    for directive in [
        "default-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'self'",
        "report-uri /api/csp-reports",
    ] {
        assert!(expected.contains(directive), "{directive}");
    }
    // The API page: a policy of its own, allowing exactly its inline style sheet.
    let api_page = server
        .client
        .get(server.url("/apps/shopping-cart/api"))
        .send()
        .await
        .unwrap();
    let api_policy = api_page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = api_page.text().await.unwrap();
    let style = html
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .map(|(style, _)| style)
        .unwrap();
    let hash = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style.as_bytes()))
    };
    assert!(
        api_policy.starts_with(&format!("default-src 'none'; style-src 'sha256-{hash}';")),
        "{api_policy}"
    );
    assert!(!html.contains("<script"), "no script on the API page");
    // The API answers JSON, not pages.
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(health.headers().get("content-security-policy").is_none());

    let before = violations(&server).await;
    let report = br#"{"csp-report":{"document-uri":"http://127.0.0.1/apps/shopping-cart","violated-directive":"script-src-elem","effective-directive":"script-src-elem","blocked-uri":"inline","original-policy":"default-src 'self'"}}"#;
    let (status, _) = post_report(&server, "application/csp-report", report.to_vec()).await;
    assert_eq!(status, 204);
    assert_eq!(violations(&server).await, before + 1);
    let batch = br#"[{"type":"csp-violation","age":2,"url":"http://127.0.0.1/","body":{"effectiveDirective":"img-src","blockedURL":"https://elsewhere.example/a.png"}},{"type":"csp-violation","body":{"effectiveDirective":"connect-src","blockedURL":"https://elsewhere.example/"}},{"type":"deprecation","body":{}}]"#;
    let (status, _) = post_report(&server, "application/reports+json", batch.to_vec()).await;
    assert_eq!(status, 204);
    assert_eq!(violations(&server).await, before + 3);

    // Too large, not JSON, not a report, not a report's content type: a 4xx that
    // says so, and nothing counted.
    let mut oversized = report.to_vec();
    oversized.splice(1..1, std::iter::repeat_n(b' ', 16 * 1024));
    let (status, body) = post_report(&server, "application/csp-report", oversized).await;
    assert_eq!(
        (status, error_kind(&body)),
        (413, ErrorKind::PayloadTooLarge)
    );
    assert!(body.contains("16384 bytes"), "{body}");
    for (content_type, body) in [
        ("application/csp-report", b"{not json".to_vec()),
        ("application/csp-report", br#"{"report": {}}"#.to_vec()),
        ("application/reports+json", report.to_vec()),
        ("text/plain", report.to_vec()),
    ] {
        let (status, text) = post_report(&server, content_type, body).await;
        assert_eq!(
            (status, error_kind(&text)),
            (400, ErrorKind::BadRequest),
            "{content_type}: {text}"
        );
        assert!(
            text.contains("report"),
            "the message says what was expected: {text}"
        );
    }
    assert_eq!(violations(&server).await, before + 3);
    server.stop().await;

    // An empty policy turns the header off.
    let server = TestServer::start(
        Settings {
            content_security_policy: String::new(),
            ..settings
        },
        demos::all(None).unwrap(),
    )
    .await;
    let page = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers().get("content-security-policy").is_none());
    let api_page = server
        .client
        .get(server.url("/apps/shopping-cart/api"))
        .send()
        .await
        .unwrap();
    assert!(api_page.headers().get("content-security-policy").is_none());
    server.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_policy_that_is_not_a_header_value_is_refused_by_name() {
    let settings = Settings {
        content_security_policy: "default-src 'self';\r\nX-Injected: 1".into(),
        ..fast_settings()
    };
    let error = keepsake::Server::new(settings, demos::all(None).unwrap()).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("--content-security-policy") && message.contains("header value"),
        "{message}"
    );
}
