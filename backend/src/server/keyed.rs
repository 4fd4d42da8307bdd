//! Sessions named by a bridge's client: a Gradio client's `session_hash`, chosen by
//! the client, names a Keepsake session held to a page's limits (capacity,
//! retention, per-client start limit, event rate). It never has an open page, so at
//! capacity it is among the sessions that can be evicted (least recently used
//! first), as a page's is once its tab closed; an evicted one starts again empty.
//!
//! The client's name is never the session id. The id is derived from it with a key
//! only the server has (HKDF-SHA256 over the store's seed, which every instance on a
//! Redis namespace shares), under the bridge's own label: a name chosen by one client
//! reaches nobody else's session, no session of another bridge, and no session the
//! server issued (those are random, and an id derived here cannot be aimed at one
//! without the key).

use std::net::IpAddr;
use std::sync::Arc;

use hkdf::Hkdf;
use keepsake_shared::SessionId;
use keepsake_shared::event::{EventRequest, EventResult};
use sha2::Sha256;

use super::{Mounted, Server};
use crate::engine::streamed::PartialSink;
use crate::error::ApiError;
use crate::handler::request::Request;
use crate::session::Session;

/// Salt of the derivation: apart from every other use of the seed.
// Its bytes predate the word "bridge" (these were "doors"): changing them would
// change every named session's id, and Redis-held sessions would be lost.
const SALT: &[u8] = b"keepsake door session v1";

/// Longest client name taken (Gradio's clients send a UUID, 36 characters).
pub(crate) const MAX_KEY_LEN: usize = 128;
/// Shortest: a name is the only secret of its session, so a tiny one is refused.
pub(crate) const MIN_KEY_LEN: usize = 8;

/// Checks a client's session name: 8 to 128 ASCII letters, digits, `-` or `_`.
pub(crate) fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match ok {
        true => Ok(()),
        false => Err(ApiError::BadRequest(format!(
            "a session_hash is {MIN_KEY_LEN} to {MAX_KEY_LEN} ASCII letters, digits, '-' or '_'"
        ))),
    }
}

/// The session `bridge`'s client `key` names in `engine`'s app, started if it is not
/// live (a start counted against `address` as a page's start is).
pub(crate) async fn keyed_session(
    server: &Server,
    app: &Mounted,
    bridge: &str,
    key: &str,
    address: Option<IpAddr>,
) -> Result<Arc<Session>, ApiError> {
    check_key(key)?;
    let id = derive(app.0.seed().await?, bridge, key);
    app.0
        .session_or_start(id, || server.allow_start(address))
        .await
}

/// Runs `request` in the session `bridge`'s client `key` names (started if need be;
/// `found`: the caller looked it up already). If that session ended between the
/// look-up and the event (its retention ran out, an eviction), the event ran nowhere
/// and wrote nothing: it runs once more, in the session the name starts again.
/// `address` is the one a start counts against (`None`: not counted); `origin` is
/// what handlers that take the [`Request`] see; a streaming listener's partial
/// outputs go to `partials`, if given.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_keyed(
    server: &Server,
    app: &Mounted,
    bridge: &str,
    key: &str,
    address: Option<IpAddr>,
    found: Option<SessionId>,
    request: EventRequest,
    origin: Request,
    partials: Option<PartialSink>,
) -> Result<EventResult, ApiError> {
    let session = match found {
        Some(id) => id,
        None => keyed_session(server, app, bridge, key, address).await?.id,
    };
    match app
        .run_event(&session, request.clone(), origin.clone(), partials.clone())
        .await
    {
        Err(ApiError::UnknownSession) => {
            let session = keyed_session(server, app, bridge, key, address).await?;
            app.run_event(&session.id, request, origin, partials).await
        }
        outcome => outcome,
    }
}

/// Runs `request` in a fresh session of its own (a start counted against
/// `address`), for a call that names no session.
pub(crate) async fn run_fresh(
    server: &Server,
    app: &Mounted,
    address: Option<IpAddr>,
    request: EventRequest,
    origin: Request,
    partials: Option<PartialSink>,
) -> Result<EventResult, ApiError> {
    server.allow_start(address)?;
    let session = app.0.create_session().await?;
    app.run_event(&session.id, request, origin, partials).await
}

fn derive(seed: &[u8; 32], bridge: &str, key: &str) -> SessionId {
    let mut bytes = [0u8; 16];
    let info = [bridge.as_bytes(), &[0], key.as_bytes()].concat();
    // 16 bytes is far below HKDF-SHA256's limit of 8160: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(SALT), seed).expand(&info, &mut bytes);
    SessionId::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bound_to_their_bridge_and_the_seed() {
        let seed = [7u8; 32];
        let id = derive(&seed, "gradio", "0123456789abcdef");
        assert_eq!(id, derive(&seed, "gradio", "0123456789abcdef"));
        assert_ne!(id, derive(&seed, "mcp", "0123456789abcdef"));
        assert_ne!(id, derive(&seed, "gradio", "0123456789abcdeF"));
        assert_ne!(id, derive(&[8u8; 32], "gradio", "0123456789abcdef"));
        // The bridge and the key cannot be shifted into each other.
        assert_ne!(
            derive(&seed, "gradio1", "23456789"),
            derive(&seed, "gradio", "123456789")
        );
    }

    #[test]
    fn keys_are_checked() {
        assert!(check_key("0d6f1c3e-5b1a-4a39-9a5c-2f0f5b6c7d8e").is_ok());
        for bad in [
            "short",
            "",
            "has space 12345",
            "ümlaut123",
            &"a".repeat(129),
            "../../etc/pw",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} was taken");
        }
    }
}
