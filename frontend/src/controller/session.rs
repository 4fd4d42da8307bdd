//! The controller's session: starting it (and a new one when the server forgot it),
//! its feed with reconnection and backoff, and other tabs' storage events.

use std::rc::Rc;
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};
use gloo_timers::future::TimeoutFuture;
use keepsake_shared::config::EventKind;
use keepsake_shared::error::ErrorKind;
use keepsake_shared::feed::{FeedMessage, SSE_EVENT_NAME};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use super::{Controller, Feed, SESSION_RESTARTED};
use crate::api::ClientError;
use crate::browser_state::warn;

/// Pauses between attempts to reach a server that is down: from half a second,
/// doubling up to five, each lengthened by a random part of itself (up to twice), so
/// the pages of a restarted server do not all come back in the same instant.
fn retry_delays() -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        // `fastrand` has no entropy source on wasm32-unknown-unknown: seed it here.
        .with_jitter_seed((js_sys::Math::random() * u64::MAX as f64) as u64)
        .with_jitter()
        .build()
}

/// Waits for the next pause of `delays`.
async fn pause(delays: &mut ExponentialBackoff) {
    // Never empty (no limit on attempts); the fallback only keeps the type total.
    let delay = delays.next().unwrap_or(Duration::from_secs(5));
    TimeoutFuture::new(u32::try_from(delay.as_millis()).unwrap_or(u32::MAX)).await;
}

impl Controller {
    /// Starts a session (retrying while the server is unreachable) and opens its
    /// feed. Returns false when the app cannot run.
    pub(super) async fn establish_session(self: &Rc<Self>) -> bool {
        let mut delays = retry_delays();
        loop {
            match self.backend.start_session(&self.config.id).await {
                Ok(started) => {
                    *self.session.borrow_mut() = Some(started.session_id);
                    self.generation.set(self.generation.get().wrapping_add(1));
                    self.status.connection_lost.set(false);
                    self.open_feed();
                    return true;
                }
                Err(ClientError::Server(body))
                    if matches!(body.error, ErrorKind::UnknownApp | ErrorKind::BadRequest) =>
                {
                    self.fatal.set(true);
                    self.status.error.set(Some(format!(
                        "This app cannot be started: {}",
                        body.message
                    )));
                    return false;
                }
                Err(error) => {
                    warn(&format!("Keepsake: could not start a session: {error}"));
                    self.status.connection_lost.set(true);
                    pause(&mut delays).await;
                }
            }
        }
    }

    /// Replaces a session the server no longer knows. `seen` is the generation the
    /// caller found broken: if another caller already replaced it, nothing is done.
    pub(super) async fn restart_session(self: Rc<Self>, seen: u32) -> bool {
        while self.restarting.get() {
            TimeoutFuture::new(50).await;
        }
        if self.generation.get() != seen {
            return self.session().is_some();
        }
        self.restarting.set(true);
        self.feed.borrow_mut().take();
        *self.session.borrow_mut() = None;
        let started = self.establish_session().await;
        self.restarting.set(false);
        if started {
            self.status.notice.set(Some(SESSION_RESTARTED.to_owned()));
        }
        started
    }

    // ----- the feed --------------------------------------------------------

    fn open_feed(self: &Rc<Self>) {
        self.feed.borrow_mut().take();
        let Some(session) = self.session() else {
            return;
        };
        let Some(url) = self.backend.feed_url(&self.config.id, &session) else {
            return;
        };
        let generation = self.generation.get();
        let source = match web_sys::EventSource::new(&url) {
            Ok(source) => source,
            Err(_) => {
                self.status.connection_lost.set(true);
                spawn_local(self.clone().reconnect(generation));
                return;
            }
        };
        let weak = self.weak.clone();
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| {
                if let Some(this) = weak.upgrade() {
                    this.on_feed_message(generation, &event);
                }
            },
        );
        let weak = self.weak.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(this) = weak.upgrade() {
                this.on_feed_open(generation);
            }
        });
        let weak = self.weak.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(this) = weak.upgrade() {
                this.on_feed_error(generation);
            }
        });
        if source
            .add_event_listener_with_callback(SSE_EVENT_NAME, on_message.as_ref().unchecked_ref())
            .is_err()
        {
            warn("Keepsake: could not listen to the feed");
        }
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        self.feed_failed.set(false);
        *self.feed.borrow_mut() = Some(Feed {
            source,
            _on_message: on_message,
            _on_open: on_open,
            _on_error: on_error,
        });
    }

    fn on_feed_message(self: &Rc<Self>, generation: u32, event: &web_sys::MessageEvent) {
        if generation != self.generation.get() {
            return;
        }
        let Some(data) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str(&data).and_then(serde_json::from_value::<FeedMessage>) {
            Ok(FeedMessage::Attached) => self.status.connection_lost.set(false),
            Ok(FeedMessage::Heartbeat) => {}
            Ok(FeedMessage::Push { update }) => self.apply_update(update, 0),
            Ok(FeedMessage::SessionEnded) => {
                let this = self.clone();
                spawn_local(async move {
                    this.restart_session(generation).await;
                });
            }
            Err(error) => warn(&format!("Keepsake: unreadable feed message: {error}")),
        }
    }

    fn on_feed_open(self: &Rc<Self>, generation: u32) {
        if generation != self.generation.get() {
            return;
        }
        self.status.connection_lost.set(false);
        if self.feed_failed.replace(false) {
            // Back after an outage: the server may have forgotten the session.
            let this = self.clone();
            spawn_local(async move {
                this.check_session(generation).await;
            });
        }
    }

    fn on_feed_error(self: &Rc<Self>, generation: u32) {
        if generation != self.generation.get() {
            return;
        }
        self.feed_failed.set(true);
        self.status.connection_lost.set(true);
        let closed = self
            .feed
            .borrow()
            .as_ref()
            .is_some_and(|s| s.source.ready_state() == web_sys::EventSource::CLOSED);
        // While CONNECTING the browser retries by itself; once CLOSED (e.g. the
        // server answered 404 for a forgotten session) it is up to us.
        if closed && !self.reconnecting.get() {
            spawn_local(self.clone().reconnect(generation));
        }
    }

    /// Checks that the session survived an outage; replaces it if not.
    async fn check_session(self: Rc<Self>, generation: u32) {
        let Some(session) = self.session() else {
            return;
        };
        if let Err(error) = self.backend.get_session(&self.config.id, &session).await
            && error.is_unknown_session()
        {
            self.restart_session(generation).await;
        }
    }

    /// Reopens a closed feed: on the same session if the server still has it, on a
    /// new one otherwise, retrying with backoff while the server is unreachable.
    async fn reconnect(self: Rc<Self>, generation: u32) {
        self.reconnecting.set(true);
        let mut delays = retry_delays();
        loop {
            pause(&mut delays).await;
            if generation != self.generation.get() {
                break;
            }
            let Some(session) = self.session() else { break };
            match self.backend.get_session(&self.config.id, &session).await {
                Ok(_) => {
                    self.open_feed();
                    break;
                }
                Err(error) if error.is_unknown_session() => {
                    self.reconnecting.set(false);
                    self.clone().restart_session(generation).await;
                    return;
                }
                Err(_) => {}
            }
        }
        self.reconnecting.set(false);
    }

    // ----- other tabs ---------------------------------------------------------------

    pub(super) fn listen_to_other_tabs(self: &Rc<Self>) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if self.browser.is_empty() {
            return;
        }
        let weak = self.weak.clone();
        let listener = Closure::<dyn FnMut(web_sys::StorageEvent)>::new(
            move |event: web_sys::StorageEvent| {
                if let Some(this) = weak.upgrade() {
                    this.on_storage_event(&event);
                }
            },
        );
        if window
            .add_event_listener_with_callback("storage", listener.as_ref().unchecked_ref())
            .is_ok()
        {
            *self.storage_listener.borrow_mut() = Some(listener);
        }
    }

    /// Another tab of this browser changed localStorage: run the change listeners of
    /// the browser states it changed.
    pub fn on_storage_event(&self, event: &web_sys::StorageEvent) {
        for id in self.browser.storage_event(event) {
            self.fire(Some(id), EventKind::Change, 0);
        }
    }
}
