//! Declarations of the three kinds of state (plus per-session resources) as an app
//! author writes them: [`State`] (per session, on the server), [`Global`] (one value
//! for every session), [`BrowserState`] (in the browser, sealed by the server) and [`Resource`]
//! (per-session values that cannot be cloned or serialised).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};

use crate::value::{Codec, DynValue, Migration};

/// What a session state or global may hold: clonable (every session starts from a
/// copy of the default, every handler gets its own copy), comparable (for `.change`)
/// and serde-serialisable (for the size limit and for stores outside the process).
pub trait StateType:
    Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<T: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static> StateType for T {}

pub(crate) type Factory = Arc<dyn Fn() -> Box<dyn DynValue> + Send + Sync>;
pub(crate) type DeleteCallback = Arc<dyn Fn(Box<dyn DynValue>) + Send + Sync>;

/// A session state (Gradio's `gr.State`): one value per session, held on the server
/// and never sent to the browser.
///
/// Declare it with [`crate::Blocks::state`]; handlers wired to it receive the
/// session's value and return the new one.
///
/// ```
/// use std::time::Duration;
/// use keepsake::components::{Button, Number};
/// use keepsake::{Blocks, State};
///
/// let mut app = Blocks::new("counter", "Counter");
/// // Forgotten an hour after its last change (the next click starts again at 0).
/// let clicks = app.state(State::new(0u32).time_to_live(Duration::from_secs(3600)));
/// let button = app.add(Button::new("Click me"));
/// let shown = app.add(Number::new().label("Clicks"));
/// app.click(button, clicks, clicks, |n: u32| n + 1);
/// // The server runs this after every event that changed the count.
/// app.change(clicks, clicks, shown, |n: u32| f64::from(n));
/// app.build()?;
///
/// // A value that must not be shared between sessions comes from a factory.
/// let mut app = Blocks::new("notes", "Notes");
/// app.state(State::with_factory(Vec::<String>::new));
/// app.build()?;
/// # Ok::<(), keepsake::BuildError>(())
/// ```
pub struct State<T> {
    factory: Factory,
    time_to_live: Option<Duration>,
    on_delete: Option<DeleteCallback>,
    version: u32,
    migration: Option<Migration>,
    _type: std::marker::PhantomData<fn() -> T>,
}

/// A state's declaration, type-erased for the app.
pub(crate) struct StateParts {
    pub(crate) factory: Factory,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) on_delete: Option<DeleteCallback>,
    pub(crate) codec: Codec,
}

fn erase_migration<T: StateType>(
    migrate: impl Fn(u32, serde_json::Value) -> Option<T> + Send + Sync + 'static,
) -> Migration {
    Arc::new(move |version, data| {
        migrate(version, data).map(|value| Box::new(value) as Box<dyn DynValue>)
    })
}

impl<T: StateType> State<T> {
    /// Every session starts with a clone of `default`.
    pub fn new(default: T) -> Self {
        Self::with_factory(move || default.clone())
    }

    /// Every session starts with a fresh value from `factory` (called once per session,
    /// on first use).
    pub fn with_factory(factory: impl Fn() -> T + Send + Sync + 'static) -> Self {
        State {
            factory: Arc::new(move || Box::new(factory()) as Box<dyn DynValue>),
            time_to_live: None,
            on_delete: None,
            version: 0,
            migration: None,
            _type: std::marker::PhantomData,
        }
    }

    /// The version of this state's type, stored with each value in a store outside
    /// the process (Redis). Bump it when the type changes incompatibly: values stored
    /// under another version go through [`State::migrate`], or read as the default.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Turns a value stored by another version of the app (its version and JSON)
    /// into the current type; `None` falls back to the default. Without a migration,
    /// such values read as the default (and a warning is logged).
    pub fn migrate(
        mut self,
        migrate: impl Fn(u32, serde_json::Value) -> Option<T> + Send + Sync + 'static,
    ) -> Self {
        self.migration = Some(erase_migration(migrate));
        self
    }

    /// Deletes the value this long after its last write (the next event sees the
    /// default again). The session's own retention still applies: whichever ends first.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Called with the last value when it is deleted: by its time-to-live, by the
    /// session's expiry, or by eviction when the session capacity is reached.
    pub fn on_delete(mut self, callback: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.on_delete = Some(Arc::new(move |value: Box<dyn DynValue>| {
            if let Ok(value) = value.into_any().downcast::<T>() {
                callback(*value);
            }
        }));
        self
    }

    pub(crate) fn into_parts(self) -> StateParts {
        StateParts {
            factory: self.factory,
            time_to_live: self.time_to_live,
            on_delete: self.on_delete,
            codec: Codec::new::<T>(self.version, self.migration),
        }
    }
}

/// A global value: one for the whole app, shared by every session, alive while the
/// server runs. Events that write it hold it for their whole run, so read-modify-write
/// handlers never lose an update.
///
/// Declare it with [`crate::Blocks::global`]; [`crate::Blocks::bind`] shows it on
/// every open page.
///
/// ```
/// use keepsake::components::Markdown;
/// use keepsake::{Blocks, Global};
///
/// let mut app = Blocks::new("visits", "Visits");
/// let visits = app.global(Global::new(0u64));
/// let shown = app.add(Markdown::new(""));
/// // Each page load counts one visit...
/// app.load(visits, visits, |n: u64| n + 1);
/// // ...and every open page shows the new count.
/// app.bind(visits, shown, |n: &u64| format!("{n} visits so far"));
/// app.build()?;
/// # Ok::<(), keepsake::BuildError>(())
/// ```
pub struct Global<T> {
    pub(crate) initial: T,
    version: u32,
    migration: Option<Migration>,
}

impl<T: StateType> Global<T> {
    /// A global whose value is `initial` until a handler writes it: after every
    /// server start with the memory store; with Redis, until any instance writes it.
    pub fn new(initial: T) -> Self {
        Global {
            initial,
            version: 0,
            migration: None,
        }
    }

    /// As [`State::version`]: the version stored with the value in Redis.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// As [`State::migrate`]; `None` falls back to the initial value.
    pub fn migrate(
        mut self,
        migrate: impl Fn(u32, serde_json::Value) -> Option<T> + Send + Sync + 'static,
    ) -> Self {
        self.migration = Some(erase_migration(migrate));
        self
    }

    pub(crate) fn codec(&self) -> Codec {
        Codec::new::<T>(self.version, self.migration.clone())
    }
}

/// A value held by the browser (Gradio's `gr.BrowserState`), in localStorage, sealed
/// by the server: encrypted and authenticated with AES-256-GCM under a key derived
/// from the secret, which never leaves the server. The browser keeps an opaque string
/// it cannot read or forge; a value it cannot return intact reads as the default.
///
/// Fix both `storage_key` and `secret` and values survive server restarts. Leave
/// either unset and the keys are random per server start: values written before a
/// restart read back as the default, as in Gradio. (With the Redis store the random
/// keys belong to the Redis namespace: shared by every instance and kept as long as
/// its data, so there values survive restarts of the instances.)
///
/// [`crate::Blocks::build`] refuses a secret shorter than 32 bytes, an empty one, and
/// a secret without a storage key (it would be ignored).
///
/// ```no_run
/// use std::time::Duration;
/// use keepsake::components::Textbox;
/// use keepsake::{Blocks, BrowserState};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // 32 random bytes or more, from the environment: never in the source.
/// let secret = std::env::var("NAME_SECRET")?;
/// let remembered = BrowserState::new(String::new())
///     .storage_key("remembered-name")
///     .secret(secret)
///     .max_age(Duration::from_secs(30 * 24 * 3600));
///
/// let mut app = Blocks::new("hello-again", "Hello again");
/// let remembered = app.browser_state(remembered);
/// let name = app.add(Textbox::new().label("Name"));
/// // Shows what this browser remembers on load; remembers what is typed.
/// app.load(remembered, name, |name: String| name);
/// app.change(name, name, remembered, |name: String| name);
/// app.build()?;
/// # Ok(())
/// # }
/// ```
pub struct BrowserState<T> {
    pub(crate) default: T,
    pub(crate) storage_key: Option<String>,
    pub(crate) secrets: Vec<String>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) version: u32,
    pub(crate) migration: Option<JsonMigration>,
}

/// A browser-state migration: the stored version and JSON to the current type's JSON.
pub(crate) type JsonMigration =
    Arc<dyn Fn(u32, serde_json::Value) -> Option<serde_json::Value> + Send + Sync>;

impl<T: Serialize + DeserializeOwned + Send + 'static> BrowserState<T> {
    /// A browser state whose value is `default` until the browser holds another.
    pub fn new(default: T) -> Self {
        BrowserState {
            default,
            storage_key: None,
            secrets: Vec::new(),
            max_age: None,
            version: 0,
            migration: None,
        }
    }

    /// The localStorage key (namespaced with the app id by the client). Sealed values
    /// are bound to it: a value copied to another key does not open.
    pub fn storage_key(mut self, key: impl Into<String>) -> Self {
        self.storage_key = Some(key.into());
        self
    }

    /// The secret the sealing keys are derived from: at least 32 random bytes
    /// (`build` refuses fewer), read from the environment, not from the source.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets = vec![secret.into()];
        self
    }

    /// Several secrets, newest first: values are sealed with the first and opened
    /// with any; a value opened with an older one is sealed again with the first, so
    /// a secret can be rotated without losing what browsers hold.
    pub fn secrets<I: IntoIterator<Item = S>, S: Into<String>>(mut self, secrets: I) -> Self {
        self.secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// How long a written value stays valid. The expiry is sealed inside the value,
    /// so a browser cannot extend it; an expired value reads as the default (and is
    /// removed). Rewriting an equal value does not renew it.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// As [`State::version`]: the version sealed with each value. Bump it when the
    /// type changes incompatibly: values sealed under another version go through
    /// [`BrowserState::migrate`], or read as the default.
    pub fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Turns a value sealed by another version of the app (its version and JSON) into
    /// the current type; `None` falls back to the default. The migrated value is
    /// sealed again under the current version.
    pub fn migrate(
        mut self,
        migrate: impl Fn(u32, serde_json::Value) -> Option<T> + Send + Sync + 'static,
    ) -> Self {
        self.migration = Some(Arc::new(move |version, data| {
            migrate(version, data).and_then(|value| serde_json::to_value(value).ok())
        }));
        self
    }
}

/// A per-session resource that cannot be cloned or serialised (a connection, a file
/// handle). Created by its factory on first use in a session and dropped when the
/// session unloads, expires or is evicted. Handlers receive a [`Shared`] handle.
pub struct Resource<T> {
    pub(crate) factory: Arc<dyn Fn() -> T + Send + Sync>,
}

impl<T: Send + 'static> Resource<T> {
    /// A resource made by `factory`, called once per session on the first event
    /// that takes it.
    pub fn new(factory: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Resource {
            factory: Arc::new(factory),
        }
    }
}

/// A per-session resource as handlers see it.
pub type Shared<T> = Arc<tokio::sync::Mutex<T>>;

/// A resource as a session stores it: the `Shared<T>` and how to clone it without
/// knowing `T`.
pub(crate) struct StoredResource {
    value: Box<dyn Any + Send + Sync>,
    clone_handle: fn(&(dyn Any + Send + Sync)) -> Option<crate::value::AnyValue>,
}

impl StoredResource {
    /// A clone of the `Shared<T>` for a handler.
    pub(crate) fn handle(&self) -> Option<crate::value::AnyValue> {
        (self.clone_handle)(&*self.value)
    }
}

fn clone_shared<T: Send + 'static>(
    value: &(dyn Any + Send + Sync),
) -> Option<crate::value::AnyValue> {
    value
        .downcast_ref::<Shared<T>>()
        .map(|shared| Box::new(shared.clone()) as crate::value::AnyValue)
}

pub(crate) type ResourceFactory = Arc<dyn Fn() -> StoredResource + Send + Sync>;

impl<T: Send + 'static> Resource<T> {
    pub(crate) fn into_factory(self) -> ResourceFactory {
        let factory = self.factory;
        Arc::new(move || {
            let shared: Shared<T> = Arc::new(tokio::sync::Mutex::new(factory()));
            StoredResource {
                value: Box::new(shared),
                clone_handle: clone_shared::<T>,
            }
        })
    }
}
