//! The typed API client: one generic call over the protocol's [`Endpoint`]s, and the
//! [`Backend`] seam through which the app page talks to the server (the real HTTP one,
//! or a scripted one in tests).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use gloo_timers::future::TimeoutFuture;
use keepsake_shared::api::{self, Endpoint, Method};
use keepsake_shared::config::AppConfig;
use keepsake_shared::error::{ErrorBody, ErrorKind};
use keepsake_shared::event::{
    EventRequest, EventResult, PartialUpdate, Resume, SessionStarted, SessionStatus, StreamedEvent,
};
use keepsake_shared::{AppId, PROTOCOL_VERSION, ReplyId, SessionId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{}", .0.message)]
    Server(ErrorBody),
    /// No answer: the server is unreachable or the connection broke.
    #[error("could not reach the server ({0})")]
    Network(String),
    /// An answer that is not what the protocol says (e.g. a proxy's error page).
    #[error("unexpected answer from the server ({0})")]
    Decode(String),
    /// The server speaks another protocol version (it was updated since this page
    /// loaded): only a reload helps.
    #[error("the server speaks protocol version {0}")]
    Outdated(u32),
}

impl ClientError {
    /// The server's error kind, when it sent one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Server(body) => Some(body.error),
            _ => None,
        }
    }

    /// Whether the session is gone and a new one should be started.
    pub fn is_unknown_session(&self) -> bool {
        self.kind() == Some(ErrorKind::UnknownSession)
    }
}

/// Calls `E` with path `params` and `body`. A body that serialises to `null` (the unit
/// request) is not sent at all.
///
/// `fetch` through web-sys directly: gloo-net's wrapper brought the `http` crate and
/// wasm-streams along for two calls (3.3 KB of wasm, 0.4 KB gzip).
pub async fn call<E: Endpoint>(
    params: &E::Params,
    body: &E::Request,
) -> Result<E::Response, ClientError> {
    let body = encode(body)?;
    let text = fetch_text(E::METHOD, &E::path(params), &body).await?;
    decode(&text)
}

/// A request body as JSON.
fn encode(body: &impl serde::Serialize) -> Result<String, ClientError> {
    serde_json::to_string(body).map_err(|e| ClientError::Decode(e.to_string()))
}

/// Sends a request and reads the whole answer: its text when it succeeded, else the
/// error it reports. Not generic, so that the wasm holds the fetch code once rather
/// than once per endpoint.
async fn fetch_text(method: Method, path: &str, body: &str) -> Result<String, ClientError> {
    let response = send(method, path, body).await?;
    let text = response_text(&response).await?;
    if response.ok() {
        Ok(text)
    } else {
        Err(error_answer(&response, &text))
    }
}

/// The whole body of an answer, as text.
async fn response_text(response: &web_sys::Response) -> Result<String, ClientError> {
    Ok(JsFuture::from(response.text().map_err(js_network_error)?)
        .await
        .map_err(js_network_error)?
        .as_string()
        .unwrap_or_default())
}

/// Sends a request; the answer's body is left to read.
async fn send(method: Method, path: &str, body: &str) -> Result<web_sys::Response, ClientError> {
    let init = web_sys::RequestInit::new();
    init.set_method(match method {
        Method::Get => "GET",
        Method::Post => "POST",
    });
    if body != "null" {
        let headers = web_sys::Headers::new().map_err(js_network_error)?;
        headers
            .set("Content-Type", "application/json")
            .map_err(js_network_error)?;
        init.set_headers(&headers);
        init.set_body(&body.into());
    }
    let window = web_sys::window().ok_or_else(|| ClientError::Network("no window".into()))?;
    JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(js_network_error)?
        .dyn_into()
        .map_err(js_network_error)
}

/// A refusal's body as the error it reports.
fn error_answer(response: &web_sys::Response, text: &str) -> ClientError {
    match serde_json::from_str(text).and_then(serde_json::from_value::<ErrorBody>) {
        Ok(body) => ClientError::Server(body),
        Err(_) => ClientError::Decode(format!("HTTP {}", response.status())),
    }
}

/// Runs an event through [`api::RunEventStreamed`]: reads the answer's lines as they
/// arrive (through the body's `ReadableStream`; no stream crate needed for one
/// reader), gives each partial to `on_partial`, and returns the result, or the error,
/// of the last line.
///
/// A connection that drops mid-answer loses nothing: the reply runs on on the
/// server, and this asks for the lines after those it holds whole
/// ([`api::ResumeReply`]), again and again with growing pauses, for about two
/// minutes, so that each line is applied exactly once.
pub async fn run_event_streamed(
    params: &(AppId, SessionId),
    request: &EventRequest,
    on_partial: &dyn Fn(PartialUpdate),
) -> Result<EventResult, ClientError> {
    let response = send(
        api::RunEventStreamed::METHOD,
        &api::RunEventStreamed::path(params),
        &encode(request)?,
    )
    .await?;
    if !response.ok() {
        let text = response_text(&response).await?;
        return Err(error_answer(&response, &text));
    }
    let reply = response
        .headers()
        .get(api::REPLY_HEADER)
        .ok()
        .flatten()
        .and_then(|id| id.parse::<ReplyId>().ok());
    let mut held = 0;
    let mut read = read_lines(&response, &mut held, on_partial).await;
    let Some(reply) = reply else {
        return read?;
    };
    let (app, session) = params;
    let path = api::ResumeReply::path(&(app.clone(), *session, reply));
    let pauses = || {
        ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(60)
            .build()
    };
    let mut tries = pauses();
    let mut progress = held;
    loop {
        let broken = match read {
            Ok(outcome) => return outcome,
            Err(broken) => broken,
        };
        // The allowance is per drop: a resume that brought lines starts it again.
        if held > progress {
            progress = held;
            tries = pauses();
        }
        let Some(pause) = tries.next() else {
            return Err(broken);
        };
        TimeoutFuture::new(u32::try_from(pause.as_millis()).unwrap_or(u32::MAX)).await;
        let resume = encode(&Resume { after: held })?;
        read = match send(api::ResumeReply::METHOD, &path, &resume).await {
            Ok(response) if response.ok() => read_lines(&response, &mut held, on_partial).await,
            // A server's refusal (the reply is gone) is the answer; a passing trouble
            // (the store away, a limit, a proxy's error page while the server
            // restarts) is worth another try.
            Ok(response) => match response_text(&response).await {
                Ok(text) => match error_answer(&response, &text) {
                    refused @ ClientError::Server(_)
                        if response.status() < 500 && response.status() != 429 =>
                    {
                        Ok(Err(refused))
                    }
                    other => Err(other),
                },
                Err(broken) => Err(broken),
            },
            Err(broken) => Err(broken),
        };
    }
}

/// Reads an answer's lines, counting in `held` those it has applied: the outcome of
/// its last line, or `Err` when the connection broke before it (the lines after
/// `held` are still to come).
async fn read_lines(
    response: &web_sys::Response,
    held: &mut u64,
    on_partial: &dyn Fn(PartialUpdate),
) -> Result<Result<EventResult, ClientError>, ClientError> {
    let body = response
        .body()
        .ok_or_else(|| ClientError::Decode("an answer without a body".into()))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(js_network_error)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map_err(js_network_error)?;
        if done.is_truthy() {
            return Err(ClientError::Network(
                "the answer ended before its result".into(),
            ));
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(js_network_error)?;
        pending.extend(js_sys::Uint8Array::new(&value).to_vec());
        while let Some(end) = pending.iter().position(|&byte| byte == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            *held += 1;
            let message = std::str::from_utf8(&line[..end])
                .map_err(|error| ClientError::Decode(error.to_string()))
                .and_then(decode::<StreamedEvent>);
            match message {
                Ok(StreamedEvent::Partial(partial)) => on_partial(partial),
                Ok(StreamedEvent::Done(result)) => return Ok(Ok(result)),
                Ok(StreamedEvent::Failed(error)) => return Ok(Err(ClientError::Server(error))),
                Err(error) => return Ok(Err(error)),
            }
        }
    }
}

/// Reads a successful answer. One that does not fit but carries a `protocol_version`
/// other than [`PROTOCOL_VERSION`] (the config of a server whose formats changed) is
/// [`ClientError::Outdated`] rather than a decode error.
///
/// The text is parsed into a `Value` first (one instance of the JSON parser for every
/// answer), and the typed message is read from that: reading each message type
/// straight from the text put a copy of the parser's code in the wasm per type.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, ClientError> {
    let answer = parse(text)?;
    let version = protocol_version(&answer);
    serde_json::from_value(answer).map_err(|error| decode_error(version, &error))
}

/// The JSON of an answer, or why it is not JSON.
pub fn parse(text: &str) -> Result<Value, ClientError> {
    serde_json::from_str(text).map_err(|error| ClientError::Decode(error.to_string()))
}

/// The `protocol_version` an answer carries, if any.
fn protocol_version(answer: &Value) -> Option<u32> {
    answer
        .get("protocol_version")?
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
}

/// Not generic, so that it is in the wasm once.
fn decode_error(version: Option<u32>, error: &serde_json::Error) -> ClientError {
    match version {
        Some(version) if version != PROTOCOL_VERSION => ClientError::Outdated(version),
        _ => ClientError::Decode(error.to_string()),
    }
}

/// A failed `fetch` (or a step of it) as a network error with the browser's message.
fn js_network_error(error: wasm_bindgen::JsValue) -> ClientError {
    let message = error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "request failed".to_owned());
    ClientError::Network(message)
}

/// A boxed, non-`Send` future (everything in the browser runs on one thread).
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// What an app page needs from a server.
pub trait Backend {
    fn get_config(&self, app: &AppId) -> LocalFuture<Result<AppConfig, ClientError>>;
    fn start_session(&self, app: &AppId) -> LocalFuture<Result<SessionStarted, ClientError>>;
    fn get_session(
        &self,
        app: &AppId,
        session: &SessionId,
    ) -> LocalFuture<Result<SessionStatus, ClientError>>;
    fn run_event(
        &self,
        app: &AppId,
        session: &SessionId,
        request: EventRequest,
    ) -> LocalFuture<Result<EventResult, ClientError>>;
    /// Runs a streaming listener's event: `on_partial` gets each partial update as it
    /// arrives, the future the final result. By default (a backend that does not
    /// stream) the final result alone.
    fn run_event_streamed(
        &self,
        app: &AppId,
        session: &SessionId,
        request: EventRequest,
        on_partial: Box<dyn Fn(PartialUpdate)>,
    ) -> LocalFuture<Result<EventResult, ClientError>> {
        let _ = on_partial;
        self.run_event(app, session, request)
    }
    /// URL of the session's feed, or `None` when there is none (tests).
    fn feed_url(&self, app: &AppId, session: &SessionId) -> Option<String>;
}

/// The real server, over HTTP on the page's origin.
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpBackend;

impl Backend for HttpBackend {
    fn get_config(&self, app: &AppId) -> LocalFuture<Result<AppConfig, ClientError>> {
        let app = app.clone();
        Box::pin(async move { call::<api::GetConfig>(&app, &()).await })
    }

    fn start_session(&self, app: &AppId) -> LocalFuture<Result<SessionStarted, ClientError>> {
        let app = app.clone();
        Box::pin(async move { call::<api::StartSession>(&app, &()).await })
    }

    fn get_session(
        &self,
        app: &AppId,
        session: &SessionId,
    ) -> LocalFuture<Result<SessionStatus, ClientError>> {
        let params = (app.clone(), *session);
        Box::pin(async move { call::<api::GetSession>(&params, &()).await })
    }

    fn run_event(
        &self,
        app: &AppId,
        session: &SessionId,
        request: EventRequest,
    ) -> LocalFuture<Result<EventResult, ClientError>> {
        let params = (app.clone(), *session);
        Box::pin(async move { call::<api::RunEvent>(&params, &request).await })
    }

    fn run_event_streamed(
        &self,
        app: &AppId,
        session: &SessionId,
        request: EventRequest,
        on_partial: Box<dyn Fn(PartialUpdate)>,
    ) -> LocalFuture<Result<EventResult, ClientError>> {
        let params = (app.clone(), *session);
        Box::pin(async move { run_event_streamed(&params, &request, &*on_partial).await })
    }

    fn feed_url(&self, app: &AppId, session: &SessionId) -> Option<String> {
        Some(api::feed_path(app, session))
    }
}
