//! What the page tests share: a scripted backend, mounting an app, waiting.
// Each test crate that includes this module uses its own part of it.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use keepsake_frontend::api::{Backend, ClientError, LocalFuture};
use keepsake_frontend::app_page::app_view;
use keepsake_frontend::browser_state::KeyValueStore;
use keepsake_frontend::controller::{Controller, PageHandle};
use keepsake_shared::config::{AppConfig, ComponentConfig, ComponentKind, ComponentProps};
use keepsake_shared::event::{
    EventRequest, EventResult, PartialUpdate, SessionStarted, SessionStatus,
};
use keepsake_shared::{AppId, ComponentId, SessionId};
use serde_json::Value;
use wasm_bindgen::JsCast as _;

/// A component with a label and an initial value.
pub fn component(id: u32, kind: ComponentKind, label: &str, value: Value) -> ComponentConfig {
    ComponentConfig {
        id: ComponentId(id),
        kind,
        props: ComponentProps {
            label: Some(label.to_owned()),
            value,
            ..ComponentProps::default()
        },
    }
}

/// A backend that answers from a script and records what it was sent.
#[derive(Default)]
pub struct Scripted {
    /// The answer to the config request (a test that loads the page sets it).
    pub config: RefCell<Option<Result<AppConfig, ClientError>>>,
    /// How many sessions were started.
    pub sessions: RefCell<u8>,
    /// The answers to events, in order; an empty answer once they run out.
    pub answers: RefCell<VecDeque<Result<EventResult, ClientError>>>,
    /// Every event request, with the session it was sent on.
    pub sent: RefCell<Vec<(SessionId, EventRequest)>>,
    /// Milliseconds each event answer takes beyond the usual 30.
    pub extra_delay_ms: Cell<u32>,
    /// The partial updates the next streamed event gives, 60 ms apart, before its
    /// answer.
    pub partials: RefCell<VecDeque<PartialUpdate>>,
    /// How many events went through the streamed path.
    pub streamed: RefCell<u32>,
}

/// The backend handed to the controller; the test keeps another handle on `Scripted`.
pub struct Shared(pub Rc<Scripted>);

impl Backend for Shared {
    fn get_config(&self, _app: &AppId) -> LocalFuture<Result<AppConfig, ClientError>> {
        let answer = self
            .0
            .config
            .borrow()
            .clone()
            .expect("the test scripts the config");
        Box::pin(async move { answer })
    }

    fn start_session(&self, _app: &AppId) -> LocalFuture<Result<SessionStarted, ClientError>> {
        *self.0.sessions.borrow_mut() += 1;
        let id = SessionId::from_bytes([*self.0.sessions.borrow(); 16]);
        Box::pin(async move {
            Ok(SessionStarted {
                session_id: id,
                retention_secs: 3600,
            })
        })
    }

    fn get_session(
        &self,
        _app: &AppId,
        session: &SessionId,
    ) -> LocalFuture<Result<SessionStatus, ClientError>> {
        let session = *session;
        Box::pin(async move {
            Ok(SessionStatus {
                session_id: session,
                connected_feeds: 1,
            })
        })
    }

    fn run_event(
        &self,
        _app: &AppId,
        session: &SessionId,
        request: EventRequest,
    ) -> LocalFuture<Result<EventResult, ClientError>> {
        self.0.sent.borrow_mut().push((*session, request));
        let answer = self
            .0
            .answers
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Ok(EventResult::default()));
        let delay = 30 + self.0.extra_delay_ms.get();
        Box::pin(async move {
            gloo_timers::future::TimeoutFuture::new(delay).await;
            answer
        })
    }

    fn run_event_streamed(
        &self,
        app: &AppId,
        session: &SessionId,
        request: EventRequest,
        on_partial: Box<dyn Fn(PartialUpdate)>,
    ) -> LocalFuture<Result<EventResult, ClientError>> {
        *self.0.streamed.borrow_mut() += 1;
        let partials: Vec<PartialUpdate> = self.0.partials.borrow_mut().drain(..).collect();
        let answer = self.run_event(app, session, request);
        Box::pin(async move {
            for partial in partials {
                on_partial(partial);
                gloo_timers::future::TimeoutFuture::new(60).await;
            }
            answer.await
        })
    }

    fn feed_url(&self, _app: &AppId, _session: &SessionId) -> Option<String> {
        None
    }
}

pub fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// Mounts `config`'s app in a fresh container and starts it.
pub fn mount_app(
    config: AppConfig,
    backend: Rc<Scripted>,
    store: Box<dyn KeyValueStore>,
) -> (web_sys::HtmlElement, Rc<Controller>) {
    let container: web_sys::HtmlElement =
        document().create_element("div").unwrap().unchecked_into();
    document().body().unwrap().append_child(&container).unwrap();
    let controller = Controller::new(config, Rc::new(Shared(backend)), store);
    let for_view = controller.clone();
    let handle = leptos::mount::mount_to(container.clone(), move || {
        app_view(PageHandle::new(for_view))
    });
    handle.forget();
    controller.start();
    (container, controller)
}

/// Waits up to two seconds for `condition`.
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..100 {
        if condition() {
            return;
        }
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
    panic!("timed out waiting for {what}");
}
