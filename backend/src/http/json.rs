//! The JSON body extractor: axum's `Json`, with every rejection turned into an
//! [`ApiError`] that says what was wrong.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
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
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| json_rejection(rejection.into(), limit(state)))?;
        if let Ok(value) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(value));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection, limit(state))),
        }
    }
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
