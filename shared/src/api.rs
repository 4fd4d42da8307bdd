//! The HTTP endpoints, typed: each names its method, path and message types, so the
//! server's routes and every client are built from the same definitions.

use serde::{Serialize, de::DeserializeOwned};

use crate::config::{AppConfig, AppSummary};
use crate::event::{EventRequest, EventResult, SessionStarted, SessionStatus, StreamedEvent};
use crate::{AppId, ReplyId, SessionId};

/// HTTP method of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: no request body.
    Get,
    /// `POST`: a JSON request body, unless [`Endpoint::Request`] is `()`.
    Post,
}

/// A typed endpoint. `ROUTE` is the axum route pattern; `path` fills it in.
pub trait Endpoint {
    /// The HTTP method.
    const METHOD: Method;
    /// The route pattern, with `{app}`-style placeholders, as axum takes it.
    const ROUTE: &'static str;
    /// Path parameters.
    type Params;
    /// Request body (`()` for none).
    type Request: Serialize + DeserializeOwned;
    /// Success body.
    type Response: Serialize + DeserializeOwned;
    /// The request path: [`Endpoint::ROUTE`] with `params` filled in.
    fn path(params: &Self::Params) -> String;
}

/// `GET /api/apps`: the apps mounted on this server.
#[derive(Debug)]
pub struct ListApps;
impl Endpoint for ListApps {
    const METHOD: Method = Method::Get;
    const ROUTE: &'static str = "/api/apps";
    type Params = ();
    type Request = ();
    type Response = Vec<AppSummary>;
    fn path(_: &()) -> String {
        Self::ROUTE.to_owned()
    }
}

/// `GET /api/apps/{app}/config`: the app's config.
#[derive(Debug)]
pub struct GetConfig;
impl Endpoint for GetConfig {
    const METHOD: Method = Method::Get;
    const ROUTE: &'static str = "/api/apps/{app}/config";
    type Params = AppId;
    type Request = ();
    type Response = AppConfig;
    fn path(app: &AppId) -> String {
        format!("/api/apps/{app}/config")
    }
}

/// `POST /api/apps/{app}/sessions`: start a session; the server issues its id.
#[derive(Debug)]
pub struct StartSession;
impl Endpoint for StartSession {
    const METHOD: Method = Method::Post;
    const ROUTE: &'static str = "/api/apps/{app}/sessions";
    type Params = AppId;
    type Request = ();
    type Response = SessionStarted;
    fn path(app: &AppId) -> String {
        format!("/api/apps/{app}/sessions")
    }
}

/// `GET /api/apps/{app}/sessions/{session}`: whether a session is alive.
#[derive(Debug)]
pub struct GetSession;
impl Endpoint for GetSession {
    const METHOD: Method = Method::Get;
    const ROUTE: &'static str = "/api/apps/{app}/sessions/{session}";
    type Params = (AppId, SessionId);
    type Request = ();
    type Response = SessionStatus;
    fn path((app, session): &(AppId, SessionId)) -> String {
        format!("/api/apps/{app}/sessions/{session}")
    }
}

/// `POST /api/apps/{app}/sessions/{session}/events`: run a listener.
#[derive(Debug)]
pub struct RunEvent;
impl Endpoint for RunEvent {
    const METHOD: Method = Method::Post;
    const ROUTE: &'static str = "/api/apps/{app}/sessions/{session}/events";
    type Params = (AppId, SessionId);
    type Request = EventRequest;
    type Response = EventResult;
    fn path((app, session): &(AppId, SessionId)) -> String {
        format!("/api/apps/{app}/sessions/{session}/events")
    }
}

/// `POST /api/apps/{app}/sessions/{session}/events/stream`: run a listener and
/// stream its answer: the body is newline-delimited JSON (`application/x-ndjson`),
/// one [`StreamedEvent`] a line: partial updates while a streaming listener yields
/// (none for other listeners), then its `done` result or `failed` error. An error
/// found before the first line (unknown session, bad input, rate limit) is a plain
/// error answer with its status, as [`RunEvent`] gives it. `Response` is the type of
/// one line. The answer names its reply in the [`REPLY_HEADER`] header: a client whose
/// connection drops mid-answer takes the rest from [`ResumeReply`].
#[derive(Debug)]
pub struct RunEventStreamed;
impl Endpoint for RunEventStreamed {
    const METHOD: Method = Method::Post;
    const ROUTE: &'static str = "/api/apps/{app}/sessions/{session}/events/stream";
    type Params = (AppId, SessionId);
    type Request = EventRequest;
    type Response = StreamedEvent;
    fn path((app, session): &(AppId, SessionId)) -> String {
        format!("/api/apps/{app}/sessions/{session}/events/stream")
    }
}

/// The header of a [`RunEventStreamed`] answer that names its reply, for
/// [`ResumeReply`].
pub const REPLY_HEADER: &str = "keepsake-reply";

/// `POST /api/apps/{app}/sessions/{session}/replies/{reply}`: the lines of a
/// streamed answer after the first `after` ones (those a client holds whole, after
/// its connection dropped), then the rest as they come, ending with its `done` or
/// `failed` line: together with what the client holds, each line exactly once. The
/// reply runs on whether a client reads it or not; it can be resumed while it runs
/// and for `--resume-window` after it ended (else the error kind `unknown_reply`).
#[derive(Debug)]
pub struct ResumeReply;
impl Endpoint for ResumeReply {
    const METHOD: Method = Method::Post;
    const ROUTE: &'static str = "/api/apps/{app}/sessions/{session}/replies/{reply}";
    type Params = (AppId, SessionId, ReplyId);
    type Request = crate::event::Resume;
    type Response = StreamedEvent;
    fn path((app, session, reply): &(AppId, SessionId, ReplyId)) -> String {
        format!("/api/apps/{app}/sessions/{session}/replies/{reply}")
    }
}

/// `GET /api/apps/{app}/sessions/{session}/feed`: the SSE stream of
/// [`crate::feed::FeedMessage`]s. Not JSON request/response, hence no `Endpoint`.
pub fn feed_path(app: &AppId, session: &SessionId) -> String {
    format!("/api/apps/{app}/sessions/{session}/feed")
}

/// Route pattern of [`feed_path`].
pub const FEED_ROUTE: &str = "/api/apps/{app}/sessions/{session}/feed";

/// Client-side route of an app's page (served the client's `index.html`).
pub fn app_page_path(app: &AppId) -> String {
    format!("/apps/{app}")
}

/// Route pattern of [`api_docs_path`].
pub const API_DOCS_ROUTE: &str = "/apps/{app}/api";

/// The server-rendered page listing an app's endpoints and how to call them.
pub fn api_docs_path(app: &AppId) -> String {
    format!("/apps/{app}/api")
}
