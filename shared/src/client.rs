//! A native Rust client for a running Keepsake app (feature `client`), like Gradio's
//! `gradio_client`: list the apps and their endpoints, start a session, call an
//! endpoint by its api name and read the outputs by component label.
//!
//! Session state lives on the server under the session, so successive calls of one
//! [`Session`] see each other's effects, exactly as a page does; the server runs the
//! change listeners an event causes and returns their outputs in the same answer.
//! Browser states come back sealed; a [`Session`] keeps them as a page keeps them in
//! localStorage and sends them back where an input is `null`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keepsake_shared::client::ClientError> {
//! use keepsake_shared::client::Client;
//! use serde_json::json;
//!
//! let client = Client::new("http://127.0.0.1:7860");
//! let cart = client.app("shopping-cart").await?;
//! for endpoint in cart.endpoints() {
//!     println!("{}: {} input(s)", endpoint.api_name, endpoint.inputs.len());
//! }
//! let session = cart.start_session().await?;
//! // Inputs in the endpoint's order; a state's slot is `null` (the server holds it).
//! let outputs = session.call("add_items", vec![json!(["Milk", "Water"]), json!(null)]).await?;
//! assert_eq!(outputs.get("Cart Size"), Some(&json!(2.0)));
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::api::{self, Endpoint, Method};
use crate::config::{AppConfig, AppSummary};
use crate::endpoints::EndpointInfo;
use crate::error::{ErrorBody, ErrorKind};
use crate::event::{EventRequest, EventResult, SealedValue};
use crate::{AppId, ComponentId, SessionId};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error (its kind says what to do, e.g. start a new
    /// session on [`ErrorKind::UnknownSession`]).
    #[error("{0}")]
    Server(ErrorBody),
    /// The app has no endpoint with that api name.
    #[error("the app has no endpoint called {0:?}")]
    UnknownEndpoint(String),
    /// The server could not be reached, or its answer was not the protocol's.
    #[error("HTTP error: {0}")]
    Http(#[from] reqwest::Error),
}

impl ClientError {
    /// The server's error kind, if the server answered.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ClientError::Server(body) => Some(body.error),
            _ => None,
        }
    }
}

/// A connection to a Keepsake server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server at `base_url` (e.g. `http://127.0.0.1:7860`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_http(base_url, reqwest::Client::new())
    }

    /// As [`Client::new`], with a configured `reqwest` client (timeouts, proxies).
    pub fn with_http(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        let base = base_url.into().trim_end_matches('/').to_owned();
        Client { http, base }
    }

    async fn call<E: Endpoint>(
        &self,
        params: &E::Params,
        body: &E::Request,
    ) -> Result<E::Response, ClientError> {
        let url = format!("{}{}", self.base, E::path(params));
        let request = match E::METHOD {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
        };
        let body = serde_json::to_value(body).map_err(|e| {
            ClientError::Server(ErrorBody {
                error: ErrorKind::BadRequest,
                message: format!("the request could not be encoded: {e}"),
            })
        })?;
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(response.json().await?)
        } else {
            Err(ClientError::Server(response.json().await?))
        }
    }

    /// The apps this server runs.
    pub async fn apps(&self) -> Result<Vec<AppSummary>, ClientError> {
        self.call::<api::ListApps>(&(), &()).await
    }

    /// Connects to one app: reads its config (components and endpoints).
    pub async fn app(&self, id: &str) -> Result<AppClient, ClientError> {
        let config = self
            .call::<api::GetConfig>(&AppId(id.to_owned()), &())
            .await?;
        Ok(AppClient {
            client: self.clone(),
            config,
        })
    }
}

/// One app of a server.
#[derive(Debug, Clone)]
pub struct AppClient {
    client: Client,
    config: AppConfig,
}

impl AppClient {
    /// The app's config, as read when connecting: its components, layout and
    /// listeners.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The endpoints API clients may call, with their inputs and outputs.
    pub fn endpoints(&self) -> Vec<EndpointInfo> {
        self.config.endpoints()
    }

    /// Starts a session: fresh session state, as a page load gets.
    pub async fn start_session(&self) -> Result<Session<'_>, ClientError> {
        let started = self
            .client
            .call::<api::StartSession>(&self.config.id, &())
            .await?;
        Ok(Session {
            app: self,
            id: started.session_id,
            sealed: Mutex::new(BTreeMap::new()),
        })
    }
}

/// A session of an app: calls made through it share its session state, and the
/// sealed browser-state values the server gave it.
#[derive(Debug)]
pub struct Session<'a> {
    app: &'a AppClient,
    id: SessionId,
    /// Sealed browser-state values, as a page keeps them in localStorage.
    sealed: Mutex<BTreeMap<ComponentId, String>>,
}

impl Session<'_> {
    /// The id the server issued for this session.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The sealed string this session holds for a browser-state slot, if any.
    pub fn sealed(&self, component: ComponentId) -> Option<String> {
        self.jar().get(&component).cloned()
    }

    fn jar(&self) -> std::sync::MutexGuard<'_, BTreeMap<ComponentId, String>> {
        // The map is only ever replaced entry by entry: a panic elsewhere cannot
        // leave it half-written.
        self.sealed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Calls the endpoint `api_name` with `inputs` (in the endpoint's input order).
    /// A browser-state input given as `null` is filled with the sealed value this
    /// session holds, as a page would send it. Make one call at a time per session,
    /// as a page does: two concurrent calls would both send the sealed values held
    /// before either answered.
    pub async fn call(
        &self,
        api_name: &str,
        mut inputs: Vec<Value>,
    ) -> Result<Outputs, ClientError> {
        let endpoint = self
            .app
            .config
            .endpoint(api_name)
            .ok_or_else(|| ClientError::UnknownEndpoint(api_name.to_owned()))?;
        let held = {
            let jar = self.jar();
            for (input, slot) in inputs.iter_mut().zip(&endpoint.inputs) {
                if input.is_null()
                    && let Some(sealed) = jar.get(&slot.component)
                {
                    *input = Value::String(sealed.clone());
                }
            }
            // Everything held for slots the endpoint does not read: it, or a change
            // listener the server runs after it, may write them.
            jar.iter()
                .filter(|(id, _)| !endpoint.inputs.iter().any(|i| i.component == **id))
                .map(|(id, sealed)| SealedValue {
                    component: *id,
                    sealed: sealed.clone(),
                })
                .collect()
        };
        let request = EventRequest {
            listener: endpoint.listener,
            inputs,
            held,
            rendered: None,
            shown: Vec::new(),
        };
        let params = (self.app.config.id.clone(), self.id);
        let result = self
            .app
            .client
            .call::<api::RunEvent>(&params, &request)
            .await?;
        {
            let mut jar = self.jar();
            for write in &result.browser_state {
                match &write.sealed {
                    Some(sealed) => jar.insert(write.component, sealed.clone()),
                    None => jar.remove(&write.component),
                };
            }
        }
        Ok(Outputs {
            result,
            config: self.app.config.clone(),
        })
    }
}

/// What a call changed: component values (by label) and property updates.
#[derive(Debug, Clone)]
pub struct Outputs {
    result: EventResult,
    config: AppConfig,
}

impl Outputs {
    /// The last value written to the component labelled `label`, if the call (or a
    /// change listener it caused) wrote one.
    pub fn get(&self, label: &str) -> Option<&Value> {
        let id = self
            .config
            .components
            .iter()
            .find(|c| c.props.label.as_deref() == Some(label))?
            .id;
        self.result
            .updates
            .iter()
            .rev()
            .find(|u| u.component == id)
            .and_then(|u| u.value.as_ref())
    }

    /// Everything the server answered.
    pub fn result(&self) -> &EventResult {
        &self.result
    }
}
