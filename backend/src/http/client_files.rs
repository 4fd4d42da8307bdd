//! The browser client, served from memory: its files are embedded in the binary at
//! compile time (`rust-embed`, from the directory `build.rs` found), with the brotli
//! and gzip copies the build wrote beside each one, so an app binary needs no static
//! directory, no trunk and no network to serve its pages.
//!
//! - A browser gets the smallest copy it accepts (`br`, then `gzip`, else the plain
//!   file), with `Vary: Accept-Encoding`.
//! - Every answer has a strong `ETag` (the file's SHA-256, computed at compile time,
//!   marked per encoding); `If-None-Match` with it gets `304 Not Modified`.
//! - Files whose names carry trunk's content hash (`name-0123456789abcdef.ext`) never
//!   change under that name: `Cache-Control: public, max-age=31536000, immutable`.
//!   `index.html` names them, so it is revalidated on every load (`no-cache`).
//! - A path that names no file gets `index.html`: the client routes `/apps/{id}`.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "$KEEPSAKE_CLIENT_DIR"]
struct Embedded;

const INDEX: &str = "index.html";

/// The bytes of the embedded `index.html`, if any (for the page's policy hashes).
pub(crate) fn index_html() -> Option<Vec<u8>> {
    <Embedded as rust_embed::RustEmbed>::get(INDEX).map(|file| file.data.into_owned())
}

/// Whether a file name carries trunk's content hash: `stem-<hex digits>.ext`. Trunk
/// writes the 64-bit hash without leading zeros (`{:x}`), so one build in sixteen
/// has 15 digits or fewer; 12 or more are taken (a name with five leading zero
/// digits is a one-in-a-million build, and shorter hex words such as `-cafe` are
/// not hashes).
fn is_hashed(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The encodings the request accepts, by preference: brotli, gzip.
fn accepted(headers: &HeaderMap) -> (bool, bool) {
    let mut br = false;
    let mut gzip = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        for item in value.to_str().unwrap_or_default().split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            // `q=0` means "not this one".
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            match coding {
                "br" => br = !refused,
                "gzip" => gzip = !refused,
                _ => {}
            }
        }
    }
    (br, gzip)
}

/// Serves the embedded file `uri` names (or `index.html`).
pub(crate) async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let get = <Embedded as rust_embed::RustEmbed>::get;
    let requested = uri.path().trim_start_matches('/');
    // The compressed copies are served for their plain names only; a path that names
    // no file is a client route.
    let found = (!requested.ends_with(".br") && !requested.ends_with(".gz"))
        .then(|| get(requested))
        .flatten();
    let (name, plain) = match found {
        Some(file) => (requested, Some(file)),
        None => (INDEX, get(INDEX)),
    };
    let Some(plain) = plain else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "This server was built without its browser client: build it (./scripts/run does) and rebuild the server, or pass --static-dir.",
        )
            .into_response();
    };
    let (br, gzip) = accepted(&headers);
    let encoded = [("br", br), ("gzip", gzip)]
        .into_iter()
        .filter(|(_, accepted)| *accepted)
        .find_map(|(coding, _)| {
            let suffix = if coding == "br" { "br" } else { "gz" };
            get(&format!("{name}.{suffix}")).map(|file| (coding, file))
        });
    let hash = plain.metadata.sha256_hash();
    let digest: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    let (etag, encoding, body) = match encoded {
        Some((coding, file)) => (format!("\"{digest}-{coding}\""), Some(coding), file.data),
        None => (format!("\"{digest}\""), None, plain.data),
    };
    let cache = if is_hashed(name) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        let mime = plain.metadata.mimetype();
        if let Ok(value) = HeaderValue::from_str(mime) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        if let Some(coding) = encoding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_trunks() {
        assert!(is_hashed("keepsake-frontend-f84eb5d795a98e1b.js"));
        assert!(is_hashed("keepsake-frontend-f84eb5d795a98e1b_bg.wasm"));
        assert!(is_hashed("style-744ec9a5fb65c2a7.css"));
        // A hash with a leading zero digit, which trunk leaves out.
        assert!(is_hashed("keepsake-frontend-56fad8ed90cf21e.js"));
        assert!(!is_hashed("my-cafe.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("style.css"));
        assert!(!is_hashed("my-app.js"));
    }

    #[test]
    fn accept_encoding_is_read_with_its_weights() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
            accepted(&headers)
        };
        assert_eq!(with("gzip, deflate, br, zstd"), (true, true));
        assert_eq!(with("gzip"), (false, true));
        assert_eq!(with("br;q=0, gzip;q=0.5"), (false, true));
        assert_eq!(with("identity"), (false, false));
    }
}
