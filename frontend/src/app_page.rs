//! The app page: one running app in this tab.
//!
//! The [`Controller`] owns the page's session, its event queue, its server stream and
//! its browser states; the views in [`crate::components`] only read its signals and
//! report user actions to it. Events run through one queue, one at a time and in
//! order, so that the updates they return are applied in the order they were asked
//! for. Input values are read when an event is *sent*, not when it is queued, and a
//! change listener already waiting in the queue is not queued twice (Gradio's
//! "always last" for change events): fast typing costs one request per round trip,
//! and every request carries the newest values.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};

use keepsake_shared::config::{AppConfig, ComponentKind, EventKind};
use keepsake_shared::error::ErrorKind;
use keepsake_shared::event::{ComponentUpdate, EventRequest, EventResult};
use keepsake_shared::stream::{SSE_EVENT_NAME, ServerMessage};
use keepsake_shared::{AppId, ComponentId, DependencyId, PROTOCOL_VERSION, SessionId};
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::closure::Closure;

use crate::api::{Backend, ClientError, HttpBackend};
use crate::browser_state::{BrowserStates, KeyValueStore, LocalStore, warn};
use crate::components;

/// How many change listeners may trigger each other in a row before the chain is cut
/// (an app whose listeners feed each other would otherwise loop forever).
pub const MAX_CHAIN_DEPTH: u8 = 8;

/// Shown when the server had forgotten this page's session and a new one was started.
pub const SESSION_RESTARTED: &str = "Your session expired; a new one was started.";
/// Shown while the server stream is down.
pub const CONNECTION_LOST: &str = "Connection lost — reconnecting…";

/// Shown instead of an app whose server speaks another protocol version.
pub const OUTDATED: &str =
    "This page is out of date: the server was updated. Reload the page to continue.";

/// Longest pause between reconnection attempts.
const MAX_BACKOFF_MS: i32 = 10_000;

/// The displayed properties of a rendered component.
#[derive(Debug, Clone, PartialEq)]
pub struct Props {
    pub label: Option<String>,
    pub info: Option<String>,
    pub visible: bool,
    /// Resolved: the config's value, or the client's default for the component.
    pub interactive: bool,
    /// Choices of a checkbox group or dropdown (empty for other kinds).
    pub choices: Vec<String>,
}

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
    /// The server stream is down.
    pub connection_lost: RwSignal<bool>,
}

impl PageStatus {
    fn new() -> Self {
        PageStatus {
            running: RwSignal::new(false),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            storage_warning: RwSignal::new(None),
            connection_lost: RwSignal::new(false),
        }
    }
}

/// One queued run of a listener.
#[derive(Debug, Clone, Copy)]
struct Job {
    dependency: DependencyId,
    /// How many change listeners led to this one (0: a user action, load or push).
    depth: u8,
    /// Already retried after starting a new session.
    retried: bool,
}

/// The window's `storage` listener (other tabs' writes), removed on drop.
type StorageListener = Closure<dyn FnMut(web_sys::StorageEvent)>;

/// An open server stream. Dropping it closes the connection.
struct Stream {
    source: web_sys::EventSource,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_open: Closure<dyn FnMut(web_sys::Event)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// The state and behaviour of one app page.
pub struct Controller {
    config: AppConfig,
    backend: Rc<dyn Backend>,
    values: HashMap<ComponentId, RwSignal<Value>>,
    props: HashMap<ComponentId, RwSignal<Props>>,
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
    stream: RefCell<Option<Stream>>,
    stream_failed: Cell<bool>,
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
        let mut values = HashMap::new();
        let mut props = HashMap::new();
        for component in config.components.iter().filter(|c| c.kind.is_rendered()) {
            let id = component.id;
            let is_input = config.dependencies.iter().any(|d| d.inputs.contains(&id));
            let has_triggers = config
                .dependencies
                .iter()
                .any(|d| d.triggers.iter().any(|t| t.component == Some(id)));
            let choices = match &component.kind {
                ComponentKind::CheckboxGroup { choices }
                | ComponentKind::Dropdown { choices, .. } => choices.clone(),
                _ => Vec::new(),
            };
            values.insert(id, RwSignal::new(component.props.value.clone()));
            props.insert(
                id,
                RwSignal::new(Props {
                    label: component.props.label.clone(),
                    info: component.props.info.clone(),
                    visible: component.props.visible,
                    interactive: component
                        .props
                        .interactive
                        .unwrap_or(is_input || has_triggers),
                    choices,
                }),
            );
        }
        let browser = BrowserStates::new(&config, store);
        Rc::new_cyclic(|weak| Controller {
            config,
            backend,
            values,
            props,
            browser,
            status: PageStatus::new(),
            session: RefCell::new(None),
            generation: Cell::new(0),
            restarting: Cell::new(false),
            fatal: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
            queue_running: Cell::new(false),
            stream: RefCell::new(None),
            stream_failed: Cell::new(false),
            reconnecting: Cell::new(false),
            storage_listener: RefCell::new(None),
            weak: weak.clone(),
        })
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    pub fn value_signal(&self, id: ComponentId) -> Option<RwSignal<Value>> {
        self.values.get(&id).copied()
    }

    pub fn props_signal(&self, id: ComponentId) -> Option<RwSignal<Props>> {
        self.props.get(&id).copied()
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
    }

    fn rc(&self) -> Option<Rc<Self>> {
        self.weak.upgrade()
    }

    /// Reads browser states, listens to other tabs, starts a session and its stream,
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
        let Some(signal) = self.values.get(&id) else {
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
        let dependencies: Vec<DependencyId> = self
            .config
            .listeners(component, event)
            .map(|d| d.id)
            .collect();
        for dependency in dependencies {
            self.enqueue(dependency, depth, event == EventKind::Change);
        }
    }

    fn enqueue(&self, dependency: DependencyId, depth: u8, coalesce: bool) {
        if depth > MAX_CHAIN_DEPTH {
            warn(&format!(
                "Keepsake: listener {} not run: more than {MAX_CHAIN_DEPTH} change listeners triggered each other",
                dependency.0
            ));
            return;
        }
        {
            let mut queue = self.queue.borrow_mut();
            // Inputs are read when a job is sent, so a waiting duplicate would only
            // send the same values again.
            if coalesce && queue.iter().any(|job| job.dependency == dependency) {
                return;
            }
            queue.push_back(Job {
                dependency,
                depth,
                retried: false,
            });
        }
        if !self.queue_running.get()
            && let Some(this) = self.rc()
        {
            self.queue_running.set(true);
            self.status.running.set(true);
            spawn_local(this.run_queue());
        }
    }

    async fn run_queue(self: Rc<Self>) {
        loop {
            let job = self.queue.borrow_mut().pop_front();
            let Some(job) = job else { break };
            self.run_job(job).await;
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
            crate::sleep(50).await;
        }
    }

    fn input_value(&self, id: ComponentId) -> Value {
        match self.config.component(id).map(|c| &c.kind) {
            Some(ComponentKind::BrowserState(_)) => self.browser.input(id),
            // The server ignores them; their values never leave it.
            Some(kind) if kind.is_server_side() => Value::Null,
            Some(_) => self
                .values
                .get(&id)
                .map(|s| s.get_untracked())
                .unwrap_or(Value::Null),
            None => Value::Null,
        }
    }

    async fn run_job(self: &Rc<Self>, mut job: Job) {
        let Some(dependency) = self.config.dependency(job.dependency) else {
            return;
        };
        loop {
            let Some((session, generation)) = self.usable_session().await else {
                return;
            };
            let read_at = self.browser.version();
            let request = EventRequest {
                dependency: job.dependency,
                inputs: dependency
                    .inputs
                    .iter()
                    .map(|&id| self.input_value(id))
                    .collect(),
                held: self.browser.held_for(dependency),
            };
            let result = self
                .backend
                .run_event(&self.config.id, &session, request)
                .await;
            match result {
                Ok(result) => {
                    self.status.error.set(None);
                    self.apply_result(result, job.depth, read_at);
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
                    return;
                }
            }
        }
    }

    fn show_error(&self, error: &ClientError) {
        self.status
            .error
            .set(Some(format!("The last action failed: {error}")));
    }

    /// Applies an event's answer; `read_at` is the browser-state version its inputs
    /// were read at (a stale answer's browser-state writes are dropped).
    fn apply_result(&self, result: EventResult, depth: u8, read_at: u64) {
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
        if let Some(props) = self.props.get(&id) {
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
                });
            }
        }
        if let (Some(value), Some(signal)) = (update.value, self.values.get(&id))
            && signal.with_untracked(|current| *current != value)
        {
            signal.set(value);
            self.fire(Some(id), EventKind::Change, depth + 1);
        }
    }

    // ----- sessions -----------------------------------------------------------------

    /// Starts a session (retrying while the server is unreachable) and opens its
    /// stream. Returns false when the app cannot run.
    async fn establish_session(self: &Rc<Self>) -> bool {
        let mut delay = 500;
        loop {
            match self.backend.start_session(&self.config.id).await {
                Ok(started) => {
                    *self.session.borrow_mut() = Some(started.session_id);
                    self.generation.set(self.generation.get().wrapping_add(1));
                    self.status.connection_lost.set(false);
                    self.open_stream();
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
                    crate::sleep(delay).await;
                    delay = (delay * 2).min(MAX_BACKOFF_MS);
                }
            }
        }
    }

    /// Replaces a session the server no longer knows. `seen` is the generation the
    /// caller found broken: if another caller already replaced it, nothing is done.
    async fn restart_session(self: Rc<Self>, seen: u32) -> bool {
        while self.restarting.get() {
            crate::sleep(50).await;
        }
        if self.generation.get() != seen {
            return self.session().is_some();
        }
        self.restarting.set(true);
        self.stream.borrow_mut().take();
        *self.session.borrow_mut() = None;
        let started = self.establish_session().await;
        self.restarting.set(false);
        if started {
            self.status.notice.set(Some(SESSION_RESTARTED.to_owned()));
        }
        started
    }

    // ----- the server stream --------------------------------------------------------

    fn open_stream(self: &Rc<Self>) {
        self.stream.borrow_mut().take();
        let Some(session) = self.session() else {
            return;
        };
        let Some(url) = self.backend.stream_url(&self.config.id, &session) else {
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
                    this.on_stream_message(generation, &event);
                }
            },
        );
        let weak = self.weak.clone();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(this) = weak.upgrade() {
                this.on_stream_open(generation);
            }
        });
        let weak = self.weak.clone();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(this) = weak.upgrade() {
                this.on_stream_error(generation);
            }
        });
        if source
            .add_event_listener_with_callback(SSE_EVENT_NAME, on_message.as_ref().unchecked_ref())
            .is_err()
        {
            warn("Keepsake: could not listen to the server stream");
        }
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        self.stream_failed.set(false);
        *self.stream.borrow_mut() = Some(Stream {
            source,
            _on_message: on_message,
            _on_open: on_open,
            _on_error: on_error,
        });
    }

    fn on_stream_message(self: &Rc<Self>, generation: u32, event: &web_sys::MessageEvent) {
        if generation != self.generation.get() {
            return;
        }
        let Some(data) = event.data().as_string() else {
            return;
        };
        match serde_json::from_str::<ServerMessage>(&data) {
            Ok(ServerMessage::Attached) => self.status.connection_lost.set(false),
            Ok(ServerMessage::Heartbeat) => {}
            Ok(ServerMessage::Push { update }) => self.apply_update(update, 0),
            Ok(ServerMessage::SessionEnded) => {
                let this = self.clone();
                spawn_local(async move {
                    this.restart_session(generation).await;
                });
            }
            Err(error) => warn(&format!("Keepsake: unreadable stream message: {error}")),
        }
    }

    fn on_stream_open(self: &Rc<Self>, generation: u32) {
        if generation != self.generation.get() {
            return;
        }
        self.status.connection_lost.set(false);
        if self.stream_failed.replace(false) {
            // Back after an outage: the server may have forgotten the session.
            let this = self.clone();
            spawn_local(async move {
                this.check_session(generation).await;
            });
        }
    }

    fn on_stream_error(self: &Rc<Self>, generation: u32) {
        if generation != self.generation.get() {
            return;
        }
        self.stream_failed.set(true);
        self.status.connection_lost.set(true);
        let closed = self
            .stream
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

    /// Reopens a closed stream: on the same session if the server still has it, on a
    /// new one otherwise, retrying with backoff while the server is unreachable.
    async fn reconnect(self: Rc<Self>, generation: u32) {
        self.reconnecting.set(true);
        let mut delay = 500;
        loop {
            crate::sleep(delay).await;
            if generation != self.generation.get() {
                break;
            }
            let Some(session) = self.session() else { break };
            match self.backend.get_session(&self.config.id, &session).await {
                Ok(_) => {
                    self.open_stream();
                    break;
                }
                Err(error) if error.is_unknown_session() => {
                    self.reconnecting.set(false);
                    self.clone().restart_session(generation).await;
                    return;
                }
                Err(_) => delay = (delay * 2).min(MAX_BACKOFF_MS),
            }
        }
        self.reconnecting.set(false);
    }

    // ----- other tabs ---------------------------------------------------------------

    fn listen_to_other_tabs(self: &Rc<Self>) {
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

/// The whole app: header, status line, notices and the layout of components.
pub fn app_view(page: PageHandle) -> impl IntoView {
    let Some(controller) = page.get() else {
        return view! { <p role="alert" class="banner error">"This page is no longer available."</p> }
            .into_any();
    };
    let config = controller.config();
    let status = controller.status;
    let running = status.running;
    let title = config.title.clone();
    let api_docs = keepsake_shared::api::api_docs_path(&config.id);
    let description = config.description.clone();
    let layout = components::layout_view(&controller, page);
    view! {
        <main class="app" aria-busy=move || if running.get() { "true" } else { "false" }>
            <header class="app-header">
                <nav>
                    <a href="/" class="back">"← All apps"</a>
                    " · "
                    <a href=api_docs>"Use via API"</a>
                </nav>
                <h1>{title}</h1>
                {(!description.is_empty()).then(|| view! { <p class="description">{description}</p> })}
            </header>
            <div class="status-line">
                <span class="running" class:active=move || running.get() role="status" aria-live="polite">
                    {move || running.get().then(|| view! { <span class="spinner" aria-hidden="true"></span> "Running…" })}
                </span>
            </div>
            <div class="notices">
                <div role="status" aria-live="polite">
                    {move || status.connection_lost.get().then(|| view! { <p class="banner warning">{CONNECTION_LOST}</p> })}
                    {move || status.notice.get().map(|text| view! {
                        <p class="banner info">
                            {text}
                            <button type="button" class="dismiss" on:click=move |_| status.notice.set(None)>"OK"</button>
                        </p>
                    })}
                    {move || status.storage_warning.get().map(|text| view! { <p class="banner warning">{text}</p> })}
                </div>
                <div role="alert">
                    {move || status.error.get().map(|text| view! {
                        <p class="banner error">
                            {text}
                            <button type="button" class="dismiss" on:click=move |_| status.error.set(None)>"Dismiss"</button>
                        </p>
                    })}
                </div>
            </div>
            {layout}
        </main>
    }
    .into_any()
}

#[derive(Clone)]
enum Loading {
    Config,
    Failed(String),
    /// The server speaks another protocol version: the page must be reloaded.
    Outdated,
    Ready(PageHandle),
}

/// The page at `/apps/{id}`: loads the app's config, then runs it.
pub fn app_page(app: AppId) -> impl IntoView {
    app_page_with(app, Rc::new(HttpBackend), Box::new(LocalStore))
}

/// [`app_page`] on any backend and store (tests script them). A config of another
/// protocol version starts nothing: the page asks to be reloaded.
pub fn app_page_with(
    app: AppId,
    backend: Rc<dyn Backend>,
    store: Box<dyn KeyValueStore>,
) -> impl IntoView {
    let state = RwSignal::new(Loading::Config);
    let owner = Owner::current();
    spawn_local(async move {
        match backend.get_config(&app).await {
            Ok(config) if config.protocol_version == PROTOCOL_VERSION => {
                if let Some(document) = web_sys::window().and_then(|w| w.document()) {
                    document.set_title(&format!("{} · Keepsake", config.title));
                }
                let make = || {
                    let controller = Controller::new(config, backend, store);
                    (PageHandle::new(controller.clone()), controller)
                };
                let (handle, controller) = match &owner {
                    Some(owner) => owner.with(make),
                    None => make(),
                };
                state.set(Loading::Ready(handle));
                controller.start();
            }
            Ok(AppConfig {
                protocol_version, ..
            })
            | Err(ClientError::Outdated(protocol_version)) => {
                warn(&format!(
                    "Keepsake: the server speaks protocol version {protocol_version}, \
                     this page {PROTOCOL_VERSION}"
                ));
                state.set(Loading::Outdated);
            }
            Err(error) => {
                let message = match error.kind() {
                    Some(ErrorKind::UnknownApp) => {
                        format!("There is no app called “{app}” on this server.")
                    }
                    _ => format!("The app could not be loaded: {error}"),
                };
                state.set(Loading::Failed(message));
            }
        }
    });
    move || match state.get() {
        Loading::Config => view! { <p class="loading" role="status">"Loading…"</p> }.into_any(),
        Loading::Failed(message) => view! {
            <main class="app">
                <p role="alert" class="banner error">{message}</p>
                <p><a href="/">"← All apps"</a></p>
            </main>
        }
        .into_any(),
        Loading::Outdated => view! {
            <main class="app">
                <p role="alert" class="banner warning">
                    {OUTDATED}
                    <button type="button" class="dismiss" on:click=|_| reload()>"Reload"</button>
                </p>
            </main>
        }
        .into_any(),
        Loading::Ready(handle) => app_view(handle).into_any(),
    }
}

/// Reloads the page (from the server, which serves the client of its own version).
fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}
