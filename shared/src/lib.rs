//! Keepsake's wire protocol.
//!
//! This crate is the only serialisation boundary between a Keepsake server and its
//! clients (the Leptos browser client, the native API client, `curl`). It depends on
//! serde alone so that it compiles unchanged for native targets and for wasm32.
//!
//! The protocol is versioned by [`PROTOCOL_VERSION`]; every [`config::AppConfig`]
//! carries the version it was produced with so a stale client can tell.
//!
//! Invariant: no message defined here ever carries the value of a session `State`
//! or a global value. Session values stay on the server; the client only learns the
//! *ids* of state slots so that it can keep input positions aligned.

// Every public item is documented; CI's clippy (`-D warnings`) enforces it. Set
// here, not in `[workspace.lints]`: the frontend and e2e crates inherit those.
#![warn(missing_docs)]

pub mod api;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod diff;
pub mod endpoints;
pub mod error;
pub mod event;
pub mod feed;
pub mod holding;
pub mod ids;
pub mod render;

pub use ids::{AppId, ComponentId, ListenerId, ReplyId, SessionId, SessionIdError};

/// Version of the message formats in this crate. Bumped on any incompatible change.
///
/// 2: enums (component kinds, layout nodes, stream messages) are externally tagged,
/// `"markdown"` or `{"textbox": {...}}`, where 1 had a `"type"` field.
/// 3: browser states are sealed by the server: the config carries only their storage
/// key, events carry sealed strings ([`event::SealedValue`]) and answers carry
/// [`event::BrowserStateWrite`]s.
/// 4: Markdown components' values come rendered by the server (`html` beside the
/// value in [`config::ComponentProps`] and [`event::ComponentUpdate`]); clients no
/// longer render Markdown.
/// 5: regions rendered from session state ([`config::LayoutNode::Render`],
/// [`event::EventResult::regions`], [`event::EventRequest::rendered`]), component
/// keys ([`config::ComponentProps::key`]), streamed event answers
/// ([`api::RunEventStreamed`], [`event::StreamedEvent`], `streams` of
/// [`config::ListenerConfig`]), and the Slider, Radio, Html, Timer and Chatbot
/// components (with the `tick` event).
/// 6: one word per concept: an event listener is a "listener" everywhere
/// ([`ListenerId`], [`config::ListenerConfig`], [`config::AppConfig::listeners`],
/// [`event::EventRequest::listener`], the error kind `unknown_listener`), and a
/// page's push channel is its feed ([`feed::FeedMessage`], [`api::FEED_ROUTE`],
/// [`event::SessionStatus::connected_feeds`]).
/// 7: streamed answers carry changes, not copies: [`event::ComponentUpdate::edits`]
/// ([`diff`], Gradio's streaming diff) and [`event::EventRequest::shown`]; a Chatbot
/// is rendered per message ([`config::ComponentProps::items`],
/// [`event::ComponentUpdate::items`]) instead of as one `html`; a listener may stop
/// streaming ones ([`config::ListenerConfig::cancels`], the error kind `stopped`); listeners
/// that touch no session value run beside the others ([`config::ListenerConfig::concurrent`]).
/// 8: a streamed answer can be resumed after a dropped connection: it names itself
/// in the [`api::REPLY_HEADER`] header, and [`api::ResumeReply`] gives the lines
/// after those a client holds (the error kind `unknown_reply` when it is gone); a
/// handler's own error is the kind `handler_error` (422), told apart from a fault
/// (`handler_failed`, 500).
pub const PROTOCOL_VERSION: u32 = 8;
