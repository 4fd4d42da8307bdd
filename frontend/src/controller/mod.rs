//! The page controller: one running app's page state in this tab.
//!
//! The [`Controller`] owns the page's session, its event queue, its feed and
//! its browser states; pages ([`crate::app_page`]) and component views
//! ([`crate::components`]) read its signals and report user actions to it, and it
//! knows neither (no view imports flow back here). Events run through one queue, one
//! at a time and in order, so that the updates they return are applied in the order
//! they were asked for. Input values are read when an event is *sent*, not when it is
//! queued, and a change listener already waiting in the queue is not queued twice
//! (Gradio's "always last" for change events): fast typing costs one request per
//! round trip, and every request carries the newest values.
//!
//! Rooms: this file (page state, user actions, the event queue, applying answers),
//! [`session`] (the session, its feed and reconnection, other tabs) and
//! [`timers`] (timer ticks, which run quietly and never pile up).

mod preview;
mod session;
mod slots;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use gloo_timers::future::TimeoutFuture;
use keepsake_shared::config::{AppConfig, ComponentConfig, ComponentKind, EventKind};
use keepsake_shared::error::ErrorKind;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult, Notice};
use keepsake_shared::render::RenderedRegion;
use keepsake_shared::{ComponentId, ListenerId, SessionId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use crate::api::{Backend, ClientError};
use crate::browser_state::{BrowserStates, KeyValueStore, warn};
pub use slots::Props;
use slots::Slots;

/// How many change listeners may trigger each other in a row before the chain is cut
/// (an app whose listeners feed each other would otherwise loop forever).
pub const MAX_CHAIN_DEPTH: u8 = 8;

/// Shown when the server had forgotten this page's session and a new one was started.
pub const SESSION_RESTARTED: &str = "Your session expired; a new one was started.";
/// Shown while the feed is down.
pub const CONNECTION_LOST: &str = "Connection lost — reconnecting…";

/// Page-wide status shown to the user.
#[derive(Debug, Clone, Copy)]
pub struct PageStatus {
    /// An event is running (or waiting to).
    pub running: RwSignal<bool>,
    /// The last failure, for the error banner.
    pub error: RwSignal<Option<String>>,
    /// A non-error notice (e.g. a new session was started).
    pub notice: RwSignal<Option<String>>,
    /// Browser storage refused a value; it is kept for this page only.
    pub storage_warning: RwSignal<Option<String>>,
    /// The feed is down.
    pub connection_lost: RwSignal<bool>,
    /// Messages listeners gave (info, warning), oldest first, until dismissed.
    pub messages: RwSignal<Vec<Notice>>,
}

impl PageStatus {
    fn new() -> Self {
        PageStatus {
            running: RwSignal::new(false),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            storage_warning: RwSignal::new(None),
            connection_lost: RwSignal::new(false),
            messages: RwSignal::new(Vec::new()),
        }
    }
}

/// One queued run of a listener.
#[derive(Debug, Clone, Copy)]
struct Job {
    listener: ListenerId,
    /// How many change listeners led to this one (0: a user action, load or push).
    depth: u8,
    /// Already retried after starting a new session.
    retried: bool,
}

/// The window's `storage` listener (other tabs' writes), removed on drop.
type StorageListener = Closure<dyn FnMut(web_sys::StorageEvent)>;

/// An open feed. Dropping it closes the connection.
struct Feed {
    source: web_sys::EventSource,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// The state and behaviour of one app page.
pub struct Controller {
    config: AppConfig,
    backend: Rc<dyn Backend>,
    /// The drawn components' signals, rendered regions' included.
    slots: Slots,
    /// Components a streaming answer is previewing, with what they showed before.
    previewed: RefCell<preview::Previewed>,
    browser: BrowserStates,
    pub status: PageStatus,
    session: RefCell<Option<SessionId>>,
    /// Bumped whenever a session is (re)started; stale callbacks compare against it.
    generation: Cell<u32>,
    restarting: Cell<bool>,
    /// The app cannot run (e.g. the server does not know it); give up on events.
    fatal: Cell<bool>,
    queue: RefCell<VecDeque<Job>>,
    queue_running: Cell<bool>,
    /// The listener whose job is being sent or applied, if any.
    current: Cell<Option<ListenerId>>,
    feed: RefCell<Option<Feed>>,
    feed_failed: Cell<bool>,
    reconnecting: Cell<bool>,
    storage_listener: RefCell<Option<StorageListener>>,
    weak: Weak<Controller>,
}

impl Controller {
    /// A page for `config`. Nothing happens until [`Controller::start`].
    pub fn new(
        config: AppConfig,
        backend: Rc<dyn Backend>,
        store: Box<dyn KeyValueStore>,
    ) -> Rc<Self> {
        let slots = Slots::new(&config);
        let browser = BrowserStates::new(&config, store);
        Rc::new_cyclic(|weak| Controller {
            config,
            backend,
            slots,
            previewed: RefCell::default(),
            browser,
            status: PageStatus::new(),
            session: RefCell::new(None),
            generation: Cell::new(0),
            restarting: Cell::new(false),
            fatal: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
            queue_running: Cell::new(false),
            current: Cell::new(None),
            feed: RefCell::new(None),
            feed_failed: Cell::new(false),
            reconnecting: Cell::new(false),
            storage_listener: RefCell::new(None),
            weak: weak.clone(),
        })
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    pub fn value_signal(&self, id: ComponentId) -> Option<RwSignal<Value>> {
        self.slots.value(id)
    }

    pub fn props_signal(&self, id: ComponentId) -> Option<RwSignal<Props>> {
        self.slots.props(id)
    }

    /// The server-rendered HTML of a Markdown or Chatbot component.
    pub fn html_signal(&self, id: ComponentId) -> Option<RwSignal<String>> {
        self.slots.html(id)
    }

    /// Component `id`: the config's, or one of a rendered region's current render.
    pub fn component(&self, id: ComponentId) -> Option<ComponentConfig> {
        match self.config.component(id) {
            Some(component) => Some(component.clone()),
            None => self.slots.component(id),
        }
    }

    /// A rendered region's current contents, which its layout view draws.
    pub fn region_signal(&self, region: u32) -> Option<RwSignal<RenderedRegion>> {
        self.slots.region(region)
    }

    pub fn browser_states(&self) -> &BrowserStates {
        &self.browser
    }

    /// The current session, if one is established.
    pub fn session(&self) -> Option<SessionId> {
        *self.session.borrow()
    }

    /// Whether any listener is triggered by `event` on `component`.
    pub fn has_listeners(&self, component: ComponentId, event: EventKind) -> bool {
        self.config
            .listeners(Some(component), event)
            .next()
            .is_some()
            || !self.slots.listeners(component, event).is_empty()
    }

    fn rc(&self) -> Option<Rc<Self>> {
        self.weak.upgrade()
    }

    /// Reads browser states, listens to other tabs, starts a session and its feed,
    /// then runs the load listeners.
    pub fn start(self: &Rc<Self>) {
        self.report_storage_errors(&self.browser.load());
        self.listen_to_other_tabs();
        let this = self.clone();
        spawn_local(async move {
            if this.establish_session().await {
                this.fire(None, EventKind::Load, 0);
            }
        });
    }

    fn report_storage_errors(&self, errors: &[crate::browser_state::StorageError]) {
        if let Some(error) = errors.first() {
            self.status.storage_warning.set(Some(format!(
                "Your browser did not let this page use its storage ({error}). \
                 Values are kept for this page only and will be lost when it closes."
            )));
        }
    }

    // ----- user actions -------------------------------------------------------------

    /// The user edited a component: take the value and run its change listeners.
    pub fn user_input(&self, id: ComponentId, value: Value) {
        let Some(signal) = self.slots.value(id) else {
            return;
        };
        if signal.with_untracked(|current| *current == value) {
            return;
        }
        signal.set(value);
        self.fire(Some(id), EventKind::Change, 0);
    }

    /// The user clicked a button.
    pub fn click(&self, id: ComponentId) {
        self.fire(Some(id), EventKind::Click, 0);
    }

    /// The user pressed Enter in a textbox.
    pub fn submit(&self, id: ComponentId) {
        self.fire(Some(id), EventKind::Submit, 0);
    }

    // ----- the event queue ----------------------------------------------------------

    /// Queues every listener of `event` on `component`.
    fn fire(&self, component: Option<ComponentId>, event: EventKind, depth: u8) {
        let mut listeners: Vec<ListenerId> = self
            .config
            .listeners(component, event)
            .map(|d| d.id)
            .collect();
        if let Some(component) = component {
            listeners.extend(self.slots.listeners(component, event));
        }
        for listener in listeners {
            self.enqueue(listener, depth, event == EventKind::Change);
        }
    }

    fn enqueue(&self, listener: ListenerId, depth: u8, coalesce: bool) {
        if depth > MAX_CHAIN_DEPTH {
            warn(&format!(
                "Keepsake: listener {} not run: more than {MAX_CHAIN_DEPTH} change listeners triggered each other",
                listener.0
            ));
            return;
        }
        {
            let mut queue = self.queue.borrow_mut();
            // Inputs are read when a job is sent, so a waiting duplicate would only
            // send the same values again.
            if coalesce && queue.iter().any(|job| job.listener == listener) {
                return;
            }
            queue.push_back(Job {
                listener,
                depth,
                retried: false,
            });
        }
        if !self.is_quiet(listener) {
            self.status.running.set(true);
        }
        if !self.queue_running.get()
            && let Some(this) = self.rc()
        {
            self.queue_running.set(true);
            spawn_local(this.run_queue());
        }
    }

    async fn run_queue(self: Rc<Self>) {
        loop {
            let job = self.queue.borrow_mut().pop_front();
            let Some(job) = job else { break };
            self.current.set(Some(job.listener));
            self.status.running.set(self.user_job_pending());
            self.run_job(job).await;
            self.current.set(None);
        }
        self.queue_running.set(false);
        self.status.running.set(false);
    }

    /// Waits for a usable session; `None` when the app cannot run at all.
    async fn usable_session(&self) -> Option<(SessionId, u32)> {
        loop {
            if self.fatal.get() {
                return None;
            }
            if !self.restarting.get()
                && let Some(session) = self.session()
            {
                return Some((session, self.generation.get()));
            }
            TimeoutFuture::new(50).await;
        }
    }

    fn input_value(&self, id: ComponentId) -> Value {
        match self.config.component(id).map(|c| &c.kind) {
            Some(ComponentKind::BrowserState(_)) => self.browser.input(id),
            // The server ignores them; their values never leave it.
            Some(kind) if kind.is_server_side() => Value::Null,
            // The config's components and rendered ones.
            _ => self
                .slots
                .value(id)
                .map(|s| s.get_untracked())
                .unwrap_or(Value::Null),
        }
    }

    async fn run_job(self: &Rc<Self>, mut job: Job) {
        // A rendered listener as its region's current render has it: gone when its
        // item was removed since the job was queued.
        let found;
        let (listener, rendered) = match self.config.listener(job.listener) {
            Some(listener) => (listener, None),
            None => {
                let Some((listener, target)) = self.slots.listener(job.listener) else {
                    return;
                };
                found = listener;
                (&found, Some(target))
            }
        };
        loop {
            let Some((session, generation)) = self.usable_session().await else {
                return;
            };
            let read_at = self.browser.version();
            let request = EventRequest {
                listener: job.listener,
                inputs: listener
                    .inputs
                    .iter()
                    .map(|&id| self.input_value(id))
                    .collect(),
                held: self.browser.held_for(listener),
                rendered: rendered.clone(),
            };
            // A streaming listener's answer comes in parts, previewed as they come.
            let result = if listener.streams {
                self.send_streamed(&session, request).await
            } else {
                let app = &self.config.id;
                self.backend.run_event(app, &session, request).await
            };
            match result {
                Ok(result) => {
                    // A user's new action clears the last failure; what follows
                    // it (a chained listener after a failure) leaves it shown.
                    if job.depth == 0 && !self.is_quiet(job.listener) {
                        self.status.error.set(None);
                    }
                    let ran = result.ran.clone();
                    let failed: Vec<ListenerId> =
                        result.errors.iter().map(|e| e.listener).collect();
                    self.apply_result(result, job.depth, read_at);
                    // The chained listeners the server left to the page: after those
                    // that ran, and `.then` ones after those that failed.
                    for id in ran {
                        self.run_followers(id, true, false, job.depth);
                    }
                    for id in failed {
                        self.run_followers(id, false, false, job.depth);
                    }
                    return;
                }
                Err(error) if error.is_unknown_session() && !job.retried => {
                    job.retried = true;
                    if !self.clone().restart_session(generation).await {
                        self.show_error(&error);
                        return;
                    }
                }
                Err(error) => {
                    self.show_error(&error);
                    // The server ran nothing of it: its `.then` listeners are the
                    // page's to run, all of them.
                    self.run_followers(job.listener, false, true, job.depth);
                    return;
                }
            }
        }
    }

    /// Queues the listeners chained after `listener`: `.success` ones only if it
    /// `succeeded`; those the server runs itself only if it ran none (`all`).
    fn run_followers(&self, listener: ListenerId, succeeded: bool, all: bool, depth: u8) {
        let followers: Vec<ListenerId> = self
            .config
            .followers(listener)
            .filter(|dep| {
                dep.after.is_some_and(|after| {
                    (all || !after.by_server) && (succeeded || !after.success_only)
                })
            })
            .map(|dep| dep.id)
            .collect();
        for follower in followers {
            self.enqueue(follower, depth + 1, false);
        }
    }

    fn show_error(&self, error: &ClientError) {
        // A handler's own error (Gradio's `gr.Error`) is the app's message to the
        // user, shown as written.
        let text = match error.kind() {
            Some(ErrorKind::HandlerFailed) => error.to_string(),
            _ => format!("The last action failed: {error}"),
        };
        self.status.error.set(Some(text));
    }

    /// Applies an event's answer; `read_at` is the browser-state version its inputs
    /// were read at (a stale answer's browser-state writes are dropped).
    fn apply_result(&self, result: EventResult, depth: u8, read_at: u64) {
        // First: updates may name the components of the new renders.
        for region in result.regions {
            self.slots.set_region(region);
        }
        if !result.notices.is_empty() {
            self.status
                .messages
                .update(|shown| shown.extend(result.notices));
        }
        for update in result.updates {
            self.apply_update(update, depth);
        }
        let applied = self.browser.apply(result.browser_state, read_at);
        if let Some(error) = applied.error {
            self.status.storage_warning.set(Some(format!(
                "Your browser did not save this page's data ({error}). \
                 It is kept for this page only."
            )));
        }
        for id in applied.changed {
            self.fire(Some(id), EventKind::Change, depth + 1);
        }
        if !result.errors.is_empty() {
            let messages: Vec<String> = result
                .errors
                .iter()
                .map(|e| e.error.message.clone())
                .collect();
            self.status.error.set(Some(format!(
                "A follow-up action failed: {}",
                messages.join("; ")
            )));
        }
    }

    /// Applies one update: props, then value; a value that changes runs the
    /// component's change listeners. Browser states never come as updates (they come
    /// as [`keepsake_shared::event::BrowserStateWrite`]s): they have no signal here.
    pub fn apply_update(&self, update: ComponentUpdate, depth: u8) {
        let id = update.component;
        if let Some(props) = self.slots.props(id) {
            let p = update.props;
            if !p.is_empty() {
                props.update(|props| {
                    if let Some(label) = p.label {
                        props.label = Some(label);
                    }
                    if let Some(visible) = p.visible {
                        props.visible = visible;
                    }
                    if let Some(interactive) = p.interactive {
                        props.interactive = interactive;
                    }
                    if let Some(choices) = p.choices {
                        props.choices = choices;
                    }
                    if let Some(active) = p.active {
                        props.active = active;
                    }
                });
            }
        }
        if let (Some(html), Some(signal)) = (update.html, self.slots.html(id)) {
            signal.set(html);
        }
        if let (Some(value), Some(signal)) = (update.value, self.slots.value(id))
            && signal.with_untracked(|current| *current != value)
        {
            signal.set(value);
            self.fire(Some(id), EventKind::Change, depth + 1);
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let (Some(window), Some(listener)) =
            (web_sys::window(), self.storage_listener.get_mut().take())
        {
            let _ = window
                .remove_event_listener_with_callback("storage", listener.as_ref().unchecked_ref());
        }
    }
}

/// A copyable, thread-safe handle on a [`Controller`] for view closures (the
/// controller itself is single-threaded and lives in Leptos' local arena).
#[derive(Clone, Copy)]
pub struct PageHandle(StoredValue<Rc<Controller>, LocalStorage>);

impl PageHandle {
    pub fn new(controller: Rc<Controller>) -> Self {
        PageHandle(StoredValue::new_local(controller))
    }

    pub fn get(self) -> Option<Rc<Controller>> {
        self.0.try_get_value()
    }

    pub fn user_input(self, id: ComponentId, value: Value) {
        if let Some(c) = self.get() {
            c.user_input(id, value);
        }
    }

    pub fn click(self, id: ComponentId) {
        if let Some(c) = self.get() {
            c.click(id);
        }
    }

    pub fn submit(self, id: ComponentId) {
        if let Some(c) = self.get() {
            c.submit(id);
        }
    }
}
