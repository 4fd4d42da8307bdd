//! The browser client built into the server: served from memory with no static
//! directory, precompressed, with ETags and immutable caching for hashed files.
//! Needs the built client in `backend/client` when the crate is compiled
//! (`scripts/test` builds it first).

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::header;
use support::{TestServer, fast_settings};

async fn server() -> TestServer {
    let settings = keepsake::Settings {
        static_dir: None,
        ..fast_settings()
    };
    TestServer::start(settings, keepsake::demos::all(None).unwrap()).await
}

/// A client that does not decompress, so the test sees what the server sent.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .unwrap()
}

/// The hashed asset names `index.html` refers to.
fn assets(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|part| {
            part.starts_with('/')
                && [".js", ".wasm", ".css"]
                    .iter()
                    .any(|ext| part.ends_with(ext))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_assets_come_from_the_binary_with_caching_headers() {
    let server = server().await;
    let client = raw_client();
    let page = client
        .get(server.url("/apps/shopping-cart"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        200,
        "the built client is embedded (scripts/test builds it first)"
    );
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
    // The policy allows the embedded page's own bootstrap script, by its hash.
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-"),
        "{policy}"
    );
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let index = page.text().await.unwrap();
    let assets = assets(&index);
    assert!(assets.len() >= 3, "wasm, js and css in {index}");

    for asset in &assets {
        let plain = client.get(server.url(asset)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{asset}");
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{asset} is named by its content"
        );
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let etag = plain.headers()[header::ETAG].to_str().unwrap().to_owned();
        let plain_len = plain.bytes().await.unwrap().len();

        let brotli = client
            .get(server.url(asset))
            .header(header::ACCEPT_ENCODING, "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(brotli.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(brotli.headers()[header::VARY], "accept-encoding");
        let brotli_etag = brotli.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_ne!(brotli_etag, etag, "each encoding is its own representation");
        assert!(brotli.bytes().await.unwrap().len() < plain_len);

        let gzip = client
            .get(server.url(asset))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");

        let again = client
            .get(server.url(asset))
            .header(header::ACCEPT_ENCODING, "br")
            .header(header::IF_NONE_MATCH, &brotli_etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = client
            .get(server.url(asset))
            .header(header::IF_NONE_MATCH, "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }
    // The API is not the client's: unknown API paths stay JSON errors.
    let api = client.get(server.url("/api/nothing")).send().await.unwrap();
    assert!(api.status().is_client_error());
    assert!(
        api.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    server.stop().await;
}
