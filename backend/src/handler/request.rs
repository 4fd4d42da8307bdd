//! What a handler sees of the request: [`Request`].

use std::net::IpAddr;

use axum::http::HeaderMap;
use hkdf::Hkdf;
use keepsake_shared::SessionId;
use sha2::Sha256;

use crate::handler::{Input, SlotRef, sealed};

/// What a handler may know of the request behind its event (Gradio's `gr.Request`):
/// the session's short id, a key of the session for the app's own storage, the
/// client's address and the HTTP headers.
///
/// A handler asks for it by listing [`REQUEST`] among its inputs; it is filled in by
/// the server, so it is no input slot: pages and API clients never see or send it.
/// Listeners the server runs of its own accord (unload) get one with the session
/// only, and `.change` listeners get the request of the event that set them off.
///
/// The request behind an event, as a handler argument (see [`REQUEST`]).
///
/// ```
/// use keepsake::{Blocks, REQUEST, Request};
/// use keepsake::components::{Button, Markdown};
///
/// let mut app = Blocks::new("hello", "Hello");
/// let greeting = app.add(Markdown::new(""));
/// let button = app.add(Button::new("Who am I?"));
/// app.click(button, REQUEST, greeting, |request: Request| {
///     let agent = request.header("user-agent").unwrap_or("an unknown browser");
///     format!("Session {} from {agent}", request.session())
/// });
/// # app.build().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Request {
    session: Option<SessionId>,
    /// [`Request::session_key`], when the session has one: 128 bits written as
    /// 32 hex digits held inline, as a session id is (hence its type; it is no id).
    key: Option<SessionId>,
    client_address: Option<IpAddr>,
    headers: HeaderMap,
}

impl Request {
    /// A request from `client_address` with `headers` (what the HTTP layer knows).
    pub fn new(client_address: Option<IpAddr>, headers: HeaderMap) -> Self {
        Request {
            session: None,
            key: None,
            client_address,
            headers,
        }
    }

    /// The same request, in `session` (kept inline: no allocation per event).
    pub(crate) fn in_session(mut self, session: SessionId) -> Self {
        self.session = Some(session);
        self
    }

    /// The same request, with its session's key derived from the store's `seed`
    /// (HKDF-SHA256, under a label of its own: no other id the server derives
    /// from the seed is this one).
    pub(crate) fn with_key(mut self, seed: &[u8; 32]) -> Self {
        let Some(session) = self.session else {
            return self;
        };
        let mut bytes = [0u8; 16];
        // 16 bytes is far below HKDF-SHA256's limit of 8160: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(b"keepsake request session key"), seed)
            .expand(session.as_str().as_bytes(), &mut bytes);
        self.key = Some(SessionId::from_bytes(bytes));
        self
    }

    /// A key of the session for the app's own storage (a database row, a cache
    /// entry): 32 hex digits, the same for every event of the session, on every
    /// instance and after a restart when the store is Redis, different for every
    /// session, and no way to learn the session's id (which would let its holder
    /// act as the user). Empty outside a session.
    pub fn session_key(&self) -> &str {
        self.key.as_ref().map_or("", SessionId::as_str)
    }

    /// The session's id, for the server's own use (never shown).
    pub(crate) fn session_id(&self) -> Option<&SessionId> {
        self.session.as_ref()
    }

    /// The session's short id (its first 8 hex digits, as the logs show it; never
    /// the full id, which is the session's secret).
    pub fn session(&self) -> &str {
        self.session.as_ref().map_or("", SessionId::short)
    }

    /// The client's address (behind trusted proxies, the one they report); `None`
    /// for listeners the server runs itself and callers that gave none.
    pub fn client_address(&self) -> Option<IpAddr> {
        self.client_address
    }

    /// The request's HTTP headers (empty for listeners the server runs itself).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value, if present and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// Header values (cookies, tokens) stay out of logs: only their names are shown.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("session", &self.session())
            .field("client_address", &self.client_address)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The input that gives a handler the [`Request`] behind its event.
#[derive(Clone, Copy, Debug)]
pub struct RequestInput;

/// List it among a listener's inputs to get the [`Request`] as that argument.
pub const REQUEST: RequestInput = RequestInput;

impl Input for RequestInput {
    type Value = Request;
}

impl sealed::SealedInput for RequestInput {
    fn slot_ref(&self) -> SlotRef {
        SlotRef::Request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_header_names_not_values() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "secret=42".parse().unwrap_or_else(|_| unreachable!()),
        );
        let session = SessionId::from_bytes([0xab; 16]);
        let request = Request::new(None, headers).in_session(session);
        let shown = format!("{request:?}");
        assert!(
            shown.contains("cookie") && shown.contains("abababab"),
            "{shown}"
        );
        assert!(
            !shown.contains(session.as_str()),
            "never the full id: {shown}"
        );
        assert!(!shown.contains("secret=42"), "{shown}");
    }

    #[test]
    fn a_session_key_is_stable_per_session_and_tells_nothing_of_its_id() {
        let seed = [7u8; 32];
        let (one, two) = (
            SessionId::from_bytes([0xab; 16]),
            SessionId::from_bytes([0xac; 16]),
        );
        let key = |session, seed: &[u8; 32]| {
            Request::default()
                .in_session(session)
                .with_key(seed)
                .session_key()
                .to_owned()
        };
        assert_eq!(key(one, &seed), key(one, &seed));
        assert_eq!(key(one, &seed).len(), 32);
        assert_ne!(key(one, &seed), key(two, &seed));
        assert_ne!(key(one, &seed), key(one, &[8u8; 32]));
        assert!(!key(one, &seed).contains(one.short()));
        assert_eq!(Request::default().with_key(&seed).session_key(), "");
    }
}
