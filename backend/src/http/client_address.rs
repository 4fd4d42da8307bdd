//! Who is asking: the address of the client, for the per-address limit on session
//! starts. It is the connection's peer address, unless that peer is a reverse proxy
//! the server was told to trust (`--trust-proxy`): then it is the last address in
//! `X-Forwarded-For` that is not itself a trusted proxy. A header from anyone else is
//! ignored, so a client cannot pick its own address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::server::Server;

/// The client's address, or `None` when the server was served without connection
/// info (see [`crate::run`]).
pub(crate) struct ClientAddress(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress
where
    Server: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let server = Server::from_ref(state);
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Ok(ClientAddress(None));
        };
        let trusted = &server.settings().trusted_proxies;
        let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
        let peer = peer.ip().to_canonical();
        if !is_trusted(&peer) {
            return Ok(ClientAddress(Some(peer)));
        }
        // Walk from the nearest hop back: the first address no trusted proxy vouches
        // for is the client. Anything unreadable stops the walk at the last good hop.
        let mut client = peer;
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(address) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = address.to_canonical();
            if !is_trusted(&client) {
                break;
            }
        }
        Ok(ClientAddress(Some(client)))
    }
}
