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
//! Rooms: this file (page state, user actions, applying answers), [`queue`] (the
//! event queue, and beside it the lane of listeners that touch no session value;
//! a Stop skips both), [`session`] (the session, its feed and reconnection, other
//! tabs) and [`timers`] (timer ticks, which run quietly and never pile up).

mod preview;
mod queue;
mod session;
mod slots;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use keepsake_shared::config::{AppConfig, ComponentConfig, EventKind};
use keepsake_shared::error::ErrorKind;
use keepsake_shared::event::{ComponentUpdate, EventResult, ItemHtml, Notice};
use keepsake_shared::render::RenderedRegion;
use keepsake_shared::{ComponentId, ListenerId, SessionId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use crate::api::{Backend, ClientError};
use crate::browser_state::{BrowserStates, KeyValueStore};
use queue::Job;
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
    /// Jobs of listeners that touch no session value (`concurrent`), in an order of
    /// their own: they need not wait behind the queue's (a streaming reply, say).
    beside: RefCell<VecDeque<Job>>,
    beside_running: Cell<bool>,
    /// The listener whose job of the lane beside is being sent or applied, if any.
    beside_current: Cell<Option<ListenerId>>,
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
            beside: RefCell::new(VecDeque::new()),
            beside_running: Cell::new(false),
            beside_current: Cell::new(None),
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

    pub fn items_signal(&self, id: ComponentId) -> Option<RwSignal<Vec<String>>> {
        self.slots.items(id)
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

    fn show_error(&self, error: &ClientError) {
        // A handler's own error (Gradio's `gr.Error`) is the app's message to the
        // user, shown as written.
        let text = match error.kind() {
            // The user's Stop, which kept nothing: nothing went wrong.
            Some(ErrorKind::Stopped) => return,
            Some(ErrorKind::HandlerError) => error.to_string(),
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
        if let (Some(value), Some(signal)) = (&update.value, self.slots.items(id)) {
            set_items(signal, &update.items, value);
        }
        if let (Some(value), Some(signal)) = (update.value, self.slots.value(id))
            && signal.with_untracked(|current| *current != value)
        {
            signal.set(value);
            self.fire(Some(id), EventKind::Change, depth + 1);
        }
    }
}

/// Applies an update's items to what a component shows per item, keeping the items
/// the update does not name; as many as the new value has. Items that do not apply
/// (made for other HTML than is held) leave the rest as it was.
fn set_items(signal: RwSignal<Vec<String>>, items: &[ItemHtml], value: &Value) {
    let mut rows = signal.get_untracked();
    for item in items {
        if item.apply(&mut rows).is_err() {
            return;
        }
    }
    rows.truncate(value.as_array().map_or(0, Vec::len));
    if signal.with_untracked(|current| *current != rows) {
        signal.set(rows);
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
