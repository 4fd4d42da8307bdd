//! The JSON body extractor: axum's `Json`, with every rejection turned into an
//! [`ApiError`] that says what was wrong.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::server::Server;

/// JSON body extractor whose rejections are [`ApiError`]s with clear messages.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T>
where
    Server: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The common request, `Content-Type: application/json` and a body that parses,
        // takes the short way: no MIME parse, and serde_json without the path tracking
        // that only an error message needs. Anything else goes through axum's `Json`,
        // whose rejection says what was wrong, exactly as before.
        if !plain_json_content_type(request.headers()) {
            return match Json::<T>::from_request(request, state).await {
                Ok(Json(value)) => Ok(ApiJson(value)),
                Err(rejection) => Err(json_rejection(rejection, limit(state))),
            };
        }
        let bytes = read_body(request.into_body(), limit(state)).await?;
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(value));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection, limit(state))),
        }
    }
}

/// The whole body, of at most `limit` bytes (the router's `DefaultBodyLimit` for
/// every route that takes JSON), read with `axum::body::to_bytes`; its failures
/// reported as axum's `Bytes` extractor's would be. That extractor boxes the body a
/// second time to limit it, which the events request paid for on every click.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(cause) = source {
            if cause.is::<LengthLimitError>() {
                return ApiError::PayloadTooLarge { limit };
            }
            source = cause.source();
        }
        ApiError::BadRequest(format!("Failed to buffer the request body: {error}"))
    })
}

/// Whether the request says exactly `Content-Type: application/json`, which axum's
/// `Json` accepts; `false` leaves the decision (parameters, `+json` types, case) to it.
fn plain_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json")
}

fn limit<S>(state: &S) -> usize
where
    Server: FromRef<S>,
{
    Server::from_ref(state).settings().max_body_bytes
}

fn json_rejection(rejection: JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::BadRequest("expected a JSON body with Content-Type: application/json".into())
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::BadRequest(format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::BadRequest(format!(
            "the body does not have the expected shape: {}",
            e.body_text()
        )),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge { limit }
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use futures::stream;
    use tower::ServiceExt as _;

    use super::*;

    const LIMIT: usize = 16;

    /// A body sent in `chunks`, then failing if `fails`, with no length known.
    fn streamed(chunks: &[&'static str], fails: bool) -> Body {
        let mut frames: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|chunk| Ok(Bytes::from(*chunk))).collect();
        if fails {
            frames.push(Err(std::io::Error::other("connection reset")));
        }
        Body::from_stream(stream::iter(frames))
    }

    async fn parts(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// What axum's `Bytes` extractor under `DefaultBodyLimit::max(LIMIT)` answers,
    /// mapped as `ApiJson` mapped it before it read the body itself.
    async fn through_axum(body: Body) -> (StatusCode, String) {
        let router = Router::new()
            .route(
                "/",
                post(
                    |bytes: Result<Bytes, axum::extract::rejection::BytesRejection>| async {
                        match bytes {
                            Ok(bytes) => bytes.into_response(),
                            Err(rejection) => {
                                json_rejection(rejection.into(), LIMIT).into_response()
                            }
                        }
                    },
                ),
            )
            .layer(DefaultBodyLimit::max(LIMIT));
        let request = Request::post("/").body(body).unwrap_or_default();
        match router.oneshot(request).await {
            Ok(response) => parts(response).await,
            Err(never) => match never {},
        }
    }

    async fn through_read_body(body: Body) -> (StatusCode, String) {
        match read_body(body, LIMIT).await {
            Ok(bytes) => parts(bytes.into_response()).await,
            Err(error) => parts(error.into_response()).await,
        }
    }

    #[tokio::test]
    async fn the_body_is_read_and_refused_as_axums_bytes_extractor_does() {
        let cases: [(&[&'static str], bool); 7] = [
            (&[], false),
            (&["{\"a\":1}"], false),
            (&["{\"a\"", ":", "1}"], false),
            (&["0123456789abcdef"], false),
            (&["0123456789", "abcdefg"], false),
            (&["0123456789abcdefXYZ"], false),
            (&["{\"a\""], true),
        ];
        for (chunks, fails) in cases {
            let ours = through_read_body(streamed(chunks, fails)).await;
            let axums = through_axum(streamed(chunks, fails)).await;
            assert_eq!(ours, axums, "chunks {chunks:?}, failing {fails}");
        }
        // A body whose length is known up front and over the limit, as well.
        let ours = through_read_body(Body::from("0123456789abcdefXYZ")).await;
        let axums = through_axum(Body::from("0123456789abcdefXYZ")).await;
        assert_eq!(ours, axums);
        assert_eq!(ours.0, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
